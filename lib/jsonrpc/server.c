/*
 * The JSON-RPC server: a Unix socket on one reactor, connections read and written without
 * blocking. A client that sends garbage, stalls mid-request, floods requests without reading
 * answers, or disconnects mid-answer only ever affects its own connection.
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
#include <unistd.h>

#include "buf.h"
#include "compiler.h"
#include "frame.h"
#include "internal.h"
#include "log.h"

#define COMP	   "rpc"
#define READ_CHUNK 65536

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
};

struct rpc_conn {
	struct rpc_sink sink; /* first: the sink is the connection */
	struct mimo_jsonrpc_server *server;
	int fd;
	struct mimo_fd_watch *watch;
	struct mimo_buf in;
	struct mimo_buf out;
	size_t out_off;
	bool closed;	      /* socket gone: answers are dropped */
	bool close_when_sent; /* after a parse error, as SPDK */
	bool want_out;
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
	rpc_sink_put(&c->sink); /* the connection's own reference */
}

static void conn_release(struct rpc_sink *s)
{
	struct rpc_conn *c = (struct rpc_conn *)s;

	mimo_buf_free(&c->in);
	mimo_buf_free(&c->out);
	free(c);
}

static void set_out_interest(struct rpc_conn *c, bool want)
{
	if (c->closed || c->want_out == want)
		return;
	c->want_out = want;
	mimo_fd_watch_modify(c->watch, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0));
}

static size_t pending_out(const struct rpc_conn *c)
{
	return c->out.len - c->out_off;
}

/* Write what can be written now. */
static void conn_flush(struct rpc_conn *c)
{
	while (!c->closed && pending_out(c) > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, pending_out(c), MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_out_interest(c, true);
			return;
		}
		/* EPIPE, ECONNRESET: the client left mid-answer. */
		conn_close(c);
		return;
	}
	if (c->closed)
		return;
	mimo_buf_reset(&c->out);
	c->out_off = 0;
	set_out_interest(c, false);
	if (c->close_when_sent)
		conn_close(c);
}

static void conn_deliver(struct rpc_sink *s, char *text, size_t len)
{
	struct rpc_conn *c = (struct rpc_conn *)s;

	if (!c->closed &&
	    (mimo_buf_append(&c->out, text, len) != 0 || mimo_buf_append(&c->out, "\n", 1) != 0)) {
		MIMO_ERR(COMP, "out of memory for an answer; closing the connection");
		conn_close(c);
	}
	free(text);
	if (!c->closed)
		conn_flush(c);
}

static void conn_fail_parse(struct rpc_conn *c, const char *why)
{
	char *text;

	/* SPDK answers a parse error and closes: the stream cannot be resynchronised. */
	c->close_when_sent = true;
	mimo_buf_reset(&c->in);
	text = jsonrpc_error_response(NULL, MIMO_JSONRPC_ERROR_PARSE_ERROR, why);
	if (text != NULL)
		conn_deliver(&c->sink, text, strlen(text));
}

/* Handle every complete request in the input buffer, unless the client is not reading its
 * answers (then wait for the output to drain). */
static void conn_process(struct rpc_conn *c)
{
	size_t max_out = c->server->opts.max_pending_output;

	rpc_sink_get(&c->sink); /* handlers may close the connection under us */
	while (!c->closed && !c->close_when_sent && c->in.len > 0 && pending_out(c) <= max_out) {
		size_t start = 0;
		ssize_t end = jsonrpc_frame(c->in.data, c->in.len, &start);
		json_error_t err;
		json_t *value;

		if (end == 0) {
			mimo_buf_consume(&c->in, start); /* drop leading whitespace */
			break;
		}
		if (end < 0) {
			conn_fail_parse(c, "Parse error");
			break;
		}
		value = json_loadb(c->in.data + start, (size_t)end - start, JSON_DECODE_ANY, &err);
		mimo_buf_consume(&c->in, (size_t)end);
		if (value == NULL) {
			conn_fail_parse(c, "Parse error");
			break;
		}
		jsonrpc_handle_value(&c->sink, value);
		json_decref(value);
	}
	rpc_sink_put(&c->sink);
}

static void conn_on_event(void *arg, uint32_t events)
{
	struct rpc_conn *c = arg;
	size_t max_in = c->server->opts.max_request_bytes;

	rpc_sink_get(&c->sink);
	if (events & EPOLLOUT) {
		conn_flush(c);
		if (!c->closed && pending_out(c) == 0)
			conn_process(c); /* requests held back while the client was not reading */
	}
	while (!c->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) &&
	       pending_out(c) <= c->server->opts.max_pending_output) {
		ssize_t n;

		if (mimo_buf_reserve(&c->in, READ_CHUNK) != 0) {
			conn_close(c);
			break;
		}
		n = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
			conn_process(c);
			if (!c->closed && c->in.len > max_in) {
				MIMO_WARN(COMP,
					  "request larger than %zu bytes; closing the connection",
					  max_in);
				conn_fail_parse(c, "Request too large");
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_close(c); /* 0: the client closed; or an error */
	}
	rpc_sink_put(&c->sink);
}

static void on_accept(void *arg, uint32_t events)
{
	struct mimo_jsonrpc_server *s = arg;

	(void)events;
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct rpc_conn *c;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				MIMO_ERR(COMP, "accept on %s: %s", s->path, strerror(errno));
			return;
		}
		if (s->nconns >= s->opts.max_connections) {
			MIMO_WARN(COMP, "%s: %u connections already; refusing another", s->path,
				  s->nconns);
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
		c->server = s;
		c->fd = fd;
		c->watch = mimo_fd_watch_add(fd, EPOLLIN | EPOLLRDHUP, conn_on_event, c);
		if (c->watch == NULL) {
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
	if (opts != NULL)
		memcpy(&s->opts, opts,
		       MIMO_MIN(opts->opts_size ? opts->opts_size : sizeof(*opts),
				sizeof(s->opts)));
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fd = -1;
	rc = lock_path(s, path);
	if (rc != 0) {
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
	s->watch = mimo_fd_watch_add(s->fd, EPOLLIN, on_accept, s);
	if (s->watch == NULL) {
		rc = -errno;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->fd >= 0) {
		close(s->fd);
		unlink(path);
	}
	close(s->lock_fd);
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
	free(s);
}
