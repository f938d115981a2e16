/*
 * The HTTP front (http.c): the server (libmicrohttpd) in front of fab_api_handle, shared by
 * mimo_agent and mimo_gateway, with its limits (docs/agent.md, "The HTTP front").
 *
 * Threading: fab_http_start starts one event-loop thread and a pool of workers
 * (fab_http_opts.workers) that call fab_api_handle, and returns; fab_http_stop, from the thread
 * that started it, answers what was accepted, joins them all and frees. Memory: api must
 * outlive the front; options are copied. Errors: 0 or a negative errno (fab_http_start logs
 * why it could not serve).
 */
#ifndef MIMO_FAB_HTTP_FRONT_H
#define MIMO_FAB_HTTP_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"

/* The front's limits. Zero-initialised fields take the defaults below. */
struct fab_http_opts {
	uint32_t max_conns;	   /* open connections (4096; lowered to fit RLIMIT_NOFILE) */
	bool max_conns_given;	   /* given on the command line: refuse it rather than lower it */
	uint32_t max_conns_per_ip; /* per client address (128; 0 = no limit) */
	bool max_conns_per_ip_given;
	uint32_t header_timeout_s; /* a connection's first request headers (10 s) */
	uint32_t idle_timeout_s;   /* inactivity, and between keep-alive requests (30 s) */
	uint32_t workers;	   /* threads answering the requests that may wait (32) */
};
#define FAB_HTTP_MAX_CONNS	  4096
#define FAB_HTTP_MAX_CONNS_PER_IP 128
#define FAB_HTTP_HEADER_TIMEOUT_S 10
#define FAB_HTTP_IDLE_TIMEOUT_S	  30
#define FAB_HTTP_WORKERS	  32
#define FAB_HTTP_QUEUE_PER_WORKER 32	       /* requests waiting for a worker, per worker */
#define FAB_HTTP_BODY_BUDGET	  (256u << 20) /* bytes of bodies held at once, all clients */
#define FAB_HTTP_FD_RESERVE	  256	       /* descriptors kept for plugins, files, callbacks */
#define FAB_HTTP_INLINE_BODY	  (64u << 10)  /* larger bodies are parsed off the loop */

/* Parse one of the front's command-line options ("http-max-conns", ...) into o: 0, -ENOENT
 * when name is not one of them, -EINVAL when value is out of range. */
int fab_http_parse_opt(struct fab_http_opts *o, const char *name, const char *value);
/* The usage lines of those options. */
extern const char fab_http_usage[];

struct fab_http;
/* Serve api on addr ("127.0.0.1:8089", "[::1]:80", ":8089"). */
int fab_http_start(struct fab_http **out, const char *addr, const struct fab_http_opts *o,
		   struct fab_api *api);
void fab_http_stop(struct fab_http *h);
/* What the front did, from any thread (the metrics endpoint). */
struct fab_http_stats {
	uint64_t responses[6];	  /* answers sent, by status class: [2] counts the 2xx */
	uint64_t conns_open;	  /* connections open now */
	uint64_t deadline_closed; /* closed for not sending a whole request in time */
};
void fab_http_get_stats(struct fab_http *h, struct fab_http_stats *st);
/* The port actually bound (addr may say 0). */
uint16_t fab_http_port(struct fab_http *h);

#endif
