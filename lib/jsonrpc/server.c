/*
 * The JSON-RPC server: a Unix socket on one reactor, connections read and written without
 * blocking. What any one client does only ever costs that client:
 *  - garbage gets a parse error and the connection closes (SPDK's behaviour);
 *  - a request is framed incrementally and parsed once, so a large one costs linear time;
 *  - a client that does not read its answers stops being read (the socket is then watched
 *    for output only, so the reactor does not spin) and is closed if its unread answers pass
 *    max_pending_output;
 *  - a client that half-closes after its requests still gets every answer, asynchronous ones
 *    included, and the connection closes once they are sent;
 *  - when max_connections are open, a new client evicts an idle connection (nothing in
 *    flight): one that never sent a request first, else the one idle longest - so idle
 *    connections can never lock the operator out;
 *  - when accept() fails for want of file descriptors the listener backs off instead of
 *    spinning (accept_backoff.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "opts.h"
#include "accept_backoff.h"
#include "buf.h"
#include "compiler.h"
#include "frame.h"
#include "jsonrpc_internal.h"
#include "log.h"
#include "parse.h"

#define COMP	   "rpc"
#define READ_CHUNK 65536
/* Past this much unsent output a connection is not read from until it drains: a client
 * that pipelines requests without reading answers gets back-pressure, not our memory. */
#define OUT_PAUSE (256u * 1024)
/* An idle connection keeps at most this much input buffer (a large request's is freed), and
 * this much output buffer. */
#define IN_KEEP	 (16u * 1024)
#define OUT_KEEP (256u * 1024)

struct rpc_conn;

struct mimo_jsonrpc_server {
	int fd;
	int lock_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[PATH_MAX];
	struct mimo_fd_watch *watch;
	struct mimo_jsonrpc_opts opts;
	uint32_t nconns;
	struct rpc_conn *conns;
	char *scratch; /* READ_CHUNK bytes every connection reads into */
	struct mimo_accept_backoff backoff;
	struct mimo_ratelimit evict_rl, limit_rl;
	uint64_t evicted;
};

struct rpc_conn {
	struct rpc_sink sink; /* first: the sink is the connection */
	struct mimo_jsonrpc_server *server;
	int fd;
	struct mimo_fd_watch *watch;
	uint32_t events; /* what the watch asks for now */
	struct mimo_buf in;
	size_t in_off; /* bytes of in already handled */
	struct jsonrpc_framer framer;
	struct mimo_buf out;
	size_t out_off;
	uint64_t last_active_ns; /* last byte received or sent */
	uint64_t requests;	 /* whole requests received */
	bool closed;		 /* socket gone: answers are dropped */
	bool close_when_sent;	 /* after a parse error, as SPDK */
	bool eof;		 /* the client will send nothing more */
	struct rpc_conn *next;
};

