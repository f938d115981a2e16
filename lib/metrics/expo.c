/* Prometheus' text format (see expo.h). */
#include "expo.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"

static void put(struct mimo_expo *e, const char *s, size_t n)
{
	if (!e->oom && mimo_buf_append(&e->b, s, n) != 0)
		e->oom = true;
}

static void puts_(struct mimo_expo *e, const char *s)
{
	put(e, s, strlen(s));
}

void mimo_expo_family(struct mimo_expo *e, const char *name, enum mimo_expo_type type,
		      const char *help)
{
	puts_(e, "# HELP ");
	puts_(e, name);
	puts_(e, " ");
	puts_(e, help);
	puts_(e, "\n# TYPE ");
	puts_(e, name);
	puts_(e, type == MIMO_EXPO_COUNTER ? " counter\n"
		 : type == MIMO_EXPO_GAUGE ? " gauge\n"
					   : " histogram\n");
}

/* The format's three escapes inside a label value; anything else (UTF-8 included) as is. */
static void put_escaped(struct mimo_expo *e, const char *v)
{
	const char *run = v;

	for (; *v != '\0'; v++) {
		const char *esc = *v == '\\'   ? "\\\\"
				  : *v == '"'  ? "\\\""
				  : *v == '\n' ? "\\n"
					       : NULL;

		if (esc == NULL)
			continue;
		put(e, run, (size_t)(v - run));
		puts_(e, esc);
		run = v + 1;
	}
	put(e, run, (size_t)(v - run));
}

static void put_name_labels(struct mimo_expo *e, const char *name, const char *const *labels)
{
	puts_(e, name);
	if (labels == NULL || labels[0] == NULL)
		return;
	puts_(e, "{");
	for (size_t i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
		if (i > 0)
			puts_(e, ",");
		puts_(e, labels[i]);
		puts_(e, "=\"");
		put_escaped(e, labels[i + 1]);
		puts_(e, "\"");
	}
	puts_(e, "}");
}

void mimo_expo_u64(struct mimo_expo *e, const char *name, const char *const *labels, uint64_t value)
{
	char num[32];

	put_name_labels(e, name, labels);
	snprintf(num, sizeof(num), " %" PRIu64 "\n", value);
	puts_(e, num);
}

void mimo_expo_f64(struct mimo_expo *e, const char *name, const char *const *labels, double value)
{
	char num[48];

	put_name_labels(e, name, labels);
	/* %.17g round-trips a double; the format spells the special values this way. */
	if (isnan(value))
		snprintf(num, sizeof(num), " NaN\n");
	else if (isinf(value))
		snprintf(num, sizeof(num), value > 0 ? " +Inf\n" : " -Inf\n");
	else
		snprintf(num, sizeof(num), " %.17g\n", value);
	puts_(e, num);
}

void mimo_expo_histogram(struct mimo_expo *e, const char *name, const char *label,
			 const char *label_value, const double *bounds, size_t nbounds,
			 const uint64_t *counts, double sum)
{
	char series[128], le[32];
	const char *const one[] = { label, label_value, NULL };
	uint64_t cum = 0;

	snprintf(series, sizeof(series), "%s_bucket", name);
	for (size_t i = 0; i <= nbounds; i++) {
		cum += counts[i];
		if (i < nbounds)
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		if (label != NULL)
			mimo_expo_u64(e, series,
				      (const char *const[]){ label, label_value, "le", le, NULL },
				      cum);
		else
			mimo_expo_u64(e, series, (const char *const[]){ "le", le, NULL }, cum);
	}
	snprintf(series, sizeof(series), "%s_sum", name);
	mimo_expo_f64(e, series, label != NULL ? one : NULL, sum);
	snprintf(series, sizeof(series), "%s_count", name);
	mimo_expo_u64(e, series, label != NULL ? one : NULL, cum);
}

void mimo_expo_one_u64(struct mimo_expo *e, const char *name, enum mimo_expo_type type,
		       const char *help, uint64_t value)
{
	mimo_expo_family(e, name, type, help);
	mimo_expo_u64(e, name, NULL, value);
}

void mimo_expo_build_info(struct mimo_expo *e, const char *program)
{
	mimo_expo_family(e, "mimo_build_info", MIMO_EXPO_GAUGE,
			 "Always 1; the labels say which program and version this is.");
	mimo_expo_u64(e, "mimo_build_info",
		      (const char *const[]){ "program", program, "version", MIMO_VERSION, NULL },
		      1);
}

/* Fields 14, 15 (utime, stime, in clock ticks), 22 (starttime, ticks since boot) and 24 (rss,
 * pages) of /proc/self/stat, after the command name (which may contain spaces and ')'). */
static int read_stat(uint64_t *cpu_ticks, uint64_t *start_ticks, uint64_t *rss_pages)
{
	char line[1024], *p;
	unsigned long long f[24] = { 0 };
	FILE *fp = fopen("/proc/self/stat", "re");
	size_t n;

	if (fp == NULL)
		return -1;
	n = fread(line, 1, sizeof(line) - 1, fp);
	fclose(fp);
	line[n] = '\0';
	p = strrchr(line, ')');
	if (p == NULL)
		return -1;
	p += 2; /* field 3, the state, comes next */
	/* Fields 3..24: the state is one character, the rest are numbers. */
	if (sscanf(p,
		   "%*c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
		   "%llu %llu %llu %llu %llu %llu",
		   &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11], &f[12], &f[13], &f[14],
		   &f[15], &f[16], &f[17], &f[18], &f[19], &f[20], &f[21], &f[22], &f[23],
		   &f[0]) != 21)
		return -1;
	/* f[k] holds field k for k in 4..23; field 24 landed in f[0]. */
	*cpu_ticks = f[14] + f[15];
	*start_ticks = f[22];
	*rss_pages = f[0];
	return 0;
}

static uint64_t boot_time(void)
{
	char line[256];
	unsigned long long bt = 0;
	FILE *fp = fopen("/proc/stat", "re");

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	}
	fclose(fp);
	return bt;
}

static uint64_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;

	if (d == NULL)
		return 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	/* ".", ".." and the directory's own descriptor. */
	return n >= 3 ? n - 3 : 0;
}

void mimo_expo_process(struct mimo_expo *e)
{
	uint64_t cpu, start, rss;
	double hz = (double)sysconf(_SC_CLK_TCK);
	struct rlimit rl;

	if (read_stat(&cpu, &start, &rss) == 0 && hz > 0) {
		mimo_expo_family(e, "process_cpu_seconds_total", MIMO_EXPO_COUNTER,
				 "Total user and system CPU time spent in seconds.");
		mimo_expo_f64(e, "process_cpu_seconds_total", NULL, (double)cpu / hz);
		mimo_expo_one_u64(e, "process_resident_memory_bytes", MIMO_EXPO_GAUGE,
				  "Resident memory size in bytes.",
				  rss * (uint64_t)sysconf(_SC_PAGESIZE));
		mimo_expo_family(e, "process_start_time_seconds", MIMO_EXPO_GAUGE,
				 "Start time of the process since unix epoch in seconds.");
		mimo_expo_f64(e, "process_start_time_seconds", NULL,
			      (double)boot_time() + (double)start / hz);
	}
	mimo_expo_one_u64(e, "process_open_fds", MIMO_EXPO_GAUGE,
			  "Number of open file descriptors.", open_fds());
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		mimo_expo_one_u64(e, "process_max_fds", MIMO_EXPO_GAUGE,
				  "Maximum number of open file descriptors.",
				  (uint64_t)rl.rlim_cur);
}
