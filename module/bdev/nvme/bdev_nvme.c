/*
 * bdev_nvme: each attached NVMe-oF/TCP controller is an io_device whose channel, on every
 * reactor that does I/O, is one I/O queue pair polled by that reactor; each active namespace
 * is a bdev ("<name>n<nsid>", "NVMe disk"). Reactor 0 connects, keeps the controller alive,
 * follows namespace notices (new namespaces become bdevs, gone ones are deleted) and
 * detaches. Nothing here blocks a reactor: the target served may be in this very process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_nvme.h"
#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"
#include "clock.h"
#include "ticks.h"
#include "compiler.h"
#include "dhchap.h"
#include "keyring.h"
#include "log.h"
#include "mimo/bdev_module.h"
#include "mimo/reactor.h"
#include "nvme_internal.h"
#include "uuid.h"

#define COMP "bdev_nvme"

#define ADMIN_POLL_US	  10000 /* admin queue: keep-alive, AERs (SPDK's default period) */
#define DETACH_POLL_US	  1000
#define MAX_DSM_RANGES	  16
#define MAX_NLB		  65536u
#define REQUEUE_DELAY_NS  1000000000 /* a failed I/O queue is re-made at most this often */
#define FINI_TIMEOUT_NS	  10000000000LL
#define DSM_RANGE_MAX_LEN 0xffffffffu
#define DELETE_RETRY_NS	  100000000	/* a bdev that could not be deleted (claimed) is retried */
#define DETACH_BUSY_NS	  10000000000LL /* detach gives up (-EBUSY) on a claim this old */
#define RECONNECT_POLL_US 10000		/* the reconnect poller: timeouts and the connection */
#define NS_PER_SEC	  1000000000LL

static const char *const g_state_names[] = { "connecting", "enabled",	"failed",
					     "deleting",   "resetting", "disabled" };

/* Per bdev I/O: progress through a request split into commands. */
struct nvme_io {
	struct nvme_channel *ch;
	/* The path it goes through (chosen at its start and restarts): the channel of one
	 * controller of the name (ch itself without multipath) and the namespace there. */
	struct nvme_channel *pch;
	struct mimo_nvme_ns *pns;
	uint64_t next; /* first block not yet submitted */
	uint64_t end;
	int iov_idx;
	size_t iov_off;
	uint32_t outstanding;
	int status;
	bool retryable;	      /* a command failed with a status that allows a retry */
	bool path_error;      /* a command was aborted because its connection went */
	int32_t retries;      /* of the whole I/O, after such failures (bdev_retry_count) */
	uint64_t start_ticks; /* for the path statistics */
	uint8_t *bounce;      /* iovecs that do not split at block boundaries */
	struct mimo_nvme_dsm_range ranges[MAX_DSM_RANGES];
};

struct nbc_list g_bdev_nvme_ctrlrs = TAILQ_HEAD_INITIALIZER(g_bdev_nvme_ctrlrs);

/* bdev_nvme_set_options; read on every reactor, changed only while no controller exists
 * (so before any channel does). */
static struct bdev_nvme_opts g_opts = {
	.keep_alive_timeout_ms = 10000,
	.bdev_retry_count = 0,
	.adminq_poll_period_us = ADMIN_POLL_US,
	.ioq_poll_period_us = 0,
	.enable_flush = true,
	.dhchap_digests = DHCHAP_ALL_DIGESTS,
	.dhchap_dhgroups = DHCHAP_ALL_DHGROUPS,
	.reconnect = { 0, 0, 0 },
};

static struct bdev_nvme_group g_groups[BDEV_NVME_MAX_GROUPS];

struct bdev_nvme_group *bdev_nvme_group_of(uint32_t i)
{
	struct bdev_nvme_group *g = &g_groups[i % BDEV_NVME_MAX_GROUPS];

	return g;
}

struct bdev_nvme_group *bdev_nvme_group_get(void)
{
	struct mimo_reactor *r = mimo_reactor_current();

	return bdev_nvme_group_of(r != NULL ? mimo_reactor_index(r) : 0);
}

struct mimo_bdev_module g_nvme_module = { .name = "nvme", .ctx_size = sizeof(struct nvme_io) };

MIMO_EXPORT void mimo_register_bdev_nvme(void)
{
	for (uint32_t i = 0; i < BDEV_NVME_MAX_GROUPS; i++)
		TAILQ_INIT(&g_groups[i].channels);
	mimo_bdev_module_register(&g_nvme_module);
	bdev_nvme_rpc_register();
	bdev_nvme_opts_rpc_register();
	bdev_nvme_ctrlr_rpc_register();
	bdev_nvme_passthru_rpc_register();
	bdev_nvme_refused_rpc_register();
}

static struct nvme_bdev_ctrlr *find_nbc(const char *name)
{
	struct nvme_bdev_ctrlr *nbc;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		/* A name's secondary controllers (multipath) are reached through its first. */
		if (nbc->mp_primary == NULL && strcmp(nbc->name, name) == 0)
			return nbc;
	}
	return NULL;
}

/* --- I/O ------------------------------------------------------------------------------------ */

static void io_resume(struct mimo_bdev_io *io);
static void io_park(struct mimo_bdev_io *io);

static int path_get(const struct nvme_bdev_ctrlr *nbc)
{
	return __atomic_load_n(&nbc->path, __ATOMIC_ACQUIRE);
}

static void path_set(struct nvme_bdev_ctrlr *nbc, enum path_state p)
{
	__atomic_store_n(&nbc->path, (int)p, __ATOMIC_RELEASE);
}

/* An I/O that lost its connection waits for the next one (rather than failing) during a
 * reset, and while the controller may reconnect and fast_io_fail_timeout_sec has not passed. */
static bool path_queues_one(const struct nvme_bdev_ctrlr *nbc);

/* Multipath: I/O waits while any controller of the name may carry it again. */
static bool path_queues(const struct nvme_bdev_ctrlr *nbc)
{
	if (nbc->mp[1] == NULL && nbc->mp[2] == NULL && nbc->mp[3] == NULL)
		return path_queues_one(nbc);
	for (int i = 0; i < NVME_MAX_MP; i++) {
		const struct nvme_bdev_ctrlr *m = __atomic_load_n(&nbc->mp[i], __ATOMIC_ACQUIRE);

		if (m != NULL && (path_get(m) == PATH_OK || path_queues_one(m)))
			return true;
	}
	return false;
}

static bool path_queues_one(const struct nvme_bdev_ctrlr *nbc)
{
	int p = path_get(nbc);

	/* num_paths: read from any reactor; it changes only by a path added or removed. */
	return p == PATH_QUEUE ||
	       (p == PATH_OK && (nbc->reconnect.ctrlr_loss_timeout_sec != 0 ||
				 __atomic_load_n(&nbc->num_paths, __ATOMIC_RELAXED) > 1));
}

/* Back to the start of the I/O, as if just submitted. */
static void io_restart(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	nio->status = 0;
	nio->retryable = false;
	nio->path_error = false;
	nio->pch = NULL; /* chosen again */
	nio->pns = NULL;
	nio->next = io->offset_blocks;
	nio->iov_idx = 0;
	nio->iov_off = 0;
}

/* Start the I/O over, from the parked list (the channel's next poll), after a failure the
 * controller allows a retry of. */
static bool retry_io(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	if (nio->status == 0 || !nio->retryable ||
	    (g_opts.bdev_retry_count != -1 && nio->retries >= g_opts.bdev_retry_count))
		return false;
	nio->retries++;
	io_restart(io);
	io_park(io);
	return true;
}

/* The path statistics: what completed, through the path connected now. */
static void account_path(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	struct nvme_disk *disk = io->bdev->ctxt;
	/* The controller of the path it went through (multipath: one of the name's). */
	struct nvme_bdev_ctrlr *nbc = nio->pch != NULL ? nio->pch->nbc : disk->nbc;
	char traddr[sizeof(nbc->trid.traddr)], trsvcid[sizeof(nbc->trid.trsvcid)];

	pthread_mutex_lock(&nbc->path_lock);
	memcpy(traddr, nbc->trid.traddr, sizeof(traddr));
	memcpy(trsvcid, nbc->trid.trsvcid, sizeof(trsvcid));
	pthread_mutex_unlock(&nbc->path_lock);
	nvme_path_stat_add(disk, traddr, trsvcid,
			   io->type == MIMO_BDEV_IO_READ    ? 0
			   : io->type == MIMO_BDEV_IO_WRITE ? 1
							    : 2,
			   io->num_blocks * io->bdev->blocklen,
			   mimo_get_ticks() - nio->start_ticks);
}

static void io_finish(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	/* Aborted with its connection: the whole I/O again on the next one (not a retry the
	 * controller allowed, so bdev_retry_count does not count it). */
	if (nio->status != 0 && nio->path_error && path_queues(nio->ch->nbc)) {
		io_restart(io);
		io_park(io);
		return;
	}
	if (retry_io(io))
		return;
	if (g_opts.io_path_stat && nio->status == 0 &&
	    (io->type == MIMO_BDEV_IO_READ || io->type == MIMO_BDEV_IO_WRITE ||
	     io->type == MIMO_BDEV_IO_UNMAP))
		account_path(io);
	if (nio->bounce != NULL) {
		if (io->type == MIMO_BDEV_IO_READ && nio->status == 0)
			mimo_iov_from_buf(io->iovs, io->iovcnt, nio->bounce,
					  io->num_blocks * io->bdev->blocklen);
		free(nio->bounce);
		nio->bounce = NULL;
	}
	mimo_bdev_io_complete(io, nio->status);
}

static void io_park(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	STAILQ_INSERT_TAIL(&nio->ch->retry, io, link);
}

static void cmd_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_bdev_io *io = arg;
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	nio->outstanding--;
	if (mimo_nvme_cpl_is_error(cpl) &&
	    mimo_nvme_status_sct(cpl->status) == MIMO_NVME_SCT_GENERIC &&
	    mimo_nvme_status_sc(cpl->status) == MIMO_NVME_SC_ABORTED_SQ_DELETION)
		nio->path_error = true; /* lib/nvme's status for what a lost connection held */
	if (mimo_nvme_cpl_is_error(cpl) && nio->status == 0) {
		nio->status = -EIO;
		/* DNR clear, and not an abort the host asked for: the controller says a retry
		 * may succeed (SPDK's rule for bdev_retry_count). */
		nio->retryable =
			(cpl->status & 0x8000) == 0 &&
			!(mimo_nvme_status_sct(cpl->status) == MIMO_NVME_SCT_GENERIC &&
			  mimo_nvme_status_sc(cpl->status) == MIMO_NVME_SC_ABORTED_BY_REQUEST);
	}
	if (nio->status == 0 && nio->next < nio->end) {
		io_resume(io);
		return;
	}
	if (nio->outstanding == 0)
		io_finish(io);
}

/* --- error injection (bdev_nvme_inject.c decides, this applies) ----------------------------- */

/* A command an injection kept from the controller: completed by the channel's poller. */
struct nvme_deferred {
	struct mimo_bdev_io *io;
	int64_t due_ns;
	uint16_t status;
	STAILQ_ENTRY(nvme_deferred) link;
};

/* A command sent, whose successful completion an injection turns into an error. */
struct nvme_failing {
	struct mimo_bdev_io *io;
	uint16_t status;
};

static void cmd_done(void *arg, const struct mimo_nvme_cpl *cpl);

static void cmd_done_injected(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct nvme_failing *f = arg;
	struct mimo_nvme_cpl c = *cpl;
	struct mimo_bdev_io *io = f->io;

	if (!mimo_nvme_cpl_is_error(cpl)) /* as SPDK: only a success is turned */
		c.status = f->status;
	free(f);
	cmd_done(io, &c);
}

/*
 * Before one command of opc is sent: *cb, *cb_arg for its submission (cmd_done, io without
 * an injection). Returns true when an injection took the command instead (a deferred
 * completion: count it as submitted). *hit says whether an injection is involved, for
 * inject_failed.
 */
static bool inject_before(struct mimo_bdev_io *io, uint8_t opc, mimo_nvme_cmd_cb *cb, void **cb_arg,
			  struct nvme_inject_hit *hit)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	struct nvme_channel *ch = nio->ch;

	*cb = cmd_done;
	*cb_arg = io;
	hit->slot = -1;
	if (!nvme_inject_match(ch->nbc, opc, hit))
		return false;
	if (hit->do_not_submit) {
		struct nvme_deferred *d = calloc(1, sizeof(*d));

		if (d == NULL) {
			nvme_inject_undo(ch->nbc, hit);
			hit->slot = -1;
			return false;
		}
		d->io = io;
		d->due_ns = mimo_now_ns() + (int64_t)hit->delay_ns;
		d->status = hit->status;
		STAILQ_INSERT_TAIL(&ch->deferred, d, link);
		return true;
	}
	{
		struct nvme_failing *f = calloc(1, sizeof(*f));

		if (f == NULL) {
			nvme_inject_undo(ch->nbc, hit);
			hit->slot = -1;
			return false;
		}
		f->io = io;
		f->status = hit->status;
		*cb = cmd_done_injected;
		*cb_arg = f;
	}
	return false;
}

