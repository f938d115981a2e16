/*
 * The agent's plugin sockets: the I/O thread accepts connections on the native socket (mimo's
 * FUSE-style frames) and on the GSE socket (BlueKing GSE's IPC), checks the peer's
 * credentials, reads frames and acts on them. Output is written by whichever thread produced
 * it (under a->lock, non-blocking); the I/O thread only finishes writes the socket refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "bodies.h"
#include "clock.h"
#include "file.h"
#include "compiler.h"
#include "log.h"

#define COMP	   "agent"
#define READ_CHUNK (256u << 10)
#define TICK_MS	   100

static struct mimo_ratelimit g_rl_bad;
static struct mimo_ratelimit g_rl_noslot;

/* --- output --------------------------------------------------------------------------------- */

int conn_queue_locked(struct conn *c, const void *frame, size_t len)
{
	int rc;

	if (c->state == CONN_CLOSED || c->broken)
		return -EPIPE;
	rc = mimo_buf_append(&c->out, frame, len);
	if (rc == 0)
		c->out_queued += len;
	return rc;
}

static void watch_locked(struct agent *a, struct conn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->want_out == out || c->fd < 0)
		return;
	c->want_out = out;
	epoll_ctl(a->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* An output buffer emptied keeps at most this much memory. */
#define OUT_KEEP (256u << 10)

void conn_write_locked(struct agent *a, struct conn *c)
{
	while (c->fd >= 0 && !c->broken && c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				watch_locked(a, c, true);
				return;
			}
			/* The I/O thread sees the hang-up and closes the connection. */
			c->broken = true;
			return;
		}
		c->out_off += (size_t)n;
		c->out_sent += (uint64_t)n;
	}
	if (c->out_off == c->out.len) {
		/* A large message passed: give its memory back. */
		if (c->out.cap > OUT_KEEP)
			mimo_buf_free(&c->out);
		else
			mimo_buf_reset(&c->out);
		c->out_off = 0;
		watch_locked(a, c, false);
	} else if (c->out_off > (1u << 20)) {
		mimo_buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
}

void conn_flush_locked(struct agent *a, struct conn *c)
{
	conn_write_locked(a, c);
	if (c->state == CONN_READY && c->plugin != NULL && c->plugin->conn == c)
		plugin_pump_locked(a, c->plugin);
}

static void mark_dirty_locked(struct agent *a, struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->next_dirty = a->dirty;
		a->dirty = c;
	}
}

static void conn_free(struct conn *c)
{
	mimo_buf_free(&c->in);
	mimo_buf_free(&c->out);
	free(c->rq);
	free(c);
}

void conn_unref_locked(struct agent *a, struct conn *c)
{
	(void)a;
	if (--c->refs == 0) {
		/* Off the dirty list before it goes. */
		struct conn **pp = &a->dirty;

		while (*pp != NULL && *pp != c)
			pp = &(*pp)->next_dirty;
		if (*pp == c)
			*pp = c->next_dirty;
		conn_free(c);
	}
}

/* --- replies to SENDs, in order ------------------------------------------------------------ */

static struct reply_ent *rq_at(struct conn *c, size_t logical)
{
	return &c->rq[logical % c->rq_cap];
}

