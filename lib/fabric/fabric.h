/*
 * The messaging fabric's shared core: what mimo_agent and mimo_gateway both use - slots and
 * their secrets, the parsers of every HTTP body, the HTTP API with its routes, and the
 * backend interface through which the API reaches plugins (in process in the agent, over NATS
 * in the gateway). docs/agent.md describes the behaviour; this header the seams.
 */
#ifndef MIMO_FABRIC_H
#define MIMO_FABRIC_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mimo/wire.h"

#define FAB_TOKEN_BYTES	     32
#define FAB_TOKEN_HEX	     (2 * FAB_TOKEN_BYTES + 1)
#define FAB_SECRET_LEN	     64 /* "whsec_" + base64(32 bytes) + NUL = 51 */
#define FAB_URL_MAX	     1024
#define FAB_MAX_CONTENT	     (10u << 20) /* GSE's message size */
#define FAB_MAX_BODY	     (16u << 20) /* largest HTTP body: base64 of 10 MiB and JSON */
#define FAB_MAX_AGENTS	     10000	 /* agents in one dispatch */
#define FAB_DEFAULT_DOWN_TTL 60000
#define FAB_MAX_TTL_MS	     (7u * 24 * 3600 * 1000)

/* --- slots ---------------------------------------------------------------------------------- */

struct slot_info {
	uint64_t id;
	char plugin[MIMO_WIRE_MAX_NAME + 1];
	char url[FAB_URL_MAX];
	uint8_t token_hash[32]; /* SHA-256 of the token: the token itself is never stored */
	char secret[FAB_SECRET_LEN];
	int64_t created;
};

struct slots;

/* Persistence of one change (the file registry rewrites its file; the gateway's writes the
 * NATS KV bucket). Called with the registry's lock held; a failure undoes the change. */
typedef int (*slots_persist_fn)(void *arg, struct slots *s, const struct slot_info *changed,
				bool deleted);

struct slots *slots_new(slots_persist_fn persist, void *arg);
void slots_free(struct slots *s);
/* The agent's registry: state_dir/slots.json, mode 0600 (secrets in clear, like SSH keys). */
int slots_open_file(struct slots **out, const char *state_dir);
/* Apply a change made elsewhere (the KV watcher): no persistence. */
void slots_apply(struct slots *s, const struct slot_info *si, bool deleted);

/* 0, -EEXIST (a slot already serves that plugin), -EINVAL, or the persistence's error.
 * token_out receives the token (hex), si->secret the secret. */
int slots_create(struct slots *s, const char *plugin, const char *url, struct slot_info *si,
		 char token_out[FAB_TOKEN_HEX]);
int slots_rotate(struct slots *s, uint64_t id, struct slot_info *si, char token_out[FAB_TOKEN_HEX]);
int slots_delete(struct slots *s, uint64_t id);
int slots_get(struct slots *s, uint64_t id, struct slot_info *si);
int slots_find_plugin(struct slots *s, const char *plugin, struct slot_info *si);
/* 0; -ENOENT (no such slot: 401); -EACCES (wrong token: 403). Constant-time comparison. */
int slots_check_token(struct slots *s, uint64_t id, const char *token, struct slot_info *si);
/* As above, for a plugin name (cache endpoints). */
int slots_check_plugin_token(struct slots *s, const char *plugin, const char *token,
			     struct slot_info *si);
json_t *slots_list_json(struct slots *s);
/* All slots, for persistence: a JSON array of full records (with hashes and secrets). */
json_t *slots_dump_locked(struct slots *s);
int slot_from_json(const json_t *j, struct slot_info *si);
json_t *slot_to_json(const struct slot_info *si);
uint64_t slots_count(struct slots *s);
/* Changes with every change of the registry: a reader may keep a copy while it stays. */
uint64_t slots_generation(struct slots *s);
/* Highest id ever used (ids are never reused). */
void slots_set_next_id(struct slots *s, uint64_t next);

/* SHA-256 of a token. */
void fab_hash_token(const char *token, uint8_t out[32]);

/* The admin token: read from path, or created there (0600) with a random value. */
int fab_admin_token_load(const char *path, char token[FAB_TOKEN_HEX + 16]);
/* Compare a presented token with the admin token in constant time. */
bool fab_token_equal(const char *a, const char *b);

/* Secrets stored where others can read (the NATS KV bucket) are sealed: AES-256-GCM with a
 * key derived from the admin token (seal.c). */
int fab_seal(const char *admin_token, const char *plain, char *out, size_t out_len);
int fab_unseal(const char *admin_token, const char *sealed, char *out, size_t out_len);

/* --- parsed bodies (parse.c: pure, fuzzed) -------------------------------------------------- */

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
void down_msg_req_free(struct down_msg_req *r);

/* Each returns 0, or -EINVAL with a reason in err. */
int parse_gse_dispatch(const char *body, size_t len, struct down_msg_req *r, char *err,
		       size_t err_len);
