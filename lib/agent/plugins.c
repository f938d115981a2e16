/*
 * Plugins as the agent sees them: one entry per plugin name, its connection (if any), the
 * messages waiting to go down and those written but not yet acknowledged, and the threads
 * waiting for an answer from it (request-reply, RETRIEVE). Every function here runs under
 * a->lock except the agent_* operations, which take it.
 *
 * Down delivery is at least once per connection: a DISPATCH stays in flight until the plugin
 * ACKs it; if the connection breaks first it goes back to the head of the queue and is sent
 * again, with the same sequence number, on the next connection (the SDK recognises it). GSE's
 * protocol has no ACK: there a message counts as delivered once all its bytes went into the
 * socket; one the socket has not taken whole when the connection breaks is queued again.
 *
 * What the agent holds for a plugin - queued, and written but not yet delivered - is bounded
 * by --down-queue (messages) and --down-queue-mb (bytes), whatever the plugin speaks; past
 * that a dispatch fails with 429. Messages move from the queue to the connection's output only
 * while less than DOWN_OUT_HIGH of it is unsent, so a plugin that stops reading holds at most
 * its queue's bound plus one such buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agent.h"
#include "bodies.h"
#include "clock.h"
#include "log.h"

#define COMP "agent"

/* Bytes of a connection's output the agent fills ahead of the socket. */
#define DOWN_OUT_HIGH (1u << 20)

static struct mimo_ratelimit g_rl_drop;

struct plugin *plugin_get_locked(struct agent *a, const char *name, bool create)
{
	struct plugin *p;

	for (p = a->plugins; p != NULL; p = p->next) {
		if (strcmp(p->name, name) == 0)
			return p;
	}
	if (!create)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->next = a->plugins;
	a->plugins = p;
	return p;
}

static void item_free(struct down_item *it)
{
	free(it->id);
	free(it->content);
	free(it);
}

int plugin_attach_locked(struct agent *a, struct conn *c, const char *name, uint64_t *slot_id)
{
	struct slot_info si;
	struct plugin *p;

	if (slots_find_plugin(a->slots, name, &si) != 0)
		return -EPERM;
	p = plugin_get_locked(a, name, true);
	if (p == NULL)
		return -ENOMEM;
	if (p->conn != NULL)
		return -EEXIST;
	p->slot_id = si.id;
	p->proto = c->gse ? PROTO_GSE : PROTO_NATIVE;
	p->conn = c;
	c->plugin = p;
	c->state = CONN_READY;
	*slot_id = si.id;
	return 0;
}

static void fail_waiters_locked(struct agent *a, struct plugin *p, bool retrieves_only)
{
	for (struct waiter *w = a->waiters; w != NULL; w = w->next) {
		if (!w->done && w->notify_unique != 0 && strcmp(w->plugin, p->name) == 0) {
			w->done = true;
			w->status = -ENOTCONN;
			pthread_cond_broadcast(&w->cond);
		}
	}
	(void)retrieves_only;
}

/* The head of the in-flight list is done (acknowledged, or for GSE sent whole). */
static void inflight_done_locked(struct plugin *p)
{
	struct down_item *it = p->in_head;

	p->in_head = it->next;
	if (p->in_head == NULL)
		p->in_tail = NULL;
	p->inflight--;
	p->inflight_bytes -= it->len;
	p->delivered++;
	item_free(it);
}

/* GSE has no ACK: a message whose bytes all went into the socket is delivered. */
static void gse_release_locked(struct plugin *p, struct conn *c)
{
	while (p->in_head != NULL && p->in_head->out_end <= c->out_sent)
		inflight_done_locked(p);
}

void plugin_detach_locked(struct agent *a, struct conn *c)
{
	struct plugin *p = c->plugin;

	if (p == NULL || p->conn != c)
		return;
	if (c->gse)
		gse_release_locked(p, c);
	p->conn = NULL;
	/* Unacknowledged messages (GSE: not sent whole) go back to the head of the queue, oldest
	 * first. */
	if (p->in_head != NULL) {
		p->in_tail->next = p->q_head;
		if (p->q_head == NULL)
			p->q_tail = p->in_tail;
		p->q_head = p->in_head;
		p->queued += p->inflight;
		p->queued_bytes += p->inflight_bytes;
		p->in_head = p->in_tail = NULL;
		p->inflight = 0;
		p->inflight_bytes = 0;
	}
	/* A RETRIEVE asked on this connection will not be answered. */
	fail_waiters_locked(a, p, true);
}

