/*
 * mimo_perf's workers: one thread pinned per core, each polling the queue pairs of the
 * namespaces it was given, keeping queue_depth I/Os outstanding per namespace until the time
 * is up, then draining. Latency is measured in ticks (the TSC) at submission and completion.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pattern.h"
#include "perf.h"
#include "ticks.h"

static pthread_barrier_t g_ready;
static uint32_t g_num_workers, g_num_ready;

void workers_init(uint32_t count)
{
	g_num_workers = count;
	pthread_barrier_init(&g_ready, NULL, count + 1);
}

void workers_ready_wait(void)
{
	pthread_barrier_wait(&g_ready);
}

/* Workers announce themselves before the barrier, so the main thread can keep the admin
 * queues alive (keep-alive, events) while they connect instead of blocking in it. */
static void worker_ready(void)
{
	__atomic_add_fetch(&g_num_ready, 1, __ATOMIC_RELEASE);
}

bool workers_all_ready(void)
{
	return __atomic_load_n(&g_num_ready, __ATOMIC_ACQUIRE) == g_num_workers;
}

static inline uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: cheap and plenty for picking offsets. */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void submit_task(struct task *t);

static void task_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct task *t = arg;
	struct ns_worker *nw = t->nw;
	uint64_t now = mimo_get_ticks(), lat = now - t->submit_ticks;
	struct stats *st = &nw->stats;

	nw->outstanding--;
	t->busy = false;
	st->io_completed++;
	st->total_ticks += lat;
	if (lat < st->min_ticks)
		st->min_ticks = lat;
	if (lat > st->max_ticks)
		st->max_ticks = lat;
	histogram_add(&nw->hist, lat);
	if (mimo_nvme_cpl_is_error(cpl)) {
		if (st->io_errors++ < 5)
			fprintf(stderr,
				"mimo_perf: %s: %s at LBA %" PRIu64 " failed: sct %u sc 0x%02x\n",
				nw->entry->name, t->is_read ? "read" : "write", t->lba,
				mimo_nvme_status_sct(cpl->status),
				mimo_nvme_status_sc(cpl->status));
		t->verify_read = false;
	} else if (g_opts.verify) {
		if (t->verify_read) {
			int64_t bad =
				pattern_check(t->buf, nw->entry->io_blocks, nw->entry->block_size,
					      t->lba, g_opts.seed, t->gen);

			if (bad >= 0 && st->verify_errors++ < 5)
				fprintf(stderr,
					"mimo_perf: %s: data mismatch at LBA %" PRIu64
					" (generation %u)\n",
					nw->entry->name, t->lba + (uint64_t)bad, t->gen);
			t->verify_read = false;
		} else {
			t->verify_read = true; /* read back what was just written */
		}
	}
	if (!nw->draining && !g_stop)
		submit_task(t);
}

static void pick_lba(struct ns_worker *nw, struct task *t)
{
	struct perf_ns *e = nw->entry;
	uint64_t unit;

	if (g_opts.verify) {
		/* Each slot keeps to its own units: two writes in flight never overlap. */
		uint32_t total = e->space->total_slots;
		uint64_t per_slot = e->size_in_ios / total;

		if (per_slot == 0)
			per_slot = 1;
		if (g_opts.is_random)
			unit = rng_next(&nw->rng) % per_slot;
		else
			unit = (t->lba / e->io_blocks / total + 1) % per_slot;
		unit = unit * total + t->slot;
		if (unit >= e->size_in_ios)
			unit = t->slot % e->size_in_ios;
	} else if (g_opts.is_random) {
		unit = rng_next(&nw->rng) % e->size_in_ios;
	} else {
		unit = nw->seq_next++;
		if (nw->seq_next >= e->size_in_ios)
			nw->seq_next = 0;
	}
	t->lba = unit * e->io_blocks;
}