MIMO_EXPORT void mimo_jsonrpc_opts_init(struct mimo_jsonrpc_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->socket_mode = 0600;
	opts->max_connections = 64;
	opts->max_request_bytes = 4u << 20;
	opts->max_pending_output = 32u << 20;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_process(struct rpc_conn *c);

static void conn_close(struct rpc_conn *c)
{
	struct rpc_conn **pp;

	if (c->closed)
		return;
	c->closed = true;
	mimo_fd_watch_remove(&c->watch);
	close(c->fd);
	c->fd = -1;
	for (pp = &c->server->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->server->nconns--;
	c->server = NULL;
	/* Nothing more will be read or sent: give the buffers back now, not when the last
	 * request still running answers into the void. */
	mimo_buf_free(&c->in);
	mimo_buf_free(&c->out);
	c->in_off = c->out_off = 0;
	rpc_sink_put(&c->sink); /* the connection's own reference */
}

static void conn_release(struct rpc_sink *s)
{
	struct rpc_conn *c = (struct rpc_conn *)s;

	mimo_buf_free(&c->in);
	mimo_buf_free(&c->out);
	free(c);
}

static size_t pending_out(const struct rpc_conn *c)
{
	return c->out.len - c->out_off;
}

/* Requests of this connection still running (the sink's own and in-callback references
 * aside: callers know how many of those they hold). */
static bool has_inflight(const struct rpc_conn *c, uint32_t held)
{
	return c->sink.refs > 1 + held;
}

/*
 * Watch for what the connection can do next: input while it may read (not after the client's
 * EOF, not while its answers pile up), output while answers wait. With neither, only hang-ups
 * and errors wake it.
 */
static void conn_update_watch(struct rpc_conn *c)
{
	uint32_t ev = 0;

	if (c->closed)
		return;
	if (!c->eof && !c->close_when_sent && pending_out(c) < OUT_PAUSE)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (pending_out(c) > 0)
		ev |= EPOLLOUT;
	if (ev != c->events) {
		c->events = ev;
		mimo_fd_watch_modify(c->watch, ev);
	}
}

/* Done with a client that sent EOF once everything it asked for is answered and sent. */
static void conn_maybe_finish(struct rpc_conn *c, uint32_t held)
{
	if (!c->closed && (c->eof || c->close_when_sent) && pending_out(c) == 0 &&
	    (c->close_when_sent || !has_inflight(c, held)))
		conn_close(c);
}

/* Write what can be written now. */
static void conn_flush(struct rpc_conn *c)
{
	while (!c->closed && pending_out(c) > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, pending_out(c), MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			c->last_active_ns = now_ns();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* EPIPE, ECONNRESET: the client left mid-answer. */
		conn_close(c);
		return;
	}
	if (c->closed)
		return;
	if (pending_out(c) == 0) {
		/* The buffer of an answer larger than any usual one is not kept for a connection
		 * that may idle for days; usual ones (bdev_get_bdevs of 100 bdevs is 52 KiB) are
		 * reused, call after call. */
		if (c->out.cap > OUT_KEEP)
			mimo_buf_free(&c->out);
		else
			mimo_buf_reset(&c->out);
		c->out_off = 0;
	}
	conn_update_watch(c);
}

static void conn_deliver(struct rpc_sink *s, char *text, size_t len)
{
	struct rpc_conn *c = (struct rpc_conn *)s;
	size_t max_out;

	if (c->closed) {
		free(text);
		return;
	}
	max_out = c->server->opts.max_pending_output;
	if (pending_out(c) + len + 1 > max_out) {
		uint64_t suppressed = 0;

		if (mimo_ratelimit_allow(&c->server->limit_rl, 1000000000LL, &suppressed))
			MIMO_WARN(COMP,
				  "%s: a client left more than %zu bytes of answers unread; "
				  "closing its connection (%llu more such)",
				  c->server->path, max_out, (unsigned long long)suppressed);
		free(text);
		conn_close(c);
		return;
	}
	if (mimo_buf_append(&c->out, text, len) != 0 || mimo_buf_append(&c->out, "\n", 1) != 0) {
		MIMO_ERR(COMP, "out of memory for an answer; closing the connection");
		free(text);
		conn_close(c);
		return;
	}
	free(text);
	conn_flush(c);
}

/* The last request of the connection was answered: a client that sent EOF is done. */
static void conn_unbusy(struct rpc_sink *s)
{
	conn_maybe_finish((struct rpc_conn *)s, 0);
}

static void conn_fail_parse(struct rpc_conn *c, const char *why)
{
	char *text;

	/* SPDK answers a parse error and closes: the stream cannot be resynchronised. */
	c->close_when_sent = true;
	mimo_buf_free(&c->in);
	c->in_off = 0;
	jsonrpc_framer_reset(&c->framer);
	text = jsonrpc_error_response(NULL, MIMO_JSONRPC_ERROR_PARSE_ERROR, why);
	if (text != NULL)
		conn_deliver(&c->sink, text, strlen(text));
	conn_update_watch(c);
}

/* Parse and dispatch one framed value. */
static void conn_dispatch(struct rpc_conn *c, const char *text, size_t len)
{
	struct jsonrpc_bignums bigs = { 0 };
	char err[128];
	json_t *value = jsonrpc_parse(text, len, &bigs, err, sizeof(err));

	if (value == NULL) {
		MIMO_DEBUG(COMP, "%s: parse error: %s", c->server->path, err);
		jsonrpc_bignums_free(&bigs);
		conn_fail_parse(c, "Parse error");
		return;
	}
	jsonrpc_bignums_enter(&bigs);
	jsonrpc_handle_value(&c->sink, value);
	jsonrpc_bignums_leave();
	json_decref(value);
	jsonrpc_bignums_free(&bigs);
}

/* Drop what was handled; keep the buffer small once it is empty. */
static void conn_compact_input(struct rpc_conn *c)
{
	if (c->in_off == 0)
		return;
	if (c->in_off >= c->in.len) {
		if (c->in.cap > IN_KEEP)
			mimo_buf_free(&c->in);
		else
			mimo_buf_reset(&c->in);
	} else {
		mimo_buf_consume(&c->in, c->in_off);
	}
	c->in_off = 0;
}

/* Handle every complete request in the input buffer, unless the client is not reading its
 * answers (then wait for the output to drain). */
static void conn_process(struct rpc_conn *c)
{
	rpc_sink_get(&c->sink); /* handlers may close the connection under us */
	while (!c->closed && !c->close_when_sent && c->in_off < c->in.len &&
	       pending_out(c) < OUT_PAUSE) {
		const char *base = c->in.data + c->in_off;
		ssize_t end = jsonrpc_framer_scan(&c->framer, base, c->in.len - c->in_off);
		size_t start = c->framer.start;

		if (end == 0) {
			/* Leading whitespace can go; a partial value waits for more bytes. */
			if (c->framer.pos == start) {
				c->in_off += start;
				c->framer.pos = c->framer.start = 0;
			}
			break;
		}
		if (end < 0) {
			conn_fail_parse(c, "Parse error");
			break;
		}
		jsonrpc_framer_reset(&c->framer);
		c->in_off += (size_t)end;
		c->requests++;
		conn_dispatch(c, base + start, (size_t)end - start);
	}
	if (!c->closed && !c->close_when_sent) {
		conn_compact_input(c);
		if (c->in.len > c->server->opts.max_request_bytes) {
			MIMO_WARN(COMP, "%s: request larger than %zu bytes; closing the connection",
				  c->server->path, c->server->opts.max_request_bytes);
			conn_fail_parse(c, "Request too large");
		}
	}
	conn_update_watch(c);
	rpc_sink_put(&c->sink);
}

/* Read what the socket has, a chunk at a time, while the connection may read. */
static void conn_read(struct rpc_conn *c)
{
	char *scratch;

	if (c->closed)
		return; /* a failed flush closed it (the server is no longer ours to use) */
	scratch = c->server->scratch;
	while (!c->closed && !c->eof && !c->close_when_sent && pending_out(c) < OUT_PAUSE) {
		ssize_t n = recv(c->fd, scratch, READ_CHUNK, 0);

		if (n > 0) {
			c->last_active_ns = now_ns();
			/* The framer resumes where it stopped: the input is never rescanned. */
			if (mimo_buf_append(&c->in, scratch, (size_t)n) != 0) {
				MIMO_ERR(COMP,
					 "out of memory for a request; closing the connection");
				conn_close(c);
				return;
			}
			conn_process(c);
			if ((size_t)n < READ_CHUNK)
				break; /* the socket is drained: no need for a call to say EAGAIN */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0) {
			/* Half-closed: what was asked is still answered (see conn_maybe_finish). */
			c->eof = true;
			break;
		}
		conn_close(c); /* an error */
		return;
	}
}

static void conn_on_event(void *arg, uint32_t events)
{
	struct rpc_conn *c = arg;

	rpc_sink_get(&c->sink);
	if (events & EPOLLOUT) {
		conn_flush(c);
		if (!c->closed && pending_out(c) < OUT_PAUSE)
			conn_process(c); /* requests held back while the client was not reading */
	}
	if (events & (EPOLLIN | EPOLLRDHUP))
		conn_read(c);
	/* Gone both ways (or broken): nobody can read the answers any more. */
	if (events & (EPOLLHUP | EPOLLERR))
		conn_close(c);
	conn_update_watch(c);
	conn_maybe_finish(c, 1);
	rpc_sink_put(&c->sink);
}

/*
 * The connection to evict for a new one, or NULL when every one has a request in flight.
 * First a connection that never sent a whole request (a leaked or hostile one has given
 * nothing; an operator's client has), oldest first; then the one idle longest. So a storm of
 * new idle connections evicts its own kind, not the operator's client that was active a
 * moment ago.
 */
static struct rpc_conn *idlest(struct mimo_jsonrpc_server *s)
{
	struct rpc_conn *best = NULL;

	for (struct rpc_conn *c = s->conns; c != NULL; c = c->next) {
		bool silent = c->requests == 0;

		if (has_inflight(c, 0))
			continue;
		if (best == NULL || silent > (best->requests == 0) ||
		    (silent == (best->requests == 0) && c->last_active_ns < best->last_active_ns))
			best = c;
	}
	return best;
}

/* Room for one more connection: evict the idlest when full. False when all are busy. */
static bool make_room(struct mimo_jsonrpc_server *s)
{
	struct rpc_conn *victim;
	uint64_t suppressed = 0;

	if (s->nconns < s->opts.max_connections)
		return true;
	victim = idlest(s);
	if (victim == NULL) {
		if (mimo_ratelimit_allow(&s->limit_rl, 1000000000LL, &suppressed))
			MIMO_WARN(COMP, "%s: %u connections, all busy; refusing another", s->path,
				  s->nconns);
		return false;
	}
	s->evicted++;
	if (mimo_ratelimit_allow(&s->evict_rl, 1000000000LL, &suppressed))
		MIMO_WARN(COMP,
			  "%s: %u connections open; closing the one idle longest (%llu s) for a "
			  "new client (%llu evicted so far)",
			  s->path, s->nconns,
			  (unsigned long long)((now_ns() - victim->last_active_ns) / 1000000000u),
			  (unsigned long long)s->evicted);
	conn_close(victim);
	return true;
}

static void on_accept(void *arg, uint32_t events)
{
	struct mimo_jsonrpc_server *s = arg;

	(void)events;
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct rpc_conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    !mimo_accept_backoff_failed(&s->backoff, s->watch, errno, s->path))
				MIMO_ERR(COMP, "accept on %s: %s", s->path, strerror(errno));
			return;
		}
		mimo_accept_backoff_ok(&s->backoff);
		if (!make_room(s)) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->sink.reactor = mimo_reactor_current();
		c->sink.refs = 1;
		c->sink.deliver = conn_deliver;
		c->sink.release = conn_release;
		c->sink.unbusy = conn_unbusy;
		c->server = s;
		c->fd = fd;
		c->last_active_ns = now_ns();
		c->events = EPOLLIN | EPOLLRDHUP;
		if (mimo_fd_watch_add(fd, c->events, conn_on_event, c, &c->watch) != 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
	}
}