/* The submission after inject_before failed (rc): the injection did not happen. */
static void inject_failed(struct mimo_bdev_io *io, void *cb_arg, const struct nvme_inject_hit *hit)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	if (hit->slot < 0)
		return;
	if (cb_arg != io)
		free(cb_arg);
	nvme_inject_undo(nio->ch->nbc, hit);
}

/* Complete the deferred commands that are due (all of them with all). */
static int complete_deferred(struct nvme_channel *ch, bool all)
{
	STAILQ_HEAD(, nvme_deferred) keep = STAILQ_HEAD_INITIALIZER(keep);
	struct nvme_deferred *d;
	int64_t now = mimo_now_ns();
	int n = 0;

	/* Off the list before any completion runs: cmd_done may submit (and defer) more. */
	while ((d = STAILQ_FIRST(&ch->deferred)) != NULL) {
		struct mimo_nvme_cpl cpl = { 0 };

		STAILQ_REMOVE_HEAD(&ch->deferred, link);
		if (!all && now < d->due_ns) {
			STAILQ_INSERT_TAIL(&keep, d, link);
			continue;
		}
		cpl.status = d->status;
		cmd_done(d->io, &cpl);
		free(d);
		n++;
	}
	STAILQ_CONCAT(&keep, &ch->deferred);
	STAILQ_INIT(&ch->deferred);
	STAILQ_CONCAT(&ch->deferred, &keep);
	return n;
}

/* This reactor's channel of controller slot i of the name (the primary's channel's own for
 * slot 0), taken on first use; NULL when there is none. */
static struct nvme_channel *slot_channel(struct nvme_channel *ch, uint32_t i,
					 struct nvme_bdev_ctrlr *m)
{
	if (i == 0)
		return ch;
	if (ch->mp_ch[i] == NULL && !__atomic_load_n(&m->mp_unlinking, __ATOMIC_ACQUIRE))
		ch->mp_ch[i] = mimo_get_io_channel(m);
	return ch->mp_ch[i] != NULL ? mimo_io_channel_get_ctx(ch->mp_ch[i]) : NULL;
}

/*
 * Choose the path of an I/O: without multipath, the channel's queue pair and the bdev's
 * namespace; with it, by the bdev's policy among the controllers whose queue pair here is
 * connected and whose namespace is present. False when none is.
 */
static bool choose_path(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	struct nvme_disk *disk = io->bdev->ctxt;
	struct nvme_channel *ch = nio->ch;
	struct nvme_bdev_ctrlr *nbc = ch->nbc;
	uint32_t start = 0;

	nio->pch = NULL;
	nio->pns = NULL;
	if (nbc->mp[1] == NULL && nbc->mp[2] == NULL && nbc->mp[3] == NULL) {
		if (ch->qp == NULL || disk->ns == NULL)
			return false;
		nio->pch = ch;
		nio->pns = disk->ns;
		return true;
	}
	if (disk->policy == MP_ACTIVE_ACTIVE) {
		if (++ch->rr_count > disk->min_io) {
			ch->rr_count = 1;
			ch->rr_slot = (ch->rr_slot + 1) % NVME_MAX_MP;
		}
		start = ch->rr_slot;
	} else {
		start = disk->preferred;
	}
	for (uint32_t k = 0; k < NVME_MAX_MP; k++) {
		uint32_t i = (start + k) % NVME_MAX_MP;
		struct nvme_bdev_ctrlr *m = __atomic_load_n(&nbc->mp[i], __ATOMIC_ACQUIRE);
		struct nvme_channel *c;
		struct mimo_nvme_ns *ns;

		if (m == NULL || path_get(m) != PATH_OK)
			continue;
		c = slot_channel(ch, i, m);
		if (c == NULL || c->paused || c->qp == NULL || !mimo_nvme_qpair_is_connected(c->qp))
			continue;
		/* Read after the queue pair: a reconnect changes it only while paused. */
		ns = i == 0 ? disk->ns : __atomic_load_n(&disk->mp_ns[i], __ATOMIC_ACQUIRE);
		if (ns == NULL)
			continue;
		if (disk->policy == MP_ACTIVE_ACTIVE && i != ch->rr_slot) {
			ch->rr_slot = i; /* the next usable one takes the turn */
			ch->rr_count = 1;
		}
		nio->pch = c;
		nio->pns = ns;
		return true;
	}
	return false;
}

/* The I/O's path, chosen when it has none (or lost it with nothing outstanding). */
static bool have_path(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	if (nio->pch != NULL && nio->pch->qp != NULL && nio->pns != NULL)
		return true;
	return nio->outstanding == 0 && choose_path(io);
}

/*
 * The channel has no queue pair (its connection went, or the controller is reconnecting), or
 * the namespace did not come back with the new connection: the I/O waits in the channel
 * while the controller may reconnect, and fails otherwise. Called with nothing outstanding.
 */
static void no_connection(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	struct nvme_disk *disk = io->bdev->ctxt;

	if (nio->outstanding != 0) {
		nio->status = nio->status != 0 ? nio->status : -EIO;
		return; /* the last completion finishes it */
	}
	if (path_queues(nio->ch->nbc) && (disk->ns != NULL || disk->mp_ns[1] != NULL ||
					  disk->mp_ns[2] != NULL || disk->mp_ns[3] != NULL)) {
		io_restart(io);
		io_park(io);
		return;
	}
	nio->status = -EIO;
	io_finish(io);
}

/* Submit what remains of a read, write or write-zeroes, as far as slots allow. */
static void rw_continue(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	struct nvme_disk *disk = io->bdev->ctxt;
	struct mimo_nvme_qpair *qp;
	uint32_t bs = disk->bdev.blocklen;
	uint64_t max;

	/* Without a queue pair the controller may be mid-reconnect: not even its limits are
	 * read then (reactor 0 replaces it). */
	if (!have_path(io)) {
		no_connection(io);
		return;
	}
	qp = nio->pch->qp;
	max = MIMO_MIN(MAX_NLB, mimo_nvme_ctrlr_get_max_xfer_size(nio->pch->nbc->ctrlr) / bs);
	if (io->type == MIMO_BDEV_IO_WRITE_ZEROES)
		max = MAX_NLB;
	if (max == 0)
		max = 1;
	while (nio->status == 0 && nio->next < nio->end) {
		uint64_t blocks = MIMO_MIN(nio->end - nio->next, max);
		struct nvme_inject_hit hit;
		mimo_nvme_cmd_cb cb;
		uint8_t *buf = NULL;
		void *cb_arg;
		int rc;

		if (qp == NULL) {
			nio->status = -ENXIO;
			break;
		}
		if (io->type == MIMO_BDEV_IO_WRITE_ZEROES) {
			rc = inject_before(io, MIMO_NVME_OPC_WRITE_ZEROES, &cb, &cb_arg, &hit)
				     ? 0
				     : mimo_nvme_ns_cmd_write_zeroes(nio->pns, qp, nio->next,
								     (uint32_t)blocks, cb, cb_arg,
								     0);
		} else {
			if (nio->bounce != NULL) {
				buf = nio->bounce + (nio->next - io->offset_blocks) * bs;
			} else {
				const struct iovec *v;

				while (nio->iov_idx < io->iovcnt &&
				       io->iovs[nio->iov_idx].iov_len - nio->iov_off < bs) {
					nio->iov_idx++;
					nio->iov_off = 0;
				}
				if (nio->iov_idx >= io->iovcnt) {
					nio->status = -EINVAL;
					break;
				}
				v = &io->iovs[nio->iov_idx];
				buf = (uint8_t *)v->iov_base + nio->iov_off;
				blocks = MIMO_MIN(blocks, (v->iov_len - nio->iov_off) / bs);
			}
			if (inject_before(io,
					  io->type == MIMO_BDEV_IO_READ ? MIMO_NVME_OPC_READ
									: MIMO_NVME_OPC_WRITE,
					  &cb, &cb_arg, &hit))
				rc = 0;
			else if (io->type == MIMO_BDEV_IO_READ)
				rc = mimo_nvme_ns_cmd_read(nio->pns, qp, buf, nio->next,
							   (uint32_t)blocks, cb, cb_arg, 0);
			else
				rc = mimo_nvme_ns_cmd_write(nio->pns, qp, buf, nio->next,
							    (uint32_t)blocks, cb, cb_arg, 0);
		}
		if (rc != 0)
			inject_failed(io, cb_arg, &hit);
		if (rc == -ENOMEM) {
			/* Queue full: a completion of ours resumes it, else the poller does. */
			nio->ch->group->queued_requests++;
			if (nio->outstanding == 0)
				io_park(io);
			return;
		}
		if (rc != 0) {
			/* -ENODEV: the namespace went inactive (removed or replaced) meanwhile. */
			nio->status = rc == -ENXIO || rc == -ENODEV ? -EIO : rc;
			break;
		}
		nio->outstanding++;
		nio->ch->group->submitted_requests++;
		nio->next += blocks;
		if (buf != NULL && nio->bounce == NULL)
			nio->iov_off += blocks * bs;
	}
	if (nio->outstanding == 0)
		io_finish(io);
}

/* Deallocate: one Dataset Management command at a time, up to 16 ranges each. */
static void unmap_continue(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	uint64_t next = nio->next;
	struct nvme_inject_hit hit;
	mimo_nvme_cmd_cb cb;
	uint16_t n = 0;
	void *cb_arg;
	int rc;

	if (nio->status != 0 || nio->next >= nio->end) {
		io_finish(io);
		return;
	}
	if (!have_path(io)) {
		no_connection(io);
		return;
	}
	while (n < MAX_DSM_RANGES && next < nio->end) {
		uint64_t len = MIMO_MIN(nio->end - next, (uint64_t)DSM_RANGE_MAX_LEN);

		nio->ranges[n].attributes = 0;
		nio->ranges[n].length = (uint32_t)len;
		nio->ranges[n].starting_lba = next;
		next += len;
		n++;
	}
	rc = inject_before(io, MIMO_NVME_OPC_DSM, &cb, &cb_arg, &hit)
		     ? 0
		     : mimo_nvme_ns_cmd_deallocate(nio->pns, nio->pch->qp, nio->ranges, n, cb,
						   cb_arg);
	if (rc != 0)
		inject_failed(io, cb_arg, &hit);
	if (rc == -ENOMEM) {
		nio->ch->group->queued_requests++;
		io_park(io);
		return;
	}
	if (rc != 0) {
		nio->status = -EIO;
		io_finish(io);
		return;
	}
	nio->outstanding++;
	nio->ch->group->submitted_requests++;
	nio->next = next;
}

static void flush_submit(struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);
	struct nvme_inject_hit hit;
	mimo_nvme_cmd_cb cb;
	void *cb_arg;
	int rc;

	if (!have_path(io)) {
		no_connection(io);
		return;
	}
	rc = inject_before(io, MIMO_NVME_OPC_FLUSH, &cb, &cb_arg, &hit)
		     ? 0
		     : mimo_nvme_ns_cmd_flush(nio->pns, nio->pch->qp, cb, cb_arg);
	if (rc != 0)
		inject_failed(io, cb_arg, &hit);
	if (rc == -ENOMEM) {
		nio->ch->group->queued_requests++;
		io_park(io);
		return;
	}
	if (rc != 0) {
		nio->status = -EIO;
		io_finish(io);
		return;
	}
	nio->outstanding++;
	nio->ch->group->submitted_requests++;
	nio->next = nio->end;
}

static void io_resume(struct mimo_bdev_io *io)
{
	switch (io->type) {
	case MIMO_BDEV_IO_UNMAP:
		unmap_continue(io);
		break;
	case MIMO_BDEV_IO_FLUSH:
		flush_submit(io);
		break;
	default:
		rw_continue(io);
		break;
	}
}

/* Commands carry one contiguous buffer: iovecs must split at block boundaries, else the
 * data goes through a bounce buffer (rare: the bdev users in mimo pass one buffer). */
static bool needs_bounce(const struct mimo_bdev_io *io)
{
	uint32_t bs = io->bdev->blocklen;

	if (io->iovcnt <= 1)
		return false;
	for (int i = 0; i < io->iovcnt; i++)
		if (io->iovs[i].iov_len % bs != 0)
			return true;
	return false;
}

