/* The method registry, the application state, and rpc_get_methods. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "jsonrpc_internal.h"
#include "log.h"

#define COMP "rpc"

struct rpc_method {
	char *name;
	mimo_rpc_handler fn;
	uint32_t state_mask;
	const char *replacement; /* legacy methods: the modern name */
	_Atomic bool warned;
	/* Requests that reached this method (refused for the state included), and those answered
	 * with an error: the metrics endpoint reads them from its own thread. */
	_Atomic uint64_t calls, errors;
	struct rpc_method *_Atomic next;
};

static _Atomic uint64_t g_unknown_calls; /* requests for a method nobody registered */

/*
 * A list in registration order (rpc_get_methods lists methods as they were added). Methods
 * are only ever appended, under g_register_lock, and each is published by a release store
 * of the pointer that reaches it: lookups on the request path take no lock, and a method
 * registered while a server runs is seen whole or not at all.
 */
static struct rpc_method *_Atomic g_methods;
static pthread_mutex_t g_register_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_registered; /* methods added so far: rpc_get_methods' cache key */
static _Atomic uint32_t g_state = MIMO_RPC_RUNTIME;

static bool same_replacement(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void add_locked(const struct mimo_rpc_method *def)
{
	const struct rpc_method *old = jsonrpc_find_method(def->name);
	struct rpc_method *m, *_Atomic *tail;

	if (old != NULL) {
		/* The same registration again (a register function called twice) is no error. */
		if (old->fn != def->fn || old->state_mask != def->state_mask ||
		    !same_replacement(old->replacement, def->replacement))
			MIMO_ERR(COMP, "method %s registered twice", def->name);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->name = strdup(def->name)) == NULL) {
		free(m);
		MIMO_ERR(COMP, "cannot register %s: out of memory", def->name);
		return;
	}
	m->fn = def->fn;
	m->state_mask = def->state_mask;
	m->replacement = def->replacement;
	for (tail = &g_methods; atomic_load_explicit(tail, memory_order_relaxed) != NULL;
	     tail = &atomic_load_explicit(tail, memory_order_relaxed)->next)
		;
	atomic_store_explicit(tail, m, memory_order_release);
	atomic_fetch_add(&g_registered, 1);
}

MIMO_EXPORT void mimo_rpc_register_methods(const struct mimo_rpc_method *methods, size_t count)
{
	pthread_mutex_lock(&g_register_lock);
	for (size_t i = 0; i < count; i++)
		add_locked(&methods[i]);
	pthread_mutex_unlock(&g_register_lock);
}

MIMO_EXPORT void mimo_rpc_set_state(uint32_t state)
{
	atomic_store(&g_state, state);
}

MIMO_EXPORT uint32_t mimo_rpc_get_state(void)
{
	return atomic_load(&g_state);
}

/* The first method of the list, or the one after m. */
static struct rpc_method *first(void)
{
	return atomic_load_explicit(&g_methods, memory_order_acquire);
}

static struct rpc_method *next(const struct rpc_method *m)
{
	return atomic_load_explicit(&m->next, memory_order_acquire);
}