/* The meta of a GSE dispatch frame, {"message_id", "session_id": ""}: its length, or -ENOMEM. */
static long gse_meta(const char *id, size_t id_len, char *out, size_t out_len)
{
	json_t *j = json_pack("{s:s%, s:s}", "message_id", id, id_len, "session_id", "");
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	long n;

	json_decref(j);
	if (text == NULL)
		return -ENOMEM;
	n = snprintf(out, out_len, "%s", text);
	free(text);
	return n;
}

#define GSE_META_MAX (MIMO_WIRE_MAX_MSG_ID * 6 + 64)

/* Whether a GSE plugin's SDK can receive this message (its reader fails on a longer frame,
 * and the message would be lost). */
static bool gse_fits(const char *id, size_t len)
{
	char meta[GSE_META_MAX];
	long m = gse_meta(id, strlen(id), meta, sizeof(meta));

	return m > 0 && mimo_gse_size((size_t)m, len) <= MIMO_GSE_SDK_MAX_FRAME;
}

static int write_item_locked(struct agent *a, struct conn *c, struct down_item *it)
{
	uint8_t *f;
	size_t n;
	int rc;

	(void)a;
	if (c->gse) {
		char meta[GSE_META_MAX];
		long m = gse_meta(it->id, it->id_len, meta, sizeof(meta));

		if (m < 0)
			return (int)m;
		n = mimo_gse_size((size_t)m, it->len);
		if (n > MIMO_GSE_SDK_MAX_FRAME)
			return -EMSGSIZE;
		f = malloc(n);
		if (f == NULL)
			return -ENOMEM;
		mimo_gse_encode(f, MIMO_GSE_DISPATCH, ++c->gse_seq, meta, strlen(meta), it->content,
				it->len, true);
	} else {
		struct mimo_wire_dispatch d = { .seq = it->seq,
						.id = it->id,
						.id_len = it->id_len,
						.content = it->content,
						.content_len = it->len };

		n = mimo_wire_dispatch_size(it->id_len, it->len);
		f = malloc(n);
		if (f == NULL)
			return -ENOMEM;
		mimo_wire_encode_dispatch(f, &d);
	}
	rc = conn_queue_locked(c, f, n);
	free(f);
	return rc;
}

static size_t out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

/* Take the queue's head off the queue. */
static struct down_item *queue_pop_locked(struct plugin *p)
{
	struct down_item *it = p->q_head;

	p->q_head = it->next;
	if (p->q_head == NULL)
		p->q_tail = NULL;
	it->next = NULL;
	p->queued--;
	p->queued_bytes -= it->len;
	return it;
}

void plugin_pump_locked(struct agent *a, struct plugin *p)
{
	struct conn *c = p->conn;

	if (c == NULL || c->state != CONN_READY)
		return;
	for (;;) {
		bool wrote = false;

		while (p->q_head != NULL && (c->gse || p->inflight < a->o.inflight_max) &&
		       out_pending(c) < DOWN_OUT_HIGH) {
			struct down_item *it = p->q_head;
			int rc = write_item_locked(a, c, it);

			if (rc == -EMSGSIZE) {
				/* Queued before the agent knew the plugin speaks GSE. */
				uint64_t sup;

				item_free(queue_pop_locked(p));
				p->too_large++;
				if (mimo_ratelimit_allow(&g_rl_drop, 1000000000, &sup))
					MIMO_WARN(
						COMP,
						"plugin %s: a queued message is larger than GSE's "
						"SDK receives (%u bytes a frame); dropped",
						p->name, MIMO_GSE_SDK_MAX_FRAME);
				continue;
			}
			if (rc != 0)
				break;
			wrote = true;
			it = queue_pop_locked(p);
			it->out_end = c->out_queued;
			if (p->in_tail != NULL)
				p->in_tail->next = it;
			else
				p->in_head = it;
			p->in_tail = it;
			p->inflight++;
			p->inflight_bytes += it->len;
		}
		conn_write_locked(a, c);
		if (c->gse)
			gse_release_locked(p, c);
		/* Stop when nothing moved, or the socket takes no more for now (EPOLLOUT brings
		 * the I/O thread back here through conn_flush_locked). */
		if (!wrote || c->broken || out_pending(c) >= DOWN_OUT_HIGH)
			break;
	}
}