static int rq_push_locked(struct conn *c, uint64_t unique, bool done, int32_t status)
{
	if (c->rq_tail - c->rq_head == c->rq_cap) {
		size_t cap = c->rq_cap ? c->rq_cap * 2 : 64;
		struct reply_ent *n = malloc(cap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		for (size_t i = c->rq_head; i < c->rq_tail; i++)
			n[i % cap] = *rq_at(c, i);
		free(c->rq);
		c->rq = n;
		c->rq_cap = cap;
	}
	*rq_at(c, c->rq_tail++) = (struct reply_ent){ unique, status, done };
	return 0;
}

/* Answer every finished SEND at the head of the line. */
static void rq_drain_locked(struct agent *a, struct conn *c)
{
	(void)a;
	while (c->rq_head < c->rq_tail && rq_at(c, c->rq_head)->done) {
		struct reply_ent *e = rq_at(c, c->rq_head++);
		uint8_t f[MIMO_WIRE_HDR_LEN];

		mimo_wire_encode_reply(f, e->unique, e->status);
		conn_queue_locked(c, f, sizeof(f));
	}
}

/* The up-queue finished one of this connection's appends (they finish in order). */
static void native_send_done(void *arg, int status)
{
	struct conn *c = arg;
	struct agent *a = c->agent;

	/* a->lock is held: batch_begin took it for the whole group. */
	for (size_t i = c->rq_head; i < c->rq_tail; i++) {
		struct reply_ent *e = rq_at(c, i);

		if (!e->done) {
			e->done = true;
			e->status = status;
			break;
		}
	}
	rq_drain_locked(a, c);
	if (c->out.len > c->out_off)
		mark_dirty_locked(a, c);
	conn_unref_locked(a, c);
}

static void gse_send_done(void *arg, int status)
{
	struct conn *c = arg;

	(void)status;
	conn_unref_locked(c->agent, c); /* under a->lock (batch_begin) */
}

static void batch_begin(void *arg)
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->lock);
}

/* After a group's completions: write the ACKs they queued, one send per connection. */
static void batch_end(void *arg)
{
	struct agent *a = arg;

	while (a->dirty != NULL) {
		struct conn *c = a->dirty;

		a->dirty = c->next_dirty;
		c->dirty = false;
		conn_flush_locked(a, c);
	}
	pthread_mutex_unlock(&a->lock);
}

void agent_upq_hooks(struct agent *a, struct upq_hooks *h)
{
	h->arg = a;
	h->committed = agent_committed;
	h->batch_begin = batch_begin;
	h->batch_end = batch_end;
}

/* --- peers ----------------------------------------------------------------------------------- */

static bool process_name_is(pid_t pid, const char *name)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	/* comm holds at most 15 characters. */
	return strncmp(comm, name, 15) == 0 && (strlen(name) >= 15 || strlen(comm) == strlen(name));
}

/* Checks common to HELLO and GSE's first frame; then attaches. Returns 0 or -errno. */
static int bind_plugin_locked(struct agent *a, struct conn *c, const char *name, int64_t pid,
			      uint64_t *slot_id)
{
	uint64_t sup = 0;
	int rc;

	/* A plugin that says which process it is must be that process (pid 0: unknown, e.g.
	 * from another pid namespace). */
	if (pid != 0 && pid != c->pid) {
		a->plugins_refused++;
		MIMO_WARN(COMP, "plugin %s refused: says pid %" PRId64 ", socket peer is pid %d",
			  name, pid, (int)c->pid);
		return -EPERM;
	}
	if (a->o.check_process_name && !process_name_is(c->pid, name)) {
		a->plugins_refused++;
		MIMO_WARN(COMP, "plugin %s refused: peer pid %d is not a process named %s", name,
			  (int)c->pid, name);
		return -EPERM;
	}
	rc = plugin_attach_locked(a, c, name, slot_id);
	if (rc != 0)
		a->plugins_refused++;
	/* A plugin started before its slot retries every second: one line per 10 s. */
	if (rc == -EPERM && mimo_ratelimit_allow(&g_rl_noslot, 10000000000LL, &sup))
		MIMO_WARN(COMP,
			  "plugin %s refused: no slot is registered for it (pid %d uid %d; %" PRIu64
			  " refusals not logged since the last such line)",
			  name, (int)c->pid, (int)c->uid, sup);
	else if (rc == -EEXIST)
		MIMO_WARN(COMP, "plugin %s refused: already connected (pid %d)", name, (int)c->pid);
	if (rc == 0)
		MIMO_INFO(COMP, "plugin %s connected over %s: pid %d uid %d gid %d exe %s", name,
			  c->gse ? "GSE IPC" : "native frames", (int)c->pid, (int)c->uid,
			  (int)c->gid, c->exe);
	return rc;
}

/* --- native frames -----------------------------------------------------------------------------
 */

static void reply_now_locked(struct conn *c, uint64_t unique, int32_t error)
{
	uint8_t f[MIMO_WIRE_HDR_LEN];

	mimo_wire_encode_reply(f, unique, error);
	conn_queue_locked(c, f, sizeof(f));
}

