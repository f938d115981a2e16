/*
 * mimo_tgt's Prometheus families (--metrics ADDR:PORT; docs/metrics.md). Collected on the
 * metrics server's thread from counters every part already keeps for bdev_get_iostat,
 * framework_get_reactors and its own use, each readable from any thread: nothing here runs on
 * a reactor or takes a lock a reactor holds for longer than a copy.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "app.h"
#include "mimo/bdev.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"
#include "mimo/vhost.h"
#include "server.h"
#include "ticks.h"

static struct mimo_metrics_server *g_metrics;

/* One family of the bdev layer: which counter, and seconds (ticks) or a plain count. */
struct bdev_family {
	const char *name;
	enum mimo_expo_type type;
	const char *help;
	size_t offset; /* in struct mimo_bdev_io_stat */
	bool ticks;
};

#define STAT_OFF(f) offsetof(struct mimo_bdev_io_stat, f)

static const struct bdev_family g_bdev_families[] = {
	{ "mimo_bdev_read_ops_total", MIMO_EXPO_COUNTER, "Reads completed successfully.",
	  STAT_OFF(num_read_ops), false },
	{ "mimo_bdev_read_bytes_total", MIMO_EXPO_COUNTER, "Bytes read successfully.",
	  STAT_OFF(bytes_read), false },
	{ "mimo_bdev_read_seconds_total", MIMO_EXPO_COUNTER,
	  "Time the successful reads took, summed, in seconds (divide by the ops for the mean).",
	  STAT_OFF(read_latency_ticks), true },
	{ "mimo_bdev_write_ops_total", MIMO_EXPO_COUNTER,
	  "Writes and write-zeroes completed successfully.", STAT_OFF(num_write_ops), false },
	{ "mimo_bdev_write_bytes_total", MIMO_EXPO_COUNTER, "Bytes written successfully.",
	  STAT_OFF(bytes_written), false },
	{ "mimo_bdev_write_seconds_total", MIMO_EXPO_COUNTER,
	  "Time the successful writes took, summed, in seconds.", STAT_OFF(write_latency_ticks),
	  true },
	{ "mimo_bdev_unmap_ops_total", MIMO_EXPO_COUNTER, "Unmaps completed successfully.",
	  STAT_OFF(num_unmap_ops), false },
	{ "mimo_bdev_unmap_bytes_total", MIMO_EXPO_COUNTER, "Bytes unmapped successfully.",
	  STAT_OFF(bytes_unmapped), false },
	{ "mimo_bdev_unmap_seconds_total", MIMO_EXPO_COUNTER,
	  "Time the successful unmaps took, summed, in seconds.", STAT_OFF(unmap_latency_ticks),
	  true },
	{ "mimo_bdev_flush_ops_total", MIMO_EXPO_COUNTER, "Flushes completed successfully.",
	  STAT_OFF(num_flush_ops), false },
	{ "mimo_bdev_flush_seconds_total", MIMO_EXPO_COUNTER,
	  "Time the successful flushes took, summed, in seconds.", STAT_OFF(flush_latency_ticks),
	  true },
	{ "mimo_bdev_errors_total", MIMO_EXPO_COUNTER,
	  "I/Os of any type that completed with an error.", STAT_OFF(num_failed_ops), false },
};

struct bdev_pass {
	struct mimo_expo *e;
	const struct bdev_family *f;
	double hz;
};

static void bdev_sample(void *arg, const char *name, const struct mimo_bdev_io_stat *st)
{
	struct bdev_pass *p = arg;
	uint64_t v = *(const uint64_t *)((const char *)st + p->f->offset);
	const char *const labels[] = { "bdev", name, NULL };

	if (p->f->ticks)
		mimo_expo_f64(p->e, p->f->name, labels, (double)v / p->hz);
	else
		mimo_expo_u64(p->e, p->f->name, labels, v);
}

struct hist_pass {
	struct mimo_expo *e;
	bool write;
	double hz;
};

