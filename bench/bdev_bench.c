/*
 * bdev_bench: the block layer and the reactor in process.
 *
 *   bdev_bench randread SECONDS
 *       A 64 MiB malloc bdev (512-byte blocks, every page written first), 4 KiB random reads
 *       at queue depth 64 on one reactor; beside it, a plain loop of 4 KiB memcpy from random
 *       offsets of a 64 MiB buffer on this thread. Prints IOPS for both and their ratio.
 *   bdev_bench reactor SECONDS
 *       Two reactors: message round trips (ping-pong) and one-way messages per second.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bdev_malloc.h"
#include "mimo/bdev.h"
#include "mimo/reactor.h"

#define QD	   64
#define IO_SIZE	   4096
#define BDEV_BYTES (64u << 20)

static sem_t g_done;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* --- randread --------------------------------------------------------------------------- */

struct rr {
	struct mimo_bdev_desc *desc;
	struct mimo_io_channel *ch;
	uint8_t *bufs;
	uint64_t rng, ios;
	double deadline;
	int inflight;
	bool stopping;
};

static struct rr g_rr;

static void submit_one(int slot);

static void read_done(struct mimo_bdev_io *io, bool ok, void *arg)
{
	int slot = (int)(intptr_t)arg;

	if (!ok)
		abort();
	mimo_bdev_free_io(io);
	g_rr.ios++;
	g_rr.inflight--;
	/* The clock is read every 4096 completions: it is not what we measure. */
	if ((g_rr.ios & 4095) == 0 && now_s() >= g_rr.deadline)
		g_rr.stopping = true;
	if (!g_rr.stopping)
		submit_one(slot);
	else if (g_rr.inflight == 0)
		sem_post(&g_done);
}

static void submit_one(int slot)
{
	uint64_t blocks = BDEV_BYTES / 512 / 8; /* 4 KiB units */
	uint64_t off = (xorshift(&g_rr.rng) % blocks) * 8;

	g_rr.inflight++;
	if (mimo_bdev_read_blocks(g_rr.desc, g_rr.ch, g_rr.bufs + (size_t)slot * IO_SIZE, off, 8,
				  read_done, (void *)(intptr_t)slot) != 0)
		abort();
}

static void write_done(struct mimo_bdev_io *io, bool ok, void *arg)
{
	(void)arg;
	if (!ok)
		abort();
	mimo_bdev_free_io(io);
	sem_post(&g_done);
}

static void setup_bdev(void *arg)
{
	struct mimo_bdev *b;
	uint8_t *fillbuf = arg;

	if (bdev_malloc_create("Bench0", BDEV_BYTES / 512, 512, NULL, &b) != 0 ||
	    mimo_bdev_open("Bench0", true, NULL, NULL, &g_rr.desc) != 0)
		abort();
	g_rr.ch = mimo_bdev_get_io_channel(g_rr.desc);
	/* Write every page, so reads measure memory, not the zero page. */
	if (mimo_bdev_write_blocks(g_rr.desc, g_rr.ch, fillbuf, 0, BDEV_BYTES / 512, write_done,
				   NULL) != 0)
		abort();
}

static void deleted(void *arg, int rc)
{
	(void)arg;
	(void)rc;
	sem_post(&g_done);
}

static void teardown_bdev(void *arg)
{
	(void)arg;
	mimo_put_io_channel(g_rr.ch);
	mimo_bdev_close(g_rr.desc);
	mimo_bdev_delete("Bench0", deleted, NULL);
}

static void start_reads(void *arg)
{
	double seconds = *(double *)arg;

	g_rr.deadline = now_s() + seconds;
	for (int i = 0; i < QD; i++)
		submit_one(i);
}

