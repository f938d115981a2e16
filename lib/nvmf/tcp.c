/*
 * The NVMe/TCP transport: listening ports (on the target's reactor), per-reactor poll groups,
 * queue pair life and output, and its ops table for the core (transport.h). What the PDUs
 * mean is tcp_cmd.c's; a secure port's TLS is tcp_tls.c's.
 *
 * Output is never sent from inside a completion: responses queue on their queue pair, which
 * joins its poll group's dirty list, and the group's poller flushes every dirty queue pair
 * once per reactor turn, so completions that land together leave in one sendmsg.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock_opts.h"
#include "log.h"
#include "tcp_internal.h"
#include "ticks.h"

#define COMP	     "nvmf_tcp"
#define ACCEPT_BATCH 32
/* How often the connect timeout is checked while connections wait for it. */
#define TIMEOUT_CHECK_US 100000

static struct mimo_ratelimit g_refuse_rl, g_timeout_rl;

/* --- transport ----------------------------------------------------------------------------- */

/*
 * Connections a listener takes when no cap was given, and the most it may be given: three
 * quarters of the file descriptors the process may open, so that hosts (or anyone who can
 * reach the port) never take the descriptors the RPC socket, bdevs and other listeners need.
 */
uint32_t nvmf_tcp_max_conns_allowed(void)
{
	struct rlimit rl;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 65536;
	n = rl.rlim_cur - rl.rlim_cur / 4;
	return n < 16 ? 16 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static int tcp_create(struct mimo_nvmf_tgt *tgt, const struct mimo_nvmf_transport_opts *opts,
		      struct nvmf_transport **out)
{
	struct nvmf_tcp_transport *tt;

	if (opts->max_queue_depth < 2 || opts->max_queue_depth > 65535 || opts->max_aq_depth < 2 ||
	    opts->max_aq_depth > 4096 || opts->max_qpairs_per_ctrlr < 2 ||
	    opts->max_qpairs_per_ctrlr > 65535 || opts->max_io_size < 4096 ||
	    opts->max_io_size > (1u << 24) || opts->in_capsule_data_size % 16 != 0 ||
	    opts->in_capsule_data_size > 131072 || opts->io_unit_size < 4096 ||
	    opts->num_shared_buffers == 0 || opts->connect_timeout_ms == 0 || opts->kas == 0 ||
	    opts->kas > 0xffff || opts->sock_priority > 6 || opts->acceptor_backlog == 0)
		return -EINVAL;
	if (opts->max_connections_per_listener > nvmf_tcp_max_conns_allowed())
		return -EMFILE;
	tt = calloc(1, sizeof(*tt));
	if (tt == NULL)
		return -ENOMEM;
	tt->core.tgt = tgt;
	tt->core.opts = *opts;
	if (tt->core.opts.io_unit_size > tt->core.opts.max_io_size)
		tt->core.opts.io_unit_size = tt->core.opts.max_io_size;
	tt->inline_size = (MIMO_MAX(tt->core.opts.in_capsule_data_size, 4096u) + 4095) & ~4095u;
	tt->max_conns = opts->max_connections_per_listener != 0 ? opts->max_connections_per_listener
								: nvmf_tcp_max_conns_allowed();
	tt->connect_timeout_ticks =
		(uint64_t)tt->core.opts.connect_timeout_ms * mimo_get_ticks_hz() / 1000;
	*out = &tt->core;
	MIMO_INFO(COMP, "TCP transport: queue depth %u, admin %u, in-capsule %u, max I/O %u",
		  opts->max_queue_depth, opts->max_aq_depth, opts->in_capsule_data_size,
		  opts->max_io_size);
	return 0;
}

/* --- poll groups --------------------------------------------------------------------------- */

static int pg_poll(void *arg)
{
	struct nvmf_tcp_poll_group *pg = arg;
	struct nvmf_tcp_qpair *qp;
	int work = 0;

	/* TLS connections with bytes left in OpenSSL: one more read each, as a readable socket
	 * gets one a turn. Those put back by these reads wait for the next turn. */
	pg->turn++;
	while ((qp = TAILQ_FIRST(&pg->rx_held)) != NULL && qp->held_turn != pg->turn) {
		nvmf_tcp_qpair_read(qp);
		work++;
	}
	while ((qp = TAILQ_FIRST(&pg->dirty)) != NULL) {
		TAILQ_REMOVE(&pg->dirty, qp, dirty_link);
		qp->dirty = false;
		nvmf_tcp_qpair_flush(qp);
		work++;
	}
	/* io_uring connections: this turn's sendmsgs (and receives re-armed) in one call. */
	return work + nvmf_tcp_uring_submit(pg);
}

static struct nvmf_poll_group *tcp_poll_group_create(struct nvmf_transport *core)
{
	struct nvmf_tcp_transport *tt = mimo_container_of(core, struct nvmf_tcp_transport, core);
	struct nvmf_tcp_poll_group *pg = calloc(1, sizeof(*pg));

	if (pg == NULL)
		return NULL;
	pg->free_bufs = calloc(core->opts.num_shared_buffers, sizeof(void *));
	/* Late: it sends what the completions of this turn queued, in this turn. */
	pg->poller = mimo_poller_register_late(pg_poll, pg);
	if (pg->free_bufs == NULL || pg->poller == NULL) {
		mimo_poller_unregister(&pg->poller);
		free(pg->free_bufs);
		free(pg);
		return NULL;
	}
	pg->tt = tt;
	pg->max_free_bufs = MIMO_MIN(core->opts.num_shared_buffers, core->opts.buf_cache_size);
	TAILQ_INIT(&pg->dirty);
	TAILQ_INIT(&pg->rx_held);
	TAILQ_INIT(&pg->unconnected);
	STAILQ_INIT(&pg->buf_waiters);
	return &pg->core;
}

static void tcp_poll_group_destroy(struct nvmf_poll_group *core)
{
	struct nvmf_tcp_poll_group *pg = mimo_container_of(core, struct nvmf_tcp_poll_group, core);

	nvmf_tcp_uring_destroy(pg);
	mimo_poller_unregister(&pg->poller);
	while (pg->num_free_bufs != 0)
		free(pg->free_bufs[--pg->num_free_bufs]);
	free(pg->free_bufs);
	free(pg);
}

void *nvmf_tcp_buf_get(struct nvmf_tcp_poll_group *pg)
{
	struct nvmf_tcp_transport *tt = pg->tt;
	unsigned int n;

	if (pg->num_free_bufs != 0)
		return pg->free_bufs[--pg->num_free_bufs];
	n = atomic_load_explicit(&tt->shared_buffers, memory_order_relaxed);
	do {
		if (n >= tt->core.opts.num_shared_buffers)
			return NULL;
	} while (!atomic_compare_exchange_weak(&tt->shared_buffers, &n, n + 1));
	return aligned_alloc(4096, (tt->core.opts.max_io_size + 4095) & ~4095u);
}

void nvmf_tcp_buf_put(struct nvmf_tcp_poll_group *pg, void *buf)
{
	struct nvmf_tcp_req *req = STAILQ_FIRST(&pg->buf_waiters);

	if (req != NULL) {
		STAILQ_REMOVE_HEAD(&pg->buf_waiters, link);
		nvmf_tcp_req_got_buf(req, buf);
		return;
	}
	if (pg->num_free_bufs < pg->max_free_bufs) {
		pg->free_bufs[pg->num_free_bufs++] = buf;
		return;
	}
	free(buf);
	atomic_fetch_sub(&pg->tt->shared_buffers, 1);
}

/* --- queue pairs --------------------------------------------------------------------------- */

struct conn_msg {
	struct nvmf_tcp_transport *tt;
	struct nvmf_tcp_port *port;
	int fd;
	bool secure; /* the port's, as it was at accept */
	bool uring;  /* the port's: through the poll group's io_uring */
	char traddr[64];
	char trsvcid[8];
};

static void qpair_event(void *arg, uint32_t events);

static void qpair_free_mem(struct nvmf_tcp_qpair *qp)
{
	mimo_tls_free(qp->handshake);
	mimo_tls_free(qp->sock.tls);
	mimo_tcp_rx_fini(&qp->rx);
	free(qp->send_iov);
	if (qp->reqs != NULL)
		free(qp->reqs[0].inline_buf);
	free(qp->reqs);
	free(qp->free_reqs);
	free(qp);
}

static void conn_gone(struct nvmf_tcp_transport *tt, struct nvmf_tcp_port *port);
static void qpair_close(struct nvmf_tcp_qpair *qp);

/* --- the connect timeout ------------------------------------------------------------------- */

static void unconnected_remove(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_poll_group *pg = qp->pg;

	if (!qp->unconnected)
		return;
	qp->unconnected = false;
	TAILQ_REMOVE(&pg->unconnected, qp, unconnected_link);
	if (TAILQ_EMPTY(&pg->unconnected))
		mimo_poller_unregister(&pg->timeout_poller);
}

/* Close the connections that had connect_timeout_ms to send ICReq and Connect and did not. */
static int check_timeouts(void *arg)
{
	struct nvmf_tcp_poll_group *pg = arg;
	uint64_t now = mimo_get_ticks(), suppressed = 0;
	struct nvmf_tcp_qpair *qp;
	int closed = 0;

	while ((qp = TAILQ_FIRST(&pg->unconnected)) != NULL &&
	       now - qp->accepted_ticks >= pg->tt->connect_timeout_ticks) {
		/* A Connect the target's reactor is deciding is left to finish. */
		if (qp->core.state == NVMF_QP_CONNECTING) {
			unconnected_remove(qp);
			continue;
		}
		if (mimo_ratelimit_allow(&g_timeout_rl, 1000000000LL, &suppressed))
			MIMO_WARN(COMP,
				  "%s:%s sent no %s within %u ms; closing the connection "
				  "(%" PRIu64 " more such)",
				  qp->core.traddr, qp->core.trsvcid,
				  qp->handshake != NULL		       ? "TLS handshake"
				  : qp->core.state == NVMF_QP_AWAIT_IC ? "ICReq"
				  : qp->core.state == NVMF_QP_AUTHENTICATING
					  ? "successful authentication"
					  : "Connect",
				  pg->tt->core.opts.connect_timeout_ms, suppressed);
		qpair_close(qp); /* takes it off the list */
		closed++;
	}
	return closed;
}

static int unconnected_add(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_poll_group *pg = qp->pg;

	if (pg->timeout_poller == NULL) {
		pg->timeout_poller = mimo_poller_register(check_timeouts, pg, TIMEOUT_CHECK_US);
		if (pg->timeout_poller == NULL)
			return -ENOMEM;
	}
	qp->accepted_ticks = mimo_get_ticks();
	qp->unconnected = true;
	TAILQ_INSERT_TAIL(&pg->unconnected, qp, unconnected_link);
	return 0;
}

void nvmf_tcp_qpair_connected(struct nvmf_qpair *qp)
{
	unconnected_remove(nvmf_tcp_qpair(qp));
}

/*
 * A new connection costs only its queue pair and a header's worth of staging until it has
 * sent an ICReq (nvmf_tcp_qpair_alloc_reqs): thousands of idle connections must not cost
 * their requests' memory.
 */
static void qpair_create(void *arg)
{
	struct conn_msg *m = arg;
	struct nvmf_tcp_transport *tt = m->tt;
	struct nvmf_poll_group *group = NULL;
	struct nvmf_tcp_poll_group *pg = NULL;
	struct nvmf_tcp_qpair *qp = NULL;

	if (atomic_load(&tt->core.destroying))
		goto fail;
	group = nvmf_poll_group_get(&tt->core);
	if (group != NULL)
		pg = mimo_container_of(group, struct nvmf_tcp_poll_group, core);
	qp = calloc(1, sizeof(*qp));
	if (pg == NULL || qp == NULL)
		goto fail;
	if (mimo_tcp_rx_init_small(&qp->rx, false,
				   MIMO_MAX(MIMO_MAX(tt->core.opts.io_unit_size, NVMF_ADMIN_ICD),
					    tt->core.opts.in_capsule_data_size)) != 0)
		goto fail;
	/* One read per turn over TLS too (rx.h): the reactor's other connections come next. */
	qp->rx.one_read = true;
	qp->core.tt = &tt->core;
	qp->core.port = &m->port->core;
	qp->core.state = NVMF_QP_AWAIT_IC;
	qp->tt = tt;
	qp->pg = pg;
	qp->sock.fd = m->fd;
	qp->maxh2cdata = tt->core.opts.io_unit_size;
	memcpy(qp->core.traddr, m->traddr, sizeof(qp->core.traddr));
	memcpy(qp->core.trsvcid, m->trsvcid, sizeof(qp->core.trsvcid));
	if (m->secure && nvmf_tcp_tls_start(qp) != 0) {
		mimo_tcp_rx_fini(&qp->rx);
		goto fail;
	}
	mimo_tcp_sendq_init(&qp->sq);
	if (unconnected_add(qp) != 0) {
		mimo_tls_free(qp->handshake);
		mimo_tcp_rx_fini(&qp->rx);
		goto fail;
	}
	/* TLS stays on epoll: its records are read and written by OpenSSL on the socket. */
	if (m->uring && !m->secure && nvmf_tcp_uring_attach(qp) == 0) {
		qp->core.sock_impl = "uring";
	} else if (mimo_fd_watch_add(qp->sock.fd, EPOLLIN, qpair_event, qp, &qp->watch) != 0) {
		unconnected_remove(qp);
		mimo_tls_free(qp->handshake);
		mimo_tcp_rx_fini(&qp->rx);
		goto fail;
	} else {
		qp->core.sock_impl = m->secure ? "ssl" : "posix";
		/* Its listener asked for io_uring and it did not get it: counted and shown
		 * (nvmf_get_transports, the queue pair's sock_impl), the reason logged by
		 * nvmf_tcp_uring_attach. */
		if (m->uring && !m->secure)
			atomic_fetch_add(&tt->uring_fallback_qpairs, 1);
	}
	nvmf_poll_group_add(&pg->core, &qp->core);
	nvmf_tgt_qpair_arrived(tt->core.tgt); /* counted as unassociated from here */
	MIMO_DEBUG(COMP, "connection from %s:%s on reactor %u", qp->core.traddr, qp->core.trsvcid,
		   pg->core.reactor_index);
	free(m);
	return;
fail:
	nvmf_tgt_qpair_arrived(tt->core.tgt);
	free(qp);
	close(m->fd);
	conn_gone(tt, m->port);
	free(m);
}

int nvmf_tcp_qpair_alloc_reqs(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_transport *tt = qp->tt;
	uint32_t num = MIMO_MAX(tt->core.opts.max_queue_depth, tt->core.opts.max_aq_depth);
	uint8_t *bufs;

	if (qp->reqs != NULL)
		return 0;
	if (mimo_tcp_rx_grow(&qp->rx) != 0)
		return -ENOMEM;
	qp->reqs = calloc(num, sizeof(*qp->reqs));
	qp->free_reqs = calloc(num, sizeof(*qp->free_reqs));
	/* Virtual until used: the LIFO free list keeps the pages touched few. */
	bufs = aligned_alloc(4096, (size_t)num * tt->inline_size);
	if (qp->reqs == NULL || qp->free_reqs == NULL || bufs == NULL) {
		free(bufs);
		free(qp->reqs);
		free(qp->free_reqs);
		qp->reqs = NULL;
		qp->free_reqs = NULL;
		return -ENOMEM;
	}
	qp->num_reqs = num;
	for (uint32_t i = 0; i < num; i++) {
		struct nvmf_tcp_req *req = &qp->reqs[i];

		req->core.qp = &qp->core;
		req->qp = qp;
		req->ttag = (uint16_t)(i + 1);
		req->inline_buf = bufs + (size_t)i * tt->inline_size;
		qp->free_reqs[num - 1 - i] = req;
	}
	qp->num_free = num;
	return 0;
}

void nvmf_tcp_qpair_kick(struct nvmf_tcp_qpair *qp)
{
	if (!qp->dirty && qp->core.state != NVMF_QP_CLOSING) {
		qp->dirty = true;
		TAILQ_INSERT_TAIL(&qp->pg->dirty, qp, dirty_link);
	}
}

void nvmf_tcp_qpair_flush(struct nvmf_tcp_qpair *qp)
{
	int rc;

	if (qp->core.state == NVMF_QP_CLOSING)
		return;
	if (qp->ring != NULL) {
		nvmf_tcp_uring_flush(qp);
		return;
	}
	rc = mimo_tcp_sendq_flush(&qp->sq, &qp->sock);
	if (rc < 0) {
		MIMO_DEBUG(COMP, "%s:%s: send failed: %s", qp->core.traddr, qp->core.trsvcid,
			   strerror(-rc));
		qpair_close(qp);
		return;
	}
	if (qp->core.state == NVMF_QP_CLOSING)
		return; /* a send completion closed it (Disconnect) */
	if (rc == 1 && !qp->want_out) {
		qp->want_out = true;
		mimo_fd_watch_modify(qp->watch, EPOLLIN | EPOLLOUT);
	} else if (rc == 0 && qp->want_out) {
		qp->want_out = false;
		mimo_fd_watch_modify(qp->watch, EPOLLIN);
	}
}

static void rx_held_remove(struct nvmf_tcp_qpair *qp)
{
	if (qp->rx_held) {
		TAILQ_REMOVE(&qp->pg->rx_held, qp, rx_held_link);
		qp->rx_held = false;
	}
}

void nvmf_tcp_qpair_read(struct nvmf_tcp_qpair *qp)
{
	int rc;

	rx_held_remove(qp);
	rc = mimo_tcp_rx_read(&qp->rx, &qp->sock, &nvmf_tcp_rx_ops, qp);
	if (mimo_likely(rc >= 0) || qp->core.state == NVMF_QP_CLOSING) {
		/* TLS stopped at the turn's read with more in OpenSSL: the poll group reads it
		 * next turn (the socket may never say so). */
		if (mimo_unlikely(qp->rx.tls_held) && qp->core.state != NVMF_QP_CLOSING) {
			qp->rx_held = true;
			qp->held_turn = qp->pg->turn;
			TAILQ_INSERT_TAIL(&qp->pg->rx_held, qp, rx_held_link);
			atomic_fetch_add_explicit(&qp->tt->tls_reads_held, 1, memory_order_relaxed);
		}
		return;
	}
	if (rc == -EPROTO) {
		nvmf_tcp_qpair_terminate(qp, qp->rx.fes, qp->rx.fei);
		return;
	}
	if (rc == -ECONNRESET)
		MIMO_DEBUG(COMP, "%s:%s closed the connection", qp->core.traddr, qp->core.trsvcid);
	else if (rc == -ECONNABORTED && qp->sock.tls != NULL)
		MIMO_INFO(COMP, "%s:%s: %s; closing", qp->core.traddr, qp->core.trsvcid,
			  mimo_tls_error(qp->sock.tls));
	else
		MIMO_INFO(COMP, "%s:%s: %s; closing", qp->core.traddr, qp->core.trsvcid,
			  strerror(-rc));
	qpair_close(qp);
}

void nvmf_tcp_qpair_feed(struct nvmf_tcp_qpair *qp, const void *data, size_t len)
{
	int rc = mimo_tcp_rx_feed(&qp->rx, data, len, &nvmf_tcp_rx_ops, qp);

	if (mimo_likely(rc >= 0) || qp->core.state == NVMF_QP_CLOSING)
		return;
	if (rc == -EPROTO) {
		nvmf_tcp_qpair_terminate(qp, qp->rx.fes, qp->rx.fei);
		return;
	}
	MIMO_INFO(COMP, "%s:%s: %s; closing", qp->core.traddr, qp->core.trsvcid, strerror(-rc));
	qpair_close(qp);
}

static void qpair_event(void *arg, uint32_t events)
{
	struct nvmf_tcp_qpair *qp = arg;

	if (mimo_unlikely(qp->handshake != NULL)) {
		nvmf_tcp_tls_step(qp);
		return;
	}
	if (events & EPOLLOUT)
		nvmf_tcp_qpair_flush(qp);
	if (qp->core.state == NVMF_QP_CLOSING || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	/* Bytes held in OpenSSL: the poll group reads it this turn, once (the read takes from
	 * the socket as well). */
	if (qp->rx_held)
		return;
	nvmf_tcp_qpair_read(qp);
}

void nvmf_tcp_qpair_terminate(struct nvmf_tcp_qpair *qp, uint16_t fes, uint32_t fei)
{
	const void *hdr;
	uint32_t n = mimo_tcp_rx_error_hdr(&qp->rx, &hdr), len;

	MIMO_WARN(COMP, "%s:%s: protocol error in %s PDU (FES %u, field %u); terminating",
		  qp->core.traddr, qp->core.trsvcid, mimo_tcp_pdu_name(qp->rx.pdu.hdr.ch.pdu_type),
		  fes, fei);
	len = mimo_tcp_term_req_build(qp->term_hdr, MIMO_NVME_TCP_C2H_TERM_REQ, fes, fei, hdr, n);
	mimo_tcp_send_reset(&qp->send_term);
	mimo_tcp_send_add(&qp->send_term, qp->term_hdr, len);
	qp->send_term.done = NULL;
	mimo_tcp_sendq_push(&qp->sq, &qp->send_term);
	/* What was queued before goes first; whatever does not fit is lost with the link. With
	 * io_uring, only when no sendmsg is in flight: bytes must not overtake it. */
	if (qp->ring == NULL || !qp->send_busy)
		(void)mimo_tcp_sendq_flush(&qp->sq, &qp->sock);
	qpair_close(qp);
}

void nvmf_tcp_qpair_free_final(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_transport *tt = qp->tt;
	struct nvmf_tcp_port *port = mimo_container_of(qp->core.port, struct nvmf_tcp_port, core);

	if (qp->sock.fd >= 0)
		close(qp->sock.fd);
	qpair_free_mem(qp);
	conn_gone(tt, port);
}

static void tcp_qpair_free(struct nvmf_qpair *core)
{
	struct nvmf_tcp_qpair *qp = nvmf_tcp_qpair(core);

	nvmf_poll_group_remove(&qp->core);
	/* The kernel may still hold its buffers: the ring finishes this once it gave them. */
	if (qp->ring != NULL && nvmf_tcp_uring_free_later(qp))
		return;
	nvmf_tcp_qpair_free_final(qp);
}

static void qpair_close(struct nvmf_tcp_qpair *qp)
{
	if (qp->core.state == NVMF_QP_CLOSING)
		return;
	qp->core.state = NVMF_QP_CLOSING;
	unconnected_remove(qp);
	if (qp->ring != NULL)
		nvmf_tcp_uring_cancel(qp);
	else
		mimo_fd_watch_remove(&qp->watch);
	shutdown(qp->sock.fd, SHUT_RDWR);
	if (qp->dirty) {
		TAILQ_REMOVE(&qp->pg->dirty, qp, dirty_link);
		qp->dirty = false;
	}
	rx_held_remove(qp);
	/* Requests waiting on us, not on a bdev or the target's reactor, end now. */
	for (uint32_t i = 0; i < qp->num_reqs; i++) {
		struct nvmf_tcp_req *req = &qp->reqs[i];

		if (req->state == NVMF_REQ_NEED_BUF)
			STAILQ_REMOVE(&qp->pg->buf_waiters, req, nvmf_tcp_req, link);
		else if (req->state != NVMF_REQ_R2T && req->state != NVMF_REQ_RECV)
			continue;
		nvmf_tcp_req_release(req);
	}
	nvmf_qpair_drop_retries(&qp->core);
	/* PDUs the kernel is sending stay until its completion (tcp_uring.c drops them then). */
	if (qp->ring == NULL || !qp->send_busy)
		mimo_tcp_sendq_abort(&qp->sq);
	nvmf_qpair_leave_ctrlr(&qp->core);
	nvmf_qpair_try_free(&qp->core);
}

static void tcp_qpair_close(struct nvmf_qpair *qp)
{
	qpair_close(nvmf_tcp_qpair(qp));
}

void nvmf_tcp_qpair_close(struct nvmf_tcp_qpair *qp)
{
	qpair_close(qp);
}

/* --- ports --------------------------------------------------------------------------------- */

/* Past the listener's cap: accepted and closed at once, so the host sees a clean refusal
 * rather than a connection that hangs in the backlog. */
static void refuse(struct nvmf_tcp_port *port, int fd)
{
	uint64_t suppressed = 0;

	close(fd);
	port->refused++;
	if (mimo_ratelimit_allow(&g_refuse_rl, 1000000000LL, &suppressed))
		MIMO_WARN(COMP,
			  "%s:%s: %u connections already (max_connections_per_listener); "
			  "refusing more (%" PRIu64 " refused so far)",
			  port->core.addr.traddr, port->core.addr.trsvcid, port->nconns,
			  port->refused);
}

static enum mimo_sock_impl port_impl(const struct nvmf_tcp_port *port)
{
	return port->core.secure ? MIMO_SOCK_IMPL_SSL
	       : port->uring	 ? MIMO_SOCK_IMPL_URING
				 : MIMO_SOCK_IMPL_POSIX;
}

static void port_accept(void *arg, uint32_t events)
{
	struct nvmf_tcp_port *port = arg;
	struct nvmf_tcp_transport *tt =
		mimo_container_of(port->core.tt, struct nvmf_tcp_transport, core);

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct conn_msg *m;
		int one = 1, fd;
		uint32_t n;

		fd = accept4(port->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			char what[320];

			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN)
				return;
			snprintf(what, sizeof(what), "NVMe/TCP listener %s:%s",
				 port->core.addr.traddr, port->core.addr.trsvcid);
			if (!mimo_accept_backoff_failed(&port->backoff, port->watch, errno, what))
				MIMO_WARN(COMP, "accept on %s:%s: %s", port->core.addr.traddr,
					  port->core.addr.trsvcid, strerror(errno));
			return;
		}
		mimo_accept_backoff_ok(&port->backoff);
		if (port->nconns >= tt->max_conns) {
			refuse(port, fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* Its buffer sizes came from the listener (sock_impl_set_options). */
		mimo_sock_apply_connected(fd, port_impl(port));
		if (tt->core.opts.sock_priority != 0)
			setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &tt->core.opts.sock_priority,
				   sizeof(tt->core.opts.sock_priority));
		m = calloc(1, sizeof(*m));
		if (m == NULL) {
			close(fd);
			continue;
		}
		m->tt = tt;
		m->port = port;
		m->fd = fd;
		m->secure = port->core.secure;
		m->uring = port->uring;
		if (getnameinfo((struct sockaddr *)&ss, len, m->traddr, sizeof(m->traddr),
				m->trsvcid, sizeof(m->trsvcid),
				NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			snprintf(m->traddr, sizeof(m->traddr), "?");
		port->nconns++;
		n = nvmf_transport_qpair_counted(&tt->core);
		if (n > tt->qpairs_high)
			tt->qpairs_high = n;
		/* placement.c: the least loaded reactor, not round robin. */
		nvmf_msg(nvmf_tgt_place_qpair(tt->core.tgt), qpair_create, m);
	}
}

/* IPv4 or IPv6 (canonical case), port 4420 unless given. */
static int tcp_listen_addr_check(struct mimo_nvmf_listen_addr *a)
{
	if (a->adrfam[0] == '\0' || strcasecmp(a->adrfam, "IPv4") == 0)
		snprintf(a->adrfam, sizeof(a->adrfam), "IPv4");
	else if (strcasecmp(a->adrfam, "IPv6") == 0)
		snprintf(a->adrfam, sizeof(a->adrfam), "IPv6");
	else
		return -EINVAL;
	if (a->trsvcid[0] == '\0')
		snprintf(a->trsvcid, sizeof(a->trsvcid), "4420");
	return 0;
}

static int open_listener(struct mimo_nvmf_listen_addr *a, int backlog, enum mimo_sock_impl impl)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, one = 1, rc;

	if (strcasecmp(a->adrfam, "IPv4") == 0)
		hints.ai_family = AF_INET;
	else if (strcasecmp(a->adrfam, "IPv6") == 0)
		hints.ai_family = AF_INET6;
	else
		return -EINVAL;
	if (getaddrinfo(a->traddr, a->trsvcid, &hints, &ai) != 0 || ai == NULL)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Before listen(): the connections it accepts inherit the sizes, and the window scale
	 * offered in their SYN-ACK follows from them. */
	mimo_sock_apply_buffers(fd, impl);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		rc = -errno;
		freeaddrinfo(ai);
		close(fd);
		return rc;
	}
	freeaddrinfo(ai);
	/* Port 0 asked the kernel for one: report which. */
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		char port[8];

		if (getnameinfo((struct sockaddr *)&ss, len, NULL, 0, port, sizeof(port),
				NI_NUMERICSERV) == 0)
			snprintf(a->trsvcid, sizeof(a->trsvcid), "%s", port);
	}
	return fd;
}

