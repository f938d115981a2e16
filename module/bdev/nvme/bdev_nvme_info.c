/*
 * What bdev_nvme reports about its controllers beyond bdev_nvme_get_controllers: the SMART /
 * health log page (bdev_nvme_get_controller_health_info), each reactor's transport counters
 * (bdev_nvme_get_transport_statistics) and I/O paths (bdev_nvme_get_io_paths), in SPDK's
 * shapes. A reactor's channels and counters are read on that reactor (a walk over the
 * reactors), the controllers on reactor 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"
#include "nvme_internal.h"

/* --- health ------------------------------------------------------------------------------- */

struct health_ctx {
	struct nvme_bdev_ctrlr *nbc;
	bdev_nvme_json_cb cb;
	void *arg;
	struct mimo_nvme_health_log page;
};

/* Identify strings are space-padded ASCII. */
static json_t *trimmed(const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
		len--;
	return json_stringn(s, len);
}

/* SPDK writes the 128-bit counters as decimal numbers; jansson's integers are 64-bit, so
 * one beyond (no target counts that far) becomes the nearest double. */
static json_t *u128(const uint64_t v[2])
{
	if (v[1] == 0 && v[0] <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v[0]);
	return json_real((double)v[1] * 18446744073709551616.0 + (double)v[0]);
}

static void health_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct health_ctx *h = arg;
	const struct mimo_nvme_health_log *p = &h->page;
	const struct mimo_nvme_ctrlr_data *cd;
	json_t *o;

	if (mimo_nvme_cpl_is_error(cpl)) {
		h->cb(h->arg, -EIO, NULL);
		free(h);
		return;
	}
	cd = mimo_nvme_ctrlr_get_data(h->nbc->ctrlr);
	/* SPDK's names, order and units (temperatures in Celsius from the page's kelvin). */
	o = json_object();
	json_object_set_new(o, "model_number", trimmed(cd->mn, sizeof(cd->mn)));
	json_object_set_new(o, "serial_number", trimmed(cd->sn, sizeof(cd->sn)));
	json_object_set_new(o, "firmware_revision", trimmed(cd->fr, sizeof(cd->fr)));
	json_object_set_new(o, "traddr", json_string(h->nbc->trid.traddr));
	json_object_set_new(o, "critical_warning", json_integer(p->critical_warning));
	json_object_set_new(o, "temperature_celsius",
			    json_integer((json_int_t)p->temperature - 273));
	json_object_set_new(o, "available_spare_percentage", json_integer(p->available_spare));
	json_object_set_new(o, "available_spare_threshold_percentage",
			    json_integer(p->available_spare_threshold));
	json_object_set_new(o, "percentage_used", json_integer(p->percentage_used));
	json_object_set_new(o, "data_units_read", u128(p->data_units_read));
	json_object_set_new(o, "data_units_written", u128(p->data_units_written));
	json_object_set_new(o, "host_read_commands", u128(p->host_read_commands));
	json_object_set_new(o, "host_write_commands", u128(p->host_write_commands));
	json_object_set_new(o, "controller_busy_time", u128(p->controller_busy_time));
	json_object_set_new(o, "power_cycles", u128(p->power_cycles));
	json_object_set_new(o, "power_on_hours", u128(p->power_on_hours));
	json_object_set_new(o, "unsafe_shutdowns", u128(p->unsafe_shutdowns));
	json_object_set_new(o, "media_errors", u128(p->media_errors));
	json_object_set_new(o, "num_err_log_entries", u128(p->num_error_info_log_entries));
	/* Bytes 200-215 of the page: the temperature times and the eight sensors (the
	 * header's structure stops naming fields at 192). */
	{
		const uint8_t *raw = (const uint8_t *)p;
		uint32_t warn, crit;

		memcpy(&warn, raw + 192, 4);
		memcpy(&crit, raw + 196, 4);
		json_object_set_new(o, "warning_temperature_time_minutes", json_integer(warn));
		json_object_set_new(o, "critical_composite_temperature_time_minutes",
				    json_integer(crit));
		for (int i = 0; i < 8; i++) {
			uint16_t t;

			memcpy(&t, raw + 200 + 2 * i, 2);
			if (t != 0) /* SPDK repeats the key per sensor; the last one stays */
				json_object_set_new(o, "temperature_sensor_celsius",
						    json_integer((json_int_t)t - 273));
		}
	}
	h->cb(h->arg, 0, o);
	free(h);
}