void plugin_ack_locked(struct agent *a, struct plugin *p, uint64_t seq)
{
	while (p->in_head != NULL && p->in_head->seq <= seq)
		inflight_done_locked(p);
	plugin_pump_locked(a, p);
}

void plugins_expire_locked(struct agent *a)
{
	int64_t now = mimo_now_ns();

	for (struct plugin *p = a->plugins; p != NULL; p = p->next) {
		struct down_item **pp = &p->q_head, *last = NULL;
		uint64_t dropped = 0;

		while (*pp != NULL) {
			struct down_item *it = *pp;

			if (it->expires_ns <= now) {
				*pp = it->next;
				p->queued--;
				p->queued_bytes -= it->len;
				item_free(it);
				dropped++;
			} else {
				last = it;
				pp = &it->next;
			}
		}
		p->q_tail = last;
		if (dropped > 0) {
			uint64_t sup;

			p->dropped += dropped;
			if (mimo_ratelimit_allow(&g_rl_drop, 1000000000, &sup))
				MIMO_WARN(COMP,
					  "plugin %s: %" PRIu64 " queued message(s) expired before "
					  "it connected",
					  p->name, dropped);
		}
		/* A connection whose slot was deleted goes. */
		if (p->conn != NULL && slots_find_plugin(a->slots, p->name, NULL) != 0 &&
		    !p->conn->broken) {
			MIMO_INFO(COMP, "plugin %s: its slot was deleted; disconnecting", p->name);
			p->conn->broken = true;
			shutdown(p->conn->fd, SHUT_RDWR);
		}
	}
}

void plugin_notify_reply_locked(struct agent *a, struct plugin *p, uint64_t notify_unique,
				int error, const void *data, size_t len)
{
	for (struct waiter *w = a->waiters; w != NULL; w = w->next) {
		if (w->notify_unique == notify_unique && !w->done &&
		    strcmp(w->plugin, p->name) == 0) {
			w->data = malloc(len > 0 ? len : 1);
			if (w->data == NULL) {
				w->status = -ENOMEM;
			} else {
				if (len > 0)
					memcpy(w->data, data, len);
				w->len = len;
				w->status = error;
			}
			w->done = true;
			pthread_cond_broadcast(&w->cond);
			return;
		}
	}
}

bool agent_committed(void *arg, const struct up_rec *r)
{
	struct agent *a = arg;
	bool taken = false;

	/* The common case without a lock: nobody waits for a reply and the slot's delivery
	 * thread exists already (deliverers live until the agent stops). */
	if (__atomic_load_n(&a->req_waiters, __ATOMIC_ACQUIRE) == 0 &&
	    (a->o.nats_url != NULL || r->slot_id == a->last_ensured_slot))
		return false;
	pthread_mutex_lock(&a->lock);
	for (struct waiter *w = a->waiters; w != NULL && !taken; w = w->next) {
		if (w->done || w->notify_unique != 0 || strlen(w->plugin) != r->plugin_len ||
		    memcmp(w->plugin, r->plugin, r->plugin_len) != 0 ||
		    strlen(w->msg_id) != r->msg_id_len ||
		    memcmp(w->msg_id, r->msg_id, r->msg_id_len) != 0)
			continue;
		w->data = malloc(r->content_len > 0 ? r->content_len : 1);
		if (w->data == NULL) {
			w->status = -ENOMEM;
		} else {
			if (r->content_len > 0)
				memcpy(w->data, r->content, r->content_len);
			w->len = r->content_len;
		}
		w->done = true;
		pthread_cond_broadcast(&w->cond);
		taken = true;
	}
	if (!taken && a->o.nats_url == NULL && deliver_ensure_locked(a, r->slot_id) == 0)
		a->last_ensured_slot = r->slot_id;
	pthread_mutex_unlock(&a->lock);
	return taken;
}

/* --- operations ---------------------------------------------------------------------------------
 */

