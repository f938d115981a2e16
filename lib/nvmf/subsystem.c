/* Subsystems: creation and deletion, state, namespaces, allowed hosts, listeners. All on the
 * target's reactor. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keyring.h"
#include "log.h"
#include "opts.h"
#include "transport.h"
#include "uuid.h"

#define COMP "nvmf"

/* NQNs as the specification defines them: "nqn.yyyy-mm.reverse.domain:anything" or the
 * UUID form "nqn.2014-08.org.nvmexpress:uuid:<uuid>", at most 223 bytes. */
bool nvmf_nqn_is_valid(const char *nqn)
{
	size_t len = nqn != NULL ? strnlen(nqn, MIMO_NVMF_NQN_MAX_LEN + 1) : 0;
	const char *p;

	if (len < 12 || len > MIMO_NVMF_NQN_MAX_LEN)
		return false;
	if (strcmp(nqn, MIMO_NVMF_DISCOVERY_NQN) == 0)
		return true;
	if (strncmp(nqn, "nqn.2014-08.org.nvmexpress:uuid:", 32) == 0) {
		uint8_t u[16];

		return len == 32 + 36 && mimo_uuid_parse(nqn + 32, u) == 0;
	}
	/* nqn.yyyy-mm.<reverse domain> and then ':' before the user part. */
	if (strncmp(nqn, "nqn.", 4) != 0)
		return false;
	for (int i = 4; i < 11; i++) {
		if (i == 8 ? nqn[i] != '-' : !isdigit((unsigned char)nqn[i]))
			return false;
	}
	if (nqn[11] != '.')
		return false;
	p = nqn + 12;
	if (!isalnum((unsigned char)*p))
		return false;
	for (; *p != '\0' && *p != ':'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return false;
	}
	for (p = nqn; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return false;
	}
	return true;
}

static bool printable(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);

	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

MIMO_EXPORT void mimo_nvmf_subsystem_opts_init(struct mimo_nvmf_subsystem_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->max_namespaces = 32;
	opts->min_cntlid = 1;
	opts->max_cntlid = 0xffef;
}

MIMO_EXPORT int mimo_nvmf_subsystem_create(struct mimo_nvmf_tgt *tgt, const char *nqn,
					   const struct mimo_nvmf_subsystem_opts *opts,
					   struct mimo_nvmf_subsystem **out)
{
	struct mimo_nvmf_subsystem_opts o;
	struct mimo_nvmf_subsystem *s;
	bool disc = nqn != NULL && strcmp(nqn, MIMO_NVMF_DISCOVERY_NQN) == 0;

	mimo_nvmf_subsystem_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0 || !nvmf_nqn_is_valid(nqn))
		return -EINVAL;
	if (o.serial_number != NULL && !printable(o.serial_number, 20))
		return -EINVAL;
	if (o.model_number != NULL && !printable(o.model_number, 40))
		return -EINVAL;
	if (o.min_cntlid == 0 || o.max_cntlid > 0xffef || o.min_cntlid > o.max_cntlid)
		return -EINVAL;
	if (o.max_namespaces > 0xfffffffe / 2)
		return -EINVAL;
	if (mimo_nvmf_tgt_find_subsystem(tgt, nqn) != NULL)
		return -EEXIST;
	/* SPDK counts the discovery subsystem among max_subsystems: so does mimo. */
	if (!disc && tgt->num_subsystems + 1 >= tgt->opts.max_subsystems)
		return -ENOSPC;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->tgt = tgt;
	snprintf(s->nqn, sizeof(s->nqn), "%s", nqn);
	s->subtype = disc ? MIMO_NVMF_SUBTYPE_DISCOVERY : MIMO_NVMF_SUBTYPE_NVME;
	snprintf(s->sn, sizeof(s->sn), "%s",
		 o.serial_number != NULL ? o.serial_number : NVMF_DEFAULT_SERIAL);
	snprintf(s->mn, sizeof(s->mn), "%s",
		 o.model_number != NULL ? o.model_number : NVMF_DEFAULT_MODEL);
	s->allow_any_host = o.allow_any_host;
	s->min_cntlid = o.min_cntlid;
	s->max_cntlid = o.max_cntlid;
	s->next_cntlid = o.min_cntlid;
	s->max_nsid = disc ? 0 : o.max_namespaces;
	s->dmrsl = o.dmrsl;
	s->wzsl = o.wzsl;
	s->ana_reporting = o.ana_reporting && !disc;
	TAILQ_INIT(&s->hosts);
	TAILQ_INIT(&s->listeners);
	TAILQ_INIT(&s->ctrlrs);
	if (s->max_nsid != 0) {
		s->ns = calloc(s->max_nsid, sizeof(*s->ns));
		if (s->ns == NULL) {
			free(s);
			return -ENOMEM;
		}
	}
	TAILQ_INSERT_TAIL(&tgt->subsystems, s, link);
	if (!disc) {
		json_t *p = json_pack("{s:s}", "nqn", s->nqn);

		tgt->num_subsystems++;
		nvmf_emit("nvmf_subsystem_created", p, s->nqn);
		nvmf_tgt_discovery_changed(tgt);
	}
	*out = s;
	return 0;
}

