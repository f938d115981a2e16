/*
 * The core's half of transports: the target's list of them, their listeners (ports), and the
 * life of a queue pair from the controller's side (disconnect, release, free). What moves
 * bytes is each transport's own (tcp.c, loop.c), reached through its ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "opts.h"
#include "sock_opts.h"
#include "transport.h"

#define COMP "nvmf"

static const struct nvmf_transport_ops *const g_transports[] = { &nvmf_tcp_ops, &nvmf_loop_ops };

void nvmf_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	/* Never a spin on a full ring: two reactors that filled each other's would livelock. */
	if (mimo_reactor_post(r, fn, arg) != 0)
		MIMO_ERR(COMP, "out of memory: a message between reactors is lost");
}

const struct nvmf_transport_ops *nvmf_transport_ops_find(const char *trtype)
{
	for (size_t i = 0; trtype != NULL && i < MIMO_ARRAY_SIZE(g_transports); i++) {
		if (strcasecmp(g_transports[i]->name, trtype) == 0)
			return g_transports[i];
	}
	return NULL;
}

struct nvmf_transport *nvmf_tgt_find_transport(struct mimo_nvmf_tgt *tgt, const char *trtype)
{
	struct nvmf_transport *tt;

	TAILQ_FOREACH(tt, &tgt->transports, link)
	{
		if (trtype != NULL && strcasecmp(tt->ops->name, trtype) == 0)
			return tt;
	}
	return NULL;
}

MIMO_EXPORT int mimo_nvmf_tgt_add_transport(struct mimo_nvmf_tgt *tgt, const char *trtype,
					    const struct mimo_nvmf_transport_opts *opts)
{
	const struct nvmf_transport_ops *ops = nvmf_transport_ops_find(trtype);
	struct mimo_nvmf_transport_opts o;
	struct nvmf_transport *tt;
	int rc;

	if (ops == NULL)
		return -EINVAL;
	if (nvmf_tgt_find_transport(tgt, trtype) != NULL)
		return -EEXIST;
	mimo_nvmf_transport_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0)
		return -EINVAL;
	rc = ops->create(tgt, &o, &tt);
	if (rc != 0)
		return rc;
	tt->ops = ops;
	tt->tgt = tgt;
	TAILQ_INIT(&tt->ports);
	TAILQ_INSERT_TAIL(&tgt->transports, tt, link);
	return 0;
}

MIMO_EXPORT int mimo_nvmf_tgt_get_transport(struct mimo_nvmf_tgt *tgt, const char *trtype,
					    struct mimo_nvmf_transport_opts *opts)
{
	struct nvmf_transport *tt = nvmf_tgt_find_transport(tgt, trtype);

	if (tt == NULL)
		return -ENOENT;
	*opts = tt->opts;
	return 0;
}

/* --- ports --------------------------------------------------------------------------------- */

struct nvmf_port *nvmf_port_find(struct nvmf_transport *tt,
				 const struct mimo_nvmf_listen_addr *addr)
{
	struct mimo_nvmf_listen_addr a = *addr;
	struct nvmf_port *p;

	if (tt->ops->listen_addr_check(&a) != 0)
		return NULL;
	TAILQ_FOREACH(p, &tt->ports, link)
	{
		if (!p->closed && strcasecmp(p->addr.adrfam, a.adrfam) == 0 &&
		    strcmp(p->addr.traddr, a.traddr) == 0 &&
		    strcmp(p->addr.trsvcid, a.trsvcid) == 0)
			return p;
	}
	return NULL;
}

