/*
 * The target's counters for the metrics endpoint (mimo_nvmf_get_stats): what nvmf_get_stats
 * counts per reactor (queue pairs, I/O commands; its cells are written by their reactor alone
 * and read with relaxed loads), summed over every target and reactor, plus the controllers,
 * which come and go rarely and are one atomic.
 */
#include <stdatomic.h>

#include "nvmf_internal.h"

static _Atomic int64_t g_ctrlrs;

void nvmf_stats_ctrlr(int delta)
{
	atomic_fetch_add_explicit(&g_ctrlrs, delta, memory_order_relaxed);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void add_reactor(void *arg, const struct nvmf_reactor_stat *r)
{
	struct mimo_nvmf_stats *st = arg;

	st->admin_qpairs += LOAD(r->current_admin_qpairs);
	st->io_qpairs += LOAD(r->current_io_qpairs);
	st->unassociated_qpairs += LOAD(r->current_unassociated_qpairs);
	st->io_commands += LOAD(r->completed_nvme_io);
	st->io_command_errors += LOAD(r->failed_nvme_io);
	st->bdev_retries += LOAD(r->pending_bdev_io);
}

MIMO_EXPORT void mimo_nvmf_get_stats(struct mimo_nvmf_stats *st)
{
	int64_t c = atomic_load_explicit(&g_ctrlrs, memory_order_relaxed);

	*st = (struct mimo_nvmf_stats){ .controllers = c > 0 ? (uint64_t)c : 0 };
	nvmf_tgts_foreach_stat(add_reactor, st);
}