MIMO_EXPORT struct mimo_nvmf_subsystem *mimo_nvmf_tgt_find_subsystem(struct mimo_nvmf_tgt *tgt,
								     const char *nqn)
{
	struct mimo_nvmf_subsystem *s;

	if (nqn == NULL)
		return NULL;
	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		if (strcmp(s->nqn, nqn) == 0)
			return s;
	}
	return NULL;
}

MIMO_EXPORT const char *mimo_nvmf_subsystem_get_nqn(const struct mimo_nvmf_subsystem *s)
{
	return (s)->nqn;
}

uint16_t nvmf_subsystem_alloc_cntlid(struct mimo_nvmf_subsystem *s)
{
	uint32_t span = (uint32_t)s->max_cntlid - s->min_cntlid + 1;

	for (uint32_t i = 0; i < span; i++) {
		uint16_t id = s->next_cntlid;
		struct nvmf_ctrlr *c;
		bool used = false;

		s->next_cntlid = id >= s->max_cntlid ? s->min_cntlid : (uint16_t)(id + 1);
		TAILQ_FOREACH(c, &s->ctrlrs, link)
		{
			if (c->cntlid == id) {
				used = true;
				break;
			}
		}
		if (!used)
			return id;
	}
	return 0;
}

/* --- start, stop, delete ------------------------------------------------------------------- */

static void disconnect_all(struct mimo_nvmf_subsystem *s)
{
	struct nvmf_ctrlr *c;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	nvmf_ctrlr_disconnect(c);
}

MIMO_EXPORT void mimo_nvmf_subsystem_start(struct mimo_nvmf_subsystem *s, mimo_nvmf_done_cb cb,
					   void *cb_arg)
{
	int rc = 0;

	if (s->state == NVMF_SUBSYS_DELETING)
		rc = -EBUSY;
	else
		s->state = NVMF_SUBSYS_ACTIVE;
	if (cb != NULL)
		cb(cb_arg, rc);
}

MIMO_EXPORT void mimo_nvmf_subsystem_stop(struct mimo_nvmf_subsystem *s, mimo_nvmf_done_cb cb,
					  void *cb_arg)
{
	int rc = 0;

	if (s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY || s->state == NVMF_SUBSYS_DELETING) {
		rc = -EPERM;
	} else {
		s->state = NVMF_SUBSYS_INACTIVE;
		disconnect_all(s);
	}
	if (cb != NULL)
		cb(cb_arg, rc);
}

void nvmf_subsystem_free(struct mimo_nvmf_subsystem *s)
{
	struct nvmf_subsys_listener *l;
	struct nvmf_host *h;

	while ((h = TAILQ_FIRST(&s->hosts)) != NULL) {
		TAILQ_REMOVE(&s->hosts, h, link);
		if (h->psk != NULL)
			(void)nvmf_tgt_psk_set(s->tgt, s->nqn, h->nqn, NULL);
		nvmf_host_free(h);
	}
	while ((l = TAILQ_FIRST(&s->listeners)) != NULL) {
		TAILQ_REMOVE(&s->listeners, l, link);
		nvmf_port_put(l->port);
		free(l->ana_state);
		free(l);
	}
	TAILQ_REMOVE(&s->tgt->subsystems, s, link);
	free(s->ns);
	free(s);
}