static void submit_task(struct task *t)
{
	struct ns_worker *nw = t->nw;
	struct perf_ns *e = nw->entry;
	int rc;

	if (!t->verify_read) {
		pick_lba(nw, t);
		if (g_opts.verify) {
			t->is_read = false;
			t->gen++;
			pattern_fill(t->buf, e->io_blocks, e->block_size, t->lba, g_opts.seed,
				     t->gen);
		} else {
			t->is_read = g_opts.rw_mix_read == 100 ||
				     (g_opts.rw_mix_read != 0 &&
				      (int)(rng_next(&nw->rng) % 100) < g_opts.rw_mix_read);
		}
	} else {
		t->is_read = true;
	}
	t->submit_ticks = mimo_get_ticks();
	if (t->is_read)
		rc = mimo_nvme_ns_cmd_read(e->ns, t->qp, t->buf, t->lba, e->io_blocks, task_done, t,
					   0);
	else
		rc = mimo_nvme_ns_cmd_write(e->ns, t->qp, t->buf, t->lba, e->io_blocks, task_done,
					    t, 0);
	if (rc == -ENOMEM) {
		/* The queue pair is full (depth above its size): again after completions. */
		STAILQ_INSERT_TAIL(&nw->pending, t, link);
		t->busy = true;
		nw->outstanding++;
		return;
	}
	if (rc != 0) {
		if (nw->stats.io_errors++ < 5)
			fprintf(stderr, "mimo_perf: %s: submission failed: %s\n", e->name,
				strerror(-rc));
		return;
	}
	t->busy = true;
	nw->outstanding++;
}

static void resubmit_pending(struct ns_worker *nw)
{
	STAILQ_HEAD(, task) list;
	struct task *t;

	STAILQ_INIT(&list);
	STAILQ_CONCAT(&list, &nw->pending);
	while ((t = STAILQ_FIRST(&list)) != NULL) {
		STAILQ_REMOVE_HEAD(&list, link);
		nw->outstanding--;
		t->busy = false;
		if (nw->draining || g_stop)
			continue;
		submit_task(t);
	}
}

static int setup(struct ns_worker *nw)
{
	struct perf_ns *e = nw->entry;
	struct mimo_nvme_io_qpair_opts qo = { .opts_size = sizeof(qo) };
	uint32_t per_qp = (nw->num_tasks + nw->num_qpairs - 1) / nw->num_qpairs;
	int rc;

	/* One more entry than commands in flight: a queue never fills its last slot. */
	qo.io_queue_size = per_qp + 1 < 128 ? 128 : per_qp + 1;
	nw->qpairs = calloc(nw->num_qpairs, sizeof(*nw->qpairs));
	nw->tasks = calloc(nw->num_tasks, sizeof(*nw->tasks));
	if (nw->qpairs == NULL || nw->tasks == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < nw->num_qpairs; i++) {
		rc = mimo_nvme_ctrlr_alloc_io_qpair(e->pc->ctrlr, &qo, &nw->qpairs[i]);
		if (rc != 0) {
			fprintf(stderr, "mimo_perf: %s: cannot allocate an I/O queue pair: %s\n",
				e->name, strerror(-rc));
			return rc;
		}
	}

	for (uint32_t i = 0; i < nw->num_tasks; i++) {
		struct task *t = &nw->tasks[i];

		t->nw = nw;
		t->qp = nw->qpairs[i % nw->num_qpairs];
		t->slot = nw->slot_base + i;
		t->lba = (uint64_t)t->slot * e->io_blocks; /* sequential --verify starts here */
		if (posix_memalign((void **)&t->buf, 4096, g_opts.io_size) != 0)
			return -ENOMEM;
		/* Writes of a non-verify run send whatever is there: make it defined. */
		memset(t->buf, (int)(i & 0xff), g_opts.io_size);
	}
	return 0;
}

static void teardown(struct ns_worker *nw)
{
	for (uint32_t i = 0; i < nw->num_tasks && nw->tasks != NULL; i++)
		free(nw->tasks[i].buf);
	for (uint32_t i = 0; i < nw->num_qpairs && nw->qpairs != NULL; i++)
		if (nw->qpairs[i] != NULL)
			mimo_nvme_ctrlr_free_io_qpair(nw->qpairs[i]);
	free(nw->tasks);
	free(nw->qpairs);
	nw->tasks = NULL;
	nw->qpairs = NULL;
}

/* Every queue pair of the worker connects at once (each in the background); each step is
 * bounded by the library's connect timeout, so this ends. */
