/* Logging for libraries and daemons: one line per call on stderr, with a level.
 *
 * Two thresholds, as SPDK's: the print level says which lines reach stderr (MIMO_LOG=
 * debug|info|notice|warn|error at start, default info; log_set_print_level), the log level
 * which reach syslog - only in a program that opened it (mimo_log_open_syslog: mimo_tgt
 * does; a library never does it for its host program). Debug lines belong to a component
 * ("bdev", "nvmf"...), each a flag (SPDK's log flags): a debug line is written only when its
 * component's flag is set, and DEBUG is within a threshold. MIMO_LOG=debug sets every flag. */
#ifndef MIMO_UTIL_LOG_H
#define MIMO_UTIL_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A line's level. The values travel in the plugin channel's log frames: never renumber. */
enum mimo_log_level {
	MIMO_LOG_ERROR = 0,
	MIMO_LOG_WARN = 1,
	MIMO_LOG_INFO = 2,
	MIMO_LOG_DEBUG = 3,
};

/* Thresholds on SPDK's scale, which has NOTICE between WARNING and INFO (mimo writes no
 * NOTICE lines: NOTICE lets through what WARNING does). */
enum mimo_log_threshold {
	MIMO_LOG_T_ERROR = 0,
	MIMO_LOG_T_WARNING = 1,
	MIMO_LOG_T_NOTICE = 2,
	MIMO_LOG_T_INFO = 3,
	MIMO_LOG_T_DEBUG = 4,
};

/* "ERROR", "WARNING" (or "WARN"), "NOTICE", "INFO", "DEBUG", any case: the threshold, or -1. */
int mimo_log_threshold_parse(const char *name);
const char *mimo_log_threshold_name(int threshold); /* SPDK's upper-case name */
void mimo_log_set_print_level(int threshold);
int mimo_log_get_print_level(void);
void mimo_log_set_level(int threshold); /* syslog's (default NOTICE, as SPDK's) */
int mimo_log_get_level(void);
/* Send lines within the log level to syslog too, as ident (LOG_DAEMON). */
void mimo_log_open_syslog(const char *ident);
/* Prefix each line with its UTC time (default on). */
void mimo_log_enable_timestamps(bool on);

/*
 * Log flags: "all", a component's name, or a shell pattern ("nvmf*"), any case. Returns 0,
 * or -EINVAL when no flag matched. Safe from any thread at any time.
 */
int mimo_log_set_flag(const char *pattern, bool on);
/* The flags in name order: the count, and the i-th name with its state. */
size_t mimo_log_flag_count(void);
const char *mimo_log_flag_get(size_t i, bool *enabled);
/* Whether component's debug lines would be written now. */
bool mimo_log_debug_enabled(const char *component);

bool mimo_log_enabled(enum mimo_log_level level);
void mimo_log(enum mimo_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Re-read MIMO_LOG (tests and daemons that change the environment after start). */
void mimo_log_reload_level(void);

/* SPDK's -L FLAG: the flag set, and the print level raised to DEBUG (as SPDK's debug builds
 * do), so that component's debug lines appear. Returns 0 or -EINVAL (no such flag). */
int mimo_log_enable_flag(const char *component);
/* Whether a line of this level and component would be written now. */
bool mimo_log_component_enabled(enum mimo_log_level level, const char *component);

#define MIMO_ERR(comp, ...)  mimo_log(MIMO_LOG_ERROR, comp, __VA_ARGS__)
#define MIMO_WARN(comp, ...) mimo_log(MIMO_LOG_WARN, comp, __VA_ARGS__)
#define MIMO_INFO(comp, ...) mimo_log(MIMO_LOG_INFO, comp, __VA_ARGS__)
#define MIMO_DEBUG(comp, ...)                                        \
	do {                                                         \
		if (mimo_log_debug_enabled(comp))                    \
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
