/* mimo_perf's shared state: options, controllers, namespaces, workers and their statistics. */
#ifndef MIMO_PERF_H
#define MIMO_PERF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "histogram.h"
#include "mimo/nvme.h"

#define MAX_TRIDS   64
#define MAX_WORKERS 64

struct perf_opts {
	uint32_t queue_depth;
	uint32_t io_size;
	const char *workload;
	bool is_random;
	int rw_mix_read; /* percent of reads: 100 read, 0 write */
	uint32_t time_s;
	uint64_t core_mask;
	uint32_t qpairs_per_ns;
	bool hdgst, ddgst;
	bool disable_sqfc;
	int latency_level; /* -L: 1 summary, 2 histogram */
	bool json;
	bool verify;
	uint64_t seed;
	uint32_t keep_alive_ms; /* -k: the controllers' KATO (0: none) */
};

extern struct perf_opts g_opts;
/* SIGINT or SIGTERM: set by the handler, read by the workers (an atomic: volatile is no
 * ordering between threads, and TSan says so). */
extern _Atomic bool g_stop;

struct perf_ctrlr {
	struct mimo_nvme_trid trid;
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_connect_ctx *connect; /* while connecting */
	bool lost;			       /* reported once */
};

/* A namespace under test. */
struct perf_ns {
	char name[512]; /* "TCP (addr:... subnqn:...) NSID n", spdk_nvme_perf's */
	struct perf_ctrlr *pc;
	struct mimo_nvme_ns *ns;
	uint32_t block_size;
	uint32_t io_blocks;
	uint64_t size_in_ios;
	uint32_t total_slots; /* --verify: slots over every worker on this namespace */
	/* --verify: the entry whose slots this one shares - itself, or an earlier entry that is
	 * the same namespace reached twice (two -r for one subsystem): they must not overlap. */
	struct perf_ns *space;
	TAILQ_ENTRY(perf_ns) link;
};

struct stats {
	uint64_t io_completed;
	uint64_t total_ticks;
	uint64_t min_ticks, max_ticks;
	uint64_t io_errors;
	uint64_t verify_errors;
};

struct ns_worker;

struct task {
	struct ns_worker *nw;
	struct mimo_nvme_qpair *qp;
	uint8_t *buf;
	uint64_t submit_ticks;
	uint64_t lba;
	uint32_t slot; /* --verify: owns the I/O units with unit % total_slots == slot */
	uint32_t gen;
	bool is_read;
	bool verify_read; /* --verify: the read-back half */
	bool busy;
	STAILQ_ENTRY(task) link;
};

/* A namespace on one worker (spdk_nvme_perf's ns_worker_ctx). */
struct ns_worker {
	struct perf_ns *entry;
	struct worker *worker;
	struct mimo_nvme_qpair **qpairs;
	uint32_t num_qpairs;
	struct task *tasks;
	uint32_t num_tasks;
	uint32_t slot_base;
	uint64_t seq_next; /* next unit for sequential workloads */
	uint64_t rng;
	uint32_t outstanding;
	bool draining;
	STAILQ_HEAD(, task) pending; /* submissions refused for a full queue */
	struct stats stats;
	struct histogram hist;
	int qpair_error;
	TAILQ_ENTRY(ns_worker) link;
};

struct worker {
	uint32_t core;
	pthread_t thread;
	bool joined;
	TAILQ_HEAD(, ns_worker) ns_workers;
	uint64_t elapsed_ticks;
	int rc;
	TAILQ_ENTRY(worker) link;
};

TAILQ_HEAD(worker_list, worker);
TAILQ_HEAD(ns_list, perf_ns);
extern struct worker_list g_workers;

/* worker.c */
void *worker_main(void *arg);
/* Every worker has its queues connected (or failed): the clock starts. Workers call
 * worker_ready then workers_ready_wait; the main thread tends the admin queues until
 * workers_all_ready, then waits. */
void workers_ready_wait(void);
void workers_init(uint32_t count);
bool workers_all_ready(void);

/* report.c */
void report_text(void);
void report_json(void);
/* Sum of everything, for the exit code. */
void report_totals(struct stats *out);

#endif
