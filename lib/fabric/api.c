/*
 * The HTTP API, served by the agent (embedded mode) and by the gateway alike: slots (admin),
 * GSE's dispatch endpoints, mimo's native dispatch and request-reply, and the plugin cache.
 * Everything that reaches a plugin goes through api->be, so the same code serves one host in
 * process and many hosts over NATS. Routes and shapes: docs/agent.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "dest.h"
#include "api.h"
#include "bodies.h"
#include "slots.h"
#include "log.h"

#define COMP "api"

static void set_json(struct fab_http_response *r, int status, json_t *j)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	r->status = text != NULL ? status : 500;
	r->content_type = "application/json";
	mimo_buf_reset(&r->body);
	mimo_buf_append_str(&r->body, text != NULL ? text : "{\"error\":\"out of memory\"}");
	free(text);
}

static void set_error(struct fab_http_response *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(struct fab_http_response *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_json(r, status, json_pack("{s:s, s:i}", "error", msg, "code", status));
}

/*
 * An error on GSE's routes: GSE's envelope {"code", "message", "data": null} with HTTP 200.
 * GSE's SDK (internal/server/request.go) turns any other HTTP status into "request to ...
 * failed, status code: N" and never reads the body, so a caller using it could not tell a
 * wrong token from a broken proxy; with 200 it decodes the envelope and its callers check
 * resp.Code (the SDK's examples do). The code is the HTTP status mimo's /v1 routes answer
 * for the same fault (400, 401, 403, 405).
 */
static void set_gse_error(struct fab_http_response *r, int code, const char *msg)
{
	set_json(r, 200, json_pack("{s:i, s:s, s:n}", "code", code, "message", msg, "data"));
}

json_t *fab_json_content_string(const void *data, size_t len)
{
	const uint8_t *p = data;
	struct mimo_buf b = { 0 };
	json_t *s;
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n = c < 0x80		      ? 1
			   : (c >= 0xc2 && c <= 0xdf) ? 2
			   : (c >= 0xe0 && c <= 0xef) ? 3
			   : (c >= 0xf0 && c <= 0xf4) ? 4
						      : 0;
		bool ok = n > 0 && i + n <= len;

		for (size_t k = 1; ok && k < n; k++)
			ok = (p[i + k] & 0xc0) == 0x80;
		if (ok && n == 3) {
			uint32_t cp = (uint32_t)(c & 0x0f) << 12 |
				      (uint32_t)(p[i + 1] & 0x3f) << 6 | (p[i + 2] & 0x3f);

			ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
		} else if (ok && n == 4) {
			uint32_t cp = (uint32_t)(c & 0x07) << 18 |
				      (uint32_t)(p[i + 1] & 0x3f) << 12 |
				      (uint32_t)(p[i + 2] & 0x3f) << 6 | (p[i + 3] & 0x3f);

			ok = cp >= 0x10000 && cp <= 0x10ffff;
		}
		if (ok) {
			mimo_buf_append(&b, p + i, n);
			i += n;
		} else {
			mimo_buf_append(&b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	s = json_stringn(b.data != NULL ? b.data : "", b.len);
	mimo_buf_free(&b);
	return s;
}

json_t *fab_json_base64(const void *data, size_t len)
{
	char *b64 = malloc(mimo_base64_encoded_size(len));
	json_t *s;

	if (b64 == NULL)
		return NULL;
	mimo_base64_encode(data, len, b64);
	s = json_string_nocheck(b64);
	free(b64);
	return s;
}

static const char *bearer(const char *authorization)
{
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return *authorization != '\0' ? authorization : NULL;
}

static bool is_admin(struct fab_api *api, const char *authorization)
{
	const char *tok = bearer(authorization);

	return tok != NULL && fab_token_equal(tok, api->admin_token);
}

/* --- slots ---------------------------------------------------------------------------------- */

static json_t *credentials_json(const struct slot_info *si, const char *token)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s}", "slot_id", (json_int_t)si->id, "token", token,
			 "secret", si->secret, "plugin_name", si->plugin, "callback_url", si->url);
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static void handle_slots(struct fab_api *api, const char *method, const char *rest,
			 const char *authorization, const char *body, size_t len,
			 struct fab_http_response *r)
{
	char plugin[MIMO_WIRE_MAX_NAME + 1], url[FAB_URL_MAX], err[256], token[FAB_TOKEN_HEX];
	struct slot_info si;
	const char *slash;
	uint64_t id;
	int rc;

