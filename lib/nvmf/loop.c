/*
 * The loop transport (as the Linux kernel's nvme-loop): hosts in this process reach the core
 * without a network. A listener is a name in the loop registry (lib/nvme_loop); the
 * initiator's loop queue pairs (lib/nvme/loop.c) open queues on it.
 *
 * A queue is shared by both ends and freed when both let go (refs). Its requests map one to
 * one to the host's command slots, and each owns a data buffer: submit copies the host's data
 * in on the host's thread while the slot is the host's, the core runs the command on the
 * queue's reactor, queue_response puts the request on the done list and the host copies the
 * data out when it reaps. So the target never writes into a host buffer, and a host that
 * gives up on a queue leaves nothing of its own behind in the target.
 *
 * Every host call that reaches the queue's reactor is a message holding a reference; a
 * message that finds the target's end already gone only drops it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "nvme_loop.h"
#include "transport.h"

#define COMP "nvmf_loop"

struct nvmf_loop_transport {
	struct nvmf_transport core;
};

struct nvmf_loop_port {
	struct nvmf_port core;
	uint32_t nconns; /* queues created on it and not yet freed (target's reactor) */
};

struct nvmf_loop_req {
	struct nvmf_req core;
	struct nvmf_loop_qpair *qp;
	uint8_t *buf; /* the command's data, both ways */
	uint32_t cap;
	uint32_t len;  /* the host's SGL length */
	bool too_long; /* more than max_io_size: refused, not copied */
	STAILQ_ENTRY(nvmf_loop_req) done_link;
};

struct nvmf_loop_qpair {
	struct nvme_loop_queue host; /* what the initiator holds */
	struct nvmf_qpair core;
	struct nvmf_loop_transport *tt;
	struct nvmf_loop_port *port;
	struct mimo_reactor *reactor;
	struct nvmf_loop_req *reqs;
	uint32_t num_reqs;
	atomic_int refs; /* the host's, the target's, one per message under way */
	/* Between the ends: */
	pthread_mutex_t lock;
	STAILQ_HEAD(, nvmf_loop_req) done; /* completions the host has not reaped */
	bool closed;			   /* the target closed its end */
	bool host_gone;
	int efd; /* readable while done is not empty (or closed) */
	/* The queue's reactor's: */
	bool attached;	  /* in its poll group */
	bool target_gone; /* the target's end is freed: messages only drop their reference */
};

static const struct nvme_loop_queue_ops g_queue_ops;

static struct nvmf_loop_transport *loop_tt(struct nvmf_transport *core)
{
	return mimo_container_of(core, struct nvmf_loop_transport, core);
}

static struct nvmf_loop_qpair *loop_qp(struct nvmf_qpair *core)
{
	return mimo_container_of(core, struct nvmf_loop_qpair, core);
}

static void put_ref(struct nvmf_loop_qpair *qp)
{
	if (atomic_fetch_sub(&qp->refs, 1) != 1)
		return;
	for (uint32_t i = 0; i < qp->num_reqs; i++)
		free(qp->reqs[i].buf);
	free(qp->reqs);
	close(qp->efd);
	pthread_mutex_destroy(&qp->lock);
	free(qp);
}

/* Wake a host waiting in poll(2) on the queue's fd. Under the lock. */
static void signal_host(struct nvmf_loop_qpair *qp)
{
	uint64_t one = 1;

	if (write(qp->efd, &one, sizeof(one)) < 0) {
		/* The counter is non-zero already: the host will look. */
	}
}

/* --- poll groups: the core's, nothing of the loop's own ------------------------------------ */

static struct nvmf_poll_group *loop_poll_group_create(struct nvmf_transport *tt)
{
	(void)tt;
	return calloc(1, sizeof(struct nvmf_poll_group));
}

static void loop_poll_group_destroy(struct nvmf_poll_group *pg)
{
	free(pg);
}

/* --- the target's end of a queue, on its reactor ------------------------------------------- */