int parse_gse_dispatch_multi(const char *body, size_t len, struct down_msg_req *r, char *err,
			     size_t err_len);
int parse_native_dispatch(const char *body, size_t len, struct down_msg_req *r, char *err,
			  size_t err_len);
int parse_request(const char *body, size_t len, struct down_msg_req *r, char *err, size_t err_len);
int parse_slot_create(const char *body, size_t len, char *plugin, size_t plugin_len, char *url,
		      size_t url_len, char *err, size_t err_len);
bool fab_url_valid(const char *url);
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

/* Percent-decoding of one URL path segment: 0 or -EINVAL. */
int fab_url_decode(const char *in, size_t len, char *out, size_t out_len, size_t *out_n);

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
	/* Returns an HTTP status; RETRIEVE fills data. */
	int (*cache)(void *ctx, const char *agent_id, const struct fab_cache_req *req,
		     struct mimo_buf *data, char *reason, size_t reason_len);
	/* GET /v1/health and /v1/agents: a JSON object. */
	json_t *(*health)(void *ctx);
};

/* --- the HTTP API (api.c, http.c) ------------------------------------------------------------ */

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
	const char *content_type;
	struct mimo_buf body;
};

/* Route one request. Pure in the sense that it only calls the backend and the registry. */
void fab_api_handle(struct fab_api *api, const char *method, const char *url, const char *query,
		    const char *authorization, const char *body, size_t body_len,
		    struct fab_http_response *resp);

/* Whether a request may wait (for a plugin, NATS, the disk) and so goes to the HTTP front's
 * worker pool rather than being answered on its event loop. */
bool fab_api_may_wait(const struct fab_api *api, const char *method, const char *url);

/* The HTTP front's limits (docs/agent.md, "The HTTP front"). Zero-initialised fields take
 * the defaults below. */
struct fab_http_opts {
	uint32_t max_conns;	   /* open connections (4096; lowered to fit RLIMIT_NOFILE) */
	bool max_conns_given;	   /* given on the command line: refuse it rather than lower it */
	uint32_t max_conns_per_ip; /* per client address (128; 0 = no limit) */
	bool max_conns_per_ip_given;
	uint32_t header_timeout_s; /* a connection's first request headers (10 s) */
	uint32_t idle_timeout_s;   /* inactivity, and between keep-alive requests (30 s) */
	uint32_t workers;	   /* threads answering the requests that may wait (32) */
};
#define FAB_HTTP_MAX_CONNS	  4096
#define FAB_HTTP_MAX_CONNS_PER_IP 128
#define FAB_HTTP_HEADER_TIMEOUT_S 10
#define FAB_HTTP_IDLE_TIMEOUT_S	  30
#define FAB_HTTP_WORKERS	  32
#define FAB_HTTP_QUEUE_PER_WORKER 32	       /* requests waiting for a worker, per worker */
#define FAB_HTTP_BODY_BUDGET	  (256u << 20) /* bytes of bodies held at once, all clients */
#define FAB_HTTP_FD_RESERVE	  256	       /* descriptors kept for plugins, files, callbacks */
#define FAB_HTTP_INLINE_BODY	  (64u << 10)  /* larger bodies are parsed off the loop */

/* Parse one of the HTTP front's command-line options ("http-max-conns", ...) into o: 1 if
 * name is one of them and value is valid, 0 if name is not one of them, -1 if value is bad. */
int fab_http_parse_opt(struct fab_http_opts *o, const char *name, const char *value);
/* The usage lines of those options. */
extern const char fab_http_usage[];

struct fab_http;
/* Serve api on addr ("127.0.0.1:8089", "[::1]:80", ":8089"). */
int fab_http_start(struct fab_http **out, const char *addr, const struct fab_http_opts *o,
		   struct fab_api *api);
void fab_http_stop(struct fab_http *h);
/* The port actually bound (addr may say 0). */
uint16_t fab_http_port(struct fab_http *h);

/* A message up as its callback shows it (callback.c): GSE's {"message_id", "bk_agent_id",
 * "content"} plus "content_base64", "plugin", "slot_id", "timestamp" (Unix seconds). */
struct fab_callback {
	const char *msg_id;
	size_t msg_id_len;
	const char *agent_id;
	const void *content;
	size_t content_len;
	const char *plugin;
	size_t plugin_len;
	uint64_t slot_id;
	int64_t timestamp;
};
int fab_callback_json(struct mimo_buf *b, const struct fab_callback *m);
/* Append data as a JSON string (invalid UTF-8 replaced by U+FFFD, controls escaped). */
int fab_json_append_string(struct mimo_buf *b, const void *data, size_t len);

/* Encode content for JSON: a string (invalid UTF-8 replaced by U+FFFD, as Go's encoding/json
 * does for GSE's string(content)) - returned as a new jansson string. */
json_t *fab_json_content_string(const void *data, size_t len);
json_t *fab_json_base64(const void *data, size_t len);

#endif