static void handle_hello(struct agent *a, struct conn *c, uint64_t unique, const uint8_t *body,
			 size_t len)
{
	struct mimo_wire_hello h;
	struct mimo_wire_welcome w = { 0 };
	uint64_t slot_id = 0;
	uint8_t frame[256];
	char name[MIMO_WIRE_MAX_NAME + 1];
	int rc = mimo_wire_decode_hello(body, len, &h);

	if (rc == 0 && h.proto != MIMO_WIRE_PROTO)
		rc = -EPROTONOSUPPORT;
	if (rc == 0 && c->state != CONN_NEW)
		rc = -EISCONN;
	if (rc != 0) {
		reply_now_locked(c, unique, rc);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)h.name_len, h.name);
	rc = bind_plugin_locked(a, c, name, h.pid, &slot_id);
	if (rc != 0) {
		reply_now_locked(c, unique, rc);
		return;
	}
	w.proto = MIMO_WIRE_PROTO;
	w.max_frame = MIMO_WIRE_MAX_FRAME;
	w.epoch = a->epoch;
	w.slot_id = slot_id;
	w.keepalive_ms = a->o.keepalive_ms;
	w.agent_id = a->o.agent_id;
	w.agent_id_len = strlen(a->o.agent_id);
	w.version = MIMO_VERSION;
	w.version_len = strlen(MIMO_VERSION);
	conn_queue_locked(c, frame, mimo_wire_encode_welcome(frame, unique, &w));
	plugin_pump_locked(a, c->plugin);
}

static void handle_send(struct agent *a, struct conn *c, uint64_t unique, const uint8_t *body,
			size_t len)
{
	struct mimo_wire_send s;
	struct up_rec r = { 0 };
	int64_t now_ms;
	int rc;

	if (c->state != CONN_READY) {
		rq_push_locked(c, unique, true, -EPROTO);
		return;
	}
	rc = mimo_wire_decode_send(body, len, &s);
	if (rc == 0 && s.content_len > FAB_MAX_CONTENT)
		rc = -EMSGSIZE;
	if (rc == 0 && s.ttl_ms > FAB_MAX_TTL_MS)
		rc = -EINVAL;
	if (rc != 0) {
		rq_push_locked(c, unique, true, rc);
		return;
	}
	now_ms = (int64_t)time(NULL) * 1000;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	r.key_hi = s.key_hi;
	r.key_lo = s.key_lo;
	r.slot_id = c->plugin->slot_id;
	r.accepted_ms = now_ms;
	r.expires_ms = now_ms + (s.ttl_ms != 0 ? s.ttl_ms : a->o.up_ttl_ms);
	r.plugin = c->plugin->name;
	r.plugin_len = strlen(c->plugin->name);
	r.msg_id = s.id;
	r.msg_id_len = s.id_len;
	r.content = s.content;
	r.content_len = s.content_len;
	if (rq_push_locked(c, unique, false, 0) != 0) {
		c->broken = true;
		return;
	}
	c->refs++;
	rc = upq_append(a->upq, &r, native_send_done, c);
	if (rc != 0) {
		/* Not queued: answer it in its turn (1 = a duplicate already durable). */
		struct reply_ent *e = rq_at(c, c->rq_tail - 1);

		e->done = true;
		e->status = rc == 1 ? 0 : rc;
		c->refs--;
		c->plugin->up += rc == 1;
		if (rc < 0) {
			uint64_t sup;

			if (mimo_ratelimit_allow(&g_rl_bad, 1000000000, &sup))
				MIMO_WARN(COMP, "plugin %s: message refused: %s", c->plugin->name,
					  strerror(-rc));
		}
	} else {
		c->plugin->up++;
	}
}