/*
 * Whether a plain listener's connections go through io_uring: asked by its sock_impl, or by
 * the default (sock_set_default_impl). Asked by name where io_uring is unusable: refused (the
 * RPC said why already). By default only: epoll, said once.
 */
static int listen_uring(const struct mimo_nvmf_listener_opts *opts,
			const struct mimo_nvmf_listen_addr *addr, bool *uring)
{
	char why[160];

	*uring = opts->sock_impl == MIMO_NVMF_SOCK_IMPL_URING ||
		 (opts->sock_impl == MIMO_NVMF_SOCK_IMPL_DEFAULT &&
		  mimo_sock_get_default_impl() == MIMO_SOCK_IMPL_URING);
	if (!*uring || mimo_sock_uring_probe(why, sizeof(why)) == 0)
		return 0;
	*uring = false;
	if (opts->sock_impl == MIMO_NVMF_SOCK_IMPL_URING)
		return -EOPNOTSUPP;
	MIMO_WARN(COMP, "%s:%s: no io_uring (%s); its connections use epoll", addr->traddr,
		  addr->trsvcid, why);
	return 0;
}

static int tcp_listen(struct nvmf_transport *core, struct mimo_nvmf_listen_addr *addr,
		      const struct mimo_nvmf_listener_opts *opts, struct nvmf_port **out)
{
	struct nvmf_tcp_port *p;
	int fd, rc;

	if (opts->secure_channel) {
		rc = nvmf_tcp_tls_listen(mimo_container_of(core, struct nvmf_tcp_transport, core));
		if (rc != 0)
			return rc;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	if (!opts->secure_channel && listen_uring(opts, addr, &p->uring) != 0) {
		free(p);
		return -EOPNOTSUPP;
	}
	fd = open_listener(addr, (int)MIMO_MIN(core->opts.acceptor_backlog, (uint32_t)INT32_MAX),
			   opts->secure_channel ? MIMO_SOCK_IMPL_SSL
			   : p->uring		? MIMO_SOCK_IMPL_URING
						: MIMO_SOCK_IMPL_POSIX);
	if (fd < 0) {
		MIMO_ERR(COMP, "cannot listen on %s:%s: %s", addr->traddr, addr->trsvcid,
			 strerror(-fd));
		free(p);
		return fd;
	}
	p->fd = fd;
	rc = mimo_fd_watch_add(fd, EPOLLIN, port_accept, p, &p->watch);
	if (rc != 0) {
		close(fd);
		free(p);
		return rc;
	}
	*out = &p->core;
	return 0;
}

/* Stop listening. The struct stays while connections it accepted live: they count on it. */
static void tcp_stop_listen(struct nvmf_port *core)
{
	struct nvmf_tcp_port *p = mimo_container_of(core, struct nvmf_tcp_port, core);

	mimo_fd_watch_remove(&p->watch);
	close(p->fd);
	p->fd = -1;
	if (p->nconns == 0) {
		nvmf_port_unlink(core);
		free(p);
	}
}

/* --- teardown ------------------------------------------------------------------------------ */

struct gone_msg {
	struct nvmf_tcp_transport *tt;
	struct nvmf_tcp_port *port;
};

/* On the target's reactor, which owns the ports. */
static void conn_gone_here(void *arg)
{
	struct gone_msg *g = arg;
	struct nvmf_tcp_transport *tt = g->tt;
	struct nvmf_tcp_port *p = g->port;
	uint32_t left;

	free(g);
	if (--p->nconns == 0 && p->core.closed) {
		nvmf_port_unlink(&p->core);
		free(p);
	}
	/*
	 * Give what a storm of connections took back to the system once they are gone: the
	 * requests of thousands of queue pairs fragment the heap, and glibc only trims its top.
	 */
	left = atomic_load(&tt->core.num_qpairs) - 1;
	if (left < tt->qpairs_high / 2 && tt->qpairs_high >= 64) {
		malloc_trim(0);
		tt->qpairs_high = left;
		tt->trim_when_empty = true; /* what the survivors hold goes back at the end */
	}
	if (left == 0) {
		if (tt->trim_when_empty)
			malloc_trim(0);
		tt->trim_when_empty = false;
		tt->qpairs_high = 0;
	}
	nvmf_transport_qpair_gone(&tt->core);
}

/* A connection accepted on port is gone (from any reactor). */
static void conn_gone(struct nvmf_tcp_transport *tt, struct nvmf_tcp_port *port)
{
	struct gone_msg *g = malloc(sizeof(*g));

	if (g == NULL) {
		/* Cannot tell the port: its count stays one too high, which only refuses
		 * connections early. The transport's own count must stay right. */
		MIMO_ERR(COMP, "out of memory; a listener's connection count is off by one");
		nvmf_transport_qpair_gone(&tt->core);
		return;
	}
	g->tt = tt;
	g->port = port;
	nvmf_msg(tt->core.tgt->reactor, conn_gone_here, g);
}

static void tcp_free(struct nvmf_transport *core)
{
	struct nvmf_tcp_transport *tt = mimo_container_of(core, struct nvmf_tcp_transport, core);

	mimo_tls_ctx_free(tt->tls);
	free(tt);
}

/* --- what nvmf_get_transports shows beyond the options ------------------------------------- */

static void tcp_dump(const struct nvmf_transport *core, json_t *j, bool config)
{
	const struct nvmf_tcp_transport *tt =
		mimo_container_of(core, struct nvmf_tcp_transport, core);
	const struct mimo_nvmf_transport_opts *o = &core->opts;

	/* mimo's own options: saved only when set, so SPDK's rpc.py can replay a default
	 * configuration; always shown by nvmf_get_transports (with the cap in force). */
	if (!config || o->connect_timeout_ms != 10000)
		json_object_set_new(j, "connect_timeout_ms", json_integer(o->connect_timeout_ms));
	if (!config || o->max_connections_per_listener != 0)
		json_object_set_new(
			j, "max_connections_per_listener",
			json_integer(config ? o->max_connections_per_listener : tt->max_conns));
	if (!config) {
		json_object_set_new(j, "num_qpairs", json_integer(atomic_load(&core->num_qpairs)));
		json_object_set_new(j, "shared_buffers_allocated",
				    json_integer(atomic_load(&tt->shared_buffers)));
		/* Of num_qpairs, those whose bytes move through io_uring (sock_impl "uring"). */
		json_object_set_new(j, "num_uring_qpairs",
				    json_integer(atomic_load(&tt->uring_qpairs)));
		/* Since the start: connections a uring listener had served by epoll instead (their
		 * reactor had no ring), and TLS reads cut at the per-turn budget. */
		json_object_set_new(
			j, "num_uring_fallback_qpairs",
			json_integer((json_int_t)atomic_load(&tt->uring_fallback_qpairs)));
		json_object_set_new(j, "num_tls_reads_held",
				    json_integer((json_int_t)atomic_load(&tt->tls_reads_held)));
	}
}

const struct nvmf_transport_ops nvmf_tcp_ops = {
	.name = "TCP",
	.trtype = MIMO_NVMF_TRTYPE_TCP,
	.create = tcp_create,
	.free = tcp_free,
	.poll_group_create = tcp_poll_group_create,
	.poll_group_destroy = tcp_poll_group_destroy,
	.listen_addr_check = tcp_listen_addr_check,
	.listen = tcp_listen,
	.stop_listen = tcp_stop_listen,
	.listener_discover = nvmf_tcp_listener_discover,
	.queue_response = nvmf_tcp_queue_response,
	.qpair_close = tcp_qpair_close,
	.qpair_free = tcp_qpair_free,
	.qpair_connected = nvmf_tcp_qpair_connected,
	.dump = tcp_dump,
	.in_config = true,
};
