/*
 * NVMe/TCP connections whose bytes move through io_uring (sock_impl "uring"): one ring per
 * poll group, that is per reactor, made when its first such connection arrives.
 *
 * Receiving: each connection keeps one multishot recv armed on the ring; the kernel fills a
 * buffer of the group's provided-buffer ring with whatever arrived and posts a completion,
 * which is fed to the connection's PDU parser (mimo_tcp_rx_feed) and the buffer handed back at
 * once - so no buffer is ever held by a slow connection and the ring cannot run dry for long.
 * No system call per receive: the reactor's epoll_wait (its turn) and io_uring_enter (the
 * submit below) run the kernel's side.
 *
 * Sending: the poll group's flush (tcp.c, once per reactor turn) prepares one sendmsg per
 * dirty connection from its send queue, and every SQE of the turn goes in one io_uring_enter.
 * The queued PDUs stay in the send queue - their iovecs pinned - until the completion says how
 * many bytes went; then done callbacks run, and a partial send leaves the rest for the next
 * turn. One sendmsg per connection is in flight at a time, so bytes never leave out of order.
 *
 * Waking: completions do not wake epoll by themselves; the ring's fd is watched (it reads as
 * ready while completions wait), so a sleeping reactor wakes for them as for a socket, and a
 * busy one reaps them in its active poller every turn without a system call.
 *
 * Closing: a closing connection cancels what it has in the ring and its socket is shut down,
 * so both SQEs end quickly; its send queue is dropped only once the kernel gave its sendmsg
 * back, and the queue pair is freed (its requests' memory, its socket) only when its last SQE
 * completed - the kernel never writes into or reads from freed memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "tcp_internal.h"

#define COMP "nvmf_tcp"

#define RING_ENTRIES 512
/* Completions: room for a multishot receive's and a send's per connection of a storm before
 * the kernel keeps the rest on its overflow list (see reap). */
#define CQ_ENTRIES 4096
/* Provided receive buffers, per reactor: 4 MiB. A completion carries at most one buffer, so
 * larger buffers mean fewer completions for bulk data. */
#define RECV_BUFS     128 /* a power of two */
#define RECV_BUF_SIZE (32 * 1024)
#define BGID	      0
/* iovecs of one sendmsg: 32 read completions (header, data, digest) and their responses. */
#define SEND_IOV 128
/* How long a poll group being destroyed waits for the kernel to give back its SQEs. */
#define DRAIN_MS 1000

enum op {
	OP_RECV = 1,
	OP_SEND = 2
}; /* in the low bits of user_data; 0: a cancel */
#define OP_MASK 3ull

struct nvmf_tcp_uring {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	struct mimo_fd_watch *watch;
	struct mimo_poller *poller;
	uint32_t queued;		      /* SQEs prepared, not yet submitted */
	TAILQ_HEAD(, nvmf_tcp_qpair) zombies; /* freed by the core, SQEs still out */
};

static struct io_uring_sqe *get_sqe(struct nvmf_tcp_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (mimo_unlikely(sqe == NULL)) {
		/* The submission ring is full: hand it to the kernel now. */
		if (io_uring_submit(&u->ring) >= 0)
			u->queued = 0;
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe != NULL)
		u->queued++;
	return sqe;
}

static inline uint64_t tag(struct nvmf_tcp_qpair *qp, enum op op)
{
	return (uint64_t)(uintptr_t)qp | op;
}

static int arm_recv(struct nvmf_tcp_qpair *qp)
{
	struct io_uring_sqe *sqe = get_sqe(qp->ring);

	if (sqe == NULL)
		return -EAGAIN;
	io_uring_prep_recv_multishot(sqe, qp->sock.fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(qp, OP_RECV));
	qp->recv_armed = true;
	qp->ring_ops++;
	return 0;
}

