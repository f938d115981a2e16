/*
 * The packed-ring walker (lib/vhost/vring_packed.c) over a "guest memory" buffer of two
 * regions: buffers taken across the ring's end with both wrap counters, direct chains and
 * indirect tables, completions out of order, the driver's event structure deciding calls,
 * the device's asking for kicks, the vhost-user ring base, and the ways a driver can break a
 * buffer (given back empty) or the ring (the queue stops).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memory.h"
#include "vring_packed.h"

#define QSIZE	5 /* packed rings need not be powers of two */
#define R0_GPA	0x10000ull
#define R0_SIZE 0x10000ull
#define R1_GPA	0x20000ull
#define R1_SIZE 0x10000ull
#define AVAIL	VRING_PACKED_DESC_F_AVAIL
#define USED	VRING_PACKED_DESC_F_USED

static uint8_t g_r0[R0_SIZE] __attribute__((aligned(4096)));
static uint8_t g_r1[R1_SIZE] __attribute__((aligned(4096)));
static struct vhost_mem *g_mem;
static struct vring_packed g_vr;
/* The driver's side: where it puts the next descriptor, and in which lap. */
static uint16_t g_pos;
static bool g_wrap;

static int setup(void **state)
{
	struct vhost_user_memory t = { .nregions = 2 };
	uint8_t *bufs[2] = { g_r0, g_r1 };

	(void)state;
	memset(g_r0, 0, sizeof(g_r0));
	memset(g_r1, 0, sizeof(g_r1));
	t.regions[0] = (struct vhost_user_region){ R0_GPA, R0_SIZE, 0x7000000, 0 };
	t.regions[1] = (struct vhost_user_region){ R1_GPA, R1_SIZE, 0x8000000, 0 };
	assert_int_equal(vhost_mem_from_buffers(&t, bufs, &g_mem), 0);
	memset(&g_vr, 0, sizeof(g_vr));
	g_vr.size = QSIZE;
	g_vr.desc = (struct vring_packed_desc *)g_r0;
	g_vr.driver = (struct vring_packed_event *)(g_r0 + 0x1000);
	g_vr.device = (struct vring_packed_event *)(g_r0 + 0x1004);
	g_vr.indirect = true;
	assert_int_equal(vring_packed_start(&g_vr, 1u << 15), 0);
	g_pos = 0;
	g_wrap = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vhost_mem_unmap(g_mem);
	return 0;
}

/* The driver makes n descriptors available as one buffer (flags without AVAIL/USED). */
static uint16_t avail(uint16_t n, const struct vring_packed_desc *d)
{
	uint16_t head = g_pos, head_flags = 0;

	for (uint16_t i = 0; i < n; i++) {
		uint16_t f = d[i].flags | (g_wrap ? AVAIL : USED);

		g_vr.desc[g_pos] = d[i];
		g_vr.desc[g_pos].flags = i == 0 ? 0 : f;
		if (i == 0)
			head_flags = f;
		if (++g_pos == QSIZE) {
			g_pos = 0;
			g_wrap = !g_wrap;
		}
	}
	g_vr.desc[head].flags = head_flags;
	return head;
}

static void test_chains_across_laps(void **state)
{
	struct vring_packed_desc three[3] = {
		{ R0_GPA + 0x3000, 16, 7, VRING_DESC_F_NEXT },
		{ R1_GPA + 0x100, 4096, 7, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE },
		{ R0_GPA + 0x4000, 1, 4, VRING_DESC_F_WRITE }, /* the id is the last one's */
	};
	struct vring_packed_buf b;
	struct iovec iov[8];
	struct vring_chain ch;
	const char *why;
	bool lap;

	(void)state;
	for (int round = 0; round < 7; round++) {
		assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_EMPTY);
		avail(3, three);
		assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
		assert_int_equal(b.ndescs, 3);
		assert_int_equal(b.id, 4);
		assert_int_equal(g_vr.last_avail, g_pos);
		assert_int_equal(g_vr.avail_wrap, g_wrap);
		assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), 0);
		assert_int_equal(ch.iovcnt, 3);
		assert_int_equal(ch.out_cnt, 1);
		assert_int_equal(ch.out_len, 16);
		assert_int_equal(ch.in_len, 4097);
		assert_ptr_equal(iov[1].iov_base, g_r1 + 0x100);
		lap = g_vr.used_wrap;
		vring_packed_push_used(&g_vr, b.id, b.ndescs, 4097);
		/* Used in the slot of the buffer's first descriptor, in the device's lap. */
		assert_int_equal(g_vr.desc[b.pos].id, 4);
		assert_int_equal(g_vr.desc[b.pos].len, 4097);
		assert_int_equal(g_vr.desc[b.pos].flags & (AVAIL | USED), lap ? AVAIL | USED : 0);
		assert_int_equal(g_vr.used_pos, g_vr.last_avail);
	}
	/* 21 descriptors on a ring of 5: four laps and one. */
	assert_int_equal(vring_packed_base(&g_vr), (1u | 1u << 15) * 0x10001u);
}