static int randread(double seconds)
{
	uint8_t *fill = malloc(BDEV_BYTES), *dst = malloc(IO_SIZE);
	double t0, t1, mem_ios = 0, bdev_iops;
	uint64_t rng = 88172645463325252ULL;
	struct mimo_reactor_opts o;

	memset(fill, 0x5a, BDEV_BYTES);
	sem_init(&g_done, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x1;
	if (mimo_reactors_start(&o) != 0)
		return 1;
	g_rr.bufs = aligned_alloc(4096, (size_t)QD * IO_SIZE);
	g_rr.rng = 0x9E3779B97F4A7C15ULL;
	mimo_reactor_send_msg(mimo_reactor_get(0), setup_bdev, fill);
	sem_wait(&g_done);
	t0 = now_s();
	mimo_reactor_send_msg(mimo_reactor_get(0), start_reads, &seconds);
	sem_wait(&g_done);
	t1 = now_s();
	bdev_iops = (double)g_rr.ios / (t1 - t0);

	/* The peer: the same copies with nothing around them, on a thread of its own (the
	 * reactor is idle now and sleeps). */
	t0 = now_s();
	while (now_s() - t0 < seconds) {
		for (int i = 0; i < 4096; i++) {
			uint64_t off = (xorshift(&rng) % (BDEV_BYTES / IO_SIZE)) * IO_SIZE;

			memcpy(dst, fill + off, IO_SIZE);
			__asm__ __volatile__("" : : "r"(dst) : "memory");
		}
		mem_ios += 4096;
	}
	t1 = now_s();
	printf("{\"bdev_randread_4k_qd64_iops\":%.0f,\"memcpy_4k_per_s\":%.0f,\"ratio\":%.3f}\n",
	       bdev_iops, mem_ios / (t1 - t0), bdev_iops / (mem_ios / (t1 - t0)));
	fflush(stdout);
	mimo_reactor_send_msg(mimo_reactor_get(0), teardown_bdev, NULL);
	sem_wait(&g_done);
	mimo_reactors_stop();
	return 0;
}

/* --- reactor ------------------------------------------------------------------------------ */

static _Atomic uint64_t g_pings, g_oneway;
static double g_deadline;
static volatile bool g_stop;

static void pong(void *arg);

static void ping(void *arg)
{
	(void)arg;
	g_pings++;
	if ((g_pings & 1023) == 0 && now_s() >= g_deadline) {
		sem_post(&g_done);
		return;
	}
	mimo_reactor_send_msg(mimo_reactor_get(1), pong, NULL);
}

static void pong(void *arg)
{
	(void)arg;
	mimo_reactor_send_msg(mimo_reactor_get(0), ping, NULL);
}

static void count(void *arg)
{
	(void)arg;
	atomic_store_explicit(&g_oneway, atomic_load_explicit(&g_oneway, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void flood(void *arg)
{
	(void)arg;
	while (!g_stop) {
		for (int i = 0; i < 256; i++) {
			if (mimo_reactor_send_msg(mimo_reactor_get(0), count, NULL) != 0)
				break;
		}
	}
	sem_post(&g_done);
}

static int reactor(double seconds)
{
	struct mimo_reactor_opts o;
	double t0, t1;
	uint64_t n;

	sem_init(&g_done, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	if (mimo_reactors_start(&o) != 0 || mimo_reactor_count() < 2) {
		fprintf(stderr, "needs two CPUs\n");
		return 1;
	}
	g_deadline = now_s() + seconds;
	t0 = now_s();
	mimo_reactor_send_msg(mimo_reactor_get(0), ping, NULL);
	sem_wait(&g_done);
	t1 = now_s();
	printf("{\"round_trips_per_s\":%.0f,\"round_trip_ns\":%.0f,", (double)g_pings / (t1 - t0),
	       (t1 - t0) / (double)g_pings * 1e9);
	t0 = now_s();
	mimo_reactor_send_msg(mimo_reactor_get(1), flood, NULL);
	usleep((useconds_t)(seconds * 1e6));
	g_stop = true;
	sem_wait(&g_done);
	t1 = now_s();
	n = atomic_load(&g_oneway);
	printf("\"one_way_msgs_per_s\":%.0f}\n", (double)n / (t1 - t0));
	mimo_reactors_stop();
	return 0;
}

int main(int argc, char **argv)
{
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	if (argc == 3 && strcmp(argv[1], "randread") == 0)
		return randread(atof(argv[2]));
	if (argc == 3 && strcmp(argv[1], "reactor") == 0)
		return reactor(atof(argv[2]));
	fprintf(stderr, "usage: bdev_bench randread|reactor SECONDS\n");
	return 2;
}
