/*
 * The split-ring walker and the vhost-user message checks (lib/vhost/vring.c, msg.c) over a
 * "guest memory" buffer of two regions with a hole between them: chains direct and indirect,
 * descriptors split at region ends, and every way a driver can get a chain wrong.
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
#include "msg.h"
#include "vring.h"

#define QSIZE	 8
#define R0_GPA	 0x10000ull
#define R0_SIZE	 0x10000ull
#define R1_GPA	 0x20000ull /* R0 ends at 0x20000: contiguous in guest space, not here */
#define R1_SIZE	 0x10000ull
#define HOLE_GPA 0x40000ull

static uint8_t g_r0[R0_SIZE] __attribute__((aligned(4096)));
static uint8_t g_r1[R1_SIZE] __attribute__((aligned(4096)));
static struct vhost_mem *g_mem;
static struct vring g_vr;

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
	g_vr.desc = (struct vring_desc *)g_r0;
	g_vr.avail = (struct vring_avail *)(g_r0 + 0x1000);
	g_vr.used = (struct vring_used *)(g_r0 + 0x2000);
	g_vr.indirect = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vhost_mem_unmap(g_mem); /* no mappings: just the table */
	return 0;
}

static void desc(struct vring_desc *table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	table[i] = (struct vring_desc){ addr, len, flags, next };
}

static int walk(uint16_t head, struct iovec *iov, uint16_t max, struct vring_chain *ch)
{
	const char *why;

	return vring_walk(&g_vr, g_mem, head, iov, max, ch, &why);
}

