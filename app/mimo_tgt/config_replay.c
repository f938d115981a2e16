/*
 * Replay a configuration saved with save_config ({"subsystems":[{"subsystem", "config":
 * [{"method","params"}...]}...]}): each method is called in order, as load_config would over
 * the socket, and the first failure stops the replay with a message naming it.
 *
 * In two passes, as SPDK's loader: at start-up (before framework_start_init) the methods that
 * may run then - SPDK's options methods, sock_impl_set_options, nvmf_set_max_subsystems... -
 * and after it the methods that need the initialised framework. A method allowed in both
 * states runs in the first pass only. So a file saved by SPDK, whose options methods are
 * start-up only, loads with -c whether or not --wait-for-rpc is given.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"

#define COMP "app"

struct replay {
	json_t *calls; /* [{method, params}...] of this pass, flattened in order */
	size_t next;
	uint32_t phase; /* MIMO_RPC_STARTUP or MIMO_RPC_RUNTIME */
	char *path;
	void (*done)(void *arg, int rc);
	void *arg;
};

static void replay_next(struct replay *r);

static void finish(struct replay *r, int rc)
{
	r->done(r->arg, rc);
	json_decref(r->calls);
	free(r->path);
	free(r);
}

static void on_response(void *arg, json_t *resp)
{
	struct replay *r = arg;
	json_t *call = json_array_get(r->calls, r->next - 1);
	json_t *err = resp != NULL ? json_object_get(resp, "error") : NULL;

	if (err != NULL) {
		MIMO_ERR(COMP, "%s: %s failed: %lld %s", r->path,
			 json_string_value(json_object_get(call, "method")),
			 (long long)json_integer_value(json_object_get(err, "code")),
			 json_string_value(json_object_get(err, "message")));
		json_decref(resp);
		finish(r, -EINVAL);
		return;
	}
	json_decref(resp);
	replay_next(r);
}

static void replay_next(struct replay *r)
{
	json_t *call, *req;
	int rc;

	if (r->next >= json_array_size(r->calls)) {
		MIMO_INFO(COMP, "%s: %zu call(s) replayed %s", r->path, r->next,
			  r->phase == MIMO_RPC_STARTUP ? "at start-up" : "after initialisation");
		finish(r, 0);
		return;
	}
	call = json_array_get(r->calls, r->next++);
	req = json_pack("{s:s, s:I, s:O, s:O}", "jsonrpc", "2.0", "id", (json_int_t)r->next,
			"method", json_object_get(call, "method"), "params",
			json_object_get(call, "params") ? json_object_get(call, "params")
							: json_null());
	rc = mimo_jsonrpc_call_local(req, on_response, r);
	json_decref(req);
	if (rc != 0)
		finish(r, rc);
}

/* Whether call belongs to this pass; false (with a message) for a method nobody has. */
static bool in_pass(struct replay *r, const char *subsystem, json_t *call, bool *ok)
{
	const char *method = json_string_value(json_object_get(call, "method"));
	uint32_t mask;

	if (mimo_rpc_get_method_state_mask(method, &mask) != 0) {
		MIMO_ERR(COMP, "%s: %s (subsystem %s) is not a method of mimo_tgt", r->path, method,
			 subsystem != NULL ? subsystem : "?");
		*ok = false;
		return false;
	}
	if (r->phase == MIMO_RPC_STARTUP)
		return (mask & MIMO_RPC_STARTUP) != 0;
	return (mask & MIMO_RPC_STARTUP) == 0;
}

void app_replay_config(const char *path, uint32_t phase, void (*done)(void *arg, int rc), void *arg)
{
	struct replay *r = calloc(1, sizeof(*r));
	json_error_t jerr;
	json_t *doc, *subsystems, *sub;
	size_t i, j;

	if (r == NULL) {
		done(arg, -ENOMEM);
		return;
	}
	r->done = done;
	r->arg = arg;
	r->phase = phase;
	r->path = strdup(path);
	r->calls = json_array();
	doc = json_load_file(path, 0, &jerr);
	if (doc == NULL) {
		MIMO_ERR(COMP, "%s: line %d: %s", path, jerr.line, jerr.text);
		finish(r, -EINVAL);
		return;
	}
	subsystems = json_object_get(doc, "subsystems");
	if (!json_is_array(subsystems)) {
		MIMO_ERR(COMP, "%s: no \"subsystems\" array (expected save_config's format)", path);
		json_decref(doc);
		finish(r, -EINVAL);
		return;
	}
	json_array_foreach(subsystems, i, sub)
	{
		json_t *config = json_object_get(sub, "config"), *call;
		const char *name = json_string_value(json_object_get(sub, "subsystem"));
		bool ok = true;

		json_array_foreach(config, j, call)
		{
			if (!json_is_string(json_object_get(call, "method"))) {
				MIMO_ERR(COMP, "%s: a config entry has no \"method\"", path);
				json_decref(doc);
				finish(r, -EINVAL);
				return;
			}
			/* Every method is checked in the first pass, before any runs: a file
			 * mimo cannot load changes nothing. */
			if (in_pass(r, name, call, &ok))
				json_array_append(r->calls, call);
			if (!ok) {
				json_decref(doc);
				finish(r, -EINVAL);
				return;
			}
		}
	}
	json_decref(doc);
	replay_next(r);
}
