/*
 * Parsers of every body the agent and the gateway accept: the HTTP API's JSON and the JSON in
 * GSE plugin frames. Pure (no I/O, no global state) so a fuzzer drives them directly. GSE's
 * bodies are read leniently (unknown keys ignored: GSE's clients send their own extras);
 * mimo's native bodies strictly (an unknown key is a typo to report, not to ignore).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "bodies.h"
#include "slots.h"
#include "uuid.h"

#define MAX_DEPTH 16

/*
 * Bodies are read with JSON_ALLOW_NUL: content is bytes, and GSE's SDK sends a zero byte as
 * "\u0000" (Go's encoding/json). Every string used as a C string (tokens, ids, URLs, keys)
 * must then hold no NUL, or it would be read shorter than it is: cstr() checks that.
 */
static bool cstr(const json_t *s)
{
	return json_is_string(s) && strlen(json_string_value(s)) == json_string_length(s);
}

static int fail(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void down_msg_req_free(struct down_msg_req *r)
{
	if (r == NULL)
		return;
	free(r->token);
	free(r->message_id);
	for (size_t i = 0; i < r->n_agents; i++)
		free(r->agent_ids != NULL ? r->agent_ids[i] : NULL);
	if (r->contents != NULL) {
		/* One shared buffer, or one per agent. */
		if (r->content_lens != NULL && r->n_agents > 1 && r->contents[0] == r->contents[1])
			free(r->contents[0]);
		else
			for (size_t i = 0; i < r->n_agents; i++)
				free(r->contents[i]);
	}
	free(r->agent_ids);
	free(r->contents);
	free(r->content_lens);
	memset(r, 0, sizeof(*r));
}

bool fab_agent_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MIMO_WIRE_MAX_AGENT_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

bool fab_url_valid(const char *url)
{
	size_t n = strlen(url);

	if (n == 0 || n >= FAB_URL_MAX)
		return false;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return false;
	}
	return url[strncmp(url, "https://", 8) == 0 ? 8 : 7] != '\0';
}

