#include "log.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* -1: not read yet. Read lazily so that a library never logs before main() sets MIMO_LOG. */
static _Atomic int g_print = -1;
static _Atomic int g_syslog_level = MIMO_LOG_T_NOTICE;
static atomic_bool g_syslog_open;
static atomic_bool g_timestamps = true;

/* Every component that logs, as a flag (SPDK's log flags), in name order. A component missing
 * here still logs; only its debug lines then follow the threshold alone. test_framework.py
 * checks that every component the tree names is listed. */
static struct {
	const char *name;
	atomic_bool on;
} g_flags[] = {
	{ "accept" },	 { "agent" },	  { "aio" },	  { "api" },	 { "app" },
	{ "bdev" },	 { "bdev_nvme" }, { "delay" },	  { "deliver" }, { "error" },
	{ "events" },	 { "fuse" },	  { "gateway" },  { "http" },	 { "keyring" },
	{ "metrics" },	 { "nats" },	  { "notify" },	  { "nvme" },	 { "nvmf" },
	{ "nvmf_loop" }, { "nvmf_tcp" },  { "passthru" }, { "plugin" },	 { "raid" },
	{ "reactor" },	 { "rpc" },	  { "scsi" },	  { "split" },	 { "upq" },
	{ "vbdev" },	 { "vhost" },
};
#define NFLAGS (sizeof(g_flags) / sizeof(g_flags[0]))

static const char *const g_threshold_names[] = { "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG" };

/* A line's level on the thresholds' scale. */
static int rank(enum mimo_log_level level)
{
	static const int ranks[] = { MIMO_LOG_T_ERROR, MIMO_LOG_T_WARNING, MIMO_LOG_T_INFO,
				     MIMO_LOG_T_DEBUG };

	return (unsigned)level < 4 ? ranks[level] : MIMO_LOG_T_DEBUG;
}

int mimo_log_threshold_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < 5; i++) {
		if (strcasecmp(s, g_threshold_names[i]) == 0)
			return i;
	}
	if (strcasecmp(s, "warn") == 0)
		return MIMO_LOG_T_WARNING;
	return -1;
}

const char *mimo_log_threshold_name(int t)
{
	return t >= 0 && t < 5 ? g_threshold_names[t] : "INFO";
}

static void set_all_flags(bool on)
{
	for (size_t i = 0; i < NFLAGS; i++)
		atomic_store(&g_flags[i].on, on);
}

void mimo_log_reload_level(void)
{
	const char *env = getenv("MIMO_LOG");
	int t = env != NULL && *env != '\0' ? mimo_log_threshold_parse(env) : -1;

	if (t < 0)
		t = MIMO_LOG_T_INFO;
	/* MIMO_LOG=debug has always meant every debug line. */
	if (t == MIMO_LOG_T_DEBUG)
		set_all_flags(true);
	atomic_store(&g_print, t);
}

static int print_level(void)
{
	int cur = atomic_load_explicit(&g_print, memory_order_relaxed);

	if (cur < 0) {
		int unread = -1;
		const char *env = getenv("MIMO_LOG");
		int t = env != NULL && *env != '\0' ? mimo_log_threshold_parse(env) : -1;

		if (t < 0)
			t = MIMO_LOG_T_INFO;
		/* Only the first reader sets it: a setter that ran meanwhile wins. */
		if (atomic_compare_exchange_strong(&g_print, &unread, t) && t == MIMO_LOG_T_DEBUG)
			set_all_flags(true);
		cur = atomic_load(&g_print);
	}
	return cur;
}

void mimo_log_set_print_level(int t)
{
	print_level(); /* the environment's value is read first, so it does not come back */
	atomic_store(&g_print, t);
}

int mimo_log_get_print_level(void)
{
	return print_level();
}

void mimo_log_set_level(int t)
{
	atomic_store(&g_syslog_level, t);
}

int mimo_log_get_level(void)
{
	return atomic_load(&g_syslog_level);
}

void mimo_log_open_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&g_syslog_open, true);
}

void mimo_log_enable_timestamps(bool on)
{
	atomic_store(&g_timestamps, on);
}

