/*
 * The NVMe/TCP transport: listening ports (on the target's reactor), per-reactor poll groups,
 * queue pair life and output. What the PDUs mean is tcp_cmd.c's.
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

#include "log.h"
#include "nvmf_internal.h"
#include "tcp_internal.h"
#include "ticks.h"

#define COMP	     "nvmf_tcp"
#define ACCEPT_BATCH 32
/* How often the connect timeout is checked while connections wait for it. */
#define TIMEOUT_CHECK_US 100000

static struct mimo_ratelimit g_refuse_rl, g_timeout_rl, g_tls_rl;

void nvmf_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	/* Never a spin on a full ring: two reactors that filled each other's would livelock. */
	if (mimo_reactor_post(r, fn, arg) != 0)
		MIMO_ERR(COMP, "out of memory: a message between reactors is lost");
}

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

int nvmf_transport_create(struct nvmf_tgt *tgt, const struct mimo_nvmf_transport_opts *opts,
			  struct nvmf_transport **out)
{
	struct nvmf_transport *tt;

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
	tt->tgt = tgt;
	tt->opts = *opts;
	if (tt->opts.io_unit_size > tt->opts.max_io_size)
		tt->opts.io_unit_size = tt->opts.max_io_size;
	tt->inline_size = (MIMO_MAX(tt->opts.in_capsule_data_size, 4096u) + 4095) & ~4095u;
	tt->max_conns = opts->max_connections_per_listener != 0 ? opts->max_connections_per_listener
								: nvmf_tcp_max_conns_allowed();
	tt->connect_timeout_ticks =
		(uint64_t)tt->opts.connect_timeout_ms * mimo_get_ticks_hz() / 1000;
	TAILQ_INIT(&tt->ports);
	*out = tt;
	MIMO_INFO(COMP, "TCP transport: queue depth %u, admin %u, in-capsule %u, max I/O %u",
		  opts->max_queue_depth, opts->max_aq_depth, opts->in_capsule_data_size,
		  opts->max_io_size);
	return 0;
}

/* --- poll groups --------------------------------------------------------------------------- */

static int pg_poll(void *arg)
{
	struct nvmf_poll_group *pg = arg;
	struct nvmf_qpair *qp;
	int work = 0;

	if (mimo_unlikely(!STAILQ_EMPTY(&pg->retry))) {
		STAILQ_HEAD(, nvmf_req) now = STAILQ_HEAD_INITIALIZER(now);
		struct nvmf_req *req;

		STAILQ_CONCAT(&now, &pg->retry);
		while ((req = STAILQ_FIRST(&now)) != NULL) {
			STAILQ_REMOVE_HEAD(&now, link);
			req->state = NVMF_REQ_EXEC;
			nvmf_io_exec(req);
			work++;
		}
	}
	while ((qp = TAILQ_FIRST(&pg->dirty)) != NULL) {
		TAILQ_REMOVE(&pg->dirty, qp, dirty_link);
		qp->dirty = false;
		nvmf_tcp_qpair_flush(qp);
		work++;
	}
	return work;
}

static struct nvmf_poll_group *pg_get(struct nvmf_transport *tt)
{
	uint32_t idx = mimo_reactor_index(mimo_reactor_current());
	struct nvmf_poll_group *pg = tt->groups[idx];

	if (pg != NULL)
		return pg;
	pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		return NULL;
	pg->free_bufs = calloc(tt->opts.num_shared_buffers, sizeof(void *));
	/* Late: it sends what the completions of this turn queued, in this turn. */
	pg->poller = mimo_poller_register_late(pg_poll, pg);
	if (pg->free_bufs == NULL || pg->poller == NULL) {
		mimo_poller_unregister(&pg->poller);
		free(pg->free_bufs);
		free(pg);
		return NULL;
	}
	pg->tt = tt;
	pg->reactor = mimo_reactor_current();
	pg->reactor_index = idx;
	pg->max_free_bufs = MIMO_MIN(tt->opts.num_shared_buffers, tt->opts.buf_cache_size);
	TAILQ_INIT(&pg->qpairs);
	TAILQ_INIT(&pg->dirty);
	TAILQ_INIT(&pg->unconnected);
	STAILQ_INIT(&pg->buf_waiters);
	STAILQ_INIT(&pg->retry);
	tt->groups[idx] = pg;
	return pg;
}

