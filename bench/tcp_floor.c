/*
 * tcp_floor: what the kernel alone charges an NVMe/TCP target per I/O over loopback.
 *
 * A stand-in target and a stand-in initiator exchange the bytes an NVMe/TCP read or write
 * exchanges and do nothing else: the initiator sends 72-byte command capsules (with the data in
 * the capsule for writes of any size: no R2T, which only lowers the floor) and keeps a queue depth
 * full, polling without sleeping as spdk_nvme_perf does; the target answers each read with a
 * 24-byte C2H data header and the data (the SUCCESS flag form: no response capsule) taken from
 * random blocks of a 64 MiB buffer, and each write with a 24-byte response capsule. The target
 * sleeps in epoll_wait only when nothing is left to read, receives everything that is waiting in
 * one call and sends each turn's answers in one sendmsg - the batching mimo_tgt does. So its CPU
 * time per I/O is the floor under any target that uses the kernel's sockets: the headline's targets
 * (bench/nvmf.py) pay this and their own work on top, and a target can lead another per core by at
 * most the other's cost over this floor.
 *
 *     tcp_floor -w read|write -b BYTES -q QD -t SECONDS [-s] [-c TARGET_CPU] [-C INITIATOR_CPU]
 *
 * -s: reads from consecutive blocks (spdk_nvme_perf's "read"), else from random ones
 * ("randread"): the copy of sequential data is helped by the prefetcher, so the floor of a
 * sequential workload is lower.
 *
 * Prints one JSON object: ios, seconds, iops, mibps, target CPU seconds and share of a core,
 * target CPU µs per I/O and system calls per I/O.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define CMD_BYTES 72
#define HDR_BYTES 24
#define MEM_BYTES (64u << 20)
#define MAX_BATCH 512
#define RX_BYTES  (1u << 20)

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		perror("sched_setaffinity");
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Sends all of len bytes on a blocking socket; a short write only means the buffer filled. */
static int send_all(int fd, struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };

	while (mh.msg_iovlen > 0) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && mh.msg_iovlen > 0) {
			if ((size_t)n >= mh.msg_iov->iov_len) {
				n -= (ssize_t)mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
				mh.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
		while (mh.msg_iovlen > 0 && mh.msg_iov->iov_len == 0) {
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
	}
	return 0;
}

struct job {
	int write;
	size_t bytes;
	int qd;
	double seconds;
};

/* The initiator: keeps qd commands outstanding, polls, never sleeps. */
static void initiator(const struct job *j, struct sockaddr_in *addr)
{
	size_t cmd_len = CMD_BYTES + (j->write ? j->bytes : 0);
	size_t answer_len = j->write ? HDR_BYTES : HDR_BYTES + j->bytes;
	char *cmds = calloc((size_t)j->qd, cmd_len);
	char *rx = malloc(RX_BYTES);
	struct iovec iov[MAX_BATCH];
	size_t partial = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, i;
	double end;

	if (cmds == NULL || rx == NULL || fd < 0 || connect(fd, (void *)addr, sizeof(*addr)) != 0)
		_exit(1);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (i = 0; i < j->qd; i++) {
		iov[i].iov_base = cmds + (size_t)i * cmd_len;
		iov[i].iov_len = cmd_len;
	}
	if (send_all(fd, iov, j->qd) != 0)
		_exit(1);
	end = bench_now() + j->seconds;
	while (bench_now() < end) {
		ssize_t n = recv(fd, rx, RX_BYTES, MSG_DONTWAIT);
		size_t done;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			_exit(1);
		partial += (size_t)n;
		done = partial / answer_len;
		partial %= answer_len;
		for (i = 0; i < (int)done; i++) {
			iov[i].iov_base = cmds;
			iov[i].iov_len = cmd_len;
		}
		if (done > 0 && send_all(fd, iov, (int)done) != 0)
			_exit(1);
	}
	close(fd);
	_exit(0);
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

int main(int argc, char **argv)
{
	struct job j = { .write = 0, .bytes = 4096, .qd = 32, .seconds = 5 };
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t alen = sizeof(addr);
	int tcpu = 0, icpu = 1, c, ls, fd, ep, one = 1, seq = 0;
	uint64_t ios = 0, syscalls = 0;
	size_t cmd_len, partial = 0, blocks, next = 0;
	char *mem, *rx, hdrs[MAX_BATCH][HDR_BYTES];
	struct iovec iov[2 * MAX_BATCH];
	struct epoll_event ev = { .events = EPOLLIN };
	double t0, c0;
	pid_t child;

	while ((c = getopt(argc, argv, "w:b:q:t:sc:C:")) != -1) {
		switch (c) {
		case 'w':
			j.write = strcmp(optarg, "write") == 0;
			break;
		case 'b':
			j.bytes = strtoul(optarg, NULL, 0);
			break;
		case 'q':
			j.qd = atoi(optarg);
			break;
		case 't':
			j.seconds = atof(optarg);
			break;
		case 's':
			seq = 1;
			break;
		case 'c':
			tcpu = atoi(optarg);
			break;
		case 'C':
			icpu = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: tcp_floor -w read|write -b BYTES -q QD -t SECONDS "
					"[-s] [-c TARGET_CPU] [-C INITIATOR_CPU]\n");
			return 2;
		}
	}
	if (j.qd < 1 || j.qd > MAX_BATCH || j.bytes < 512 || j.bytes > RX_BYTES / 2) {
		fprintf(stderr, "tcp_floor: -q 1..%d, -b 512..%u\n", MAX_BATCH, RX_BYTES / 2);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (void *)&addr, sizeof(addr)) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (void *)&addr, &alen) != 0) {
		perror("tcp_floor: listen");
		return 1;
	}
	child = fork();
	if (child == 0) {
		close(ls);
		pin(icpu);
		initiator(&j, &addr);
	}
	pin(tcpu);
	/* The data the reads send: touched, so every page is real memory as a malloc bdev's is. */
	mem = aligned_alloc(4096, MEM_BYTES);
	rx = malloc(RX_BYTES);
	if (mem == NULL || rx == NULL)
		return 1;
	memset(mem, 0x5a, MEM_BYTES);
	memset(hdrs, 0, sizeof(hdrs));
	blocks = MEM_BYTES / j.bytes;
	fd = accept(ls, NULL, NULL);
	ep = epoll_create1(0);
	if (fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		perror("tcp_floor: accept");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cmd_len = CMD_BYTES + (j.write ? j.bytes : 0);
	t0 = bench_now();
	c0 = cpu_seconds();
	for (;;) {
		ssize_t n = recv(fd, rx, RX_BYTES, MSG_DONTWAIT);
		size_t cmds, i;
		int k = 0;

		syscalls++;
		if (n < 0 && errno == EAGAIN) {
			syscalls++;
			epoll_wait(ep, &ev, 1, -1);
			continue;
		}
		if (n <= 0)
			break;
		partial += (size_t)n;
		cmds = partial / cmd_len;
		partial %= cmd_len;
		for (i = 0; i < cmds; i++) {
			iov[k].iov_base = hdrs[i % MAX_BATCH];
			iov[k++].iov_len = HDR_BYTES;
			if (!j.write) {
				iov[k].iov_base =
					mem + (seq ? next++ % blocks : bench_rnd(&g_rng) % blocks) *
						      j.bytes;
				iov[k++].iov_len = j.bytes;
			}
		}
		if (k > 0) {
			syscalls++;
			if (send_all(fd, iov, k) != 0)
				break;
		}
		ios += cmds;
	}
	{
		double secs = bench_now() - t0, cpu = cpu_seconds() - c0;

		waitpid(child, NULL, 0);
		printf("{\"workload\": \"%s\", \"bytes\": %zu, \"qd\": %d, \"ios\": %llu, "
		       "\"seconds\": %.3f, \"iops\": %.0f, \"mibps\": %.1f, \"target_cpu_s\": "
		       "%.3f, "
		       "\"target_cpu_share\": %.3f, \"target_cpu_us_per_io\": %.3f, "
		       "\"target_syscalls_per_io\": %.3f}\n",
		       j.write ? "write" : "read", j.bytes, j.qd, (unsigned long long)ios, secs,
		       (double)ios / secs, (double)ios * (double)j.bytes / secs / 1048576.0, cpu,
		       cpu / secs, ios ? cpu / (double)ios * 1e6 : 0.0,
		       ios ? (double)syscalls / (double)ios : 0.0);
	}
	return 0;
}
