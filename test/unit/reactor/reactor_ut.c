#include <errno.h>
#include <pthread.h>
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
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reactor_internal.h" /* the sleeping flag: tests wait for it, never for a fixed time */
#include "mimo/reactor.h"

static sem_t g_sem;

/* Wait (10 s at most) until reactor idx is asleep in epoll: a test that needs a sleeping
 * reactor waits for exactly that. */
static void wait_asleep(uint32_t idx)
{
	struct mimo_reactor *r = mimo_reactor_get(idx);
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!atomic_load(&r->sleeping)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(now.tv_sec - t0.tv_sec < 10);
		sched_yield();
	}
}

static void wait_sem(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	assert_int_equal(sem_timedwait(&g_sem, &ts), 0);
}

/* Run fn(arg) on reactor idx and wait for it to post g_sem. */
static void run_on(uint32_t idx, mimo_msg_fn fn, void *arg)
{
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(idx), fn, arg), 0);
	wait_sem();
}

static int setup(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	o.idle_spin_us = 50;
	return mimo_reactors_start(&o);
}

static int teardown(void **state)
{
	(void)state;
	mimo_reactors_stop();
	return 0;
}

static void test_cpumask(void **state)
{
	uint64_t m;

	(void)state;
	assert_int_equal(mimo_reactor_parse_cpumask("0x3", &m), 0);
	assert_int_equal(m, 3);
	assert_int_equal(mimo_reactor_parse_cpumask("F", &m), 0);
	assert_int_equal(m, 15);
	assert_int_equal(mimo_reactor_parse_cpumask("[0,2-3]", &m), 0);
	assert_int_equal(m, 0xd);
	assert_int_equal(mimo_reactor_parse_cpumask("0x0", &m), -EINVAL);
	assert_int_equal(mimo_reactor_parse_cpumask("zz", &m), -EINVAL);
	assert_int_equal(mimo_reactor_parse_cpumask("[1-0]", &m), -EINVAL);
	assert_int_equal(mimo_reactor_parse_cpumask("[0,64]", &m), -EINVAL);
}

/* --- messages ----------------------------------------------------------------------------- */

#define NMSG 100000
static int g_seen[NMSG];
static _Atomic int g_next;
static _Atomic int g_order_ok = 1;

static void count_msg(void *arg)
{
	int i = (int)(intptr_t)arg;

	if (mimo_reactor_index(mimo_reactor_current()) != 1)
		atomic_store(&g_order_ok, 0);
	if (i != atomic_load(&g_next))
		atomic_store(&g_order_ok, 0);
	atomic_fetch_add(&g_next, 1);
	g_seen[i]++;
	if (i == NMSG - 1)
		sem_post(&g_sem);
}

static void test_messages_in_order(void **state)
{
	(void)state;
	assert_int_equal(mimo_reactor_count(), 2);
	for (int i = 0; i < NMSG; i++) {
		while (mimo_reactor_send_msg(mimo_reactor_get(1), count_msg, (void *)(intptr_t)i) ==
		       -EAGAIN)
			usleep(10);
	}
	wait_sem();
	assert_int_equal(atomic_load(&g_order_ok), 1);
	for (int i = 0; i < NMSG; i++)
		assert_int_equal(g_seen[i], 1);
}

static void post_msg(void *arg)
{
	(void)arg;
	sem_post(&g_sem);
}

/* A reactor that has gone to sleep wakes for a message. With no timer it sleeps without a
 * timeout, so a lost wake-up would leave wait_sem() to fail after 10 s. */
static void test_wakes_from_sleep(void **state)
{
	struct mimo_reactor_stats st;

	(void)state;
	wait_asleep(0);
	mimo_reactor_get_stats(mimo_reactor_get(0), &st);
	assert_true(st.sleeps >= 1);
	run_on(0, post_msg, NULL);
}

/* --- pollers --------------------------------------------------------------------------- */

static struct mimo_poller *g_active, *g_timer, *g_victim;
static _Atomic int g_active_runs, g_timer_runs, g_victim_runs;

static int victim(void *arg)
{
	(void)arg;
	atomic_fetch_add(&g_victim_runs, 1);
	return 0;
}

static int active_poller(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&g_active_runs, 1) + 1 == 100) {
		/* Unregister itself and the poller after it, from inside the walk. */
		mimo_poller_unregister(&g_victim);
		mimo_poller_unregister(&g_active);
		sem_post(&g_sem);
	}
	return 1;
}

static int timer_poller(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&g_timer_runs, 1) + 1 == 5) {
		mimo_poller_unregister(&g_timer);
		sem_post(&g_sem);
	}
	return 0;
}