static void delete_finish(struct mimo_nvmf_subsystem *s)
{
	struct mimo_nvmf_tgt *tgt = s->tgt;
	mimo_nvmf_done_cb cb = s->destroy_cb;
	void *cb_arg = s->destroy_arg;
	json_t *p;

	p = json_pack("{s:s}", "nqn", s->nqn);
	nvmf_emit("nvmf_subsystem_deleted", p, s->nqn);
	tgt->num_subsystems--;
	nvmf_subsystem_free(s);
	nvmf_tgt_discovery_changed(tgt);
	if (cb != NULL)
		cb(cb_arg, 0);
	nvmf_tgt_subsystem_removed(tgt);
}

static void delete_ns_drained(struct nvmf_ns *ns)
{
	struct mimo_nvmf_subsystem *s = ns->subsys;

	nvmf_ns_free(ns);
	if (--s->num_ns == 0)
		delete_finish(s);
}

/* Every controller is gone: close the namespaces, then forget the subsystem. */
static void delete_namespaces(struct mimo_nvmf_subsystem *s)
{
	uint32_t n = s->num_ns;

	if (n == 0) {
		delete_finish(s);
		return;
	}
	for (uint32_t i = 0; i < s->max_nsid; i++) {
		struct nvmf_ns *ns = atomic_exchange(&s->ns[i], NULL);

		if (ns != NULL)
			nvmf_ns_drain(ns, delete_ns_drained);
	}
}

void nvmf_subsystem_ctrlr_gone(struct mimo_nvmf_subsystem *s)
{
	if (s->state != NVMF_SUBSYS_DELETING || !TAILQ_EMPTY(&s->ctrlrs))
		return;
	if (s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY)
		nvmf_tgt_subsystem_removed(s->tgt);
	else
		delete_namespaces(s);
}

MIMO_EXPORT int mimo_nvmf_subsystem_destroy(struct mimo_nvmf_subsystem *s, mimo_nvmf_done_cb cb,
					    void *cb_arg)
{
	if (s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY)
		return -EPERM;
	if (s->state == NVMF_SUBSYS_DELETING)
		return -EBUSY;
	s->state = NVMF_SUBSYS_DELETING;
	s->destroy_cb = cb;
	s->destroy_arg = cb_arg;
	if (TAILQ_EMPTY(&s->ctrlrs))
		delete_namespaces(s);
	else
		disconnect_all(s);
	return 0;
}

/* --- namespaces ---------------------------------------------------------------------------- */

MIMO_EXPORT void mimo_nvmf_ns_opts_init(struct mimo_nvmf_ns_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
}

static bool bdev_in_use(struct mimo_nvmf_tgt *tgt, const struct mimo_bdev *bdev)
{
	struct mimo_nvmf_subsystem *s;

	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		for (uint32_t i = 0; i < s->max_nsid; i++) {
			struct nvmf_ns *ns = atomic_load(&s->ns[i]);

			if (ns != NULL && ns->bdev == bdev)
				return true;
		}
	}
	return false;
}

static void ns_bdev_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct nvmf_ns *ns = ctx;

	if (type == MIMO_BDEV_EVENT_RESIZE) {
		/* Identify Namespace reports the new size; hosts hear of it by a Namespace
		 * Attribute Changed notice (and the Changed Namespace List). */
		__atomic_store_n(&ns->num_blocks, mimo_bdev_get_num_blocks(bdev), __ATOMIC_RELAXED);
		if (nvmf_subsystem_get_ns(ns->subsys, ns->nsid) == ns)
			nvmf_ctrlr_ns_changed(ns->subsys, ns);
		return;
	}
	if (type != MIMO_BDEV_EVENT_REMOVE)
		return;
	/* The bdev is being deleted: the namespace goes first, so the bdev can. */
	if (nvmf_subsystem_get_ns(ns->subsys, ns->nsid) == ns) {
		MIMO_INFO(COMP, "%s: bdev %s removed; removing namespace %u", ns->subsys->nqn,
			  ns->bdev_name, ns->nsid);
		mimo_nvmf_subsystem_remove_ns(ns->subsys, ns->nsid);
	}
}