int bdev_nvme_health_info(const char *name, bdev_nvme_json_cb cb, void *arg)
{
	struct nvme_bdev_ctrlr *nbc;
	struct health_ctx *h;
	int rc;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		if (nbc->mp_primary == NULL && strcmp(nbc->name, name) == 0)
			break;
	}
	if (nbc == NULL || nbc->state == NBC_CONNECTING)
		return -ENODEV;
	if (nbc->state != NBC_ENABLED || !mimo_nvme_ctrlr_is_connected(nbc->ctrlr))
		return -ENXIO;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->nbc = nbc;
	h->cb = cb;
	h->arg = arg;
	rc = mimo_nvme_ctrlr_cmd_get_log_page(nbc->ctrlr, MIMO_NVME_LOG_HEALTH, 0xffffffffu,
					      &h->page, sizeof(h->page), 0, health_done, h);
	if (rc != 0)
		free(h);
	return rc;
}

/* --- the reactors' statistics and paths ----------------------------------------------------- */

struct path_snap {
	struct nvme_bdev_ctrlr *nbc;
	bool connected;
};

struct walk_ctx {
	bool paths; /* io_paths, else transport statistics */
	char *name; /* io_paths of this bdev only */
	bdev_nvme_json_cb cb;
	void *arg;
	json_t *groups;
	/* Per reactor: its counters, and its channels' controllers. */
	struct {
		struct bdev_nvme_group counts;
		struct path_snap *snaps;
		size_t num_snaps;
	} r[BDEV_NVME_MAX_GROUPS];
};

static void walk_one(void *arg)
{
	struct walk_ctx *w = arg;
	struct mimo_reactor *me = mimo_reactor_current();
	uint32_t i = mimo_reactor_index(me) % BDEV_NVME_MAX_GROUPS;
	struct bdev_nvme_group *g = bdev_nvme_group_of(i);
	struct nvme_channel *ch;
	size_t n = 0;

	w->r[i].counts = *g;
	TAILQ_FOREACH(ch, &g->channels, group_link)
	n++;
	if (!w->paths || n == 0)
		return;
	w->r[i].snaps = calloc(n, sizeof(*w->r[i].snaps));
	if (w->r[i].snaps == NULL)
		return;
	TAILQ_FOREACH(ch, &g->channels, group_link)
	{
		struct path_snap *s = &w->r[i].snaps[w->r[i].num_snaps++];

		s->nbc = ch->nbc;
		s->connected = ch->qp != NULL && mimo_nvme_qpair_is_connected(ch->qp);
	}
}

static json_t *thread_name(uint32_t i)
{
	return json_sprintf("reactor_%u", i);
}

static json_t *transport_json(const struct mimo_nvme_trid *t)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", "TCP", "traddr", t->traddr, "trsvcid",
			 t->trsvcid, "adrfam",
			 t->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4");
}

static bool still_attached(const struct nvme_bdev_ctrlr *nbc)
{
	const struct nvme_bdev_ctrlr *it;

	TAILQ_FOREACH(it, &g_bdev_nvme_ctrlrs, link)
	{
		if (it == nbc)
			return true;
	}
	return false;
}

/* One reactor's paths: a bdev of a controller reached through this reactor's channel. */
/* Whether controller slot i of a bdev's name is the one its I/O goes to now (active_passive:
 * the preferred one while connected, else any connected; active_active: every connected). */
static bool is_current(const struct nvme_disk *d, uint32_t i, bool connected)
{
	const struct nvme_bdev_ctrlr *pref = d->nbc->mp[d->preferred];

	if (!connected)
		return false;
	return d->policy == MP_ACTIVE_ACTIVE || i == d->preferred || pref == NULL ||
	       pref->state != NBC_ENABLED || !mimo_nvme_ctrlr_is_connected(pref->ctrlr);
}

