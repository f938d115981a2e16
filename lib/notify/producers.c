#include "producers.h"

#include <pthread.h>
#include <sched.h>

__thread struct producer_slot notify_t_slot __attribute__((tls_model("initial-exec")));

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct producer_slot *g_slots; /* under g_lock */
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static bool g_key_ok;

static void unlink_locked(struct producer_slot *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		g_slots = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->registered = false;
}

/* Thread exit: its storage is about to go. */
static void unregister(void *p)
{
	struct producer_slot *s = p;

	pthread_mutex_lock(&g_lock);
	if (s->registered)
		unlink_locked(s);
	pthread_mutex_unlock(&g_lock);
}

static void make_key(void)
{
	g_key_ok = pthread_key_create(&g_key, unregister) == 0;
}

bool notify_producer_register(void)
{
	struct producer_slot *s = &notify_t_slot;

	pthread_once(&g_key_once, make_key);
	if (!g_key_ok || pthread_setspecific(g_key, s) != 0)
		return false;
	pthread_mutex_lock(&g_lock);
	if (!s->registered) {
		s->prev = NULL;
		s->next = g_slots;
		if (g_slots != NULL)
			g_slots->prev = s;
		g_slots = s;
		s->registered = true;
	}
	pthread_mutex_unlock(&g_lock);
	return true;
}

void notify_producers_wait_quiescent(void)
{
	/* Holding the lock: a thread that exits (or registers) meanwhile waits; neither is
	 * inside, so the wait cannot depend on it. */
	pthread_mutex_lock(&g_lock);
	for (struct producer_slot *s = g_slots; s != NULL; s = s->next) {
		while (atomic_load(&s->inside))
			sched_yield();
	}
	pthread_mutex_unlock(&g_lock);
}

void notify_producers_after_fork(void)
{
	struct producer_slot *self = &notify_t_slot;

	/* The other threads are gone; their storage is the parent's. The mutex may have been
	 * held by one of them at fork: start afresh. */
	pthread_mutex_init(&g_lock, NULL);
	g_slots = NULL;
	atomic_store(&self->inside, 0);
	if (self->registered) {
		self->prev = self->next = NULL;
		g_slots = self;
	}
}