static void hist_sample(void *arg, const char *name, const struct mimo_bdev_io_stat *st)
{
	struct hist_pass *p = arg;

	mimo_expo_histogram(
		p->e,
		p->write ? "mimo_bdev_write_latency_seconds" : "mimo_bdev_read_latency_seconds",
		"bdev", name, mimo_bdev_lat_bounds, MIMO_BDEV_LAT_BOUNDS,
		p->write ? st->write_lat_hist : st->read_lat_hist,
		(double)(p->write ? st->write_latency_ticks : st->read_latency_ticks) / p->hz);
}

/* One pass over the bdevs per family: the format wants a family's samples together. */
static void bdev_metrics(struct mimo_expo *e)
{
	struct bdev_pass p = { .e = e, .hz = (double)mimo_get_ticks_hz() };
	struct hist_pass h = { .e = e, .hz = p.hz };

	for (size_t i = 0; i < MIMO_COUNTOF(g_bdev_families); i++) {
		p.f = &g_bdev_families[i];
		mimo_expo_family(e, p.f->name, p.f->type, p.f->help);
		mimo_bdev_foreach_io_stat(bdev_sample, &p);
	}
	mimo_expo_family(e, "mimo_bdev_read_latency_seconds", MIMO_EXPO_HISTOGRAM,
			 "Latency of the successful reads, in seconds.");
	mimo_bdev_foreach_io_stat(hist_sample, &h);
	h.write = true;
	mimo_expo_family(e, "mimo_bdev_write_latency_seconds", MIMO_EXPO_HISTOGRAM,
			 "Latency of the successful writes and write-zeroes, in seconds.");
	mimo_bdev_foreach_io_stat(hist_sample, &h);
}

static void reactor_metrics(struct mimo_expo *e)
{
	static const struct {
		const char *name, *help;
	} fams[] = {
		{ "mimo_reactor_busy_seconds_total",
		  "Time the reactor spent in turns that did work." },
		{ "mimo_reactor_idle_seconds_total", "Time the reactor spent in turns that found "
						     "nothing to do (spinning or asleep)." },
		{ "mimo_reactor_messages_total", "Messages the reactor ran." },
		{ "mimo_reactor_sleeps_total", "Times the reactor went to sleep in epoll." },
	};
	double hz = (double)mimo_get_ticks_hz();
	uint32_t n = mimo_reactor_count();

	for (size_t f = 0; f < MIMO_COUNTOF(fams); f++) {
		mimo_expo_family(e, fams[f].name, MIMO_EXPO_COUNTER, fams[f].help);
		for (uint32_t i = 0; i < n; i++) {
			struct mimo_reactor *r = mimo_reactor_get(i);
			struct mimo_reactor_stats st;
			char idx[12], core[12];

			if (r == NULL)
				continue;
			mimo_reactor_get_stats(r, &st);
			snprintf(idx, sizeof(idx), "%u", i);
			snprintf(core, sizeof(core), "%u", mimo_reactor_core(r));
			const char *const labels[] = { "reactor", idx, "core", core, NULL };

			if (f == 0)
				mimo_expo_f64(e, fams[f].name, labels, (double)st.busy_ticks / hz);
			else if (f == 1)
				mimo_expo_f64(e, fams[f].name, labels, (double)st.idle_ticks / hz);
			else
				mimo_expo_u64(e, fams[f].name, labels,
					      f == 2 ? st.msgs : st.sleeps);
		}
	}
}