	if (!is_admin(api, authorization)) {
		set_error(r, 401, "slots need \"Authorization: Bearer <admin token>\"");
		return;
	}
	if (api->slots_read_only && strcmp(method, "GET") != 0) {
		set_error(r, 405, "this agent takes its slots from NATS; manage them at a gateway");
		return;
	}
	if (*rest == '\0') {
		if (strcmp(method, "GET") == 0) {
			set_json(r, 200, json_pack("{s:o}", "slots", slots_list_json(api->slots)));
			return;
		}
		if (strcmp(method, "POST") != 0) {
			set_error(r, 405, "use GET or POST on /v1/slots");
			return;
		}
		if (parse_slot_create(body, len, plugin, sizeof(plugin), url, sizeof(url), err,
				      sizeof(err)) != 0) {
			set_error(r, 400, "%s", err);
			return;
		}
		if (!api->allow_link_local_callbacks &&
		    mimo_dest_check_url(url, err, sizeof(err)) != 0) {
			set_error(r, 400,
				  "\"callback_url\" refused: %s; start with "
				  "--allow-link-local-callbacks to allow it",
				  err);
			return;
		}
		rc = slots_create(api->slots, plugin, url, &si, token);
		if (rc == -EEXIST) {
			set_error(r, 409, "a slot already serves plugin \"%s\"", plugin);
		} else if (rc != 0) {
			set_error(r, 500, "cannot register the slot: %s", strerror(-rc));
		} else {
			MIMO_INFO(COMP, "slot %" PRIu64 " registered: plugin %s, callback %s",
				  si.id, si.plugin, si.url);
			set_json(r, 201, credentials_json(&si, token));
		}
		return;
	}
	if (*rest != '/') {
		set_error(r, 404, "no such resource");
		return;
	}
	rest++;
	slash = strchr(rest, '/');
	if (!parse_u64(rest, slash != NULL ? (size_t)(slash - rest) : strlen(rest), &id)) {
		set_error(r, 404, "slot ids are integers");
		return;
	}
	if (slash == NULL && strcmp(method, "DELETE") == 0) {
		rc = slots_delete(api->slots, id);
		if (rc == -ENOENT)
			set_error(r, 404, "no slot %" PRIu64, id);
		else if (rc != 0)
			set_error(r, 500, "cannot delete slot %" PRIu64 ": %s", id, strerror(-rc));
		else {
			MIMO_INFO(COMP, "slot %" PRIu64 " deleted", id);
			set_json(r, 200, json_pack("{s:I}", "deleted", (json_int_t)id));
		}
		return;
	}
	if (slash == NULL && strcmp(method, "GET") == 0) {
		if (slots_get(api->slots, id, &si) != 0) {
			set_error(r, 404, "no slot %" PRIu64, id);
			return;
		}
		set_json(r, 200,
			 json_pack("{s:I, s:s, s:s, s:I}", "slot_id", (json_int_t)si.id,
				   "plugin_name", si.plugin, "callback_url", si.url, "created",
				   (json_int_t)si.created));
		return;
	}
	if (slash != NULL && strcmp(slash, "/rotate") == 0 && strcmp(method, "POST") == 0) {
		rc = slots_rotate(api->slots, id, &si, token);
		if (rc == -ENOENT)
			set_error(r, 404, "no slot %" PRIu64, id);
		else if (rc != 0)
			set_error(r, 500, "cannot rotate slot %" PRIu64 ": %s", id, strerror(-rc));
		else {
			MIMO_INFO(COMP, "slot %" PRIu64 ": token and secret rotated", id);
			set_json(r, 200, credentials_json(&si, token));
		}
		return;
	}
	set_error(r, 404, "no such resource");
}

/* --- dispatch ----------------------------------------------------------------------------------
 */

static const char *status_name(enum fab_status s)
{
	return s == FAB_DELIVERED ? "delivered" : s == FAB_QUEUED ? "queued" : "failed";
}

static bool authorize(struct fab_api *api, const struct down_msg_req *req, struct slot_info *si,
		      struct fab_http_response *r)
{
	int rc = slots_check_token(api->slots, req->slot_id, req->token, si);

	if (rc == 0)
		return true;
	if (req->gse)
		set_gse_error(r, rc == -ENOENT ? 401 : 403,
			      rc == -ENOENT ? "unknown slot_id" : "token does not match the slot");
	else
		set_error(r, rc == -ENOENT ? 401 : 403, "%s",
			  rc == -ENOENT ? "unknown slot_id" : "token does not match the slot");
	return false;
}

