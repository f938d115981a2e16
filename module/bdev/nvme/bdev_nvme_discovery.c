/*
 * bdev_nvme_start_discovery / _stop_discovery / _get_discovery_info: a discovery controller
 * kept connected on reactor 0; every NVMe subsystem its log lists is attached as controller
 * "<name><i>" (a further listener of a subsystem already attached becomes a failover path of
 * it), entries that leave the log are detached, and a Discovery Log Change notice reads the
 * log again. Nothing blocks: the log is read with asynchronous Get Log Page commands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"
#include "discovery_log.h"
#include "log.h"
#include "nvme_internal.h"

#define COMP	     "bdev_nvme"
#define DISC_POLL_US 10000
#define LOG_TRIES    3		    /* reads of a log that changed while read */
#define MAX_LOG	     (1024u * 1024) /* 1023 entries */
#define NAME_MAX_LEN 64

struct disc_entry {
	char name[NAME_MAX_LEN]; /* the controller it is (a path of) */
	struct mimo_nvme_trid trid;
	bool seen;     /* in the last log read */
	bool attached; /* its attach or path addition succeeded */
	bool pending;  /* its attach or path addition is under way */
	TAILQ_ENTRY(disc_entry) link;
};

struct disc_ref {
	struct mimo_nvme_trid trid;
	TAILQ_ENTRY(disc_ref) link;
};

struct disc_ctx {
	char *name;
	struct mimo_nvme_trid trid;
	struct mimo_nvme_ctrlr_opts opts; /* the host's NQN, for every attach */
	struct bdev_nvme_reconnect_opts reconnect;
	bool wait_for_attach;
	struct mimo_nvme_connect_ctx *connect;
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_detach_ctx *detach;
	struct mimo_poller *poller;
	int index;
	/* The log: read again when a notice came (again) while reading. */
	bool reading, again;
	int tries;
	uint8_t *page;
	uint32_t page_len, got;
	uint64_t genctr;
	int pending; /* attaches under way */
	TAILQ_HEAD(, disc_entry) entries;
	TAILQ_HEAD(, disc_ref) referrals;
	/* The start RPC's answer, once the first log is read (and attached: wait_for_attach). */
	void (*start_cb)(void *arg, int rc);
	void *start_arg;
	void (*stop_cb)(void *arg);
	void *stop_arg;
	TAILQ_ENTRY(disc_ctx) link;
};

static TAILQ_HEAD(, disc_ctx) g_discs = TAILQ_HEAD_INITIALIZER(g_discs);

static struct disc_ctx *find(const char *name)
{
	struct disc_ctx *d;

	TAILQ_FOREACH(d, &g_discs, link)
	{
		if (strcmp(d->name, name) == 0)
			return d;
	}
	return NULL;
}

static void start_done(struct disc_ctx *d, int rc)
{
	void (*cb)(void *arg, int rc) = d->start_cb;

	d->start_cb = NULL;
	if (cb != NULL)
		cb(d->start_arg, rc);
}

static void read_log(struct disc_ctx *d);

/* --- attaching what the log lists ----------------------------------------------------------- */

static bool same_path(const struct mimo_nvme_trid *a, const struct mimo_nvme_trid *b)
{
	return strcmp(a->subnqn, b->subnqn) == 0 && strcmp(a->traddr, b->traddr) == 0 &&
	       strcmp(a->trsvcid, b->trsvcid) == 0;
}

static void attach_waiting(struct disc_ctx *d, const char *name);

struct attach_arg {
	char *disc;
	struct mimo_nvme_trid trid;
};

/* Back from an attach or a path addition: the entry (if both are still there) says so. */
static void entry_attached(void *arg, int rc, json_t *names)
{
	struct attach_arg *a = arg;
	struct disc_ctx *d = find(a->disc);
	struct disc_entry *e = NULL;

	(void)names;
	if (d != NULL) {
		TAILQ_FOREACH(e, &d->entries, link)
		{
			if (same_path(&e->trid, &a->trid))
				break;
		}
		d->pending--;
	}
	if (e != NULL) {
		e->pending = false;
		e->attached = rc == 0;
		if (rc == 0) {
			bdev_nvme_mark_discovered(e->name);
			attach_waiting(d, e->name);
		} else
			MIMO_ERR(COMP, "%s: cannot attach %s at %s:%s: %s", d->name, e->trid.subnqn,
				 e->trid.traddr, e->trid.trsvcid, strerror(-rc));
	}
	if (d != NULL && d->pending == 0 && d->wait_for_attach)
		start_done(d, 0);
	free(a->disc);
	free(a);
}