static void nvme_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io)
{
	struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

	memset(nio, 0, offsetof(struct nvme_io, ranges));
	nio->ch = mimo_io_channel_get_ctx(ch);
	if (g_opts.io_path_stat)
		nio->start_ticks = mimo_get_ticks();
	/* enable_flush false (SPDK's default): done without the controller, as SPDK does. */
	if (io->type == MIMO_BDEV_IO_FLUSH && !g_opts.enable_flush) {
		mimo_bdev_io_complete(io, 0);
		return;
	}
	/* The namespace behind this bdev was removed or replaced (another block size, another
	 * identity): nothing may reach whatever now answers to its ID. The bdev goes soon. */
	if (!mimo_nvme_ns_is_active(((struct nvme_disk *)io->bdev->ctxt)->ns)) {
		mimo_bdev_io_complete(io, -EIO);
		return;
	}
	nio->next = io->offset_blocks;
	nio->end = io->offset_blocks + io->num_blocks;
	switch (io->type) {
	case MIMO_BDEV_IO_READ:
	case MIMO_BDEV_IO_WRITE:
		if (needs_bounce(io)) {
			size_t len = io->num_blocks * io->bdev->blocklen;

			nio->bounce = aligned_alloc(4096, (len + 4095) / 4096 * 4096);
			if (nio->bounce == NULL) {
				mimo_bdev_io_complete(io, -ENOMEM);
				return;
			}
			if (io->type == MIMO_BDEV_IO_WRITE)
				mimo_iov_to_buf(io->iovs, io->iovcnt, nio->bounce, len);
		}
		rw_continue(io);
		return;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		rw_continue(io);
		return;
	case MIMO_BDEV_IO_UNMAP:
		unmap_continue(io);
		return;
	case MIMO_BDEV_IO_FLUSH:
		flush_submit(io);
		return;
	default:
		mimo_bdev_io_complete(io, -ENOTSUP);
		return;
	}
}

/* --- channels: one I/O queue pair per reactor and controller -------------------------------- */

static bool is_multipath(const struct nvme_bdev_ctrlr *nbc)
{
	return __atomic_load_n(&nbc->mp[1], __ATOMIC_RELAXED) != NULL ||
	       __atomic_load_n(&nbc->mp[2], __ATOMIC_RELAXED) != NULL ||
	       __atomic_load_n(&nbc->mp[3], __ATOMIC_RELAXED) != NULL;
}

static int channel_poll(void *arg)
{
	struct nvme_channel *ch = arg;
	STAILQ_HEAD(, mimo_bdev_io) parked;
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_bdev_io *io;
	int n = 0;

	/* Injected errors due: completed whatever the connection does. */
	if (!STAILQ_EMPTY(&ch->deferred))
		n += complete_deferred(ch, false);
	if (ch->paused) {
		/* Connected again while the resume walk has not reached this channel (or could
		 * not start): carry on by itself; resume_channel then finds the queue pair. */
		if (path_get(ch->nbc) == PATH_OK)
			ch->paused = false;
		/* Reconnecting: parked I/O waits for the connection, unless it is to fail or
		 * another controller of the name (multipath) may carry it. */
		else if (STAILQ_EMPTY(&ch->retry) ||
			 (path_get(ch->nbc) != PATH_FAIL && !is_multipath(ch->nbc)))
			return STAILQ_EMPTY(&ch->deferred) ? 0 : 1;
	}
	/* An idle, connected queue has nothing to read: no system call every loop turn. */
	if (ch->qp != NULL && mimo_nvme_qpair_outstanding(ch->qp) == 0 &&
	    mimo_nvme_qpair_is_connected(ch->qp) && STAILQ_EMPTY(&ch->retry))
		return STAILQ_EMPTY(&ch->deferred) ? (n > 0 ? 1 : 0) : 1;
	if (ch->qp != NULL) {
		n = mimo_nvme_qpair_process_completions(ch->qp, 0);
		ch->group->polls++;
		if (n > 0) {
			ch->group->socket_completions++;
			ch->group->nvme_completions += (uint64_t)n;
		} else {
			ch->group->idle_polls++;
		}
		if (n == -ENXIO) {
			/* Its commands completed aborted; a new connection is tried later. */
			mimo_nvme_ctrlr_free_io_qpair(ch->qp);
			ch->qp = NULL;
			ch->requeue_ns = mimo_now_ns() + REQUEUE_DELAY_NS;
			n = 1;
		}
	} else if (!ch->paused &&
		   (ctrlr = __atomic_load_n(&ch->nbc->ctrlr, __ATOMIC_ACQUIRE)) != NULL &&
		   mimo_nvme_ctrlr_is_connected(ctrlr) && mimo_now_ns() >= ch->requeue_ns) {
		if (mimo_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &ch->qp) != 0) {
			ch->qp = NULL;
			ch->requeue_ns = mimo_now_ns() + REQUEUE_DELAY_NS;
		}
	}
	if (!STAILQ_EMPTY(&ch->retry)) {
		STAILQ_INIT(&parked);
		STAILQ_CONCAT(&parked, &ch->retry);
		while ((io = STAILQ_FIRST(&parked)) != NULL) {
			STAILQ_REMOVE_HEAD(&parked, link);
			io_resume(io);
		}
		n++;
	}
	/* Completions come over TCP and wake nothing: keep polling while any are owed (and
	 * while injected errors wait for their time). */
	if (!STAILQ_EMPTY(&ch->deferred))
		n++;
	if (ch->qp != NULL &&
	    (mimo_nvme_qpair_outstanding(ch->qp) != 0 || !mimo_nvme_qpair_is_connected(ch->qp)))
		n++;
	return n > 0 ? 1 : 0;
}

static int channel_create(void *io_device, void *ctx)
{
	struct nvme_bdev_ctrlr *nbc = io_device;
	struct nvme_channel *ch = ctx;
	int rc;

	ch->nbc = nbc;
	STAILQ_INIT(&ch->retry);
	STAILQ_INIT(&ch->deferred);
	ch->group = bdev_nvme_group_get();
	/* Reconnecting (the path is set before the channels are paused): this channel waits
	 * for the new connection like the others. */
	ch->paused = path_get(nbc) != PATH_OK;
	if (!ch->paused) {
		if (nbc->ctrlr == NULL)
			return -ENODEV;
		rc = mimo_nvme_ctrlr_alloc_io_qpair(nbc->ctrlr, NULL, &ch->qp);
		if (rc != 0) {
			MIMO_ERR(COMP, "%s: no I/O queue for this reactor: %s", nbc->name,
				 strerror(-rc));
			return rc;
		}
	}
	ch->poller = mimo_poller_register(channel_poll, ch, g_opts.ioq_poll_period_us);
	if (ch->poller == NULL) {
		mimo_nvme_ctrlr_free_io_qpair(ch->qp);
		ch->qp = NULL;
		return -ENOMEM;
	}
	ch->group->used = true;
	TAILQ_INSERT_TAIL(&ch->group->channels, ch, group_link);
	return 0;
}

static void channel_destroy(void *io_device, void *ctx)
{
	struct nvme_channel *ch = ctx;
	struct mimo_bdev_io *io;

	(void)io_device;
	TAILQ_REMOVE(&ch->group->channels, ch, group_link);
	mimo_poller_unregister(&ch->poller);
	/* Injected errors now; the queue pair next: what it held completes aborted, and may
	 * park (reconnecting); then everything parked fails, for good. */
	complete_deferred(ch, true);
	mimo_nvme_ctrlr_free_io_qpair(ch->qp);
	ch->qp = NULL;
	/* The other controllers' channels of this reactor (multipath), let go. */
	for (int i = 1; i < NVME_MAX_MP; i++) {
		if (ch->mp_ch[i] != NULL)
			mimo_put_io_channel(ch->mp_ch[i]);
		ch->mp_ch[i] = NULL;
	}
	while ((io = STAILQ_FIRST(&ch->retry)) != NULL) {
		struct nvme_io *nio = mimo_bdev_io_driver_ctx(io);

		STAILQ_REMOVE_HEAD(&ch->retry, link);
		nio->status = -ENXIO;
		nio->path_error = false;
		nio->retryable = false;
		if (nio->outstanding == 0)
			io_finish(io);
	}
}

/* --- bdevs ---------------------------------------------------------------------------------- */

static void continue_detach(struct nvme_bdev_ctrlr *nbc);
static void reconcile(struct nvme_bdev_ctrlr *nbc);
static void mp_set_ns(struct nvme_bdev_ctrlr *primary, uint32_t i, struct mimo_nvme_ctrlr *ctrlr);

static struct nvme_disk *find_disk(struct nvme_bdev_ctrlr *nbc, uint32_t nsid)
{
	struct nvme_disk *d;

	TAILQ_FOREACH(d, &nbc->disks, link)
	{
		if (d->nsid == nsid)
			return d;
	}
	return NULL;
}

static bool is_hidden(const struct nvme_bdev_ctrlr *nbc, uint32_t nsid)
{
	for (uint32_t i = 0; i < nbc->num_hidden; i++)
		if (nbc->hidden[i] == nsid)
			return true;
	return false;
}

static int nvme_destruct(void *ctx)
{
	struct nvme_disk *disk = ctx;
	struct nvme_bdev_ctrlr *nbc = disk->nbc;

	TAILQ_REMOVE(&nbc->disks, disk, link);
	if (!disk->removing && nbc->state != NBC_DELETING) {
		/* Deleted by someone else (bdev_delete_all at shutdown): do not bring it back. */
		uint32_t *h = realloc(nbc->hidden, (nbc->num_hidden + 1) * sizeof(*h));

		if (h != NULL) {
			nbc->hidden = h;
			nbc->hidden[nbc->num_hidden++] = disk->nsid;
		}
	}
	nvme_path_stat_free(disk);
	pthread_mutex_destroy(&disk->stat_lock);
	free(disk->bdev.name);
	free(disk);
	if (nbc->state == NBC_DELETING && TAILQ_EMPTY(&nbc->disks))
		continue_detach(nbc);
	else if (nbc->state == NBC_ENABLED)
		reconcile(nbc); /* the namespace may be back already under the same id */
	return 0;
}

static bool nvme_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct nvme_disk *disk = ctx;
	const struct mimo_nvme_ctrlr_data *cd = mimo_nvme_ctrlr_get_data(disk->nbc->ctrlr);

	switch (type) {
	case MIMO_BDEV_IO_READ:
	case MIMO_BDEV_IO_WRITE:
	case MIMO_BDEV_IO_FLUSH:
		return true;
	case MIMO_BDEV_IO_UNMAP:
		return (cd->oncs & (1u << 2)) != 0; /* Dataset Management */
	case MIMO_BDEV_IO_WRITE_ZEROES:
		return (cd->oncs & (1u << 3)) != 0;
	default:
		return false;
	}
}

static struct mimo_io_channel *nvme_get_io_channel(void *ctx)
{
	struct nvme_disk *disk = ctx;

	return mimo_get_io_channel(disk->nbc);
}

static void copy_field(char *out, size_t out_len, const char *in, size_t in_len)
{
	size_t n = in_len;

	/* Identify strings are space-padded ASCII. */
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\0'))
		n--;
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static json_t *trid_json(const struct mimo_nvme_trid *trid)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "trtype", "TCP", "adrfam",
			 trid->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4", "traddr",
			 trid->traddr, "trsvcid", trid->trsvcid, "subnqn", trid->subnqn);
}

static void nvme_dump_info(void *ctx, json_t *driver_specific)
{
	struct nvme_disk *disk = ctx;
	const struct mimo_nvme_ctrlr_data *cd = mimo_nvme_ctrlr_get_data(disk->nbc->ctrlr);
	uint32_t vs = mimo_nvme_ctrlr_get_vs(disk->nbc->ctrlr);
	char sn[21], mn[41], fr[9], vid[8], ver[16];

	copy_field(sn, sizeof(sn), cd->sn, sizeof(cd->sn));
	copy_field(mn, sizeof(mn), cd->mn, sizeof(cd->mn));
	copy_field(fr, sizeof(fr), cd->fr, sizeof(cd->fr));
	snprintf(vid, sizeof(vid), "0x%04x", cd->vid);
	snprintf(ver, sizeof(ver), "%u.%u", vs >> 16, (vs >> 8) & 0xff);
	json_object_set_new(driver_specific, "nvme",
			    json_pack("[{s:o, s:{s:i, s:s, s:s, s:s, s:s, s:s}, s:{s:s}, s:{s:i}}]",
				      "trid", trid_json(&disk->nbc->trid), "ctrlr_data", "cntlid",
				      (int)cd->cntlid, "vendor_id", vid, "model_number", mn,
				      "serial_number", sn, "firmware_revision", fr, "subnqn",
				      disk->nbc->trid.subnqn, "vs", "nvme_version", ver, "ns_data",
				      "id", (int)disk->nsid));
}

