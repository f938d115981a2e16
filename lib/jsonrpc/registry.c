/* The method registry, the application state, and rpc_get_methods. */
#include <errno.h>
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
	struct rpc_method *next;
};

/* Registered at load time (constructors), read-only afterwards. */
static struct rpc_method *g_methods;
static _Atomic uint32_t g_state = MIMO_RPC_RUNTIME;

static void add(const char *name, mimo_rpc_handler fn, uint32_t mask, const char *replacement)
{
	struct rpc_method *m, **tail;

	if (jsonrpc_find_method(name) != NULL) {
		MIMO_ERR(COMP, "method %s registered twice", name);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->name = strdup(name)) == NULL) {
		free(m);
		MIMO_ERR(COMP, "cannot register %s: out of memory", name);
		return;
	}
	m->fn = fn;
	m->state_mask = mask;
	m->replacement = replacement;
	/* Keep registration order: rpc_get_methods lists methods as they were added. */
	for (tail = &g_methods; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = m;
}

MIMO_EXPORT void mimo_rpc_register(const char *method, mimo_rpc_handler fn, uint32_t state_mask)
{
	add(method, fn, state_mask, NULL);
}

MIMO_EXPORT void mimo_rpc_register_legacy(const char *method, mimo_rpc_handler fn,
					  uint32_t state_mask, const char *replacement)
{
	add(method, fn, state_mask, replacement);
}

MIMO_EXPORT void mimo_rpc_set_state(uint32_t state)
{
	atomic_store(&g_state, state);
}

MIMO_EXPORT uint32_t mimo_rpc_get_state(void)
{
	return atomic_load(&g_state);
}

const struct rpc_method *jsonrpc_find_method(const char *name)
{
	for (struct rpc_method *m = g_methods; m != NULL; m = m->next) {
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

void jsonrpc_invoke(const struct rpc_method *m, struct mimo_jsonrpc_request *req)
{
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

	for (struct rpc_method *m = g_methods; m != NULL; m = m->next) {
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

static void rpc_get_methods(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct rpc_get_methods_params p = { 0 };

	if (!mimo_rpc_decode(req, params, get_methods_decoders, MIMO_COUNTOF(get_methods_decoders),
			     &p))
		return;
	mimo_jsonrpc_send_result(req, mimo_rpc_list_methods(p.current, p.include_aliases));
}
MIMO_RPC_REGISTER("rpc_get_methods", rpc_get_methods, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME)

static void get_rpc_methods(struct mimo_jsonrpc_request *req, const json_t *params)
{
	rpc_get_methods(req, params);
}
MIMO_RPC_REGISTER_LEGACY("get_rpc_methods", get_rpc_methods, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME,
			 "rpc_get_methods")
