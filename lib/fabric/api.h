/*
 * The fabric's HTTP API (api.c), served by the agent (one host, in process) and by the
 * gateway (many hosts, over NATS) alike: slots (admin), GSE's dispatch endpoints, mimo's
 * native dispatch and request-reply, and the plugin cache. Everything that reaches a plugin
 * goes through a struct fab_backend, which each program provides. Routes and shapes:
 * docs/agent.md.
 *
 * Threading: fab_api_handle runs on the HTTP front's threads (http_front.h), several at once:
 * the backend's functions must be safe to call concurrently, and struct fab_api is read-only
 * once served. Memory: a fab_result's reply is malloc'd by the backend and freed by the API; a
 * response body is the caller's to free (mimo_buf_free); json_t * results are new references.
 * Errors: there are none to return - every outcome is an HTTP status in the response, or a
 * status and code in a fab_result.
 */
#ifndef MIMO_FAB_API_H
#define MIMO_FAB_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "slots.h"

/* --- the backend the API drives -------------------------------------------------------------- */

enum fab_status {
	FAB_DELIVERED = 0,
	FAB_QUEUED = 1,
	FAB_FAILED = 2,
};

/* Codes of failed agents (GSE's results list, the native API's "code"). */
#define FAB_ERR_UNKNOWN_AGENT 404
#define FAB_ERR_NOT_CONNECTED 503
#define FAB_ERR_QUEUE_FULL    429
#define FAB_ERR_TIMEOUT	      504
#define FAB_ERR_INTERNAL      500
#define FAB_ERR_BAD_PLUGIN    501
#define FAB_ERR_TOO_LARGE     413 /* larger than the plugin can receive (GSE's SDK: 10 MiB) */

struct fab_result {
	enum fab_status status;
	int code;
	char reason[128];
	/* request-reply: the reply's content (malloc'd) */
	uint8_t *reply;
	size_t reply_len;
};

/* Cache operations on a plugin. */
enum fab_cache_op {
	FAB_CACHE_STORE,
	FAB_CACHE_RETRIEVE,
	FAB_CACHE_DELETE,
	FAB_CACHE_INVAL,
	FAB_CACHE_POLL,
};

struct fab_cache_req {
	enum fab_cache_op op;
	const char *plugin;
	const char *key; /* NULL for POLL */
	uint64_t offset;
	uint64_t size; /* RETRIEVE: bytes asked (0 = up to the max); INVAL: range; POLL: kh */
	const void *data;
	size_t len;
	uint32_t timeout_ms;
};

struct fab_backend {
	void *ctx;
	/* One message to one agent's plugin. Never blocks for long (a NATS round trip). */
	void (*dispatch)(void *ctx, const char *agent_id, const struct slot_info *slot,
			 const char *message_id, const void *content, size_t len, uint32_t ttl_ms,
			 struct fab_result *out);
	/* Dispatch to several agents and wait up to timeout_ms for each reply. out[i] for
	 * agent i. Blocks. */
	void (*request)(void *ctx, const char *const *agent_ids, size_t n,
			const struct slot_info *slot, const char *message_id,
			const uint8_t *const *contents, const size_t *lens, uint32_t timeout_ms,
			struct fab_result *out);
	/* Returns an HTTP status; RETRIEVE appends the data to data. */
	int (*cache)(void *ctx, const char *agent_id, const struct fab_cache_req *req,
		     struct mimo_buf *data, char *reason, size_t reason_len);
	/* GET /v1/health and /v1/agents: a JSON object (a new reference). */
	json_t *(*health)(void *ctx);
};

/* --- the API -------------------------------------------------------------------------------- */

struct fab_api {
	struct slots *slots;
	struct fab_backend be;
	char admin_token[FAB_TOKEN_HEX + 16];
	bool slots_read_only; /* an agent behind NATS: slots are managed at the gateway */
	const char *agent_id; /* for logs and the callback shape; NULL in the gateway */
	/* Every backend call may wait (the gateway's are NATS round trips); otherwise only
	 * request-reply and the cache routes do, and dispatch is answered at once. */
	bool backend_waits;
	/* --allow-link-local-callbacks: accept callback URLs at link-local or cloud-metadata
	 * addresses (lib/http/dest.h). */
	bool allow_link_local_callbacks;
};

struct fab_http_response {
	int status;
	const char *content_type; /* a static string */
	struct mimo_buf body;
};

/* Route one request (url undecoded, query may be NULL). Calls only the backend and the
 * registry; resp->body must start empty. */
void fab_api_handle(struct fab_api *api, const char *method, const char *url, const char *query,
		    const char *authorization, const char *body, size_t body_len,
		    struct fab_http_response *resp);

/* Whether a request may wait (for a plugin, NATS, the disk) and so goes to the HTTP front's
 * worker pool rather than being answered on its event loop. */
bool fab_api_may_wait(const struct fab_api *api, const char *method, const char *url);

/* Content for JSON: a string (invalid UTF-8 replaced by U+FFFD, as Go's encoding/json does for
 * GSE's string(content)), or base64. New references; NULL when out of memory. */
json_t *fab_json_content_string(const void *data, size_t len);
json_t *fab_json_base64(const void *data, size_t len);

#endif
