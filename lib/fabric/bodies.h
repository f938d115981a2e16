/*
 * The parsers of every body the fabric receives (parse.c): the HTTP API's JSON bodies, the
 * JSON of GSE plugins' frames, and URL path segments. Pure and fuzzed (test/fuzz/agent).
 *
 * Threading: pure functions, any thread. Memory: a parsed struct down_msg_req owns what it
 * points to (malloc'd) until down_msg_req_free; the other structs are values. Errors: int
 * results are 0 or a negative errno (-EINVAL for a body that is not what it should be, with
 * the reason in err where there is one; -ENOMEM), and a failed parse leaves nothing to free.
 */
#ifndef MIMO_FAB_BODIES_H
#define MIMO_FAB_BODIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/wire.h"

#define FAB_MAX_CONTENT	     (10u << 20) /* GSE's message size */
#define FAB_MAX_BODY	     (16u << 20) /* largest HTTP body: base64 of 10 MiB and JSON */
#define FAB_MAX_AGENTS	     10000	 /* agents in one dispatch */
#define FAB_DEFAULT_DOWN_TTL 60000
#define FAB_MAX_TTL_MS	     (7u * 24 * 3600 * 1000)

/* A dispatch or a request: the slot and its token, the message, its agents and content. */
struct down_msg_req {
	uint64_t slot_id;
	char *token;
	char *message_id;
	char **agent_ids; /* n_agents */
	size_t n_agents;
	/* One content for all, or one per agent (dispatch_multi): contents[i] for agent i. */
	uint8_t **contents;
	size_t *content_lens;
	uint32_t ttl_ms;     /* 0: do not queue for a disconnected plugin */
	uint32_t timeout_ms; /* /v1/request */
	bool gse;	     /* answer in GSE's shape */
	bool single;	     /* /v1/request with "agent_id": one flat answer */
};
/* Release what r points to and zero it (r itself is the caller's). */
void down_msg_req_free(struct down_msg_req *r);

/* GSE's /dispatch, /dispatch_multi, mimo's /v1/dispatch and /v1/request. */
int parse_gse_dispatch(const char *body, size_t len, struct down_msg_req *r, char *err,
		       size_t err_len);
int parse_gse_dispatch_multi(const char *body, size_t len, struct down_msg_req *r, char *err,
			     size_t err_len);
int parse_native_dispatch(const char *body, size_t len, struct down_msg_req *r, char *err,
			  size_t err_len);
int parse_request(const char *body, size_t len, struct down_msg_req *r, char *err, size_t err_len);
/* POST /v1/slots: the plugin name and callback URL, into the caller's buffers. */
int parse_slot_create(const char *body, size_t len, char *plugin, size_t plugin_len, char *url,
		      size_t url_len, char *err, size_t err_len);
/* "http://" or "https://" and more, no blanks or control characters, shorter than
 * FAB_URL_MAX (slots.h). */
bool fab_url_valid(const char *url);
/* 1 to MIMO_WIRE_MAX_AGENT_ID letters, digits and "_-.:" (GSE's "<cloud>:<ip>" among them). */
bool fab_agent_id_valid(const char *id);

/* GSE plugin frames' JSON. */
struct gse_keepalive {
	char plugin_name[MIMO_WIRE_MAX_NAME + 1];
	char version[MIMO_WIRE_MAX_VERSION + 1];
	int64_t pid;
};
int parse_gse_keepalive(const char *body, size_t len, struct gse_keepalive *k);
struct gse_meta {
	char name[MIMO_WIRE_MAX_NAME + 1];
	char message_id[MIMO_WIRE_MAX_MSG_ID + 1];
};
int parse_gse_meta(const char *meta, size_t len, struct gse_meta *m);

/* Percent-decoding of one URL path segment into out (*out_n bytes, NUL-terminated). */
int fab_url_decode(const char *in, size_t len, char *out, size_t out_len, size_t *out_n);

#endif
