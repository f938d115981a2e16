/*
 * Inflight tracking's packed layout (lib/vhost/inflight_packed.c) over a ring and a region in
 * plain memory: buffers taken and given back out of order, and a back-end "killed" at each
 * step of taking and giving back - recovery must roll the part back or forward as the ring
 * shows, list what is still in flight oldest first, and place the ring after it; a part
 * someone else wrote is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inflight_packed.h"

#define QSIZE 8
#define AVAIL VRING_PACKED_DESC_F_AVAIL
#define USED  VRING_PACKED_DESC_F_USED
#define WRAP  (1u << VRING_PACKED_WRAP_BIT)

static struct vring_packed_desc g_ring[QSIZE];
static union {
	struct vhost_inflight_pqueue q;
	uint8_t bytes[4096];
} g_region;
static struct vhost_inflight_pqueue *const g_r = &g_region.q;
static uint16_t g_pos, g_used;
static bool g_wrap, g_used_wrap;
static uint64_t g_counter;

static int setup(void **state)
{
	(void)state;
	memset(g_ring, 0, sizeof(g_ring));
	memset(&g_region, 0, sizeof(g_region));
	vhost_inflight_packed_reset(g_r, QSIZE, WRAP); /* position 0, wrap counter 1 */
	g_pos = g_used = 0;
	g_wrap = g_used_wrap = true;
	g_counter = 0;
	return 0;
}

/* The driver makes a buffer of n descriptors available (id in each); the device takes it
 * and notes it. Returns its head entry. */
static uint16_t take(uint16_t id, uint16_t n)
{
	uint16_t pos = g_pos;
	int e;

	for (uint16_t i = 0; i < n; i++) {
		g_ring[g_pos] =
			(struct vring_packed_desc){ .addr = 0x1000u * id + i,
						    .len = 512,
						    .id = id,
						    .flags = (uint16_t)(g_wrap ? AVAIL : USED) };
		if (++g_pos == QSIZE) {
			g_pos = 0;
			g_wrap = !g_wrap;
		}
	}
	e = vhost_inflight_packed_take(g_r, QSIZE, g_ring, pos, n, g_counter++);
	assert_true(e >= 0 && e < QSIZE);
	return (uint16_t)e;
}

/* The device writes the used descriptor for id (n descriptors) at its position. */
static void write_used(uint16_t id, uint16_t n)
{
	g_ring[g_used].id = id;
	g_ring[g_used].flags = (uint16_t)(g_used_wrap ? AVAIL | USED : 0);
	g_used = (uint16_t)(g_used + n);
	if (g_used >= QSIZE) {
		g_used -= QSIZE;
		g_used_wrap = !g_used_wrap;
	}
}

static void give_back(uint16_t e, uint16_t id, uint16_t n)
{
	vhost_inflight_packed_give_back(g_r, QSIZE, e, n);
	write_used(id, n);
	vhost_inflight_packed_commit(g_r, e);
}

static int recover(uint16_t *heads, struct vhost_inflight_packed_pos *pos)
{
	return vhost_inflight_packed_recover(g_r, QSIZE, g_ring, heads, pos);
}

static void test_out_of_order(void **state)
{
	struct vring_packed_desc d[QSIZE];
	struct vhost_inflight_packed_pos pos;
	uint16_t heads[QSIZE], id;
	uint16_t a = take(3, 2), b = take(5, 1), c = take(1, 3);

	(void)state;
	give_back(b, 5, 1);
	assert_int_equal(recover(heads, &pos), 2);
	assert_int_equal(heads[0], a);
	assert_int_equal(heads[1], c);
	assert_int_equal(pos.counter, 3);
	assert_int_equal(pos.used, 1 | WRAP);
	assert_int_equal(pos.avail, 6 | WRAP); /* after A, B and C */
	/* The copies: C's three descriptors in order, its id. */
	assert_int_equal(vhost_inflight_packed_chain(g_r, QSIZE, c, d, &id), 3);
	assert_int_equal(id, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].addr, 0x1000u + i);
	/* Given back after recovery, the part is empty, the used position the ring's. */
	give_back(a, 3, 2);
	give_back(c, 1, 3);
	assert_int_equal(recover(heads, &pos), 0);
	assert_int_equal(pos.used, 6 | WRAP);
	assert_int_equal(pos.avail, 6 | WRAP);
}

