/*
 * The HTTP server (libmicrohttpd) in front of fab_api_handle. One thread per connection:
 * request-reply and RETRIEVE block their handler until the plugin answers, and a keep-alive
 * client gets its answers with no hand-off between threads. The URL path reaches the API
 * undecoded, so a cache key may contain an escaped '/' and is decoded once, segment by segment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fabric.h"
#include "log.h"

#define COMP "http"

struct fab_http {
	struct MHD_Daemon *d;
	struct fab_api *api;
	uint16_t port;
};

struct req_ctx {
	struct mimo_buf body;
	bool too_big;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	MIMO_DEBUG(COMP, "%s", line);
}

/* Leave the path escaped: the API decodes each segment itself. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

struct query_acc {
	struct mimo_buf *b;
};

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

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *rc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rc != NULL) {
		mimo_buf_free(&rc->body);
		free(rc);
		*con_cls = NULL;
	}
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *ctype,
			      const void *data, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	ret = MHD_queue_response(c, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	struct fab_http *h = cls;
	struct req_ctx *rc = *con_cls;
	struct fab_http_response resp = { 0 };
	struct mimo_buf query = { 0 };
	enum MHD_Result ret;

	(void)version;
	if (rc == NULL) {
		rc = calloc(1, sizeof(*rc));
		if (rc == NULL)
			return MHD_NO;
		*con_cls = rc;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (rc->body.len + *upload_size > FAB_MAX_BODY)
			rc->too_big = true;
		else if (mimo_buf_append(&rc->body, upload_data, *upload_size) != 0)
			rc->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	if (rc->too_big) {
		static const char msg[] = "{\"error\":\"body larger than 16 MiB\",\"code\":413}";

		return answer(c, 413, "application/json", msg, sizeof(msg) - 1);
	}
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &query);
	fab_api_handle(h->api, method, url, query.data != NULL ? query.data : "",
		       MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
		       rc->body.data, rc->body.len, &resp);
	mimo_buf_free(&query);
	ret = answer(c, resp.status, resp.content_type ? resp.content_type : "application/json",
		     resp.body.data != NULL ? resp.body.data : "", resp.body.len);
	mimo_buf_free(&resp.body);
	return ret;
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

int fab_http_start(struct fab_http **out, const char *addr, struct fab_api *api)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	struct fab_http *h;
	socklen_t slen;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_POLL | MHD_USE_ERROR_LOG;

	if (parse_addr(addr, &ss, &slen) != 0) {
		MIMO_ERR(COMP, "cannot parse HTTP address '%s' (want HOST:PORT)", addr);
		return -EINVAL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->api = api;
	h->d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20), MHD_OPTION_END);
	if (h->d == NULL) {
		MIMO_ERR(COMP, "cannot serve HTTP on %s (address in use?)", addr);
		free(h);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : 0;
	*out = h;
	return 0;
}

uint16_t fab_http_port(struct fab_http *h)
{
	return h->port;
}

void fab_http_stop(struct fab_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
