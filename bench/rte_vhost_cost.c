/*
 * What DPDK's rte_vhost would cost mimo_tgt's process before it serves anything: EAL started
 * as the guest-test notes say it runs here (no hugepages, no PCI, no shared config, one
 * lcore) and one vhost-user socket registered. Prints start-up time, resident memory and
 * threads before and after. Not built by meson (it needs Debian's dpdk-dev); by hand:
 *
 *     cc -O2 bench/rte_vhost_cost.c -o /tmp/rte_vhost_cost $(pkg-config --cflags --libs libdpdk)
 *     /tmp/rte_vhost_cost 2>/dev/null
 *
 * docs/vhost.md ("Own back-end or rte_vhost") records what it measured.
 */
#include <rte_eal.h>
#include <rte_vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
static long rss(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char l[256];
	long v = 0;
	while (fgets(l, sizeof l, f))
		if (!strncmp(l, "VmRSS:", 6))
			v = atol(l + 6);
	fclose(f);
	return v;
}
static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}
int main(int argc, char **argv)
{
	struct timespec a, b;
	long r0 = rss();
	int t0 = threads();
	clock_gettime(CLOCK_MONOTONIC, &a);
	char *args[] = { argv[0], "--no-huge", "-m",	      "64", "--no-pci", "--no-shconf",
			 "-l",	  "0",	       "--log-level", "1",  NULL };
	if (rte_eal_init(10, args) < 0) {
		printf("eal failed\n");
		return 1;
	}
	unlink("/tmp/rte_vhost_cost.sock");
	if (rte_vhost_driver_register("/tmp/rte_vhost_cost.sock", 0) != 0) {
		printf("reg failed\n");
	}
	rte_vhost_driver_start("/tmp/rte_vhost_cost.sock");
	clock_gettime(CLOCK_MONOTONIC, &b);
	usleep(200000);
	printf("{\"init_ms\": %.1f, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
	       "\"threads_before\": %d, \"threads_after\": %d}\n",
	       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6, r0, rss(), t0,
	       threads());
	return 0;
}