static bool portid_in_use(struct nvmf_transport *tt, uint16_t id)
{
	struct mimo_nvmf_tgt *tgt = tt->tgt;
	struct nvmf_transport *t;
	struct nvmf_port *p;

	/* Closed ports whose connections live on keep their ID: it names them in logs. Port IDs
	 * are the target's (the discovery log lists every transport's). */
	TAILQ_FOREACH(t, &tgt->transports, link)
	{
		TAILQ_FOREACH(p, &t->ports, link)
		{
			if (p->portid == id)
				return true;
		}
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

int nvmf_port_get(struct nvmf_transport *tt, struct mimo_nvmf_listen_addr *addr,
		  const struct mimo_nvmf_listener_opts *opts, struct nvmf_port **out)
{
	struct nvmf_port *p;
	int rc;

	rc = tt->ops->listen_addr_check(addr);
	if (rc != 0)
		return rc;
	p = nvmf_port_find(tt, addr);
	if (p != NULL) {
		if (p->secure != opts->secure_channel)
			return -EPROTOTYPE;
		/* One socket layer per port: a listener naming another one is refused. */
		if (opts->sock_impl != MIMO_NVMF_SOCK_IMPL_DEFAULT &&
		    p->sock_impl != MIMO_NVMF_SOCK_IMPL_DEFAULT && opts->sock_impl != p->sock_impl)
			return -ESOCKTNOSUPPORT;
		p->refs++;
		*out = p;
		return 0;
	}
	rc = tt->ops->listen(tt, addr, opts, &p);
	if (rc != 0)
		return rc;
	p->addr = *addr;
	snprintf(p->addr.trtype, sizeof(p->addr.trtype), "%s", tt->ops->name);
	p->tt = tt;
	p->refs = 1;
	p->secure = opts->secure_channel;
	p->sock_impl = (uint8_t)opts->sock_impl;
	p->default_impl = (uint8_t)mimo_sock_get_default_impl();
	p->closed = false;
	p->portid = alloc_portid(tt);
	TAILQ_INSERT_TAIL(&tt->ports, p, link);
	*out = p;
	return 0;
}

/* Stop listening. The struct stays while connections it accepted live: they point to it. */
static void port_close(struct nvmf_port *p)
{
	if (p->closed)
		return;
	p->closed = true;
	p->tt->ops->stop_listen(p);
}

void nvmf_port_put(struct nvmf_port *p)
{
	if (--p->refs == 0)
		port_close(p);
}

void nvmf_port_unlink(struct nvmf_port *p)
{
	TAILQ_REMOVE(&p->tt->ports, p, link);
}

/* --- poll groups and queue pair counts ----------------------------------------------------- */

struct nvmf_poll_group *nvmf_poll_group_get(struct nvmf_transport *tt)
{
	uint32_t idx = mimo_reactor_index(mimo_reactor_current());
	struct nvmf_poll_group *pg = tt->groups[idx];

	if (pg != NULL)
		return pg;
	pg = tt->ops->poll_group_create(tt);
	if (pg == NULL)
		return NULL;
	nvmf_poll_group_init(pg, tt);
	TAILQ_INIT(&pg->qpairs);
	tt->groups[idx] = pg;
	return pg;
}

void nvmf_poll_group_add(struct nvmf_poll_group *pg, struct nvmf_qpair *qp)
{
	qp->group = pg;
	TAILQ_INSERT_TAIL(&pg->qpairs, qp, link);
	/* nvmf_get_stats: until its Connect succeeds. */
	NVMF_STAT_ADD(pg->tt->tgt->stat[pg->reactor_index].current_unassociated_qpairs, 1);
	qp->stat_unassociated = true;
}

void nvmf_qpair_stat_associated(struct nvmf_qpair *qp)
{
	if (!qp->stat_unassociated)
		return;
	qp->stat_unassociated = false;
	NVMF_STAT_ADD(qp->tt->tgt->stat[qp->group->reactor_index].current_unassociated_qpairs, -1);
}

void nvmf_poll_group_remove(struct nvmf_qpair *qp)
{
	nvmf_qpair_stat_associated(qp);
	TAILQ_REMOVE(&qp->group->qpairs, qp, link);
}

uint32_t nvmf_transport_qpair_counted(struct nvmf_transport *tt)
{
	return atomic_fetch_add(&tt->num_qpairs, 1) + 1;
}

static void group_destroyed(void *arg)
{
	struct nvmf_transport *tt = arg;
	void (*cb)(void *) = tt->destroy_cb;
	void *cb_arg = tt->destroy_arg;

	if (atomic_fetch_sub(&tt->groups_left, 1) != 1)
		return;
	tt->ops->free(tt);
	if (cb != NULL)
		cb(cb_arg);
}

static void group_destroy_here(void *arg)
{
	struct nvmf_transport *tt = arg;
	uint32_t idx = mimo_reactor_index(mimo_reactor_current());
	struct nvmf_poll_group *pg = tt->groups[idx];

	if (pg != NULL) {
		nvmf_poll_group_fini(pg);
		tt->groups[idx] = NULL;
		tt->ops->poll_group_destroy(pg);
	}
	nvmf_msg(tt->tgt->reactor, group_destroyed, tt);
}

/* Every queue pair is gone: the poll groups go, each on its reactor, then the transport. */
static void destroy_groups(void *arg)
{
	struct nvmf_transport *tt = arg;
	uint32_t n = mimo_reactor_count();

	atomic_store(&tt->groups_left, n);
	for (uint32_t i = 0; i < n; i++)
		nvmf_msg(mimo_reactor_get(i), group_destroy_here, tt);
}

void nvmf_transport_qpair_gone(struct nvmf_transport *tt)
{
	if (atomic_fetch_sub(&tt->num_qpairs, 1) == 1 && atomic_load(&tt->destroying))
		nvmf_msg(tt->tgt->reactor, destroy_groups, tt);
}

/* --- teardown ------------------------------------------------------------------------------ */

static void close_all_here(void *arg)
{
	struct nvmf_transport *tt = arg;
	struct nvmf_poll_group *pg = tt->groups[mimo_reactor_index(mimo_reactor_current())];
	struct nvmf_qpair *qp;

	if (pg == NULL)
		return;
	/* Closing frees nothing at once, so the list stays as it is during the walk. */
	TAILQ_FOREACH(qp, &pg->qpairs, link)
	tt->ops->qpair_close(qp);
}

/* Close its ports and every queue pair; free it (then cb) once they are all gone. */
static void transport_destroy(struct nvmf_transport *tt, void (*cb)(void *arg), void *arg)
{
	struct nvmf_port *p, *next;

	for (p = TAILQ_FIRST(&tt->ports); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		port_close(p);
	}
	tt->destroy_cb = cb;
	tt->destroy_arg = arg;
	/* One count for ourselves, so the last queue pair cannot finish before we asked. */
	nvmf_transport_qpair_counted(tt);
	atomic_store(&tt->destroying, true);
	for (uint32_t i = 0; i < mimo_reactor_count(); i++)
		nvmf_msg(mimo_reactor_get(i), close_all_here, tt);
	nvmf_transport_qpair_gone(tt);
}

struct destroy_ctx {
	struct mimo_nvmf_tgt *tgt;
	void (*cb)(void *arg);
	void *arg;
};

/* One transport at a time, each once its queue pairs are gone. */
static void destroy_next(void *arg)
{
	struct destroy_ctx *d = arg;
	struct nvmf_transport *tt = TAILQ_FIRST(&d->tgt->transports);

	if (tt == NULL) {
		void (*cb)(void *) = d->cb;
		void *cb_arg = d->arg;

		free(d);
		if (cb != NULL)
			cb(cb_arg);
		return;
	}
	TAILQ_REMOVE(&d->tgt->transports, tt, link);
	transport_destroy(tt, destroy_next, d);
}

void nvmf_tgt_destroy_transports(struct mimo_nvmf_tgt *tgt, void (*cb)(void *arg), void *arg)
{
	struct destroy_ctx *d = malloc(sizeof(*d));

	if (d == NULL) {
		/* Leaves the transports to the process's end rather than freeing them in use. */
		MIMO_ERR(COMP, "out of memory: the target's transports are not freed");
		if (cb != NULL)
			cb(arg);
		return;
	}
	d->tgt = tgt;
	d->cb = cb;
	d->arg = arg;
	destroy_next(d);
}

/* --- queue pairs --------------------------------------------------------------------------- */

static void close_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;

	qp->tt->ops->qpair_close(qp);
}

void nvmf_qpair_disconnect(struct nvmf_qpair *qp)
{
	if (mimo_reactor_current() == qp->group->reactor)
		qp->tt->ops->qpair_close(qp);
	else
		nvmf_msg(qp->group->reactor, close_msg, qp);
}

static void free_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;

	qp->tt->ops->qpair_free(qp);
}

