/* mimo_perf's reports: spdk_nvme_perf's table (with p50/p99/p99.9 added), its -L summaries and
 * -LL histograms, or one JSON object. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "perf.h"
#include "ticks.h"

static const double g_cutoffs[] = { 0.01, 0.10, 0.25,  0.50,  0.75,   0.90, 0.95,
				    0.98, 0.99, 0.995, 0.999, 0.9999, -1 };

struct figures {
	double iops, mibps, avg_us, min_us, max_us, p50_us, p99_us, p999_us;
};

static double to_us(uint64_t ticks)
{
	return (double)ticks * 1e6 / (double)mimo_get_ticks_hz();
}

static void compute(const struct stats *st, const struct histogram *h, double seconds,
		    struct figures *f)
{
	memset(f, 0, sizeof(*f));
	if (st->io_completed == 0 || seconds <= 0)
		return;
	f->iops = (double)st->io_completed / seconds;
	f->mibps = f->iops * g_opts.io_size / (1024.0 * 1024.0);
	f->avg_us = to_us(st->total_ticks) / (double)st->io_completed;
	f->min_us = to_us(st->min_ticks);
	f->max_us = to_us(st->max_ticks);
	f->p50_us = to_us(histogram_percentile(h, 0.50));
	f->p99_us = to_us(histogram_percentile(h, 0.99));
	f->p999_us = to_us(histogram_percentile(h, 0.999));
}

static double seconds_of(const struct worker *w)
{
	double s = (double)w->elapsed_ticks / (double)mimo_get_ticks_hz();

	return s > 0 ? s : g_opts.time_s;
}

static void add_stats(struct stats *into, const struct stats *from)
{
	into->io_completed += from->io_completed;
	into->total_ticks += from->total_ticks;
	into->io_errors += from->io_errors;
	into->verify_errors += from->verify_errors;
	if (from->io_completed != 0) {
		if (from->min_ticks < into->min_ticks)
			into->min_ticks = from->min_ticks;
		if (from->max_ticks > into->max_ticks)
			into->max_ticks = from->max_ticks;
	}
}

void report_totals(struct stats *out)
{
	struct worker *w;
	struct ns_worker *nw;

	memset(out, 0, sizeof(*out));
	out->min_ticks = UINT64_MAX;
	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		add_stats(out, &nw->stats);
	}
}

/* Totals over every namespace and worker: rates add up, latencies merge. */
static void total_figures(struct figures *f, struct histogram *h)
{
	struct worker *w;
	struct ns_worker *nw;
	struct stats st;
	double iops = 0;

	histogram_init(h);
	report_totals(&st);
	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			iops += (double)nw->stats.io_completed / seconds_of(w);
			histogram_merge(h, &nw->hist);
		}
	}
	compute(&st, h, 1.0, f);
	f->iops = iops;
	f->mibps = iops * g_opts.io_size / (1024.0 * 1024.0);
}

void report_text(void)
{
	static struct histogram total_hist;
	size_t width = strlen("Total");
	struct figures f;
	struct worker *w;
	struct ns_worker *nw;

	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			if (strlen(nw->entry->name) > width)
				width = strlen(nw->entry->name);
		}
	}
	printf("========================================================\n");
	printf("%*s\n", (int)width + 60, "Latency(us)");
	printf("%-*s: %10s %10s %10s %10s %10s %10s %10s %10s\n", (int)width + 13,
	       "Device Information", "IOPS", "MiB/s", "Average", "min", "max", "p50", "p99",
	       "p99.9");
	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			compute(&nw->stats, &nw->hist, seconds_of(w), &f);
			printf("%-*.*s from core %2u: %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f "
			       "%10.2f "
			       "%10.2f\n",
			       (int)width, (int)width, nw->entry->name, w->core, f.iops, f.mibps,
			       f.avg_us, f.min_us, f.max_us, f.p50_us, f.p99_us, f.p999_us);
		}
	}
	total_figures(&f, &total_hist);
	printf("========================================================\n");
	printf("%-*s: %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", (int)width + 13,
	       "Total", f.iops, f.mibps, f.avg_us, f.min_us, f.max_us, f.p50_us, f.p99_us,
	       f.p999_us);
	printf("\n");
	if (g_opts.latency_level == 0)
		return;
	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			printf("Summary latency data for %-43.43s from core %u:\n", nw->entry->name,
			       w->core);
			printf("================================================================="
			       "================\n");
			for (const double *c = g_cutoffs; *c > 0 && nw->hist.total != 0; c++)
				printf("%9.5f%% : %9.3fus\n", *c * 100,
				       to_us(histogram_percentile(&nw->hist, *c)));
			printf("\n");
		}
	}
	if (g_opts.latency_level < 2)
		return;
	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			uint64_t so_far = 0;

			printf("Latency histogram for %-43.43s from core %u:\n", nw->entry->name,
			       w->core);
			printf("================================================================="
			       "=============\n");
			printf("       Range in us     Cumulative    IO count\n");
			for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
				uint64_t lo, hi;

				if (nw->hist.counts[i] == 0)
					continue;
				so_far += nw->hist.counts[i];
				histogram_bounds(i, &lo, &hi);
				printf("%9.3f - %9.3f: %9.4f%%  (%9" PRIu64 ")\n", to_us(lo),
				       to_us(hi), (double)so_far * 100 / (double)nw->hist.total,
				       nw->hist.counts[i]);
			}
			printf("\n");
		}
	}
}

static json_t *figures_json(const struct figures *f, const struct stats *st)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I}", "io_completed",
			 (json_int_t)st->io_completed, "iops", f->iops, "mibps", f->mibps,
			 "avg_lat_us", f->avg_us, "min_lat_us", f->min_us, "max_lat_us", f->max_us,
			 "p50_lat_us", f->p50_us, "p99_lat_us", f->p99_us, "p999_lat_us",
			 f->p999_us, "io_errors", (json_int_t)st->io_errors, "verify_errors",
			 (json_int_t)st->verify_errors);
}

void report_json(void)
{
	static struct histogram total_hist;
	json_t *nss = json_array(), *out, *j;
	struct figures f;
	struct stats st;
	struct worker *w;
	struct ns_worker *nw;

	TAILQ_FOREACH(w, &g_workers, link)
	{
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			compute(&nw->stats, &nw->hist, seconds_of(w), &f);
			j = figures_json(&f, &nw->stats);
			json_object_set_new(j, "name", json_string(nw->entry->name));
			json_object_set_new(j, "core", json_integer(w->core));
			json_object_set_new(j, "nsid",
					    json_integer(mimo_nvme_ns_get_id(nw->entry->ns)));
			json_object_set_new(j, "subnqn", json_string(nw->entry->pc->trid.subnqn));
			json_array_append_new(nss, j);
		}
	}
	total_figures(&f, &total_hist);
	report_totals(&st);
	out = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:b, s:o, s:o}", "workload",
			g_opts.workload, "io_size", (int)g_opts.io_size, "queue_depth",
			(int)g_opts.queue_depth, "time_s", (int)g_opts.time_s, "rwmixread",
			g_opts.rw_mix_read, "qpairs_per_ns", (int)g_opts.qpairs_per_ns,
			"header_digest", g_opts.hdgst, "data_digest", g_opts.ddgst, "verify",
			g_opts.verify, "namespaces", nss, "total", figures_json(&f, &st));
	json_dumpf(out, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(out);
}