MIMO_EXPORT int mimo_nvmf_subsystem_add_ns(struct mimo_nvmf_subsystem *s, const char *bdev_name,
					   const struct mimo_nvmf_ns_opts *opts)
{
	struct mimo_nvmf_ns_opts o;
	struct nvmf_ns *ns;
	uint32_t nsid;
	int rc;

	mimo_nvmf_ns_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0)
		return -EINVAL;
	if (s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY || s->state == NVMF_SUBSYS_DELETING)
		return -EPERM;
	if (bdev_name == NULL)
		return -ENODEV;
	nsid = o.nsid;
	if (nsid == 0) {
		for (nsid = 1; nsid <= s->max_nsid; nsid++) {
			if (atomic_load(&s->ns[nsid - 1]) == NULL)
				break;
		}
		if (nsid > s->max_nsid)
			return -ENOSPC;
	} else if (nsid > s->max_nsid || nsid == 0xffffffff) {
		return -EINVAL;
	} else if (atomic_load(&s->ns[nsid - 1]) != NULL) {
		return -EEXIST;
	}
	if (o.anagrpid > s->max_nsid)
		return -EINVAL;
	ns = aligned_alloc(MIMO_CACHELINE, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	memset(ns, 0, sizeof(*ns));
	ns->nsid = nsid;
	ns->subsys = s;
	ns->auto_visible = !o.no_auto_visible;
	atomic_init(&ns->anagrpid, o.anagrpid != 0 ? o.anagrpid : nsid);
	TAILQ_INIT(&ns->visible_hosts);
	ns->bdev_name = strdup(bdev_name);
	if (ns->bdev_name == NULL) {
		free(ns);
		return -ENOMEM;
	}
	rc = mimo_bdev_open(bdev_name, true, ns_bdev_event, ns, &ns->desc);
	if (rc != 0) {
		free(ns->bdev_name);
		free(ns);
		return rc == -EPERM ? -EBUSY : rc;
	}
	ns->bdev = mimo_bdev_desc_get_bdev(ns->desc);
	if (bdev_in_use(s->tgt, ns->bdev)) {
		mimo_bdev_close(ns->desc);
		free(ns->bdev_name);
		free(ns);
		return -EBUSY;
	}
	ns->block_size = mimo_bdev_get_block_size(ns->bdev);
	ns->block_shift = (uint32_t)__builtin_ctz(ns->block_size);
	ns->num_blocks = mimo_bdev_get_num_blocks(ns->bdev);
	ns->opt_uuid = o.has_uuid;
	ns->opt_nguid = o.has_nguid;
	memcpy(ns->uuid, o.has_uuid ? o.uuid : mimo_bdev_get_uuid(ns->bdev), 16);
	memcpy(ns->nguid, o.has_nguid ? o.nguid : ns->uuid, 16);
	if (o.has_eui64) {
		memcpy(ns->eui64, o.eui64, 8);
		ns->has_eui64 = true;
	}
	atomic_store_explicit(&s->ns[nsid - 1], ns, memory_order_release);
	s->num_ns++;
	MIMO_INFO(COMP, "%s: namespace %u is bdev %s%s", s->nqn, nsid, bdev_name,
		  ns->auto_visible ? "" : " (visible to no host until one is added to it)");
	nvmf_ctrlr_ns_changed(s, ns);
	return (int)nsid;
}

static void forget_visibility(struct mimo_nvmf_subsystem *s, struct nvmf_ns *ns);

static void remove_ns_drained(struct nvmf_ns *ns)
{
	nvmf_ns_free(ns);
}