void *nvmf_tcp_buf_get(struct nvmf_poll_group *pg)
{
	struct nvmf_transport *tt = pg->tt;
	unsigned int n;

	if (pg->num_free_bufs != 0)
		return pg->free_bufs[--pg->num_free_bufs];
	n = atomic_load_explicit(&tt->shared_buffers, memory_order_relaxed);
	do {
		if (n >= tt->opts.num_shared_buffers)
			return NULL;
	} while (!atomic_compare_exchange_weak(&tt->shared_buffers, &n, n + 1));
	return aligned_alloc(4096, (tt->opts.max_io_size + 4095) & ~4095u);
}

void nvmf_tcp_buf_put(struct nvmf_poll_group *pg, void *buf)
{
	struct nvmf_req *req = STAILQ_FIRST(&pg->buf_waiters);

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
	struct nvmf_transport *tt;
	struct nvmf_port *port;
	int fd;
	bool secure;
	uint16_t portid;
	char traddr[64];
	char trsvcid[8];
};

static void qpair_event(void *arg, uint32_t events);

static void qpair_free_mem(struct nvmf_qpair *qp)
{
	mimo_tls_free(qp->handshake);
	mimo_tls_free(qp->sock.tls);
	mimo_tcp_rx_fini(&qp->rx);
	if (qp->reqs != NULL)
		free(qp->reqs[0].inline_buf);
	free(qp->reqs);
	free(qp->free_reqs);
	free(qp);
}

static void conn_gone(struct nvmf_transport *tt, struct nvmf_port *port);
static void qpair_close(struct nvmf_qpair *qp);

/* --- the connect timeout ------------------------------------------------------------------- */

static void unconnected_remove(struct nvmf_qpair *qp)
{
	struct nvmf_poll_group *pg = qp->pg;

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
	struct nvmf_poll_group *pg = arg;
	uint64_t now = mimo_get_ticks(), suppressed = 0;
	struct nvmf_qpair *qp;
	int closed = 0;

	while ((qp = TAILQ_FIRST(&pg->unconnected)) != NULL &&
	       now - qp->accepted_ticks >= pg->tt->connect_timeout_ticks) {
		/* A Connect the target's reactor is deciding is left to finish. */
		if (qp->state == NVMF_QP_CONNECTING) {
			unconnected_remove(qp);
			continue;
		}
		if (mimo_ratelimit_allow(&g_timeout_rl, 1000000000LL, &suppressed))
			MIMO_WARN(COMP,
				  "%s:%s sent no %s within %u ms; closing the connection "
				  "(%" PRIu64 " more such)",
				  qp->traddr, qp->trsvcid,
				  qp->state == NVMF_QP_TLS_HANDSHAKE ? "TLS handshake"
				  : qp->state == NVMF_QP_AWAIT_IC    ? "ICReq"
				  : qp->state == NVMF_QP_AUTHENTICATING
					  ? "successful authentication"
					  : "Connect",
				  pg->tt->opts.connect_timeout_ms, suppressed);
		qpair_close(qp); /* takes it off the list */
		closed++;
	}
	return closed;
}

static int unconnected_add(struct nvmf_qpair *qp)
{
	struct nvmf_poll_group *pg = qp->pg;

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
	unconnected_remove(qp);
}

/* The handshake asks which PSK a client's identity names (on this queue pair's reactor). */
static int qpair_psk_lookup(void *arg, const struct mimo_tls_identity *id,
			    uint8_t retained[MIMO_TLS_PSK_MAX], size_t *len)
{
	struct nvmf_qpair *qp = arg;

	return nvmf_tgt_psk_lookup(qp->tt->tgt, id, retained, len);
}