static void attach_entry(struct disc_ctx *d, struct disc_entry *e, bool new_ctrlr);

/* Paths of a subsystem whose controller was still being attached when the log listed them:
 * added now that it is. */
static void attach_waiting(struct disc_ctx *d, const char *name)
{
	struct disc_entry *e;

	TAILQ_FOREACH(e, &d->entries, link)
	{
		if (e->seen && !e->attached && !e->pending && strcmp(e->name, name) == 0)
			attach_entry(d, e, false);
	}
}

static void attach_entry(struct disc_ctx *d, struct disc_entry *e, bool new_ctrlr)
{
	struct attach_arg *a = calloc(1, sizeof(*a));
	const char *why;
	int rc = -ENOMEM;

	if (a != NULL && (a->disc = strdup(d->name)) != NULL) {
		a->trid = e->trid;
		if (new_ctrlr)
			rc = bdev_nvme_attach(e->name, &e->trid, &d->opts, &d->reconnect, NULL,
					      NULL, NULL, entry_attached, a);
		else
			rc = bdev_nvme_add_path(e->name, &e->trid, NULL, entry_attached, a, &why);
	}
	if (rc != 0) {
		MIMO_ERR(COMP, "%s: cannot attach %s at %s:%s: %s", d->name, e->trid.subnqn,
			 e->trid.traddr, e->trid.trsvcid, strerror(-rc));
		if (a != NULL)
			free(a->disc);
		free(a);
		return;
	}
	e->pending = true;
	d->pending++;
}

/* A listed entry gone from the log: its path goes, or its controller with its last path. */
static void detach_entry(struct disc_ctx *d, struct disc_entry *e)
{
	const struct mimo_nvme_trid *paths;
	uint32_t n, i;

	MIMO_INFO(COMP, "%s: %s at %s:%s left the discovery log", d->name, e->trid.subnqn,
		  e->trid.traddr, e->trid.trsvcid);
	if (e->attached) {
		paths = bdev_nvme_get_paths(e->name, &n);
		for (i = 0; i < n && !same_path(&paths[i], &e->trid); i++)
			;
		if (n > 1 && i < n)
			(void)bdev_nvme_remove_path(e->name, i);
		else if (n == 1 && i == 0)
			(void)bdev_nvme_detach(e->name, NULL, NULL);
	}
	TAILQ_REMOVE(&d->entries, e, link);
	free(e);
}

static void apply_log(struct disc_ctx *d, const struct discovery_record *r, size_t num)
{
	struct disc_entry *e, *tmp;
	struct disc_ref *ref;

	while ((ref = TAILQ_FIRST(&d->referrals)) != NULL) {
		TAILQ_REMOVE(&d->referrals, ref, link);
		free(ref);
	}
	TAILQ_FOREACH(e, &d->entries, link)
	e->seen = false;
	for (size_t i = 0; i < num; i++) {
		struct disc_entry *same_nqn = NULL;

		if (r[i].subtype != MIMO_NVMF_SUBTYPE_NVME) {
			ref = calloc(1, sizeof(*ref));
			if (ref != NULL) {
				ref->trid = r[i].trid;
				TAILQ_INSERT_TAIL(&d->referrals, ref, link);
			}
			continue;
		}
		TAILQ_FOREACH(e, &d->entries, link)
		{
			if (same_path(&e->trid, &r[i].trid))
				break;
			/* The first of the subsystem's entries is the one that attached it. */
			if (same_nqn == NULL && strcmp(e->trid.subnqn, r[i].trid.subnqn) == 0)
				same_nqn = e;
		}
		if (e != NULL) {
			e->seen = true;
			continue;
		}
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			continue;
		e->trid = r[i].trid;
		e->seen = true;
		if (same_nqn != NULL)
			snprintf(e->name, sizeof(e->name), "%s", same_nqn->name);
		else
			snprintf(e->name, sizeof(e->name), "%s%d", d->name, d->index++);
		TAILQ_INSERT_TAIL(&d->entries, e, link);
		MIMO_INFO(COMP, "%s: %s at %s:%s: %s %s", d->name, e->trid.subnqn, e->trid.traddr,
			  e->trid.trsvcid, same_nqn != NULL ? "a new path of" : "attaching as",
			  e->name);
		/* A path of a controller still attaching waits for it (attach_waiting). */
		if (same_nqn == NULL || same_nqn->attached)
			attach_entry(d, e, same_nqn == NULL);
	}
	for (e = TAILQ_FIRST(&d->entries); e != NULL; e = tmp) {
		tmp = TAILQ_NEXT(e, link);
		if (!e->seen && !e->pending)
			detach_entry(d, e);
	}
}

