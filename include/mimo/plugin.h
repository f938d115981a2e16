/*
 * mimo/plugin.h - libmimo_plugin, the C SDK for plugins of mimo_agent (-lmimo_plugin).
 *
 * A plugin is a process that connects to its host's agent over a Unix socket, receives the
 * messages servers dispatch to it, and sends messages up to its slot's HTTP callback. The SDK
 * keeps the connection: it reconnects with exponential backoff (capped), keeps messages sent
 * while disconnected in a bounded queue and resends each until the agent acknowledges it
 * (the agent acknowledges once the message is durable), and runs callbacks on their own
 * thread so a slow callback never stops the reader. Every function is thread-safe.
 *
 * The options mirror BlueKing GSE's SDK (name, version, socket path, receive callback,
 * logger, keepalive interval, max message size) plus a retrieve callback, a cache the agent
 * writes into (FUSE's notify model: STORE / RETRIEVE / INVAL / DELETE / POLL), reconnect
 * backoff and the send queue's bounds. See docs/agent.md and docs/protocol.md.
 *
 *	struct mimo_plugin_opts o;
 *	mimo_plugin_opts_init(&o);
 *	o.name = "myplugin"; o.version = "1.0"; o.socket_path = "/var/run/mimo/agent.sock";
 *	o.recv_cb = on_message;
 *	struct mimo_plugin *p;
 *	mimo_plugin_create(&o, &p);              // 0 or a negative errno, as every call here
 *	mimo_plugin_launch(p, 10000);            // blocks until the first connection
 *	mimo_plugin_send(p, "id-1", "hello", 5); // queued, resent until acknowledged
 *	mimo_plugin_destroy(p);
 */
#ifndef MIMO_PLUGIN_H
#define MIMO_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mimo_plugin;

enum mimo_plugin_log_level {
	MIMO_PLUGIN_LOG_ERROR = 0,
	MIMO_PLUGIN_LOG_WARN = 1,
	MIMO_PLUGIN_LOG_INFO = 2,
	MIMO_PLUGIN_LOG_DEBUG = 3,
};

/* A message down. content is valid during the call only. Runs on the callback thread, one
 * call at a time, in the order the agent dispatched; the agent learns the message was handled
 * when the call returns (a crash inside the callback gets the message delivered again). */
typedef void (*mimo_plugin_recv_fn)(void *arg, const char *message_id, const void *content,
				    size_t len);

/*
 * A RETRIEVE the application answers itself (instead of from the SDK's cache): fill up to size
 * bytes of entry key from offset into buf and return how many (0..size), or a negative errno
 * (-ENOENT: no such entry). On the callback thread.
 */
typedef long (*mimo_plugin_retrieve_fn)(void *arg, const char *key, uint64_t offset, void *buf,
					uint32_t size);

/* The agent changed the cache (after the SDK applied it) or sent POLL. code is a
 * MIMO_WIRE_NOTIFY_* value (STORE 4, INVAL 2, DELETE 6, POLL 1); key is NULL for POLL, whose
 * handle is in offset. On the callback thread. */
typedef void (*mimo_plugin_notify_fn)(void *arg, int code, const char *key, uint64_t offset,
				      uint64_t size);

/* Log lines of the SDK (without a trailing newline). Default: stderr through mimo's log. */
typedef void (*mimo_plugin_log_fn)(void *arg, enum mimo_plugin_log_level level, const char *line);

struct mimo_plugin_opts {
	size_t opts_size;	 /* sizeof(struct mimo_plugin_opts), set by _opts_init */
	const char *name;	 /* required: [A-Za-z0-9_.-]{1,64}; the slot's plugin name */
	const char *version;	 /* required */
	const char *socket_path; /* default /var/run/mimo/agent.sock */
	mimo_plugin_recv_fn recv_cb;
	mimo_plugin_retrieve_fn retrieve_cb; /* NULL: RETRIEVE is answered from the cache */
	mimo_plugin_notify_fn notify_cb;
	mimo_plugin_log_fn log_cb;
	void *cb_arg;		       /* passed to every callback */
	uint32_t keepalive_ms;	       /* PING interval; 3 missed answers = reconnect (3000) */
	uint32_t max_message_bytes;    /* largest message either way (10 MiB, GSE's) */
	uint32_t reconnect_min_ms;     /* first reconnect delay (100) */
	uint32_t reconnect_max_ms;     /* cap of the doubling delay (1000, GSE's interval) */
	uint32_t send_queue_max;       /* messages queued and not yet acknowledged (65536) */
	uint64_t send_queue_max_bytes; /* their bytes (64 MiB) */
	uint32_t ttl_ms;	       /* lifetime of messages sent up; 0 = the agent's default */
	uint32_t cache_max_bytes;      /* the cache's total size; STOREs past it fail (64 MiB) */
};

