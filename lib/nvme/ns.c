/*
 * Namespaces: the scan that finds the active ones (Identify CNS 2 page by page, then CNS 0
 * and CNS 3 for each), run at connect and after a namespace attribute notice, and the
 * namespace accessors.
 *
 * Namespace objects are immutable once published and live until the controller is freed,
 * active or not: I/O threads keep pointers to them and read their fields without a lock. A
 * scan therefore builds a new object for every namespace it identifies and, at commit, keeps
 * the old one when nothing that I/O depends on changed (identity, LBA format, size), else
 * retires the old object (inactive for good) and publishes the new one under the same id. Only
 * `active` changes after publication, atomically.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "log.h"
#include "nvme_internal.h"

/* Without CNS 2 (before NVMe 1.1) every id up to NN is tried, up to this many. */
#define FALLBACK_MAX_NS 1024

struct nvme_scan {
	struct mimo_nvme_ctrlr *ctrlr;
	void (*done)(void *arg, int rc);
	void *arg;
	uint32_t *ids;		     /* active ids found; 0 once known inactive */
	struct mimo_nvme_ns **found; /* per id: the object built from this scan's identify data */
	uint32_t count, cap;
	uint32_t idx;
	uint32_t list[NVME_NS_LIST_MAX];
	struct mimo_nvme_ns_data nsdata;
	uint8_t descs[4096];
};

static void scan_start(struct nvme_scan *scan);
static void identify_next(struct nvme_scan *scan);

/* Objects built but not published (commit takes them; a failed scan drops them). */
static void drop_found(struct nvme_scan *scan)
{
	for (uint32_t i = 0; i < scan->count; i++) {
		free(scan->found[i]);
		scan->found[i] = NULL;
	}
}

static void scan_finish(struct nvme_scan *scan, int rc)
{
	struct mimo_nvme_ctrlr *ctrlr = scan->ctrlr;
	void (*done)(void *, int) = scan->done;
	void *arg = scan->arg;

	drop_found(scan);
	ctrlr->scan = NULL;
	free(scan->ids);
	free(scan->found);
	free(scan);
	done(arg, rc);
}

static int push_id(struct nvme_scan *scan, uint32_t id)
{
	if (scan->count == scan->cap) {
		uint32_t cap = scan->cap ? scan->cap * 2 : 64;
		uint32_t *ids = realloc(scan->ids, cap * sizeof(*ids));
		struct mimo_nvme_ns **found;

		if (ids == NULL)
			return -ENOMEM;
		scan->ids = ids;
		found = realloc(scan->found, cap * sizeof(*found));
		if (found == NULL)
			return -ENOMEM;
		scan->found = found;
		scan->cap = cap;
	}
	scan->found[scan->count] = NULL;
	scan->ids[scan->count++] = id;
	return 0;
}

static void fallback_list(struct nvme_scan *scan)
{
	uint32_t nn = MIMO_MIN(scan->ctrlr->cdata.nn, (uint32_t)FALLBACK_MAX_NS);

	drop_found(scan);
	scan->count = 0;
	for (uint32_t id = 1; id <= nn; id++) {
		if (push_id(scan, id) != 0) {
			scan_finish(scan, -ENOMEM);
			return;
		}
	}
	identify_next(scan);
}

static void list_done(void *arg, const struct mimo_nvme_cpl *cpl);

static void list_from(struct nvme_scan *scan, uint32_t start)
{
	int rc = mimo_nvme_ctrlr_cmd_identify(scan->ctrlr, MIMO_NVME_CNS_ACTIVE_NS_LIST, start,
					      scan->list, sizeof(scan->list), list_done, scan);

	if (rc != 0)
		scan_finish(scan, rc);
}

static void list_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct nvme_scan *scan = arg;
	uint32_t last = scan->count ? scan->ids[scan->count - 1] : 0, n = 0;

	if (mimo_nvme_cpl_is_error(cpl)) {
		if (mimo_nvme_status_sc(cpl->status) == MIMO_NVME_SC_ABORTED_SQ_DELETION) {
			scan_finish(scan, -ENXIO);
			return;
		}
		/* A controller without the list: ask for each id. */
		if (scan->count == 0) {
			fallback_list(scan);
			return;
		}
		scan_finish(scan, -EIO);
		return;
	}
	for (; n < NVME_NS_LIST_MAX && scan->list[n] != 0; n++) {
		/* The list is increasing; anything else ends it (a broken target must not loop
		 * us forever). */
		if (scan->list[n] <= last || scan->list[n] >= 0xfffffffe)
			break;
		last = scan->list[n];
		if (push_id(scan, last) != 0) {
			scan_finish(scan, -ENOMEM);
			return;
		}
	}
	if (n == NVME_NS_LIST_MAX)
		list_from(scan, last);
	else
		identify_next(scan);
}