static void qpair_close(struct nvmf_qpair *core);
static void target_end_gone(struct nvmf_loop_qpair *qp);

/* The first message on the queue's reactor joins it to the reactor's poll group. */
static bool attach(struct nvmf_loop_qpair *qp)
{
	struct nvmf_poll_group *g;

	if (qp->attached)
		return true;
	g = nvmf_poll_group_get(&qp->tt->core);
	if (g == NULL) {
		MIMO_ERR(COMP, "out of memory for a poll group: a loop queue is refused");
		pthread_mutex_lock(&qp->lock);
		qp->closed = true;
		signal_host(qp);
		pthread_mutex_unlock(&qp->lock);
		target_end_gone(qp);
		return false;
	}
	nvmf_poll_group_add(g, &qp->core);
	qp->attached = true;
	if (atomic_load(&qp->tt->core.destroying))
		qpair_close(&qp->core);
	return true;
}

static void attach_msg(void *arg)
{
	struct nvmf_loop_qpair *qp = arg;

	if (!qp->target_gone)
		attach(qp);
	put_ref(qp);
}

static void exec_msg(void *arg)
{
	struct nvmf_loop_req *req = arg;
	struct nvmf_loop_qpair *qp = req->qp;
	int dir;

	if (qp->target_gone || !attach(qp) || qp->core.state == NVMF_QP_CLOSING) {
		put_ref(qp);
		return;
	}
	qp->core.outstanding++;
	dir = nvmf_req_init(&req->core, false);
	if (dir > 0 && req->too_long) {
		nvmf_req_fail(&req->core, MIMO_NVME_SCT_GENERIC,
			      MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
	} else if (dir >= 0) {
		req->core.data = dir > 0 ? req->buf : NULL;
		req->core.data_len = dir > 0 ? req->len : 0;
		nvmf_req_exec(&req->core);
	}
	put_ref(qp);
}

static void queue_response(struct nvmf_req *core)
{
	struct nvmf_loop_req *req = mimo_container_of(core, struct nvmf_loop_req, core);
	struct nvmf_loop_qpair *qp = req->qp;

	free(core->aux);
	core->aux = NULL;
	/* From here on the request is the host's: it reads the buffer and cpl when it reaps,
	 * and its slot keeps the request from being used again until then. Nothing below
	 * touches the request; the queue's memory stays while the host holds it. */
	if (mimo_likely(qp->core.state != NVMF_QP_CLOSING)) {
		pthread_mutex_lock(&qp->lock);
		if (!qp->host_gone) {
			if (STAILQ_EMPTY(&qp->done))
				signal_host(qp);
			STAILQ_INSERT_TAIL(&qp->done, req, done_link);
		}
		pthread_mutex_unlock(&qp->lock);
	}
	qp->core.outstanding--;
	if (mimo_unlikely(qp->core.state == NVMF_QP_CLOSING))
		nvmf_qpair_try_free(&qp->core);
	else if (mimo_unlikely(qp->core.close_after_send))
		qpair_close(&qp->core); /* Disconnect answered, authentication failed */
}

static void qpair_close(struct nvmf_qpair *core)
{
	struct nvmf_loop_qpair *qp = loop_qp(core);

	if (core->state == NVMF_QP_CLOSING)
		return;
	core->state = NVMF_QP_CLOSING;
	pthread_mutex_lock(&qp->lock);
	qp->closed = true;
	signal_host(qp);
	pthread_mutex_unlock(&qp->lock);
	nvmf_qpair_drop_retries(core);
	nvmf_qpair_leave_ctrlr(core);
	nvmf_qpair_try_free(core);
}

struct gone_msg {
	struct nvmf_loop_transport *tt;
	struct nvmf_loop_port *port;
};

/* On the target's reactor, which owns the ports. */
static void conn_gone_here(void *arg)
{
	struct gone_msg *g = arg;

	if (__atomic_sub_fetch(&g->port->nconns, 1, __ATOMIC_RELAXED) == 0 &&
	    g->port->core.closed) {
		nvmf_port_unlink(&g->port->core);
		free(g->port);
	}
	nvmf_transport_qpair_gone(&g->tt->core);
	free(g);
}

/* The target's end goes (the host's may stay): its listener and transport stop counting it. */
static void target_end_gone(struct nvmf_loop_qpair *qp)
{
	struct nvmf_loop_transport *tt = qp->tt;
	struct gone_msg *g = malloc(sizeof(*g));

	qp->target_gone = true;
	if (g != NULL) {
		g->tt = tt;
		g->port = qp->port;
		nvmf_msg(tt->core.tgt->reactor, conn_gone_here, g);
	} else {
		MIMO_ERR(COMP, "out of memory; a loop listener's connection count is off by one");
		nvmf_transport_qpair_gone(&tt->core);
	}
	put_ref(qp);
}

/* The core is done with the queue pair. */
static void qpair_free(struct nvmf_qpair *core)
{
	struct nvmf_loop_qpair *qp = loop_qp(core);

	nvmf_poll_group_remove(core);
	target_end_gone(qp);
}

/* --- the host's calls, on the host's thread ------------------------------------------------ */

/* To the queue's reactor, holding a reference; at once when already there. */
static void to_reactor(struct nvmf_loop_qpair *qp, mimo_msg_fn fn, void *arg)
{
	atomic_fetch_add(&qp->refs, 1);
	if (mimo_reactor_current() == qp->reactor)
		fn(arg);
	else
		nvmf_msg(qp->reactor, fn, arg);
}

static int host_submit(struct nvme_loop_queue *q, uint16_t slot, const struct mimo_nvme_cmd *cmd,
		       const void *data, uint32_t len)
{
	struct nvmf_loop_qpair *qp = mimo_container_of(q, struct nvmf_loop_qpair, host);
	struct nvmf_loop_req *req;

	if (slot >= qp->num_reqs)
		return -EINVAL;
	/* The slot is the host's until it reaps it: so is this request. */
	req = &qp->reqs[slot];
	nvmf_req_clear(&req->core);
	req->core.cmd = *cmd;
	req->len = len;
	req->too_long = len > qp->tt->core.opts.max_io_size;
	if (!req->too_long && len > req->cap) {
		free(req->buf);
		req->cap = 0;
		req->buf = aligned_alloc(4096, (len + 4095) & ~4095u);
		if (req->buf == NULL)
			return -ENOMEM;
		req->cap = len;
	}
	if (data != NULL && len != 0 && !req->too_long)
		memcpy(req->buf, data, len);
	to_reactor(qp, exec_msg, req);
	return 0;
}

static int host_reap(struct nvme_loop_queue *q, nvme_loop_reap_cb cb, void *arg)
{
	struct nvmf_loop_qpair *qp = mimo_container_of(q, struct nvmf_loop_qpair, host);
	STAILQ_HEAD(, nvmf_loop_req) done = STAILQ_HEAD_INITIALIZER(done);
	struct nvmf_loop_req *req;
	uint64_t n;
	bool closed;
	int count = 0;

	/* Before taking the list: a completion queued after it wakes the next poll. */
	if (read(qp->efd, &n, sizeof(n)) < 0) {
		/* Nothing signalled. */
	}
	pthread_mutex_lock(&qp->lock);
	STAILQ_CONCAT(&done, &qp->done);
	closed = qp->closed;
	pthread_mutex_unlock(&qp->lock);
	while ((req = STAILQ_FIRST(&done)) != NULL) {
		bool c2h = nvmf_cmd_xfer_dir(&req->core.cmd) == 2;

		STAILQ_REMOVE_HEAD(&done, done_link);
		cb(arg, (uint16_t)(req - qp->reqs), &req->core.cpl, c2h ? req->buf : NULL,
		   c2h && req->core.cpl.status == 0 ? req->core.data_len : 0);
		count++;
	}
	return closed ? -ECONNRESET : count;
}

static int host_fd(struct nvme_loop_queue *q)
{
	return mimo_container_of(q, struct nvmf_loop_qpair, host)->efd;
}

static void host_gone_msg(void *arg)
{
	struct nvmf_loop_qpair *qp = arg;

	if (!qp->target_gone && attach(qp))
		qpair_close(&qp->core);
	put_ref(qp);
}

static void host_release(struct nvme_loop_queue *q)
{
	struct nvmf_loop_qpair *qp = mimo_container_of(q, struct nvmf_loop_qpair, host);

	pthread_mutex_lock(&qp->lock);
	qp->host_gone = true;
	STAILQ_INIT(&qp->done);
	pthread_mutex_unlock(&qp->lock);
	to_reactor(qp, host_gone_msg, qp);
	put_ref(qp);
}

static const struct nvme_loop_queue_ops g_queue_ops = {
	.submit = host_submit,
	.reap = host_reap,
	.fd = host_fd,
	.release = host_release,
};

/* From any thread, under the registry's lock (so the port stays). */
static int queue_create(void *arg, uint32_t slots, struct nvme_loop_queue **out)
{
	struct nvmf_loop_port *port = arg;
	struct nvmf_loop_transport *tt = loop_tt(port->core.tt);
	struct nvmf_loop_qpair *qp;

	if (atomic_load(&tt->core.destroying))
		return -ECONNREFUSED;
	if (slots == 0 || slots > 65535)
		return -EINVAL;
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL)
		return -ENOMEM;
	qp->reqs = calloc(slots, sizeof(*qp->reqs));
	qp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (qp->reqs == NULL || qp->efd < 0) {
		if (qp->efd >= 0)
			close(qp->efd);
		free(qp->reqs);
		free(qp);
		return -ENOMEM;
	}
	qp->num_reqs = slots;
	for (uint32_t i = 0; i < slots; i++) {
		qp->reqs[i].qp = qp;
		qp->reqs[i].core.qp = &qp->core;
	}
	qp->host.ops = &g_queue_ops;
	qp->tt = tt;
	qp->port = port;
	qp->reactor = nvmf_tgt_next_reactor(tt->core.tgt);
	qp->core.tt = &tt->core;
	qp->core.port = &port->core;
	qp->core.state = NVMF_QP_AWAIT_CONNECT;
	snprintf(qp->core.traddr, sizeof(qp->core.traddr), "loop");
	pthread_mutex_init(&qp->lock, NULL);
	STAILQ_INIT(&qp->done);
	atomic_init(&qp->refs, 2); /* the host's and the target's */
	/* nconns belongs to the target's reactor; a message would come too late for a
	 * stop_listen racing with us, so it is counted under the registry's lock instead. */
	__atomic_add_fetch(&port->nconns, 1, __ATOMIC_RELAXED);
	nvmf_transport_qpair_counted(&tt->core);
	to_reactor(qp, attach_msg, qp);
	*out = &qp->host;
	return 0;
}