static void test_out_of_order(void **state)
{
	struct vring_packed_desc one = { R0_GPA + 0x3000, 16, 0, 0 };
	struct vring_packed_desc two[2] = { { R0_GPA + 0x3000, 16, 1, VRING_DESC_F_NEXT },
					    { R0_GPA + 0x4000, 1, 1, VRING_DESC_F_WRITE } };
	struct vring_packed_buf a, b;
	const char *why;

	(void)state;
	avail(2, two);
	avail(1, &one);
	assert_int_equal(vring_packed_pop(&g_vr, &a, &why), VRING_GOT);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
	assert_int_equal(a.id, 1);
	assert_int_equal(b.id, 0);
	/* The second completes first: it goes in slot 0, the first in slot 1; the device's
	 * position ends where the driver's is. */
	vring_packed_push_used(&g_vr, b.id, b.ndescs, 0);
	vring_packed_push_used(&g_vr, a.id, a.ndescs, 1);
	assert_int_equal(g_vr.desc[0].id, 0);
	assert_int_equal(g_vr.desc[1].id, 1);
	assert_int_equal(g_vr.desc[1].flags & VRING_DESC_F_WRITE, VRING_DESC_F_WRITE);
	assert_int_equal(g_vr.used_pos, 3);
}

static void test_indirect(void **state)
{
	struct vring_packed_desc *t = (struct vring_packed_desc *)(g_r1 + 0x2000);
	struct vring_packed_desc ind = { R1_GPA + 0x2000, 3 * 16, 2, VRING_DESC_F_INDIRECT };
	struct vring_packed_buf b;
	struct iovec iov[8];
	struct vring_chain ch;
	const char *why;

	(void)state;
	/* In a table only WRITE counts (NEXT is ignored). */
	t[0] = (struct vring_packed_desc){ R0_GPA + 0x3000, 16, 0, VRING_DESC_F_NEXT };
	t[1] = (struct vring_packed_desc){ R0_GPA + 0x5000, 512, 0, VRING_DESC_F_WRITE };
	t[2] = (struct vring_packed_desc){ R0_GPA + 0x4000, 1, 0, VRING_DESC_F_WRITE };
	avail(1, &ind);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
	assert_int_equal(b.ndescs, 1);
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), 0);
	assert_int_equal(ch.iovcnt, 3);
	assert_int_equal(ch.in_len, 513);
	/* Not negotiated; NEXT with it; lengths; outside memory; nested. */
	g_vr.indirect = false;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EINVAL);
	g_vr.indirect = true;
	g_vr.desc[0].flags |= VRING_DESC_F_NEXT;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EINVAL);
	g_vr.desc[0].flags &= (uint16_t)~VRING_DESC_F_NEXT;
	g_vr.desc[0].len = 40;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EINVAL);
	g_vr.desc[0].len = 0;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EINVAL);
	g_vr.desc[0].len = 48;
	g_vr.desc[0].addr = R1_GPA + R1_SIZE - 32;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EFAULT);
	g_vr.desc[0].addr = R1_GPA + 0x2000;
	t[1].flags = VRING_DESC_F_INDIRECT;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EINVAL);
	/* Readable after writable. */
	t[1].flags = 0;
	t[0].flags = VRING_DESC_F_WRITE;
	assert_int_equal(vring_packed_walk(&g_vr, g_mem, &b, iov, 8, &ch, &why), -EINVAL);
}

