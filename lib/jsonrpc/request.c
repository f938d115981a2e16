/*
 * From one parsed JSON value to handler calls, and from answers back to the sink: request
 * validation (SPDK's rules), batches, notifications, and completion from any thread.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compiler.h"
#include "jsonrpc_internal.h"
#include "log.h"

#define COMP "rpc"

/* {"jsonrpc":"2.0","id":<id>,"<key>":<member>} from the member's JSON text. */
static char *response_text(const json_t *id, const char *key, const char *member, size_t len)
{
	static const char fmt[] = "{\"jsonrpc\":\"2.0\",\"id\":%s,\"%s\":";
	char *id_text = json_dumps(id != NULL ? id : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
	char *out = NULL;
	int head;

	if (id_text == NULL)
		return NULL;
	head = snprintf(NULL, 0, fmt, id_text, key);
	if (head > 0)
		out = malloc((size_t)head + len + 2); /* the member, '}' and NUL */
	if (out != NULL) {
		snprintf(out, (size_t)head + 1, fmt, id_text, key);
		memcpy(out + head, member, len);
		out[(size_t)head + len] = '}';
		out[(size_t)head + len + 1] = '\0';
	}
	free(id_text);
	return out;
}

char *jsonrpc_error_response(const json_t *id, int code, const char *message)
{
	json_t *err = json_pack("{s:i, s:s}", "code", code, "message", message);
	char *text = json_dumps(err, JSON_COMPACT), *out = NULL;

	json_decref(err);
	if (text != NULL)
		out = response_text(id, "error", text, strlen(text));
	free(text);
	return out;
}

static void deliver(struct rpc_sink *sink, char *text)
{
	if (text != NULL)
		sink->deliver(sink, text, strlen(text));
}

static void batch_finish(struct rpc_batch *b)
{
	struct mimo_buf out = { 0 };
	size_t answered = 0;

	mimo_buf_append(&out, "[", 1);
	for (size_t i = 0; i < b->total; i++) {
		if (b->slots[i] == NULL)
			continue;
		if (answered++ > 0)
			mimo_buf_append(&out, ",", 1);
		mimo_buf_append_str(&out, b->slots[i]);
		free(b->slots[i]);
	}
	mimo_buf_append(&out, "]", 1);
	/* A batch of notifications only gets no answer at all (JSON-RPC 2.0). */
	if (answered > 0 && out.data != NULL)
		b->sink->deliver(b->sink, out.data, out.len);
	else
		mimo_buf_free(&out);
	rpc_sink_put(b->sink);
	free(b->slots);
	free(b);
}

/* A response (or NULL for a notification) for element index of a batch, or for a single
 * request. On the sink's reactor. */
static void route(struct rpc_sink *sink, struct rpc_batch *batch, size_t index, char *resp)
{
	if (batch != NULL) {
		batch->slots[index] = resp;
		if (--batch->pending == 0)
			batch_finish(batch);
		return;
	}
	deliver(sink, resp);
}

static void request_free(struct mimo_jsonrpc_request *req)
{
	json_decref(req->id);
	json_decref(req->params);
	free(req->method);
	free(req);
}

/* On the sink's reactor. */
static void finish(void *arg)
{
	struct mimo_jsonrpc_request *req = arg;
	struct rpc_sink *sink = req->sink;

	route(sink, req->batch, req->index, req->response);
	req->response = NULL;
	request_free(req);
	rpc_sink_put(sink);
}

/* Answer with the text of the result or error member (member_len bytes at member). */
static void complete_text(struct mimo_jsonrpc_request *req, const char *key, const char *member,
			  size_t member_len)
{
	if (req->answered) {
		MIMO_ERR(COMP, "%s answered twice; second answer dropped", req->method);
		return;
	}
	req->answered = true;
	if (req->m != NULL && strcmp(key, "error") == 0)
		jsonrpc_count_error(req->m);
	/* A notification: nobody hears the answer. */
	if (req->id != NULL)
		req->response = response_text(req->id, key, member, member_len);
	if (mimo_reactor_current() == req->sink->reactor) {
		finish(req);
		return;
	}
	if (mimo_reactor_post(req->sink->reactor, finish, req) != 0)
		MIMO_ERR(COMP, "out of memory: the answer to %s is lost", req->method);
}

static void complete(struct mimo_jsonrpc_request *req, json_t *member_value, bool is_error)
{
	char *text = json_dumps(member_value, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(member_value);
	if (text == NULL) {
		static const char oom[] = "{\"code\":-32603,\"message\":\"Out of memory\"}";

		complete_text(req, "error", oom, sizeof(oom) - 1);
		return;
	}
	complete_text(req, is_error ? "error" : "result", text, strlen(text));
	free(text);
}

MIMO_EXPORT void mimo_jsonrpc_send_result_text(struct mimo_jsonrpc_request *req, char *text,
					       size_t len)
{
	complete_text(req, "result", text, len);
	free(text);
}

MIMO_EXPORT void mimo_jsonrpc_send_result(struct mimo_jsonrpc_request *req, json_t *result)
{
	complete(req, result != NULL ? result : json_null(), false);
}

MIMO_EXPORT void mimo_jsonrpc_send_bool(struct mimo_jsonrpc_request *req, bool value)
{
	complete(req, json_boolean(value), false);
}

MIMO_EXPORT void mimo_jsonrpc_send_error(struct mimo_jsonrpc_request *req, int code,
					 const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	complete(req, json_pack("{s:i, s:s}", "code", code, "message", msg), true);
}

MIMO_EXPORT void mimo_jsonrpc_send_errno(struct mimo_jsonrpc_request *req, int rc)
{
	mimo_jsonrpc_send_error(req, rc, "%s", strerror(rc < 0 ? -rc : rc));
}

MIMO_EXPORT const char *mimo_jsonrpc_request_method(const struct mimo_jsonrpc_request *req)
{
	return req->method;
}

MIMO_EXPORT bool mimo_rpc_decode(struct mimo_jsonrpc_request *req, const json_t *params,
				 const struct mimo_json_decoder *decoders, size_t count, void *out)
{
	char err[256];

	if (mimo_json_decode_object(params, decoders, count, out, err, sizeof(err)) == 0)
		return true;
	mimo_json_decode_free(decoders, count, out);
	mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS, "%s: %s", req->method, err);
	return false;
}

MIMO_EXPORT bool mimo_rpc_no_params(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (params == NULL || (json_is_object(params) && json_object_size(params) == 0) ||
	    (json_is_array(params) && json_array_size(params) == 0))
		return true;
	mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
				"%s method requires no parameters", req->method);
	return false;
}