static void start_pollers(void *arg)
{
	(void)arg;
	g_active = mimo_poller_register(active_poller, NULL, 0);
	g_victim = mimo_poller_register(victim, NULL, 0);
	g_timer = mimo_poller_register(timer_poller, NULL, 2000);
	sem_post(&g_sem);
}

static void test_pollers_and_timers(void **state)
{
	struct timespec t0, t1;
	int victim_runs;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_on(0, start_pollers, NULL);
	wait_sem(); /* active poller ran 100 times */
	wait_sem(); /* timer ran 5 times */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(atomic_load(&g_active_runs), 100);
	assert_int_equal(atomic_load(&g_timer_runs), 5);
	/* Five 2 ms periods cannot all have passed in under 8 ms. */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) >= 8000000L);
	victim_runs = atomic_load(&g_victim_runs);
	/* Asleep: every turn since the last poller's last run passed without running one. */
	wait_asleep(0);
	assert_int_equal(atomic_load(&g_active_runs), 100);
	assert_int_equal(atomic_load(&g_timer_runs), 5);
	assert_int_equal(atomic_load(&g_victim_runs), victim_runs);
}

/* --- late pollers: after every ordinary one, whatever the order of registration ------- */

static char g_order[64];
static int g_order_len, g_turns;
static struct mimo_poller *g_late1, *g_late2, *g_early1, *g_early2;

static int record(void *arg)
{
	if (g_order_len < (int)sizeof(g_order) - 1)
		g_order[g_order_len++] = *(const char *)arg;
	/* The first late poller, in its second turn, stops each turn there being recorded. */
	if (*(const char *)arg == 'z' && ++g_turns == 2) {
		mimo_poller_unregister(&g_late1);
		mimo_poller_unregister(&g_late2);
		mimo_poller_unregister(&g_early1);
		mimo_poller_unregister(&g_early2);
		sem_post(&g_sem);
	}
	return 1;
}

static void start_ordered(void *arg)
{
	(void)arg;
	g_order_len = g_turns = 0;
	g_late1 = mimo_poller_register_late(record, "y");
	g_early1 = mimo_poller_register(record, "a", 0);
	g_late2 = mimo_poller_register_late(record, "z");
	g_early2 = mimo_poller_register(record, "b", 0);
	sem_post(&g_sem);
}

static void test_late_pollers_run_last(void **state)
{
	(void)state;
	run_on(1, start_ordered, NULL);
	wait_sem();
	/* Turns are whole: ordinary pollers in registration order, then the late ones. */
	assert_true(g_order_len >= 8);
	assert_memory_equal(g_order + g_order_len - 8, "abyzabyz", 8);
}

/* --- introspection: names, ids and counts of pollers (thread_get_pollers) --------------- */

static struct mimo_poller *g_counted, *g_ticker;
static int g_counted_runs;

static int counted(void *arg)
{
	(void)arg;
	/* Busy every other run, and done after ten. */
	if (++g_counted_runs == 10)
		sem_post(&g_sem);
	return g_counted_runs % 2;
}

static int ticker(void *arg)
{
	(void)arg;
	return 0;
}

static void start_counted(void *arg)
{
	(void)arg;
	g_counted_runs = 0;
	g_counted = mimo_poller_register(counted, NULL, 0);
	g_ticker = mimo_poller_register(ticker, NULL, 1000000);
	sem_post(&g_sem);
}

struct seen {
	struct mimo_poller_info info[8];
	char names[8][32];
	int n;
};

static void see_poller(const struct mimo_poller_info *info, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		s->info[s->n] = *info;
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", info->name);
		s->n++;
	}
}

static void look_and_stop(void *arg)
{
	mimo_poller_unregister(&g_counted);
	mimo_reactor_foreach_poller(see_poller, arg); /* an unregistered poller is not listed */
	mimo_poller_unregister(&g_ticker);
	sem_post(&g_sem);
}

static void look(void *arg)
{
	mimo_reactor_foreach_poller(see_poller, arg);
	sem_post(&g_sem);
}