const struct rpc_method *jsonrpc_find_method(const char *name)
{
	for (struct rpc_method *m = first(); m != NULL; m = next(m)) {
		if (strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

bool jsonrpc_method_allowed(const struct rpc_method *m, uint32_t state, const char **why)
{
	if ((m->state_mask & state) == state)
		return true;
	/* SPDK's wording, which scripts match on. */
	*why = state == MIMO_RPC_STARTUP
		       ? "Method may only be called after framework is initialized using "
			 "framework_start_init RPC."
		       : "Method may only be called before framework is initialized. Use "
			 "--wait-for-rpc command line parameter and then issue this RPC before the "
			 "framework_start_init RPC.";
	return false;
}

MIMO_EXPORT bool mimo_rpc_is_method_allowed(const char *method, uint32_t state)
{
	const struct rpc_method *m = jsonrpc_find_method(method);
	const char *why;

	return m != NULL && jsonrpc_method_allowed(m, state, &why);
}

MIMO_EXPORT int mimo_rpc_get_method_state_mask(const char *method, uint32_t *state_mask)
{
	const struct rpc_method *m = jsonrpc_find_method(method);

	if (m == NULL)
		return -ENOENT;
	*state_mask = m->state_mask;
	return 0;
}

void jsonrpc_count_unknown(void)
{
	atomic_fetch_add_explicit(&g_unknown_calls, 1, memory_order_relaxed);
}

void jsonrpc_count_refused(const struct rpc_method *m)
{
	struct rpc_method *w = (struct rpc_method *)m;

	atomic_fetch_add_explicit(&w->calls, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
}

void jsonrpc_count_error(const struct rpc_method *m)
{
	atomic_fetch_add_explicit(&((struct rpc_method *)m)->errors, 1, memory_order_relaxed);
}

MIMO_EXPORT void mimo_rpc_foreach_method_stat(mimo_rpc_stat_fn fn, void *arg)
{
	for (struct rpc_method *m = first(); m != NULL; m = next(m)) {
		uint64_t calls = atomic_load_explicit(&m->calls, memory_order_relaxed);

		if (calls > 0)
			fn(arg, m->name, calls,
			   atomic_load_explicit(&m->errors, memory_order_relaxed));
	}
}

MIMO_EXPORT uint64_t mimo_rpc_unknown_method_calls(void)
{
	return atomic_load_explicit(&g_unknown_calls, memory_order_relaxed);
}

void jsonrpc_invoke(const struct rpc_method *m, struct mimo_jsonrpc_request *req)
{
	atomic_fetch_add_explicit(&((struct rpc_method *)m)->calls, 1, memory_order_relaxed);
	req->m = m;
	if (m->replacement != NULL) {
		bool expected = false;

		if (atomic_compare_exchange_strong(&((struct rpc_method *)m)->warned, &expected,
						   true))
			MIMO_WARN(COMP, "RPC method %s is deprecated. Use %s instead.", m->name,
				  m->replacement);
	}
	m->fn(req, req->params);
}

MIMO_EXPORT json_t *mimo_rpc_list_methods(bool current_only, bool include_legacy)
{
	json_t *arr = json_array();
	uint32_t state = mimo_rpc_get_state();

	for (struct rpc_method *m = first(); m != NULL; m = next(m)) {
		if (m->replacement != NULL && !include_legacy)
			continue;
		if (current_only && (m->state_mask & state) != state)
			continue;
		json_array_append_new(arr, json_string(m->name));
	}
	return arr;
}

struct rpc_get_methods_params {
	bool current;
	bool include_aliases;
};

static const struct mimo_json_decoder get_methods_decoders[] = {
	{ "current", offsetof(struct rpc_get_methods_params, current), mimo_json_decode_bool,
	  true },
	{ "include_aliases", offsetof(struct rpc_get_methods_params, include_aliases),
	  mimo_json_decode_bool, true },
};

/*
 * rpc_get_methods' answers, serialised once per (current, include_aliases) and kept until a
 * method is registered or the state changes: tools poll it (it is how scripts wait for a
 * daemon), and with two hundred methods building the list through jansson took most of a
 * call's time.
 */
struct methods_answer {
	char *text;
	size_t len;
	uint64_t registered;
	uint32_t state;
};
static struct methods_answer g_answers[2][2];
static pthread_mutex_t g_answers_lock = PTHREAD_MUTEX_INITIALIZER;

static char *methods_text(bool current, bool aliases, size_t *len)
{
	uint64_t registered = atomic_load(&g_registered);
	uint32_t state = mimo_rpc_get_state();
	struct methods_answer *a = &g_answers[current][aliases];
	char *copy = NULL;

	pthread_mutex_lock(&g_answers_lock);
	if (a->text == NULL || a->registered != registered || a->state != state) {
		json_t *list = mimo_rpc_list_methods(current, aliases);
		char *text = json_dumps(list, JSON_COMPACT);

		json_decref(list);
		if (text != NULL) {
			free(a->text);
			a->text = text;
			a->len = strlen(text);
			a->registered = registered;
			a->state = state;
		}
	}
	if (a->text != NULL && (copy = malloc(a->len)) != NULL) {
		memcpy(copy, a->text, a->len);
		*len = a->len;
	}
	pthread_mutex_unlock(&g_answers_lock);
	return copy;
}

static void rpc_get_methods(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct rpc_get_methods_params p = { 0 };
	size_t len = 0;
	char *text;

	if (!mimo_rpc_decode(req, params, get_methods_decoders, MIMO_COUNTOF(get_methods_decoders),
			     &p))
		return;
	text = methods_text(p.current, p.include_aliases, &len);
	if (text != NULL)
		mimo_jsonrpc_send_result_text(req, text, len);
	else
		mimo_jsonrpc_send_errno(req, -ENOMEM);
}

static void get_rpc_methods(struct mimo_jsonrpc_request *req, const json_t *params)
{
	rpc_get_methods(req, params);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "rpc_get_methods", rpc_get_methods, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "get_rpc_methods", get_rpc_methods, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME,
	  "rpc_get_methods" },
};

MIMO_EXPORT void mimo_register_jsonrpc(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