/* An SQE of qp's gave its last completion. */
static void op_done(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_uring *u = qp->ring;

	if (--qp->ring_ops != 0 || !qp->free_pending)
		return;
	TAILQ_REMOVE(&u->zombies, qp, zombie_link);
	nvmf_tcp_qpair_free_final(qp);
}

static void on_recv(struct nvmf_tcp_uring *u, struct nvmf_tcp_qpair *qp,
		    const struct io_uring_cqe *cqe)
{
	bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
	int res = cqe->res;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		uint8_t *buf = u->bufs + (size_t)bid * RECV_BUF_SIZE;

		if (res > 0 && qp->core.state != NVMF_QP_CLOSING)
			nvmf_tcp_qpair_feed(qp, buf, (size_t)res);
		/* Parsed (copied where it belongs): the buffer goes straight back. */
		io_uring_buf_ring_add(u->br, buf, RECV_BUF_SIZE, bid,
				      io_uring_buf_ring_mask(RECV_BUFS), 0);
		io_uring_buf_ring_advance(u->br, 1);
	}
	if (qp->core.state != NVMF_QP_CLOSING) {
		if (res == 0) {
			MIMO_DEBUG(COMP, "%s:%s closed the connection", qp->core.traddr,
				   qp->core.trsvcid);
			nvmf_tcp_qpair_close(qp);
		} else if (res < 0 && res != -ENOBUFS) {
			MIMO_INFO(COMP, "%s:%s: %s; closing", qp->core.traddr, qp->core.trsvcid,
				  strerror(-res));
			nvmf_tcp_qpair_close(qp);
		}
	}
	if (more)
		return;
	/* The multishot ended: out of buffers (they are back now), or the socket is done. */
	qp->recv_armed = false;
	if (qp->core.state != NVMF_QP_CLOSING && arm_recv(qp) != 0) {
		MIMO_ERR(COMP, "%s:%s: cannot re-arm the receive; closing", qp->core.traddr,
			 qp->core.trsvcid);
		nvmf_tcp_qpair_close(qp);
	}
	op_done(qp);
}

static void on_send(struct nvmf_tcp_qpair *qp, int res)
{
	qp->send_busy = false;
	if (res > 0)
		mimo_tcp_sendq_advance(&qp->sq, (size_t)res);
	if (qp->core.state == NVMF_QP_CLOSING) {
		/* Closed while the kernel held the PDUs: they are released only now. */
		mimo_tcp_sendq_abort(&qp->sq);
	} else if (res <= 0) {
		MIMO_DEBUG(COMP, "%s:%s: send failed: %s", qp->core.traddr, qp->core.trsvcid,
			   strerror(res < 0 ? -res : EPIPE));
		nvmf_tcp_qpair_close(qp);
	} else if (!mimo_tcp_sendq_empty(&qp->sq)) {
		nvmf_tcp_qpair_kick(qp); /* the rest, or what queued meanwhile */
	}
	op_done(qp);
}

static int reap(struct nvmf_tcp_uring *u)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	/* Completions the full CQ could not take wait on the kernel's overflow list, and the
	 * ring's fd reads as ready until they are flushed into the CQ: flush them. */
	if (mimo_unlikely(io_uring_cq_has_overflow(&u->ring)))
		io_uring_get_events(&u->ring);
	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		uint64_t data = io_uring_cqe_get_data64(cqe);
		struct nvmf_tcp_qpair *qp = (struct nvmf_tcp_qpair *)(uintptr_t)(data & ~OP_MASK);
		struct io_uring_cqe copy = *cqe;

		n++;
		/* Seen before the handlers run: they may submit (and so reap) themselves. */
		io_uring_cq_advance(&u->ring, 1);
		if ((data & OP_MASK) == OP_RECV)
			on_recv(u, qp, &copy);
		else if ((data & OP_MASK) == OP_SEND)
			on_send(qp, copy.res);
	}
	return (int)n;
}

static int ring_poll(void *arg)
{
	return reap(arg);
}

