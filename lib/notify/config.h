/* The bridge's settings and where they come from: defaults < config file < environment < API. */
#ifndef MIMO_NOTIFY_CONFIG_H
#define MIMO_NOTIFY_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Where events go when nothing says otherwise: the Go bridge's receiver on this host. */
#define NOTIFY_DEFAULT_URL "http://127.0.0.1:9090/spdk/events"

struct notify_config {
	char *url;
	char *method;
	uint32_t timeout_ms;
	uint32_t retries;
	uint32_t backoff_ms;
	uint32_t max_backoff_ms;
	uint32_t queue;
	uint32_t queue_max_mb; /* the overflow's cap; 0: none */
	char *spool;	       /* NULL: no spool */
	uint32_t spool_max_mb;
	char *secret; /* NULL: unsigned */
	bool disable;
	uint32_t max_payload;
	uint32_t grace_ms;
	uint32_t max_retry_after_ms;
	uint32_t spin_us;
	uint32_t idle_poll_ms; /* 0: sleep until a producer wakes the sender */
	bool strict;	       /* mimo's own rules for names and payloads, not the Go bridge's */
};

void notify_config_defaults(struct notify_config *c);
void notify_config_free(struct notify_config *c);
int notify_config_copy(struct notify_config *dst, const struct notify_config *src);

/*
 * Apply a JSON object of keys to c. strict: unknown keys are errors (API) rather than
 * warnings (config file). origin names the source in log lines. On error nothing is applied,
 * the reason is logged and -EINVAL returned.
 */
int notify_config_apply_object(struct notify_config *c, json_t *obj, bool strict,
			       const char *origin);

/* Apply MIMO_NOTIFY_* environment variables; a bad value is logged and skipped. */
void notify_config_apply_env(struct notify_config *c);

/* Find and apply the config file: $MIMO_NOTIFY_CONFIG, else the first of the standard paths
 * that exists. A file that cannot be read or parsed is logged and ignored. */
void notify_config_apply_file(struct notify_config *c);

/* Full load: defaults, file, environment, then the API overrides (may be NULL). */
void notify_config_load(struct notify_config *c, json_t *api_overrides);

/* Parse a Go-style duration ("2s", "500ms", "1m30s") into milliseconds. 0 or -EINVAL. */
int notify_parse_duration_ms(const char *s, uint32_t *ms);

#endif