MIMO_EXPORT int mimo_nvmf_subsystem_remove_ns(struct mimo_nvmf_subsystem *s, uint32_t nsid)
{
	struct nvmf_ns *ns;

	if (nsid == 0 || nsid > s->max_nsid || s->state == NVMF_SUBSYS_DELETING)
		return -ENOENT;
	ns = atomic_exchange(&s->ns[nsid - 1], NULL);
	if (ns == NULL)
		return -ENOENT;
	s->num_ns--;
	nvmf_ctrlr_ns_changed(s, ns);
	forget_visibility(s, ns);
	nvmf_ns_drain(ns, remove_ns_drained);
	return 0;
}

/* --- namespace visibility ------------------------------------------------------------------ */

static struct nvmf_host *ns_find_host(const struct nvmf_ns *ns, const char *nqn)
{
	struct nvmf_host *h;

	TAILQ_FOREACH(h, &ns->visible_hosts, link)
	{
		if (strcmp(h->nqn, nqn) == 0)
			return h;
	}
	return NULL;
}

/* The controllers' bits for a namespace that is going: a later one with its nsid starts
 * hidden from everyone. Quietly: they got their notice for the removal. */
static void forget_visibility(struct mimo_nvmf_subsystem *s, struct nvmf_ns *ns)
{
	struct nvmf_ctrlr *c;
	struct nvmf_host *h;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	atomic_fetch_and(&c->visible_ns[(ns->nsid - 1) / 64], ~(1ull << ((ns->nsid - 1) % 64)));
	while ((h = TAILQ_FIRST(&ns->visible_hosts)) != NULL) {
		TAILQ_REMOVE(&ns->visible_hosts, h, link);
		free(h);
	}
}

/* The namespace for a visibility change, or an error. */
static int visibility_target(struct mimo_nvmf_subsystem *s, uint32_t nsid, const char *hostnqn,
			     struct nvmf_ns **out)
{
	struct nvmf_ns *ns;

	if (nsid == 0 || hostnqn == NULL || !nvmf_nqn_is_valid(hostnqn))
		return -EINVAL;
	ns = nvmf_subsystem_get_ns(s, nsid);
	if (ns == NULL)
		return -ENOENT;
	/* Visible to all: there is no list to change (SPDK refuses the same). */
	if (ns->auto_visible)
		return -EPERM;
	*out = ns;
	return 0;
}

static void set_host_visibility(struct mimo_nvmf_subsystem *s, uint32_t nsid, const char *hostnqn,
				bool visible)
{
	struct nvmf_ctrlr *c;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		if (strcmp(c->hostnqn, hostnqn) == 0)
			nvmf_ctrlr_set_visible(c, nsid, visible);
	}
}

MIMO_EXPORT int mimo_nvmf_ns_add_host(struct mimo_nvmf_subsystem *s, uint32_t nsid,
				      const char *hostnqn)
{
	struct nvmf_host *h;
	struct nvmf_ns *ns;
	int rc = visibility_target(s, nsid, hostnqn, &ns);

	if (rc != 0)
		return rc;
	if (ns_find_host(ns, hostnqn) != NULL)
		return -EEXIST;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	snprintf(h->nqn, sizeof(h->nqn), "%s", hostnqn);
	TAILQ_INSERT_TAIL(&ns->visible_hosts, h, link);
	set_host_visibility(s, nsid, hostnqn, true);
	MIMO_INFO(COMP, "%s: namespace %u is visible to %s", s->nqn, nsid, hostnqn);
	return 0;
}

MIMO_EXPORT int mimo_nvmf_ns_remove_host(struct mimo_nvmf_subsystem *s, uint32_t nsid,
					 const char *hostnqn)
{
	struct nvmf_host *h;
	struct nvmf_ns *ns;
	int rc = visibility_target(s, nsid, hostnqn, &ns);

	if (rc != 0)
		return rc;
	h = ns_find_host(ns, hostnqn);
	if (h == NULL)
		return -ENOENT;
	TAILQ_REMOVE(&ns->visible_hosts, h, link);
	free(h);
	set_host_visibility(s, nsid, hostnqn, false);
	MIMO_INFO(COMP, "%s: namespace %u is no longer visible to %s", s->nqn, nsid, hostnqn);
	return 0;
}

