/*
 * mimo/jsonrpc.h - a JSON-RPC 2.0 server with SPDK's wire behaviour, and its method registry.
 *
 * Framing as SPDK: requests are a stream of concatenated JSON values (not newline-delimited);
 * each response is one JSON object followed by "\n". A top-level array is a batch (one array
 * answers it). A request without an id, or with a null id, is a notification: no reply.
 *
 * Handlers run on the server's reactor and answer exactly once, at once or later, from any
 * thread: mimo_jsonrpc_send_result / _send_bool / _send_error / _send_errno.
 *
 * Errors: 0 or a negative errno; a decode function returns NULL or what it expected. JSON:
 * params reach a handler borrowed (valid until it answers); mimo_jsonrpc_send_result takes its
 * result; mimo_jsonrpc_call_local borrows the request and hands the response to its callback,
 * which releases it; mimo_rpc_list_methods returns a new reference.
 */
#ifndef MIMO_JSONRPC_H
#define MIMO_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIMO_JSONRPC_ERROR_PARSE_ERROR	    -32700
#define MIMO_JSONRPC_ERROR_INVALID_REQUEST  -32600
#define MIMO_JSONRPC_ERROR_METHOD_NOT_FOUND -32601
#define MIMO_JSONRPC_ERROR_INVALID_PARAMS   -32602
#define MIMO_JSONRPC_ERROR_INTERNAL_ERROR   -32603
#define MIMO_JSONRPC_ERROR_INVALID_STATE    -1

/* Application states (SPDK's): methods declare in which they may run. */
#define MIMO_RPC_STARTUP 0x1 /* before framework_start_init (--wait-for-rpc) */
#define MIMO_RPC_RUNTIME 0x4

struct mimo_jsonrpc_request;
struct mimo_jsonrpc_server;

/* params: the request's "params" (an object or array), or NULL when absent or null.
 * Borrowed: valid until the request is answered. */
typedef void (*mimo_rpc_handler)(struct mimo_jsonrpc_request *req, const json_t *params);

/*
 * Registration. Nothing registers itself when a library is loaded: each library or module
 * with methods (or bdev modules, or event types) has one function, mimo_register_<part>(),
 * which a program calls, for the parts it links, before it serves requests. rpc_get_methods
 * lists methods in the order they were registered. The convention and mimo_tgt's order are
 * in docs/ARCHITECTURE.md ("Registration").
 *
 * A part lists the methods of each RPC file in a static table at its bottom:
 *
 *     static const struct mimo_rpc_method g_rpcs[] = {
 *             { "bdev_malloc_create", rpc_bdev_malloc_create, MIMO_RPC_RUNTIME },
 *             { "construct_malloc_bdev", rpc_construct_malloc_bdev, MIMO_RPC_RUNTIME,
 *               "bdev_malloc_create" },
 *     };
 *
 * A legacy method (replacement set) is a name older clients call (py-spdk, SPDK <= 19.x): it
 * runs like any other, is listed by rpc_get_methods only with include_aliases, and logs a
 * deprecation warning once. One handler may serve a modern and a legacy name.
 */
struct mimo_rpc_method {
	const char *name;
	mimo_rpc_handler fn;
	uint32_t state_mask;	 /* MIMO_RPC_STARTUP and/or MIMO_RPC_RUNTIME */
	const char *replacement; /* legacy methods: the method that replaces it; else NULL */
};

/*
 * Register count methods, in the table's order (replacement is kept, not copied: a string
 * literal). The same registration again is ignored, so a register function may run more than
 * once; the same name with another handler, mask or replacement is an error (logged; the
 * first stays). Any thread, any time: a method registered while a server runs is callable
 * from the next request on.
 */
void mimo_rpc_register_methods(const struct mimo_rpc_method *methods, size_t count);

/* rpc_get_methods and its legacy name get_rpc_methods: every program that serves calls it. */
void mimo_register_jsonrpc(void);

void mimo_rpc_set_state(uint32_t state);
uint32_t mimo_rpc_get_state(void);
bool mimo_rpc_is_method_allowed(const char *method, uint32_t state);
/* The states a method may run in (MIMO_RPC_STARTUP and/or MIMO_RPC_RUNTIME): 0, or -ENOENT
 * for a method nobody registered. A configuration replay sorts a saved file's calls with it,
 * as SPDK's loader does: those allowed at start-up first, the rest after initialisation. */
int mimo_rpc_get_method_state_mask(const char *method, uint32_t *state_mask);
/*
 * Requests per method since the start, from any thread (the metrics endpoint): fn gets each
 * method that was called at least once, with its calls (those refused for the framework's
 * state included) and how many were answered with an error. Requests for methods nobody
 * registered are counted apart.
 */
typedef void (*mimo_rpc_stat_fn)(void *arg, const char *method, uint64_t calls, uint64_t errors);
void mimo_rpc_foreach_method_stat(mimo_rpc_stat_fn fn, void *arg);
uint64_t mimo_rpc_unknown_method_calls(void);
/* Names of registered methods (legacy ones with include_legacy), optionally only those
 * allowed in the current state. A new JSON array. */
json_t *mimo_rpc_list_methods(bool current_only, bool include_legacy);

struct mimo_jsonrpc_opts {
	size_t opts_size;
	mode_t socket_mode;	   /* default 0600 */
	uint32_t max_connections;  /* default 64 */
	size_t max_request_bytes;  /* default 4 MiB: a larger request is refused, the connection
				      closed */
	size_t max_pending_output; /* default 32 MiB: past it, stop reading from that client */
};
void mimo_jsonrpc_opts_init(struct mimo_jsonrpc_opts *opts);