/* The most verbose threshold any destination has: what a line must be within. */
static int widest(void)
{
	int t = print_level();

	if (atomic_load_explicit(&g_syslog_open, memory_order_relaxed)) {
		int s = atomic_load_explicit(&g_syslog_level, memory_order_relaxed);

		if (s > t)
			t = s;
	}
	return t;
}

int mimo_log_set_flag(const char *pattern, bool on)
{
	int rc = -EINVAL;

	print_level(); /* MIMO_LOG=debug's flags are set before, not after, this */
	if (strcasecmp(pattern, "all") == 0) {
		set_all_flags(on);
		return 0;
	}
	for (size_t i = 0; i < NFLAGS; i++) {
		if (fnmatch(pattern, g_flags[i].name, FNM_CASEFOLD) == 0) {
			atomic_store(&g_flags[i].on, on);
			rc = 0;
		}
	}
	return rc;
}

size_t mimo_log_flag_count(void)
{
	return NFLAGS;
}

const char *mimo_log_flag_get(size_t i, bool *enabled)
{
	if (i >= NFLAGS)
		return NULL;
	print_level();
	*enabled = atomic_load(&g_flags[i].on);
	return g_flags[i].name;
}

static bool flag_on(const char *component)
{
	for (size_t i = 0; i < NFLAGS; i++) {
		if (strcmp(g_flags[i].name, component) == 0)
			return atomic_load_explicit(&g_flags[i].on, memory_order_relaxed);
	}
	return true; /* not a flag: the threshold alone decides */
}

bool mimo_log_debug_enabled(const char *component)
{
	/* The threshold first: outside debugging this is one load. */
	return widest() >= MIMO_LOG_T_DEBUG && flag_on(component);
}

bool mimo_log_enabled(enum mimo_log_level level)
{
	return rank(level) <= widest();
}

int mimo_log_enable_flag(const char *component)
{
	int rc = mimo_log_set_flag(component, true);

	if (rc == 0)
		mimo_log_set_print_level(MIMO_LOG_T_DEBUG);
	return rc;
}

bool mimo_log_component_enabled(enum mimo_log_level level, const char *component)
{
	if (level == MIMO_LOG_DEBUG)
		return mimo_log_debug_enabled(component);
	return mimo_log_enabled(level);
}

void mimo_log(enum mimo_log_level level, const char *component, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	static const int syslog_levels[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	int n = 0, m, body;
	int r = rank(level);
	bool to_stderr, to_syslog;
	va_list ap;

	if ((unsigned)level > MIMO_LOG_DEBUG)
		level = MIMO_LOG_DEBUG;
	if (level == MIMO_LOG_DEBUG && !flag_on(component))
		return;
	to_stderr = r <= print_level();
	to_syslog = atomic_load_explicit(&g_syslog_open, memory_order_relaxed) &&
		    r <= atomic_load_explicit(&g_syslog_level, memory_order_relaxed);
	if (!to_stderr && !to_syslog)
		return;
	if (atomic_load_explicit(&g_timestamps, memory_order_relaxed)) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, (long)tv.tv_usec / 1000);
	}
	n += snprintf(line + n, sizeof(line) - (size_t)n, "mimo[%d] ", (int)getpid());
	body = n; /* syslog adds its own time and pid */
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s %s: ", component, tags[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n] = '\0';
	if (to_syslog)
		syslog(syslog_levels[level], "%s", line + body);
	if (to_stderr) {
		line[n++] = '\n';
		/* One write(2) per line keeps lines from different threads whole. */
		if (write(STDERR_FILENO, line, (size_t)n) < 0) {
			/* Nothing sensible to do if stderr is gone. */
		}
	}
}

bool mimo_ratelimit_allow(struct mimo_ratelimit *rl, int64_t interval_ns, uint64_t *suppressed)
{
	int64_t now = mimo_now_ns();
	int64_t next = atomic_load_explicit(&rl->next_ns, memory_order_relaxed);

	if (now >= next && atomic_compare_exchange_strong(&rl->next_ns, &next, now + interval_ns)) {
		if (suppressed != NULL)
			*suppressed = atomic_exchange(&rl->suppressed, 0);
		return true;
	}
	if (suppressed != NULL)
		atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
	return false;
}