static void ring_event(void *arg, uint32_t events)
{
	(void)events;
	reap(arg);
}

static void ring_free(struct nvmf_tcp_uring *u)
{
	mimo_poller_unregister(&u->poller);
	mimo_fd_watch_remove(&u->watch);
	io_uring_queue_exit(&u->ring);
	free(u->br);
	free(u->bufs);
	free(u);
}

static struct nvmf_tcp_uring *ring_create(char *why, size_t len)
{
	struct nvmf_tcp_uring *u = calloc(1, sizeof(*u));
	struct io_uring_buf_reg reg = { 0 };
	size_t br_size = RECV_BUFS * sizeof(struct io_uring_buf);
	void *br = NULL;
	int rc;

	if (u == NULL || posix_memalign(&br, 4096, (br_size + 4095) & ~(size_t)4095) != 0 ||
	    (u->bufs = aligned_alloc(4096, (size_t)RECV_BUFS * RECV_BUF_SIZE)) == NULL) {
		snprintf(why, len, "out of memory");
		free(br);
		free(u);
		return NULL;
	}
	u->br = br;
	TAILQ_INIT(&u->zombies);
	/* Completions are collected at the reactor's next system call (it makes one every turn)
	 * instead of interrupting it; a sleeping reactor is still woken. Linux 5.19. */
	{
		struct io_uring_params p = { .flags = IORING_SETUP_COOP_TASKRUN |
						      IORING_SETUP_CQSIZE,
					     .cq_entries = CQ_ENTRIES };

		rc = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
		if (rc == -EINVAL) {
			p = (struct io_uring_params){ .flags = IORING_SETUP_CQSIZE,
						      .cq_entries = CQ_ENTRIES };
			rc = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
		}
	}
	if (rc != 0) {
		snprintf(why, len, "io_uring_setup: %s", strerror(-rc));
		free(u->bufs);
		free(br);
		free(u);
		return NULL;
	}
	io_uring_buf_ring_init(u->br);
	reg.ring_addr = (unsigned long)u->br;
	reg.ring_entries = RECV_BUFS;
	reg.bgid = BGID;
	rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc != 0) {
		snprintf(why, len, "registering the receive buffers: %s", strerror(-rc));
		goto fail;
	}
	for (unsigned i = 0; i < RECV_BUFS; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * RECV_BUF_SIZE, RECV_BUF_SIZE,
				      (unsigned short)i, io_uring_buf_ring_mask(RECV_BUFS), (int)i);
	io_uring_buf_ring_advance(u->br, RECV_BUFS);
	rc = mimo_fd_watch_add(u->ring.ring_fd, EPOLLIN, ring_event, u, &u->watch);
	if (rc == 0) {
		u->poller = mimo_poller_register(ring_poll, u, 0);
		rc = u->poller == NULL ? -ENOMEM : 0;
	}
	if (rc != 0) {
		snprintf(why, len, "watching the ring: %s", strerror(-rc));
		goto fail;
	}
	return u;
fail:
	ring_free(u);
	return NULL;
}

int nvmf_tcp_uring_attach(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_poll_group *pg = qp->pg;
	char why[160];

	if (pg->uring == NULL) {
		if (pg->uring_failed)
			return -ENODEV;
		pg->uring = ring_create(why, sizeof(why));
		if (pg->uring == NULL) {
			/* Said once per reactor: its connections are served by epoll from now on.
			 */
			pg->uring_failed = true;
			MIMO_WARN(COMP,
				  "reactor %u: no io_uring for NVMe/TCP (%s); its connections use "
				  "epoll",
				  pg->core.reactor_index, why);
			return -ENODEV;
		}
	}
	qp->send_iov = calloc(SEND_IOV, sizeof(*qp->send_iov));
	if (qp->send_iov == NULL) {
		MIMO_WARN(COMP, "%s:%s: out of memory for its io_uring sends; it uses epoll",
			  qp->core.traddr, qp->core.trsvcid);
		return -ENOMEM;
	}
	qp->ring = pg->uring;
	if (arm_recv(qp) != 0) {
		qp->ring = NULL;
		free(qp->send_iov);
		qp->send_iov = NULL;
		MIMO_WARN(COMP, "%s:%s: reactor %u's ring is full; it uses epoll", qp->core.traddr,
			  qp->core.trsvcid, pg->core.reactor_index);
		return -EAGAIN;
	}
	atomic_fetch_add(&qp->tt->uring_qpairs, 1);
	return 0;
}