static void set_failed(struct fab_result *out, int code, const char *reason)
{
	out->status = FAB_FAILED;
	out->code = code;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

static void dispatch_locked(struct agent *a, const struct slot_info *slot, const char *message_id,
			    const void *content, size_t len, uint32_t ttl_ms,
			    struct fab_result *out)
{
	struct plugin *p = plugin_get_locked(a, slot->plugin, true);
	struct down_item *it;

	memset(out, 0, sizeof(*out));
	if (p == NULL) {
		set_failed(out, FAB_ERR_INTERNAL, "out of memory");
		return;
	}
	if (p->conn == NULL && ttl_ms == 0) {
		set_failed(out, FAB_ERR_NOT_CONNECTED, "plugin not connected");
		return;
	}
	/* A GSE plugin's SDK cannot receive it: say so now rather than lose it there. */
	if ((p->conn != NULL ? p->conn->gse : p->proto == PROTO_GSE) &&
	    !gse_fits(message_id, len)) {
		set_failed(out, FAB_ERR_TOO_LARGE,
			   "message too large for the plugin (GSE's SDK receives at most "
			   "10485760 bytes a frame, 28-byte header and meta included)");
		return;
	}
	if (p->queued + p->inflight >= a->o.down_queue_max ||
	    p->queued_bytes + p->inflight_bytes + len > a->o.down_queue_max_bytes) {
		set_failed(out, FAB_ERR_QUEUE_FULL, "queue full");
		return;
	}
	it = calloc(1, sizeof(*it));
	if (it != NULL) {
		it->id = strdup(message_id);
		it->content = malloc(len > 0 ? len : 1);
	}
	if (it == NULL || it->id == NULL || it->content == NULL) {
		if (it != NULL)
			item_free(it);
		set_failed(out, FAB_ERR_INTERNAL, "out of memory");
		return;
	}
	it->seq = ++a->next_seq;
	it->id_len = strlen(message_id);
	if (len > 0)
		memcpy(it->content, content, len);
	it->len = len;
	it->expires_ns = mimo_now_ns() + (int64_t)ttl_ms * 1000000;
	if (p->q_tail != NULL)
		p->q_tail->next = it;
	else
		p->q_head = it;
	p->q_tail = it;
	p->queued++;
	p->queued_bytes += len;
	out->status = p->conn != NULL ? FAB_DELIVERED : FAB_QUEUED;
	plugin_pump_locked(a, p);
}

void agent_dispatch(struct agent *a, const struct slot_info *slot, const char *message_id,
		    const void *content, size_t len, uint32_t ttl_ms, struct fab_result *out)
{
	pthread_mutex_lock(&a->lock);
	dispatch_locked(a, slot, message_id, content, len, ttl_ms, out);
	pthread_mutex_unlock(&a->lock);
}

static void waiter_init(struct waiter *w)
{
	pthread_condattr_t ca;

	memset(w, 0, sizeof(*w));
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Wait (a->lock held) until w is done or timeout_ms passed; then unlink it. */
static void waiter_wait_locked(struct agent *a, struct waiter *w, uint32_t timeout_ms)
{
	struct timespec ts;
	struct waiter **pp;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cond, &a->lock, &ts) != 0)
			break;
	}
	for (pp = &a->waiters; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_cond_destroy(&w->cond);
}

void agent_cancel_waiters(struct agent *a)
{
	pthread_mutex_lock(&a->lock);
	a->closing = true;
	for (struct waiter *w = a->waiters; w != NULL; w = w->next) {
		if (!w->done) {
			w->done = true;
			w->status = -ESHUTDOWN;
			pthread_cond_broadcast(&w->cond);
		}
	}
	pthread_mutex_unlock(&a->lock);
}