static void handle_dispatch(struct fab_api *api, int kind, const char *body, size_t len,
			    struct fab_http_response *r)
{
	struct down_msg_req req;
	struct slot_info si;
	char err[256];
	json_t *results, *queued = NULL;
	int rc;

	rc = kind == 0	 ? parse_gse_dispatch(body, len, &req, err, sizeof(err))
	     : kind == 1 ? parse_gse_dispatch_multi(body, len, &req, err, sizeof(err))
			 : parse_native_dispatch(body, len, &req, err, sizeof(err));
	if (rc != 0) {
		if (kind < 2)
			set_gse_error(r, 400, rc == -ENOMEM ? "out of memory" : err);
		else
			set_error(r, 400, "%s", rc == -ENOMEM ? "out of memory" : err);
		return;
	}
	if (!authorize(api, &req, &si, r)) {
		down_msg_req_free(&req);
		return;
	}
	results = json_array();
	if (req.gse)
		queued = json_array();
	for (size_t i = 0; i < req.n_agents; i++) {
		struct fab_result res = { 0 };

		api->be.dispatch(api->be.ctx, req.agent_ids[i], &si, req.message_id,
				 req.contents[i], req.content_lens[i], req.ttl_ms, &res);
		if (req.gse) {
			/* GSE lists only the agents that failed; mimo adds those queued. */
			if (res.status == FAB_FAILED)
				json_array_append_new(results,
						      json_pack("{s:s, s:i, s:s}", "bk_agent_id",
								req.agent_ids[i], "code", res.code,
								"message", res.reason));
			else if (res.status == FAB_QUEUED)
				json_array_append_new(queued, json_string(req.agent_ids[i]));
		} else {
			json_array_append_new(
				results,
				json_pack("{s:s, s:s, s:i, s:s}", "agent_id", req.agent_ids[i],
					  "status", status_name(res.status), "code",
					  res.status == FAB_FAILED ? res.code : 0, "message",
					  res.status == FAB_FAILED ? res.reason : "OK"));
		}
		free(res.reply);
	}
	if (req.gse)
		set_json(r, 200,
			 json_pack("{s:i, s:s, s:{s:o, s:o}}", "code", 0, "message", "OK", "data",
				   "results", results, "queued", queued));
	else
		set_json(r, 200,
			 json_pack("{s:s, s:o}", "message_id", req.message_id, "results", results));
	down_msg_req_free(&req);
}

static json_t *reply_json(const char *agent_id, const struct fab_result *res)
{
	json_t *o = json_pack("{s:s}", "agent_id", agent_id);

	if (res->status == FAB_FAILED) {
		json_object_set_new(
			o, "status",
			json_string(res->code == FAB_ERR_TIMEOUT ? "timeout" : "failed"));
		json_object_set_new(o, "code", json_integer(res->code));
		json_object_set_new(o, "message", json_string(res->reason));
	} else {
		json_object_set_new(o, "status", json_string("ok"));
		json_object_set_new(o, "content_base64",
				    fab_json_base64(res->reply, res->reply_len));
		json_object_set_new(o, "content",
				    fab_json_content_string(res->reply, res->reply_len));
	}
	return o;
}

static void handle_request(struct fab_api *api, const char *body, size_t len,
			   struct fab_http_response *r)
{
	struct down_msg_req req;
	struct fab_result *res;
	struct slot_info si;
	bool single;
	char err[256];
	int rc;

	rc = parse_request(body, len, &req, err, sizeof(err));
	if (rc != 0) {
		set_error(r, 400, "%s", rc == -ENOMEM ? "out of memory" : err);
		return;
	}
	/* {"agent_id": x} asks for one reply, answered flat with an HTTP status of its own. */
	single = req.single;
	if (!authorize(api, &req, &si, r)) {
		down_msg_req_free(&req);
		return;
	}
	res = calloc(req.n_agents, sizeof(*res));
	if (res == NULL) {
		set_error(r, 500, "out of memory");
		down_msg_req_free(&req);
		return;
	}
	api->be.request(api->be.ctx, (const char *const *)req.agent_ids, req.n_agents, &si,
			req.message_id, (const uint8_t *const *)req.contents, req.content_lens,
			req.timeout_ms, res);
	if (single) {
		json_t *o = reply_json(req.agent_ids[0], &res[0]);

		json_object_set_new(o, "message_id", json_string(req.message_id));
		set_json(r, res[0].status == FAB_FAILED ? res[0].code : 200, o);
	} else {
		json_t *a = json_array();

		for (size_t i = 0; i < req.n_agents; i++)
			json_array_append_new(a, reply_json(req.agent_ids[i], &res[i]));
		set_json(r, 200,
			 json_pack("{s:s, s:o}", "message_id", req.message_id, "results", a));
	}
	for (size_t i = 0; i < req.n_agents; i++)
		free(res[i].reply);
	free(res);
	down_msg_req_free(&req);
}

