#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* -1: not read yet. Read lazily so that a library never logs before main() sets MIMO_LOG. */
static _Atomic int g_level = -1;

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	if (s == NULL || *s == '\0')
		return MIMO_LOG_INFO;
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0)
			return i;
	}
	if (strcasecmp(s, "warning") == 0)
		return MIMO_LOG_WARN;
	return MIMO_LOG_INFO;
}

void mimo_log_reload_level(void)
{
	atomic_store(&g_level, parse_level(getenv("MIMO_LOG")));
}

bool mimo_log_enabled(enum mimo_log_level level)
{
	int cur = atomic_load_explicit(&g_level, memory_order_relaxed);

	if (cur < 0) {
		mimo_log_reload_level();
		cur = atomic_load(&g_level);
	}
	return (int)level <= cur;
}

#define MAX_FLAGS 16
static char g_flags[MAX_FLAGS][32];
static int g_nflags;

int mimo_log_enable_flag(const char *component)
{
	if (g_nflags >= MAX_FLAGS)
		return -ENOSPC;
	snprintf(g_flags[g_nflags++], sizeof(g_flags[0]), "%s", component);
	return 0;
}

bool mimo_log_component_enabled(enum mimo_log_level level, const char *component)
{
	if (mimo_log_enabled(level))
		return true;
	for (int i = 0; i < g_nflags; i++) {
		if (strcmp(g_flags[i], component) == 0 || strcmp(g_flags[i], "all") == 0)
			return true;
	}
	return false;
}

void mimo_log(enum mimo_log_level level, const char *component, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	char line[1024];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n, m;

	if (!mimo_log_component_enabled(level, component))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ mimo[%d] %s %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (long)tv.tv_usec / 1000, (int)getpid(), component, tags[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write(2) per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nothing sensible to do if stderr is gone. */
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