void agent_request(struct agent *a, const struct slot_info *slot, const char *message_id,
		   const void *content, size_t len, uint32_t timeout_ms, struct fab_result *out)
{
	struct waiter w;

	memset(out, 0, sizeof(*out));
	waiter_init(&w);
	snprintf(w.plugin, sizeof(w.plugin), "%s", slot->plugin);
	snprintf(w.msg_id, sizeof(w.msg_id), "%s", message_id);
	pthread_mutex_lock(&a->lock);
	if (a->closing) {
		pthread_mutex_unlock(&a->lock);
		pthread_cond_destroy(&w.cond);
		set_failed(out, FAB_ERR_NOT_CONNECTED, "agent stopping");
		return;
	}
	for (struct waiter *o = a->waiters; o != NULL; o = o->next) {
		if (o->notify_unique == 0 && strcmp(o->plugin, w.plugin) == 0 &&
		    strcmp(o->msg_id, w.msg_id) == 0) {
			pthread_mutex_unlock(&a->lock);
			pthread_cond_destroy(&w.cond);
			set_failed(out, 409, "a request with this message_id is already waiting");
			return;
		}
	}
	/* Registered before the dispatch: a fast plugin's reply cannot be missed. */
	w.next = a->waiters;
	a->waiters = &w;
	__atomic_add_fetch(&a->req_waiters, 1, __ATOMIC_RELEASE);
	dispatch_locked(a, slot, message_id, content, len, timeout_ms, out);
	if (out->status != FAB_FAILED) {
		waiter_wait_locked(a, &w, timeout_ms);
		__atomic_sub_fetch(&a->req_waiters, 1, __ATOMIC_RELEASE);
		if (!w.done) {
			set_failed(out, FAB_ERR_TIMEOUT, "timeout");
		} else if (w.status != 0) {
			set_failed(out, FAB_ERR_INTERNAL, strerror(-w.status));
			free(w.data);
		} else {
			out->status = FAB_DELIVERED;
			out->reply = w.data;
			out->reply_len = w.len;
		}
	} else {
		struct waiter **pp;

		__atomic_sub_fetch(&a->req_waiters, 1, __ATOMIC_RELEASE);
		for (pp = &a->waiters; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == &w) {
				*pp = w.next;
				break;
			}
		}
		pthread_cond_destroy(&w.cond);
	}
	pthread_mutex_unlock(&a->lock);
}

int agent_cache(struct agent *a, const struct fab_cache_req *req, struct mimo_buf *data,
		char *reason, size_t reason_len)
{
	struct mimo_wire_cache c = { 0 };
	struct waiter w;
	struct plugin *p;
	uint8_t *f;
	size_t n;
	int status = 200;

	pthread_mutex_lock(&a->lock);
	p = plugin_get_locked(a, req->plugin, false);
	if (a->closing) {
		pthread_mutex_unlock(&a->lock);
		snprintf(reason, reason_len, "agent stopping");
		return 503;
	}
	if (p == NULL || p->conn == NULL) {
		pthread_mutex_unlock(&a->lock);
		snprintf(reason, reason_len, "plugin %s not connected", req->plugin);
		return 503;
	}
	if (p->conn->gse) {
		pthread_mutex_unlock(&a->lock);
		snprintf(reason, reason_len, "plugin %s speaks GSE's protocol, which has no cache",
			 req->plugin);
		return 501;
	}
	c.key = req->key;
	c.key_len = req->key != NULL ? strlen(req->key) : 0;
	c.offset = req->offset;
	switch (req->op) {
	case FAB_CACHE_STORE:
		c.code = MIMO_WIRE_NOTIFY_STORE;
		c.size = req->len;
		c.data = req->data;
		break;
	case FAB_CACHE_RETRIEVE:
		c.code = MIMO_WIRE_NOTIFY_RETRIEVE;
		c.size =
			req->size == 0 || req->size > FAB_MAX_CONTENT ? FAB_MAX_CONTENT : req->size;
		c.notify_unique = ++a->next_notify_unique;
		break;
	case FAB_CACHE_DELETE:
		c.code = MIMO_WIRE_NOTIFY_DELETE;
		break;
	case FAB_CACHE_INVAL:
		c.code = MIMO_WIRE_NOTIFY_INVAL;
		c.size = req->size;
		break;
	case FAB_CACHE_POLL:
		c.code = MIMO_WIRE_NOTIFY_POLL;
		c.kh = req->size;
		break;
	}
	n = mimo_wire_cache_size(&c);
	f = malloc(n);
	if (f == NULL) {
		pthread_mutex_unlock(&a->lock);
		snprintf(reason, reason_len, "out of memory");
		return 500;
	}
	mimo_wire_encode_cache(f, &c);
	if (req->op == FAB_CACHE_RETRIEVE) {
		waiter_init(&w);
		snprintf(w.plugin, sizeof(w.plugin), "%s", req->plugin);
		w.notify_unique = c.notify_unique;
		w.next = a->waiters;
		a->waiters = &w;
	}
	conn_queue_locked(p->conn, f, n);
	conn_flush_locked(a, p->conn);
	free(f);
	if (req->op == FAB_CACHE_RETRIEVE) {
		waiter_wait_locked(a, &w, req->timeout_ms);
		if (!w.done) {
			snprintf(reason, reason_len, "plugin did not answer within %u ms",
				 req->timeout_ms);
			status = 504;
		} else if (w.status == -ENOENT) {
			snprintf(reason, reason_len, "plugin %s has no cache entry \"%s\"",
				 req->plugin, req->key);
			status = 404;
		} else if (w.status == -ENODATA) {
			snprintf(reason, reason_len, "range not cached");
			status = 416;
		} else if (w.status != 0) {
			snprintf(reason, reason_len, "plugin answered: %s", strerror(-w.status));
			status = w.status == -ENOTCONN ? 503 : 502;
		} else {
			mimo_buf_append(data, w.data, w.len);
		}
		free(w.data);
	}
	pthread_mutex_unlock(&a->lock);
	return status;
}

