/*
 * mimo_agent's state. Threads:
 *  - the I/O thread (conn.c): accepts plugins on the native and GSE sockets, reads and parses
 *    their frames, and once every 100 ms expires queued messages;
 *  - the up-queue's writer and syncer (upq_commit.c): make messages durable, then queue the
 *    plugins' ACKs;
 *  - one delivery thread per slot with messages (deliver.c), or the NATS forwarder
 *    (nats_agent.c);
 *  - the HTTP front (lib/fabric/http.c): one event-loop thread running libmicrohttpd, which answers
 *    quick requests (health, dispatch) itself and enforces request deadlines, and a worker
 *    pool for the requests that wait (request-reply, the cache, slot changes);
 *  - with --nats, cnats's threads (nats_agent.c).
 * a->lock guards the plugin table, down queues, connection output and waiters. Sockets are
 * non-blocking, so any thread may flush a connection's output under the lock: a dispatch is
 * written by the HTTP thread that took it, without waking another thread. Functions named
 * *_locked are called with a->lock held; the others take it themselves.
 *
 * This is the private header of lib/agent and app/mimo_agent/main.c (the program). Memory: a
 * connection is reference-counted (conn_unref_locked frees it); a fab_result's reply is
 * malloc'd for the caller to free; a json_t * returned is a new reference. Errors: int results
 * are 0 or a negative errno; agent_cache returns an HTTP status, as fab_backend.cache does.
 */
#ifndef MIMO_AGENT_H
#define MIMO_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "buf.h"
#include "api.h"
#include "http_front.h"
#include "slots.h"
#include "upq.h"

struct agent_opts {
	const char *agent_id;
	const char *socket_path;
	const char *gse_socket;
	const char *http_addr;
	const char *state_dir;
	const char *nats_url;
	const char *admin_token_file;
	const char *socket_group;
	mode_t socket_mode;
	uint32_t up_ttl_ms;	       /* lifetime of a message up (24 h) */
	uint32_t down_queue_max;       /* messages queued per plugin (1024) */
	uint64_t down_queue_max_bytes; /* their bytes (64 MiB) */
	uint32_t inflight_max;	       /* DISPATCHes written and not yet acknowledged (256) */
	uint32_t keepalive_ms;	       /* told to plugins (3000) */
	uint32_t callback_timeout_ms;  /* per attempt (5000) */
	uint32_t callback_backoff_ms;  /* first retry pause (100), doubling to 60 s */
	uint64_t up_max_bytes;	       /* the durable queue's bound (1 GiB) */
	bool check_process_name;       /* GSE's rule: the peer's process name = plugin name */
	bool no_sync;		       /* benchmarks only: acknowledge without fdatasync */
	bool allow_link_local_callbacks;
	struct fab_http_opts http; /* the HTTP front's limits */
};

enum conn_state {
	CONN_NEW,   /* native: before HELLO; GSE: before a keepalive or respond names it */
	CONN_READY, /* bound to its plugin */
	CONN_CLOSED,
};

struct reply_ent {
	uint64_t unique;
	int32_t status;
	bool done;
};

struct plugin;

struct agent;

struct conn {
	struct agent *agent;
	int fd;
	bool gse;
	enum conn_state state;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int refs; /* the I/O thread's, plus one per append the up-queue has not completed */
	struct plugin *plugin;
	struct mimo_buf in; /* the I/O thread's */
	struct mimo_buf out;
	size_t out_off;
	uint64_t out_queued, out_sent; /* bytes ever appended to out, and ever sent from it */
	bool want_out;
	bool broken;
	/* Native: replies to SENDs, in the order the SENDs came (answered as they complete). */
	struct reply_ent *rq;
	size_t rq_head, rq_tail, rq_cap;
	bool dirty;
	struct conn *next_dirty;
	struct conn *next_all; /* the I/O thread's list of open connections */
	uint64_t gse_seq;
	char exe[128];
};

struct down_item {
	struct down_item *next;
	uint64_t seq;
	int64_t expires_ns;
	char *id;
	size_t id_len;
	uint8_t *content;
	size_t len;
	uint64_t out_end; /* GSE: out_queued once its frame was appended (sent when out_sent is) */
};

enum plugin_proto {
	PROTO_UNKNOWN, /* not connected since the agent started */
	PROTO_NATIVE,
	PROTO_GSE,
};

struct plugin {
	struct plugin *next;
	char name[MIMO_WIRE_MAX_NAME + 1];
	uint64_t slot_id;
	struct conn *conn;		   /* READY connection, or NULL */
	struct down_item *q_head, *q_tail; /* not yet written */
	/* Written to the connection: native, until the plugin ACKs them; GSE (no ACK), until
	 * their bytes have all gone into the socket. */
	struct down_item *in_head, *in_tail;
	/* --down-queue and --down-queue-mb bound queued + inflight: everything held. */
	uint64_t queued, queued_bytes, inflight, inflight_bytes;
	uint64_t delivered, dropped, up;
	uint64_t too_large;	 /* queued, then found larger than the GSE plugin can receive */
	enum plugin_proto proto; /* of its current or last connection */
};