/* --- listeners ----------------------------------------------------------------------------- */

/* A loop listener is a name (traddr); no address family or service. */
static int loop_listen_addr_check(struct mimo_nvmf_listen_addr *a)
{
	if ((a->adrfam[0] != '\0' && strcasecmp(a->adrfam, "loop") != 0) || a->trsvcid[0] != '\0')
		return -EINVAL;
	snprintf(a->adrfam, sizeof(a->adrfam), "loop");
	return 0;
}

static int loop_listen(struct nvmf_transport *tt, struct mimo_nvmf_listen_addr *addr,
		       const struct mimo_nvmf_listener_opts *opts, struct nvmf_port **out)
{
	struct nvmf_loop_port *p;
	int rc;

	(void)tt;
	/* As TCP's transport options: refused, never taken and ignored. */
	if (opts->secure_channel) {
		MIMO_ERR(COMP,
			 "loop listener %s: a secure channel (TLS) protects an NVMe/TCP "
			 "connection; the loop transport has no connection to protect",
			 addr->traddr);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	rc = nvme_loop_port_register(addr->traddr, queue_create, p);
	if (rc != 0) {
		free(p);
		return rc;
	}
	*out = &p->core;
	return 0;
}

static void loop_stop_listen(struct nvmf_port *core)
{
	struct nvmf_loop_port *p = mimo_container_of(core, struct nvmf_loop_port, core);

	/* After this no host reaches the port: nconns only goes down. */
	nvme_loop_port_unregister(p);
	if (__atomic_load_n(&p->nconns, __ATOMIC_RELAXED) == 0) {
		nvmf_port_unlink(core);
		free(p);
	}
}

/* --- the transport ------------------------------------------------------------------------- */

/* The options only TCP acts on (sockets, in-capsule data, its buffer pool): refused unless
 * left at their defaults, never taken and ignored. */
static bool tcp_only_opts_set(const struct mimo_nvmf_transport_opts *o)
{
	struct mimo_nvmf_transport_opts d;

	mimo_nvmf_transport_opts_init(&d);
	return o->in_capsule_data_size != d.in_capsule_data_size ||
	       o->io_unit_size != d.io_unit_size || o->num_shared_buffers != d.num_shared_buffers ||
	       o->c2h_success != d.c2h_success || o->zcopy != d.zcopy ||
	       o->connect_timeout_ms != d.connect_timeout_ms ||
	       o->max_connections_per_listener != d.max_connections_per_listener ||
	       o->sock_priority != d.sock_priority || o->acceptor_backlog != d.acceptor_backlog ||
	       o->buf_cache_size != d.buf_cache_size;
}

static int loop_create(struct mimo_nvmf_tgt *tgt, const struct mimo_nvmf_transport_opts *opts,
		       struct nvmf_transport **out)
{
	struct nvmf_loop_transport *tt;

	if (tcp_only_opts_set(opts)) {
		MIMO_ERR(COMP, "loop transport: in-capsule size, I/O unit, shared buffers, "
			       "c2h_success, zcopy and the socket options are TCP's; leave them at "
			       "their defaults");
		return -EINVAL;
	}
	if (opts->max_queue_depth < 2 || opts->max_queue_depth > 65535 || opts->max_aq_depth < 2 ||
	    opts->max_aq_depth > 4096 || opts->max_qpairs_per_ctrlr < 2 ||
	    opts->max_qpairs_per_ctrlr > 65535 || opts->max_io_size < 4096 ||
	    opts->max_io_size > (1u << 24) || opts->kas == 0 || opts->kas > 0xffff)
		return -EINVAL;
	tt = calloc(1, sizeof(*tt));
	if (tt == NULL)
		return -ENOMEM;
	tt->core.tgt = tgt;
	tt->core.opts = *opts;
	*out = &tt->core;
	return 0;
}

static void loop_free(struct nvmf_transport *tt)
{
	free(loop_tt(tt));
}

static void loop_dump(const struct nvmf_transport *core, json_t *j, bool config)
{
	if (!config)
		json_object_set_new(j, "num_qpairs", json_integer(atomic_load(&core->num_qpairs)));
}

const struct nvmf_transport_ops nvmf_loop_ops = {
	.name = "loop",
	.trtype = MIMO_NVMF_TRTYPE_LOOP,
	.create = loop_create,
	.free = loop_free,
	.poll_group_create = loop_poll_group_create,
	.poll_group_destroy = loop_poll_group_destroy,
	.listen_addr_check = loop_listen_addr_check,
	.listen = loop_listen,
	.stop_listen = loop_stop_listen,
	.queue_response = queue_response,
	.qpair_close = qpair_close,
	.qpair_free = qpair_free,
	.dump = loop_dump,
	.in_config = false,
};