void nvmf_qpair_try_free(struct nvmf_qpair *qp)
{
	if (qp->state != NVMF_QP_CLOSING || qp->outstanding != 0 || !qp->ctrlr_released ||
	    qp->connect_pending || qp->free_scheduled)
		return;
	/* Later, so no caller up the stack still holds it. */
	qp->free_scheduled = true;
	nvmf_msg(qp->group->reactor, free_msg, qp);
}

static void ctrlr_qpair_gone_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;

	nvmf_ctrlr_qpair_gone(qp->ctrlr, qp);
}

void nvmf_qpair_leave_ctrlr(struct nvmf_qpair *qp)
{
	if (qp->stat_counted) {
		struct nvmf_reactor_stat *st = &qp->tt->tgt->stat[qp->group->reactor_index];

		qp->stat_counted = false;
		if (qp->qid == 0)
			NVMF_STAT_ADD(st->current_admin_qpairs, -1);
		else
			NVMF_STAT_ADD(st->current_io_qpairs, -1);
	}
	if (qp->ctrlr != NULL)
		nvmf_msg(qp->tt->tgt->reactor, ctrlr_qpair_gone_msg, qp);
	else if (!qp->connect_pending)
		qp->ctrlr_released = true;
}

static void released_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;

	qp->ctrlr_released = true;
	nvmf_qpair_try_free(qp);
}

void nvmf_qpair_ctrlr_released(struct nvmf_qpair *qp)
{
	nvmf_msg(qp->group->reactor, released_msg, qp);
}