static void test_broken_rings(void **state)
{
	struct vring_packed_desc d[6];
	struct vring_packed_buf b;
	const char *why;

	(void)state;
	/* A chain as long as the ring, and longer: the walk never goes round twice. */
	for (int i = 0; i < 6; i++)
		d[i] = (struct vring_packed_desc){ R0_GPA + 0x3000, 16, 0, VRING_DESC_F_NEXT };
	avail(QSIZE, d);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_BROKEN);
	assert_non_null(why);
	/* An id beyond the ring. */
	teardown(NULL);
	setup(NULL);
	d[0] = (struct vring_packed_desc){ R0_GPA + 0x3000, 16, QSIZE, 0 };
	avail(1, d);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_BROKEN);
	/* A chain's second descriptor not made available. */
	teardown(NULL);
	setup(NULL);
	d[0] = (struct vring_packed_desc){ R0_GPA + 0x3000, 16, 1, VRING_DESC_F_NEXT };
	d[1] = (struct vring_packed_desc){ R0_GPA + 0x3000, 16, 1, 0 };
	avail(2, d);
	g_vr.desc[1].flags = 0;
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_BROKEN);
	/* A stale position: its descriptor is used in the current lap. */
	teardown(NULL);
	setup(NULL);
	d[0] = (struct vring_packed_desc){ R0_GPA + 0x3000, 16, 1, 0 };
	avail(1, d);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
	vring_packed_push_used(&g_vr, b.id, b.ndescs, 0);
	assert_int_equal(vring_packed_start(&g_vr, 1u << 15), 0);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_BROKEN);
	/* A base beyond the ring. */
	assert_int_equal(vring_packed_start(&g_vr, QSIZE), -EINVAL);
	teardown(NULL);
}

static void test_events(void **state)
{
	struct vring_packed_desc one = { R0_GPA + 0x3000, 16, 0, 0 };
	struct vring_packed_buf b;
	const char *why;

	(void)state;
	/* Without EVENT_IDX: the device asks for every kick; calls unless DISABLE. */
	assert_int_equal(g_vr.device->flags, VRING_PACKED_EVENT_ENABLE);
	assert_false(vring_packed_arm(&g_vr));
	avail(1, &one);
	assert_true(vring_packed_arm(&g_vr));
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
	vring_packed_push_used(&g_vr, b.id, b.ndescs, 0);
	assert_true(vring_packed_publish(&g_vr));
	g_vr.driver->flags = VRING_PACKED_EVENT_DISABLE;
	assert_false(vring_packed_publish(&g_vr));
	/* DESC is EVENT_IDX's: without it, a call. */
	g_vr.driver->flags = VRING_PACKED_EVENT_DESC;
	assert_true(vring_packed_publish(&g_vr));

	/* With EVENT_IDX: the device names its next position, wrap counter in bit 15. */
	g_vr.event_idx = true;
	assert_int_equal(vring_packed_start(&g_vr, 4 | 1u << 15), 0);
	g_pos = 4;
	g_wrap = true;
	assert_int_equal(g_vr.device->flags, VRING_PACKED_EVENT_DESC);
	assert_false(vring_packed_arm(&g_vr));
	assert_int_equal(g_vr.device->off_wrap, 4 | 1u << 15);
	/* The driver wants a call once position 1 of the next lap is used: buffers used at 4
	 * (first publish: always), 0 (not yet), 1 (now). */
	g_vr.driver->off_wrap = 1;
	for (int i = 0; i < 3; i++) {
		avail(1, &one);
		assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
		vring_packed_push_used(&g_vr, b.id, b.ndescs, 0);
		assert_int_equal(vring_packed_publish(&g_vr), i != 1);
	}
	assert_false(vring_packed_arm(&g_vr));
	assert_int_equal(g_vr.device->off_wrap, 2);
	/* Two used in one publish, the named one among them (2 then 3, event at 2). */
	g_vr.driver->off_wrap = 2;
	for (int i = 0; i < 2; i++) {
		avail(1, &one);
		assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
		vring_packed_push_used(&g_vr, b.id, b.ndescs, 0);
	}
	assert_true(vring_packed_publish(&g_vr));
	/* An event behind us: no call. */
	avail(1, &one);
	assert_int_equal(vring_packed_pop(&g_vr, &b, &why), VRING_GOT);
	vring_packed_push_used(&g_vr, b.id, b.ndescs, 0);
	assert_false(vring_packed_publish(&g_vr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chains_across_laps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup(test_broken_rings, setup),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
