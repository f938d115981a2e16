/*
 * The I/O thread: one connection to the agent at a time. It says HELLO, then writes control
 * frames and the send queue as the socket takes them and reads what the agent sends. When the
 * connection breaks (or the agent stops answering PINGs) it reconnects after a delay that
 * doubles from reconnect_min_ms up to reconnect_max_ms, with jitter, and writes every message
 * not yet acknowledged again, in order.
 */
#include <errno.h>
#include <endian.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "compiler.h"
#include "plugin_internal.h"
#include "random.h"

#define READ_CHUNK  (256u << 10)
#define WRITE_BATCH 64

/* Errors after which a message can never be accepted: it is dropped (and counted). */
static bool permanent_error(int32_t e)
{
	return e == -EINVAL || e == -EMSGSIZE || e == -EBADMSG || e == -ENAMETOOLONG;
}

static uint64_t frame_unique(const struct out_msg *m)
{
	uint64_t u;

	memcpy(&u, m->frame + 8, 8);
	return le64toh(u);
}

static void stamp_unique(struct out_msg *m, uint64_t u)
{
	u = htole64(u);
	memcpy(m->frame + 8, &u, 8);
}

static int connect_agent(struct mimo_plugin *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(p->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, p->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	/* Every read and write below passes MSG_DONTWAIT: the thread never waits inside one. */
	return fd;
}

/* Write what may be written now. With p->lock held. Returns 0, or a negative errno when the
 * connection broke; *want_out tells whether output is still pending. */
static int write_locked(struct mimo_plugin *p, int fd, bool *want_out)
{
	*want_out = false;
	for (;;) {
		struct iovec iov[WRITE_BATCH];
		struct msghdr mh = { .msg_iov = iov };
		struct out_msg *m;
		size_t total = 0;
		ssize_t n;
		int cnt = 0;

		/* Control frames first, unless a data frame is half written (frames never
		 * interleave). */
		if (!p->data_partial && p->ctrl_off < p->ctrl.len) {
			n = send(fd, p->ctrl.data + p->ctrl_off, p->ctrl.len - p->ctrl_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					*want_out = true;
					return 0;
				}
				if (errno == EINTR)
					continue;
				return -errno;
			}
			p->ctrl_off += (size_t)n;
			if (p->ctrl_off == p->ctrl.len) {
				mimo_buf_reset(&p->ctrl);
				p->ctrl_off = 0;
				pthread_cond_broadcast(
					&p->cond); /* destroy waits for its last ACK */
			}
			continue;
		}
		if (!p->connected || p->wnext == NULL)
			return 0;
		for (m = p->wnext; m != NULL && cnt < WRITE_BATCH; m = m->next, cnt++) {
			size_t off = m == p->wnext ? p->woff : 0;

			if (off == 0) {
				stamp_unique(m, p->next_unique++);
				if (m->written)
					p->st.resent++;
				m->written = true;
			}
			iov[cnt].iov_base = m->frame + off;
			iov[cnt].iov_len = m->len - off;
			total += m->len - off;
		}
		mh.msg_iovlen = (size_t)cnt;
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				*want_out = true;
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)n < total)
			*want_out = true;
		while (n > 0) {
			size_t rem = p->wnext->len - p->woff;

			if ((size_t)n >= rem) {
				n -= (ssize_t)rem;
				p->wnext = p->wnext->next;
				p->woff = 0;
			} else {
				p->woff += (size_t)n;
				n = 0;
			}
		}
		p->data_partial = p->woff > 0;
		if (*want_out)
			return 0;
	}
}