static struct mimo_nvme_ns *find_ns(const struct mimo_nvme_ctrlr *ctrlr, uint32_t id, uint32_t *pos)
{
	uint32_t lo = 0, hi = ctrlr->num_ns;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ctrlr->ns[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos != NULL)
		*pos = lo;
	return lo < ctrlr->num_ns && ctrlr->ns[lo]->id == id ? ctrlr->ns[lo] : NULL;
}

/* Publish ns under its id: a new slot in the sorted array, or in place of the object that
 * held the id (which goes to the retired list: I/O threads may still hold it). */
static int publish_ns(struct mimo_nvme_ctrlr *ctrlr, struct mimo_nvme_ns *ns)
{
	struct mimo_nvme_ns *old;
	uint32_t pos;

	old = find_ns(ctrlr, ns->id, &pos);
	if (old != NULL) {
		struct mimo_nvme_ns **arr =
			realloc(ctrlr->retired, (ctrlr->num_retired + 1) * sizeof(*arr));

		if (arr == NULL)
			return -ENOMEM;
		ctrlr->retired = arr;
		__atomic_store_n(&old->active, false, __ATOMIC_RELEASE);
		ctrlr->retired[ctrlr->num_retired++] = old;
		ctrlr->ns[pos] = ns;
		return 0;
	}
	if (ctrlr->num_ns == ctrlr->ns_cap) {
		uint32_t cap = ctrlr->ns_cap ? ctrlr->ns_cap * 2 : 16;
		struct mimo_nvme_ns **arr = realloc(ctrlr->ns, cap * sizeof(*arr));

		if (arr == NULL)
			return -ENOMEM;
		ctrlr->ns = arr;
		ctrlr->ns_cap = cap;
	}
	memmove(&ctrlr->ns[pos + 1], &ctrlr->ns[pos], (ctrlr->num_ns - pos) * sizeof(*ctrlr->ns));
	ctrlr->ns[pos] = ns;
	ctrlr->num_ns++;
	return 0;
}

/* Whether an I/O built for a could go to b unchanged: same identity, block size and size. */
static bool same_ns(const struct mimo_nvme_ns *a, const struct mimo_nvme_ns *b)
{
	return a->sector_size == b->sector_size && a->num_sectors == b->num_sectors &&
	       a->data.flbas == b->data.flbas &&
	       memcmp(a->data.lbaf, b->data.lbaf, sizeof(a->data.lbaf)) == 0 &&
	       memcmp(a->data.eui64, b->data.eui64, sizeof(a->data.eui64)) == 0 &&
	       a->has_uuid == b->has_uuid && (!a->has_uuid || memcmp(a->uuid, b->uuid, 16) == 0) &&
	       a->has_nguid == b->has_nguid &&
	       (!a->has_nguid || memcmp(a->nguid, b->nguid, 16) == 0);
}

void nvme_ns_parse_descs(struct mimo_nvme_ns *ns, const uint8_t *descs, size_t len)
{
	size_t off = 0;

	ns->has_uuid = false;
	ns->has_nguid = false;
	/* Each: NIDT, NIDL, 2 reserved bytes, NIDL bytes of identifier; NIDT 0 ends the list. */
	while (off + 4 <= len) {
		uint8_t nidt = descs[off], nidl = descs[off + 1];

		if (nidt == 0 || nidl == 0 || off + 4 + nidl > len)
			break;
		if (nidt == MIMO_NVME_NIDT_UUID && nidl == 16) {
			memcpy(ns->uuid, descs + off + 4, 16);
			ns->has_uuid = true;
		} else if (nidt == MIMO_NVME_NIDT_NGUID && nidl == 16) {
			memcpy(ns->nguid, descs + off + 4, 16);
			ns->has_nguid = true;
		}
		off += 4u + nidl;
	}
}

static bool nonzero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return true;
	return false;
}