/*
 * Listen on a Unix socket, on the calling reactor. Takes an flock on "<path>.lock" (a second
 * server on the same path gets -EADDRINUSE), removes a stale socket file, binds, sets the
 * mode. Returns 0 with *server set, or a negative errno.
 */
int mimo_jsonrpc_server_listen(const char *path, const struct mimo_jsonrpc_opts *opts,
			       struct mimo_jsonrpc_server **server);
/* Close the listener and every connection, remove the socket and lock files. On its reactor.
 * Requests still being handled are answered into the void. */
void mimo_jsonrpc_server_close(struct mimo_jsonrpc_server *server);

/* Answer a request (from any thread, exactly once). send_result takes ownership of result. */
void mimo_jsonrpc_send_result(struct mimo_jsonrpc_request *req, json_t *result);
void mimo_jsonrpc_send_bool(struct mimo_jsonrpc_request *req, bool value);
/* A result already serialised: text is len bytes of valid JSON (malloc'd; this takes it).
 * For large, cacheable answers (bdev_get_bdevs) that need not pass through jansson. */
void mimo_jsonrpc_send_result_text(struct mimo_jsonrpc_request *req, char *text, size_t len);
void mimo_jsonrpc_send_error(struct mimo_jsonrpc_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* code = rc (a negative errno), message = strerror(-rc): SPDK's convention. */
void mimo_jsonrpc_send_errno(struct mimo_jsonrpc_request *req, int rc);
/* The method name of a request (for logs). */
const char *mimo_jsonrpc_request_method(const struct mimo_jsonrpc_request *req);

/*
 * Run one request (an object, or a batch array) without a socket, on the calling reactor, as
 * if it had arrived on a connection. cb receives the response (NULL for a notification) on
 * the calling reactor and owns it. Used to replay configuration files and by the agent.
 */
typedef void (*mimo_jsonrpc_local_cb)(void *arg, json_t *response);
int mimo_jsonrpc_call_local(json_t *request, mimo_jsonrpc_local_cb cb, void *arg);

/*
 * Parameter decoding, as SPDK's decoder tables: each known parameter names a field of a
 * struct and a decode function; unknown parameters are refused. A decode function returns
 * NULL on success or what it expected ("an unsigned 32-bit integer"), for the error message.
 */
typedef const char *(*mimo_json_decode_fn)(const json_t *val, void *out);

struct mimo_json_decoder {
	const char *name;
	size_t offset;
	mimo_json_decode_fn decode;
	bool optional;
};

/*
 * Decode params (an object, or NULL = no parameters) into out. Returns 0, or -EINVAL with a
 * message naming the parameter in err ("missing parameter \"block_size\"", "parameter
 * \"num_blocks\" must be an unsigned 64-bit integer", "unknown parameter \"foo\"").
 */
int mimo_json_decode_object(const json_t *params, const struct mimo_json_decoder *decoders,
			    size_t count, void *out, char *err, size_t err_len);
/* Free what string decoders allocated in out. */
void mimo_json_decode_free(const struct mimo_json_decoder *decoders, size_t count, void *out);

/* Decode and answer -32602 on failure: true when decoded. */
bool mimo_rpc_decode(struct mimo_jsonrpc_request *req, const json_t *params,
		     const struct mimo_json_decoder *decoders, size_t count, void *out);
/* For methods without parameters: answers -32602 and returns false when some were given. */
bool mimo_rpc_no_params(struct mimo_jsonrpc_request *req, const json_t *params);
/*
 * A parameter that is a list of names (e.g. DH-HMAC-CHAP's "dhchap_digests") into a mask of
 * 1 << id_of(name). NULL names: true, *mask untouched. A name id_of does not know (< 0):
 * answers -32602 "<method>: parameter \"<param>\": unknown '<name>' (<choices>)" and returns
 * false.
 */
bool mimo_rpc_names_mask(struct mimo_jsonrpc_request *req, const char *param, const json_t *names,
			 int (*id_of)(const char *), const char *choices, uint32_t *mask);

const char *mimo_json_decode_string(const json_t *val, void *out); /* char *, strdup'd */
const char *mimo_json_decode_bool(const json_t *val, void *out);   /* bool */
const char *mimo_json_decode_uint16(const json_t *val, void *out); /* uint16_t */
const char *mimo_json_decode_uint32(const json_t *val, void *out); /* uint32_t */
const char *mimo_json_decode_uint64(const json_t *val, void *out); /* uint64_t */
const char *mimo_json_decode_int32(const json_t *val, void *out);  /* int32_t */
const char *mimo_json_decode_double(const json_t *val, void *out); /* double (any number) */
const char *mimo_json_decode_json(const json_t *val, void *out);   /* const json_t *, borrowed */
/*
 * For SPDK's parameters, so that none is accepted and silently ignored (offset: any field,
 * nothing is written). _unsupported: what it asks for is not done, so only "off" is taken -
 * null, false, 0 or "" - and anything else is refused naming the parameter. _no_meaning: it
 * sizes or tunes what mimo does not have (another transport's queues, SPDK's buffer caches):
 * taken at any value, so that saved SPDK configurations load; never for a security option,
 * and each is listed with its reason in the documentation of its method.
 */
const char *mimo_json_decode_unsupported(const json_t *val, void *out);
const char *mimo_json_decode_no_meaning(const json_t *val, void *out);

#define MIMO_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#ifdef __cplusplus
}
#endif

#endif /* MIMO_JSONRPC_H */