static json_t *load_object(const char *body, size_t len, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *j;

	if (len == 0) {
		fail(err, err_len, "empty body: a JSON object is required");
		return NULL;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (j == NULL) {
		fail(err, err_len, "body is not JSON: %s (at byte %d)", jerr.text, jerr.position);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fail(err, err_len, "body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Keys of a strict body must all be known. */
static int check_keys(json_t *j, const char *const *known, char *err, size_t err_len)
{
	const char *k;
	size_t klen;
	json_t *v;

	json_object_keylen_foreach(j, k, klen, v)
	{
		bool ok = strlen(k) == klen;

		if (!ok)
			return fail(err, err_len, "a key holds a zero byte");
		ok = false;
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(known[i], k) == 0;
		if (!ok)
			return fail(err, err_len, "unknown key \"%.64s\"", k);
	}
	return 0;
}

static int get_slot_token(json_t *j, struct down_msg_req *r, char *err, size_t err_len)
{
	json_t *sid = json_object_get(j, "slot_id"), *tok = json_object_get(j, "token");

	if (!json_is_integer(sid) || json_integer_value(sid) <= 0)
		return fail(err, err_len, "\"slot_id\" must be a positive integer");
	if (!cstr(tok) || json_string_length(tok) == 0 || json_string_length(tok) > 256)
		return fail(err, err_len,
			    "\"token\" must be a non-empty string without zero bytes");
	r->slot_id = (uint64_t)json_integer_value(sid);
	r->token = strdup(json_string_value(tok));
	return r->token != NULL ? 0 : -ENOMEM;
}

static int get_message_id(json_t *j, struct down_msg_req *r, char *err, size_t err_len)
{
	json_t *m = json_object_get(j, "message_id");

	if (!json_is_string(m) ||
	    !mimo_wire_msg_id_valid(json_string_value(m), json_string_length(m)))
		return fail(err, err_len,
			    "\"message_id\" must be 1-%d bytes of UTF-8 without "
			    "control characters",
			    MIMO_WIRE_MAX_MSG_ID);
	r->message_id = strdup(json_string_value(m));
	return r->message_id != NULL ? 0 : -ENOMEM;
}

static int alloc_agents(struct down_msg_req *r, size_t n)
{
	r->agent_ids = calloc(n, sizeof(char *));
	r->contents = calloc(n, sizeof(uint8_t *));
	r->content_lens = calloc(n, sizeof(size_t));
	if (r->agent_ids == NULL || r->contents == NULL || r->content_lens == NULL)
		return -ENOMEM;
	r->n_agents = n;
	return 0;
}

static int get_agent_list(json_t *a, const char *key, struct down_msg_req *r, char *err,
			  size_t err_len)
{
	size_t i, n;
	json_t *v;
	int rc;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return fail(err, err_len, "\"%s\" must be a non-empty array of agent ids", key);
	n = json_array_size(a);
	if (n > FAB_MAX_AGENTS)
		return fail(err, err_len, "\"%s\" lists more than %d agents", key, FAB_MAX_AGENTS);
	rc = alloc_agents(r, n);
	if (rc != 0)
		return rc;
	json_array_foreach(a, i, v)
	{
		if (!cstr(v) || !fab_agent_id_valid(json_string_value(v)))
			return fail(err, err_len,
				    "\"%s\"[%zu] is not an agent id (1-128 of [A-Za-z0-9_.:-])",
				    key, i);
		for (size_t k = 0; k < i; k++) {
			if (strcmp(r->agent_ids[k], json_string_value(v)) == 0)
				return fail(err, err_len, "agent \"%s\" is listed twice",
					    json_string_value(v));
		}
		r->agent_ids[i] = strdup(json_string_value(v));
		if (r->agent_ids[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* One content for every agent: the same buffer in each slot. */
static int share_content(struct down_msg_req *r, uint8_t *data, size_t len)
{
	if (len > FAB_MAX_CONTENT) {
		free(data);
		return -EMSGSIZE;
	}
	for (size_t i = 0; i < r->n_agents; i++) {
		r->contents[i] = data;
		r->content_lens[i] = len;
	}
	return 0;
}

static int copy_string(json_t *s, uint8_t **out, size_t *len)
{
	*len = json_string_length(s);
	*out = malloc(*len + 1);
	if (*out == NULL)
		return -ENOMEM;
	memcpy(*out, json_string_value(s), *len);
	return 0;
}

static int decode_b64(json_t *s, uint8_t **out, size_t *len, char *err, size_t err_len)
{
	size_t n = json_string_length(s);
	long dn;

	if (n > FAB_MAX_BODY)
		return -EMSGSIZE;
	*out = malloc(n / 4 * 3 + 3);
	if (*out == NULL)
		return -ENOMEM;
	dn = mimo_base64_decode(json_string_value(s), n, *out);
	if (dn < 0) {
		free(*out);
		*out = NULL;
		return fail(err, err_len, "\"content_base64\" is not valid base64");
	}
	*len = (size_t)dn;
	return 0;
}

/* "content" (a string, its UTF-8 bytes) or "content_base64" (any bytes), exactly one. */
static int get_content(json_t *j, struct down_msg_req *r, char *err, size_t err_len)
{
	json_t *c = json_object_get(j, "content"), *b = json_object_get(j, "content_base64");
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if ((c != NULL) == (b != NULL))
		return fail(err, err_len, "give exactly one of \"content\" and \"content_base64\"");
	if (c != NULL) {
		if (!json_is_string(c))
			return fail(err, err_len, "\"content\" must be a string");
		rc = copy_string(c, &data, &len);
	} else {
		if (!json_is_string(b))
			return fail(err, err_len, "\"content_base64\" must be a string");
		rc = decode_b64(b, &data, &len, err, err_len);
	}
	if (rc != 0)
		return rc;
	rc = share_content(r, data, len);
	if (rc == -EMSGSIZE)
		return fail(err, err_len, "content is larger than %u bytes", FAB_MAX_CONTENT);
	return rc;
}

static int get_u32(json_t *j, const char *key, uint32_t max, uint32_t def, uint32_t *out, char *err,
		   size_t err_len)
{
	json_t *v = json_object_get(j, key);

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return fail(err, err_len, "\"%s\" must be an integer from 0 to %u", key, max);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int finish(json_t *j, int rc, struct down_msg_req *r)
{
	json_decref(j);
	if (rc != 0)
		down_msg_req_free(r);
	return rc == -ENOMEM ? -ENOMEM : rc != 0 ? -EINVAL : 0;
}

int parse_gse_dispatch(const char *body, size_t len, struct down_msg_req *r, char *err,
		       size_t err_len)
{
	json_t *j = load_object(body, len, err, err_len), *c;
	int rc;

	memset(r, 0, sizeof(*r));
	if (j == NULL)
		return -EINVAL;
	r->gse = true;
	r->ttl_ms = FAB_DEFAULT_DOWN_TTL;
	rc = get_slot_token(j, r, err, err_len);
	if (rc == 0)
		rc = get_message_id(j, r, err, err_len);
	if (rc == 0)
		rc = get_agent_list(json_object_get(j, "agent_id_list"), "agent_id_list", r, err,
				    err_len);
	if (rc == 0) {
		c = json_object_get(j, "content");
		if (!json_is_string(c))
			rc = fail(err, err_len, "\"content\" must be a string");
		else
			rc = get_content(j, r, err, err_len);
	}
	return finish(j, rc, r);
}

int parse_gse_dispatch_multi(const char *body, size_t len, struct down_msg_req *r, char *err,
			     size_t err_len)
{
	json_t *j = load_object(body, len, err, err_len), *list, *front, *back, *v;
	size_t i, flen = 0, blen = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	if (j == NULL)
		return -EINVAL;
	r->gse = true;
	r->ttl_ms = FAB_DEFAULT_DOWN_TTL;
	rc = get_slot_token(j, r, err, err_len);
	if (rc == 0)
		rc = get_message_id(j, r, err, err_len);
	list = json_object_get(j, "agent_message_list");
	front = json_object_get(j, "front_content");
	back = json_object_get(j, "back_content");
	if (rc == 0 && (!json_is_array(list) || json_array_size(list) == 0 ||
			json_array_size(list) > FAB_MAX_AGENTS))
		rc = fail(err, err_len,
			  "\"agent_message_list\" must be a non-empty array of "
			  "{bk_agent_id, content}");
	if (rc == 0 &&
	    ((front != NULL && !json_is_string(front)) || (back != NULL && !json_is_string(back))))
		rc = fail(err, err_len, "\"front_content\" and \"back_content\" must be strings");
	if (rc == 0) {
		flen = front != NULL ? json_string_length(front) : 0;
		blen = back != NULL ? json_string_length(back) : 0;
		rc = alloc_agents(r, json_array_size(list));
	}
	/* GSE sends each agent front_content + its content + back_content. */
	json_array_foreach(list, i, v)
	{
		json_t *id = json_object_get(v, "bk_agent_id"), *c = json_object_get(v, "content");
		size_t clen;

		if (rc != 0)
			break;
		if (!json_is_object(v) || !cstr(id) || !fab_agent_id_valid(json_string_value(id)) ||
		    !json_is_string(c)) {
			rc = fail(err, err_len,
				  "\"agent_message_list\"[%zu] must be {\"bk_agent_id\": "
				  "an agent id, \"content\": a string}",
				  i);
			break;
		}
		for (size_t k = 0; k < i && rc == 0; k++) {
			if (strcmp(r->agent_ids[k], json_string_value(id)) == 0)
				rc = fail(err, err_len, "agent \"%s\" is listed twice",
					  json_string_value(id));
		}
		if (rc != 0)
			break;
		clen = json_string_length(c);
		if (flen + clen + blen > FAB_MAX_CONTENT) {
			rc = fail(err, err_len, "content for agent %zu is larger than %u bytes", i,
				  FAB_MAX_CONTENT);
			break;
		}
		r->agent_ids[i] = strdup(json_string_value(id));
		r->contents[i] = malloc(flen + clen + blen + 1);
		if (r->agent_ids[i] == NULL || r->contents[i] == NULL) {
			rc = -ENOMEM;
			break;
		}
		if (flen > 0)
			memcpy(r->contents[i], json_string_value(front), flen);
		memcpy(r->contents[i] + flen, json_string_value(c), clen);
		if (blen > 0)
			memcpy(r->contents[i] + flen + clen, json_string_value(back), blen);
		r->content_lens[i] = flen + clen + blen;
	}
	return finish(j, rc, r);
}

int parse_native_dispatch(const char *body, size_t len, struct down_msg_req *r, char *err,
			  size_t err_len)
{
	static const char *const known[] = { "slot_id",	       "token",	  "message_id", "agent_ids",
					     "content_base64", "content", "ttl_ms",	NULL };
	json_t *j = load_object(body, len, err, err_len);
	int rc;

	memset(r, 0, sizeof(*r));
	if (j == NULL)
		return -EINVAL;
	rc = check_keys(j, known, err, err_len);
	if (rc == 0)
		rc = get_slot_token(j, r, err, err_len);
	if (rc == 0)
		rc = get_message_id(j, r, err, err_len);
	if (rc == 0)
		rc = get_agent_list(json_object_get(j, "agent_ids"), "agent_ids", r, err, err_len);
	if (rc == 0)
		rc = get_content(j, r, err, err_len);
	if (rc == 0)
		rc = get_u32(j, "ttl_ms", FAB_MAX_TTL_MS, FAB_DEFAULT_DOWN_TTL, &r->ttl_ms, err,
			     err_len);
	return finish(j, rc, r);
}

int parse_request(const char *body, size_t len, struct down_msg_req *r, char *err, size_t err_len)
{
	static const char *const known[] = { "slot_id",	  "token",	"message_id",
					     "agent_ids", "agent_id",	"content_base64",
					     "content",	  "timeout_ms", NULL };
	json_t *j = load_object(body, len, err, err_len), *one;
	int rc;

	memset(r, 0, sizeof(*r));
	if (j == NULL)
		return -EINVAL;
	rc = check_keys(j, known, err, err_len);
	if (rc == 0)
		rc = get_slot_token(j, r, err, err_len);
	if (rc == 0)
		rc = get_message_id(j, r, err, err_len);
	one = json_object_get(j, "agent_id");
	if (rc == 0 && one != NULL && json_object_get(j, "agent_ids") != NULL)
		rc = fail(err, err_len, "give \"agent_id\" or \"agent_ids\", not both");
	if (rc == 0 && one != NULL) {
		if (!cstr(one) || !fab_agent_id_valid(json_string_value(one))) {
			rc = fail(err, err_len, "\"agent_id\" is not an agent id");
		} else {
			r->single = true;
			rc = alloc_agents(r, 1);
			if (rc == 0 && (r->agent_ids[0] = strdup(json_string_value(one))) == NULL)
				rc = -ENOMEM;
		}
	} else if (rc == 0) {
		rc = get_agent_list(json_object_get(j, "agent_ids"), "agent_ids", r, err, err_len);
	}
	if (rc == 0)
		rc = get_content(j, r, err, err_len);
	if (rc == 0)
		rc = get_u32(j, "timeout_ms", 600000, 5000, &r->timeout_ms, err, err_len);
	if (rc == 0 && r->timeout_ms == 0)
		rc = fail(err, err_len, "\"timeout_ms\" must be at least 1");
	/* The message waits for a disconnected plugin as long as the request does. */
	r->ttl_ms = r->timeout_ms;
	return finish(j, rc, r);
}

int parse_slot_create(const char *body, size_t len, char *plugin, size_t plugin_len, char *url,
		      size_t url_len, char *err, size_t err_len)
{
	static const char *const known[] = { "plugin_name", "callback_url", NULL };
	json_t *j = load_object(body, len, err, err_len), *p, *u;
	int rc;

	if (j == NULL)
		return -EINVAL;
	rc = check_keys(j, known, err, err_len);
	p = json_object_get(j, "plugin_name");
	u = json_object_get(j, "callback_url");
	if (rc == 0 && (!json_is_string(p) ||
			!mimo_wire_name_valid(json_string_value(p), json_string_length(p))))
		rc = fail(err, err_len,
			  "\"plugin_name\" must be 1-64 of [A-Za-z0-9_.-] (the "
			  "plugin's process name)");
	if (rc == 0 && (!cstr(u) || !fab_url_valid(json_string_value(u))))
		rc = fail(err, err_len, "\"callback_url\" must be an http:// or https:// URL");
	if (rc == 0) {
		snprintf(plugin, plugin_len, "%s", json_string_value(p));
		snprintf(url, url_len, "%s", json_string_value(u));
	}
	json_decref(j);
	return rc;
}

int parse_gse_keepalive(const char *body, size_t len, struct gse_keepalive *k)
{
	json_t *j = json_loadb(body, len, 0, NULL), *n, *v, *pid;
	int rc = -EBADMSG;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(j))
		goto out;
	n = json_object_get(j, "plugin_name");
	v = json_object_get(j, "version");
	pid = json_object_get(j, "pid");
	if (!json_is_string(n) ||
	    !mimo_wire_name_valid(json_string_value(n), json_string_length(n)))
		goto out;
	if (v != NULL && (!json_is_string(v) || json_string_length(v) > MIMO_WIRE_MAX_VERSION))
		goto out;
	if (pid != NULL && !json_is_integer(pid))
		goto out;
	snprintf(k->plugin_name, sizeof(k->plugin_name), "%s", json_string_value(n));
	if (v != NULL)
		snprintf(k->version, sizeof(k->version), "%s", json_string_value(v));
	k->pid = pid != NULL ? json_integer_value(pid) : 0;
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int parse_gse_meta(const char *meta, size_t len, struct gse_meta *m)
{
	json_t *j = json_loadb(meta, len, 0, NULL), *n, *id;
	int rc = -EBADMSG;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(j))
		goto out;
	n = json_object_get(j, "name");
	id = json_object_get(j, "message_id");
	if (n != NULL && (!json_is_string(n) ||
			  !mimo_wire_name_valid(json_string_value(n), json_string_length(n))))
		goto out;
	if (!json_is_string(id) ||
	    !mimo_wire_msg_id_valid(json_string_value(id), json_string_length(id)))
		goto out;
	if (n != NULL)
		snprintf(m->name, sizeof(m->name), "%s", json_string_value(n));
	snprintf(m->message_id, sizeof(m->message_id), "%s", json_string_value(id));
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int fab_url_decode(const char *in, size_t len, char *out, size_t out_len, size_t *out_n)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = mimo_hexval(in[i + 1]);
			lo = mimo_hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= out_len)
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	*out_n = o;
	return 0;
}
