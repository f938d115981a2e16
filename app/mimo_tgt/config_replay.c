/*
 * Replay a configuration saved with save_config ({"subsystems":[{"subsystem", "config":
 * [{"method","params"}...]}...]}): each method is called in order, as load_config would over
 * the socket, and the first failure stops the replay with a message naming it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"

#define COMP "app"

struct replay {
	json_t *calls; /* [{method, params}...] flattened in order */
	size_t next;
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
		MIMO_INFO(COMP, "%s: %zu call(s) replayed", r->path, r->next);
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

void app_replay_config(const char *path, void (*done)(void *arg, int rc), void *arg)
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

		json_array_foreach(config, j, call)
		{
			if (!json_is_string(json_object_get(call, "method"))) {
				MIMO_ERR(COMP, "%s: a config entry has no \"method\"", path);
				json_decref(doc);
				finish(r, -EINVAL);
				return;
			}
			json_array_append(r->calls, call);
		}
	}
	json_decref(doc);
	replay_next(r);
}