/* --- hosts --------------------------------------------------------------------------------- */

struct nvmf_host *nvmf_subsystem_find_host(const struct mimo_nvmf_subsystem *s, const char *nqn)
{
	struct nvmf_host *h;

	TAILQ_FOREACH(h, &s->hosts, link)
	{
		if (strcmp(h->nqn, nqn) == 0)
			return h;
	}
	return NULL;
}

void nvmf_host_free(struct nvmf_host *h)
{
	mimo_key_put(h->dhchap_key);
	mimo_key_put(h->dhchap_ctrlr_key);
	mimo_key_put(h->psk);
	free(h);
}

MIMO_EXPORT void mimo_nvmf_host_opts_init(struct mimo_nvmf_host_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
}

/* A DH-HMAC-CHAP key of the keyring by name (NULL name: none). */
static int dhchap_key_get(const char *name, struct mimo_key **out)
{
	struct mimo_key *k;

	*out = NULL;
	if (name == NULL)
		return 0;
	k = mimo_keyring_get(name);
	if (k == NULL)
		return -ENOKEY;
	if (mimo_key_kind(k) != MIMO_KEY_DHCHAP) {
		mimo_key_put(k);
		return -EKEYREJECTED;
	}
	*out = k;
	return 0;
}

/* A controller key needs a host key: the controller proves itself only within a transaction
 * in which the host proved itself first. */
static int dhchap_keys_get(const char *key, const char *ctrlr_key, struct mimo_key **k,
			   struct mimo_key **ck)
{
	int rc;

	if (key == NULL && ctrlr_key != NULL)
		return -EINVAL;
	rc = dhchap_key_get(key, k);
	if (rc == 0) {
		rc = dhchap_key_get(ctrlr_key, ck);
		if (rc != 0) {
			mimo_key_put(*k);
			*k = NULL;
		}
	}
	return rc;
}

/* A TLS PSK of the keyring by name. */
static int psk_get(const char *name, struct mimo_key **out)
{
	struct mimo_key *k = mimo_keyring_get(name);

	*out = NULL;
	if (k == NULL)
		return -ENOKEY;
	if (mimo_key_kind(k) != MIMO_KEY_TLS_PSK) {
		mimo_key_put(k);
		return -EKEYREJECTED;
	}
	*out = k;
	return 0;
}

MIMO_EXPORT int mimo_nvmf_subsystem_add_host_ext(struct mimo_nvmf_subsystem *s, const char *hostnqn,
						 const struct mimo_nvmf_host_opts *opts)
{
	struct mimo_nvmf_host_opts o;
	struct nvmf_host *h;
	int rc;

	mimo_nvmf_host_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0 || !nvmf_nqn_is_valid(hostnqn) ||
	    s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY)
		return -EINVAL;
	if (nvmf_subsystem_find_host(s, hostnqn) != NULL)
		return -EEXIST;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	rc = dhchap_keys_get(o.dhchap_key, o.dhchap_ctrlr_key, &h->dhchap_key,
			     &h->dhchap_ctrlr_key);
	if (rc == 0 && o.psk != NULL)
		rc = psk_get(o.psk, &h->psk);
	if (rc == 0 && h->psk != NULL)
		rc = nvmf_tgt_psk_set(s->tgt, s->nqn, hostnqn, h->psk);
	if (rc != 0) {
		nvmf_host_free(h);
		return rc;
	}
	snprintf(h->nqn, sizeof(h->nqn), "%s", hostnqn);
	TAILQ_INSERT_TAIL(&s->hosts, h, link);
	if (h->psk != NULL)
		MIMO_INFO(COMP, "%s: host %s connects over TLS only (PSK %s)", s->nqn, hostnqn,
			  mimo_key_name(h->psk));
	if (h->dhchap_key != NULL)
		MIMO_INFO(COMP, "%s: host %s must authenticate (DH-HMAC-CHAP key %s%s%s)", s->nqn,
			  hostnqn, mimo_key_name(h->dhchap_key),
			  h->dhchap_ctrlr_key != NULL ? ", controller key " : "",
			  h->dhchap_ctrlr_key != NULL ? mimo_key_name(h->dhchap_ctrlr_key) : "");
	nvmf_tgt_discovery_changed(s->tgt);
	return 0;
}