/* The attach of one path of the controller. */
static json_t *attach_json(const struct nvme_bdev_ctrlr *nbc, const struct mimo_nvme_trid *t,
			   const char *mode)
{
	json_t *params;

	params = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "name", nbc->name, "trtype", "TCP",
		"adrfam", t->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4", "traddr", t->traddr,
		"trsvcid", t->trsvcid, "subnqn", t->subnqn, "hostnqn", nbc->ctrlr->hostnqn, "hdgst",
		nbc->opts.header_digest, "ddgst", nbc->opts.data_digest);
	/* The keys by name: the keyring (saved before) holds where they are. */
	if (nbc->dhchap_key != NULL)
		json_object_set_new(params, "dhchap_key", json_string(nbc->dhchap_key));
	if (nbc->dhchap_ctrlr_key != NULL)
		json_object_set_new(params, "dhchap_ctrlr_key", json_string(nbc->dhchap_ctrlr_key));
	if (nbc->psk != NULL)
		json_object_set_new(params, "psk", json_string(nbc->psk));
	/* Always, as SPDK writes them. */
	json_object_set_new(params, "ctrlr_loss_timeout_sec",
			    json_integer(nbc->reconnect.ctrlr_loss_timeout_sec));
	json_object_set_new(params, "reconnect_delay_sec",
			    json_integer(nbc->reconnect.reconnect_delay_sec));
	json_object_set_new(params, "fast_io_fail_timeout_sec",
			    json_integer(nbc->reconnect.fast_io_fail_timeout_sec));
	/* SPDK leaves the mode out of an alternate path's attach (its replay then asks for
	 * multipath mode); mimo names it, so the replay adds the path the same way. */
	if (mode != NULL)
		json_object_set_new(params, "multipath", json_string(mode));
	return json_pack("{s:s, s:o}", "method", "bdev_nvme_attach_controller", "params", params);
}

static void nvme_write_config(struct mimo_bdev *bdev, json_t *config)
{
	struct nvme_disk *disk = bdev->ctxt, *d;
	struct nvme_bdev_ctrlr *nbc = disk->nbc;

	/* One attach per path of the controller, the active one first: written by its
	 * lowest-numbered namespace's bdev. One a discovery attached is its (SPDK's). */
	if (nbc->from_discovery)
		return;
	TAILQ_FOREACH(d, &nbc->disks, link)
	{
		if (!d->removing && d->nsid < disk->nsid)
			return;
	}
	for (uint32_t i = 0; i < nbc->num_paths; i++)
		json_array_append_new(
			config, attach_json(nbc, &nbc->paths[(nbc->active + i) % nbc->num_paths],
					    i > 0 ? "failover" : NULL));
	/* Multipath: the name's further controllers, as SPDK saves them. */
	for (uint32_t i = 1; i < NVME_MAX_MP; i++)
		if (nbc->mp[i] != NULL)
			json_array_append_new(
				config, attach_json(nbc->mp[i], &nbc->mp[i]->trid, "multipath"));
}

static const struct mimo_bdev_fn_table g_nvme_fn_table = {
	.destruct = nvme_destruct,
	.submit_request = nvme_submit,
	.io_type_supported = nvme_io_type_supported,
	.get_io_channel = nvme_get_io_channel,
	.dump_info_json = nvme_dump_info,
	.write_config_json = nvme_write_config,
};

static int create_disk(struct nvme_bdev_ctrlr *nbc, struct mimo_nvme_ns *ns, json_t *names)
{
	struct nvme_disk *disk = calloc(1, sizeof(*disk));
	const uint8_t *uuid = mimo_nvme_ns_get_uuid(ns);
	int rc;

	if (disk == NULL)
		return -ENOMEM;
	disk->nbc = nbc;
	disk->ns = ns;
	disk->min_io = 1;
	pthread_mutex_init(&disk->stat_lock, NULL);
	disk->nsid = mimo_nvme_ns_get_id(ns);
	if (asprintf(&disk->bdev.name, "%sn%u", nbc->name, disk->nsid) < 0) {
		free(disk);
		return -ENOMEM;
	}
	disk->bdev.product_name = "NVMe disk";
	disk->bdev.blocklen = mimo_nvme_ns_get_sector_size(ns);
	disk->bdev.blockcnt = mimo_nvme_ns_get_num_sectors(ns);
	if (uuid != NULL)
		memcpy(disk->bdev.uuid, uuid, 16);
	disk->bdev.ctxt = disk;
	disk->bdev.fn_table = &g_nvme_fn_table;
	disk->bdev.module = &g_nvme_module;
	TAILQ_INSERT_TAIL(&nbc->disks, disk, link);
	/* Multipath: the same namespace through the name's further controllers. */
	for (uint32_t i = 1; i < NVME_MAX_MP; i++) {
		struct nvme_bdev_ctrlr *m = nbc->mp[i];
		struct mimo_nvme_ns *o = m != NULL && m->state == NBC_ENABLED
						 ? mimo_nvme_ctrlr_get_ns(m->ctrlr, disk->nsid)
						 : NULL;

		if (o != NULL && mimo_nvme_ns_get_sector_size(o) == disk->bdev.blocklen &&
		    mimo_nvme_ns_get_num_sectors(o) == disk->bdev.blockcnt)
			disk->mp_ns[i] = o;
	}
	rc = mimo_bdev_register(&disk->bdev);
	if (rc != 0) {
		MIMO_ERR(COMP, "%s: cannot register %s: %s", nbc->name, disk->bdev.name,
			 strerror(-rc));
		TAILQ_REMOVE(&nbc->disks, disk, link);
		pthread_mutex_destroy(&disk->stat_lock);
		free(disk->bdev.name);
		free(disk);
		return rc;
	}
	if (names != NULL)
		json_array_append_new(names, json_string(disk->bdev.name));
	return 0;
}

/*
 * Ask for a bdev's deletion. Only an accepted request marks it removing (its destruct will
 * come); one refused because the bdev is claimed is retried from the admin poller, so neither
 * reconcile nor detach waits for a destruct that never comes.
 */
static void delete_disk(struct nvme_bdev_ctrlr *nbc, struct nvme_disk *d)
{
	int rc = mimo_bdev_delete(d->bdev.name, NULL, NULL);

	/* -ENODEV / -EBUSY while unclaimed: someone else's deletion is under way, and its
	 * destruct comes all the same. */
	if (rc == 0 || rc == -ENODEV || (rc == -EBUSY && !mimo_bdev_is_claimed(&d->bdev))) {
		d->removing = true;
		return;
	}
	if (!d->delete_warned)
		MIMO_WARN(COMP, "%s: %s cannot be deleted now (%s): retrying", nbc->name,
			  d->bdev.name, rc == -EBUSY ? "claimed" : strerror(-rc));
	d->delete_warned = true;
	nbc->retry_deletes = true;
	nbc->next_retry_ns = mimo_now_ns() + DELETE_RETRY_NS;
}

/* Make the bdevs match the active namespaces: a bdev whose namespace is gone, or was replaced
 * under its ID by another object (identity, block size or size changed), is deleted; its
 * destruct calls this again, which then creates the bdev of the new namespace. */
static void reconcile(struct nvme_bdev_ctrlr *nbc)
{
	struct mimo_nvme_ctrlr *ctrlr = nbc->ctrlr;
	struct nvme_disk *d, *tmp;

	/* A further controller of a name (multipath) has no bdevs: its namespaces are paths of
	 * its primary's. */
	if (nbc->mp_primary != NULL) {
		if (!nbc->mp_unlinking && nbc->mp_primary->mp[nbc->mp_slot] == nbc)
			mp_set_ns(nbc->mp_primary, nbc->mp_slot, ctrlr);
		return;
	}

	nbc->retry_deletes = false;
	for (d = TAILQ_FIRST(&nbc->disks); d != NULL; d = tmp) {
		struct mimo_nvme_ns *cur = mimo_nvme_ctrlr_get_ns(ctrlr, d->nsid);

		tmp = TAILQ_NEXT(d, link);
		/* d->ns NULL: its namespace did not come back as it was from a reconnect. */
		if (d->removing || (cur == d->ns && cur != NULL))
			continue;
		if (cur == NULL)
			MIMO_INFO(COMP, "%s: namespace %u is gone: deleting %s", nbc->name, d->nsid,
				  d->bdev.name);
		else
			MIMO_INFO(COMP,
				  "%s: namespace %u was replaced (block size %u, now %u): "
				  "re-creating %s",
				  nbc->name, d->nsid, d->bdev.blocklen,
				  mimo_nvme_ns_get_sector_size(cur), d->bdev.name);
		delete_disk(nbc, d);
	}
	for (uint32_t id = mimo_nvme_ctrlr_get_first_active_ns(ctrlr); id != 0;
	     id = mimo_nvme_ctrlr_get_next_active_ns(ctrlr, id)) {
		if (find_disk(nbc, id) != NULL || is_hidden(nbc, id))
			continue;
		MIMO_INFO(COMP, "%s: namespace %u appeared", nbc->name, id);
		(void)create_disk(nbc, mimo_nvme_ctrlr_get_ns(ctrlr, id), NULL);
	}
}

static void on_aer(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct nvme_bdev_ctrlr *nbc = arg;

	(void)cpl; /* whatever changed, the namespace list is already refreshed */
	if (nbc->state == NBC_ENABLED)
		reconcile(nbc);
}

/* --- controllers ---------------------------------------------------------------------------- */

static void nbc_free(struct nvme_bdev_ctrlr *nbc)
{
	free(nbc->hidden);
	pthread_mutex_destroy(&nbc->path_lock);
	free(nbc->paths);
	free(nbc->name);
	free(nbc->dhchap_key);
	free(nbc->dhchap_ctrlr_key);
	free(nbc->psk);
	explicit_bzero(&nbc->opts, sizeof(nbc->opts)); /* the secrets */
	free(nbc);
}

/* A key of the keyring of that kind, by name, into m (and its name into *saved). */
static int keyring_material(const char *name, enum mimo_key_kind kind, struct mimo_key_material *m,
			    char **saved)
{
	struct mimo_key *key = mimo_keyring_get(name);
	int rc;

	if (key == NULL)
		return -ENOKEY;
	if (mimo_key_kind(key) != kind) {
		mimo_key_put(key);
		return -EKEYREJECTED;
	}
	rc = mimo_key_get_material(key, m);
	mimo_key_put(key);
	if (rc != 0)
		return rc;
	*saved = strdup(name);
	if (*saved == NULL) {
		mimo_key_material_wipe(m);
		return -ENOMEM;
	}
	return 0;
}

/* A DH-HMAC-CHAP secret of the keyring, by name, into k (and its name into *saved). */
static int keyring_secret(const char *name, struct mimo_nvme_dhchap_key *k, char **saved)
{
	struct mimo_key_material m;
	int rc;

	if (name == NULL)
		return 0;
	rc = keyring_material(name, MIMO_KEY_DHCHAP, &m, saved);
	if (rc != 0)
		return rc;
	k->hash = m.hash;
	k->len = m.len;
	memcpy(k->key, m.key, m.len);
	mimo_key_material_wipe(&m);
	return 0;
}

/* A TLS PSK of the keyring, by name, into k (and its name into *saved). */
static int keyring_psk(const char *name, struct mimo_nvme_tls_psk *k, char **saved)
{
	struct mimo_key_material m;
	int rc;

	if (name == NULL)
		return 0;
	rc = keyring_material(name, MIMO_KEY_TLS_PSK, &m, saved);
	if (rc != 0)
		return rc;
	k->hash = m.hash;
	k->len = m.len;
	memcpy(k->key, m.key, m.len);
	mimo_key_material_wipe(&m);
	return 0;
}

static void retry_deletes(struct nvme_bdev_ctrlr *nbc)
{
	struct nvme_disk *d, *tmp;
	void (*cb)(void *arg, int rc);

	if (nbc->state == NBC_ENABLED) {
		reconcile(nbc);
		return;
	}
	if (nbc->state != NBC_DELETING)
		return;
	if (mimo_now_ns() >= nbc->detach_deadline_ns) {
		/* A bdev stayed claimed: the detach fails and the controller stays. Its other
		 * bdevs, already gone, come back through reconcile. */
		MIMO_ERR(COMP, "%s: detach abandoned: a bdev of it stays claimed", nbc->name);
		nbc->state = NBC_ENABLED;
		cb = nbc->detach_cb;
		nbc->detach_cb = NULL;
		reconcile(nbc);
		if (cb != NULL)
			cb(nbc->detach_arg, -EBUSY);
		return;
	}
	nbc->retry_deletes = false;
	for (d = TAILQ_FIRST(&nbc->disks); d != NULL; d = tmp) {
		tmp = TAILQ_NEXT(d, link);
		if (!d->removing)
			delete_disk(nbc, d);
	}
}

/* --- reconnecting ---------------------------------------------------------------------------
 *
 * A controller lost with ctrlr_loss_timeout_sec != 0 is connected again as a new controller
 * object of lib/nvme, with the same transport ID and options, then swapped in:
 *   1. the path turns PATH_QUEUE; every channel, on its reactor, frees its queue pair (what
 *      it held completes aborted and parks) and stays paused;
 *   2. reactor 0 connects again, now and then every reconnect_delay_sec, while I/O waits
 *      (or fails, past fast_io_fail_timeout_sec); past ctrlr_loss_timeout_sec the controller
 *      is detached as bdev_nvme_detach_controller would;
 *   3. connected: the new controller replaces the old one (which is shut down), the bdevs
 *      take its namespaces by ID, and every channel makes a queue pair of it and resubmits
 *      what it parked. A namespace that did not come back is deleted by reconcile.
 * The old controller stays nbc->ctrlr until step 3, so what reads it meanwhile (RPCs, the
 * bdevs' JSON) reads a valid, failed object; the I/O path does not read it while paused.
 */