MIMO_EXPORT bool mimo_rpc_names_mask(struct mimo_jsonrpc_request *req, const char *param,
				     const json_t *names, int (*id_of)(const char *),
				     const char *choices, uint32_t *mask)
{
	uint32_t m = 0;
	size_t i;
	json_t *v;

	if (names == NULL)
		return true;
	json_array_foreach(names, i, v)
	{
		int id = id_of(json_string_value(v));

		if (id < 0 || id > 31) {
			mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
						"%s: parameter \"%s\": unknown '%s' (%s)",
						req->method, param, json_string_value(v), choices);
			return false;
		}
		m |= 1u << id;
	}
	*mask = m;
	return true;
}

/* Validate one request object. Returns NULL when valid; otherwise the error message, with
 * *id set to the request's id when it could be read. */
static const char *validate(json_t *obj, json_t **id, const char **method, json_t **params)
{
	const char *key;
	json_t *v;

	*id = NULL;
	*method = NULL;
	*params = NULL;
	if (!json_is_object(obj))
		return "Invalid request";
	v = json_object_get(obj, "id");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v) && !json_is_number(v))
			return "Invalid request";
		*id = v;
	}
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "jsonrpc") == 0) {
			if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
				return "Invalid request";
		} else if (strcmp(key, "method") == 0) {
			if (!json_is_string(v))
				return "Invalid request";
			*method = json_string_value(v);
		} else if (strcmp(key, "params") == 0) {
			if (!json_is_object(v) && !json_is_array(v) && !json_is_null(v))
				return "Invalid request";
			*params = json_is_null(v) ? NULL : v;
		} else if (strcmp(key, "id") != 0) {
			return "Invalid request";
		}
	}
	if (*method == NULL)
		return "Invalid request";
	return NULL;
}