static void nvmf_metrics(struct mimo_expo *e)
{
	struct mimo_nvmf_stats st;

	mimo_nvmf_get_stats(&st);
	mimo_expo_one_u64(e, "mimo_nvmf_controllers", MIMO_EXPO_GAUGE,
			  "NVMe-oF controllers that exist now (hosts connected).", st.controllers);
	mimo_expo_family(e, "mimo_nvmf_qpairs", MIMO_EXPO_GAUGE,
			 "NVMe-oF queue pairs now: connected admin and I/O queues, and those not "
			 "connected yet (nvmf_get_stats' current_*_qpairs).");
	mimo_expo_u64(e, "mimo_nvmf_qpairs", (const char *const[]){ "type", "admin", NULL },
		      st.admin_qpairs);
	mimo_expo_u64(e, "mimo_nvmf_qpairs", (const char *const[]){ "type", "io", NULL },
		      st.io_qpairs);
	mimo_expo_u64(e, "mimo_nvmf_qpairs", (const char *const[]){ "type", "unassociated", NULL },
		      st.unassociated_qpairs);
	mimo_expo_one_u64(
		e, "mimo_nvmf_io_commands_total", MIMO_EXPO_COUNTER,
		"NVMe commands answered on I/O queues (nvmf_get_stats' completed_nvme_io).",
		st.io_commands);
	mimo_expo_one_u64(e, "mimo_nvmf_io_command_errors_total", MIMO_EXPO_COUNTER,
			  "NVMe commands answered on I/O queues with an error status.",
			  st.io_command_errors);
	mimo_expo_one_u64(e, "mimo_nvmf_bdev_retries_total", MIMO_EXPO_COUNTER,
			  "Commands the bdev had no resources for, retried (nvmf_get_stats' "
			  "pending_bdev_io).",
			  st.bdev_retries);
}

static void vhost_metrics(struct mimo_expo *e)
{
	struct mimo_vhost_stats st;

	mimo_vhost_get_stats(&st);
	mimo_expo_family(e, "mimo_vhost_controllers", MIMO_EXPO_GAUGE,
			 "vhost-user controllers that exist now, by device type.");
	mimo_expo_u64(e, "mimo_vhost_controllers", (const char *const[]){ "type", "blk", NULL },
		      st.blk_controllers);
	mimo_expo_u64(e, "mimo_vhost_controllers", (const char *const[]){ "type", "scsi", NULL },
		      st.scsi_controllers);
	mimo_expo_one_u64(e, "mimo_vhost_sessions", MIMO_EXPO_GAUGE,
			  "vhost-user front-ends (QEMU) connected now.", st.sessions);
}

struct rpc_pass {
	struct mimo_expo *e;
	bool errors;
};

static void rpc_sample(void *arg, const char *method, uint64_t calls, uint64_t errors)
{
	struct rpc_pass *p = arg;

	mimo_expo_u64(p->e, p->errors ? "mimo_rpc_errors_total" : "mimo_rpc_calls_total",
		      (const char *const[]){ "method", method, NULL }, p->errors ? errors : calls);
}

static void rpc_metrics(struct mimo_expo *e)
{
	struct rpc_pass p = { .e = e };

	mimo_expo_family(e, "mimo_rpc_calls_total", MIMO_EXPO_COUNTER,
			 "JSON-RPC requests per method (methods called at least once).");
	mimo_rpc_foreach_method_stat(rpc_sample, &p);
	p.errors = true;
	mimo_expo_family(e, "mimo_rpc_errors_total", MIMO_EXPO_COUNTER,
			 "JSON-RPC requests per method answered with an error.");
	mimo_rpc_foreach_method_stat(rpc_sample, &p);
	mimo_expo_one_u64(e, "mimo_rpc_unknown_method_total", MIMO_EXPO_COUNTER,
			  "JSON-RPC requests for a method that does not exist.",
			  mimo_rpc_unknown_method_calls());
}

static void collect(void *arg, struct mimo_expo *e)
{
	(void)arg;
	mimo_expo_build_info(e, "mimo_tgt");
	mimo_expo_process(e);
	bdev_metrics(e);
	nvmf_metrics(e);
	vhost_metrics(e);
	reactor_metrics(e);
	rpc_metrics(e);
}

int app_metrics_start(const char *addr)
{
	return mimo_metrics_start(addr, collect, NULL, &g_metrics);
}

void app_metrics_stop(void)
{
	mimo_metrics_stop(g_metrics);
	g_metrics = NULL;
}