static int admin_poll(void *arg);
static int reconnect_poll(void *arg);
static void poll_old_detach(struct nvme_bdev_ctrlr *nbc);

static int pause_channel(struct mimo_io_channel *ioch, void *arg)
{
	struct nvme_channel *ch = mimo_io_channel_get_ctx(ioch);

	(void)arg;
	ch->paused = true;
	ch->requeue_ns = 0; /* a queue pair of the next connection at once */
	/* Its commands complete aborted now: they park (PATH_QUEUE). */
	mimo_nvme_ctrlr_free_io_qpair(ch->qp);
	ch->qp = NULL;
	return 0;
}

/* Failover: the next path becomes the one connected to. */
static void next_path(struct nvme_bdev_ctrlr *nbc)
{
	if (nbc->num_paths < 2)
		return;
	nbc->active = (nbc->active + 1) % nbc->num_paths;
	pthread_mutex_lock(&nbc->path_lock);
	nbc->trid = nbc->paths[nbc->active];
	pthread_mutex_unlock(&nbc->path_lock);
	MIMO_INFO(COMP, "%s: failing over to %s:%s", nbc->name, nbc->trid.traddr,
		  nbc->trid.trsvcid);
}

static void op_done(struct nvme_bdev_ctrlr *nbc, int rc)
{
	void (*cb)(void *arg, int rc) = nbc->op_cb;

	nbc->op_cb = NULL;
	if (cb != NULL)
		cb(nbc->op_arg, rc);
}

/* Not connected, not trying to be: I/O fails; the admin poller (on the failed controller
 * object) keeps retrying refused bdev deletions. */
static void settle(struct nvme_bdev_ctrlr *nbc, enum nbc_state state)
{
	path_set(nbc, PATH_FAIL);
	nbc->state = state;
	mimo_poller_unregister(&nbc->poller);
	nbc->poller = mimo_poller_register(admin_poll, nbc, g_opts.adminq_poll_period_us);
}

/* Channels paused (or already so): connect again, the first attempt at once (SPDK's
 * reset). */
static void start_attempts(struct nvme_bdev_ctrlr *nbc)
{
	nbc->state = NBC_RECONNECTING;
	path_set(nbc, PATH_QUEUE);
	nbc->tried = 0;
	nbc->next_attempt_ns = mimo_now_ns();
	mimo_poller_unregister(&nbc->poller);
	nbc->poller = mimo_poller_register(reconnect_poll, nbc, RECONNECT_POLL_US);
	if (nbc->poller == NULL) {
		MIMO_ERR(COMP, "%s: cannot reconnect (no memory): failed", nbc->name);
		settle(nbc, NBC_FAILED);
		op_done(nbc, -ENOMEM);
	}
}

static void channels_paused(void *arg, int status)
{
	struct nvme_bdev_ctrlr *nbc = arg;

	(void)status;
	nbc->pausing = false;
	if (nbc->state == NBC_RECONNECTING)
		start_attempts(nbc);
	else if (nbc->state == NBC_DISABLED)
		op_done(nbc, 0);
}

/* Let go of the connection (lost, or dropped for a reset or disable) and pause the channels;
 * then channels_paused continues in state (NBC_RECONNECTING or NBC_DISABLED). */
static void disconnect_all(struct nvme_bdev_ctrlr *nbc, enum nbc_state state)
{
	if (mimo_nvme_ctrlr_is_connected(nbc->ctrlr))
		mimo_nvme_ctrlr_disconnect(nbc->ctrlr);
	nbc->state = state;
	nbc->reset_start_ns = mimo_now_ns();
	path_set(nbc, state == NBC_DISABLED ? PATH_FAIL : PATH_QUEUE);
	mimo_poller_unregister(&nbc->poller);
	if (state == NBC_DISABLED)
		nbc->poller = mimo_poller_register(admin_poll, nbc, g_opts.adminq_poll_period_us);
	nbc->pausing = true;
	if (mimo_for_each_channel(nbc, pause_channel, nbc, channels_paused) != 0) {
		nbc->pausing = false;
		MIMO_ERR(COMP, "%s: cannot pause its channels (no memory): failed", nbc->name);
		settle(nbc, NBC_FAILED);
		op_done(nbc, -ENOMEM);
	}
}

/* The connection is gone: queue I/O and start over. From the admin poller. */
static void start_reconnect(struct nvme_bdev_ctrlr *nbc)
{
	MIMO_WARN(COMP,
		  "%s: lost the controller at %s:%s: reconnecting (ctrlr_loss_timeout_sec %d)",
		  nbc->name, nbc->trid.traddr, nbc->trid.trsvcid,
		  (int)nbc->reconnect.ctrlr_loss_timeout_sec);
	next_path(nbc); /* the lost path is tried last (SPDK's failover) */
	disconnect_all(nbc, NBC_RECONNECTING);
}

static int resume_channel(struct mimo_io_channel *ioch, void *arg)
{
	struct nvme_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct nvme_bdev_ctrlr *nbc = arg;
	STAILQ_HEAD(, mimo_bdev_io) parked;
	struct mimo_bdev_io *io;

	ch->paused = false;
	if (ch->qp == NULL && mimo_nvme_ctrlr_alloc_io_qpair(nbc->ctrlr, NULL, &ch->qp) != 0) {
		ch->qp = NULL; /* the channel's poller tries again; its I/O waits meanwhile */
		ch->requeue_ns = mimo_now_ns() + REQUEUE_DELAY_NS;
		return 0;
	}
	STAILQ_INIT(&parked);
	STAILQ_CONCAT(&parked, &ch->retry);
	while ((io = STAILQ_FIRST(&parked)) != NULL) {
		STAILQ_REMOVE_HEAD(&parked, link);
		io_resume(io);
	}
	return 0;
}

static void channels_resumed(void *arg, int status)
{
	struct nvme_bdev_ctrlr *nbc = arg;

	(void)status;
	nbc->resuming = false;
	if (nbc->state == NBC_ENABLED)
		reconcile(nbc); /* namespaces that came back changed, or not at all */
}

/* Connected again: the new controller takes the old one's place. */
static void reconnected(struct nvme_bdev_ctrlr *nbc, struct mimo_nvme_ctrlr *ctrlr)
{
	struct mimo_nvme_ctrlr *old = nbc->ctrlr;
	struct nvme_disk *d;

	__atomic_store_n(&nbc->ctrlr, ctrlr, __ATOMIC_RELEASE);
	/* The bdevs' namespaces, by ID; one that is gone or changed shape gets none (its I/O
	 * fails) and reconcile deletes or re-creates its bdev. */
	TAILQ_FOREACH(d, &nbc->disks, link)
	{
		struct mimo_nvme_ns *ns = mimo_nvme_ctrlr_get_ns(ctrlr, d->nsid);

		if (ns != NULL && (mimo_nvme_ns_get_sector_size(ns) != d->bdev.blocklen ||
				   mimo_nvme_ns_get_num_sectors(ns) != d->bdev.blockcnt))
			ns = NULL;
		d->ns = ns;
	}
	if (nbc->mp_primary != NULL) /* a further controller of the name: the paths through it */
		mp_set_ns(nbc->mp_primary, nbc->mp_slot, ctrlr);
	mimo_nvme_ctrlr_register_aer_callback(ctrlr, on_aer, nbc);
	/* Its queue pairs are gone (the channels freed them): only the admin queue is left. */
	while (nbc->old_detach != NULL) /* the one before, if still going (it ends soon) */
		poll_old_detach(nbc);
	if (mimo_nvme_detach_async(old, &nbc->old_detach) != 0)
		nbc->old_detach = NULL;
	MIMO_INFO(COMP, "%s: reconnected to %s:%s (cntlid %u)", nbc->name, nbc->trid.traddr,
		  nbc->trid.trsvcid, ctrlr->cntlid);
	nbc->state = NBC_ENABLED;
	path_set(nbc, PATH_OK);
	mimo_poller_unregister(&nbc->poller);
	nbc->poller = mimo_poller_register(admin_poll, nbc, g_opts.adminq_poll_period_us);
	nbc->resuming = true;
	if (mimo_for_each_channel(nbc, resume_channel, nbc, channels_resumed) != 0) {
		/* No memory for the walk: each channel un-pauses from its poller (it sees
		 * PATH_OK), re-makes its queue pair and resumes its parked I/O there. */
		nbc->resuming = false;
		MIMO_WARN(COMP, "%s: channels resume from their pollers", nbc->name);
	}
	op_done(nbc, 0);
}

static int detach_nbc(struct nvme_bdev_ctrlr *nbc, void (*cb)(void *arg, int rc), void *arg);

/* Past ctrlr_loss_timeout_sec: the controller goes, with its bdevs (their I/O fails). */
static void give_up(struct nvme_bdev_ctrlr *nbc)
{
	int rc;

	MIMO_ERR(COMP, "%s: not reconnected within ctrlr_loss_timeout_sec %d: deleting it",
		 nbc->name, (int)nbc->reconnect.ctrlr_loss_timeout_sec);
	rc = detach_nbc(nbc, NULL, NULL);
	if (rc != 0) {
		/* A bdev of it is claimed: it stays, failed, until detached. */
		MIMO_ERR(COMP, "%s: cannot delete it (%s): it stays failed", nbc->name,
			 strerror(-rc));
		if (nbc->connect != NULL) {
			mimo_nvme_connect_abort(nbc->connect);
			nbc->connect = NULL;
		}
		settle(nbc, NBC_FAILED);
		op_done(nbc, -EIO);
	}
}

/*
 * An attempt to connect failed. Each path is tried once in turn at once (failover); after a
 * round, a controller that does not reconnect (ctrlr_loss_timeout_sec 0) stays failed, the
 * others wait reconnect_delay_sec for the next round.
 */
static void attempt_failed(struct nvme_bdev_ctrlr *nbc, int rc)
{
	const struct bdev_nvme_reconnect_opts *o = &nbc->reconnect;

	op_done(nbc, -EIO); /* a reset's caller learns of the first attempt */
	if (++nbc->tried < nbc->num_paths) {
		MIMO_INFO(COMP, "%s: cannot connect to %s:%s (%s)", nbc->name, nbc->trid.traddr,
			  nbc->trid.trsvcid, strerror(-rc));
		next_path(nbc);
		nbc->next_attempt_ns = mimo_now_ns();
		return;
	}
	nbc->tried = 0;
	if (o->ctrlr_loss_timeout_sec == 0) {
		MIMO_ERR(COMP, "%s: cannot connect to %s:%s (%s): failed", nbc->name,
			 nbc->trid.traddr, nbc->trid.trsvcid, strerror(-rc));
		settle(nbc, NBC_FAILED);
		return;
	}
	MIMO_INFO(COMP, "%s: reconnecting to %s:%s failed (%s): next in %u s", nbc->name,
		  nbc->trid.traddr, nbc->trid.trsvcid, strerror(-rc), o->reconnect_delay_sec);
	next_path(nbc);
	nbc->next_attempt_ns = mimo_now_ns() + (int64_t)o->reconnect_delay_sec * NS_PER_SEC;
}

static int reconnect_poll(void *arg)
{
	struct nvme_bdev_ctrlr *nbc = arg;
	const struct bdev_nvme_reconnect_opts *o = &nbc->reconnect;
	int64_t now = mimo_now_ns(), lost = now - nbc->reset_start_ns;
	struct mimo_nvme_ctrlr *ctrlr = NULL;
	int rc;

	if (o->fast_io_fail_timeout_sec != 0 && path_get(nbc) == PATH_QUEUE &&
	    lost >= (int64_t)o->fast_io_fail_timeout_sec * NS_PER_SEC) {
		MIMO_WARN(COMP, "%s: fast_io_fail_timeout_sec %u passed: failing I/O", nbc->name,
			  o->fast_io_fail_timeout_sec);
		path_set(nbc, PATH_FAIL);
	}
	if (o->ctrlr_loss_timeout_sec > 0 &&
	    lost >= (int64_t)o->ctrlr_loss_timeout_sec * NS_PER_SEC) {
		give_up(nbc);
		return 1;
	}
	if (nbc->connect != NULL) {
		rc = mimo_nvme_connect_poll(nbc->connect, &ctrlr);
		if (rc == -EAGAIN)
			return 1;
		nbc->connect = NULL;
		if (rc == 0) {
			reconnected(nbc, ctrlr);
			return 1;
		}
		attempt_failed(nbc, rc);
		return 1;
	}
	if (now < nbc->next_attempt_ns)
		return 0;
	rc = mimo_nvme_connect_async(&nbc->trid, &nbc->opts, &nbc->connect);
	if (rc != 0) {
		nbc->connect = NULL;
		attempt_failed(nbc, rc);
	}
	return 1;
}

/* The controller the last reconnect replaced, shutting down (its connection is gone, so
 * this is quick). */