/* --- cache ----------------------------------------------------------------------------------- */

static bool query_u64(const char *query, const char *name, uint64_t *out, bool *bad)
{
	size_t n = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		size_t seg = amp != NULL ? (size_t)(amp - p) : strlen(p);

		if (seg > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			if (!parse_u64(p + n + 1, seg - n - 1, out))
				*bad = true;
			return true;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return false;
}

/* /v1/agents/{id}/plugins/{name}/cache/{key}[/inval] and /v1/agents/{id}/plugins/{name}/poll */
static void handle_agents(struct fab_api *api, const char *method, const char *rest,
			  const char *query, const char *authorization, const char *body,
			  size_t len, struct fab_http_response *r)
{
	char agent[MIMO_WIRE_MAX_AGENT_ID + 1], plugin[MIMO_WIRE_MAX_NAME + 1];
	char key[MIMO_WIRE_MAX_KEY + 1], reason[256];
	struct fab_cache_req req = { 0 };
	struct mimo_buf data = { 0 };
	const char *seg[6] = { 0 }, *p = rest;
	size_t seglen[6] = { 0 }, nseg = 0, n;
	struct slot_info si;
	bool bad = false;
	int status;

	while (*p == '/' && nseg < 6) {
		const char *e = strchr(p + 1, '/');

		seg[nseg] = p + 1;
		seglen[nseg] = e != NULL ? (size_t)(e - p - 1) : strlen(p + 1);
		nseg++;
		p = e != NULL ? e : p + strlen(p);
	}
	if (*p != '\0' || nseg < 3 || strncmp(seg[1], "plugins", seglen[1]) != 0 ||
	    seglen[1] != 7 || fab_url_decode(seg[0], seglen[0], agent, sizeof(agent), &n) != 0 ||
	    !fab_agent_id_valid(agent) ||
	    fab_url_decode(seg[2], seglen[2], plugin, sizeof(plugin), &n) != 0 ||
	    !mimo_wire_name_valid(plugin, n)) {
		set_error(r, 404, "no such resource (see docs/agent.md for the cache routes)");
		return;
	}
	if (nseg == 4 && seglen[3] == 4 && strncmp(seg[3], "poll", 4) == 0 &&
	    strcmp(method, "POST") == 0) {
		req.op = FAB_CACHE_POLL;
		query_u64(query, "kh", &req.size, &bad);
	} else if ((nseg == 5 || nseg == 6) && seglen[3] == 5 && strncmp(seg[3], "cache", 5) == 0) {
		if (fab_url_decode(seg[4], seglen[4], key, sizeof(key), &n) != 0 ||
		    !mimo_wire_key_valid(key, n) || strlen(key) != n) {
			set_error(r, 400, "cache keys are 1-255 bytes without NUL");
			return;
		}
		req.key = key;
		if (nseg == 6) {
			if (seglen[5] != 5 || strncmp(seg[5], "inval", 5) != 0 ||
			    strcmp(method, "POST") != 0) {
				set_error(r, 404, "no such resource");
				return;
			}
			req.op = FAB_CACHE_INVAL;
		} else if (strcmp(method, "PUT") == 0) {
			req.op = FAB_CACHE_STORE;
		} else if (strcmp(method, "GET") == 0) {
			req.op = FAB_CACHE_RETRIEVE;
		} else if (strcmp(method, "DELETE") == 0) {
			req.op = FAB_CACHE_DELETE;
		} else {
			set_error(r, 405, "use PUT, GET or DELETE on a cache entry");
			return;
		}
		query_u64(query, "offset", &req.offset, &bad);
		query_u64(query, "size", &req.size, &bad);
	} else {
		set_error(r, 404, "no such resource");
		return;
	}
	if (bad) {
		set_error(r, 400, "offset, size and kh must be unsigned integers");
		return;
	}
	/* The plugin's slot token, or the admin token. */
	if (!is_admin(api, authorization) &&
	    slots_check_plugin_token(api->slots, plugin, bearer(authorization), &si) != 0) {
		set_error(r, bearer(authorization) == NULL ? 401 : 403,
			  "cache routes need \"Authorization: Bearer <token>\": the token of the "
			  "slot of plugin \"%s\", or the admin token",
			  plugin);
		return;
	}
	if (req.op == FAB_CACHE_STORE && len > FAB_MAX_CONTENT) {
		set_error(r, 413, "a STORE carries at most %u bytes", FAB_MAX_CONTENT);
		return;
	}
	if (req.op == FAB_CACHE_STORE && req.offset > UINT64_MAX - len) {
		set_error(r, 400, "offset + length overflows");
		return;
	}
	req.plugin = plugin;
	req.data = body;
	req.len = len;
	req.timeout_ms = 5000;
	reason[0] = '\0';
	status = api->be.cache(api->be.ctx, agent, &req, &data, reason, sizeof(reason));
	if (status >= 300) {
		set_error(r, status, "%s", reason[0] ? reason : "failed");
	} else if (req.op == FAB_CACHE_RETRIEVE) {
		r->status = 200;
		r->content_type = "application/octet-stream";
		mimo_buf_reset(&r->body);
		mimo_buf_append(&r->body, data.data != NULL ? data.data : "", data.len);
	} else {
		set_json(r, 200, json_pack("{s:b}", "ok", 1));
	}
	mimo_buf_free(&data);
}

/* --- routing ------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool fab_api_may_wait(const struct fab_api *api, const char *method, const char *url)
{
	if (strcmp(url, "/v1/slots") == 0 || strncmp(url, "/v1/slots/", 10) == 0)
		return strcmp(method, "GET") != 0; /* a change is persisted: fsync, or NATS KV */
	if (api->slots_read_only)
		return false; /* only health and the slots are served */
	if (strcmp(url, "/v1/request") == 0 || strncmp(url, "/v1/agents/", 10) == 0)
		return true; /* waits for the plugin's answer */
	if (strcmp(url, "/v1/dispatch") == 0 ||
	    ends_with(url, "/api/v2/cluster/dispatch_message") ||
	    ends_with(url, "/api/v2/cluster/dispatch_multi_message"))
		return api->backend_waits;
	return false;
}