/*
 * A new connection costs only its queue pair and a header's worth of staging until it has
 * sent an ICReq (nvmf_tcp_qpair_alloc_reqs): thousands of idle connections must not cost
 * their requests' memory.
 */
static void qpair_create(void *arg)
{
	struct conn_msg *m = arg;
	struct nvmf_transport *tt = m->tt;
	struct nvmf_poll_group *pg = NULL;
	struct nvmf_qpair *qp = NULL;

	if (atomic_load(&tt->destroying))
		goto fail;
	pg = pg_get(tt);
	qp = calloc(1, sizeof(*qp));
	if (pg == NULL || qp == NULL)
		goto fail;
	if (mimo_tcp_rx_init_small(&qp->rx, false,
				   MIMO_MAX(MIMO_MAX(tt->opts.io_unit_size, NVMF_ADMIN_ICD),
					    tt->opts.in_capsule_data_size)) != 0)
		goto fail;
	qp->tt = tt;
	qp->pg = pg;
	qp->sock.fd = m->fd;
	qp->port = m->port;
	qp->portid = m->portid;
	qp->state = NVMF_QP_AWAIT_IC;
	if (m->secure) {
		qp->handshake = mimo_tls_new(tt->tls, m->fd, qpair_psk_lookup, qp);
		if (qp->handshake == NULL) {
			mimo_tcp_rx_fini(&qp->rx);
			goto fail;
		}
		qp->state = NVMF_QP_TLS_HANDSHAKE;
	}
	qp->maxh2cdata = tt->opts.io_unit_size;
	memcpy(qp->traddr, m->traddr, sizeof(qp->traddr));
	memcpy(qp->trsvcid, m->trsvcid, sizeof(qp->trsvcid));
	mimo_tcp_sendq_init(&qp->sq);
	if (unconnected_add(qp) != 0) {
		mimo_tls_free(qp->handshake);
		mimo_tcp_rx_fini(&qp->rx);
		goto fail;
	}
	if (mimo_fd_watch_add(qp->sock.fd, EPOLLIN, qpair_event, qp, &qp->watch) != 0) {
		unconnected_remove(qp);
		mimo_tls_free(qp->handshake);
		mimo_tcp_rx_fini(&qp->rx);
		goto fail;
	}
	TAILQ_INSERT_TAIL(&pg->qpairs, qp, link);
	MIMO_DEBUG(COMP, "connection from %s:%s on reactor %u", qp->traddr, qp->trsvcid,
		   pg->reactor_index);
	free(m);
	return;
fail:
	free(qp);
	close(m->fd);
	conn_gone(tt, m->port);
	free(m);
}

int nvmf_tcp_qpair_alloc_reqs(struct nvmf_qpair *qp)
{
	struct nvmf_transport *tt = qp->tt;
	uint32_t num = MIMO_MAX(tt->opts.max_queue_depth, tt->opts.max_aq_depth);
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
		struct nvmf_req *req = &qp->reqs[i];

		req->qp = qp;
		req->ttag = (uint16_t)(i + 1);
		req->inline_buf = bufs + (size_t)i * tt->inline_size;
		qp->free_reqs[num - 1 - i] = req;
	}
	qp->num_free = num;
	return 0;
}

struct mimo_reactor *nvmf_qpair_reactor(const struct nvmf_qpair *qp)
{
	return qp->pg->reactor;
}

void nvmf_tcp_qpair_kick(struct nvmf_qpair *qp)
{
	if (!qp->dirty && qp->state != NVMF_QP_CLOSING) {
		qp->dirty = true;
		TAILQ_INSERT_TAIL(&qp->pg->dirty, qp, dirty_link);
	}
}

static void qpair_close(struct nvmf_qpair *qp);