static void poll_old_detach(struct nvme_bdev_ctrlr *nbc)
{
	if (nbc->old_detach != NULL && mimo_nvme_detach_poll(nbc->old_detach) != -EAGAIN)
		nbc->old_detach = NULL;
}

static int admin_poll(void *arg)
{
	struct nvme_bdev_ctrlr *nbc = arg;
	int rc = mimo_nvme_ctrlr_process_admin_completions(nbc->ctrlr);

	poll_old_detach(nbc);
	if (nbc->retry_deletes && mimo_now_ns() >= nbc->next_retry_ns)
		retry_deletes(nbc);

	if (rc == -ENXIO && nbc->state == NBC_ENABLED) {
		/* Reconnect, or fail over to another path (once, even without reconnect
		 * options, as SPDK). */
		if (nbc->reconnect.ctrlr_loss_timeout_sec != 0 || nbc->num_paths > 1) {
			/* Not while the channels still take the last connection's queue pairs:
			 * the next poll sees the loss again. */
			if (!nbc->resuming)
				start_reconnect(nbc);
			return 1;
		}
		MIMO_ERR(COMP, "%s: lost the controller at %s:%s", nbc->name, nbc->trid.traddr,
			 nbc->trid.trsvcid);
		nbc->state = NBC_FAILED;
	}
	return rc > 0 ? 1 : 0;
}

static void mp_connected(struct nvme_bdev_ctrlr *nbc);

static int connect_poll(void *arg)
{
	struct nvme_bdev_ctrlr *nbc = arg;
	int rc = mimo_nvme_connect_poll(nbc->connect, &nbc->ctrlr);
	json_t *names;

	if (rc == -EAGAIN)
		return 1;
	nbc->connect = NULL;
	mimo_poller_unregister(&nbc->poller);
	if (rc != 0) {
		MIMO_ERR(COMP, "%s: cannot attach %s:%s %s: %s", nbc->name, nbc->trid.traddr,
			 nbc->trid.trsvcid, nbc->trid.subnqn, strerror(-rc));
		TAILQ_REMOVE(&g_bdev_nvme_ctrlrs, nbc, link);
		nbc->attach_cb(nbc->attach_arg, rc, NULL);
		nbc_free(nbc);
		return 1;
	}
	if (nbc->mp_primary != NULL) {
		mp_connected(nbc);
		return 1;
	}
	mimo_io_device_register(nbc, channel_create, channel_destroy, sizeof(struct nvme_channel),
				nbc->name);
	nbc->io_device = true;
	mimo_nvme_ctrlr_register_aer_callback(nbc->ctrlr, on_aer, nbc);
	nbc->state = NBC_ENABLED;
	names = json_array();
	for (uint32_t id = mimo_nvme_ctrlr_get_first_active_ns(nbc->ctrlr); id != 0;
	     id = mimo_nvme_ctrlr_get_next_active_ns(nbc->ctrlr, id))
		(void)create_disk(nbc, mimo_nvme_ctrlr_get_ns(nbc->ctrlr, id), names);
	nbc->poller = mimo_poller_register(admin_poll, nbc, g_opts.adminq_poll_period_us);
	MIMO_INFO(COMP, "%s: attached %s:%s %s (cntlid %u, %zu bdev(s))", nbc->name,
		  nbc->trid.traddr, nbc->trid.trsvcid, nbc->trid.subnqn, nbc->ctrlr->cntlid,
		  json_array_size(names));
	nbc->attach_cb(nbc->attach_arg, 0, names);
	json_decref(names);
	return 1;
}

/* An attach; primary: the name's first controller when this is a further one (multipath),
 * slot its place there. */
static int attach_nbc(const char *name, const struct mimo_nvme_trid *trid,
		      const struct mimo_nvme_ctrlr_opts *opts,
		      const struct bdev_nvme_reconnect_opts *reconnect, const char *dhchap_key,
		      const char *dhchap_ctrlr_key, const char *psk, bdev_nvme_attach_cb cb,
		      void *arg, struct nvme_bdev_ctrlr *primary, uint32_t slot)
{
	struct nvme_bdev_ctrlr *nbc;
	int rc;

	if (name == NULL || name[0] == '\0' || trid == NULL || cb == NULL)
		return -EINVAL;
	if (primary == NULL && find_nbc(name) != NULL)
		return -EALREADY;
	nbc = calloc(1, sizeof(*nbc));
	if (nbc == NULL || (nbc->name = strdup(name)) == NULL) {
		free(nbc);
		return -ENOMEM;
	}
	pthread_mutex_init(&nbc->path_lock, NULL);
	nbc->trid = *trid;
	nbc->paths = malloc(sizeof(*nbc->paths));
	if (nbc->paths == NULL) {
		nbc_free(nbc);
		return -ENOMEM;
	}
	nbc->paths[0] = *trid;
	nbc->num_paths = 1;
	nbc->mp[0] = nbc;
	nbc->mp_primary = primary;
	nbc->mp_slot = slot;
	nbc->reconnect = reconnect != NULL ? *reconnect : g_opts.reconnect;
	if (opts != NULL)
		nbc->opts = *opts;
	else
		mimo_nvme_ctrlr_opts_init(&nbc->opts);
	rc = keyring_secret(dhchap_key, &nbc->opts.dhchap_key, &nbc->dhchap_key);
	if (rc == 0)
		rc = keyring_secret(dhchap_ctrlr_key, &nbc->opts.dhchap_ctrlr_key,
				    &nbc->dhchap_ctrlr_key);
	if (rc == 0)
		rc = keyring_psk(psk, &nbc->opts.tls_psk, &nbc->psk);
	if (rc != 0) {
		nbc_free(nbc);
		return rc;
	}
	TAILQ_INIT(&nbc->disks);
	nbc->attach_cb = cb;
	nbc->attach_arg = arg;
	rc = mimo_nvme_connect_async(trid, &nbc->opts, &nbc->connect);
	if (rc == 0) {
		nbc->poller = mimo_poller_register(connect_poll, nbc, 0);
		if (nbc->poller == NULL) {
			mimo_nvme_connect_abort(nbc->connect);
			rc = -ENOMEM;
		}
	}
	if (rc != 0) {
		nbc_free(nbc);
		return rc;
	}
	nbc->state = NBC_CONNECTING;
	TAILQ_INSERT_TAIL(&g_bdev_nvme_ctrlrs, nbc, link);
	return 0;
}

int bdev_nvme_attach(const char *name, const struct mimo_nvme_trid *trid,
		     const struct mimo_nvme_ctrlr_opts *opts,
		     const struct bdev_nvme_reconnect_opts *reconnect, const char *dhchap_key,
		     const char *dhchap_ctrlr_key, const char *psk, bdev_nvme_attach_cb cb,
		     void *arg)
{
	return attach_nbc(name, trid, opts, reconnect, dhchap_key, dhchap_ctrlr_key, psk, cb, arg,
			  NULL, 0);
}

static int detach_poll(void *arg)
{
	struct nvme_bdev_ctrlr *nbc = arg;
	int rc = mimo_nvme_detach_poll(nbc->detach);

	if (rc == -EAGAIN)
		return 1;
	nbc->detach = NULL;
	mimo_poller_unregister(&nbc->poller);
	TAILQ_REMOVE(&g_bdev_nvme_ctrlrs, nbc, link);
	MIMO_INFO(COMP, "%s: detached", nbc->name);
	if (nbc->detach_cb != NULL)
		nbc->detach_cb(nbc->detach_arg, 0);
	nbc_free(nbc);
	return 1;
}

/* Every channel is gone: shut the controller down. */
static void after_channels(void *arg)
{
	struct nvme_bdev_ctrlr *nbc = arg;
	int rc;

	/* A controller a reconnect replaced and still shutting down: its connection is gone,
	 * so this ends at once (at worst at lib/nvme's shutdown deadline). */
	while (nbc->old_detach != NULL)
		poll_old_detach(nbc);

	rc = mimo_nvme_detach_async(nbc->ctrlr, &nbc->detach);
	if (rc == 0)
		nbc->poller = mimo_poller_register(detach_poll, nbc, DETACH_POLL_US);
	if (rc != 0 || nbc->poller == NULL) {
		/* Without a poller to wait with, let go of it at once. */
		if (rc == 0)
			while (mimo_nvme_detach_poll(nbc->detach) == -EAGAIN)
				;
		TAILQ_REMOVE(&g_bdev_nvme_ctrlrs, nbc, link);
		if (nbc->detach_cb != NULL)
			nbc->detach_cb(nbc->detach_arg, 0);
		nbc_free(nbc);
	}
}

static void continue_detach(struct nvme_bdev_ctrlr *nbc)
{
	mimo_poller_unregister(&nbc->poller);
	if (nbc->io_device) {
		nbc->io_device = false;
		mimo_io_device_unregister(nbc, after_channels, nbc);
	} else {
		after_channels(nbc);
	}
}

static int detach_nbc(struct nvme_bdev_ctrlr *nbc, void (*cb)(void *arg, int rc), void *arg);

int bdev_nvme_detach(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *nbc = name != NULL ? find_nbc(name) : NULL;

	return nbc != NULL ? detach_nbc(nbc, cb, arg) : -ENODEV;
}

/* --- multipath: further controllers of a name ----------------------------------------------- */

/* The namespace of each of the primary's bdevs through controller slot i of the name (NULL
 * where it has none of the same shape). Only while that controller's channels hold no queue
 * pair (new, or paused): choose_path reads it after the queue pair. */
static void mp_set_ns(struct nvme_bdev_ctrlr *primary, uint32_t i, struct mimo_nvme_ctrlr *ctrlr)
{
	struct nvme_disk *d;

	TAILQ_FOREACH(d, &primary->disks, link)
	{
		struct mimo_nvme_ns *ns =
			ctrlr != NULL ? mimo_nvme_ctrlr_get_ns(ctrlr, d->nsid) : NULL;

		if (ns != NULL && (mimo_nvme_ns_get_sector_size(ns) != d->bdev.blocklen ||
				   mimo_nvme_ns_get_num_sectors(ns) != d->bdev.blockcnt))
			ns = NULL;
		__atomic_store_n(&d->mp_ns[i], ns, __ATOMIC_RELEASE);
	}
}

static void mp_refused(void *arg, int rc)
{
	struct nvme_bdev_ctrlr *nbc = arg;

	(void)rc;
	/* nbc is freed after this: its attach's caller learns why. */
	nbc->attach_cb(nbc->attach_arg, -EINVAL, NULL);
}

/* A further controller of the name connected: a path to the primary's bdevs when its
 * namespaces are theirs. */
static void mp_connected(struct nvme_bdev_ctrlr *nbc)
{
	struct nvme_bdev_ctrlr *primary = nbc->mp_primary;
	struct nvme_disk *d;
	json_t *names;

	if (bdev_nvme_same_namespaces(primary, nbc->ctrlr) != 0 || primary->state == NBC_DELETING ||
	    primary->mp[nbc->mp_slot] != NULL) {
		MIMO_ERR(COMP, "%s: %s:%s leads to other namespaces: not a path of them", nbc->name,
			 nbc->trid.traddr, nbc->trid.trsvcid);
		nbc->state = NBC_DELETING;
		nbc->detach_cb = mp_refused;
		nbc->detach_arg = nbc;
		continue_detach(nbc);
		return;
	}
	mimo_io_device_register(nbc, channel_create, channel_destroy, sizeof(struct nvme_channel),
				nbc->name);
	nbc->io_device = true;
	mimo_nvme_ctrlr_register_aer_callback(nbc->ctrlr, on_aer, nbc);
	nbc->state = NBC_ENABLED;
	nbc->poller = mimo_poller_register(admin_poll, nbc, g_opts.adminq_poll_period_us);
	mp_set_ns(primary, nbc->mp_slot, nbc->ctrlr);
	__atomic_store_n(&primary->mp[nbc->mp_slot], nbc, __ATOMIC_RELEASE);
	names = json_array();
	TAILQ_FOREACH(d, &primary->disks, link)
	{
		if (!d->removing)
			json_array_append_new(names, json_string(d->bdev.name));
	}
	MIMO_INFO(COMP, "%s: attached %s:%s as a further path (cntlid %u)", nbc->name,
		  nbc->trid.traddr, nbc->trid.trsvcid, nbc->ctrlr->cntlid);
	nbc->attach_cb(nbc->attach_arg, 0, names);
	json_decref(names);
}