/* One native frame. Returns 0, or -errno to close the connection. */
static int handle_native(struct agent *a, struct conn *c, const struct mimo_wire_hdr *h,
			 const uint8_t *body, size_t len)
{
	uint64_t seq;

	if (h->unique == 0) {
		return -EPROTO; /* plugins never start notifies */
	}
	switch (h->code) {
	case MIMO_WIRE_HELLO:
		handle_hello(a, c, h->unique, body, len);
		break;
	case MIMO_WIRE_SEND:
		handle_send(a, c, h->unique, body, len);
		rq_drain_locked(a, c);
		break;
	case MIMO_WIRE_ACK:
		if (mimo_wire_decode_ack(body, len, &seq) != 0) {
			reply_now_locked(c, h->unique, -EBADMSG);
		} else if (c->state != CONN_READY) {
			reply_now_locked(c, h->unique, -EPROTO);
		} else {
			plugin_ack_locked(a, c->plugin, seq);
			reply_now_locked(c, h->unique, 0);
		}
		break;
	case MIMO_WIRE_PING:
		reply_now_locked(c, h->unique, len == 0 ? 0 : -EBADMSG);
		break;
	case MIMO_WIRE_NOTIFY_REPLY: {
		struct mimo_wire_notify_reply r;

		/* FUSE's rule: NOTIFY_REPLY gets no reply. A bad one is dropped. */
		if (c->state == CONN_READY && mimo_wire_decode_notify_reply(body, len, &r) == 0)
			plugin_notify_reply_locked(a, c->plugin, h->unique, r.error, r.data,
						   r.size);
		break;
	}
	default:
		reply_now_locked(c, h->unique, -ENOSYS);
		break;
	}
	return 0;
}

/* --- GSE frames --------------------------------------------------------------------------------
 */

/* What GSE's agent says of itself in a keepalive reply; the SDK's GetAgentInfo reads
 * status_code 2 as running (IsRunning) and run_mode 0 as a proxy (IsProxy). */
#define GSE_STATUS_RUNNING 2
#define GSE_RUN_MODE_AGENT 1

static void gse_keepalive_reply(struct agent *a, struct conn *c, uint64_t seq)
{
	json_t *j =
		json_pack("{s:s, s:s, s:i, s:i, s:i, s:s}", "agent_id", a->o.agent_id, "version",
			  MIMO_VERSION, "cloud_id", 0, "run_mode", GSE_RUN_MODE_AGENT,
			  "status_code", GSE_STATUS_RUNNING, "status", "ok");
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	uint8_t *f;

	json_decref(j);
	if (text == NULL)
		return;
	f = malloc(mimo_gse_size(strlen(text), 0));
	if (f != NULL) {
		/* The real agent frames it as the SDK frames its keepalive: JSON as the whole
		 * body, reserved fields 0. */
		size_t n = mimo_gse_encode(f, MIMO_GSE_KEEPALIVE_RESP, seq, text, strlen(text),
					   NULL, 0, false);

		conn_queue_locked(c, f, n);
		free(f);
	}
	free(text);
}

static int gse_bind(struct agent *a, struct conn *c, const char *name, int64_t pid)
{
	uint64_t slot_id;

	if (c->state == CONN_READY)
		return strcmp(c->plugin->name, name) == 0 ? 0 : -EPERM;
	if (bind_plugin_locked(a, c, name, pid, &slot_id) != 0)
		return -EPERM;
	plugin_pump_locked(a, c->plugin);
	return 0;
}