void mimo_plugin_opts_init(struct mimo_plugin_opts *opts);

/* 0 with *out set, -EINVAL (bad options) or -ENOMEM. Nothing connects until launch. */
int mimo_plugin_create(const struct mimo_plugin_opts *opts, struct mimo_plugin **out);

/*
 * Start connecting and keep the connection from now on (reconnecting as needed). Blocks until
 * the agent has accepted the first HELLO or timeout_ms has passed: returns 0, -ETIMEDOUT (the
 * SDK keeps trying in the background; the last refusal is logged), or -EALREADY.
 * timeout_ms 0 returns at once; UINT32_MAX waits for ever.
 */
int mimo_plugin_launch(struct mimo_plugin *p, uint32_t timeout_ms);

/*
 * Send a message up: copied into the send queue and returned from at once; sent when
 * connected, resent after a reconnect until the agent acknowledges it (every resend carries
 * the same idempotency key, so the agent keeps one copy and the callback sees one webhook-id).
 * Returns 0, -EINVAL (message id not 1-255 bytes of UTF-8 without control characters),
 * -EMSGSIZE (over max_message_bytes), -ENOBUFS (queue full), -ESHUTDOWN (destroyed).
 */
int mimo_plugin_send(struct mimo_plugin *p, const char *message_id, const void *data, size_t len);
/* The same, waiting up to timeout_ms for room in the queue instead of -ENOBUFS. */
int mimo_plugin_send_timeout(struct mimo_plugin *p, const char *message_id, const void *data,
			     size_t len, uint32_t timeout_ms);
/* Wait until every message sent so far is acknowledged: 0 or -ETIMEDOUT. */
int mimo_plugin_flush(struct mimo_plugin *p, uint32_t timeout_ms);

struct mimo_plugin_agent_info {
	char agent_id[129];
	char version[65];
	uint64_t slot_id;
	uint64_t epoch; /* changes when the agent restarts */
	bool connected;
};
/* What the agent said in its last welcome: 0, or -ENOTCONN before the first connection. */
int mimo_plugin_agent_info(struct mimo_plugin *p, struct mimo_plugin_agent_info *info);

/*
 * Read the cache the agent fills with STORE: copy up to len bytes of entry key from offset
 * into buf. Returns the bytes copied (the contiguous cached bytes from offset; 0 at the end),
 * -ENOENT (no such entry) or -ENODATA (offset lies in a range the agent invalidated).
 * *total (if not NULL) receives the entry's size.
 */
long mimo_plugin_cache_read(struct mimo_plugin *p, const char *key, uint64_t offset, void *buf,
			    size_t len, uint64_t *total);
/* The application may fill its cache too (what RETRIEVE answers without a retrieve_cb). */
int mimo_plugin_cache_write(struct mimo_plugin *p, const char *key, uint64_t offset,
			    const void *data, size_t len);

struct mimo_plugin_stats {
	uint64_t sent;	     /* messages acknowledged by the agent */
	uint64_t resent;     /* frames sent again after a reconnect */
	uint64_t rejected;   /* refused for good by the agent (logged) */
	uint64_t received;   /* messages passed to recv_cb */
	uint64_t duplicates; /* redeliveries recognised and acknowledged without a callback */
	uint64_t connects;   /* successful HELLOs */
	uint64_t queued;     /* in the send queue now, unacknowledged */
};
void mimo_plugin_get_stats(struct mimo_plugin *p, struct mimo_plugin_stats *st);

/* Stop: close the connection, join the threads, free everything. Messages not yet
 * acknowledged are lost (call mimo_plugin_flush first). NULL is a no-op. */
void mimo_plugin_destroy(struct mimo_plugin *p);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_PLUGIN_H */