int bdev_nvme_attach_multipath(const char *name, const struct mimo_nvme_trid *trid,
			       const struct mimo_nvme_ctrlr_opts *opts,
			       const struct bdev_nvme_reconnect_opts *reconnect,
			       const char *dhchap_key, const char *dhchap_ctrlr_key,
			       const char *psk, bdev_nvme_attach_cb cb, void *arg, const char **why)
{
	struct nvme_bdev_ctrlr *primary = find_nbc(name), *m;
	bool used[NVME_MAX_MP] = { true };
	uint32_t slot;

	*why = NULL;
	if (primary == NULL)
		return -ENODEV;
	if (primary->state == NBC_CONNECTING || primary->state == NBC_DELETING) {
		*why = "is being attached or detached";
		return -EBUSY;
	}
	TAILQ_FOREACH(m, &g_bdev_nvme_ctrlrs, link)
	{
		if (m != primary && m->mp_primary != primary)
			continue;
		for (uint32_t i = 0; i < m->num_paths; i++) {
			if (strcmp(m->paths[i].traddr, trid->traddr) == 0 &&
			    strcmp(m->paths[i].trsvcid, trid->trsvcid) == 0 &&
			    strcmp(m->paths[i].hostaddr, trid->hostaddr) == 0) {
				*why = "already exists with the specified network path";
				return -EALREADY;
			}
		}
		if (m != primary)
			used[m->mp_slot] = true; /* connected or still connecting */
	}
	if (strcmp(trid->subnqn, primary->trid.subnqn) != 0) {
		*why = "already exists, but uses a different subnqn";
		return -EINVAL;
	}
	for (slot = 1; slot < NVME_MAX_MP && used[slot]; slot++)
		;
	if (slot == NVME_MAX_MP) {
		*why = "has 4 controllers already: mimo's most for one name";
		return -ENOSPC;
	}
	return attach_nbc(name, trid, opts, reconnect, dhchap_key, dhchap_ctrlr_key, psk, cb, arg,
			  primary, slot);
}

struct mp_unlink_ctx {
	struct nvme_bdev_ctrlr *nbc;
	void (*cb)(void *arg, int rc);
	void *arg;
};

static int put_slot_channel(struct mimo_io_channel *ioch, void *arg)
{
	struct nvme_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct mp_unlink_ctx *u = arg;
	uint32_t i = u->nbc->mp_slot;

	if (ch->mp_ch[i] != NULL)
		mimo_put_io_channel(ch->mp_ch[i]);
	ch->mp_ch[i] = NULL;
	return 0;
}

static void slot_channels_put(void *arg, int status)
{
	struct mp_unlink_ctx *u = arg;
	struct nvme_bdev_ctrlr *nbc = u->nbc;
	int rc;

	(void)status;
	nbc->mp_unlinking = false;
	nbc->mp_primary = NULL; /* unlinked: detached as any controller now */
	rc = detach_nbc(nbc, u->cb, u->arg);
	if (rc != 0 && u->cb != NULL)
		u->cb(u->arg, rc);
	free(u);
}

/* A further controller of the name leaves: no new I/O chooses it, the primary's channels
 * let go of their channels of it (what it carries fails over), then it is detached. */
static int mp_unlink(struct nvme_bdev_ctrlr *nbc, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *primary = nbc->mp_primary;
	struct mp_unlink_ctx *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return -ENOMEM;
	u->nbc = nbc;
	u->cb = cb;
	u->arg = arg;
	__atomic_store_n(&nbc->mp_unlinking, true, __ATOMIC_RELEASE);
	if (primary->mp[nbc->mp_slot] == nbc)
		__atomic_store_n(&primary->mp[nbc->mp_slot], NULL, __ATOMIC_RELEASE);
	if (!primary->io_device ||
	    mimo_for_each_channel(primary, put_slot_channel, u, slot_channels_put) != 0)
		slot_channels_put(u, 0);
	return 0;
}

/* Detaching a primary: its further controllers go first, then it (again from here), its
 * caller answered then. */
static void secondary_gone(void *arg, int rc)
{
	struct nvme_bdev_ctrlr *primary = arg;

	(void)rc;
	if (--primary->mp_pending == 0) {
		rc = detach_nbc(primary, primary->mp_then_cb, primary->mp_then_arg);
		if (rc != 0 && primary->mp_then_cb != NULL)
			primary->mp_then_cb(primary->mp_then_arg, rc);
	}
}

static int detach_secondaries(struct nvme_bdev_ctrlr *primary, void (*cb)(void *arg, int rc),
			      void *arg)
{
	struct nvme_bdev_ctrlr *m, *tmp;

	primary->mp_then_cb = cb;
	primary->mp_then_arg = arg;
	/* Counted first, so a secondary gone at once does not detach the primary early. */
	primary->mp_pending = 1;
	for (m = TAILQ_FIRST(&g_bdev_nvme_ctrlrs); m != NULL; m = tmp) {
		tmp = TAILQ_NEXT(m, link);
		if (m->mp_primary != primary || m->mp_unlinking)
			continue;
		primary->mp_pending++;
		if (detach_nbc(m, secondary_gone, primary) != 0)
			primary->mp_pending--; /* busy: the primary's detach retries (fini) */
	}
	secondary_gone(primary, 0);
	return 0;
}

static struct nvme_disk *find_disk_by_name(const char *bdev_name)
{
	struct nvme_bdev_ctrlr *nbc;
	struct nvme_disk *d;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		if (nbc->mp_primary != NULL)
			continue;
		TAILQ_FOREACH(d, &nbc->disks, link)
		{
			if (!d->removing && strcmp(d->bdev.name, bdev_name) == 0)
				return d;
		}
	}
	return NULL;
}

int bdev_nvme_set_multipath_policy(const char *bdev_name, bool active_active, uint32_t min_io)
{
	struct nvme_disk *d = find_disk_by_name(bdev_name);

	if (d == NULL)
		return -ENODEV;
	if (active_active && min_io == 0)
		return -EINVAL;
	/* Plain stores: a reactor choosing a path meanwhile sees the old or the new. */
	d->min_io = min_io;
	d->policy = active_active ? MP_ACTIVE_ACTIVE : MP_ACTIVE_PASSIVE;
	return 0;
}

int bdev_nvme_set_preferred_path(const char *bdev_name, uint16_t cntlid)
{
	struct nvme_disk *d = find_disk_by_name(bdev_name);

	if (d == NULL)
		return -ENODEV;
	for (uint32_t i = 0; i < NVME_MAX_MP; i++) {
		const struct nvme_bdev_ctrlr *m = d->nbc->mp[i];

		if (m != NULL && m->ctrlr != NULL && m->ctrlr->cntlid == cntlid) {
			d->preferred = i;
			return 0;
		}
	}
	return -ENODEV;
}

int bdev_nvme_detach_secondary(const char *name,
			       bool (*match)(const struct mimo_nvme_trid *t, const void *arg),
			       const void *match_arg, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *primary = find_nbc(name), *m;

	if (primary == NULL)
		return -ENOENT;
	TAILQ_FOREACH(m, &g_bdev_nvme_ctrlrs, link)
	{
		if (m->mp_primary == primary && match(&m->trid, match_arg))
			return detach_nbc(m, cb, arg);
	}
	return -ENOENT;
}

static int detach_nbc(struct nvme_bdev_ctrlr *nbc, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_disk *d, *tmp;
	bool others = false;

	/* Channels being walked (a reconnect pausing or resuming them): a moment later. */
	if (nbc->state == NBC_DELETING || nbc->pausing || nbc->resuming || nbc->mp_unlinking ||
	    nbc->mp_pending != 0)
		return -EBUSY;
	if (nbc->mp_primary != NULL && nbc->state != NBC_CONNECTING)
		return mp_unlink(nbc, cb, arg);
	{
		struct nvme_bdev_ctrlr *m;

		TAILQ_FOREACH(m, &g_bdev_nvme_ctrlrs, link)
		{
			if (m->mp_primary == nbc)
				others = true;
		}
	}
	if (others) {
		/* All or nothing, as below: not while a bdev of it is claimed. */
		TAILQ_FOREACH(d, &nbc->disks, link)
		{
			if (!d->removing && mimo_bdev_is_claimed(&d->bdev))
				return -EBUSY;
		}
		return detach_secondaries(nbc, cb, arg);
	}
	if (nbc->state == NBC_CONNECTING) {
		mimo_poller_unregister(&nbc->poller);
		mimo_nvme_connect_abort(nbc->connect);
		TAILQ_REMOVE(&g_bdev_nvme_ctrlrs, nbc, link);
		nbc->attach_cb(nbc->attach_arg, -ECANCELED, NULL);
		nbc_free(nbc);
		if (cb != NULL)
			cb(arg, 0);
		return 0;
	}
	/* All or nothing: a namespace exported elsewhere keeps its controller. */
	TAILQ_FOREACH(d, &nbc->disks, link)
	{
		if (!d->removing && mimo_bdev_is_claimed(&d->bdev))
			return -EBUSY;
	}
	if (nbc->state == NBC_RECONNECTING) {
		/* Stop reconnecting; what waits for the connection fails. The admin poller
		 * (on the failed controller) retries refused deletions as for any. */
		if (nbc->connect != NULL) {
			mimo_nvme_connect_abort(nbc->connect);
			nbc->connect = NULL;
		}
		mimo_poller_unregister(&nbc->poller);
		nbc->poller = mimo_poller_register(admin_poll, nbc, g_opts.adminq_poll_period_us);
		op_done(nbc, -ENXIO);
	}
	path_set(nbc, PATH_FAIL);
	nbc->state = NBC_DELETING;
	nbc->detach_cb = cb;
	nbc->detach_arg = arg;
	if (TAILQ_EMPTY(&nbc->disks)) {
		continue_detach(nbc);
		return 0;
	}
	nbc->detach_deadline_ns = mimo_now_ns() + DETACH_BUSY_NS;
	nbc->retry_deletes = false;
	for (d = TAILQ_FIRST(&nbc->disks); d != NULL; d = tmp) {
		tmp = TAILQ_NEXT(d, link);
		if (d->removing)
			continue; /* already going; its destruct counts */
		/* The last destruct continues the detach; the bdev layer calls it later, never
		 * from inside mimo_bdev_delete. One claimed meanwhile is retried. */
		delete_disk(nbc, d);
	}
	return 0;
}

/* --- failover paths -------------------------------------------------------------------------- */

const struct mimo_nvme_trid *bdev_nvme_get_paths(const char *name, uint32_t *num)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);

	*num = nbc != NULL ? nbc->num_paths : 0;
	return nbc != NULL ? nbc->paths : NULL;
}

int bdev_nvme_remove_path(const char *name, uint32_t idx)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);
	bool was_active;

	if (nbc == NULL || idx >= nbc->num_paths)
		return -ENODEV;
	if (nbc->num_paths < 2)
		return -EINVAL; /* the last path: that is detaching the controller */
	was_active = idx == nbc->active;
	/* The connected path can go only when the controller can move to the next one now. */
	if (was_active && (nbc->state == NBC_CONNECTING || nbc->state == NBC_DELETING ||
			   nbc->pausing || nbc->resuming || nbc->connect != NULL))
		return -EBUSY;
	memmove(&nbc->paths[idx], &nbc->paths[idx + 1],
		(nbc->num_paths - idx - 1) * sizeof(*nbc->paths));
	__atomic_store_n(&nbc->num_paths, nbc->num_paths - 1, __ATOMIC_RELAXED);
	if (idx < nbc->active)
		nbc->active--;
	nbc->active %= nbc->num_paths;
	if (!was_active)
		return 0;
	/* The next path takes over (SPDK's failover with the path removed). */
	pthread_mutex_lock(&nbc->path_lock);
	nbc->trid = nbc->paths[nbc->active];
	pthread_mutex_unlock(&nbc->path_lock);
	MIMO_INFO(COMP, "%s: connected path removed: failing over to %s:%s", nbc->name,
		  nbc->trid.traddr, nbc->trid.trsvcid);
	if (nbc->state == NBC_ENABLED || nbc->state == NBC_FAILED)
		disconnect_all(nbc, NBC_RECONNECTING);
	return 0;
}

/* --- reset, disable, enable (SPDK's return values: -ENXIO deleting, -EBUSY resetting,
 * -EALREADY nothing to do) ------------------------------------------------------------------- */

static int op_check(struct nvme_bdev_ctrlr *nbc, void (*cb)(void *arg, int rc))
{
	if (nbc == NULL || nbc->state == NBC_CONNECTING)
		return -ENODEV;
	if (nbc->state == NBC_DELETING)
		return -ENXIO;
	if (cb == NULL)
		return -EINVAL;
	/* A connection attempt, or a walk over the channels, under way. */
	if (nbc->pausing || nbc->resuming || nbc->op_cb != NULL || nbc->connect != NULL)
		return -EBUSY;
	return 0;
}

int bdev_nvme_reset(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);
	int rc = op_check(nbc, cb);

	if (rc != 0)
		return rc;
	if (nbc->state == NBC_DISABLED)
		return -EALREADY;
	nbc->op_cb = cb;
	nbc->op_arg = arg;
	if (nbc->state == NBC_RECONNECTING) {
		nbc->next_attempt_ns = mimo_now_ns(); /* waiting reconnect_delay_sec: now */
		return 0;
	}
	MIMO_INFO(COMP, "%s: resetting", nbc->name);
	disconnect_all(nbc, NBC_RECONNECTING);
	return 0;
}

