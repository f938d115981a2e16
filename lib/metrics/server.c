/*
 * The metrics endpoint (see server.h). Why a thread of its own rather than mimo_tgt's reactor
 * 0: every figure a scrape reads is already readable from any thread (the bdev layer's
 * per-channel counters are atomics under the bdev's lock, the reactors' statistics are
 * atomics, nvmf's and the RPC registry's counters too), so serving on the reactor would buy
 * nothing and would put HTTP parsing, the text's formatting and slow scrapers on the thread
 * that answers JSON-RPC; and a reactor that hangs would take its own metrics down with it. The
 * thread runs libmicrohttpd in epoll mode (the parser the agent's HTTP front already uses, no
 * second one), with the front's request deadline (http_guard.c), a connection cap and a cap
 * on request bytes; answers of any size are written by libmicrohttpd without blocking.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "compiler.h"
#include "http_guard.h"
#include "mhd_loop.h"
#include "log.h"

#define COMP "metrics"

/* The answers the endpoint gives, counted by status (mimo_metrics_http_requests_total). */
enum answer_kind {
	ANS_OK,
	ANS_NOT_FOUND,
	ANS_BAD_METHOD,
	ANS_TOO_LARGE,
	ANS_ERROR,
	ANS_COUNT
};
static const unsigned int g_status[ANS_COUNT] = { 200, 404, 405, 413, 500 };

struct mimo_metrics_server {
	struct MHD_Daemon *d;
	mimo_metrics_collect_fn collect;
	void *arg;
	struct fab_guard *guard;
	struct fab_mhd_loop loop;
	uint16_t port;
	_Atomic uint64_t answers[ANS_COUNT];
	struct mimo_ratelimit rl;
};

int mimo_metrics_parse_addr(const char *text, struct sockaddr_storage *ss, char *err,
			    size_t err_len)
{
	const char *colon = strrchr(text, ':');
	char host[64];
	size_t hlen;
	long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (colon == NULL) {
		snprintf(err, err_len, "no port: want ADDR:PORT, e.g. 127.0.0.1:9464");
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || colon[1] == '-' || colon[1] == '+' ||
	    port < 0 || port > 65535) {
		snprintf(err, err_len, "port '%s' is not a number from 0 to 65535", colon + 1);
		return -EINVAL;
	}
	hlen = (size_t)(colon - text);
	if (hlen >= sizeof(host)) {
		snprintf(err, err_len, "address too long");
		return -EINVAL;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (hlen < 2 || host[hlen - 1] != ']') {
			snprintf(err, err_len, "IPv6 address without its closing ']'");
			return -EINVAL;
		}
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
			snprintf(err, err_len, "'%s' is not an IPv6 address", host + 1);
			return -EINVAL;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	if (host[0] == '\0')
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
		snprintf(err, err_len,
			 "'%s' is not an IPv4 address (IPv6 goes in brackets: [::1]:PORT; names "
			 "are not resolved)",
			 host);
		return -EINVAL;
	}
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct mimo_metrics_server *s = cls;
	uint64_t sup = 0;
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	/* Limits reached are what a flood looks like: said at most once a second. */
	if (strstr(line, "limit") != NULL) {
		if (mimo_ratelimit_allow(&s->rl, 1000000000, &sup))
			MIMO_WARN(COMP, "%s (%" PRIu64 " more suppressed)", line, sup);
		return;
	}
	MIMO_DEBUG(COMP, "%s", line);
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
	struct mimo_metrics_server *s = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		*socket_context = ci != NULL ? fab_guard_opened(s->guard, ci->connect_fd) : NULL;
	} else {
		fab_guard_closed(s->guard, *socket_context);
		*socket_context = NULL;
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct mimo_metrics_server *s = cls;

	(void)toe;
	(void)con_cls;
	fab_guard_request_done(s->guard, guard_conn(c));
}

