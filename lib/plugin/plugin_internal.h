/*
 * libmimo_plugin's private state. Three threads per plugin:
 *  - the I/O thread (io.c) owns the socket: connects with backoff, says HELLO, writes control
 *    frames and the send queue, reads frames, matches SEND replies, applies cache notifies;
 *  - the callback thread (callbacks.c) runs the application's callbacks from a queue, so a
 *    slow callback never stops the reader, and acknowledges DISPATCHes once they returned;
 *  - any application thread calls the API.
 * One mutex (p->lock) guards everything below it in struct mimo_plugin; the cache has its own.
 */
#ifndef MIMO_PLUGIN_INTERNAL_H
#define MIMO_PLUGIN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "mimo/plugin.h"
#include "mimo/wire.h"

#define COMP "plugin"

/* Uniques of control requests (HELLO, PING, ACK) have the top bit set; SEND uniques count up
 * from 1 without it. The agent answers SENDs in the order they were sent (docs/protocol.md),
 * so a SEND reply always belongs to the oldest SEND written and not yet answered. */
#define CTRL_UNIQUE_BIT (1ULL << 63)

/* One message sent up: its whole SEND frame, kept until the agent acknowledges it. */
struct out_msg {
	struct out_msg *next;
	size_t len;
	bool written; /* on some connection already: writing it again is a resend */
	uint8_t frame[];
};

/* Work for the callback thread. */
enum cb_kind {
	CB_DISPATCH,
	CB_NOTIFY,
	CB_RETRIEVE,
};

struct cb_item {
	struct cb_item *next;
	enum cb_kind kind;
	int code;		/* CB_NOTIFY: the notify code */
	uint64_t seq;		/* CB_DISPATCH */
	uint64_t epoch;		/* CB_DISPATCH: the agent run that sent it */
	uint64_t conn_gen;	/* the connection it came on */
	uint64_t notify_unique; /* CB_RETRIEVE */
	uint64_t offset;
	uint64_t size;
	char *id; /* CB_DISPATCH: message id; CB_NOTIFY / CB_RETRIEVE: key (NULL for POLL) */
	size_t len;
	uint8_t data[]; /* CB_DISPATCH content */
};

struct plugin_cache;

struct mimo_plugin {
	struct mimo_plugin_opts o; /* strings below are our copies */
	char *name, *version, *socket_path;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* launch, flush and send waiters */
	bool launched;
	bool stopping;
	bool cb_stop;	/* destroy: the callback thread finishes and sends its last ACK */
	bool connected; /* HELLO accepted on the current connection */
	bool ever_connected;
	int last_error; /* last refusal or connection error, for logs */
	struct mimo_plugin_agent_info info;

	/* Send queue: [head, wnext) written on this connection and awaiting replies, in order;
	 * from wnext on not yet written (woff bytes of wnext already are). */
	struct out_msg *head, *tail, *wnext;
	size_t woff;
	uint64_t count, bytes;
	uint64_t next_unique; /* SEND uniques */
	uint64_t key_hi, key_lo;

	/* Control frames (HELLO first on a new connection, ACK, PING, NOTIFY_REPLY). */
	struct mimo_buf ctrl;
	size_t ctrl_off;
	bool data_partial; /* a data frame is partly written: finish it before control */
	uint64_t next_ctrl;
	uint64_t conn_gen; /* bumped on each new connection */

	/* Callback queue. */
	struct cb_item *cb_head, *cb_tail;
	pthread_cond_t cb_cond;
	uint64_t last_seq; /* highest DISPATCH seq passed to recv_cb in epoch cb_epoch */
	uint64_t cb_epoch;

	int evfd;     /* wakes the I/O thread */
	bool io_idle; /* the I/O thread sleeps (or is about to): writers must wake it */

	struct mimo_plugin_stats st;
	pthread_t io_thread, cb_thread;
	bool threads_started;

	struct plugin_cache *cache;
};

void plugin_log(struct mimo_plugin *p, enum mimo_plugin_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Wake the I/O thread if it sleeps. With p->lock held. */
void plugin_kick_locked(struct mimo_plugin *p);
/* Append a control frame (under p->lock) and wake the writer. */
int plugin_ctrl_append_locked(struct mimo_plugin *p, const void *frame, size_t len);
/* A fresh control unique. With p->lock held. */
uint64_t plugin_ctrl_unique_locked(struct mimo_plugin *p);

void *plugin_io_main(void *arg);
void *plugin_cb_main(void *arg);
/* Queue work for the callback thread (takes item). With p->lock held. */
void plugin_cb_push_locked(struct mimo_plugin *p, struct cb_item *item);

/* The cache (cache.c): its own lock; safe from any thread. */
struct plugin_cache *plugin_cache_new(uint64_t max_bytes);
void plugin_cache_free(struct plugin_cache *c);
int plugin_cache_store(struct plugin_cache *c, const char *key, size_t key_len, uint64_t offset,
		       const void *data, size_t len);
void plugin_cache_inval(struct plugin_cache *c, const char *key, size_t key_len, uint64_t offset,
			uint64_t size);
void plugin_cache_delete(struct plugin_cache *c, const char *key, size_t key_len);
long plugin_cache_read(struct plugin_cache *c, const char *key, size_t key_len, uint64_t offset,
		       void *buf, size_t len, uint64_t *total);

#endif