/* One reactor's paths: each bdev reached through a channel of this reactor, of its own
 * controller or (multipath) of a further controller of its name. */
static json_t *paths_of(const struct walk_ctx *w, uint32_t i)
{
	json_t *arr = json_array();

	for (size_t k = 0; k < w->r[i].num_snaps; k++) {
		const struct path_snap *s = &w->r[i].snaps[k];
		const struct nvme_bdev_ctrlr *owner;
		const struct nvme_disk *d;
		uint32_t slot;

		/* The snapshot is a moment old: a controller detached meanwhile is left out. */
		if (!still_attached(s->nbc) || s->nbc->state == NBC_CONNECTING)
			continue;
		owner = s->nbc->mp_primary != NULL ? s->nbc->mp_primary : s->nbc;
		slot = s->nbc->mp_primary != NULL ? s->nbc->mp_slot : 0;
		TAILQ_FOREACH(d, &owner->disks, link)
		{
			bool connected = s->connected && s->nbc->state == NBC_ENABLED;
			const struct mimo_nvme_ns *ns = slot == 0 ? d->ns : d->mp_ns[slot];

			if (d->removing || (w->name != NULL && strcmp(w->name, d->bdev.name) != 0))
				continue;
			/* No ANA: a present namespace is accessible. */
			json_array_append_new(
				arr,
				json_pack("{s:s, s:i, s:b, s:b, s:b, s:o}", "bdev_name",
					  d->bdev.name, "cntlid", (int)s->nbc->ctrlr->cntlid,
					  "current", ns != NULL && is_current(d, slot, connected),
					  "connected", connected, "accessible", ns != NULL,
					  "transport", transport_json(&s->nbc->trid)));
		}
	}
	return arr;
}

static json_t *counts_of(const struct bdev_nvme_group *g)
{
	return json_pack("[{s:s, s:I, s:I, s:I, s:I, s:I, s:I}]", "trname", "TCP", "polls",
			 (json_int_t)g->polls, "idle_polls", (json_int_t)g->idle_polls,
			 "socket_completions", (json_int_t)g->socket_completions,
			 "nvme_completions", (json_int_t)g->nvme_completions, "queued_requests",
			 (json_int_t)g->queued_requests, "submitted_requests",
			 (json_int_t)g->submitted_requests);
}

static void walk_done(void *arg)
{
	struct walk_ctx *w = arg;
	json_t *groups = json_array();

	/* A reactor is in the list once an NVMe channel was made on it (SPDK makes its poll
	 * group with the first). */
	for (uint32_t i = 0; i < BDEV_NVME_MAX_GROUPS; i++) {
		if (!w->r[i].counts.used)
			continue;
		json_array_append_new(
			groups, json_pack("{s:o, s:o}", "thread", thread_name(i),
					  w->paths ? "io_paths" : "transports",
					  w->paths ? paths_of(w, i) : counts_of(&w->r[i].counts)));
		free(w->r[i].snaps);
	}
	w->cb(w->arg, 0, json_pack("{s:o}", "poll_groups", groups));
	free(w->name);
	free(w);
}

static int walk(bool paths, const char *name, bdev_nvme_json_cb cb, void *arg)
{
	struct walk_ctx *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL)
		return -ENOMEM;
	w->paths = paths;
	w->cb = cb;
	w->arg = arg;
	if (name != NULL && (w->name = strdup(name)) == NULL) {
		free(w);
		return -ENOMEM;
	}
	rc = mimo_for_each_reactor(walk_one, w, walk_done);
	if (rc != 0) {
		free(w->name);
		free(w);
	}
	return rc;
}

int bdev_nvme_transport_stats(bdev_nvme_json_cb cb, void *arg)
{
	return walk(false, NULL, cb, arg);
}

int bdev_nvme_io_paths(const char *name, bdev_nvme_json_cb cb, void *arg)
{
	return walk(true, name, cb, arg);
}