static int handle_gse(struct agent *a, struct conn *c, const struct mimo_gse_hdr *h,
		      const uint8_t *body, size_t len)
{
	const char *meta;
	const void *content;
	size_t meta_len, content_len;

	switch (h->type) {
	case MIMO_GSE_KEEPALIVE_REQ: {
		struct gse_keepalive k;
		const char *json = (const char *)body;
		size_t jlen = len;

		/* Keepalives carry their JSON as the whole body; accept the meta framing too. */
		if (h->reserved0 != 0 &&
		    mimo_gse_split(h, body, len, &meta, &meta_len, &content, &content_len) == 0) {
			json = meta;
			jlen = meta_len;
		}
		if (parse_gse_keepalive(json, jlen, &k) != 0) {
			uint64_t sup;

			if (mimo_ratelimit_allow(&g_rl_bad, 1000000000, &sup))
				MIMO_WARN(COMP, "GSE peer pid %d: malformed keepalive ignored",
					  (int)c->pid);
			return 0;
		}
		if (gse_bind(a, c, k.plugin_name, k.pid) != 0)
			return -EPERM;
		gse_keepalive_reply(a, c, h->seq);
		return 0;
	}
	case MIMO_GSE_RESPOND: {
		struct gse_meta m;
		struct up_rec r = { 0 };
		struct timespec ts;
		int rc;

		if (mimo_gse_split(h, body, len, &meta, &meta_len, &content, &content_len) != 0 ||
		    parse_gse_meta(meta, meta_len, &m) != 0) {
			uint64_t sup;

			if (mimo_ratelimit_allow(&g_rl_bad, 1000000000, &sup))
				MIMO_WARN(COMP, "GSE peer pid %d: malformed respond frame dropped",
					  (int)c->pid);
			return 0;
		}
		if (m.name[0] != '\0' && gse_bind(a, c, m.name, 0) != 0)
			return -EPERM;
		if (c->state != CONN_READY) {
			MIMO_WARN(COMP,
				  "GSE peer pid %d sent a message before naming its plugin; "
				  "dropped",
				  (int)c->pid);
			return 0;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		r.key_hi = a->epoch;
		r.key_lo = ++a->gse_key;
		r.slot_id = c->plugin->slot_id;
		r.accepted_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		r.expires_ms = r.accepted_ms + a->o.up_ttl_ms;
		r.plugin = c->plugin->name;
		r.plugin_len = strlen(c->plugin->name);
		r.msg_id = m.message_id;
		r.msg_id_len = strlen(m.message_id);
		r.content = content;
		r.content_len = content_len;
		c->refs++;
		rc = upq_append(a->upq, &r, gse_send_done, c);
		if (rc != 0) {
			c->refs--;
			/* GSE has no acknowledgement to refuse with: say it here. */
			if (rc < 0)
				MIMO_WARN(COMP, "plugin %s (GSE): message %s lost: %s",
					  c->plugin->name, m.message_id, strerror(-rc));
		} else {
			c->plugin->up++;
		}
		return 0;
	}
	default: {
		uint64_t sup;

		if (mimo_ratelimit_allow(&g_rl_bad, 1000000000, &sup))
			MIMO_WARN(COMP, "GSE peer pid %d: frame type 0x%x ignored", (int)c->pid,
				  h->type);
		return 0;
	}
	}
}

/* --- the I/O thread -------------------------------------------------------------------------- */

static void conn_close(struct agent *a, struct conn *c, const char *why)
{
	struct conn **pp;

	pthread_mutex_lock(&a->lock);
	if (c->plugin != NULL)
		MIMO_INFO(COMP, "plugin %s disconnected (%s)", c->plugin->name, why);
	else
		MIMO_DEBUG(COMP, "connection from pid %d closed (%s)", (int)c->pid, why);
	if (c->state == CONN_READY)
		plugin_detach_locked(a, c);
	c->state = CONN_CLOSED;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	for (pp = &a->conns; *pp != NULL; pp = &(*pp)->next_all) {
		if (*pp == c) {
			*pp = c->next_all;
			break;
		}
	}
	conn_unref_locked(a, c);
	pthread_mutex_unlock(&a->lock);
}

static void conn_read(struct agent *a, struct conn *c)
{
	for (;;) {
		size_t used = 0;
		ssize_t n;
		int rc = 0;

		if (mimo_buf_reserve(&c->in, READ_CHUNK) != 0) {
			conn_close(a, c, "out of memory");
			return;
		}
		n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, MSG_DONTWAIT);
		if (n == 0) {
			conn_close(a, c, "end of stream");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(a, c, strerror(errno));
			return;
		}
		c->in.len += (size_t)n;
		pthread_mutex_lock(&a->lock);
		while (rc == 0) {
			long flen;

			if (c->gse) {
				struct mimo_gse_hdr h;

				flen = mimo_gse_frame_check(c->in.data + used, c->in.len - used,
							    MIMO_GSE_MAX_FRAME, &h);
				if (flen > 0)
					rc = handle_gse(a, c, &h,
							(const uint8_t *)c->in.data + used +
								MIMO_GSE_HDR_LEN,
							(size_t)flen - MIMO_GSE_HDR_LEN);
			} else {
				struct mimo_wire_hdr h;

				flen = mimo_wire_frame_check(c->in.data + used, c->in.len - used,
							     MIMO_WIRE_MAX_FRAME, &h);
				if (flen > 0)
					rc = handle_native(a, c, &h,
							   (const uint8_t *)c->in.data + used +
								   MIMO_WIRE_HDR_LEN,
							   (size_t)flen - MIMO_WIRE_HDR_LEN);
			}
			if (flen < 0)
				rc = (int)flen;
			if (flen <= 0)
				break;
			used += (size_t)flen;
		}
		conn_flush_locked(a, c);
		pthread_mutex_unlock(&a->lock);
		if (rc != 0) {
			char why[96];

			snprintf(why, sizeof(why), "protocol error: %s", strerror(-rc));
			conn_close(a, c, why);
			return;
		}
		mimo_buf_consume(&c->in, used);
		/* A large message came in whole: give its memory back. */
		if (c->in.len == 0 && c->in.cap > 4 * READ_CHUNK)
			mimo_buf_free(&c->in);
		if ((size_t)n < READ_CHUNK / 2)
			return;
	}
}