MIMO_EXPORT int mimo_nvmf_subsystem_add_host(struct mimo_nvmf_subsystem *ss, const char *hostnqn)
{
	return mimo_nvmf_subsystem_add_host_ext(ss, hostnqn, NULL);
}

MIMO_EXPORT int mimo_nvmf_subsystem_set_keys(struct mimo_nvmf_subsystem *s, const char *hostnqn,
					     const char *dhchap_key, const char *dhchap_ctrlr_key)
{
	struct nvmf_host *h = hostnqn != NULL ? nvmf_subsystem_find_host(s, hostnqn) : NULL;
	struct mimo_key *k, *ck;
	int rc;

	if (h == NULL)
		return -ENOENT;
	rc = dhchap_keys_get(dhchap_key, dhchap_ctrlr_key, &k, &ck);
	if (rc != 0)
		return rc;
	mimo_key_put(h->dhchap_key);
	mimo_key_put(h->dhchap_ctrlr_key);
	h->dhchap_key = k;
	h->dhchap_ctrlr_key = ck;
	MIMO_INFO(COMP,
		  "%s: host %s: DH-HMAC-CHAP key %s, controller key %s (from the next "
		  "authentication on)",
		  s->nqn, hostnqn, k != NULL ? mimo_key_name(k) : "none",
		  ck != NULL ? mimo_key_name(ck) : "none");
	return 0;
}

MIMO_EXPORT int mimo_nvmf_subsystem_remove_host(struct mimo_nvmf_subsystem *s, const char *hostnqn)
{
	struct nvmf_host *h = hostnqn != NULL ? nvmf_subsystem_find_host(s, hostnqn) : NULL;
	struct nvmf_ctrlr *c;

	if (h == NULL)
		return -ENOENT;
	TAILQ_REMOVE(&s->hosts, h, link);
	if (h->psk != NULL)
		(void)nvmf_tgt_psk_set(s->tgt, s->nqn, h->nqn, NULL);
	nvmf_host_free(h);
	if (!s->allow_any_host) {
		TAILQ_FOREACH(c, &s->ctrlrs, link)
		{
			if (strcmp(c->hostnqn, hostnqn) == 0)
				nvmf_ctrlr_disconnect(c);
		}
	}
	nvmf_tgt_discovery_changed(s->tgt);
	return 0;
}

MIMO_EXPORT void mimo_nvmf_subsystem_allow_any_host(struct mimo_nvmf_subsystem *s, bool allow)
{
	if (s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY || s->allow_any_host == allow)
		return;
	s->allow_any_host = allow;
	nvmf_tgt_discovery_changed(s->tgt);
}

MIMO_EXPORT bool mimo_nvmf_subsystem_host_allowed(const struct mimo_nvmf_subsystem *s,
						  const char *hostnqn)
{
	return s->allow_any_host ||
	       (hostnqn != NULL && nvmf_subsystem_find_host(s, hostnqn) != NULL);
}

/* --- listeners ----------------------------------------------------------------------------- */

bool nvmf_subsystem_listens_on(const struct mimo_nvmf_subsystem *s, const struct nvmf_port *port)
{
	const struct nvmf_subsys_listener *l;

	if (s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY)
		return true;
	TAILQ_FOREACH(l, &s->listeners, link)
	{
		if (l->port == port)
			return true;
	}
	return false;
}

MIMO_EXPORT void mimo_nvmf_listener_opts_init(struct mimo_nvmf_listener_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
}

