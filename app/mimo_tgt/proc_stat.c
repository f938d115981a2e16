/*
 * A core's CPU time since the daemon started, from /proc/stat, as SPDK's framework_get_reactors
 * reports it (usr, sys, irq: clock ticks, USER_HZ). It counts everything that ran on the core,
 * not only the reactor: what spdk_top shows next to the reactor's own busy and idle ticks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"

struct core_times {
	uint64_t usr, sys, irq;
	bool known;
};

static struct core_times g_start[64];

/* One core's line: "cpuN user nice system idle iowait irq softirq ...". irq counts softirq
 * too, as SPDK's does. Returns 0 or -1 (no such core, or a line not in that form). */
static int read_core(uint32_t core, struct core_times *t)
{
	char line[512];
	FILE *f = fopen("/proc/stat", "r");
	int rc = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned int cpu;
		uint64_t user, nice, system, idle, iowait, irq, softirq;

		if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
			continue;
		if (sscanf(line,
			   "cpu%u %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %" SCNu64,
			   &cpu, &user, &nice, &system, &idle, &iowait, &irq, &softirq) != 8)
			continue;
		if (cpu == core) {
			t->usr = user;
			t->sys = system;
			t->irq = irq + softirq;
			t->known = true;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

void app_proc_stat_init(uint64_t core_mask)
{
	for (uint32_t core = 0; core < 64; core++) {
		if (core_mask & (1ULL << core))
			read_core(core, &g_start[core]);
	}
}

int app_proc_stat_get(uint32_t core, uint64_t *usr, uint64_t *sys, uint64_t *irq)
{
	struct core_times now = { 0 };

	if (core >= 64 || !g_start[core].known || read_core(core, &now) != 0)
		return -1;
	*usr = now.usr - g_start[core].usr;
	*sys = now.sys - g_start[core].sys;
	*irq = now.irq - g_start[core].irq;
	return 0;
}

int app_core_numa_id(uint32_t core)
{
	char path[96];

	/* sysfs links each CPU to its node as cpuN/nodeM; no link: not known (SPDK's -1). */
	for (int node = 0; node < 64; node++) {
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/node%d", core, node);
		if (access(path, F_OK) == 0)
			return node;
	}
	return -1;
}
