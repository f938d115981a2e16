/*
 * The HTTP server (libmicrohttpd) in front of fab_api_handle, shared by mimo_agent and
 * mimo_gateway. One event-loop thread (epoll) holds every connection, so thousands of slow or
 * idle clients cost a few KiB each rather than a thread each. Requests that are answered at
 * once (health, the slot list, the agent's dispatch) are answered on the loop; those that may
 * wait (request-reply, the cache, a NATS round trip, a slot change's fsync) suspend their
 * connection and go to a bounded worker pool, whose thread resumes the connection with the
 * answer. Around that: a deadline for requests that never complete (http_guard.c), a limit per
 * client address, a total limit that leaves descriptors to the rest of the daemon, bodies
 * over FAB_MAX_BODY refused from their Content-Length before they are read, and a budget of
 * body bytes held at once. docs/agent.md ("The HTTP front") gives the figures and the why.
 *
 * The URL path reaches the API undecoded, so a cache key may contain an escaped '/' and is
 * decoded once, segment by segment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "compiler.h"
#include "api.h"
#include "bodies.h"
#include "http_front.h"
#include "http_guard.h"
#include "http_pool.h"
#include "mhd_loop.h"
#include "log.h"

#define COMP "http"

struct fab_http {
	struct MHD_Daemon *d;
	struct fab_api *api;
	struct fab_http_opts o;
	uint16_t port;
	struct fab_pool *pool;
	struct fab_guard *guard;
	/* The event loop; a worker wakes it after MHD_resume_connection. */
	struct fab_mhd_loop loop;
	_Atomic uint64_t body_bytes; /* reserved by requests in progress (FAB_HTTP_BODY_BUDGET) */
	/* For fab_http_get_stats (the metrics endpoint's thread reads them). */
	_Atomic uint64_t responses[6]; /* by status class: [2] is 2xx */
	_Atomic uint64_t conns_open;
	struct mimo_ratelimit rl_limit, rl_busy;
};

enum req_state {
	REQ_RECEIVING,
	REQ_WAITING, /* suspended, with a worker */
	REQ_ANSWERED,
};

/* One request: its body, and its hand-off to a worker and back. */
struct req_ctx {
	struct fab_job job; /* first: the pool gives it back */
	struct fab_http *h;
	struct MHD_Connection *c;
	const char *method, *url; /* libmicrohttpd's, valid until the request completes */
	struct mimo_buf body;
	uint64_t reserved; /* bytes of the body budget this request holds */
	_Atomic int state;
	struct fab_http_response resp;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct fab_http *h = cls;
	uint64_t sup = 0;
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	/* Limits reached (connections, descriptors) are what an attack looks like from here:
	 * said, but at most once a second whatever the rate. */
	if (strstr(line, "limit") != NULL) {
		if (mimo_ratelimit_allow(&h->rl_limit, 1000000000, &sup))
			MIMO_WARN(COMP, "%s (%" PRIu64 " more suppressed)", line, sup);
		return;
	}
	MIMO_DEBUG(COMP, "%s", line);
}

/* Leave the path escaped: the API decodes each segment itself. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct mimo_buf *b = cls;

	(void)kind;
	if (b->len > 0)
		mimo_buf_append_str(b, "&");
	mimo_buf_printf(b, "%s=%s", key, value != NULL ? value : "");
	return MHD_YES;
}

static struct fab_guard_conn *guard_conn(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct fab_http *h = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		atomic_fetch_add_explicit(&h->conns_open, 1, memory_order_relaxed);
		*socket_context = ci != NULL ? fab_guard_opened(h->guard, ci->connect_fd) : NULL;
	} else {
		atomic_fetch_sub_explicit(&h->conns_open, 1, memory_order_relaxed);
		fab_guard_closed(h->guard, *socket_context);
		*socket_context = NULL;
	}
}

static void release_body(struct fab_http *h, struct req_ctx *rc)
{
	if (rc->reserved > 0)
		atomic_fetch_sub(&h->body_bytes, rc->reserved);
	rc->reserved = 0;
	mimo_buf_free(&rc->body);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct fab_http *h = cls;
	struct req_ctx *rc = *con_cls;

	(void)toe;
	fab_guard_request_done(h->guard, guard_conn(c));
	if (rc != NULL) {
		release_body(h, rc);
		mimo_buf_free(&rc->resp.body);
		free(rc);
		*con_cls = NULL;
	}
}

static enum MHD_Result answer(struct fab_http *h, struct MHD_Connection *c, int status,
			      const char *ctype, const void *data, size_t len,
			      const char *retry_after)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	if (retry_after != NULL)
		MHD_add_response_header(resp, "Retry-After", retry_after);
	ret = MHD_queue_response(c, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES && status >= 100 && status < 600)
		atomic_fetch_add_explicit(&h->responses[status / 100], 1, memory_order_relaxed);
	return ret;
}

static enum MHD_Result answer_json(struct fab_http *h, struct MHD_Connection *c, int status,
				   const char *json, const char *retry_after)
{
	return answer(h, c, status, "application/json", json, strlen(json), retry_after);
}

/* Take n more bytes of the body budget for rc: false when every client together holds
 * FAB_HTTP_BODY_BUDGET already. */
