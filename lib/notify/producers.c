#include "producers.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

__thread struct producer_slot *notify_t_slot __attribute__((tls_model("initial-exec")));

static _Atomic(struct producer_slot *) g_slots;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

/* Thread exit: the slot goes back for another thread to use. */
static void release_slot(void *p)
{
	struct producer_slot *s = p;

	atomic_store(&s->inside, 0);
	atomic_store(&s->in_use, 0);
}

static void make_key(void)
{
	pthread_key_create(&g_key, release_slot);
}

struct producer_slot *notify_producer_slot_acquire(void)
{
	struct producer_slot *s;

	pthread_once(&g_key_once, make_key);
	for (s = atomic_load(&g_slots); s != NULL; s = s->next) {
		int expected = 0;

		if (atomic_compare_exchange_strong(&s->in_use, &expected, 1))
			goto found;
	}
	s = aligned_alloc(MIMO_CACHELINE, sizeof(*s));
	if (s == NULL)
		return NULL;
	atomic_init(&s->inside, 0);
	atomic_init(&s->in_use, 1);
	/* Push-only list: slots are never freed, only reused. */
	s->next = atomic_load(&g_slots);
	while (!atomic_compare_exchange_weak(&g_slots, &s->next, s))
		;
found:
	pthread_setspecific(g_key, s);
	notify_t_slot = s;
	return s;
}

void notify_producers_wait_quiescent(void)
{
	for (struct producer_slot *s = atomic_load(&g_slots); s != NULL; s = s->next) {
		while (atomic_load(&s->inside))
			sched_yield();
	}
}

void notify_producers_after_fork(void)
{
	for (struct producer_slot *s = atomic_load(&g_slots); s != NULL; s = s->next) {
		if (s != notify_t_slot) {
			atomic_store(&s->inside, 0);
			atomic_store(&s->in_use, 0);
		}
	}
}
