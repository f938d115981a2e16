/* Targets: creation, lookup, the reactors that serve I/O queues, teardown. Transports:
 * transport.c. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "opts.h"
#include "log.h"
#include "dhchap.h"
#include "keyring.h"
#include "transport.h"

#define COMP "nvmf"

static pthread_mutex_t g_tgts_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, mimo_nvmf_tgt) g_tgts = TAILQ_HEAD_INITIALIZER(g_tgts);

MIMO_EXPORT void mimo_nvmf_tgt_opts_init(struct mimo_nvmf_tgt_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->reactor_mask = UINT64_MAX;
	opts->max_subsystems = 1024;
}

MIMO_EXPORT int mimo_nvmf_tgt_create(const char *name, const struct mimo_nvmf_tgt_opts *opts,
				     struct mimo_nvmf_tgt **out)
{
	struct mimo_nvmf_subsystem_opts so;
	struct mimo_nvmf_subsystem *disc;
	struct mimo_nvmf_tgt *tgt, *t;
	uint64_t mask = 0;
	int rc;

	if (mimo_reactor_current() == NULL)
		return -EPERM;
	if (name == NULL || *name == '\0')
		return -EINVAL;
	tgt = calloc(1, sizeof(*tgt));
	if (tgt == NULL)
		return -ENOMEM;
	tgt->stat = aligned_alloc(MIMO_CACHELINE, NVMF_MAX_REACTORS * sizeof(*tgt->stat));
	if (tgt->stat == NULL) {
		free(tgt);
		return -ENOMEM;
	}
	memset(tgt->stat, 0, NVMF_MAX_REACTORS * sizeof(*tgt->stat));
	mimo_nvmf_tgt_opts_init(&tgt->opts);
	if (mimo_opts_copy(&tgt->opts, sizeof(tgt->opts), opts) != 0) {
		free(tgt->stat);
		free(tgt);
		return -EINVAL;
	}
	if (tgt->opts.max_subsystems == 0)
		tgt->opts.max_subsystems = 1024;
	for (uint32_t i = 0; i < mimo_reactor_count() && i < NVMF_MAX_REACTORS; i++)
		mask |= 1ull << i;
	tgt->opts.reactor_mask &= mask;
	if (tgt->opts.reactor_mask == 0)
		tgt->opts.reactor_mask = mask;
	tgt->name = strdup(name);
	tgt->reactor = mimo_reactor_current();
	tgt->dhchap_digests = DHCHAP_ALL_DIGESTS;
	tgt->dhchap_dhgroups = DHCHAP_ALL_DHGROUPS;
	TAILQ_INIT(&tgt->subsystems);
	TAILQ_INIT(&tgt->referrals);
	TAILQ_INIT(&tgt->transports);
	TAILQ_INIT(&tgt->psks);
	pthread_mutex_init(&tgt->psk_lock, NULL);
	if (tgt->name == NULL) {
		free(tgt->stat);
		free(tgt);
		return -ENOMEM;
	}
	pthread_mutex_lock(&g_tgts_lock);
	TAILQ_FOREACH(t, &g_tgts, link)
	{
		if (strcmp(t->name, name) == 0) {
			pthread_mutex_unlock(&g_tgts_lock);
			free(tgt->name);
			free(tgt->stat);
			free(tgt);
			return -EEXIST;
		}
	}
	TAILQ_INSERT_TAIL(&g_tgts, tgt, link);
	pthread_mutex_unlock(&g_tgts_lock);

	/* The discovery subsystem: any host, every port, no namespaces. */
	mimo_nvmf_subsystem_opts_init(&so);
	so.allow_any_host = true;
	so.max_namespaces = 0;
	rc = mimo_nvmf_subsystem_create(tgt, MIMO_NVMF_DISCOVERY_NQN, &so, &disc);
	if (rc != 0) {
		pthread_mutex_lock(&g_tgts_lock);
		TAILQ_REMOVE(&g_tgts, tgt, link);
		pthread_mutex_unlock(&g_tgts_lock);
		free(tgt->name);
		free(tgt->stat);
		free(tgt);
		return rc;
	}
	tgt->discovery = disc;
	tgt->discovery->state = NVMF_SUBSYS_ACTIVE;
	*out = tgt;
	return 0;
}

MIMO_EXPORT int mimo_nvmf_tgt_set_max_subsystems(struct mimo_nvmf_tgt *tgt, uint32_t max_subsystems)
{
	if (max_subsystems == 0)
		max_subsystems = 1024;
	/* The subsystems there are, and the discovery subsystem. */
	if (max_subsystems < tgt->num_subsystems + 1)
		return -EBUSY;
	tgt->opts.max_subsystems = max_subsystems;
	return 0;
}