static bool reserve_body(struct fab_http *h, struct req_ctx *rc, uint64_t n)
{
	uint64_t before = atomic_fetch_add(&h->body_bytes, n);

	if (before + n > FAB_HTTP_BODY_BUDGET) {
		atomic_fetch_sub(&h->body_bytes, n);
		return false;
	}
	rc->reserved += n;
	return true;
}

static void run_api(struct req_ctx *rc)
{
	struct MHD_Connection *c = rc->c;
	struct mimo_buf query = { 0 };

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &query);
	fab_api_handle(rc->h->api, rc->method, rc->url, query.data != NULL ? query.data : "",
		       MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
		       rc->body.data, rc->body.len, &rc->resp);
	mimo_buf_free(&query);
	/* The body is not needed for the answer: give its budget back now. */
	release_body(rc->h, rc);
}

/* A worker's part: answer, then let the event loop send it. */
static void run_job(struct fab_job *job)
{
	struct req_ctx *rc = (struct req_ctx *)job;

	struct fab_http *h = rc->h;

	run_api(rc);
	atomic_store_explicit(&rc->state, REQ_ANSWERED, memory_order_release);
	MHD_resume_connection(rc->c);
	/* rc may be gone from here on: the loop can answer and complete the request. */
	fab_mhd_loop_wake(&h->loop);
}

static enum MHD_Result send_answer(struct req_ctx *rc)
{
	const struct fab_http_response *r = &rc->resp;

	return answer(rc->h, rc->c, r->status,
		      r->content_type ? r->content_type : "application/json",
		      r->body.data != NULL ? r->body.data : "", r->body.len, NULL);
}

/* Headers are in: refuse what cannot be served before reading a byte of its body. */
static enum MHD_Result first_call(struct fab_http *h, struct req_ctx *rc)
{
	const char *cl = MHD_lookup_connection_value(rc->c, MHD_HEADER_KIND, "Content-Length");
	unsigned long long n;
	char *end;

	fab_guard_request_started(h->guard, guard_conn(rc->c));
	if (cl == NULL)
		return MHD_YES; /* no body, or chunked: limited as it streams */
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno != 0 || end == cl || n > FAB_MAX_BODY) {
		static const char msg[] =
			"{\"error\":\"body larger than 16 MiB (refused from its Content-Length)\","
			"\"code\":413}";

		return answer_json(h, rc->c, 413, msg, NULL);
	}
	if (!reserve_body(h, rc, n)) {
		static const char msg[] = "{\"error\":\"busy: too many request bodies in flight; "
					  "retry\",\"code\":503}";
		uint64_t sup;

		if (mimo_ratelimit_allow(&h->rl_busy, 1000000000, &sup))
			MIMO_WARN(COMP, "request bodies held reach %u MiB: refusing more (503)",
				  FAB_HTTP_BODY_BUDGET >> 20);
		return answer_json(h, rc->c, 503, msg, "1");
	}
	return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	struct fab_http *h = cls;
	struct req_ctx *rc = *con_cls;

	(void)version;
	if (rc == NULL) {
		rc = calloc(1, sizeof(*rc));
		if (rc == NULL)
			return MHD_NO;
		rc->h = h;
		rc->c = c;
		rc->method = method;
		rc->url = url;
		rc->job.run = run_job;
		*con_cls = rc;
		return first_call(h, rc);
	}
	if (atomic_load_explicit(&rc->state, memory_order_acquire) == REQ_ANSWERED)
		return send_answer(rc);
	if (*upload_size > 0) {
		size_t n = *upload_size;
		bool ok = rc->body.len + n <= FAB_MAX_BODY;

		/* A body without Content-Length (chunked) takes its budget as it comes. */
		if (ok && rc->body.len + n > rc->reserved)
			ok = reserve_body(h, rc, rc->body.len + n - rc->reserved);
		if (!ok || mimo_buf_append(&rc->body, upload_data, n) != 0) {
			/* libmicrohttpd cannot answer in the middle of a body: close the
			 * connection rather than read on. */
			MIMO_DEBUG(COMP, "%s %s: body over the limit, connection closed", method,
				   url);
			return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!fab_api_may_wait(h->api, method, url) && rc->body.len <= FAB_HTTP_INLINE_BODY) {
		run_api(rc);
		return send_answer(rc);
	}
	if (!fab_pool_reserve(h->pool)) {
		static const char msg[] =
			"{\"error\":\"busy: every worker is taken and the queue is full; retry\","
			"\"code\":503}";
		uint64_t sup;

		if (mimo_ratelimit_allow(&h->rl_busy, 1000000000, &sup))
			MIMO_WARN(COMP, "worker queue full: refusing requests that may wait (503)");
		return answer_json(h, c, 503, msg, "1");
	}
	/* Suspend before the worker can resume it. */
	atomic_store(&rc->state, REQ_WAITING);
	MHD_suspend_connection(c);
	fab_pool_submit(h->pool, &rc->job);
	return MHD_YES;
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	long port;
	char *end;

	if (colon == NULL)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
			s4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	}
	return 0;
}

