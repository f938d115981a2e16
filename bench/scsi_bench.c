/*
 * scsi_bench: the SCSI layer in process, on one reactor.
 *
 *   scsi_bench [SECONDS]
 *       A 64 MiB malloc bdev (512-byte blocks, every page written first) as LUN 0 of a SCSI
 *       device; 4 KiB random READ(16), then WRITE(16), tasks at queue depth 64 for SECONDS
 *       each (default 5), and beside them the same reads straight to the bdev. Prints one
 *       JSON object: tasks per second and the ratio to the bare bdev.
 *   scsi_bench --count N --op read16|write16|bdev
 *       Exactly N such operations after the set-up, for callgrind: run it with two values of
 *       N and divide the difference in instructions by the difference in N (bench/scsi.py).
 *
 * A task is initialised and submitted from its predecessor's completion callback, as a
 * front-end recycles its request slots.
 */
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev_malloc.h"
#include "mimo/bdev.h"
#include "mimo/reactor.h"
#include "mimo/scsi.h"

#define QD	   64
#define IO_SIZE	   4096
#define BDEV_BYTES (64u << 20)

enum op {
	OP_READ16,
	OP_WRITE16,
	OP_BDEV
};

struct slot {
	struct mimo_scsi_task task;
	struct iovec iov;
};

static struct {
	struct mimo_scsi_dev *dev;
	struct mimo_bdev_desc *desc;
	struct mimo_io_channel *ch;
	struct slot slots[QD];
	uint8_t *bufs;
	uint64_t rng, done, limit; /* limit: stop after this many (count mode), else by time */
	double deadline;
	enum op op;
	int inflight;
	bool stopping;
} g;

static sem_t g_sem;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_lba(void)
{
	uint64_t x = g.rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	g.rng = x;
	return (x % (BDEV_BYTES / IO_SIZE)) * (IO_SIZE / 512);
}

static void submit(int i);

/* One more finished: go on, or stop when the time or the count is up. */
static void finished(int i)
{
	g.done++;
	g.inflight--;
	if (g.limit != 0 ? g.done + (uint64_t)g.inflight >= g.limit
			 : ((g.done & 4095) == 0 && now_s() >= g.deadline))
		g.stopping = true;
	if (!g.stopping)
		submit(i);
	else if (g.inflight == 0)
		sem_post(&g_sem);
}

static void task_done(struct mimo_scsi_task *task)
{
	if (task->status != MIMO_SCSI_STATUS_GOOD)
		abort();
	finished((int)(intptr_t)task->cb_arg);
}

static void bdev_done(struct mimo_bdev_io *io, bool ok, void *arg)
{
	if (!ok)
		abort();
	mimo_bdev_free_io(io);
	finished((int)(intptr_t)arg);
}

static void submit(int i)
{
	struct slot *s = &g.slots[i];
	struct mimo_scsi_task *t = &s->task;
	uint64_t lba = next_lba();
	uint8_t *c = t->cdb;

	g.inflight++;
	if (g.op == OP_BDEV) {
		if (mimo_bdev_read_blocks(g.desc, g.ch, g.bufs + (size_t)i * IO_SIZE, lba,
					  IO_SIZE / 512, bdev_done, (void *)(intptr_t)i) != 0)
			abort();
		return;
	}
	/* What a front-end fills per request: the CDB, direction, buffer, length. */
	memset(c, 0, 16);
	c[0] = g.op == OP_READ16 ? MIMO_SCSI_OP_READ16 : MIMO_SCSI_OP_WRITE16;
	for (int b = 0; b < 8; b++)
		c[2 + b] = (uint8_t)(lba >> (56 - 8 * b));
	c[13] = IO_SIZE / 512;
	t->dir = g.op == OP_READ16 ? MIMO_SCSI_DIR_FROM_DEV : MIMO_SCSI_DIR_TO_DEV;
	mimo_scsi_dev_submit(g.dev, t);
}

static void start(void *arg)
{
	(void)arg;
	g.done = 0;
	g.stopping = false;
	for (int i = 0; i < QD; i++) {
		struct slot *s = &g.slots[i];

		mimo_scsi_task_init(&s->task);
		s->iov = (struct iovec){ g.bufs + (size_t)i * IO_SIZE, IO_SIZE };
		s->task.iovs = &s->iov;
		s->task.iovcnt = 1;
		s->task.transfer_len = IO_SIZE;
		s->task.cb = task_done;
		s->task.cb_arg = (void *)(intptr_t)i;
	}
	for (int i = 0; i < QD && (g.limit == 0 || (uint64_t)i < g.limit); i++)
		submit(i);
}

