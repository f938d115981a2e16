/*
 * The metrics endpoint: `GET /metrics` in Prometheus' text format, on an address of its own
 * (--metrics ADDR:PORT of mimo_tgt, mimo_agent and mimo_gateway). libmicrohttpd parses the
 * requests; one thread of the server's own runs it, so a scrape never runs on a reactor or on
 * the daemon's HTTP front, and a stuck reactor can still be seen from outside.
 *
 * What a scrape costs is bounded as every network-facing part's is (docs/ROBUSTNESS.md):
 * MIMO_METRICS_MAX_CONNS connections at once and MIMO_METRICS_MAX_CONNS_PER_IP from one address
 * (so that slow clients on one host cannot keep the scraper out), request headers complete within
 * MIMO_METRICS_HEADER_TIMEOUT_S of the connection's start (and of the previous answer on a
 * kept connection), MIMO_METRICS_MAX_REQUEST bytes of request, no body, answers written
 * without blocking from the server's thread whatever their size.
 *
 * Threading: collect runs on the server's thread, once per scrape, and must only read what is
 * safe to read from any thread (atomics, state under its own lock). start and stop from one
 * thread; stop joins the server's thread. Errors: 0 or a negative errno; start logs why.
 */
#ifndef MIMO_METRICS_SERVER_H
#define MIMO_METRICS_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "expo.h"

#define MIMO_METRICS_MAX_CONNS	      64
#define MIMO_METRICS_MAX_CONNS_PER_IP 8
#define MIMO_METRICS_HEADER_TIMEOUT_S 5
#define MIMO_METRICS_IDLE_TIMEOUT_S   60
#define MIMO_METRICS_MAX_REQUEST      (16u << 10)

/* Write the program's families into e. */
typedef void (*mimo_metrics_collect_fn)(void *arg, struct mimo_expo *e);

/*
 * Parse --metrics' value: "IPv4:PORT", "[IPv6]:PORT" or ":PORT" (every address), PORT 0 to
 * 65535 (0: any free port). 0 or -EINVAL with why (for the error message) in err.
 */
int mimo_metrics_parse_addr(const char *text, struct sockaddr_storage *ss, char *err,
			    size_t err_len);

struct mimo_metrics_server;

int mimo_metrics_start(const char *addr, mimo_metrics_collect_fn collect, void *arg,
		       struct mimo_metrics_server **out);
/* The port bound (addr may ask for 0). */
uint16_t mimo_metrics_port(const struct mimo_metrics_server *s);
void mimo_metrics_stop(struct mimo_metrics_server *s);

#endif