MIMO_EXPORT uint32_t mimo_nvmf_tgt_get_max_subsystems(const struct mimo_nvmf_tgt *tgt)
{
	return tgt->opts.max_subsystems;
}

MIMO_EXPORT void mimo_nvmf_tgt_set_crdt(struct mimo_nvmf_tgt *tgt, const uint16_t crdt[3])
{
	memcpy(tgt->crdt, crdt, sizeof(tgt->crdt));
}

MIMO_EXPORT void mimo_nvmf_tgt_get_crdt(const struct mimo_nvmf_tgt *tgt, uint16_t crdt[3])
{
	memcpy(crdt, tgt->crdt, sizeof(tgt->crdt));
}

void nvmf_tgts_foreach_stat(void (*fn)(void *arg, const struct nvmf_reactor_stat *st), void *arg)
{
	struct mimo_nvmf_tgt *t;

	pthread_mutex_lock(&g_tgts_lock);
	TAILQ_FOREACH(t, &g_tgts, link)
	{
		for (uint32_t i = 0; i < NVMF_MAX_REACTORS; i++)
			fn(arg, &t->stat[i]);
	}
	pthread_mutex_unlock(&g_tgts_lock);
}

MIMO_EXPORT struct mimo_nvmf_tgt *mimo_nvmf_tgt_find(const char *name)
{
	struct mimo_nvmf_tgt *t;

	pthread_mutex_lock(&g_tgts_lock);
	TAILQ_FOREACH(t, &g_tgts, link)
	{
		if (!t->destroying && (name == NULL || strcmp(t->name, name) == 0))
			break;
	}
	pthread_mutex_unlock(&g_tgts_lock);
	return t;
}

MIMO_EXPORT int mimo_nvmf_tgt_set_dhchap(struct mimo_nvmf_tgt *tgt, uint32_t digests,
					 uint32_t dhgroups)
{
	if (digests == 0 || (digests & ~DHCHAP_ALL_DIGESTS) != 0 || dhgroups == 0 ||
	    (dhgroups & ~DHCHAP_ALL_DHGROUPS) != 0)
		return -EINVAL;
	tgt->dhchap_digests = digests;
	tgt->dhchap_dhgroups = dhgroups;
	return 0;
}

MIMO_EXPORT void mimo_nvmf_tgt_get_dhchap(const struct mimo_nvmf_tgt *tgt, uint32_t *digests,
					  uint32_t *dhgroups)
{
	*digests = tgt->dhchap_digests;
	*dhgroups = tgt->dhchap_dhgroups;
}

MIMO_EXPORT const char *mimo_nvmf_tgt_get_name(const struct mimo_nvmf_tgt *tgt)
{
	return (tgt)->name;
}

struct mimo_reactor *nvmf_tgt_next_reactor(struct mimo_nvmf_tgt *tgt)
{
	uint32_t n = mimo_reactor_count();

	for (uint32_t i = 0; i < n; i++) {
		uint32_t idx =
			atomic_fetch_add_explicit(&tgt->next_reactor, 1, memory_order_relaxed) % n;

		if (idx < NVMF_MAX_REACTORS && (tgt->opts.reactor_mask & (1ull << idx)))
			return mimo_reactor_get(idx);
	}
	return tgt->reactor;
}

void nvmf_tgt_discovery_changed(struct mimo_nvmf_tgt *tgt)
{
	struct nvmf_ctrlr *c;

	tgt->discovery_genctr++;
	TAILQ_FOREACH(c, &tgt->discovery->ctrlrs, link)
	nvmf_ctrlr_discovery_changed(c);
}

/* --- transports --------------------------------------------------------------------------- */

MIMO_EXPORT void mimo_nvmf_transport_opts_init(struct mimo_nvmf_transport_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->max_queue_depth = 128;
	opts->max_aq_depth = 128;
	opts->max_qpairs_per_ctrlr = 128;
	opts->in_capsule_data_size = 4096;
	opts->max_io_size = 131072;
	opts->io_unit_size = 131072;
	opts->num_shared_buffers = 511;
	opts->c2h_success = true;
	opts->zcopy = true;
	opts->connect_timeout_ms = 10000;
	opts->kas = 1;
	opts->acceptor_backlog = 512;
	opts->buf_cache_size = UINT32_MAX;
}