static int connect_all_qpairs(struct worker *w)
{
	struct ns_worker *nw;

	for (;;) {
		bool waiting = false;

		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			for (uint32_t i = 0; i < nw->num_qpairs; i++) {
				struct mimo_nvme_qpair *qp = nw->qpairs[i];
				int rc;

				if (mimo_nvme_qpair_is_connected(qp))
					continue;
				rc = mimo_nvme_qpair_process_completions(qp, 0);
				if (mimo_nvme_qpair_is_connected(qp))
					continue;
				if (rc == -ENXIO) {
					/* Failed: wait_connected says why, without waiting. */
					rc = mimo_nvme_qpair_wait_connected(qp, 0);
					fprintf(stderr,
						"mimo_perf: %s: I/O queue pair did not connect: "
						"%s\n",
						nw->entry->name, strerror(-rc));
					return rc;
				}
				waiting = true;
			}
		}
		if (!waiting)
			return 0;
		if (g_stop)
			return -EINTR;
		{
			struct timespec ts = { 0, 100 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
}

/* Every namespace of the worker lost its queues and has nothing in flight: nothing more can
 * happen before the time is up. */
static bool all_failed(struct worker *w)
{
	struct ns_worker *nw;

	TAILQ_FOREACH(nw, &w->ns_workers, link)
	{
		if (nw->qpair_error == 0 || nw->outstanding != 0)
			return false;
	}
	return true;
}

/* One pass over every queue pair of the worker. */
static void poll_all(struct worker *w)
{
	struct ns_worker *nw;

	TAILQ_FOREACH(nw, &w->ns_workers, link)
	{
		for (uint32_t i = 0; i < nw->num_qpairs; i++) {
			int rc = mimo_nvme_qpair_process_completions(nw->qpairs[i], 0);

			if (rc < 0 && nw->qpair_error == 0) {
				nw->qpair_error = rc;
				fprintf(stderr, "mimo_perf: %s: I/O queue pair failed: %s\n",
					nw->entry->name, strerror(-rc));
			}
		}
		if (!STAILQ_EMPTY(&nw->pending))
			resubmit_pending(nw);
	}
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t hz = mimo_get_ticks_hz(), start, end, drain_end;
	struct ns_worker *nw;
	cpu_set_t set;
	int rc = 0;

	CPU_ZERO(&set);
	CPU_SET(w->core, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	TAILQ_FOREACH(nw, &w->ns_workers, link)
	{
		int r = setup(nw);

		if (r != 0 && rc == 0)
			rc = r;
	}
	if (rc == 0)
		rc = connect_all_qpairs(w);
	w->rc = rc;
	worker_ready();
	workers_ready_wait();
	if (rc != 0 || g_stop) {
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		teardown(nw);
		return NULL;
	}
	start = mimo_get_ticks();
	end = start + g_opts.time_s * hz;
	TAILQ_FOREACH(nw, &w->ns_workers, link)
	{
		for (uint32_t i = 0; i < nw->num_tasks; i++)
			submit_task(&nw->tasks[i]);
	}
	for (uint32_t n = 0;; n++) {
		poll_all(w);
		/* The clock is read every few passes: a pass is well under a microsecond. */
		if ((n & 63) == 0 && (mimo_get_ticks() >= end || g_stop || all_failed(w)))
			break;
	}
	w->elapsed_ticks = mimo_get_ticks() - start;
	/* Drain: no new submissions; wait (bounded) for what is in flight. */
	drain_end = mimo_get_ticks() + 10 * hz;
	TAILQ_FOREACH(nw, &w->ns_workers, link)
	nw->draining = true;
	for (;;) {
		bool busy = false;

		poll_all(w);
		TAILQ_FOREACH(nw, &w->ns_workers, link)
		{
			if (nw->outstanding != 0 && nw->qpair_error == 0)
				busy = true;
		}
		if (!busy)
			break;
		if (mimo_get_ticks() > drain_end) {
			fprintf(stderr,
				"mimo_perf: I/O still outstanding after 10 s of draining\n");
			TAILQ_FOREACH(nw, &w->ns_workers, link)
			nw->stats.io_errors += nw->outstanding;
			break;
		}
	}
	TAILQ_FOREACH(nw, &w->ns_workers, link)
	teardown(nw);
	return NULL;
}