static void test_poller_introspection(void **state)
{
	struct seen s = { 0 }, after = { 0 };

	(void)state;
	run_on(1, start_counted, NULL);
	wait_sem(); /* ten runs */
	run_on(1, look, &s);
	assert_int_equal(s.n, 2);
	/* Active pollers first, each named after its function, ids in registration order. */
	assert_string_equal(s.names[0], "counted");
	assert_int_equal(s.info[0].period_ticks, 0);
	assert_true(s.info[0].run_count >= 10);
	assert_true(s.info[0].busy_count >= 5 && s.info[0].busy_count <= s.info[0].run_count);
	assert_string_equal(s.names[1], "ticker");
	assert_true(s.info[1].period_ticks > 0);
	assert_int_equal(s.info[1].run_count, 0); /* a second has not passed */
	assert_true(s.info[1].id > s.info[0].id);
	run_on(1, look_and_stop, &after);
	assert_int_equal(after.n, 1);
	assert_string_equal(after.names[0], "ticker");
	assert_true(mimo_reactor_tid(mimo_reactor_get(1)) > 0);
	assert_true(mimo_reactor_start_ticks(mimo_reactor_get(1)) > 0);
	assert_false(mimo_reactor_poll_mode(mimo_reactor_get(1)));
}

/* --- fd watches ------------------------------------------------------------------------- */

static int g_pipe[2];
static struct mimo_fd_watch *g_watch;
static char g_got[16];

static void on_readable(void *arg, uint32_t events)
{
	(void)arg;
	assert_true(events & EPOLLIN);
	assert_int_equal(read(g_pipe[0], g_got, sizeof(g_got)), 5);
	mimo_fd_watch_remove(&g_watch); /* from inside its own callback */
	sem_post(&g_sem);
}

static void add_watch(void *arg)
{
	(void)arg;
	assert_int_equal(mimo_fd_watch_add(g_pipe[0], EPOLLIN, on_readable, NULL, &g_watch), 0);
	sem_post(&g_sem);
}

static void test_fd_watch(void **state)
{
	(void)state;
	assert_int_equal(pipe(g_pipe), 0);
	run_on(1, add_watch, NULL);
	assert_non_null(g_watch);
	wait_asleep(1); /* the fd must wake it */
	assert_int_equal(write(g_pipe[1], "hello", 5), 5);
	wait_sem();
	assert_memory_equal(g_got, "hello", 5);
	close(g_pipe[0]);
	close(g_pipe[1]);
}

/* --- io channels ----------------------------------------------------------------------- */

static int g_device;
static _Atomic int g_creates, g_destroys;

struct chan_ctx {
	uint32_t reactor;
	uint64_t counter;
};

static int chan_create(void *dev, void *ctx)
{
	struct chan_ctx *c = ctx;

	assert_ptr_equal(dev, &g_device);
	c->reactor = mimo_reactor_index(mimo_reactor_current());
	atomic_fetch_add(&g_creates, 1);
	return 0;
}

static void chan_destroy(void *dev, void *ctx)
{
	(void)dev;
	(void)ctx;
	atomic_fetch_add(&g_destroys, 1);
}

static struct mimo_io_channel *g_ch[2];

static void get_channel(void *arg)
{
	uint32_t idx = (uint32_t)(intptr_t)arg;
	struct mimo_io_channel *again;

	g_ch[idx] = mimo_get_io_channel(&g_device);
	again = mimo_get_io_channel(&g_device); /* same channel, one more reference */
	assert_ptr_equal(again, g_ch[idx]);
	mimo_put_io_channel(again);
	((struct chan_ctx *)mimo_io_channel_get_ctx(g_ch[idx]))->counter = 10 + idx;
	sem_post(&g_sem);
}

static int sum_channel(struct mimo_io_channel *ch, void *arg)
{
	struct chan_ctx *c = mimo_io_channel_get_ctx(ch);

	assert_int_equal(c->reactor, mimo_reactor_index(mimo_reactor_current()));
	*(uint64_t *)arg += c->counter;
	return 0;
}

static uint64_t g_sum;

static void sum_done(void *arg, int status)
{
	(void)arg;
	assert_int_equal(status, 0);
	sem_post(&g_sem);
}

static void start_sum(void *arg)
{
	(void)arg;
	assert_int_equal(mimo_for_each_channel(&g_device, sum_channel, &g_sum, sum_done), 0);
}

static void put_channel(void *arg)
{
	uint32_t idx = (uint32_t)(intptr_t)arg;

	mimo_put_io_channel(g_ch[idx]);
	sem_post(&g_sem);
}

static void unregistered(void *arg)
{
	(void)arg;
	sem_post(&g_sem);
}

static void unregister_device(void *arg)
{
	(void)arg;
	mimo_io_device_unregister(&g_device, unregistered, NULL);
}