json_t *agent_health(struct agent *a)
{
	json_t *plugins = json_array();
	uint64_t delivered, dropped, refused;
	struct upq_stats st;

	pthread_mutex_lock(&a->lock);
	for (struct plugin *p = a->plugins; p != NULL; p = p->next)
		json_array_append_new(
			plugins,
			json_pack("{s:s, s:I, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				  "name", p->name, "slot_id", (json_int_t)p->slot_id, "connected",
				  p->conn != NULL, "protocol",
				  p->conn == NULL ? ""
				  : p->conn->gse  ? "gse"
						  : "native",
				  "pid", (json_int_t)(p->conn != NULL ? p->conn->pid : 0), "queued",
				  (json_int_t)p->queued, "inflight", (json_int_t)p->inflight,
				  "held_bytes", (json_int_t)(p->queued_bytes + p->inflight_bytes),
				  "delivered", (json_int_t)p->delivered, "expired",
				  (json_int_t)p->dropped, "too_large", (json_int_t)p->too_large,
				  "up", (json_int_t)p->up));
	delivered = __atomic_load_n(&a->up_delivered, __ATOMIC_RELAXED);
	dropped = __atomic_load_n(&a->up_dropped, __ATOMIC_RELAXED);
	refused = a->plugins_refused;
	pthread_mutex_unlock(&a->lock);
	upq_get_stats(a->upq, &st);
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
			 "agent_id", a->o.agent_id, "version", MIMO_VERSION, "mode",
			 a->o.nats_url != NULL ? "nats" : "embedded", "plugins", plugins,
			 "plugins_refused", (json_int_t)refused, "upq", "appended",
			 (json_int_t)st.appended, "duplicates", (json_int_t)st.duplicates,
			 "commits", (json_int_t)st.commits, "fsyncs", (json_int_t)st.fsyncs,
			 "segments", (json_int_t)st.segments, "delivered", (json_int_t)delivered,
			 "dropped", (json_int_t)dropped);
}

/* --- the embedded backend: the API reaches this agent's own plugins -----------------------------
 */

static void be_dispatch(void *ctx, const char *agent_id, const struct slot_info *slot,
			const char *message_id, const void *content, size_t len, uint32_t ttl_ms,
			struct fab_result *out)
{
	struct agent *a = ctx;

	if (strcmp(agent_id, a->o.agent_id) != 0) {
		memset(out, 0, sizeof(*out));
		set_failed(out, FAB_ERR_UNKNOWN_AGENT, "unknown agent");
		return;
	}
	agent_dispatch(a, slot, message_id, content, len, ttl_ms, out);
}

static void be_request(void *ctx, const char *const *agent_ids, size_t n,
		       const struct slot_info *slot, const char *message_id,
		       const uint8_t *const *contents, const size_t *lens, uint32_t timeout_ms,
		       struct fab_result *out)
{
	struct agent *a = ctx;

	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		if (strcmp(agent_ids[i], a->o.agent_id) != 0)
			set_failed(&out[i], FAB_ERR_UNKNOWN_AGENT, "unknown agent");
		else
			agent_request(a, slot, message_id, contents[i], lens[i], timeout_ms,
				      &out[i]);
	}
}

static int be_cache(void *ctx, const char *agent_id, const struct fab_cache_req *req,
		    struct mimo_buf *data, char *reason, size_t reason_len)
{
	struct agent *a = ctx;

	if (strcmp(agent_id, a->o.agent_id) != 0) {
		snprintf(reason, reason_len, "unknown agent");
		return 404;
	}
	return agent_cache(a, req, data, reason, reason_len);
}

static json_t *be_health(void *ctx)
{
	return agent_health(ctx);
}

void agent_backend_init(struct agent *a, struct fab_backend *be)
{
	be->ctx = a;
	be->dispatch = be_dispatch;
	be->request = be_request;
	be->cache = be_cache;
	be->health = be_health;
}