/*
 * Descriptors: the HTTP front may use all but FAB_HTTP_FD_RESERVE of RLIMIT_NOFILE, so that a
 * flood of connections never starves plugins, the up-queue's files or the callbacks. The soft
 * limit is raised toward the hard one as far as the connection limit needs (nothing in the
 * daemon uses select()). A limit given on the command line that does not fit is refused; the
 * default is lowered, with a warning.
 */
static int fit_fd_limit(struct fab_http_opts *o)
{
	uint64_t want = (uint64_t)o->max_conns + FAB_HTTP_FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : MIMO_MIN(want, rl.rlim_max);
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return 0;
	if (o->max_conns_given || rl.rlim_cur < FAB_HTTP_FD_RESERVE + 16) {
		MIMO_ERR(COMP,
			 "--http-max-conns %u needs %" PRIu64 " file descriptors (%u kept for "
			 "the rest of the daemon), but RLIMIT_NOFILE allows %llu: raise the limit "
			 "(ulimit -n, LimitNOFILE=) or lower --http-max-conns",
			 o->max_conns, want, FAB_HTTP_FD_RESERVE, (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	MIMO_WARN(COMP,
		  "RLIMIT_NOFILE is %llu: at most %llu HTTP connections (not %u); raise the "
		  "limit to allow more",
		  (unsigned long long)rl.rlim_cur,
		  (unsigned long long)rl.rlim_cur - FAB_HTTP_FD_RESERVE, o->max_conns);
	o->max_conns = (uint32_t)(rl.rlim_cur - FAB_HTTP_FD_RESERVE);
	return 0;
}

static void apply_defaults(struct fab_http_opts *o)
{
	if (o->max_conns == 0)
		o->max_conns = FAB_HTTP_MAX_CONNS;
	if (!o->max_conns_per_ip_given)
		o->max_conns_per_ip = FAB_HTTP_MAX_CONNS_PER_IP;
	if (o->header_timeout_s == 0)
		o->header_timeout_s = FAB_HTTP_HEADER_TIMEOUT_S;
	if (o->idle_timeout_s == 0)
		o->idle_timeout_s = FAB_HTTP_IDLE_TIMEOUT_S;
	if (o->workers == 0)
		o->workers = FAB_HTTP_WORKERS;
}

static void free_http(struct fab_http *h)
{
	/* Workers first: they resume connections, which needs the loop. */
	fab_pool_stop(h->pool);
	fab_mhd_loop_stop(&h->loop);
	if (h->d != NULL)
		MHD_stop_daemon(h->d);
	fab_guard_free(h->guard);
	free(h);
}

int fab_http_start(struct fab_http **out, const char *addr, const struct fab_http_opts *opts,
		   struct fab_api *api)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	struct fab_http *h;
	socklen_t slen;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	int rc = 0;

	if (parse_addr(addr, &ss, &slen) != 0) {
		MIMO_ERR(COMP, "cannot parse HTTP address '%s' (want HOST:PORT)", addr);
		return -EINVAL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	fab_mhd_loop_init(&h->loop);
	h->api = api;
	h->o = *opts;
	apply_defaults(&h->o);
	rc = fit_fd_limit(&h->o);
	if (rc == 0) {
		h->guard = fab_guard_new(h->o.header_timeout_s, h->o.idle_timeout_s);
		rc = h->guard != NULL ? 0 : -ENOMEM;
	}
	if (rc == 0)
		rc = fab_pool_start(&h->pool, h->o.workers,
				    h->o.workers * FAB_HTTP_QUEUE_PER_WORKER);
	if (rc != 0) {
		free_http(h);
		return rc;
	}
	h->d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, completed, h,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h, MHD_OPTION_UNESCAPE_CALLBACK,
		keep_escaped, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)h->o.max_conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)h->o.max_conns_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)h->o.idle_timeout_s,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)4096, MHD_OPTION_END);
	if (h->d == NULL) {
		MIMO_ERR(COMP, "cannot serve HTTP on %s (address in use?)", addr);
		free_http(h);
		return -EADDRINUSE;
	}
	rc = fab_mhd_loop_start(&h->loop, h->d, h->guard);
	if (rc != 0) {
		MIMO_ERR(COMP, "cannot start the HTTP loop: %s", strerror(-rc));
		free_http(h);
		return rc;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : 0;
	MIMO_INFO(COMP,
		  "HTTP front: %u connections (%u per address), headers within %u s, idle %u s, "
		  "%u workers",
		  h->o.max_conns, h->o.max_conns_per_ip, h->o.header_timeout_s, h->o.idle_timeout_s,
		  h->o.workers);
	*out = h;
	return 0;
}