MIMO_EXPORT void mimo_nvmf_subsystem_add_listener(struct mimo_nvmf_subsystem *s,
						  struct mimo_nvmf_listen_addr *addr,
						  mimo_nvmf_done_cb cb, void *cb_arg)
{
	mimo_nvmf_subsystem_add_listener_ext(s, addr, NULL, cb, cb_arg);
}

MIMO_EXPORT void mimo_nvmf_subsystem_add_listener_ext(struct mimo_nvmf_subsystem *s,
						      struct mimo_nvmf_listen_addr *addr,
						      const struct mimo_nvmf_listener_opts *opts,
						      mimo_nvmf_done_cb cb, void *cb_arg)
{
	struct nvmf_transport *tt = nvmf_tgt_find_transport(s->tgt, addr->trtype);
	struct mimo_nvmf_listener_opts o;
	struct nvmf_subsys_listener *l;
	struct nvmf_port *port;
	json_t *p;
	int rc;

	mimo_nvmf_listener_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0) {
		rc = -EINVAL;
		goto out;
	}
	/* The discovery subsystem has no hosts, so no PSKs to make a secure channel with. */
	if (o.secure_channel && s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY) {
		rc = -EINVAL;
		goto out;
	}
	/* A type no transport has, or one this target did not create. */
	if (nvmf_transport_ops_find(addr->trtype) == NULL) {
		rc = -EINVAL;
		goto out;
	}
	if (tt == NULL) {
		rc = -ENOENT;
		goto out;
	}
	if (s->state == NVMF_SUBSYS_DELETING) {
		rc = -EBUSY;
		goto out;
	}
	port = nvmf_port_find(tt, addr);
	if (port != NULL && nvmf_subsystem_listens_on(s, port) &&
	    s->subtype != MIMO_NVMF_SUBTYPE_DISCOVERY) {
		rc = -EEXIST;
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = nvmf_listener_ana_init(s, l);
	if (rc != 0) {
		free(l);
		goto out;
	}
	rc = nvmf_port_get(tt, addr, &o, &port);
	if (rc != 0) {
		free(l->ana_state);
		free(l);
		goto out;
	}
	l->port = port;
	TAILQ_INSERT_TAIL(&s->listeners, l, link);
	p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "nqn", s->nqn, "trtype", port->addr.trtype,
		      "adrfam", port->addr.adrfam, "traddr", port->addr.traddr, "trsvcid",
		      port->addr.trsvcid);
	if (port->secure)
		json_object_set_new(p, "secure_channel", json_true());
	nvmf_emit("nvmf_listener_added", p, s->nqn);
	MIMO_INFO(COMP, "%s: listening on %s:%s%s", s->nqn, port->addr.traddr, port->addr.trsvcid,
		  port->secure ? " (secure channel: TLS 1.3 with PSKs only)" : "");
	nvmf_tgt_discovery_changed(s->tgt);
out:
	if (cb != NULL)
		cb(cb_arg, rc);
}

MIMO_EXPORT void mimo_nvmf_subsystem_remove_listener(struct mimo_nvmf_subsystem *s,
						     const struct mimo_nvmf_listen_addr *addr,
						     mimo_nvmf_done_cb cb, void *cb_arg)
{
	struct nvmf_transport *tt = nvmf_tgt_find_transport(s->tgt, addr->trtype);
	struct nvmf_port *port = tt != NULL ? nvmf_port_find(tt, addr) : NULL;
	struct nvmf_subsys_listener *l;
	struct nvmf_ctrlr *c;
	int rc = -ENOENT;

	TAILQ_FOREACH(l, &s->listeners, link)
	{
		if (port != NULL && l->port == port)
			break;
	}
	if (l != NULL) {
		TAILQ_REMOVE(&s->listeners, l, link);
		TAILQ_FOREACH(c, &s->ctrlrs, link)
		{
			if (c->port == port)
				nvmf_ctrlr_disconnect(c);
		}
		nvmf_port_put(port);
		free(l->ana_state);
		free(l);
		nvmf_tgt_discovery_changed(s->tgt);
		rc = 0;
	}
	if (cb != NULL)
		cb(cb_arg, rc);
}