/* --- reading the log ------------------------------------------------------------------------ */

static void log_read_done(struct disc_ctx *d, int rc)
{
	struct discovery_record *r = NULL;
	size_t n = 0;

	d->reading = false;
	if (rc == 0)
		rc = discovery_log_parse(d->page, d->page_len, &r, &n);
	free(d->page);
	d->page = NULL;
	if (rc != 0) {
		MIMO_ERR(COMP, "%s: cannot read the discovery log: %s", d->name, strerror(-rc));
		start_done(d, rc);
		return;
	}
	apply_log(d, r, n);
	free(r);
	if (!d->wait_for_attach || d->pending == 0)
		start_done(d, 0);
	if (d->again) {
		d->again = false;
		read_log(d);
	}
}

static void log_chunk(void *arg, const struct mimo_nvme_cpl *cpl);

/* The next piece: the header first (for the size), then the rest, then the header again. */
static void next_chunk(struct disc_ctx *d)
{
	uint32_t max = mimo_nvme_ctrlr_get_max_xfer_size(d->ctrlr);
	uint32_t len;
	int rc;

	max = max >= 1024 ? max / 1024 * 1024 : 1024;
	len = MIMO_MIN(d->page_len - d->got, max);
	rc = mimo_nvme_ctrlr_cmd_get_log_page(d->ctrlr, MIMO_NVME_LOG_DISCOVERY, 0,
					      d->page + d->got, len, d->got, log_chunk, d);
	if (rc != 0)
		log_read_done(d, rc);
}

static void log_chunk(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct disc_ctx *d = arg;
	const struct mimo_nvmf_discovery_log *hdr = (const void *)d->page;
	uint32_t len;

	if (mimo_nvme_cpl_is_error(cpl)) {
		log_read_done(d, -EIO);
		return;
	}
	if (d->page_len == sizeof(*hdr)) {
		/* The header: now the whole page, unless it is all there is. */
		if (hdr->numrec > (MAX_LOG - sizeof(*hdr)) / sizeof(hdr->entries[0])) {
			log_read_done(d, -EPROTO);
			return;
		}
		d->genctr = hdr->genctr;
		len = (uint32_t)(sizeof(*hdr) + hdr->numrec * sizeof(hdr->entries[0]));
		if (len > sizeof(*hdr)) {
			uint8_t *p = realloc(d->page, len);

			if (p == NULL) {
				log_read_done(d, -ENOMEM);
				return;
			}
			d->page = p;
			d->page_len = len;
			d->got = 0;
			next_chunk(d);
			return;
		}
		log_read_done(d, 0);
		return;
	}
	d->got += MIMO_MIN(
		d->page_len - d->got,
		MIMO_MAX(mimo_nvme_ctrlr_get_max_xfer_size(d->ctrlr) / 1024 * 1024, 1024u));
	if (d->got < d->page_len) {
		next_chunk(d);
		return;
	}
	/* Changed while read (another generation): read it all again, a few times. */
	if (hdr->genctr != d->genctr && ++d->tries < LOG_TRIES) {
		free(d->page);
		d->page = NULL;
		d->reading = false;
		read_log(d);
		return;
	}
	log_read_done(d, 0);
}