/* A thread waiting for a plugin: a request's reply, or a RETRIEVE's NOTIFY_REPLY. */
struct waiter {
	struct waiter *next;
	char plugin[MIMO_WIRE_MAX_NAME + 1];
	char msg_id[MIMO_WIRE_MAX_MSG_ID + 1];
	uint64_t notify_unique;
	bool done;
	int status;
	uint8_t *data;
	size_t len;
	pthread_cond_t cond;
};

struct deliverer;
struct nats_agent;

struct agent {
	struct agent_opts o;
	pthread_mutex_t lock;
	struct plugin *plugins;
	struct slots *slots;
	struct upq *upq;
	struct fab_api api;
	struct fab_http *http;
	uint64_t epoch;
	uint64_t next_seq;
	uint64_t gse_key; /* idempotency keys of GSE messages (GSE has none) */
	uint64_t next_notify_unique;
	struct waiter *waiters;
	int req_waiters;	    /* requests waiting for replies (read without the lock) */
	uint64_t last_ensured_slot; /* the syncer's: that slot's deliverer exists */
	struct conn *dirty;
	struct deliverer *deliverers;
	struct nats_agent *nats;

	bool closing; /* shutting down: no thread may start waiting for a plugin */
	int epfd, evfd, lfd, gse_lfd;
	/* accept() ran out of descriptors: the listeners are not watched until then (I/O
	 * thread; 0 while they are watched). */
	int64_t accept_resume_ns;
	uint32_t accept_delay_ms;
	uint64_t accept_failures;
	struct mimo_ratelimit accept_rl;
	struct conn *conns; /* open connections (I/O thread) */
	bool stop;
	pthread_t io_thread;
	uint64_t conns_total;
	uint64_t plugins_refused; /* HELLOs and GSE keepalives refused (no slot, pid, name) */
	uint64_t up_delivered;	  /* callbacks answered 2xx */
	uint64_t up_dropped;	  /* refused for good, expired, or their slot deleted */
	uint64_t up_retried;	  /* callback attempts that failed and were tried again */
};

/* conn.c */
int agent_io_start(struct agent *a);
void agent_io_stop(struct agent *a);
/* Write what a connection has queued (under a->lock), then let its plugin's queue move into
 * the room that made (plugin_pump_locked). */
void conn_flush_locked(struct agent *a, struct conn *c);
/* Only write (plugin_pump_locked's own). */
void conn_write_locked(struct agent *a, struct conn *c);
void conn_unref_locked(struct agent *a, struct conn *c);
/* The up-queue's hooks: request-reply matching and batched ACK writes. */
void agent_upq_hooks(struct agent *a, struct upq_hooks *h);
/* Append a frame to a connection's output (under a->lock); flushed by the caller. */
int conn_queue_locked(struct conn *c, const void *frame, size_t len);

/* plugins.c */
struct plugin *plugin_get_locked(struct agent *a, const char *name, bool create);
/* Bind c to its plugin (HELLO or GSE's first frame): 0, -EPERM (no slot), -EEXIST. */
int plugin_attach_locked(struct agent *a, struct conn *c, const char *name, uint64_t *slot_id);
void plugin_detach_locked(struct agent *a, struct conn *c);
/* Move queued messages onto the connection, within the window and while the connection's
 * unsent output is under DOWN_OUT_HIGH; release GSE messages whose bytes left. */
void plugin_pump_locked(struct agent *a, struct plugin *p);
void plugin_ack_locked(struct agent *a, struct plugin *p, uint64_t seq);
void plugins_expire_locked(struct agent *a);
/* A NOTIFY_REPLY from a plugin. */
void plugin_notify_reply_locked(struct agent *a, struct plugin *p, uint64_t notify_unique,
				int error, const void *data, size_t len);
/* The up-queue's hook: a committed record answers a waiting request (true = taken). */
bool agent_committed(void *arg, const struct up_rec *r);

/* The agent's operations (the embedded backend and the NATS requests both call these). */
void agent_dispatch(struct agent *a, const struct slot_info *slot, const char *message_id,
		    const void *content, size_t len, uint32_t ttl_ms, struct fab_result *out);
void agent_request(struct agent *a, const struct slot_info *slot, const char *message_id,
		   const void *content, size_t len, uint32_t timeout_ms, struct fab_result *out);
int agent_cache(struct agent *a, const struct fab_cache_req *req, struct mimo_buf *data,
		char *reason, size_t reason_len);
json_t *agent_health(struct agent *a);
/* Shutdown: wake every thread waiting for a plugin (-ESHUTDOWN) and refuse new waits. */
void agent_cancel_waiters(struct agent *a);
void agent_backend_init(struct agent *a, struct fab_backend *be);

/* deliver.c: one thread per slot posting its messages to the callback. */
/* Start slot_id's delivery thread unless it runs (-ESHUTDOWN once the agent stops). */
int deliver_ensure_locked(struct agent *a, uint64_t slot_id);
/* Stop and join every delivery thread (what they were posting stays queued). */
void deliver_stop_all(struct agent *a);

/* metrics.c: the Prometheus families (--metrics), from the counters /v1/health reads;
 * arg is the agent. Any thread. */
struct mimo_expo;
void agent_metrics_collect(void *arg, struct mimo_expo *e);

/* nats_agent.c */
int nats_agent_start(struct agent *a);
void nats_agent_stop(struct agent *a);

#endif
