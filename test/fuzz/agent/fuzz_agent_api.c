/*
 * Fuzz the HTTP API's router and handlers as a server would run them: the input is split at
 * NUL bytes into method, path, query, Authorization header and body; the registry holds one
 * slot whose token the corpus knows ("tok"), and the backend answers without a network.
 * Properties: every request gets a status between 200 and 599 and, when JSON, a body jansson
 * reads back.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "slots.h"

static void be_dispatch(void *ctx, const char *agent_id, const struct slot_info *slot,
			const char *message_id, const void *content, size_t len, uint32_t ttl_ms,
			struct fab_result *out)
{
	(void)ctx;
	(void)slot;
	(void)message_id;
	(void)content;
	(void)ttl_ms;
	memset(out, 0, sizeof(*out));
	out->status = len % 2			   ? FAB_QUEUED
		      : strcmp(agent_id, "h") == 0 ? FAB_DELIVERED
						   : FAB_FAILED;
	out->code = 404;
}

static void be_request(void *ctx, const char *const *ids, size_t n, const struct slot_info *slot,
		       const char *message_id, const uint8_t *const *contents, const size_t *lens,
		       uint32_t timeout_ms, struct fab_result *out)
{
	(void)ctx;
	(void)ids;
	(void)slot;
	(void)message_id;
	(void)timeout_ms;
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].reply = malloc(lens[i] + 1);
		memcpy(out[i].reply, contents[i], lens[i]);
		out[i].reply_len = lens[i];
		if (lens[i] % 3 == 0) {
			out[i].status = FAB_FAILED;
			out[i].code = FAB_ERR_TIMEOUT;
		}
	}
}

static int be_cache(void *ctx, const char *agent_id, const struct fab_cache_req *req,
		    struct mimo_buf *data, char *reason, size_t reason_len)
{
	(void)ctx;
	(void)agent_id;
	(void)reason;
	(void)reason_len;
	if (req->op == FAB_CACHE_RETRIEVE && data != NULL)
		mimo_buf_append(data, "bytes", 5);
	return req->offset % 2 ? 200 : 404;
}

static json_t *be_health(void *ctx)
{
	(void)ctx;
	return json_pack("{s:s}", "agent_id", "h");
}

static struct fab_api g_api;

static void setup(void)
{
	struct slot_info si = { .id = 1, .plugin = "p", .url = "http://127.0.0.1:9/c" };

	g_api.slots = slots_new(NULL, NULL);
	fab_hash_token("tok", si.token_hash);
	slots_apply(g_api.slots, &si, false);
	strcpy(g_api.admin_token, "admintokenadmintoken");
	g_api.be = (struct fab_backend){ NULL, be_dispatch, be_request, be_cache, be_health };
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *part[4] = { "", "", "", "" };
	struct fab_http_response r = { 0 };
	const char *body;
	size_t body_len, used = 0;

	if (g_api.slots == NULL)
		setup();
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (int i = 0; i < 4; i++) {
		char *nul = memchr(copy + used, '\0', size + 1 - used);

		part[i] = copy + used;
		used = (size_t)(nul - copy) + 1;
		if (used > size)
			break;
	}
	body = used <= size ? copy + used : "";
	body_len = used <= size ? size - used : 0;
	g_api.slots_read_only = size % 7 == 0;
	fab_api_handle(&g_api, part[0], part[1], part[2], part[3][0] ? part[3] : NULL, body,
		       body_len, &r);
	if (r.status < 200 || r.status > 599)
		abort();
	if (r.content_type != NULL && strcmp(r.content_type, "application/json") == 0) {
		json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);

		if (j == NULL)
			abort();
		json_decref(j);
	}
	mimo_buf_free(&r.body);
	free(copy);
	return 0;
}