static void read_log(struct disc_ctx *d)
{
	if (d->reading) {
		d->again = true;
		return;
	}
	d->page = calloc(1, sizeof(struct mimo_nvmf_discovery_log));
	if (d->page == NULL) {
		start_done(d, -ENOMEM);
		return;
	}
	d->reading = true;
	d->page_len = sizeof(struct mimo_nvmf_discovery_log);
	d->got = 0;
	next_chunk(d);
}

static void on_notice(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct disc_ctx *d = arg;

	(void)cpl; /* a discovery controller's notices are Discovery Log Changes */
	d->tries = 0;
	read_log(d);
}

/* --- the discovery controller --------------------------------------------------------------- */

static void disc_free(struct disc_ctx *d)
{
	struct disc_entry *e;
	struct disc_ref *r;

	while ((e = TAILQ_FIRST(&d->entries)) != NULL) {
		TAILQ_REMOVE(&d->entries, e, link);
		free(e);
	}
	while ((r = TAILQ_FIRST(&d->referrals)) != NULL) {
		TAILQ_REMOVE(&d->referrals, r, link);
		free(r);
	}
	free(d->page);
	free(d->name);
	free(d);
}

static int disc_poll(void *arg)
{
	struct disc_ctx *d = arg;
	int rc;

	if (d->detach != NULL) {
		if (mimo_nvme_detach_poll(d->detach) == -EAGAIN)
			return 1;
		d->detach = NULL;
		mimo_poller_unregister(&d->poller);
		TAILQ_REMOVE(&g_discs, d, link);
		if (d->stop_cb != NULL)
			d->stop_cb(d->stop_arg);
		disc_free(d);
		return 1;
	}
	if (d->connect != NULL) {
		rc = mimo_nvme_connect_poll(d->connect, &d->ctrlr);
		if (rc == -EAGAIN)
			return 1;
		d->connect = NULL;
		if (rc != 0) {
			MIMO_ERR(COMP, "%s: cannot connect to the discovery service at %s:%s: %s",
				 d->name, d->trid.traddr, d->trid.trsvcid, strerror(-rc));
			mimo_poller_unregister(&d->poller);
			TAILQ_REMOVE(&g_discs, d, link);
			start_done(d, rc);
			disc_free(d);
			return 1;
		}
		mimo_nvme_ctrlr_register_aer_callback(d->ctrlr, on_notice, d);
		read_log(d);
		return 1;
	}
	/* Keep-alives and notices. A lost discovery controller is not reconnected: what it
	 * attached stays, and no change of the log is followed any more. */
	rc = mimo_nvme_ctrlr_process_admin_completions(d->ctrlr);
	return rc > 0 ? 1 : 0;
}

int bdev_nvme_start_discovery(const char *name, const struct mimo_nvme_trid *trid,
			      const char *hostnqn, bool wait_for_attach,
			      const struct bdev_nvme_reconnect_opts *reconnect,
			      void (*cb)(void *arg, int rc), void *arg)
{
	struct disc_ctx *d;
	int rc;

	if (find(name) != NULL)
		return -EEXIST;
	TAILQ_FOREACH(d, &g_discs, link)
	{
		if (same_path(&d->trid, trid))
			return -EALREADY;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->name = strdup(name)) == NULL) {
		free(d);
		return -ENOMEM;
	}
	d->trid = *trid;
	bdev_nvme_ctrlr_opts_init(&d->opts);
	if (hostnqn != NULL)
		snprintf(d->opts.hostnqn, sizeof(d->opts.hostnqn), "%s", hostnqn);
	d->reconnect = *reconnect;
	d->wait_for_attach = wait_for_attach;
	d->start_cb = cb;
	d->start_arg = arg;
	TAILQ_INIT(&d->entries);
	TAILQ_INIT(&d->referrals);
	rc = mimo_nvme_connect_async(trid, &d->opts, &d->connect);
	if (rc == 0) {
		d->poller = mimo_poller_register(disc_poll, d, DISC_POLL_US);
		if (d->poller == NULL) {
			mimo_nvme_connect_abort(d->connect);
			rc = -ENOMEM;
		}
	}
	if (rc != 0) {
		disc_free(d);
		return rc;
	}
	TAILQ_INSERT_TAIL(&g_discs, d, link);
	return 0;
}