static void test_killed_giving_back(void **state)
{
	struct vhost_inflight_packed_pos pos;
	uint16_t heads[QSIZE];
	uint16_t a = take(3, 2);

	(void)state;
	/* Killed before the used descriptor reached the ring: rolled back, still in flight. */
	vhost_inflight_packed_give_back(g_r, QSIZE, a, 2);
	assert_int_equal(recover(heads, &pos), 1);
	assert_int_equal(heads[0], a);
	assert_int_equal(pos.used, 0 | WRAP);
	assert_int_equal(pos.avail, 2 | WRAP);
	/* Killed after it, before the commit: rolled forward, nothing in flight. */
	vhost_inflight_packed_give_back(g_r, QSIZE, a, 2);
	write_used(3, 2);
	assert_int_equal(recover(heads, &pos), 0);
	assert_int_equal(pos.used, 2 | WRAP);
	assert_int_equal(pos.avail, 2 | WRAP);
}

static void test_killed_committing_across_the_end(void **state)
{
	struct vhost_inflight_packed_pos pos;
	uint16_t heads[QSIZE], e;

	(void)state;
	for (uint16_t i = 0; i < 3; i++)
		give_back(take(i, 2), i, 2); /* used position 6 */
	e = take(7, 3);			     /* positions 6, 7, 0 */
	vhost_inflight_packed_give_back(g_r, QSIZE, e, 3);
	write_used(7, 3);
	/* Killed after old_used_idx took the new position, before its wrap counter did. */
	g_r->desc[e].inflight = 0;
	g_r->old_free_head = g_r->free_head;
	g_r->old_used_idx = g_r->used_idx;
	assert_int_equal(recover(heads, &pos), 0);
	assert_int_equal(pos.used, 1); /* wrap counter 0 */
	assert_int_equal(pos.avail, 1);
}

static void test_killed_taking(void **state)
{
	struct vhost_inflight_packed_pos pos;
	uint16_t heads[QSIZE], old;
	uint16_t a = take(3, 2);

	(void)state;
	/* Killed before old_free_head moved: the buffer is not taken; the ring goes on at it. */
	old = g_r->old_free_head;
	take(4, 2);
	g_r->old_free_head = old;
	assert_int_equal(recover(heads, &pos), 1);
	assert_int_equal(heads[0], a);
	assert_int_equal(pos.avail, 2 | WRAP);
	/* Taken again, it goes in flight with the same entries. */
	assert_int_equal(vhost_inflight_packed_take(g_r, QSIZE, g_ring, 2, 2, pos.counter), old);
}

static void test_refused(void **state)
{
	struct vhost_inflight_packed_pos pos;
	uint16_t heads[QSIZE];
	uint16_t a;

	(void)state;
	g_r->desc_num = QSIZE - 1; /* made for another ring */
	assert_int_equal(recover(heads, &pos), -1);
	setup(NULL);
	g_r->desc[QSIZE - 1].next = 2; /* a free list that comes back on itself */
	assert_int_equal(recover(heads, &pos), -1);
	setup(NULL);
	a = take(3, 3);
	g_r->free_head = g_r->old_free_head = g_r->desc[a].next; /* a chain on the free list */
	assert_int_equal(recover(heads, &pos), -1);
	setup(NULL);
	a = take(3, 2);
	g_r->desc[a].num = QSIZE + 1; /* a chain longer than the ring */
	assert_int_equal(recover(heads, &pos), -1);
	setup(NULL);
	take(3, 5);
	a = take(4, 2);
	g_r->desc[a].num = 4; /* a chain running into the free list */
	assert_int_equal(recover(heads, &pos), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_out_of_order, setup),
		cmocka_unit_test_setup(test_killed_giving_back, setup),
		cmocka_unit_test_setup(test_killed_committing_across_the_end, setup),
		cmocka_unit_test_setup(test_killed_taking, setup),
		cmocka_unit_test_setup(test_refused, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