void nvmf_tcp_uring_flush(struct nvmf_tcp_qpair *qp)
{
	struct io_uring_sqe *sqe;
	int cnt;

	if (qp->send_busy || mimo_tcp_sendq_empty(&qp->sq))
		return; /* the completion of the one in flight sends the rest */
	cnt = mimo_tcp_sendq_gather(&qp->sq, qp->send_iov, SEND_IOV);
	if (cnt == 0)
		return;
	sqe = get_sqe(qp->ring);
	if (sqe == NULL) {
		nvmf_tcp_qpair_kick(qp); /* the next turn */
		return;
	}
	memset(&qp->send_msg, 0, sizeof(qp->send_msg));
	qp->send_msg.msg_iov = qp->send_iov;
	qp->send_msg.msg_iovlen = (size_t)cnt;
	io_uring_prep_sendmsg(sqe, qp->sock.fd, &qp->send_msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(qp, OP_SEND));
	qp->send_busy = true;
	qp->ring_ops++;
}

int nvmf_tcp_uring_submit(struct nvmf_tcp_poll_group *pg)
{
	struct nvmf_tcp_uring *u = pg->uring;

	if (u == NULL || u->queued == 0)
		return 0;
	/* Refused as a whole (-EBUSY, -EAGAIN: the kernel is short of room): they stay in the
	 * SQ and the next turn tries again. */
	if (io_uring_submit(&u->ring) >= 0)
		u->queued = 0;
	return 1;
}

void nvmf_tcp_uring_cancel(struct nvmf_tcp_qpair *qp)
{
	struct io_uring_sqe *sqe;

	if (qp->ring_ops == 0)
		return;
	/* The socket's shutdown ends both SQEs too; the cancel makes it certain. */
	sqe = get_sqe(qp->ring);
	if (sqe == NULL)
		return;
	io_uring_prep_cancel_fd(sqe, qp->sock.fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
}

bool nvmf_tcp_uring_free_later(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_uring *u = qp->ring;

	atomic_fetch_sub(&qp->tt->uring_qpairs, 1);
	if (qp->ring_ops != 0) {
		qp->free_pending = true;
		TAILQ_INSERT_TAIL(&u->zombies, qp, zombie_link);
		return true;
	}
	return false;
}

void nvmf_tcp_uring_destroy(struct nvmf_tcp_poll_group *pg)
{
	struct nvmf_tcp_uring *u = pg->uring;
	struct io_uring_sqe *sqe;

	if (u == NULL)
		return;
	pg->uring = NULL;
	/* Connections whose SQEs are still out: cancel everything, take the completions. */
	if (!TAILQ_EMPTY(&u->zombies) && (sqe = get_sqe(u)) != NULL) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };

		io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, 0);
		io_uring_submit(&u->ring);
		for (int i = 0; i < DRAIN_MS / 10 && !TAILQ_EMPTY(&u->zombies); i++) {
			struct io_uring_cqe *cqe;

			if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) == 0)
				reap(u);
		}
	}
	if (!TAILQ_EMPTY(&u->zombies))
		MIMO_ERR(COMP, "reactor %u: the kernel kept connections' SQEs past %d ms",
			 pg->core.reactor_index, DRAIN_MS);
	ring_free(u);
}