void nvmf_tcp_qpair_flush(struct nvmf_qpair *qp)
{
	int rc;

	if (qp->state == NVMF_QP_CLOSING)
		return;
	rc = mimo_tcp_sendq_flush(&qp->sq, &qp->sock);
	if (rc < 0) {
		MIMO_DEBUG(COMP, "%s:%s: send failed: %s", qp->traddr, qp->trsvcid, strerror(-rc));
		qpair_close(qp);
		return;
	}
	if (qp->state == NVMF_QP_CLOSING)
		return; /* a send completion closed it (Disconnect) */
	if (rc == 1 && !qp->want_out) {
		qp->want_out = true;
		mimo_fd_watch_modify(qp->watch, EPOLLIN | EPOLLOUT);
	} else if (rc == 0 && qp->want_out) {
		qp->want_out = false;
		mimo_fd_watch_modify(qp->watch, EPOLLIN);
	}
}

static void qpair_read(struct nvmf_qpair *qp)
{
	int rc = mimo_tcp_rx_read(&qp->rx, &qp->sock, &nvmf_tcp_rx_ops, qp);

	if (mimo_likely(rc >= 0) || qp->state == NVMF_QP_CLOSING)
		return;
	if (rc == -EPROTO) {
		nvmf_tcp_qpair_terminate(qp, qp->rx.fes, qp->rx.fei);
		return;
	}
	if (rc == -ECONNRESET)
		MIMO_DEBUG(COMP, "%s:%s closed the connection", qp->traddr, qp->trsvcid);
	else if (rc == -ECONNABORTED && qp->sock.tls != NULL)
		MIMO_INFO(COMP, "%s:%s: %s; closing", qp->traddr, qp->trsvcid,
			  mimo_tls_error(qp->sock.tls));
	else
		MIMO_INFO(COMP, "%s:%s: %s; closing", qp->traddr, qp->trsvcid, strerror(-rc));
	qpair_close(qp);
}

/* A secure port's connection: TLS 1.3 with a PSK before any PDU (NVMe/TCP's secure channel);
 * anything else - plain NVMe/TCP, an identity no host has, a wrong key - closes it. */
static void handshake_step(struct nvmf_qpair *qp)
{
	const struct mimo_tls_identity *id;
	uint64_t suppressed = 0;
	bool want_write;
	int rc = mimo_tls_handshake(qp->handshake, &want_write);

	if (rc == -EAGAIN) {
		if (want_write != qp->want_out) {
			qp->want_out = want_write;
			mimo_fd_watch_modify(qp->watch, want_write ? EPOLLIN | EPOLLOUT : EPOLLIN);
		}
		return;
	}
	if (rc != 0) {
		if (mimo_ratelimit_allow(&g_tls_rl, 1000000000LL, &suppressed))
			MIMO_WARN(
				COMP,
				"%s:%s: TLS handshake on secure listener %s:%s failed: %s; closing "
				"(%" PRIu64 " more such)",
				qp->traddr, qp->trsvcid, qp->port->addr.traddr,
				qp->port->addr.trsvcid, mimo_tls_error(qp->handshake), suppressed);
		qpair_close(qp);
		return;
	}
	qp->sock.tls = qp->handshake;
	qp->handshake = NULL;
	qp->state = NVMF_QP_AWAIT_IC;
	id = mimo_tls_peer_identity(qp->sock.tls);
	MIMO_DEBUG(COMP, "%s:%s: TLS 1.3 (%s), PSK of host %s for %s", qp->traddr, qp->trsvcid,
		   mimo_tls_cipher(qp->sock.tls), id->hostnqn, id->subnqn);
	if (qp->want_out) {
		qp->want_out = false;
		mimo_fd_watch_modify(qp->watch, EPOLLIN);
	}
	/* The ICReq may have come with the handshake's last flight: OpenSSL holds it already,
	 * and the socket will not say so again. */
	qpair_read(qp);
}

