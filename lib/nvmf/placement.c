/*
 * Which reactor a new NVMe/TCP connection is served on.
 *
 * A connection is placed when it is accepted, before its ICReq and Connect say whether it
 * will be an admin or an I/O queue. Round robin over connections (what SPDK's nvmf_tgt does
 * by default) therefore lines every host's queues up with the reactors: a host that opens
 * its admin queue and then one I/O queue opens two connections, so on two reactors every
 * host's admin queue lands on one and every I/O queue on the other; with four reactors and
 * hosts of three I/O queues, one reactor gets every admin queue and no I/O.
 *
 * So a connection goes to the reactor with the least load, where an I/O queue pair counts two,
 * an admin queue pair one (it carries keep-alives and the admin commands, little else), and a
 * connection that has not connected yet, or was placed there and has not arrived, counts two
 * (it may become an I/O queue); among equals, the one with fewer I/O queue pairs, then round
 * robin. Hosts connecting one after another, an admin queue and then one I/O queue each, end
 * up with half of their I/O queues, and about half of their admin queues, on each of two
 * reactors; hosts that open every admin queue first (spdk_nvme_perf with several -r) too.
 */
#include "nvmf_internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

struct mimo_reactor *nvmf_tgt_place_qpair(struct mimo_nvmf_tgt *tgt)
{
	uint32_t n = mimo_reactor_count(), start, best = UINT32_MAX;
	uint64_t best_load = UINT64_MAX, best_io = UINT64_MAX;

	if (n > NVMF_MAX_REACTORS)
		n = NVMF_MAX_REACTORS;
	if (n == 0)
		return tgt->reactor;
	start = atomic_fetch_add_explicit(&tgt->next_reactor, 1, memory_order_relaxed) % n;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (start + k) % n;
		const struct nvmf_reactor_stat *st = &tgt->stat[i];
		uint64_t io, load;

		if (!(tgt->opts.reactor_mask & (1ull << i)))
			continue;
		/* Read while the reactors change them: a placement may be off by the queue pair
		 * that connected meanwhile, never by more. */
		io = LOAD(st->current_io_qpairs);
		load = 2 * (io + LOAD(st->current_unassociated_qpairs) + LOAD(tgt->placing[i])) +
		       LOAD(st->current_admin_qpairs);
		if (load < best_load || (load == best_load && io < best_io)) {
			best = i;
			best_load = load;
			best_io = io;
		}
	}
	if (best == UINT32_MAX)
		return tgt->reactor;
	atomic_fetch_add_explicit(&tgt->placing[best], 1, memory_order_relaxed);
	return mimo_reactor_get(best);
}

void nvmf_tgt_qpair_arrived(struct mimo_nvmf_tgt *tgt)
{
	uint32_t idx = mimo_reactor_index(mimo_reactor_current());

	if (idx < NVMF_MAX_REACTORS)
		atomic_fetch_sub_explicit(&tgt->placing[idx], 1, memory_order_relaxed);
}
