/*
 * The daemon's event ring and push delivery. The ring is small and written at the rate
 * objects are created and deleted, so a mutex is the right tool; pushing goes through
 * libmimo_notify, which never blocks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "log.h"
#include "mimo/events.h"
#include "mimo/notify.h"

#define COMP	      "events"
#define MAX_TYPES     64
#define MAX_LISTENERS 16

struct entry {
	char *type;
	char *ctx;
	uint64_t id;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry g_ring[MIMO_EVENTS_RING_SIZE];
static uint64_t g_next_id; /* SPDK's ids count up from 0 */
static char *g_types[MAX_TYPES];
static size_t g_ntypes;
static struct {
	mimo_event_listener cb;
	void *arg;
} g_listeners[MAX_LISTENERS];

static void register_type_locked(const char *type)
{
	for (size_t i = 0; i < g_ntypes; i++) {
		if (strcmp(g_types[i], type) == 0)
			return;
	}
	if (g_ntypes < MAX_TYPES)
		g_types[g_ntypes++] = strdup(type);
}

MIMO_EXPORT void mimo_event_register_type(const char *type)
{
	pthread_mutex_lock(&g_lock);
	register_type_locked(type);
	pthread_mutex_unlock(&g_lock);
}

MIMO_EXPORT void mimo_event_emit(const char *type, const char *ctx, json_t *payload)
{
	struct entry *e;
	char *line = NULL;
	uint64_t id;
	int rc;

	pthread_mutex_lock(&g_lock);
	register_type_locked(type);
	id = g_next_id++;
	e = &g_ring[id % MIMO_EVENTS_RING_SIZE];
	free(e->type);
	free(e->ctx);
	e->type = strdup(type);
	e->ctx = strdup(ctx != NULL ? ctx : "");
	e->id = id;
	for (size_t i = 0; i < MAX_LISTENERS; i++) {
		if (g_listeners[i].cb == NULL)
			continue;
		if (line == NULL) {
			json_t *j = json_pack("{s:s, s:s, s:I}", "type", type, "ctx", e->ctx, "id",
					      (json_int_t)id);

			if (payload != NULL)
				json_object_set(j, "payload", payload);
			line = json_dumps(j, JSON_COMPACT);
			json_decref(j);
		}
		if (line != NULL)
			g_listeners[i].cb(g_listeners[i].arg, line);
	}
	pthread_mutex_unlock(&g_lock);
	free(line);

	if (payload != NULL) {
		char *text = json_dumps(payload, JSON_COMPACT);

		rc = text != NULL ? mimo_notify_event(type, text) : -ENOMEM;
		if (rc != 0 && rc != -ESHUTDOWN)
			MIMO_DEBUG(COMP, "event %s not pushed: %s", type, strerror(-rc));
		free(text);
		json_decref(payload);
	}
}

MIMO_EXPORT json_t *mimo_events_get_types(void)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&g_lock);
	for (size_t i = 0; i < g_ntypes; i++)
		json_array_append_new(arr, json_string(g_types[i]));
	pthread_mutex_unlock(&g_lock);
	return arr;
}

MIMO_EXPORT json_t *mimo_events_get(uint64_t from_id, uint64_t max)
{
	json_t *arr = json_array();
	uint64_t first, id;

	pthread_mutex_lock(&g_lock);
	/* The oldest id still in the ring; SPDK returns events with id >= the one asked for. */
	first = g_next_id > MIMO_EVENTS_RING_SIZE ? g_next_id - MIMO_EVENTS_RING_SIZE : 0;
	for (id = from_id > first ? from_id : first; id < g_next_id; id++) {
		struct entry *e = &g_ring[id % MIMO_EVENTS_RING_SIZE];

		if (max != 0 && json_array_size(arr) >= max)
			break;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "type", e->type, "ctx",
						     e->ctx, "id", (json_int_t)e->id));
	}
	pthread_mutex_unlock(&g_lock);
	return arr;
}

MIMO_EXPORT int mimo_events_add_listener(mimo_event_listener cb, void *arg)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&g_lock);
	for (size_t i = 0; i < MAX_LISTENERS; i++) {
		if (g_listeners[i].cb == NULL) {
			g_listeners[i].cb = cb;
			g_listeners[i].arg = arg;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&g_lock);
	return rc;
}

MIMO_EXPORT void mimo_events_remove_listener(mimo_event_listener cb, void *arg)
{
	pthread_mutex_lock(&g_lock);
	for (size_t i = 0; i < MAX_LISTENERS; i++) {
		if (g_listeners[i].cb == cb && g_listeners[i].arg == arg)
			g_listeners[i].cb = NULL;
	}
	pthread_mutex_unlock(&g_lock);
}