static void desc_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct nvme_scan *scan = arg;
	struct mimo_nvme_ns *ns = calloc(1, sizeof(*ns));
	const struct mimo_nvme_ns_data *d = &scan->nsdata;
	uint8_t lbads = d->lbaf[d->flbas & 0xf].lbads;

	if (ns == NULL) {
		scan_finish(scan, -ENOMEM);
		return;
	}
	/* Built whole before anyone can see it; commit decides whether it is published. */
	scan->found[scan->idx] = ns;
	ns->ctrlr = scan->ctrlr;
	ns->id = scan->ids[scan->idx];
	ns->data = *d;
	/* Block sizes from 512 bytes to 64 KiB; anything else is a broken report. */
	ns->sector_size = lbads >= 9 && lbads <= 16 ? 1u << lbads : 512;
	ns->num_sectors = d->nsze;
	/* Descriptors are optional (CNS 3 is from NVMe 1.3): INVALID_FIELD just means none. */
	if (!mimo_nvme_cpl_is_error(cpl)) {
		nvme_ns_parse_descs(ns, scan->descs, sizeof(scan->descs));
	}
	if (!ns->has_nguid && nonzero(d->nguid, sizeof(d->nguid))) {
		memcpy(ns->nguid, d->nguid, sizeof(ns->nguid));
		ns->has_nguid = true;
	}
	scan->idx++;
	identify_next(scan);
}

static void ns_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct nvme_scan *scan = arg;
	uint32_t id = scan->ids[scan->idx];
	int rc;

	if (mimo_nvme_cpl_is_error(cpl) &&
	    mimo_nvme_status_sc(cpl->status) == MIMO_NVME_SC_ABORTED_SQ_DELETION) {
		scan_finish(scan, -ENXIO);
		return;
	}
	/* Gone since the list was read, or (fallback) never there: a zero size. */
	if (mimo_nvme_cpl_is_error(cpl) || scan->nsdata.nsze == 0) {
		scan->ids[scan->idx++] = 0;
		identify_next(scan);
		return;
	}
	memset(scan->descs, 0, sizeof(scan->descs));
	rc = mimo_nvme_ctrlr_cmd_identify(scan->ctrlr, MIMO_NVME_CNS_NS_ID_DESC, id, scan->descs,
					  sizeof(scan->descs), desc_done, scan);
	if (rc != 0)
		scan_finish(scan, rc);
}

/* Every id handled: the new active set replaces the old one. A namespace whose identity,
 * LBA format or size changed under its id gets a new object; the old one stays inactive. */
static void commit(struct nvme_scan *scan)
{
	struct mimo_nvme_ctrlr *ctrlr = scan->ctrlr;
	uint32_t n = 0, *active = malloc((scan->count ? scan->count : 1) * sizeof(*active));

	if (active == NULL) {
		scan_finish(scan, -ENOMEM);
		return;
	}
	for (uint32_t i = 0; i < scan->count; i++) {
		struct mimo_nvme_ns *cand = scan->found[i], *cur;

		if (scan->ids[i] == 0 || cand == NULL)
			continue;
		cur = find_ns(ctrlr, scan->ids[i], NULL);
		if (cur != NULL && same_ns(cur, cand)) {
			free(cand);
		} else {
			if (cur != NULL)
				MIMO_INFO(NVME_COMP, "%s: namespace %u was replaced",
					  ctrlr->trid.subnqn, scan->ids[i]);
			if (publish_ns(ctrlr, cand) != 0) {
				free(cand);
				scan->found[i] = NULL;
				scan->ids[i] = 0; /* not published: left out of the active set */
				continue;
			}
		}
		scan->found[i] = NULL;
	}
	/* Active flags last, so no thread sees an id active with a half-replaced object. */
	for (uint32_t i = 0; i < ctrlr->num_ns; i++) {
		struct mimo_nvme_ns *ns = ctrlr->ns[i];
		bool on = false;

		for (uint32_t j = 0; j < scan->count; j++) {
			if (scan->ids[j] == ns->id) {
				on = true;
				break;
			}
		}
		__atomic_store_n(&ns->active, on, __ATOMIC_RELEASE);
	}
	n = 0;
	for (uint32_t i = 0; i < scan->count; i++)
		if (scan->ids[i] != 0 && find_ns(ctrlr, scan->ids[i], NULL) != NULL)
			active[n++] = scan->ids[i];
	free(ctrlr->active);
	ctrlr->active = active;
	ctrlr->num_active = n;
	if (ctrlr->rescan && !ctrlr->detaching) {
		scan_start(scan);
		return;
	}
	scan_finish(scan, 0);
}