static int lock_path(struct mimo_jsonrpc_server *s, const char *path)
{
	if (snprintf(s->lock_path, sizeof(s->lock_path), "%s.lock", path) >=
	    (int)sizeof(s->lock_path))
		return -ENAMETOOLONG;
	s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return -errno;
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int rc = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;

		close(s->lock_fd);
		s->lock_fd = -1;
		return rc;
	}
	return 0;
}

MIMO_EXPORT int mimo_jsonrpc_server_listen(const char *path, const struct mimo_jsonrpc_opts *opts,
					   struct mimo_jsonrpc_server **out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct mimo_jsonrpc_server *s;
	int rc;

	if (mimo_reactor_current() == NULL)
		return -EPERM;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	mimo_jsonrpc_opts_init(&s->opts);
	if (mimo_opts_copy(&s->opts, sizeof(s->opts), opts) != 0 || s->opts.max_connections == 0) {
		free(s);
		return -EINVAL;
	}
	s->scratch = malloc(READ_CHUNK);
	if (s->scratch == NULL) {
		free(s);
		return -ENOMEM;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fd = -1;
	rc = lock_path(s, path);
	if (rc != 0) {
		free(s->scratch);
		free(s);
		return rc;
	}
	/* We hold the lock: a socket file left here belongs to a process that is gone. */
	unlink(path);
	strcpy(addr.sun_path, path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    chmod(path, s->opts.socket_mode) != 0 || listen(s->fd, 128) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = mimo_fd_watch_add(s->fd, EPOLLIN, on_accept, s, &s->watch);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s->fd >= 0) {
		close(s->fd);
		unlink(path);
	}
	close(s->lock_fd);
	free(s->scratch);
	free(s);
	return rc;
}

MIMO_EXPORT void mimo_jsonrpc_server_close(struct mimo_jsonrpc_server *s)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		conn_close(s->conns);
	mimo_fd_watch_remove(&s->watch);
	close(s->fd);
	unlink(s->path);
	unlink(s->lock_path);
	close(s->lock_fd);
	free(s->scratch);
	free(s);
}