static void test_io_channels(void **state)
{
	(void)state;
	mimo_io_device_register(&g_device, chan_create, chan_destroy, sizeof(struct chan_ctx),
				"test");
	run_on(0, get_channel, (void *)0);
	run_on(1, get_channel, (void *)1);
	assert_int_equal(atomic_load(&g_creates), 2);
	assert_int_equal(atomic_load(&g_destroys), 0);
	run_on(0, start_sum, NULL);
	assert_int_equal(g_sum, 10 + 11);
	/* Unregistering waits for the channels to go. */
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), unregister_device, NULL), 0);
	run_on(0, put_channel, (void *)0);
	run_on(1, put_channel, (void *)1);
	wait_sem(); /* unregistered */
	assert_int_equal(atomic_load(&g_destroys), 2);
}

static _Atomic int g_each_mask;

static void each_fn(void *arg)
{
	(void)arg;
	atomic_fetch_or(&g_each_mask, 1 << mimo_reactor_index(mimo_reactor_current()));
}

static void each_done(void *arg)
{
	(void)arg;
	assert_int_equal(mimo_reactor_index(mimo_reactor_current()), 1);
	sem_post(&g_sem);
}

static void start_each(void *arg)
{
	(void)arg;
	assert_int_equal(mimo_for_each_reactor(each_fn, NULL, each_done), 0);
}

static void test_for_each_reactor(void **state)
{
	(void)state;
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(1), start_each, NULL), 0);
	wait_sem();
	assert_int_equal(atomic_load(&g_each_mask), 3);
}

/* A channel still held when the reactors stop, whose destruction puts another channel (as a
 * bdev's channel holds its module's): stop must release both without a crash or a use after
 * free (ASan runs this). */
static int g_outer, g_inner;
static struct mimo_io_channel *g_held;

static int outer_create(void *dev, void *ctx)
{
	(void)dev;
	*(struct mimo_io_channel **)ctx = mimo_get_io_channel(&g_inner);
	return 0;
}

static void outer_destroy(void *dev, void *ctx)
{
	(void)dev;
	mimo_put_io_channel(*(struct mimo_io_channel **)ctx);
}

static void hold_nested(void *arg)
{
	(void)arg;
	g_held = mimo_get_io_channel(&g_outer);
	sem_post(&g_sem);
}

static void test_stop_with_channels_held(void **state)
{
	(void)state;
	mimo_io_device_register(&g_inner, NULL, NULL, 8, "inner");
	mimo_io_device_register(&g_outer, outer_create, outer_destroy,
				sizeof(struct mimo_io_channel *), "outer");
	run_on(0, hold_nested, NULL);
	assert_non_null(g_held);
	/* The group teardown stops the reactors with g_held still held. */
}

/* --- posting between reactors whose rings are full --------------------------------------- */

#define PINGS 5000
static _Atomic int g_pongs, g_pings_seen;

static void pong(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&g_pongs, 1) + 1 == PINGS)
		sem_post(&g_sem);
}

static void ping(void *arg)
{
	(void)arg;
	atomic_fetch_add(&g_pings_seen, 1);
	assert_int_equal(mimo_reactor_post(mimo_reactor_get(0), pong, NULL), 0);
}

static void send_pings(void *arg)
{
	(void)arg;
	/* Far more than the 16-message rings hold, in both directions at once: a sender that
	 * spun on a full ring would never drain its own, and neither reactor would move. */
	for (int i = 0; i < PINGS; i++)
		assert_int_equal(mimo_reactor_post(mimo_reactor_get(1), ping, NULL), 0);
}

static void test_post_between_full_rings(void **state)
{
	(void)state;
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), send_pings, NULL), 0);
	wait_sem();
	assert_int_equal(atomic_load(&g_pings_seen), PINGS);
	assert_int_equal(atomic_load(&g_pongs), PINGS);
}

static int setup_small_rings(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	o.msg_ring_size = 16;
	return mimo_reactors_start(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpumask),
		cmocka_unit_test(test_messages_in_order),
		cmocka_unit_test(test_wakes_from_sleep),
		cmocka_unit_test(test_pollers_and_timers),
		cmocka_unit_test(test_late_pollers_run_last),
		cmocka_unit_test(test_poller_introspection),
		cmocka_unit_test(test_fd_watch),
		cmocka_unit_test(test_io_channels),
		cmocka_unit_test(test_for_each_reactor),
		cmocka_unit_test(test_stop_with_channels_held),
	};
	const struct CMUnitTest small_rings[] = {
		cmocka_unit_test(test_post_between_full_rings),
	};
	int failed = cmocka_run_group_tests(tests, setup, teardown);

	return failed + cmocka_run_group_tests(small_rings, setup_small_rings, teardown);
}