/* Start a connection: the send queue is written again from its oldest message, after HELLO. */
static uint64_t reset_for_connection_locked(struct mimo_plugin *p)
{
	struct mimo_wire_hello h = {
		.proto = MIMO_WIRE_PROTO,
		.pid = (uint32_t)getpid(),
		.name = p->name,
		.name_len = strlen(p->name),
		.version = p->version,
		.version_len = strlen(p->version),
	};
	uint8_t frame[MIMO_WIRE_HDR_LEN + 16 + MIMO_WIRE_MAX_NAME + MIMO_WIRE_MAX_VERSION];
	uint64_t u = plugin_ctrl_unique_locked(p);
	size_t n = mimo_wire_encode_hello(frame, u, &h);

	p->conn_gen++;
	p->connected = false;
	mimo_buf_reset(&p->ctrl);
	p->ctrl_off = 0;
	p->data_partial = false;
	p->wnext = p->head;
	p->woff = 0;
	if (mimo_buf_append(&p->ctrl, frame, n) != 0)
		return 0;
	return u;
}

static struct cb_item *cb_item_new(size_t extra)
{
	return calloc(1, sizeof(struct cb_item) + extra);
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void answer_retrieve_from_cache(struct mimo_plugin *p, const struct mimo_wire_cache *c)
{
	uint32_t size = (uint32_t)MIMO_MIN(c->size, (uint64_t)p->o.max_message_bytes);
	struct mimo_wire_notify_reply r = { .notify_unique = c->notify_unique,
					    .offset = c->offset };
	uint8_t *data = malloc(size > 0 ? size : 1), *frame;
	long n;

	if (data == NULL)
		return;
	n = plugin_cache_read(p->cache, c->key, c->key_len, c->offset, data, size, NULL);
	if (n < 0) {
		r.error = (int32_t)n;
	} else {
		r.size = (size_t)n;
		r.data = data;
	}
	frame = malloc(mimo_wire_notify_reply_size(r.size));
	if (frame != NULL) {
		size_t len = mimo_wire_encode_notify_reply(frame, &r);

		pthread_mutex_lock(&p->lock);
		plugin_ctrl_append_locked(p, frame, len);
		pthread_mutex_unlock(&p->lock);
	}
	free(frame);
	free(data);
}

/* A frame the agent started (unique = 0). */
static void handle_notify(struct mimo_plugin *p, const struct mimo_wire_hdr *h, const uint8_t *body,
			  size_t len)
{
	struct mimo_wire_cache c;
	struct cb_item *it;
	int rc;

	if (h->code == MIMO_WIRE_NOTIFY_DISPATCH) {
		struct mimo_wire_dispatch d;

		if (mimo_wire_decode_dispatch(body, len, &d) != 0) {
			plugin_log(p, MIMO_PLUGIN_LOG_WARN, "malformed DISPATCH ignored");
			return;
		}
		it = cb_item_new(d.content_len);
		if (it == NULL || (it->id = dup_n(d.id, d.id_len)) == NULL) {
			free(it);
			plugin_log(p, MIMO_PLUGIN_LOG_ERROR,
				   "out of memory: DISPATCH dropped "
				   "(the agent sends it again)");
			return;
		}
		it->kind = CB_DISPATCH;
		it->seq = d.seq;
		it->len = d.content_len;
		if (d.content_len > 0)
			memcpy(it->data, d.content, d.content_len);
		pthread_mutex_lock(&p->lock);
		it->epoch = p->info.epoch;
		it->conn_gen = p->conn_gen;
		plugin_cb_push_locked(p, it);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	rc = mimo_wire_decode_cache(h->code, body, len, &c);
	if (rc == -EINVAL) {
		plugin_log(p, MIMO_PLUGIN_LOG_DEBUG, "notify code %d not known: ignored", h->code);
		return;
	}
	if (rc != 0) {
		plugin_log(p, MIMO_PLUGIN_LOG_WARN, "malformed notify (code %d) ignored", h->code);
		return;
	}
	switch (c.code) {
	case MIMO_WIRE_NOTIFY_STORE:
		rc = plugin_cache_store(p->cache, c.key, c.key_len, c.offset, c.data, c.size);
		if (rc != 0)
			plugin_log(p, MIMO_PLUGIN_LOG_WARN, "STORE of %zu bytes failed: %s",
				   (size_t)c.size, strerror(-rc));
		break;
	case MIMO_WIRE_NOTIFY_INVAL:
		plugin_cache_inval(p->cache, c.key, c.key_len, c.offset, c.size);
		break;
	case MIMO_WIRE_NOTIFY_DELETE:
		plugin_cache_delete(p->cache, c.key, c.key_len);
		break;
	case MIMO_WIRE_NOTIFY_RETRIEVE:
		if (p->o.retrieve_cb == NULL) {
			answer_retrieve_from_cache(p, &c);
			return;
		}
		break;
	}
	if (c.code == MIMO_WIRE_NOTIFY_RETRIEVE || p->o.notify_cb != NULL) {
		it = cb_item_new(0);
		if (it == NULL)
			return;
		it->kind = c.code == MIMO_WIRE_NOTIFY_RETRIEVE ? CB_RETRIEVE : CB_NOTIFY;
		it->code = c.code;
		it->notify_unique = c.notify_unique;
		it->offset = c.code == MIMO_WIRE_NOTIFY_POLL ? c.kh : c.offset;
		it->size = c.size;
		if (c.key != NULL && (it->id = dup_n(c.key, c.key_len)) == NULL) {
			free(it);
			return;
		}
		pthread_mutex_lock(&p->lock);
		it->conn_gen = p->conn_gen;
		plugin_cb_push_locked(p, it);
		pthread_mutex_unlock(&p->lock);
	}
}

static int handle_welcome(struct mimo_plugin *p, const struct mimo_wire_hdr *h, const uint8_t *body,
			  size_t len)
{
	struct mimo_wire_welcome w;

	if (h->code != 0) {
		pthread_mutex_lock(&p->lock);
		if (p->last_error != h->code)
			plugin_log(p, MIMO_PLUGIN_LOG_WARN, "agent refused HELLO: %s%s",
				   strerror(-h->code),
				   h->code == -EPERM ? " (no slot for this plugin name?)" : "");
		p->last_error = h->code;
		pthread_mutex_unlock(&p->lock);
		return h->code;
	}
	if (mimo_wire_decode_welcome(body, len, &w) != 0) {
		plugin_log(p, MIMO_PLUGIN_LOG_ERROR, "malformed welcome from the agent");
		return -EPROTO;
	}
	pthread_mutex_lock(&p->lock);
	snprintf(p->info.agent_id, sizeof(p->info.agent_id), "%.*s", (int)w.agent_id_len,
		 w.agent_id);
	snprintf(p->info.version, sizeof(p->info.version), "%.*s", (int)w.version_len, w.version);
	p->info.slot_id = w.slot_id;
	p->info.epoch = w.epoch;
	p->connected = true;
	p->ever_connected = true;
	p->last_error = 0;
	p->st.connects++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	plugin_log(p, MIMO_PLUGIN_LOG_INFO, "connected to agent %s (slot %llu)", p->info.agent_id,
		   (unsigned long long)w.slot_id);
	return 0;
}

/* A reply to one of our SENDs: it answers the oldest SEND written and not yet answered. */
static int handle_send_reply(struct mimo_plugin *p, const struct mimo_wire_hdr *h)
{
	struct out_msg *m;

	pthread_mutex_lock(&p->lock);
	m = p->head;
	if (m == NULL || m == p->wnext || frame_unique(m) != h->unique) {
		pthread_mutex_unlock(&p->lock);
		plugin_log(p, MIMO_PLUGIN_LOG_ERROR,
			   "reply for unique %llu matches no message sent",
			   (unsigned long long)h->unique);
		return -EPROTO;
	}
	if (h->code != 0 && !permanent_error(h->code)) {
		pthread_mutex_unlock(&p->lock);
		plugin_log(p, MIMO_PLUGIN_LOG_WARN,
			   "agent cannot take messages now (%s); "
			   "reconnecting later",
			   strerror(-h->code));
		return h->code;
	}
	if (h->code != 0) {
		p->st.rejected++;
		plugin_log(p, MIMO_PLUGIN_LOG_WARN, "agent refused a message for good: %s",
			   strerror(-h->code));
	} else {
		p->st.sent++;
	}
	p->head = m->next;
	if (p->head == NULL)
		p->tail = NULL;
	p->count--;
	p->bytes -= m->len;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	free(m);
	return 0;
}

static int handle_frame(struct mimo_plugin *p, const struct mimo_wire_hdr *h, const uint8_t *body,
			size_t len, uint64_t hello_unique)
{
	if (h->unique == 0) {
		handle_notify(p, h, body, len);
		return 0;
	}
	if (h->unique == hello_unique)
		return handle_welcome(p, h, body, len);
	if (h->unique & CTRL_UNIQUE_BIT) {
		if (h->code != 0)
			plugin_log(p, MIMO_PLUGIN_LOG_DEBUG, "control request refused: %s",
				   strerror(-h->code));
		return 0;
	}
	return handle_send_reply(p, h);
}

/* Read what is there and handle every whole frame. Returns 0, or a negative errno (-EPIPE
 * at end of stream) when the connection is over. */
static int read_frames(struct mimo_plugin *p, int fd, struct mimo_buf *rb, uint64_t hello_unique,
		       int64_t *last_rx)
{
	for (;;) {
		size_t used = 0;
		ssize_t n;
		int rc;

		if (mimo_buf_reserve(rb, READ_CHUNK) != 0)
			return -ENOMEM;
		n = recv(fd, rb->data + rb->len, rb->cap - rb->len - 1, MSG_DONTWAIT);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		rb->len += (size_t)n;
		*last_rx = mimo_now_ns();
		for (;;) {
			struct mimo_wire_hdr h;
			long flen = mimo_wire_frame_check(rb->data + used, rb->len - used,
							  MIMO_WIRE_MAX_FRAME, &h);

			if (flen < 0) {
				plugin_log(p, MIMO_PLUGIN_LOG_ERROR,
					   "broken frame from the agent: %s", strerror((int)-flen));
				return (int)flen;
			}
			if (flen == 0)
				break;
			rc = handle_frame(p, &h,
					  (const uint8_t *)rb->data + used + MIMO_WIRE_HDR_LEN,
					  (size_t)flen - MIMO_WIRE_HDR_LEN, hello_unique);
			if (rc != 0)
				return rc;
			used += (size_t)flen;
		}
		mimo_buf_consume(rb, used);
		if ((size_t)n < READ_CHUNK / 2)
			return 0;
	}
}

/* One connection, from HELLO until it breaks or the plugin stops. Returns the error that
 * ended it (0 when stopping). */
static int run_connection(struct mimo_plugin *p, int fd)
{
	struct mimo_buf rb = { 0 };
	int64_t ka_ns = (int64_t)p->o.keepalive_ms * 1000000;
	int64_t last_rx = mimo_now_ns(), next_ping = last_rx + ka_ns;
	uint64_t hello_unique;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	hello_unique = reset_for_connection_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (hello_unique == 0)
		return -ENOMEM;
	for (;;) {
		struct pollfd pf[2] = { { .fd = fd, .events = POLLIN },
					{ .fd = p->evfd, .events = POLLIN } };
		bool want_out;
		int64_t now, wait_ns;
		uint64_t junk;

		pthread_mutex_lock(&p->lock);
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			rc = 0;
			break;
		}
		rc = write_locked(p, fd, &want_out);
		if (rc == 0)
			p->io_idle = true;
		pthread_mutex_unlock(&p->lock);
		if (rc != 0)
			break;
		if (want_out)
			pf[0].events |= POLLOUT;
		now = mimo_now_ns();
		if (now - last_rx > 3 * ka_ns) {
			plugin_log(p, MIMO_PLUGIN_LOG_WARN, "agent silent for %u ms: reconnecting",
				   3 * p->o.keepalive_ms);
			rc = -ETIMEDOUT;
			break;
		}
		if (now >= next_ping) {
			uint8_t ping[MIMO_WIRE_PING_SIZE];

			pthread_mutex_lock(&p->lock);
			mimo_wire_encode_ping(ping, plugin_ctrl_unique_locked(p));
			plugin_ctrl_append_locked(p, ping, sizeof(ping));
			pthread_mutex_unlock(&p->lock);
			next_ping = now + ka_ns;
			continue;
		}
		wait_ns = next_ping - now;
		if (poll(pf, 2, (int)((wait_ns + 999999) / 1000000)) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		pthread_mutex_lock(&p->lock);
		p->io_idle = false;
		pthread_mutex_unlock(&p->lock);
		if (pf[1].revents & POLLIN) {
			if (read(p->evfd, &junk, sizeof(junk)) < 0) {
				/* EAGAIN: someone else drained it */
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = read_frames(p, fd, &rb, hello_unique, &last_rx);
			if (rc != 0)
				break;
		}
	}
	mimo_buf_free(&rb);
	return rc;
}

/* Sleep ms unless the plugin stops. */
static void nap(struct mimo_plugin *p, uint32_t ms)
{
	int64_t deadline = mimo_now_ns() + (int64_t)ms * 1000000;

	for (;;) {
		struct pollfd pf = { .fd = p->evfd, .events = POLLIN };
		int64_t left = deadline - mimo_now_ns();
		uint64_t junk;
		bool stop;

		pthread_mutex_lock(&p->lock);
		stop = p->stopping;
		p->io_idle = true;
		pthread_mutex_unlock(&p->lock);
		if (stop || left <= 0)
			return;
		if (poll(&pf, 1, (int)((left + 999999) / 1000000)) > 0) {
			if (read(p->evfd, &junk, sizeof(junk)) < 0) {
				/* drained elsewhere */
			}
		}
	}
}

static uint32_t backoff_ms(struct mimo_plugin *p, uint32_t attempt)
{
	uint64_t d = (uint64_t)p->o.reconnect_min_ms << MIMO_MIN(attempt, 30u);

	d = MIMO_MIN(d, (uint64_t)p->o.reconnect_max_ms);
	/* +-20 % so that plugins restarted together do not reconnect in step. */
	d = d - d / 5 + mimo_random_below(d / 5 * 2 + 1);
	return (uint32_t)d;
}

void *plugin_io_main(void *arg)
{
	struct mimo_plugin *p = arg;
	uint32_t attempt = 0;
	sigset_t all;

	/* The application's signal handlers never run on the SDK's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int64_t started;
		bool stop;
		int fd, rc;

		pthread_mutex_lock(&p->lock);
		stop = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		fd = connect_agent(p);
		if (fd < 0) {
			pthread_mutex_lock(&p->lock);
			if (p->last_error != fd)
				plugin_log(p,
					   attempt == 0 ? MIMO_PLUGIN_LOG_INFO
							: MIMO_PLUGIN_LOG_DEBUG,
					   "cannot connect to %s: %s (retrying)", p->socket_path,
					   strerror(-fd));
			p->last_error = fd;
			pthread_mutex_unlock(&p->lock);
			nap(p, backoff_ms(p, attempt++));
			continue;
		}
		started = mimo_now_ns();
		rc = run_connection(p, fd);
		close(fd);
		pthread_mutex_lock(&p->lock);
		if (p->connected)
			plugin_log(p, MIMO_PLUGIN_LOG_INFO, "disconnected from the agent: %s",
				   rc == 0 ? "stopping" : strerror(-rc));
		p->connected = false;
		stop = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		/* A connection that lived a while starts the backoff again. */
		if (mimo_now_ns() - started > 10LL * 1000000000)
			attempt = 0;
		nap(p, backoff_ms(p, attempt++));
	}
	pthread_mutex_lock(&p->lock);
	p->connected = false;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}