static void qpair_event(void *arg, uint32_t events)
{
	struct nvmf_qpair *qp = arg;

	if (mimo_unlikely(qp->state == NVMF_QP_TLS_HANDSHAKE)) {
		handshake_step(qp);
		return;
	}
	if (events & EPOLLOUT)
		nvmf_tcp_qpair_flush(qp);
	if (qp->state == NVMF_QP_CLOSING || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	qpair_read(qp);
}

void nvmf_tcp_qpair_terminate(struct nvmf_qpair *qp, uint16_t fes, uint32_t fei)
{
	const void *hdr;
	uint32_t n = mimo_tcp_rx_error_hdr(&qp->rx, &hdr), len;

	MIMO_WARN(COMP, "%s:%s: protocol error in %s PDU (FES %u, field %u); terminating",
		  qp->traddr, qp->trsvcid, mimo_tcp_pdu_name(qp->rx.pdu.hdr.ch.pdu_type), fes, fei);
	len = mimo_tcp_term_req_build(qp->term_hdr, MIMO_NVME_TCP_C2H_TERM_REQ, fes, fei, hdr, n);
	mimo_tcp_send_reset(&qp->send_term);
	mimo_tcp_send_add(&qp->send_term, qp->term_hdr, len);
	qp->send_term.done = NULL;
	mimo_tcp_sendq_push(&qp->sq, &qp->send_term);
	/* What was queued before goes first; whatever does not fit is lost with the link. */
	(void)mimo_tcp_sendq_flush(&qp->sq, &qp->sock);
	qpair_close(qp);
}

static void qpair_free(void *arg)
{
	struct nvmf_qpair *qp = arg;
	struct nvmf_transport *tt = qp->tt;
	struct nvmf_port *port = qp->port;

	TAILQ_REMOVE(&qp->pg->qpairs, qp, link);
	if (qp->sock.fd >= 0)
		close(qp->sock.fd);
	qpair_free_mem(qp);
	conn_gone(tt, port);
}

void nvmf_tcp_qpair_try_free(struct nvmf_qpair *qp)
{
	if (qp->state != NVMF_QP_CLOSING || qp->outstanding != 0 || !qp->ctrlr_released ||
	    qp->connect_pending || qp->free_scheduled)
		return;
	/* Later, so no caller up the stack still holds it. */
	qp->free_scheduled = true;
	nvmf_msg(qp->pg->reactor, qpair_free, qp);
}

static void ctrlr_qpair_gone_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;

	nvmf_ctrlr_qpair_gone(qp->ctrlr, qp);
}

/* Tell the controller (if any) that this queue pair is gone. */
void nvmf_tcp_qpair_leave_ctrlr(struct nvmf_qpair *qp)
{
	if (qp->ctrlr != NULL)
		nvmf_msg(qp->tt->tgt->reactor, ctrlr_qpair_gone_msg, qp);
	else if (!qp->connect_pending)
		qp->ctrlr_released = true;
}

static void qpair_close(struct nvmf_qpair *qp)
{
	if (qp->state == NVMF_QP_CLOSING)
		return;
	qp->state = NVMF_QP_CLOSING;
	unconnected_remove(qp);
	mimo_fd_watch_remove(&qp->watch);
	shutdown(qp->sock.fd, SHUT_RDWR);
	if (qp->dirty) {
		TAILQ_REMOVE(&qp->pg->dirty, qp, dirty_link);
		qp->dirty = false;
	}
	/* Requests waiting on us, not on a bdev or the target's reactor, end now. */
	for (uint32_t i = 0; i < qp->num_reqs; i++) {
		struct nvmf_req *req = &qp->reqs[i];

		if (req->state == NVMF_REQ_NEED_BUF)
			STAILQ_REMOVE(&qp->pg->buf_waiters, req, nvmf_req, link);
		else if (req->state == NVMF_REQ_RETRY)
			STAILQ_REMOVE(&qp->pg->retry, req, nvmf_req, link);
		else if (req->state != NVMF_REQ_R2T && req->state != NVMF_REQ_RECV)
			continue;
		nvmf_tcp_req_release(req);
	}
	mimo_tcp_sendq_abort(&qp->sq);
	nvmf_tcp_qpair_leave_ctrlr(qp);
	nvmf_tcp_qpair_try_free(qp);
}