/* --- teardown ----------------------------------------------------------------------------- */

static void destroy_finish(void *arg)
{
	struct mimo_nvmf_tgt *tgt = arg;
	void (*cb)(void *) = tgt->destroy_cb;
	void *cb_arg = tgt->destroy_arg;
	struct nvmf_referral *r;

	nvmf_subsystem_free(tgt->discovery);
	pthread_mutex_lock(&g_tgts_lock);
	TAILQ_REMOVE(&g_tgts, tgt, link);
	pthread_mutex_unlock(&g_tgts_lock);
	pthread_mutex_destroy(&tgt->psk_lock);
	while ((r = TAILQ_FIRST(&tgt->referrals)) != NULL) {
		TAILQ_REMOVE(&tgt->referrals, r, link);
		free(r);
	}
	free(tgt->name);
	free(tgt->stat);
	free(tgt);
	if (cb != NULL)
		cb(cb_arg);
}

/* One subsystem at a time, then the discovery controllers, then the transports. Called again
 * each time a subsystem is gone (nvmf_tgt_subsystem_removed). */
static void destroy_next(struct mimo_nvmf_tgt *tgt)
{
	struct mimo_nvmf_subsystem *s;
	struct nvmf_ctrlr *c;

	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		if (s == tgt->discovery)
			continue;
		if (s->state != NVMF_SUBSYS_DELETING)
			mimo_nvmf_subsystem_destroy(s, NULL, NULL);
		return; /* its end calls back */
	}
	if (!TAILQ_EMPTY(&tgt->discovery->ctrlrs)) {
		if (tgt->discovery->state != NVMF_SUBSYS_DELETING) {
			tgt->discovery->state = NVMF_SUBSYS_DELETING;
			TAILQ_FOREACH(c, &tgt->discovery->ctrlrs, link)
			nvmf_ctrlr_disconnect(c);
		}
		return;
	}
	nvmf_tgt_destroy_transports(tgt, destroy_finish, tgt);
}

void nvmf_tgt_subsystem_removed(struct mimo_nvmf_tgt *tgt)
{
	if (tgt->destroying)
		destroy_next(tgt);
}

MIMO_EXPORT void mimo_nvmf_tgt_destroy(struct mimo_nvmf_tgt *tgt, void (*cb)(void *cb_arg),
				       void *cb_arg)
{
	tgt->destroying = true;
	tgt->destroy_cb = cb;
	tgt->destroy_arg = cb_arg;
	destroy_next(tgt);
}

/* --- TLS PSKs ------------------------------------------------------------------------------ */

static struct nvmf_psk *psk_find(struct mimo_nvmf_tgt *tgt, const char *subnqn, const char *hostnqn)
{
	struct nvmf_psk *e;

	TAILQ_FOREACH(e, &tgt->psks, link)
	{
		if (strcmp(e->subnqn, subnqn) == 0 && strcmp(e->hostnqn, hostnqn) == 0)
			return e;
	}
	return NULL;
}

int nvmf_tgt_psk_set(struct mimo_nvmf_tgt *tgt, const char *subnqn, const char *hostnqn,
		     struct mimo_key *key)
{
	struct nvmf_psk *e, *n = NULL;

	if (key != NULL) {
		n = calloc(1, sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		snprintf(n->subnqn, sizeof(n->subnqn), "%s", subnqn);
		snprintf(n->hostnqn, sizeof(n->hostnqn), "%s", hostnqn);
		n->key = mimo_key_ref(key);
	}
	pthread_mutex_lock(&tgt->psk_lock);
	e = psk_find(tgt, subnqn, hostnqn);
	if (e != NULL)
		TAILQ_REMOVE(&tgt->psks, e, link);
	if (n != NULL)
		TAILQ_INSERT_TAIL(&tgt->psks, n, link);
	pthread_mutex_unlock(&tgt->psk_lock);
	if (e != NULL) {
		mimo_key_put(e->key);
		free(e);
	}
	return 0;
}

struct mimo_key *nvmf_tgt_psk_get(struct mimo_nvmf_tgt *tgt, const char *subnqn,
				  const char *hostnqn)
{
	struct mimo_key *key = NULL;
	struct nvmf_psk *e;

	pthread_mutex_lock(&tgt->psk_lock);
	e = psk_find(tgt, subnqn, hostnqn);
	if (e != NULL)
		key = mimo_key_ref(e->key);
	pthread_mutex_unlock(&tgt->psk_lock);
	return key;
}