static enum MHD_Result respond(struct mimo_metrics_server *s, struct MHD_Connection *c,
			       enum answer_kind kind, char *body, size_t len, const char *ctype)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	if (kind == ANS_BAD_METHOD)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	atomic_fetch_add_explicit(&s->answers[kind], 1, memory_order_relaxed);
	ret = MHD_queue_response(c, g_status[kind], r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_text(struct mimo_metrics_server *s, struct MHD_Connection *c,
				    enum answer_kind kind, const char *text)
{
	char *copy = strdup(text);

	if (copy == NULL)
		return MHD_NO;
	return respond(s, c, kind, copy, strlen(copy), "text/plain; charset=utf-8");
}

/* The endpoint's own families: what it answered, and what its deadline cut. */
static void self_metrics(struct mimo_metrics_server *s, struct mimo_expo *e)
{
	mimo_expo_family(e, "mimo_metrics_http_requests_total", MIMO_EXPO_COUNTER,
			 "Requests the metrics endpoint answered, by HTTP status.");
	for (int k = 0; k < ANS_COUNT; k++) {
		char code[8];

		snprintf(code, sizeof(code), "%u", g_status[k]);
		/* This scrape is counted once its answer is queued: the 200s include it. */
		mimo_expo_u64(e, "mimo_metrics_http_requests_total",
			      (const char *const[]){ "code", code, NULL },
			      atomic_load_explicit(&s->answers[k], memory_order_relaxed) +
				      (k == ANS_OK));
	}
	mimo_expo_one_u64(e, "mimo_metrics_http_deadline_closed_total", MIMO_EXPO_COUNTER,
			  "Metrics connections closed for not sending a whole request in time.",
			  fab_guard_reaped(s->guard));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	struct mimo_metrics_server *s = cls;
	const char *cl;
	struct mimo_expo e = { 0 };

	(void)version;
	(void)upload_data;
	/* First call, headers in: refuse at once what cannot be a scrape (libmicrohttpd then
	 * closes the connection without reading a body); a good request is answered on the
	 * next call, once libmicrohttpd knows there is no body, so its connection is kept. */
	if (*con_cls == NULL) {
		*con_cls = s;
		fab_guard_request_started(s->guard, guard_conn(c));
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return respond_text(s, c, ANS_BAD_METHOD, "only GET and HEAD\n");
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if ((cl != NULL && strcmp(cl, "0") != 0) ||
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
			return respond_text(s, c, ANS_TOO_LARGE, "a scrape has no body\n");
		return MHD_YES;
	}
	if (*upload_size != 0)
		return MHD_NO;
	if (strcmp(url, "/metrics") != 0)
		return respond_text(s, c, ANS_NOT_FOUND,
				    "not found: the metrics are at /metrics\n");
	s->collect(s->arg, &e);
	self_metrics(s, &e);
	if (e.oom) {
		mimo_buf_free(&e.b);
		return respond_text(s, c, ANS_ERROR, "out of memory\n");
	}
	return respond(s, c, ANS_OK, e.b.data, e.b.len, MIMO_METRICS_CONTENT_TYPE);
}

void mimo_metrics_stop(struct mimo_metrics_server *s)
{
	if (s == NULL)
		return;
	fab_mhd_loop_stop(&s->loop);
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	fab_guard_free(s->guard);
	free(s);
}

int mimo_metrics_start(const char *addr, mimo_metrics_collect_fn collect, void *arg,
		       struct mimo_metrics_server **out)
{
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct mimo_metrics_server *s;
	struct sockaddr_storage ss;
	char err[160];
	int rc;

	if (mimo_metrics_parse_addr(addr, &ss, err, sizeof(err)) != 0) {
		MIMO_ERR(COMP, "--metrics %s: %s", addr, err);
		return -EINVAL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	fab_mhd_loop_init(&s->loop);
	s->collect = collect;
	s->arg = arg;
	s->guard = fab_guard_new(MIMO_METRICS_HEADER_TIMEOUT_S, MIMO_METRICS_IDLE_TIMEOUT_S);
	if (s->guard == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)MIMO_METRICS_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)MIMO_METRICS_MAX_CONNS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)MIMO_METRICS_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)MIMO_METRICS_MAX_REQUEST, MHD_OPTION_END);
	if (s->d == NULL) {
		MIMO_ERR(COMP,
			 "--metrics %s: cannot listen there (address in use, or not this "
			 "host's?)",
			 addr);
		mimo_metrics_stop(s);
		return -EADDRINUSE;
	}
	rc = fab_mhd_loop_start(&s->loop, s->d, s->guard);
	if (rc != 0) {
		MIMO_ERR(COMP, "cannot start the metrics thread: %s", strerror(-rc));
		mimo_metrics_stop(s);
		return rc;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info != NULL ? info->port : 0;
	MIMO_INFO(COMP, "Prometheus metrics on http://%s/metrics (port %u)", addr, s->port);
	*out = s;
	return 0;
}

uint16_t mimo_metrics_port(const struct mimo_metrics_server *s)
{
	return s->port;
}
