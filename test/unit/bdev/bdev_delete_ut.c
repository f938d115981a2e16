/*
 * Deleting a bdev when the message rings it must send on are full (docs/ARCHITECTURE.md,
 * "Locking rules of the bdev layer"). Two reactors with rings of two messages. The delete
 * tells every descriptor's reactor of the removal while it holds the registry's and the bdev's
 * locks; it used to spin until the ring had room, which never came when the ring was its own
 * reactor's, or another's whose reactor was waiting for those very locks.
 */
#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_internal.h"
#include "bdev_malloc.h"
#include "mimo/bdev.h"
#include "mimo/reactor.h"

#define NDESC 6

static sem_t g_sem;

/* A reactor stuck in a deadlock cannot be stopped (teardown would wait for it forever): a
 * test that sees one says so and ends the process. */
static void stuck(const char *what)
{
	fprintf(stderr, "bdev_delete_ut: %s: a reactor is stuck\n", what);
	fflush(stderr);
	_exit(1);
}

static void wait_sem(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (sem_timedwait(&g_sem, &ts) != 0) {
		if (errno != EINTR)
			stuck("no answer in 10 s");
	}
}

/* The test thread sends from outside the reactors: it may wait for room. */
static void send_to(uint32_t reactor, mimo_msg_fn fn, void *arg)
{
	while (mimo_reactor_send_msg(mimo_reactor_get(reactor), fn, arg) == -EAGAIN)
		sched_yield();
}

struct step {
	const char *name;
	int rc;
	struct mimo_bdev_desc *desc;
	_Atomic bool returned; /* the step's call came back */
};

/* An owner that closes its descriptor when told the bdev goes (on the descriptor's reactor). */
static void close_on_remove(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct step *s = ctx;

	(void)bdev;
	if (type == MIMO_BDEV_EVENT_REMOVE)
		mimo_bdev_close(s->desc);
}

static void do_create(void *arg)
{
	struct step *s = arg;
	struct mimo_bdev *b;

	s->rc = bdev_malloc_create(s->name, 64, 512, NULL, &b);
	sem_post(&g_sem);
}

static void do_open(void *arg)
{
	struct step *s = arg;

	s->rc = mimo_bdev_open(s->name, false, close_on_remove, s, &s->desc);
	sem_post(&g_sem);
}

static void deleted(void *arg, int rc)
{
	struct step *s = arg;

	s->rc = rc;
	sem_post(&g_sem);
}

static void do_delete(void *arg)
{
	struct step *s = arg;
	int rc = mimo_bdev_delete(s->name, deleted, s);

	atomic_store(&s->returned, true);
	if (rc != 0) {
		s->rc = rc;
		sem_post(&g_sem);
	}
}

static void create_and_open(const char *name, struct step *descs, uint32_t reactor)
{
	struct step c = { .name = name };

	send_to(0, do_create, &c);
	wait_sem();
	assert_int_equal(c.rc, 0);
	for (int i = 0; i < NDESC; i++) {
		descs[i].name = name;
		send_to(reactor, do_open, &descs[i]);
		wait_sem();
		assert_int_equal(descs[i].rc, 0);
	}
}

/* More descriptors on the deleting reactor than its ring holds: the notices it sends itself
 * wait on its overflow list, and its loop delivers them once the delete returned. */
static void test_delete_more_descriptors_than_its_own_ring_holds(void **state)
{
	struct step descs[NDESC] = { 0 }, d = { .name = "Own" };

	(void)state;
	create_and_open("Own", descs, 0);
	send_to(0, do_delete, &d);
	wait_sem();
	assert_int_equal(d.rc, 0);
	assert_null(mimo_bdev_get_by_name("Own"));
}

/* --- the other reactor's ring full, and that reactor waiting for the registry's lock ------- */

static _Atomic bool g_gate_entered, g_gate_open;

/* On reactor 1: hold it (its ring fills meanwhile), then want the registry's lock, as its
 * queue-depth sampler's poller or a bdev open there would. */
static void gate(void *arg)
{
	(void)arg;
	atomic_store(&g_gate_entered, true);
	while (!atomic_load(&g_gate_open))
		sched_yield();
	bdev_registry_lock();
	bdev_registry_unlock();
	sem_post(&g_sem);
}

static void nothing(void *arg)
{
	(void)arg;
}

static void test_delete_while_the_owners_ring_is_full_and_it_waits_for_the_lock(void **state)
{
	struct step descs[NDESC] = { 0 }, d = { .name = "Other" };
	struct timespec until;

	(void)state;
	create_and_open("Other", descs, 1);
	send_to(1, gate, NULL);
	while (!atomic_load(&g_gate_entered))
		sched_yield();
	/* Reactor 1 is in the gate: fill its ring. */
	while (mimo_reactor_send_msg(mimo_reactor_get(1), nothing, NULL) == 0)
		;
	send_to(0, do_delete, &d);
	/* The delete must come back although it cannot reach reactor 1. One that waits for
	 * room in the ring does not (it holds the registry's lock meanwhile): give it a bound,
	 * then open the gate either way - reactor 1 then waits for that lock, and only a delete
	 * that let go of it lets the test finish. */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 2;
	for (;;) {
		struct timespec now;

		if (atomic_load(&d.returned))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			break;
		sched_yield();
	}
	if (!atomic_load(&d.returned))
		stuck("the delete waits for reactor 1's ring while holding the registry's lock");
	atomic_store(&g_gate_open, true);
	wait_sem(); /* the gate took the lock */
	wait_sem(); /* the delete's callback: every owner on reactor 1 heard and closed */
	assert_int_equal(d.rc, 0);
	assert_null(mimo_bdev_get_by_name("Other"));
}

static int setup(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	o.msg_ring_size = 2;
	return mimo_reactors_start(&o);
}

static int teardown(void **state)
{
	(void)state;
	mimo_reactors_stop();
	return 0;
}

int main(void)
{
	/* The layer emits events; nothing here needs them delivered. */
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delete_more_descriptors_than_its_own_ring_holds),
		cmocka_unit_test(
			test_delete_while_the_owners_ring_is_full_and_it_waits_for_the_lock),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
