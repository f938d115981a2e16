/*
 * mimo/notify.h - the event bridge: JSON events from any C thread to a web backend over HTTP.
 *
 * Zero configuration: the first call starts the bridge. A call validates the event, copies it
 * into a bounded lock-free queue and returns; one sender thread delivers queued events in order
 * with retries, optional HMAC signatures (Standard Webhooks) and an optional on-disk spool.
 * docs/notify.md describes configuration keys, errors and the durability guarantee.
 */
#ifndef MIMO_NOTIFY_H
#define MIMO_NOTIFY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Queue an event. As the Go bridge: event is any non-empty string of at most 65,535 bytes
 * (JSON-escaped into the body); payload is NULL or "" for none, or one JSON value (json.Valid:
 * any kind, nesting up to 10,000, strings whose bytes are not UTF-8 are sent with U+FFFD in
 * their place) of at most max_payload_bytes (64 KiB by default). With "strict" configured:
 * event is 1..128 bytes of [A-Za-z0-9_.:-] and payload one object of valid UTF-8, 64 deep.
 * Never blocks, never waits.
 *
 * Returns 0 when queued (or when the bridge is disabled), or:
 *   -EINVAL        event is NULL or empty (strict: a character outside the allowed set)
 *   -ENAMETOOLONG  event is longer than 65,535 bytes (strict: 128)
 *   -EBADMSG       payload is not exactly one valid JSON value (strict: object)
 *   -EMSGSIZE      payload is larger than max_payload_bytes
 *   -ENOBUFS       the queue is full; the event is dropped and counted
 *   -ESHUTDOWN     the bridge was shut down (process exit, mimo_notify_shutdown)
 *   -ENOMEM        the bridge could not start
 */
int mimo_notify_event(const char *event, const char *payload);

/* The Go bridge's name for mimo_notify_event (also declared in spdk_go_notify.h). */
int NotifyEvent(const char *event, const char *payload);

/*
 * Override configuration with a JSON object of keys (the same keys as the config file):
 *   mimo_notify_configure("{\"url\":\"http://10.0.0.1:8080/events\",\"retries\":5}");
 * Keys not named keep their values (defaults < config file < environment < this call).
 * May be called before or after the first event; "queue" and "spool" can only change before
 * the bridge starts (-EBUSY afterwards). Returns 0, or -EINVAL for a bad document or value
 * (the reason is logged and nothing is applied).
 */
int mimo_notify_configure(const char *json);

/* Start the bridge now (read configuration, start the sender, replay the spool) instead of at
 * the first event. Optional. Returns 0 or a negative errno. */
int mimo_notify_init(void);

/* Wait until every event queued before this call has been delivered, has failed for good or
 * has been written to the spool. Returns 0, or -ETIMEDOUT. */
int mimo_notify_flush(uint32_t timeout_ms);

/* Flush for up to timeout_ms, spool what is left (if a spool is configured) and stop the
 * sender. Later events return -ESHUTDOWN. Runs automatically at exit() with grace_ms. */
void mimo_notify_shutdown(uint32_t timeout_ms);

struct mimo_notify_stats {
	uint64_t queued;      /* events accepted by mimo_notify_event */
	uint64_t sent;	      /* delivered: the receiver answered 2xx */
	uint64_t retried;     /* delivery attempts repeated after a retryable failure */
	uint64_t failed;      /* given up: permanent 4xx, or retries exhausted with no spool */
	uint64_t dropped;     /* refused because the queue was full, or lost at shutdown */
	uint64_t spooled;     /* written to the spool directory */
	uint64_t queue_depth; /* events waiting in the queue now */
};

/* Counters since the bridge started in this process. */
void mimo_notify_stats(struct mimo_notify_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_NOTIFY_H */
