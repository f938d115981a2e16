/* Logging for libraries and daemons: one line per call on stderr, with a level.
 * The threshold comes from MIMO_LOG=debug|info|warn|error (default info). */
#ifndef MIMO_UTIL_LOG_H
#define MIMO_UTIL_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum mimo_log_level {
	MIMO_LOG_ERROR = 0,
	MIMO_LOG_WARN = 1,
	MIMO_LOG_INFO = 2,
	MIMO_LOG_DEBUG = 3,
};

bool mimo_log_enabled(enum mimo_log_level level);
void mimo_log(enum mimo_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Re-read MIMO_LOG (tests and daemons that change the environment after start). */
void mimo_log_reload_level(void);

/* SPDK's -L FLAG: debug lines of one component ("bdev", "rpc", "all") whatever the level.
 * Call before other threads start. Returns 0 or -ENOSPC. */
int mimo_log_enable_flag(const char *component);
bool mimo_log_component_enabled(enum mimo_log_level level, const char *component);

#define MIMO_ERR(comp, ...)  mimo_log(MIMO_LOG_ERROR, comp, __VA_ARGS__)
#define MIMO_WARN(comp, ...) mimo_log(MIMO_LOG_WARN, comp, __VA_ARGS__)
#define MIMO_INFO(comp, ...) mimo_log(MIMO_LOG_INFO, comp, __VA_ARGS__)
#define MIMO_DEBUG(comp, ...)                                        \
	do {                                                         \
		if (mimo_log_enabled(MIMO_LOG_DEBUG))                \
			mimo_log(MIMO_LOG_DEBUG, comp, __VA_ARGS__); \
	} while (0)

/*
 * A rate limit for log lines that bad input can trigger at any rate: at most one line per
 * interval, and the next line that is let through reports how many were suppressed.
 * Zero-initialised is ready to use; lock-free, so it may be used on hot paths.
 */
struct mimo_ratelimit {
	_Atomic int64_t next_ns;
	_Atomic uint64_t suppressed;
};

/* True if a line may be logged now; *suppressed receives the count skipped since the last.
 * With suppressed NULL nothing is counted, and a refused call writes no shared memory (for
 * callers that count the events themselves). */
bool mimo_ratelimit_allow(struct mimo_ratelimit *rl, int64_t interval_ns, uint64_t *suppressed);

#endif