static void disconnect_msg(void *arg)
{
	qpair_close(arg);
}

void nvmf_qpair_disconnect(struct nvmf_qpair *qp)
{
	if (mimo_reactor_current() == qp->pg->reactor)
		qpair_close(qp);
	else
		nvmf_msg(qp->pg->reactor, disconnect_msg, qp);
}

void nvmf_tcp_qpair_close(struct nvmf_qpair *qp)
{
	qpair_close(qp);
}

static void released_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;

	qp->ctrlr_released = true;
	nvmf_tcp_qpair_try_free(qp);
}

void nvmf_qpair_ctrlr_released(struct nvmf_qpair *qp)
{
	nvmf_msg(qp->pg->reactor, released_msg, qp);
}

/* --- ports --------------------------------------------------------------------------------- */

/* Past the listener's cap: accepted and closed at once, so the host sees a clean refusal
 * rather than a connection that hangs in the backlog. */
static void refuse(struct nvmf_port *port, int fd)
{
	uint64_t suppressed = 0;

	close(fd);
	port->refused++;
	if (mimo_ratelimit_allow(&g_refuse_rl, 1000000000LL, &suppressed))
		MIMO_WARN(COMP,
			  "%s:%s: %u connections already (max_connections_per_listener); "
			  "refusing more (%" PRIu64 " refused so far)",
			  port->addr.traddr, port->addr.trsvcid, port->nconns, port->refused);
}

