/*
 * Per-path I/O statistics of an NVMe bdev (bdev_nvme_set_options io_path_stat,
 * bdev_nvme_get_path_iostat): each bdev counts, per path of its controller (a transport ID:
 * failover paths each have their own), what completed through it, in SPDK's bdev I/O
 * statistics' fields. Completions on any reactor add under the bdev's lock; only when the
 * option is on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"

struct nvme_path_stat {
	char traddr[MIMO_NVME_TRADDR_MAX_LEN + 1];
	char trsvcid[MIMO_NVME_TRSVCID_MAX_LEN + 1];
	uint64_t bytes[3], ops[3], ticks[3], max[3], min[3]; /* read, write, unmap */
	struct nvme_path_stat *next;
};

void nvme_path_stat_add(struct nvme_disk *d, const char *traddr, const char *trsvcid, int kind,
			uint64_t bytes, uint64_t ticks)
{
	struct nvme_path_stat *s;

	pthread_mutex_lock(&d->stat_lock);
	for (s = d->stats; s != NULL; s = s->next)
		if (strcmp(s->traddr, traddr) == 0 && strcmp(s->trsvcid, trsvcid) == 0)
			break;
	if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
		snprintf(s->traddr, sizeof(s->traddr), "%s", traddr);
		snprintf(s->trsvcid, sizeof(s->trsvcid), "%s", trsvcid);
		s->next = d->stats;
		d->stats = s;
	}
	if (s != NULL) {
		s->bytes[kind] += bytes;
		s->ops[kind]++;
		s->ticks[kind] += ticks;
		if (ticks > s->max[kind])
			s->max[kind] = ticks;
		if (s->min[kind] == 0 || ticks < s->min[kind])
			s->min[kind] = ticks;
	}
	pthread_mutex_unlock(&d->stat_lock);
}

void nvme_path_stat_free(struct nvme_disk *d)
{
	struct nvme_path_stat *s;

	while ((s = d->stats) != NULL) {
		d->stats = s->next;
		free(s);
	}
}

static json_t *stat_json(const struct nvme_path_stat *s)
{
	static const struct nvme_path_stat zero;
	json_t *o = json_object();
	static const char *const kinds[] = { "read", "write", "unmap" };
	static const char *const bytes_names[] = { "bytes_read", "bytes_written",
						   "bytes_unmapped" };

	if (s == NULL)
		s = &zero;
	for (int k = 0; k < 3; k++) {
		char name[32];

		json_object_set_new(o, bytes_names[k], json_integer((json_int_t)s->bytes[k]));
		snprintf(name, sizeof(name), "num_%s_ops", kinds[k]);
		json_object_set_new(o, name, json_integer((json_int_t)s->ops[k]));
	}
	/* No copy command in mimo's initiator: SPDK's fields, at zero. */
	json_object_set_new(o, "bytes_copied", json_integer(0));
	json_object_set_new(o, "num_copy_ops", json_integer(0));
	for (int k = 0; k < 3; k++) {
		char name[40];

		snprintf(name, sizeof(name), "%s_latency_ticks", kinds[k]);
		json_object_set_new(o, name, json_integer((json_int_t)s->ticks[k]));
		snprintf(name, sizeof(name), "max_%s_latency_ticks", kinds[k]);
		json_object_set_new(o, name, json_integer((json_int_t)s->max[k]));
		snprintf(name, sizeof(name), "min_%s_latency_ticks", kinds[k]);
		json_object_set_new(o, name, json_integer((json_int_t)s->min[k]));
	}
	json_object_set_new(o, "copy_latency_ticks", json_integer(0));
	json_object_set_new(o, "max_copy_latency_ticks", json_integer(0));
	json_object_set_new(o, "min_copy_latency_ticks", json_integer(0));
	return o;
}

/* One path's entry: its transport ID and what completed through it (zeros if nothing). */
static json_t *path_entry(const struct nvme_disk *d, const struct mimo_nvme_trid *t)
{
	const struct nvme_path_stat *s;

	for (s = d->stats; s != NULL; s = s->next)
		if (strcmp(s->traddr, t->traddr) == 0 && strcmp(s->trsvcid, t->trsvcid) == 0)
			break;
	return json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:o}", "trid", "trtype", "TCP", "adrfam",
			 t->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4", "traddr", t->traddr,
			 "trsvcid", t->trsvcid, "subnqn", t->subnqn, "stat", stat_json(s));
}

int bdev_nvme_path_iostat(const char *bdev_name, json_t **out)
{
	struct nvme_bdev_ctrlr *nbc;
	struct nvme_disk *d = NULL;
	json_t *stats;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		if (nbc->mp_primary != NULL)
			continue;
		TAILQ_FOREACH(d, &nbc->disks, link)
		{
			if (strcmp(d->bdev.name, bdev_name) == 0)
				break;
		}
		if (d != NULL)
			break;
	}
	if (d == NULL)
		return -ENODEV;
	/* Every path of the controller and of the name's further controllers (multipath), as
	 * SPDK lists every path of the bdev. */
	stats = json_array();
	pthread_mutex_lock(&d->stat_lock);
	for (uint32_t k = 0; k < NVME_MAX_MP; k++) {
		const struct nvme_bdev_ctrlr *m = nbc->mp[k];

		for (uint32_t j = 0; m != NULL && j < m->num_paths; j++)
			json_array_append_new(stats, path_entry(d, &m->paths[j]));
	}
	pthread_mutex_unlock(&d->stat_lock);
	*out = json_pack("{s:s, s:o}", "name", d->bdev.name, "stats", stats);
	return 0;
}
