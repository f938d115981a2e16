/* The HTTP front's worker pool (see http_pool.h). */
#include "http_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct fab_pool {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct fab_job *head, *tail;
	unsigned int reserved; /* queued, running, or promised by fab_pool_reserve */
	unsigned int queue_max;
	unsigned int n_threads;
	bool stopping;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct fab_pool *p = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct fab_job *j = p->head;

		if (j == NULL) {
			/* Stop only once nothing is queued or promised: every accepted request
			 * gets its answer. */
			if (p->stopping && p->reserved == 0)
				break;
			pthread_cond_wait(&p->cond, &p->mu);
			continue;
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->run(j);
		pthread_mutex_lock(&p->mu);
		p->reserved--;
		if (p->stopping && p->reserved == 0)
			pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int fab_pool_start(struct fab_pool **out, unsigned int threads, unsigned int queue_max)
{
	struct fab_pool *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	int rc = 0;

	if (p == NULL)
		return -ENOMEM;
	p->threads = calloc(threads, sizeof(pthread_t));
	if (p->threads == NULL) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->queue_max = queue_max;
	/* The API's handlers parse JSON and format answers on their stack: 1 MiB is plenty and
	 * costs address space only. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1u << 20);
	for (; p->n_threads < threads; p->n_threads++) {
		rc = pthread_create(&p->threads[p->n_threads], &attr, worker, p);
		if (rc != 0)
			break;
	}
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		fab_pool_stop(p);
		return -rc;
	}
	*out = p;
	return 0;
}

bool fab_pool_reserve(struct fab_pool *p)
{
	bool ok;

	pthread_mutex_lock(&p->mu);
	ok = !p->stopping && p->reserved < p->queue_max;
	if (ok)
		p->reserved++;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void fab_pool_submit(struct fab_pool *p, struct fab_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

unsigned int fab_pool_busy(struct fab_pool *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->mu);
	n = p->reserved;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void fab_pool_stop(struct fab_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	for (unsigned int i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