void fab_http_get_stats(struct fab_http *h, struct fab_http_stats *st)
{
	for (int i = 0; i < 6; i++)
		st->responses[i] = atomic_load_explicit(&h->responses[i], memory_order_relaxed);
	st->conns_open = atomic_load_explicit(&h->conns_open, memory_order_relaxed);
	st->deadline_closed = fab_guard_reaped(h->guard);
}

uint16_t fab_http_port(struct fab_http *h)
{
	return h->port;
}

void fab_http_stop(struct fab_http *h)
{
	if (h == NULL)
		return;
	free_http(h);
}

/* --- command-line options --------------------------------------------------------------- */

const char fab_http_usage[] =
	"  --http-max-conns N       open HTTP connections (default 4096, within RLIMIT_NOFILE)\n"
	"  --http-max-conns-per-ip N  per client address (default 128; 0 = no limit)\n"
	"  --http-header-timeout S  a new connection's request headers must be complete\n"
	"                           within S seconds (default 10)\n"
	"  --http-idle-timeout S    close connections idle this long, and keep-alive\n"
	"                           connections with no next request (default 30)\n"
	"  --http-workers N         threads for requests that wait for a plugin, NATS or the\n"
	"                           disk (default 32; each queues up to 32 more)\n";

int fab_http_parse_opt(struct fab_http_opts *o, const char *name, const char *value)
{
	static const struct {
		const char *name;
		unsigned long min, max;
	} known[] = {
		{ "http-max-conns", 1, 1000000 },   { "http-max-conns-per-ip", 0, 1000000 },
		{ "http-header-timeout", 1, 3600 }, { "http-idle-timeout", 1, 86400 },
		{ "http-workers", 1, 1024 },
	};
	unsigned long v;
	char *end;
	size_t i;

	for (i = 0; i < MIMO_ARRAY_SIZE(known); i++) {
		if (strcmp(name, known[i].name) == 0)
			break;
	}
	if (i == MIMO_ARRAY_SIZE(known))
		return -ENOENT;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno != 0 || *end != '\0' || end == value || value[0] == '-' || v < known[i].min ||
	    v > known[i].max)
		return -EINVAL;
	switch (i) {
	case 0:
		o->max_conns = (uint32_t)v;
		o->max_conns_given = true;
		break;
	case 1:
		o->max_conns_per_ip = (uint32_t)v;
		o->max_conns_per_ip_given = true;
		break;
	case 2:
		o->header_timeout_s = (uint32_t)v;
		break;
	case 3:
		o->idle_timeout_s = (uint32_t)v;
		break;
	default:
		o->workers = (uint32_t)v;
		break;
	}
	return 0;
}