int bdev_nvme_disable(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);
	int rc = op_check(nbc, cb);

	if (rc != 0)
		return rc;
	if (nbc->state == NBC_DISABLED)
		return -EALREADY;
	MIMO_INFO(COMP, "%s: disabling", nbc->name);
	if (nbc->state == NBC_RECONNECTING) {
		/* Between attempts: the channels are paused already. */
		settle(nbc, NBC_DISABLED);
		cb(arg, 0);
		return 0;
	}
	nbc->op_cb = cb;
	nbc->op_arg = arg;
	disconnect_all(nbc, NBC_DISABLED);
	return 0;
}

int bdev_nvme_enable(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);
	int rc = op_check(nbc, cb);

	if (rc != 0)
		return rc;
	if (nbc->state != NBC_DISABLED)
		return -EALREADY;
	MIMO_INFO(COMP, "%s: enabling", nbc->name);
	nbc->op_cb = cb;
	nbc->op_arg = arg;
	nbc->reset_start_ns = mimo_now_ns();
	start_attempts(nbc);
	return 0;
}

int bdev_nvme_set_keys(const char *name, const char *dhchap_key, const char *dhchap_ctrlr_key,
		       void (*cb)(void *arg, int rc), void *arg)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);
	struct mimo_nvme_dhchap_key key = { 0 }, ctrlr_key = { 0 };
	char *key_name = NULL, *ctrlr_key_name = NULL;
	int rc = op_check(nbc, cb);

	if (rc != 0)
		return rc;
	if (dhchap_ctrlr_key != NULL && dhchap_key == NULL)
		return -EINVAL;
	rc = keyring_secret(dhchap_key, &key, &key_name);
	if (rc == 0)
		rc = keyring_secret(dhchap_ctrlr_key, &ctrlr_key, &ctrlr_key_name);
	if (rc != 0) {
		free(key_name);
		explicit_bzero(&key, sizeof(key));
		return rc;
	}
	/* The keys of every connection from now on (and of save_config). */
	free(nbc->dhchap_key);
	free(nbc->dhchap_ctrlr_key);
	nbc->dhchap_key = key_name;
	nbc->dhchap_ctrlr_key = ctrlr_key_name;
	nbc->opts.dhchap_key = key;
	nbc->opts.dhchap_ctrlr_key = ctrlr_key;
	explicit_bzero(&key, sizeof(key));
	explicit_bzero(&ctrlr_key, sizeof(ctrlr_key));
	/*
	 * SPDK re-authenticates the live queues (DH-HMAC-CHAP again over each). mimo's
	 * initiator authenticates a queue when it connects it, so it reconnects, as a reset:
	 * I/O waits, and the answer follows the new connection. Without a key (keys removed)
	 * or while disabled there is nothing to prove now.
	 */
	if (dhchap_key == NULL || nbc->state == NBC_DISABLED) {
		cb(arg, 0);
		return 0;
	}
	rc = bdev_nvme_reset(name, cb, arg);
	if (rc == -EALREADY) {
		cb(arg, 0);
		rc = 0;
	}
	return rc;
}

const char *bdev_nvme_reconnect_opts_check(const struct bdev_nvme_reconnect_opts *o)
{
	int32_t loss = o->ctrlr_loss_timeout_sec;
	uint32_t delay = o->reconnect_delay_sec, fail = o->fast_io_fail_timeout_sec;

	/* SPDK's rules (bdev_nvme_check_io_error_resiliency_params), its words. */
	if (loss < -1)
		return "ctrlr_loss_timeout_sec can't be less than -1";
	if (loss == 0)
		return delay != 0 || fail != 0 ? "Both reconnect_delay_sec and "
						 "fast_io_fail_timeout_sec must be 0 if "
						 "ctrlr_loss_timeout_sec is 0"
					       : NULL;
	if (delay == 0)
		return "reconnect_delay_sec can't be 0 if ctrlr_loss_timeout_sec is not 0";
	if (loss > 0 && delay > (uint32_t)loss)
		return "reconnect_delay_sec can't be more than ctrlr_loss_timeout_sec";
	if (fail != 0 && fail < delay)
		return "reconnect_delay_sec can't be more than fast_io_fail_timeout_sec";
	if (loss > 0 && fail > (uint32_t)loss)
		return "fast_io_fail_timeout_sec can't be more than ctrlr_loss_timeout_sec";
	return NULL;
}

void bdev_nvme_get_opts(struct bdev_nvme_opts *opts)
{
	*opts = g_opts;
}

int bdev_nvme_set_opts(const struct bdev_nvme_opts *opts)
{
	if (!TAILQ_EMPTY(&g_bdev_nvme_ctrlrs))
		return -EPERM;
	if (opts->bdev_retry_count < -1 || opts->dhchap_digests == 0 ||
	    (opts->dhchap_digests & ~DHCHAP_ALL_DIGESTS) != 0 || opts->dhchap_dhgroups == 0 ||
	    (opts->dhchap_dhgroups & ~DHCHAP_ALL_DHGROUPS) != 0 ||
	    bdev_nvme_reconnect_opts_check(&opts->reconnect) != NULL)
		return -EINVAL;
	g_opts = *opts;
	return 0;
}

void bdev_nvme_ctrlr_opts_init(struct mimo_nvme_ctrlr_opts *opts)
{
	mimo_nvme_ctrlr_opts_init(opts);
	opts->keep_alive_timeout_ms = g_opts.keep_alive_timeout_ms;
	opts->dhchap_digests = g_opts.dhchap_digests;
	opts->dhchap_dhgroups = g_opts.dhchap_dhgroups;
}

static json_t *names_json(uint32_t mask, const char *(*name_of)(uint8_t))
{
	json_t *a = json_array();

	for (uint8_t i = 0; i < 32; i++) {
		if ((mask & (1u << i)) && name_of(i) != NULL)
			json_array_append_new(a, json_string(name_of(i)));
	}
	return a;
}

json_t *bdev_nvme_opts_config_json(void)
{
	const struct bdev_nvme_opts *o = &g_opts;

	if (o->keep_alive_timeout_ms == 10000 && o->bdev_retry_count == 0 &&
	    o->adminq_poll_period_us == ADMIN_POLL_US && o->ioq_poll_period_us == 0 &&
	    o->enable_flush && o->dhchap_digests == DHCHAP_ALL_DIGESTS &&
	    o->dhchap_dhgroups == DHCHAP_ALL_DHGROUPS && o->reconnect.ctrlr_loss_timeout_sec == 0 &&
	    o->reconnect.reconnect_delay_sec == 0 && o->reconnect.fast_io_fail_timeout_sec == 0 &&
	    !o->io_path_stat)
		return NULL;
	return json_pack(
		"{s:s, s:{s:I, s:i, s:I, s:I, s:b, s:o, s:o, s:i, s:I, s:I, s:b}}", "method",
		"bdev_nvme_set_options", "params", "keep_alive_timeout_ms",
		(json_int_t)o->keep_alive_timeout_ms, "bdev_retry_count", (int)o->bdev_retry_count,
		"nvme_adminq_poll_period_us", (json_int_t)o->adminq_poll_period_us,
		"nvme_ioq_poll_period_us", (json_int_t)o->ioq_poll_period_us, "enable_flush",
		o->enable_flush, "dhchap_digests", names_json(o->dhchap_digests, dhchap_hash_name),
		"dhchap_dhgroups", names_json(o->dhchap_dhgroups, dhchap_dhgroup_name),
		"ctrlr_loss_timeout_sec", (int)o->reconnect.ctrlr_loss_timeout_sec,
		"reconnect_delay_sec", (json_int_t)o->reconnect.reconnect_delay_sec,
		"fast_io_fail_timeout_sec", (json_int_t)o->reconnect.fast_io_fail_timeout_sec,
		"io_path_stat", o->io_path_stat);
}

MIMO_EXPORT json_t *mimo_bdev_nvme_config_json(void)
{
	json_t *arr = json_array(), *o = bdev_nvme_opts_config_json();

	if (o != NULL)
		json_array_append_new(arr, o);
	bdev_nvme_discovery_config_json(arr);
	return arr;
}

/* One controller of bdev_nvme_get_controllers' ctrlrs. */
static json_t *ctrlr_json(const struct nvme_bdev_ctrlr *nbc)
{
	const char *state = g_state_names[nbc->state];
	json_t *c;

	if (nbc->state == NBC_ENABLED && !mimo_nvme_ctrlr_is_connected(nbc->ctrlr))
		state = "failed";
	/* SPDK's words: connecting again, or waiting reconnect_delay_sec to. */
	if (nbc->state == NBC_RECONNECTING && nbc->connect == NULL)
		state = "reconnect_is_delayed";
	c = json_pack("{s:s, s:o}", "state", state, "trid", trid_json(&nbc->trid));
	/* The other paths (-x failover), in the order they are tried. */
	if (nbc->num_paths > 1) {
		json_t *alt = json_array();

		for (uint32_t i = 1; i < nbc->num_paths; i++)
			json_array_append_new(
				alt, trid_json(&nbc->paths[(nbc->active + i) % nbc->num_paths]));
		json_object_set_new(c, "alternate_trids", alt);
	}
	json_object_set_new(c, "cntlid", json_integer(nbc->ctrlr->cntlid));
	json_object_set_new(c, "host",
			    json_pack("{s:s, s:s, s:s, s:b}", "nqn", nbc->ctrlr->hostnqn, "addr",
				      "", "svcid", "", "no_shn_notification", false));
	return c;
}

json_t *bdev_nvme_controllers_json(const char *name)
{
	json_t *arr = json_array();
	struct nvme_bdev_ctrlr *nbc;
	bool found = false;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		json_t *ctrlrs;

		if (nbc->state == NBC_CONNECTING || nbc->mp_primary != NULL ||
		    (name != NULL && strcmp(name, nbc->name) != 0))
			continue;
		found = true;
		ctrlrs = json_array();
		json_array_append_new(ctrlrs, ctrlr_json(nbc));
		/* Multipath: the name's further controllers, each a ctrlrs entry (SPDK's). */
		for (uint32_t i = 1; i < NVME_MAX_MP; i++) {
			const struct nvme_bdev_ctrlr *m = nbc->mp[i];

			if (m != NULL)
				json_array_append_new(ctrlrs, ctrlr_json(m));
		}
		json_array_append_new(arr,
				      json_pack("{s:s, s:o}", "name", nbc->name, "ctrlrs", ctrlrs));
	}
	if (name != NULL && !found) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

void bdev_nvme_mark_discovered(const char *name)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);

	if (nbc != NULL)
		nbc->from_discovery = true;
}

int bdev_nvme_get_cntlid(const char *name)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);

	return nbc != NULL && nbc->ctrlr != NULL ? nbc->ctrlr->cntlid : -ENODEV;
}

const struct mimo_nvme_trid *bdev_nvme_get_trid(const char *name)
{
	struct nvme_bdev_ctrlr *nbc = find_nbc(name);

	return nbc != NULL ? &nbc->trid : NULL;
}

/* --- shutdown ------------------------------------------------------------------------------- */

struct fini_ctx {
	void (*cb)(void *arg);
	void *arg;
	struct mimo_poller *poller;
	int64_t deadline_ns;
};

static int fini_poll(void *arg)
{
	struct fini_ctx *f = arg;
	struct nvme_bdev_ctrlr *nbc, *tmp;

	bdev_nvme_discovery_fini(); /* those busy the last time */
	for (nbc = TAILQ_FIRST(&g_bdev_nvme_ctrlrs); nbc != NULL; nbc = tmp) {
		tmp = TAILQ_NEXT(nbc, link);
		/* A name's further controllers go with its first (multipath). */
		if (nbc->state != NBC_DELETING && nbc->mp_primary == NULL)
			(void)detach_nbc(nbc, NULL, NULL); /* -EBUSY: next time */
	}
	if ((!TAILQ_EMPTY(&g_bdev_nvme_ctrlrs) || !bdev_nvme_discovery_idle()) &&
	    mimo_now_ns() < f->deadline_ns)
		return 0;
	if (!TAILQ_EMPTY(&g_bdev_nvme_ctrlrs))
		MIMO_WARN(COMP, "shutdown: some NVMe controllers could not be detached");
	mimo_poller_unregister(&f->poller);
	f->cb(f->arg);
	free(f);
	return 1;
}

MIMO_EXPORT void mimo_bdev_nvme_fini(void (*cb)(void *arg), void *arg)
{
	struct fini_ctx *f;

	bdev_nvme_discovery_fini();
	if (TAILQ_EMPTY(&g_bdev_nvme_ctrlrs) && bdev_nvme_discovery_idle()) {
		cb(arg);
		return;
	}
	f = calloc(1, sizeof(*f));
	if (f != NULL) {
		f->cb = cb;
		f->arg = arg;
		f->deadline_ns = mimo_now_ns() + FINI_TIMEOUT_NS;
		f->poller = mimo_poller_register(fini_poll, f, 1000);
	}
	if (f == NULL || f->poller == NULL) {
		free(f);
		cb(arg);
	}
}
