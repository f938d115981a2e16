/*
 * mimo/events.h - a daemon's events: pushed to the web backend through libmimo_notify and
 * kept in SPDK's notify ring, which clients poll with notify_get_types and
 * notify_get_notifications (the pull model).
 *
 * The ring holds the last 1024 events; ids count up from 0 and the oldest are overwritten.
 * Each entry is {"type", "ctx", "id"} as SPDK's; ctx names the object (a bdev's name...).
 * Any thread may emit; nothing blocks.
 *
 * Errors: 0 or a negative errno. JSON: mimo_event_emit takes the payload's reference; the
 * getters return new references the caller releases with json_decref.
 */
#ifndef MIMO_EVENTS_H
#define MIMO_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIMO_EVENTS_RING_SIZE 1024

/* Register notify_get_types and notify_get_notifications (mimo/jsonrpc.h, "Registration"). */
void mimo_register_events(void);

/* Declare an event type so that notify_get_types lists it before it first happens. */
void mimo_event_register_type(const char *type);

/*
 * Emit an event: recorded in the ring as {type, ctx}, and, when payload is not NULL, pushed as
 * NotifyEvent(type, payload) (payload is a JSON object; this call takes the reference).
 * Ring-only events (SPDK's bdev_register...) pass payload NULL.
 */
void mimo_event_emit(const char *type, const char *ctx, json_t *payload);

/* SPDK's notify_get_types and notify_get_notifications results: new JSON arrays. */
json_t *mimo_events_get_types(void);
json_t *mimo_events_get(uint64_t from_id, uint64_t max);

/*
 * Listen to every event as it is emitted (the FUSE "events" file streams them). cb runs on
 * the emitting thread and must not block; line is {"type","ctx","id","payload"?} as JSON.
 */
typedef void (*mimo_event_listener)(void *arg, const char *line);
int mimo_events_add_listener(mimo_event_listener cb, void *arg);
void mimo_events_remove_listener(mimo_event_listener cb, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_EVENTS_H */
