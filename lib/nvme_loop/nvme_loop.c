/* The registry of loop listeners: names to the target's queue constructors, under a lock. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "nvme_loop.h"

struct loop_port {
	char *name;
	nvme_loop_queue_create_fn create;
	void *port;
	TAILQ_ENTRY(loop_port) link;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, loop_port) g_ports = TAILQ_HEAD_INITIALIZER(g_ports);

static struct loop_port *find(const char *name)
{
	struct loop_port *p;

	TAILQ_FOREACH(p, &g_ports, link)
	{
		if (strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

int nvme_loop_port_register(const char *name, nvme_loop_queue_create_fn create, void *port)
{
	struct loop_port *p = calloc(1, sizeof(*p));
	int rc = 0;

	if (p == NULL || (p->name = strdup(name)) == NULL) {
		free(p);
		return -ENOMEM;
	}
	p->create = create;
	p->port = port;
	pthread_mutex_lock(&g_lock);
	if (find(name) != NULL)
		rc = -EADDRINUSE;
	else
		TAILQ_INSERT_TAIL(&g_ports, p, link);
	pthread_mutex_unlock(&g_lock);
	if (rc != 0) {
		free(p->name);
		free(p);
	}
	return rc;
}

void nvme_loop_port_unregister(void *port)
{
	struct loop_port *p;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(p, &g_ports, link)
	{
		if (p->port == port)
			break;
	}
	if (p != NULL)
		TAILQ_REMOVE(&g_ports, p, link);
	pthread_mutex_unlock(&g_lock);
	if (p != NULL) {
		free(p->name);
		free(p);
	}
}

int nvme_loop_queue_open(const char *name, uint32_t slots, struct nvme_loop_queue **q)
{
	struct loop_port *p;
	int rc;

	/* Held while the target creates the queue: its listener cannot go meanwhile. */
	pthread_mutex_lock(&g_lock);
	p = find(name);
	rc = p != NULL ? p->create(p->port, slots, q) : -ECONNREFUSED;
	pthread_mutex_unlock(&g_lock);
	return rc;
}
