/* Private structures of the JSON-RPC library. */
#ifndef MIMO_JSONRPC_INTERNAL_H
#define MIMO_JSONRPC_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "mimo/jsonrpc.h"
#include "mimo/reactor.h"

/*
 * Where responses go: a client connection, or a local caller's callback. A sink lives on one
 * reactor; deliver() is called there with a response's JSON text (malloc'd, NUL-terminated,
 * len bytes) and takes ownership of it. Every request holds a reference, so a connection that
 * closes while requests run stays valid (and drops their answers).
 */
struct rpc_sink {
	struct mimo_reactor *reactor;
	uint32_t refs;
	void (*deliver)(struct rpc_sink *sink, char *text, size_t len);
	void (*release)(struct rpc_sink *sink); /* last reference gone */
	/* Optional: only the owner's reference is left (every request was answered). */
	void (*unbusy)(struct rpc_sink *sink);
};

static inline void rpc_sink_get(struct rpc_sink *s)
{
	s->refs++;
}

static inline void rpc_sink_put(struct rpc_sink *s)
{
	if (--s->refs == 0)
		s->release(s);
	else if (s->refs == 1 && s->unbusy != NULL)
		s->unbusy(s);
}

struct rpc_batch {
	struct rpc_sink *sink;
	size_t total;
	size_t pending;
	char **slots; /* a response's text per element, NULL for notifications */
};

struct mimo_jsonrpc_request {
	struct rpc_sink *sink;
	json_t *id; /* NULL: a notification */
	char *method;
	json_t *params;
	char *response; /* its text, until delivered */
	struct rpc_batch *batch;
	size_t index;
	bool answered;
	const struct rpc_method *m; /* its method once invoked (its error count) */
};

/* One parsed value from a sink (an object or a batch array). On the sink's reactor. */
void jsonrpc_handle_value(struct rpc_sink *sink, json_t *value);

/* An error response's text {"jsonrpc","id","error"}; id may be NULL (becomes null). */
char *jsonrpc_error_response(const json_t *id, int code, const char *message);

/* The registry (registry.c). */
struct rpc_method;
const struct rpc_method *jsonrpc_find_method(const char *name);
void jsonrpc_invoke(const struct rpc_method *m, struct mimo_jsonrpc_request *req);
/* The counters of mimo_rpc_foreach_method_stat (registry.c). */
void jsonrpc_count_unknown(void);
void jsonrpc_count_refused(const struct rpc_method *m);
void jsonrpc_count_error(const struct rpc_method *m);
bool jsonrpc_method_allowed(const struct rpc_method *m, uint32_t state, const char **why);

#endif