static void test_direct_chain(void **state)
{
	struct iovec iov[8];
	struct vring_chain ch;

	(void)state;
	desc(g_vr.desc, 0, R0_GPA + 0x3000, 16, VRING_DESC_F_NEXT, 5);
	desc(g_vr.desc, 5, R1_GPA + 0x100, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(g_vr.desc, 2, R0_GPA + 0x4000, 1, VRING_DESC_F_WRITE, 0);
	assert_int_equal(walk(0, iov, 8, &ch), 0);
	assert_int_equal(ch.iovcnt, 3);
	assert_int_equal(ch.out_cnt, 1);
	assert_int_equal(ch.out_len, 16);
	assert_int_equal(ch.in_len, 4097);
	assert_ptr_equal(iov[0].iov_base, g_r0 + 0x3000);
	assert_ptr_equal(iov[1].iov_base, g_r1 + 0x100);
	assert_int_equal(iov[2].iov_len, 1);
}

static void test_split_at_region_end(void **state)
{
	struct iovec iov[8];
	struct vring_chain ch;

	(void)state;
	/* 0x1000 bytes ending 0x800 into region 1: two iovecs. */
	desc(g_vr.desc, 1, R1_GPA - 0x800, 0x1000, 0, 0);
	assert_int_equal(walk(1, iov, 8, &ch), 0);
	assert_int_equal(ch.iovcnt, 2);
	assert_ptr_equal(iov[0].iov_base, g_r0 + R0_SIZE - 0x800);
	assert_int_equal(iov[0].iov_len, 0x800);
	assert_ptr_equal(iov[1].iov_base, g_r1);
	assert_int_equal(iov[1].iov_len, 0x800);
	/* With room for only one iovec, the split does not fit. */
	assert_int_equal(walk(1, iov, 1, &ch), -E2BIG);
	/* Running into the hole past region 1. */
	desc(g_vr.desc, 1, R1_GPA + R1_SIZE - 16, 32, 0, 0);
	assert_int_equal(walk(1, iov, 8, &ch), -EFAULT);
}

static void test_indirect(void **state)
{
	struct vring_desc *t = (struct vring_desc *)(g_r1 + 0x2000);
	struct iovec iov[8];
	struct vring_chain ch;

	(void)state;
	desc(t, 0, R0_GPA + 0x3000, 16, VRING_DESC_F_NEXT, 1);
	desc(t, 1, R0_GPA + 0x5000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(t, 2, R0_GPA + 0x4000, 1, VRING_DESC_F_WRITE, 0);
	desc(g_vr.desc, 3, R1_GPA + 0x2000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(3, iov, 8, &ch), 0);
	assert_int_equal(ch.iovcnt, 3);
	assert_int_equal(ch.out_cnt, 1);
	assert_int_equal(ch.in_len, 513);
	/* Not negotiated. */
	g_vr.indirect = false;
	assert_int_equal(walk(3, iov, 8, &ch), -EINVAL);
	g_vr.indirect = true;
	/* INDIRECT with NEXT; a table of a length not a multiple of 16; empty; nested. */
	desc(g_vr.desc, 3, R1_GPA + 0x2000, 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 4);
	assert_int_equal(walk(3, iov, 8, &ch), -EINVAL);
	desc(g_vr.desc, 3, R1_GPA + 0x2000, 40, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(3, iov, 8, &ch), -EINVAL);
	desc(g_vr.desc, 3, R1_GPA + 0x2000, 0, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(3, iov, 8, &ch), -EINVAL);
	desc(t, 1, R1_GPA + 0x2000, 48, VRING_DESC_F_INDIRECT, 0);
	desc(g_vr.desc, 3, R1_GPA + 0x2000, 48, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(3, iov, 8, &ch), -EINVAL);
	/* A table across the region boundary is not contiguous here. */
	desc(g_vr.desc, 3, R1_GPA - 16, 48, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(3, iov, 8, &ch), -EFAULT);
	/* A cycle inside the table. */
	desc(t, 0, R0_GPA + 0x3000, 16, VRING_DESC_F_NEXT, 1);
	desc(t, 1, R0_GPA + 0x3000, 16, VRING_DESC_F_NEXT, 0);
	desc(g_vr.desc, 3, R1_GPA + 0x2000, 32, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(3, iov, 8, &ch), -ELOOP);
	/* next beyond the table. */
	desc(t, 1, R0_GPA + 0x3000, 16, VRING_DESC_F_NEXT, 7);
	assert_int_equal(walk(3, iov, 8, &ch), -EINVAL);
}

static void test_bad_chains(void **state)
{
	struct iovec iov[16];
	struct vring_chain ch;

	(void)state;
	/* Head out of range. */
	assert_int_equal(walk(QSIZE, iov, 16, &ch), -EINVAL);
	/* A cycle through the whole table. */
	for (uint16_t i = 0; i < QSIZE; i++)
		desc(g_vr.desc, i, R0_GPA + 0x3000, 8, VRING_DESC_F_NEXT,
		     (uint16_t)((i + 1) % QSIZE));
	assert_int_equal(walk(0, iov, 16, &ch), -ELOOP);
	/* next out of range. */
	desc(g_vr.desc, 0, R0_GPA + 0x3000, 8, VRING_DESC_F_NEXT, 100);
	assert_int_equal(walk(0, iov, 16, &ch), -EINVAL);
	/* Readable after writable. */
	desc(g_vr.desc, 0, R0_GPA + 0x3000, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc(g_vr.desc, 1, R0_GPA + 0x3000, 8, 0, 0);
	assert_int_equal(walk(0, iov, 16, &ch), -EINVAL);
	/* Outside guest memory; an address that wraps. */
	desc(g_vr.desc, 0, HOLE_GPA, 8, 0, 0);
	assert_int_equal(walk(0, iov, 16, &ch), -EFAULT);
	desc(g_vr.desc, 0, UINT64_MAX - 4, 8, 0, 0);
	assert_int_equal(walk(0, iov, 16, &ch), -EFAULT);
	/* A zero-length descriptor is no iovec. */
	desc(g_vr.desc, 0, R0_GPA + 0x3000, 0, VRING_DESC_F_NEXT, 1);
	desc(g_vr.desc, 1, R0_GPA + 0x3000, 1, VRING_DESC_F_WRITE, 0);
	assert_int_equal(walk(0, iov, 16, &ch), 0);
	assert_int_equal(ch.iovcnt, 1);
}

static void test_avail_and_used(void **state)
{
	uint16_t head;

	(void)state;
	g_vr.last_avail = 0;
	assert_int_equal(vring_pop_head(&g_vr, &head), VRING_EMPTY);
	g_vr.avail->ring[0] = 3;
	g_vr.avail->ring[1] = 9; /* beyond the ring */
	g_vr.avail->idx = 1;
	assert_int_equal(vring_pop_head(&g_vr, &head), VRING_GOT);
	assert_int_equal(head, 3);
	g_vr.avail->idx = 2;
	assert_int_equal(vring_pop_head(&g_vr, &head), VRING_BROKEN);
	/* An index more than a ring ahead. */
	g_vr.avail->idx = (uint16_t)(g_vr.last_avail + QSIZE + 1);
	assert_int_equal(vring_pop_head(&g_vr, &head), VRING_BROKEN);
	assert_int_equal(vring_avail_count(&g_vr), 0);
	/* Wrapping 16-bit indexes. */
	g_vr.last_avail = 0xffff;
	g_vr.avail->ring[0xffff & (QSIZE - 1)] = 2;
	g_vr.avail->idx = 0;
	assert_int_equal(vring_pop_head(&g_vr, &head), VRING_GOT);
	assert_int_equal(head, 2);
	assert_int_equal(g_vr.last_avail, 0);

	/* Used ring and notifications without EVENT_IDX: the NO_INTERRUPT flag. */
	g_vr.used_idx = 0;
	vring_push_used(&g_vr, 3, 513);
	assert_int_equal(g_vr.used->idx, 0); /* not yet published */
	assert_true(vring_publish(&g_vr));
	assert_int_equal(g_vr.used->idx, 1);
	assert_int_equal(g_vr.used->ring[0].id, 3);
	assert_int_equal(g_vr.used->ring[0].len, 513);
	g_vr.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vring_push_used(&g_vr, 4, 1);
	assert_false(vring_publish(&g_vr));

	/* EVENT_IDX: notify only when used_event falls in what was just published. */
	g_vr.event_idx = true;
	g_vr.signalled_valid = false;
	g_vr.avail->ring[QSIZE] = 10; /* used_event */
	vring_push_used(&g_vr, 5, 1);
	assert_true(vring_publish(&g_vr)); /* the first one always */
	vring_push_used(&g_vr, 6, 1);
	assert_false(vring_publish(&g_vr)); /* used idx 4: event 10 not passed */
	g_vr.avail->ring[QSIZE] = 4;
	vring_push_used(&g_vr, 7, 1);
	assert_true(vring_publish(&g_vr)); /* 4 < 5 */
	/* arm: avail_event is the next index wanted. */
	g_vr.last_avail = 7;
	g_vr.avail->idx = 7;
	assert_false(vring_arm(&g_vr));
	{
		uint16_t ev;

		memcpy(&ev, (uint8_t *)g_vr.used + 4 + 8 * QSIZE, sizeof(ev));
		assert_int_equal(ev, 7);
	}
	g_vr.avail->idx = 8;
	assert_true(vring_arm(&g_vr));
}

static void test_messages(void **state)
{
	struct vhost_user_hdr h = { VHOST_USER_GET_FEATURES, 1, 0 };
	uint8_t p[VHOST_USER_MAX_PAYLOAD] = { 0 };
	const char *why;
	uint32_t n;

	(void)state;
	assert_int_equal(vhost_msg_check(&h, p, 0, &why), 0);
	assert_int_equal(vhost_msg_check(&h, p, 1, &why), -EPROTO);
	h.flags = 2;
	assert_int_equal(vhost_msg_check_hdr(&h, &why), -EPROTO);
	h.flags = 1 | VHOST_USER_REPLY_MASK;
	assert_int_equal(vhost_msg_check_hdr(&h, &why), -EPROTO);
	h = (struct vhost_user_hdr){ VHOST_USER_GET_FEATURES, 1, VHOST_USER_MAX_PAYLOAD + 1 };
	assert_int_equal(vhost_msg_check_hdr(&h, &why), -EPROTO);
	/* Memory tables: size and descriptors follow the count. */
	n = 2;
	memcpy(p, &n, 4);
	h = (struct vhost_user_hdr){ VHOST_USER_SET_MEM_TABLE, 1, 8 + 2 * 32 };
	assert_int_equal(vhost_msg_check(&h, p, 2, &why), 0);
	assert_int_equal(vhost_msg_check(&h, p, 1, &why), -EPROTO);
	h.size = 8 + 32;
	assert_int_equal(vhost_msg_check(&h, p, 2, &why), -EPROTO);
	n = 9;
	memcpy(p, &n, 4);
	h.size = 8 + 9 * 32;
	assert_int_equal(vhost_msg_check(&h, p, 9, &why), -EPROTO);
	/* Vring descriptors: one, unless bit 8 says none. */
	memset(p, 0, 8);
	h = (struct vhost_user_hdr){ VHOST_USER_SET_VRING_KICK, 1, 8 };
	assert_int_equal(vhost_msg_check(&h, p, 1, &why), 0);
	assert_int_equal(vhost_msg_check(&h, p, 0, &why), -EPROTO);
	p[1] = 1;
	assert_int_equal(vhost_msg_check(&h, p, 0, &why), 0);
	/* Configuration space: 256 bytes at most. */
	h = (struct vhost_user_hdr){ VHOST_USER_GET_CONFIG, 1, 12 + 60 };
	memset(p, 0, 12);
	n = 60;
	memcpy(p + 4, &n, 4);
	assert_int_equal(vhost_msg_check(&h, p, 0, &why), 0);
	n = 0;
	memcpy(p + 4, &n, 4);
	n = 250;
	memcpy(p, &n, 4);
	h.size = 12;
	assert_int_equal(vhost_msg_check(&h, p, 0, &why), 0);
	n = 60;
	memcpy(p + 4, &n, 4);
	h.size = 72;
	assert_int_equal(vhost_msg_check(&h, p, 0, &why), -EPROTO);
	/* Requests not served pass the check (they are refused, not dropped). */
	h = (struct vhost_user_hdr){ 99, 1, 3 };
	assert_int_equal(vhost_msg_check(&h, p, 1, &why), 0);
	assert_true(vhost_msg_has_reply(VHOST_USER_GET_VRING_BASE));
	assert_false(vhost_msg_has_reply(VHOST_USER_SET_VRING_BASE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_at_region_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_and_used, setup, teardown),
		cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