int bdev_nvme_stop_discovery(const char *name, void (*cb)(void *arg), void *arg)
{
	struct disc_ctx *d = find(name);
	struct disc_entry *e;

	if (d == NULL)
		return -ENOENT;
	if (d->detach != NULL || d->connect != NULL || d->reading || d->pending != 0)
		return -EBUSY; /* a moment later */
	/* What it attached goes with it (SPDK's), then the discovery controller. */
	TAILQ_FOREACH(e, &d->entries, link)
	{
		if (e->attached)
			(void)bdev_nvme_detach(e->name, NULL, NULL);
		e->attached = false;
	}
	d->stop_cb = cb;
	d->stop_arg = arg;
	start_done(d, -ECANCELED);
	if (mimo_nvme_detach_async(d->ctrlr, &d->detach) != 0) {
		mimo_poller_unregister(&d->poller);
		TAILQ_REMOVE(&g_discs, d, link);
		if (cb != NULL)
			cb(arg);
		disc_free(d);
	}
	return 0;
}

static json_t *trid_json(const struct mimo_nvme_trid *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "trtype", "TCP", "adrfam",
			 t->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4", "traddr", t->traddr,
			 "trsvcid", t->trsvcid, "subnqn", t->subnqn);
}

json_t *bdev_nvme_discovery_info_json(void)
{
	json_t *arr = json_array();
	struct disc_ctx *d;

	TAILQ_FOREACH(d, &g_discs, link)
	{
		json_t *refs = json_array();
		struct disc_ref *r;

		TAILQ_FOREACH(r, &d->referrals, link)
		json_array_append_new(refs, json_pack("{s:o}", "trid", trid_json(&r->trid)));
		json_array_append_new(arr, json_pack("{s:s, s:o, s:o}", "name", d->name, "trid",
						     trid_json(&d->trid), "referrals", refs));
	}
	return arr;
}

void bdev_nvme_discovery_config_json(json_t *config)
{
	struct disc_ctx *d;

	/* SPDK's: the service without its subnqn; the controllers it attached are not saved
	 * (the replayed discovery attaches them). */
	TAILQ_FOREACH(d, &g_discs, link)
	json_array_append_new(
		config,
		json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i, s:I, s:I}}", "method",
			  "bdev_nvme_start_discovery", "params", "name", d->name, "hostnqn",
			  d->ctrlr != NULL ? d->ctrlr->hostnqn : d->opts.hostnqn, "trtype", "TCP",
			  "adrfam", d->trid.adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4",
			  "traddr", d->trid.traddr, "trsvcid", d->trid.trsvcid, "wait_for_attach",
			  d->wait_for_attach, "ctrlr_loss_timeout_sec",
			  (int)d->reconnect.ctrlr_loss_timeout_sec, "reconnect_delay_sec",
			  (json_int_t)d->reconnect.reconnect_delay_sec, "fast_io_fail_timeout_sec",
			  (json_int_t)d->reconnect.fast_io_fail_timeout_sec));
}

bool bdev_nvme_discovery_idle(void)
{
	return TAILQ_EMPTY(&g_discs);
}

void bdev_nvme_discovery_fini(void)
{
	struct disc_ctx *d, *tmp;

	for (d = TAILQ_FIRST(&g_discs); d != NULL; d = tmp) {
		tmp = TAILQ_NEXT(d, link);
		if (d->connect != NULL) {
			mimo_nvme_connect_abort(d->connect);
			d->connect = NULL;
			mimo_poller_unregister(&d->poller);
			TAILQ_REMOVE(&g_discs, d, link);
			start_done(d, -ECANCELED);
			disc_free(d);
		} else if (d->detach == NULL && !d->reading) {
			/* Its controllers are the shutdown's to detach. */
			struct disc_entry *e;

			TAILQ_FOREACH(e, &d->entries, link)
			e->attached = false;
			start_done(d, -ECANCELED);
			if (mimo_nvme_detach_async(d->ctrlr, &d->detach) != 0) {
				mimo_poller_unregister(&d->poller);
				TAILQ_REMOVE(&g_discs, d, link);
				disc_free(d);
			}
		}
	}
}