static void handle_single(struct rpc_sink *sink, json_t *obj, struct rpc_batch *batch, size_t idx)
{
	const struct rpc_method *m;
	struct mimo_jsonrpc_request *req;
	const char *method, *err, *why;
	json_t *id, *params;

	err = validate(obj, &id, &method, &params);
	if (err != NULL) {
		route(sink, batch, idx,
		      jsonrpc_error_response(id, MIMO_JSONRPC_ERROR_INVALID_REQUEST, err));
		return;
	}
	m = jsonrpc_find_method(method);
	if (m == NULL) {
		jsonrpc_count_unknown();
		route(sink, batch, idx,
		      id != NULL ? jsonrpc_error_response(id, MIMO_JSONRPC_ERROR_METHOD_NOT_FOUND,
							  "Method not found")
				 : NULL);
		return;
	}
	if (!jsonrpc_method_allowed(m, mimo_rpc_get_state(), &why)) {
		jsonrpc_count_refused(m);
		route(sink, batch, idx,
		      id != NULL ? jsonrpc_error_response(id, MIMO_JSONRPC_ERROR_INVALID_STATE, why)
				 : NULL);
		return;
	}
	req = calloc(1, sizeof(*req));
	if (req == NULL || (req->method = strdup(method)) == NULL) {
		free(req);
		route(sink, batch, idx,
		      jsonrpc_error_response(id, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					     "Out of memory"));
		return;
	}
	req->sink = sink;
	req->id = json_incref(id);
	req->params = json_incref(params);
	req->batch = batch;
	req->index = idx;
	rpc_sink_get(sink);
	jsonrpc_invoke(m, req);
}

void jsonrpc_handle_value(struct rpc_sink *sink, json_t *value)
{
	struct rpc_batch *b;
	size_t n;

	if (!json_is_array(value)) {
		handle_single(sink, value, NULL, 0);
		return;
	}
	n = json_array_size(value);
	if (n == 0) {
		deliver(sink, jsonrpc_error_response(NULL, MIMO_JSONRPC_ERROR_INVALID_REQUEST,
						     "Invalid request"));
		return;
	}
	b = calloc(1, sizeof(*b));
	if (b != NULL)
		b->slots = calloc(n, sizeof(*b->slots));
	if (b == NULL || b->slots == NULL) {
		free(b);
		deliver(sink, jsonrpc_error_response(NULL, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
						     "Out of memory"));
		return;
	}
	b->sink = sink;
	b->total = n;
	/* One extra hold while the elements are dispatched, so that an element answered at
	 * once cannot finish the batch before the others have started. */
	b->pending = n + 1;
	rpc_sink_get(sink);
	for (size_t i = 0; i < n; i++)
		handle_single(sink, json_array_get(value, i), b, i);
	if (--b->pending == 0)
		batch_finish(b);
}

/* --- local calls -------------------------------------------------------------------------- */

struct local_sink {
	struct rpc_sink sink;
	mimo_jsonrpc_local_cb cb;
	void *arg;
	bool delivered;
};

static void local_deliver(struct rpc_sink *s, char *text, size_t len)
{
	struct local_sink *ls = (struct local_sink *)s;

	/* Local callers want a JSON value; they are few (configuration replay, the agent). */
	ls->delivered = true;
	ls->cb(ls->arg, json_loadb(text, len, JSON_DECODE_ANY, NULL));
	free(text);
}

static void local_release(struct rpc_sink *s)
{
	struct local_sink *ls = (struct local_sink *)s;

	/* A notification (or a batch of them) is answered with NULL once it has run. */
	if (!ls->delivered)
		ls->cb(ls->arg, NULL);
	free(ls);
}

MIMO_EXPORT int mimo_jsonrpc_call_local(json_t *request, mimo_jsonrpc_local_cb cb, void *arg)
{
	struct local_sink *ls;

	if (mimo_reactor_current() == NULL)
		return -EPERM;
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return -ENOMEM;
	ls->sink.reactor = mimo_reactor_current();
	ls->sink.refs = 1;
	ls->sink.deliver = local_deliver;
	ls->sink.release = local_release;
	ls->cb = cb;
	ls->arg = arg;
	jsonrpc_handle_value(&ls->sink, request);
	rpc_sink_put(&ls->sink);
	return 0;
}