static void identify_next(struct nvme_scan *scan)
{
	int rc;

	while (scan->idx < scan->count && scan->ids[scan->idx] == 0)
		scan->idx++;
	if (scan->idx == scan->count) {
		commit(scan);
		return;
	}
	rc = mimo_nvme_ctrlr_cmd_identify(scan->ctrlr, MIMO_NVME_CNS_NS, scan->ids[scan->idx],
					  &scan->nsdata, sizeof(scan->nsdata), ns_done, scan);
	if (rc != 0)
		scan_finish(scan, rc);
}

static void scan_start(struct nvme_scan *scan)
{
	scan->ctrlr->rescan = false;
	drop_found(scan);
	scan->count = 0;
	scan->idx = 0;
	/* The active namespace list came with NVMe 1.1. */
	if (scan->ctrlr->vs >= 0x10100 || scan->ctrlr->vs == 0)
		list_from(scan, 0);
	else
		fallback_list(scan);
}

int nvme_ns_scan(struct mimo_nvme_ctrlr *ctrlr, void (*done)(void *arg, int rc), void *arg)
{
	struct nvme_scan *scan;

	if (ctrlr->scan != NULL) {
		ctrlr->rescan = true;
		return -EBUSY;
	}
	if (ctrlr->adminq == NULL || ctrlr->adminq->state == QP_FAILED)
		return -ENXIO;
	scan = calloc(1, sizeof(*scan));
	if (scan == NULL)
		return -ENOMEM;
	scan->ctrlr = ctrlr;
	scan->done = done;
	scan->arg = arg;
	ctrlr->scan = scan;
	scan_start(scan);
	return 0;
}

void nvme_ns_free_all(struct mimo_nvme_ctrlr *ctrlr)
{
	for (uint32_t i = 0; i < ctrlr->num_ns; i++)
		free(ctrlr->ns[i]);
	for (uint32_t i = 0; i < ctrlr->num_retired; i++)
		free(ctrlr->retired[i]);
	free(ctrlr->ns);
	free(ctrlr->retired);
	free(ctrlr->active);
	ctrlr->retired = NULL;
	ctrlr->num_retired = 0;
	ctrlr->ns = NULL;
	ctrlr->active = NULL;
	ctrlr->num_ns = ctrlr->ns_cap = ctrlr->num_active = 0;
}

/* --- accessors ------------------------------------------------------------------------------ */

MIMO_EXPORT uint32_t mimo_nvme_ctrlr_get_first_active_ns(const struct mimo_nvme_ctrlr *ctrlr)
{
	return ctrlr->num_active != 0 ? ctrlr->active[0] : 0;
}

MIMO_EXPORT uint32_t mimo_nvme_ctrlr_get_next_active_ns(const struct mimo_nvme_ctrlr *ctrlr,
							uint32_t prev)
{
	uint32_t lo = 0, hi = ctrlr->num_active;

	/* The first active id above prev. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ctrlr->active[mid] <= prev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ctrlr->num_active ? ctrlr->active[lo] : 0;
}

MIMO_EXPORT struct mimo_nvme_ns *mimo_nvme_ctrlr_get_ns(struct mimo_nvme_ctrlr *ctrlr,
							uint32_t nsid)
{
	struct mimo_nvme_ns *ns = find_ns(ctrlr, nsid, NULL);

	return ns != NULL && __atomic_load_n(&ns->active, __ATOMIC_ACQUIRE) ? ns : NULL;
}

MIMO_EXPORT bool mimo_nvme_ns_is_active(const struct mimo_nvme_ns *ns)
{
	return __atomic_load_n(&ns->active, __ATOMIC_ACQUIRE);
}

MIMO_EXPORT uint32_t mimo_nvme_ns_get_id(const struct mimo_nvme_ns *ns)
{
	return ns->id;
}

MIMO_EXPORT uint32_t mimo_nvme_ns_get_sector_size(const struct mimo_nvme_ns *ns)
{
	return ns->sector_size;
}

MIMO_EXPORT uint64_t mimo_nvme_ns_get_num_sectors(const struct mimo_nvme_ns *ns)
{
	return ns->num_sectors;
}

MIMO_EXPORT const struct mimo_nvme_ns_data *mimo_nvme_ns_get_data(const struct mimo_nvme_ns *ns)
{
	return &ns->data;
}

MIMO_EXPORT const uint8_t *mimo_nvme_ns_get_uuid(const struct mimo_nvme_ns *ns)
{
	return ns->has_uuid ? ns->uuid : NULL;
}

MIMO_EXPORT const uint8_t *mimo_nvme_ns_get_nguid(const struct mimo_nvme_ns *ns)
{
	return ns->has_nguid ? ns->nguid : NULL;
}