/* The listeners, watched for connections or not (while descriptors are short). */
static void watch_listeners(struct agent *a, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0 };

	ev.data.ptr = &a->lfd;
	epoll_ctl(a->epfd, EPOLL_CTL_MOD, a->lfd, &ev);
	if (a->gse_lfd >= 0) {
		ev.data.ptr = &a->gse_lfd;
		epoll_ctl(a->epfd, EPOLL_CTL_MOD, a->gse_lfd, &ev);
	}
}

/*
 * accept() failed for want of descriptors or memory: the pending connection stays queued and
 * the listener readable, so the loop would spin. Stop watching the listeners for a while (100
 * ms doubling to 1 s, reset by the next success; the I/O thread's tick resumes them) and log
 * one line a second.
 */
static void accept_backoff(struct agent *a, int err)
{
	uint64_t suppressed = 0;

	a->accept_failures++;
	a->accept_delay_ms =
		a->accept_delay_ms == 0 ? TICK_MS : MIMO_MIN(a->accept_delay_ms * 2, 1000);
	a->accept_resume_ns = mimo_now_ns() + (int64_t)a->accept_delay_ms * 1000000;
	watch_listeners(a, false);
	if (mimo_ratelimit_allow(&a->accept_rl, 1000000000LL, &suppressed))
		MIMO_WARN(
			COMP,
			"cannot accept a plugin connection: %s; not accepting for %u ms (%llu such "
			"failures so far)",
			strerror(err), a->accept_delay_ms, (unsigned long long)a->accept_failures);
}

static void conn_accept(struct agent *a, int lfd, bool gse)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		char path[64];
		struct conn *c;
		ssize_t n;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				accept_backoff(a, errno);
			return;
		}
		a->accept_delay_ms = 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
			MIMO_WARN(COMP, "connection refused: no peer credentials (%s)",
				  strerror(errno));
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->gse = gse;
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->refs = 1;
		c->agent = a;
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)cred.pid);
		n = readlink(path, c->exe, sizeof(c->exe) - 1);
		c->exe[n > 0 ? n : 0] = '\0';
		if (n <= 0)
			snprintf(c->exe, sizeof(c->exe), "?");
		ev.data.ptr = c;
		pthread_mutex_lock(&a->lock);
		c->next_all = a->conns;
		a->conns = c;
		a->conns_total++;
		epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev);
		pthread_mutex_unlock(&a->lock);
		MIMO_DEBUG(COMP, "connection on the %s socket: pid %d uid %d gid %d exe %s",
			   gse ? "GSE" : "native", (int)cred.pid, (int)cred.uid, (int)cred.gid,
			   c->exe);
	}
}