void fab_api_handle(struct fab_api *api, const char *method, const char *url, const char *query,
		    const char *authorization, const char *body, size_t body_len,
		    struct fab_http_response *r)
{
	r->status = 500;
	if (body == NULL)
		body = "";
	if (strcmp(url, "/v1/health") == 0 && strcmp(method, "GET") == 0) {
		set_json(r, 200, api->be.health(api->be.ctx));
		return;
	}
	if (strcmp(url, "/v1/slots") == 0 || strncmp(url, "/v1/slots/", 10) == 0) {
		handle_slots(api, method, url + 9, authorization, body, body_len, r);
		return;
	}
	if (api->slots_read_only) {
		set_error(r, 404, "this agent is reached through a gateway (it runs with --nats)");
		return;
	}
	/* GSE's server API lives under an API gateway's base path: match the tail. */
	if (ends_with(url, "/api/v2/cluster/dispatch_message")) {
		if (strcmp(method, "POST") != 0)
			set_gse_error(r, 405, "use POST");
		else
			handle_dispatch(api, 0, body, body_len, r);
		return;
	}
	if (ends_with(url, "/api/v2/cluster/dispatch_multi_message")) {
		if (strcmp(method, "POST") != 0)
			set_gse_error(r, 405, "use POST");
		else
			handle_dispatch(api, 1, body, body_len, r);
		return;
	}
	if (strcmp(url, "/v1/dispatch") == 0) {
		if (strcmp(method, "POST") != 0)
			set_error(r, 405, "use POST");
		else
			handle_dispatch(api, 2, body, body_len, r);
		return;
	}
	if (strcmp(url, "/v1/request") == 0) {
		if (strcmp(method, "POST") != 0)
			set_error(r, 405, "use POST");
		else
			handle_request(api, body, body_len, r);
		return;
	}
	if (strncmp(url, "/v1/agents/", 10) == 0) {
		handle_agents(api, method, url + 10, query, authorization, body, body_len, r);
		return;
	}
	set_error(r, 404, "no such resource: %.200s", url);
}