static void port_accept(void *arg, uint32_t events)
{
	struct nvmf_port *port = arg;
	struct nvmf_transport *tt = port->tt;

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
			snprintf(what, sizeof(what), "NVMe/TCP listener %s:%s", port->addr.traddr,
				 port->addr.trsvcid);
			if (!mimo_accept_backoff_failed(&port->backoff, port->watch, errno, what))
				MIMO_WARN(COMP, "accept on %s:%s: %s", port->addr.traddr,
					  port->addr.trsvcid, strerror(errno));
			return;
		}
		mimo_accept_backoff_ok(&port->backoff);
		if (port->nconns >= tt->max_conns) {
			refuse(port, fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (tt->opts.sock_priority != 0)
			setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &tt->opts.sock_priority,
				   sizeof(tt->opts.sock_priority));
		m = calloc(1, sizeof(*m));
		if (m == NULL) {
			close(fd);
			continue;
		}
		m->tt = tt;
		m->port = port;
		m->fd = fd;
		m->secure = port->secure;
		m->portid = port->portid;
		if (getnameinfo((struct sockaddr *)&ss, len, m->traddr, sizeof(m->traddr),
				m->trsvcid, sizeof(m->trsvcid),
				NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			snprintf(m->traddr, sizeof(m->traddr), "?");
		port->nconns++;
		n = atomic_fetch_add(&tt->num_qpairs, 1) + 1;
		if (n > tt->qpairs_high)
			tt->qpairs_high = n;
		nvmf_msg(nvmf_tgt_next_reactor(tt->tgt), qpair_create, m);
	}
}

static void addr_defaults(struct mimo_nvmf_listen_addr *a)
{
	if (a->adrfam[0] == '\0')
		snprintf(a->adrfam, sizeof(a->adrfam), "IPv4");
	if (a->trsvcid[0] == '\0')
		snprintf(a->trsvcid, sizeof(a->trsvcid), "4420");
}

struct nvmf_port *nvmf_port_find(struct nvmf_transport *tt,
				 const struct mimo_nvmf_listen_addr *addr)
{
	struct mimo_nvmf_listen_addr a = *addr;
	struct nvmf_port *p;

	addr_defaults(&a);
	TAILQ_FOREACH(p, &tt->ports, link)
	{
		if (!p->closed && strcasecmp(p->addr.adrfam, a.adrfam) == 0 &&
		    strcmp(p->addr.traddr, a.traddr) == 0 &&
		    strcmp(p->addr.trsvcid, a.trsvcid) == 0)
			return p;
	}
	return NULL;
}

struct nvmf_port *nvmf_port_by_id(struct nvmf_transport *tt, uint16_t portid)
{
	struct nvmf_port *p;

	TAILQ_FOREACH(p, &tt->ports, link)
	{
		if (!p->closed && p->portid == portid)
			return p;
	}
	return NULL;
}

static bool portid_in_use(struct nvmf_transport *tt, uint16_t id)
{
	struct nvmf_port *p;

	/* Closed ports whose connections live on keep their ID: it names them in logs. */
	TAILQ_FOREACH(p, &tt->ports, link)
	{
		if (p->portid == id)
			return true;
	}
	return false;
}

static uint16_t alloc_portid(struct nvmf_transport *tt)
{
	for (;;) {
		uint16_t id = ++tt->next_portid;

		if (id != 0 && !portid_in_use(tt, id))
			return id;
	}
}

static int open_listener(struct mimo_nvmf_listen_addr *a, int backlog)
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

int nvmf_port_get(struct nvmf_transport *tt, struct mimo_nvmf_listen_addr *addr, bool secure,
		  struct nvmf_port **out)
{
	struct nvmf_port *p;
	int fd, rc;

	addr_defaults(addr);
	p = nvmf_port_find(tt, addr);
	if (p != NULL) {
		/* One port is TLS or plain for every subsystem on it: which it is shows before
		 * the first PDU, the subsystem only at Connect. */
		if (p->secure != secure)
			return -EPROTOTYPE;
		p->refs++;
		*out = p;
		return 0;
	}
	if (secure && tt->tls == NULL) {
		tt->tls = mimo_tls_server_ctx_new();
		if (tt->tls == NULL)
			return -ENOMEM;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	fd = open_listener(addr, (int)MIMO_MIN(tt->opts.acceptor_backlog, (uint32_t)INT32_MAX));
	if (fd < 0) {
		MIMO_ERR(COMP, "cannot listen on %s:%s: %s", addr->traddr, addr->trsvcid,
			 strerror(-fd));
		free(p);
		return fd;
	}
	p->addr = *addr;
	snprintf(p->addr.trtype, sizeof(p->addr.trtype), "TCP");
	snprintf(p->addr.adrfam, sizeof(p->addr.adrfam), "%s",
		 strcasecmp(addr->adrfam, "IPv6") == 0 ? "IPv6" : "IPv4");
	p->tt = tt;
	p->fd = fd;
	p->secure = secure;
	p->refs = 1;
	p->portid = alloc_portid(tt);
	rc = mimo_fd_watch_add(fd, EPOLLIN, port_accept, p, &p->watch);
	if (rc != 0) {
		close(fd);
		free(p);
		return rc;
	}
	TAILQ_INSERT_TAIL(&tt->ports, p, link);
	*out = p;
	return 0;
}

/* Stop listening. The struct stays while connections it accepted live: they count on it. */
static void port_close(struct nvmf_port *p)
{
	if (p->closed)
		return;
	p->closed = true;
	mimo_fd_watch_remove(&p->watch);
	close(p->fd);
	p->fd = -1;
	if (p->nconns == 0) {
		TAILQ_REMOVE(&p->tt->ports, p, link);
		free(p);
	}
}

void nvmf_port_put(struct nvmf_port *p)
{
	if (--p->refs == 0)
		port_close(p);
}

/* --- teardown ------------------------------------------------------------------------------ */

static void destroy_done(void *arg)
{
	struct nvmf_transport *tt = arg;
	void (*cb)(void *) = tt->destroy_cb;
	void *cb_arg = tt->destroy_arg;

	mimo_tls_ctx_free(tt->tls);
	free(tt);
	if (cb != NULL)
		cb(cb_arg);
}

static void group_destroyed(void *arg)
{
	struct nvmf_transport *tt = arg;

	if (atomic_fetch_sub(&tt->groups_left, 1) == 1)
		destroy_done(tt);
}

static void group_destroy_here(void *arg)
{
	struct nvmf_transport *tt = arg;
	uint32_t idx = mimo_reactor_index(mimo_reactor_current());
	struct nvmf_poll_group *pg = tt->groups[idx];

	if (pg != NULL) {
		mimo_poller_unregister(&pg->poller);
		while (pg->num_free_bufs != 0)
			free(pg->free_bufs[--pg->num_free_bufs]);
		free(pg->free_bufs);
		free(pg);
		tt->groups[idx] = NULL;
	}
	nvmf_msg(tt->tgt->reactor, group_destroyed, tt);
}

/* Every queue pair is gone: the poll groups go, each on its reactor. */
static void destroy_groups(void *arg)
{
	struct nvmf_transport *tt = arg;
	uint32_t n = mimo_reactor_count();

	atomic_store(&tt->groups_left, n);
	for (uint32_t i = 0; i < n; i++)
		nvmf_msg(mimo_reactor_get(i), group_destroy_here, tt);
}

static void conn_dropped(struct nvmf_transport *tt)
{
	if (atomic_fetch_sub(&tt->num_qpairs, 1) == 1 && atomic_load(&tt->destroying))
		nvmf_msg(tt->tgt->reactor, destroy_groups, tt);
}

struct gone_msg {
	struct nvmf_transport *tt;
	struct nvmf_port *port;
};

/* On the target's reactor, which owns the ports. */
static void conn_gone_here(void *arg)
{
	struct gone_msg *g = arg;
	struct nvmf_transport *tt = g->tt;
	struct nvmf_port *p = g->port;
	uint32_t left;

	free(g);
	if (--p->nconns == 0 && p->closed) {
		TAILQ_REMOVE(&tt->ports, p, link);
		free(p);
	}
	/*
	 * Give what a storm of connections took back to the system once they are gone: the
	 * requests of thousands of queue pairs fragment the heap, and glibc only trims its top.
	 */
	left = atomic_load(&tt->num_qpairs) - 1;
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
	conn_dropped(tt);
}

/* A connection accepted on port is gone (from any reactor). */
static void conn_gone(struct nvmf_transport *tt, struct nvmf_port *port)
{
	struct gone_msg *g = malloc(sizeof(*g));

	if (g == NULL) {
		/* Cannot tell the port: its count stays one too high, which only refuses
		 * connections early. The transport's own count must stay right. */
		MIMO_ERR(COMP, "out of memory; a listener's connection count is off by one");
		conn_dropped(tt);
		return;
	}
	g->tt = tt;
	g->port = port;
	nvmf_msg(tt->tgt->reactor, conn_gone_here, g);
}

static void close_all_here(void *arg)
{
	struct nvmf_transport *tt = arg;
	struct nvmf_poll_group *pg = tt->groups[mimo_reactor_index(mimo_reactor_current())];
	struct nvmf_qpair *qp;

	if (pg == NULL)
		return;
	/* Closing frees nothing at once, so the list stays as it is during the walk. */
	TAILQ_FOREACH(qp, &pg->qpairs, link)
	qpair_close(qp);
}

void nvmf_transport_destroy(struct nvmf_transport *tt, void (*cb)(void *arg), void *arg)
{
	struct nvmf_port *p, *next;

	tt->destroy_cb = cb;
	tt->destroy_arg = arg;
	for (p = TAILQ_FIRST(&tt->ports); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		port_close(p);
	}
	/* One count for ourselves, so the last queue pair cannot finish before we asked. */
	atomic_fetch_add(&tt->num_qpairs, 1);
	atomic_store(&tt->destroying, true);
	for (uint32_t i = 0; i < mimo_reactor_count(); i++)
		nvmf_msg(mimo_reactor_get(i), close_all_here, tt);
	conn_dropped(tt);
}
