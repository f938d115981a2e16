/*
 * The HTTP front's deadline for requests that never complete. libmicrohttpd only knows an
 * idle timeout, which a client defeats by sending one header byte every few seconds
 * (slowloris: 32 KiB of headers at a byte per 9 s holds a connection for days). The guard
 * keeps every connection's deadline - its first request's headers must be complete within
 * header_timeout of the connection's start, later ones within idle_timeout of the previous
 * answer. A request being answered (its headers in) is never cut.
 *
 * Threading: any thread (the guard has its own lock); the HTTP front calls it from its event
 * loop, where libmicrohttpd's notifications and the sweep run. Errors: NULL when out of
 * memory; nothing else fails.
 */
#ifndef MIMO_FAB_HTTP_GUARD_H
#define MIMO_FAB_HTTP_GUARD_H

#include <stdint.h>

struct fab_guard;
struct fab_guard_conn;

struct fab_guard *fab_guard_new(uint32_t header_timeout_s, uint32_t idle_timeout_s);
void fab_guard_free(struct fab_guard *g);
/* Shut down the connections past their deadline: how many. */
unsigned int fab_guard_sweep(struct fab_guard *g, int64_t now_ns);
/* How often to sweep: a quarter of the shorter timeout, within 50 ms - 1 s. */
int64_t fab_guard_period_ns(const struct fab_guard *g);

/* libmicrohttpd's connection notifications (its thread). NULL when out of memory: that
 * connection then has only the idle timeout. */
struct fab_guard_conn *fab_guard_opened(struct fab_guard *g, int fd);
void fab_guard_closed(struct fab_guard *g, struct fab_guard_conn *c);
/* A request's headers are in / its answer was sent. */
void fab_guard_request_started(struct fab_guard *g, struct fab_guard_conn *c);
void fab_guard_request_done(struct fab_guard *g, struct fab_guard_conn *c);

/* Connections closed for missing their deadline, since the start. */
uint64_t fab_guard_reaped(struct fab_guard *g);

#endif