static void *io_main(void *arg)
{
	struct agent *a = arg;
	int64_t next_tick = mimo_now_ns();
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "agent_io");
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(a->epfd, evs, 64, TICK_MS);
		bool stop;

		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &a->lfd) {
				conn_accept(a, a->lfd, false);
			} else if (p == &a->gse_lfd) {
				conn_accept(a, a->gse_lfd, true);
			} else if (p == &a->evfd) {
				uint64_t junk;

				if (read(a->evfd, &junk, sizeof(junk)) < 0) {
					/* drained */
				}
			} else {
				struct conn *c = p;

				if (evs[i].events & EPOLLOUT) {
					pthread_mutex_lock(&a->lock);
					conn_flush_locked(a, c);
					pthread_mutex_unlock(&a->lock);
				}
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
					conn_read(a, c);
				else if (c->broken)
					conn_close(a, c, "write failed");
			}
		}
		if (a->accept_resume_ns != 0 && mimo_now_ns() >= a->accept_resume_ns) {
			a->accept_resume_ns = 0;
			watch_listeners(a, true);
		}
		if (mimo_now_ns() >= next_tick) {
			next_tick = mimo_now_ns() + TICK_MS * 1000000LL;
			pthread_mutex_lock(&a->lock);
			plugins_expire_locked(a);
			pthread_mutex_unlock(&a->lock);
		}
		pthread_mutex_lock(&a->lock);
		stop = a->stop;
		pthread_mutex_unlock(&a->lock);
		if (stop)
			break;
	}
	while (a->conns != NULL)
		conn_close(a, a->conns, "agent stopping");
	return NULL;
}

static int listen_unix(struct agent *a, const char *path, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, probe;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	/* A live agent answers on the socket: leave it alone. A stale file is removed. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		MIMO_ERR(COMP, "another process serves %s", path);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	{
		/* /var/run/mimo may not exist yet (it is on tmpfs after a reboot). */
		char dir[sizeof(sa.sun_path)], *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			mimo_mkdir_p(dir, 0755);
		}
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 256) != 0) {
		int rc = -errno;

		close(fd);
		MIMO_ERR(COMP, "cannot listen on %s: %s", path, strerror(-rc));
		return rc;
	}
	if (chmod(path, a->o.socket_mode) != 0)
		MIMO_WARN(COMP, "cannot chmod %s: %s", path, strerror(errno));
	if (a->o.socket_group != NULL) {
		struct group *g = getgrnam(a->o.socket_group);

		if (g == NULL || chown(path, (uid_t)-1, g->gr_gid) != 0) {
			int rc = g == NULL ? -ENOENT : -errno;

			close(fd);
			unlink(path);
			MIMO_ERR(COMP, "cannot give %s to group %s: %s", path, a->o.socket_group,
				 strerror(-rc));
			return rc;
		}
	}
	*out = fd;
	return 0;
}

int agent_io_start(struct agent *a)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int rc;

	a->lfd = a->gse_lfd = -1;
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->epfd < 0 || a->evfd < 0)
		return -errno;
	rc = listen_unix(a, a->o.socket_path, &a->lfd);
	if (rc == 0 && a->o.gse_socket != NULL)
		rc = listen_unix(a, a->o.gse_socket, &a->gse_lfd);
	if (rc != 0)
		return rc;
	ev.data.ptr = &a->lfd;
	epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->lfd, &ev);
	if (a->gse_lfd >= 0) {
		ev.data.ptr = &a->gse_lfd;
		epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->gse_lfd, &ev);
	}
	ev.data.ptr = &a->evfd;
	epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->evfd, &ev);
	rc = pthread_create(&a->io_thread, NULL, io_main, a);
	return -rc;
}

void agent_io_stop(struct agent *a)
{
	uint64_t one = 1;

	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_mutex_unlock(&a->lock);
	if (write(a->evfd, &one, sizeof(one)) < 0) {
		/* the thread wakes within a tick anyway */
	}
	pthread_join(a->io_thread, NULL);
	if (a->lfd >= 0) {
		close(a->lfd);
		unlink(a->o.socket_path);
	}
	if (a->gse_lfd >= 0) {
		close(a->gse_lfd);
		unlink(a->o.gse_socket);
	}
	close(a->epfd);
	close(a->evfd);
}
