/*
 * The target's counters (mimo_nvmf_get_stats). Commands are counted where they complete, on
 * their queue pair's reactor, in a cell of that reactor's own: a plain load and store, no
 * locked instruction and no cache line shared between reactors on the I/O path. Controllers
 * and queue pairs come and go rarely: one atomic each.
 */
#include <stdatomic.h>

#include "nvmf_internal.h"

#define STATS_REACTORS 64 /* a core mask has 64 bits */

struct cmd_cell {
	_Atomic uint64_t commands, errors;
} __attribute__((aligned(64)));

static struct cmd_cell g_cells[STATS_REACTORS];
static _Atomic int64_t g_ctrlrs, g_qpairs;

static void cell_add(_Atomic uint64_t *v)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void nvmf_stats_command(uint32_t ri, bool error)
{
	struct cmd_cell *c = &g_cells[ri % STATS_REACTORS];

	cell_add(&c->commands);
	if (mimo_unlikely(error))
		cell_add(&c->errors);
}

void nvmf_stats_ctrlr(int delta)
{
	atomic_fetch_add_explicit(&g_ctrlrs, delta, memory_order_relaxed);
}

void nvmf_stats_qpair(int delta)
{
	atomic_fetch_add_explicit(&g_qpairs, delta, memory_order_relaxed);
}

MIMO_EXPORT void mimo_nvmf_get_stats(struct mimo_nvmf_stats *st)
{
	int64_t c = atomic_load_explicit(&g_ctrlrs, memory_order_relaxed);
	int64_t q = atomic_load_explicit(&g_qpairs, memory_order_relaxed);

	st->controllers = c > 0 ? (uint64_t)c : 0;
	st->qpairs = q > 0 ? (uint64_t)q : 0;
	st->commands = st->command_errors = 0;
	for (int i = 0; i < STATS_REACTORS; i++) {
		st->commands += atomic_load_explicit(&g_cells[i].commands, memory_order_relaxed);
		st->command_errors +=
			atomic_load_explicit(&g_cells[i].errors, memory_order_relaxed);
	}
}
