/*
 * The send queue: whole PDUs wait here until the next flush gathers them into one sendmsg.
 * Completions that arrive in the same reactor turn therefore leave in one system call.
 */
#include <errno.h>
#include <limits.h>
#include <sys/socket.h>

#include "compiler.h"
#include "nvme_tcp.h"

/* iovecs per sendmsg: enough for 64 PDUs of header + data + digest. */
#define FLUSH_IOV 256

void mimo_tcp_sendq_init(struct mimo_tcp_sendq *sq)
{
	STAILQ_INIT(&sq->q);
	sq->offset = 0;
	sq->bytes = 0;
	sq->count = 0;
}

void mimo_tcp_sendq_push(struct mimo_tcp_sendq *sq, struct mimo_tcp_send *s)
{
	STAILQ_INSERT_TAIL(&sq->q, s, link);
	sq->bytes += s->len;
	sq->count++;
}

void mimo_tcp_sendq_advance(struct mimo_tcp_sendq *sq, size_t n)
{
	struct mimo_tcp_send *s;

	sq->bytes -= n;
	n += sq->offset;
	while ((s = STAILQ_FIRST(&sq->q)) != NULL && n >= s->len) {
		n -= s->len;
		STAILQ_REMOVE_HEAD(&sq->q, link);
		sq->count--;
		if (s->done != NULL)
			s->done(s);
	}
	sq->offset = n;
}

int mimo_tcp_sendq_gather(const struct mimo_tcp_sendq *sq, struct iovec *iov, int max)
{
	const struct mimo_tcp_send *s;
	size_t skip = sq->offset;
	int cnt = 0;

	STAILQ_FOREACH(s, &sq->q, link)
	{
		if (cnt + s->iovcnt > max)
			break;
		for (int i = 0; i < s->iovcnt; i++) {
			const struct iovec *v = &s->iov[i];

			if (skip >= v->iov_len) {
				skip -= v->iov_len;
				continue;
			}
			iov[cnt].iov_base = (uint8_t *)v->iov_base + skip;
			iov[cnt++].iov_len = v->iov_len - skip;
			skip = 0;
		}
	}
	return cnt;
}

int mimo_tcp_sendq_flush(struct mimo_tcp_sendq *sq, struct mimo_tcp_sock *sk)
{
	while (!STAILQ_EMPTY(&sq->q)) {
		struct iovec iov[FLUSH_IOV];
		struct msghdr msg = { .msg_iov = iov };
		int cnt = mimo_tcp_sendq_gather(sq, iov, FLUSH_IOV);
		ssize_t n;

		msg.msg_iovlen = (size_t)cnt;
		if (mimo_likely(sk->tls == NULL))
			n = sendmsg(sk->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			n = mimo_tls_writev(sk->tls, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 1 : -errno;
		}
		mimo_tcp_sendq_advance(sq, (size_t)n);
	}
	return 0;
}

void mimo_tcp_sendq_abort(struct mimo_tcp_sendq *sq)
{
	struct mimo_tcp_send *s;

	while ((s = STAILQ_FIRST(&sq->q)) != NULL) {
		STAILQ_REMOVE_HEAD(&sq->q, link);
		sq->count--;
		if (s->done != NULL)
			s->done(s);
	}
	sq->offset = 0;
	sq->bytes = 0;
}
