/* Request deadlines for the HTTP front (see http_guard.h). */
#include "http_guard.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "clock.h"
#include "compiler.h"
#include "log.h"

#define COMP "http"

struct fab_guard_conn {
	struct fab_guard_conn *prev, *next;
	int fd;
	bool in_request;
	bool shut;
	int64_t deadline_ns;
};

/* Used by the event loop's thread only, but locked all the same: it costs nothing
 * uncontended and keeps the guard safe to call from anywhere. */
struct fab_guard {
	pthread_mutex_t mu;
	struct fab_guard_conn *head;
	int64_t header_ns, idle_ns;
	uint64_t reaped;
	struct mimo_ratelimit rl;
};

/* One pass over the connections. A few thousand entries a few times a second cost far less
 * than keeping them sorted on every request. */
unsigned int fab_guard_sweep(struct fab_guard *g, int64_t now)
{
	unsigned int n = 0;
	uint64_t sup, total;

	pthread_mutex_lock(&g->mu);
	for (struct fab_guard_conn *c = g->head; c != NULL; c = c->next) {
		if (c->in_request || c->shut || now < c->deadline_ns)
			continue;
		/* shutdown, not close: the descriptor stays libmicrohttpd's until it closes it
		 * (after telling fab_guard_closed), so it cannot be reused under our feet. */
		shutdown(c->fd, SHUT_RDWR);
		c->shut = true;
		n++;
	}
	g->reaped += n;
	total = g->reaped;
	pthread_mutex_unlock(&g->mu);
	if (n > 0 && mimo_ratelimit_allow(&g->rl, 10 * 1000000000LL, &sup))
		MIMO_WARN(COMP,
			  "closed %u connection(s) that sent no complete request in time "
			  "(%" PRIu64 " so far)",
			  n, total);
	return n;
}

int64_t fab_guard_period_ns(const struct fab_guard *g)
{
	int64_t period = MIMO_MIN(g->header_ns, g->idle_ns) / 4;

	return MIMO_MAX(MIMO_MIN(period, (int64_t)1000000000), (int64_t)50000000);
}

struct fab_guard *fab_guard_new(uint32_t header_timeout_s, uint32_t idle_timeout_s)
{
	struct fab_guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->header_ns = (int64_t)header_timeout_s * 1000000000;
	g->idle_ns = (int64_t)idle_timeout_s * 1000000000;
	pthread_mutex_init(&g->mu, NULL);
	return g;
}

void fab_guard_free(struct fab_guard *g)
{
	if (g == NULL)
		return;
	while (g->head != NULL) {
		struct fab_guard_conn *c = g->head;

		g->head = c->next;
		free(c);
	}
	pthread_mutex_destroy(&g->mu);
	free(g);
}

struct fab_guard_conn *fab_guard_opened(struct fab_guard *g, int fd)
{
	struct fab_guard_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->deadline_ns = mimo_now_ns() + g->header_ns;
	pthread_mutex_lock(&g->mu);
	c->next = g->head;
	if (g->head != NULL)
		g->head->prev = c;
	g->head = c;
	pthread_mutex_unlock(&g->mu);
	return c;
}

void fab_guard_closed(struct fab_guard *g, struct fab_guard_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->mu);
	free(c);
}

void fab_guard_request_started(struct fab_guard *g, struct fab_guard_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	c->in_request = true;
	pthread_mutex_unlock(&g->mu);
}

void fab_guard_request_done(struct fab_guard *g, struct fab_guard_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	c->in_request = false;
	c->deadline_ns = mimo_now_ns() + g->idle_ns;
	pthread_mutex_unlock(&g->mu);
}

uint64_t fab_guard_reaped(struct fab_guard *g)
{
	uint64_t n;

	pthread_mutex_lock(&g->mu);
	n = g->reaped;
	pthread_mutex_unlock(&g->mu);
	return n;
}