static void filled(struct mimo_bdev_io *io, bool ok, void *arg)
{
	(void)arg;
	if (!ok)
		abort();
	mimo_bdev_free_io(io);
	sem_post(&g_sem);
}

static void setup(void *arg)
{
	static const char *const bdevs[] = { "Bench0" };
	struct mimo_bdev *b;

	if (bdev_malloc_create("Bench0", BDEV_BYTES / 512, 512, NULL, &b) != 0 ||
	    mimo_bdev_open("Bench0", true, NULL, NULL, &g.desc) != 0 ||
	    mimo_scsi_dev_create("bench", bdevs, NULL, 1, NULL, NULL, &g.dev) != 0)
		abort();
	g.ch = mimo_bdev_get_io_channel(g.desc);
	/* Every page written, so reads measure memory, not the zero page. */
	if (mimo_bdev_write_blocks(g.desc, g.ch, arg, 0, BDEV_BYTES / 512, filled, NULL) != 0)
		abort();
}

static void ua_done(struct mimo_scsi_task *task)
{
	(void)task;
	sem_post(&g_sem);
}

/* The device's first task learns of its power on (a unit attention): a TEST UNIT READY
 * takes it before anything is measured. */
static void tur(void *arg)
{
	struct mimo_scsi_task *t = arg;

	mimo_scsi_task_init(t);
	t->cb = ua_done;
	mimo_scsi_dev_submit(g.dev, t);
}

static void deleted(void *arg, int rc)
{
	(void)arg;
	(void)rc;
	sem_post(&g_sem);
}

static void dev_gone(void *arg)
{
	(void)arg;
	mimo_put_io_channel(g.ch);
	mimo_bdev_close(g.desc);
	mimo_bdev_delete("Bench0", deleted, NULL);
}

static void teardown(void *arg)
{
	(void)arg;
	mimo_scsi_dev_destroy(g.dev, dev_gone, NULL);
}

static double run(enum op op, double seconds, uint64_t count)
{
	double t0;

	g.op = op;
	g.limit = count;
	g.deadline = now_s() + seconds;
	t0 = now_s();
	mimo_reactor_send_msg(mimo_reactor_get(0), start, NULL);
	sem_wait(&g_sem);
	return (double)g.done / (now_s() - t0);
}

int main(int argc, char **argv)
{
	double seconds = 5, read_tps, write_tps, bdev_iops;
	struct mimo_reactor_opts o;
	struct mimo_scsi_task first;
	uint64_t count = 0;
	enum op op = OP_READ16;
	uint8_t *fill;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			count = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--op") == 0 && i + 1 < argc) {
			i++;
			op = strcmp(argv[i], "write16") == 0 ? OP_WRITE16
			     : strcmp(argv[i], "bdev") == 0  ? OP_BDEV
							     : OP_READ16;
		} else {
			seconds = atof(argv[i]);
		}
	}
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x1;
	/* Counting instructions: a reactor that spins while the set-up thread works would
	 * add its idle loop to the count. (Measuring time: spin as usual.) */
	if (count != 0)
		o.idle_spin_us = 0;
	if (mimo_reactors_start(&o) != 0)
		return 1;
	fill = malloc(BDEV_BYTES);
	memset(fill, 0x5a, BDEV_BYTES);
	g.bufs = aligned_alloc(4096, (size_t)QD * IO_SIZE);
	memset(g.bufs, 0xa5, (size_t)QD * IO_SIZE);
	g.rng = 0x9E3779B97F4A7C15ULL;
	mimo_reactor_send_msg(mimo_reactor_get(0), setup, fill);
	sem_wait(&g_sem);
	mimo_reactor_send_msg(mimo_reactor_get(0), tur, &first);
	sem_wait(&g_sem);

	if (count != 0) {
		run(op, 0, count);
		printf("{\"op\":\"%s\",\"count\":%llu}\n",
		       op == OP_READ16	  ? "read16"
		       : op == OP_WRITE16 ? "write16"
					  : "bdev",
		       (unsigned long long)g.done);
	} else {
		read_tps = run(OP_READ16, seconds, 0);
		write_tps = run(OP_WRITE16, seconds, 0);
		bdev_iops = run(OP_BDEV, seconds, 0);
		printf("{\"read16_4k_qd64_tasks_per_s\":%.0f,\"write16_4k_qd64_tasks_per_s\":%.0f,"
		       "\"bdev_read_4k_qd64_iops\":%.0f,\"read16_over_bdev\":%.3f}\n",
		       read_tps, write_tps, bdev_iops, read_tps / bdev_iops);
	}
	fflush(stdout);
	mimo_reactor_send_msg(mimo_reactor_get(0), teardown, NULL);
	sem_wait(&g_sem);
	mimo_reactors_stop();
	free(fill);
	free(g.bufs);
	return 0;
}
