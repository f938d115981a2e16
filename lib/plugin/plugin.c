/*
 * libmimo_plugin's API: options, the send queue, launch / flush / destroy, agent info, the
 * cache for the application. The threads live in io.c and callbacks.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "opts.h"
#include "compiler.h"
#include "plugin_internal.h"
#include "log.h"
#include "random.h"

#define DEFAULT_SOCKET "/var/run/mimo/agent.sock"

MIMO_EXPORT void mimo_plugin_opts_init(struct mimo_plugin_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->socket_path = DEFAULT_SOCKET;
	opts->keepalive_ms = 3000;
	opts->max_message_bytes = 10u << 20;
	opts->reconnect_min_ms = 100;
	/* GSE's SDK reconnects every second; a local socket costs nothing to try, and a plugin
	 * started before its agent or its slot is then there within a second of them. */
	opts->reconnect_max_ms = 1000;
	opts->send_queue_max = 65536;
	opts->send_queue_max_bytes = 64ull << 20;
	opts->cache_max_bytes = 64u << 20;
}

void plugin_log(struct mimo_plugin *p, enum mimo_plugin_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (p->o.log_cb == NULL && !mimo_log_enabled((enum mimo_log_level)level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (p->o.log_cb != NULL)
		p->o.log_cb(p->o.cb_arg, level, line);
	else
		mimo_log((enum mimo_log_level)level, COMP, "%s: %s", p->name, line);
}

static void free_strings(struct mimo_plugin *p)
{
	free(p->name);
	free(p->version);
	free(p->socket_path);
}

MIMO_EXPORT int mimo_plugin_create(const struct mimo_plugin_opts *opts, struct mimo_plugin **out)
{
	struct mimo_plugin *p;
	struct mimo_plugin_opts o;
	pthread_condattr_t ca;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	mimo_plugin_opts_init(&o);
	/* A name and a version are required: no options at all is an error here. */
	if (opts == NULL || mimo_opts_copy(&o, sizeof(o), opts) != 0)
		return -EINVAL;
	if (o.name == NULL || !mimo_wire_name_valid(o.name, strlen(o.name)) || o.version == NULL ||
	    strlen(o.version) > MIMO_WIRE_MAX_VERSION ||
	    (o.version[0] != '\0' && !mimo_wire_msg_id_valid(o.version, strlen(o.version))) ||
	    o.socket_path == NULL || o.socket_path[0] == '\0' || o.max_message_bytes == 0 ||
	    o.max_message_bytes > MIMO_WIRE_MAX_FRAME - 4096 || o.send_queue_max == 0 ||
	    o.reconnect_min_ms == 0 || o.reconnect_max_ms < o.reconnect_min_ms ||
	    o.keepalive_ms == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->o = o;
	p->name = strdup(o.name);
	p->version = strdup(o.version);
	p->socket_path = strdup(o.socket_path);
	p->cache = plugin_cache_new(o.cache_max_bytes);
	p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->name == NULL || p->version == NULL || p->socket_path == NULL || p->cache == NULL ||
	    p->evfd < 0) {
		if (p->evfd >= 0)
			close(p->evfd);
		plugin_cache_free(p->cache);
		free_strings(p);
		free(p);
		return -ENOMEM;
	}
	p->o.name = p->name;
	p->o.version = p->version;
	p->o.socket_path = p->socket_path;
	pthread_mutex_init(&p->lock, NULL);
	/* Timed waits measure monotonic time: a clock step must not shorten or stretch them. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->cb_cond, NULL);
	/* The idempotency key's high half is this instance's: a restarted plugin's messages are
	 * new messages, a resend by this one is the same message. */
	if (mimo_random_bytes(&p->key_hi, sizeof(p->key_hi)) != 0)
		p->key_hi = (uint64_t)time(NULL) << 32 ^ (uint64_t)getpid();
	p->next_unique = 1;
	p->next_ctrl = 1;
	*out = p;
	return 0;
}

static void deadline_after(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* p->cond waits on CLOCK_MONOTONIC (see mimo_plugin_create). */
static int wait_until(struct mimo_plugin *p, pthread_cond_t *c, const struct timespec *ts,
		      bool forever)
{
	if (forever)
		return pthread_cond_wait(c, &p->lock);
	return pthread_cond_timedwait(c, &p->lock, ts);
}

static int start_threads(struct mimo_plugin *p)
{
	int rc = pthread_create(&p->io_thread, NULL, plugin_io_main, p);

	if (rc != 0)
		return -rc;
	rc = pthread_create(&p->cb_thread, NULL, plugin_cb_main, p);
	if (rc != 0) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		plugin_kick_locked(p);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->io_thread, NULL);
		return -rc;
	}
	p->threads_started = true;
	return 0;
}

MIMO_EXPORT int mimo_plugin_launch(struct mimo_plugin *p, uint32_t timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->launched || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return p->stopping ? -ESHUTDOWN : -EALREADY;
	}
	p->launched = true;
	pthread_mutex_unlock(&p->lock);

	rc = start_threads(p);
	if (rc != 0)
		return rc;
	if (timeout_ms == 0)
		return 0;
	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (!p->ever_connected && !p->stopping && rc == 0)
		rc = wait_until(p, &p->cond, &ts, timeout_ms == UINT32_MAX);
	rc = p->ever_connected ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void plugin_kick_locked(struct mimo_plugin *p)
{
	uint64_t one = 1;

	if (p->io_idle) {
		p->io_idle = false;
		if (write(p->evfd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is already non-zero, the thread will wake. */
		}
	}
}

uint64_t plugin_ctrl_unique_locked(struct mimo_plugin *p)
{
	return CTRL_UNIQUE_BIT | p->next_ctrl++;
}

int plugin_ctrl_append_locked(struct mimo_plugin *p, const void *frame, size_t len)
{
	int rc = mimo_buf_append(&p->ctrl, frame, len);

	if (rc == 0)
		plugin_kick_locked(p);
	return rc;
}

MIMO_EXPORT int mimo_plugin_send_timeout(struct mimo_plugin *p, const char *message_id,
					 const void *data, size_t len, uint32_t timeout_ms)
{
	struct mimo_wire_send s = { 0 };
	struct out_msg *m;
	struct timespec ts;
	size_t id_len, n;
	bool timed = false;

	if (message_id == NULL || (data == NULL && len > 0))
		return -EINVAL;
	id_len = strlen(message_id);
	if (!mimo_wire_msg_id_valid(message_id, id_len))
		return -EINVAL;
	if (len > p->o.max_message_bytes)
		return -EMSGSIZE;
	n = mimo_wire_send_size(id_len, len);
	/* Encode before taking the lock: producers contend only for the list append. */
	m = malloc(sizeof(*m) + n);
	if (m == NULL)
		return -ENOMEM;
	m->next = NULL;
	m->len = n;
	m->written = false;
	s.ttl_ms = p->o.ttl_ms;
	s.id = message_id;
	s.id_len = id_len;
	s.content = data;
	s.content_len = len;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping &&
	       (p->count >= p->o.send_queue_max || p->bytes + n > p->o.send_queue_max_bytes)) {
		if (timeout_ms == 0 || !p->launched) {
			pthread_mutex_unlock(&p->lock);
			free(m);
			return -ENOBUFS;
		}
		if (!timed) {
			deadline_after(&ts, timeout_ms);
			timed = true;
		}
		if (wait_until(p, &p->cond, &ts, timeout_ms == UINT32_MAX) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->lock);
			free(m);
			return -ENOBUFS;
		}
	}
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(m);
		return -ESHUTDOWN;
	}
	s.key_hi = p->key_hi;
	s.key_lo = ++p->key_lo;
	mimo_wire_encode_send(m->frame, 0, &s);
	if (p->tail != NULL)
		p->tail->next = m;
	else
		p->head = m;
	p->tail = m;
	if (p->wnext == NULL)
		p->wnext = m;
	p->count++;
	p->bytes += n;
	if (p->connected)
		plugin_kick_locked(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

MIMO_EXPORT int mimo_plugin_send(struct mimo_plugin *p, const char *message_id, const void *data,
				 size_t len)
{
	return mimo_plugin_send_timeout(p, message_id, data, len, 0);
}

MIMO_EXPORT int mimo_plugin_flush(struct mimo_plugin *p, uint32_t timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (p->count > 0 && !p->stopping && rc == 0) {
		if (!p->launched) {
			rc = ETIMEDOUT;
			break;
		}
		rc = wait_until(p, &p->cond, &ts, timeout_ms == UINT32_MAX);
	}
	rc = p->count == 0 ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MIMO_EXPORT int mimo_plugin_agent_info(struct mimo_plugin *p, struct mimo_plugin_agent_info *info)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->ever_connected) {
		rc = -ENOTCONN;
	} else {
		*info = p->info;
		info->connected = p->connected;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MIMO_EXPORT long mimo_plugin_cache_read(struct mimo_plugin *p, const char *key, uint64_t offset,
					void *buf, size_t len, uint64_t *total)
{
	if (key == NULL || !mimo_wire_key_valid(key, strlen(key)))
		return -EINVAL;
	return plugin_cache_read(p->cache, key, strlen(key), offset, buf, len, total);
}

MIMO_EXPORT int mimo_plugin_cache_write(struct mimo_plugin *p, const char *key, uint64_t offset,
					const void *data, size_t len)
{
	if (key == NULL || !mimo_wire_key_valid(key, strlen(key)) || (data == NULL && len > 0))
		return -EINVAL;
	return plugin_cache_store(p->cache, key, strlen(key), offset, data, len);
}

MIMO_EXPORT void mimo_plugin_get_stats(struct mimo_plugin *p, struct mimo_plugin_stats *st)
{
	pthread_mutex_lock(&p->lock);
	*st = p->st;
	st->queued = p->count;
	pthread_mutex_unlock(&p->lock);
}

MIMO_EXPORT void mimo_plugin_destroy(struct mimo_plugin *p)
{
	struct cb_item *it;
	struct out_msg *m;

	if (p == NULL)
		return;
	if (p->threads_started) {
		struct timespec ts;

		/* The callback thread first: it acknowledges what it handled... */
		pthread_mutex_lock(&p->lock);
		p->cb_stop = true;
		pthread_cond_broadcast(&p->cb_cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->cb_thread, NULL);
		/* ...and those ACKs leave before the connection closes (a second at most). */
		deadline_after(&ts, 1000);
		pthread_mutex_lock(&p->lock);
		while (p->connected && p->ctrl_off < p->ctrl.len)
			if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) != 0)
				break;
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	p->io_idle = true; /* force the eventfd write */
	plugin_kick_locked(p);
	pthread_cond_broadcast(&p->cond);
	pthread_cond_broadcast(&p->cb_cond);
	pthread_mutex_unlock(&p->lock);
	if (p->threads_started)
		pthread_join(p->io_thread, NULL);
	while ((m = p->head) != NULL) {
		p->head = m->next;
		free(m);
	}
	while ((it = p->cb_head) != NULL) {
		p->cb_head = it->next;
		free(it->id);
		free(it);
	}
	mimo_buf_free(&p->ctrl);
	close(p->evfd);
	plugin_cache_free(p->cache);
	pthread_cond_destroy(&p->cond);
	pthread_cond_destroy(&p->cb_cond);
	pthread_mutex_destroy(&p->lock);
	free_strings(p);
	free(p);
}
