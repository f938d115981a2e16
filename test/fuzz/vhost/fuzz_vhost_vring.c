/*
 * A guest's rings as bytes: the input is the guest memory (two regions with the hole between
 * them that a PC's memory has), with the descriptor table, the available and the used ring
 * in it. Every available head is taken and its chain walked, as a queue does, and completed;
 * whatever the guest wrote, nothing may be touched outside the memory nor loop forever.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "memory.h"
#include "vring.h"

#define R0_SIZE	     0x4000u
#define R1_SIZE	     0x4000u
#define R0_GPA	     0x0u
#define R1_GPA	     0x8000u
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[VHOST_MAX_IOVS];
	uint8_t *r0, *r1;
	struct vhost_user_memory t = { .nregions = 2 };
	struct vhost_mem *mem;
	struct vring vr;
	uint8_t *bufs[2];
	uint16_t head;
	uint32_t n = 0;

	if (size < 4)
		return 0;
	/* Exact-size buffers: ASan sees any access past a region. */
	r0 = aligned_alloc(16, R0_SIZE);
	r1 = aligned_alloc(16, R1_SIZE);
	memset(r0, 0, R0_SIZE);
	memset(r1, 0, R1_SIZE);
	memcpy(r0, data + 4, MIN_SZ(size - 4, R0_SIZE));
	if (size - 4 > R0_SIZE)
		memcpy(r1, data + 4 + R0_SIZE, MIN_SZ(size - 4 - R0_SIZE, R1_SIZE));
	t.regions[0] = (struct vhost_user_region){ R0_GPA, R0_SIZE, 0x100000, 0 };
	t.regions[1] = (struct vhost_user_region){ R1_GPA, R1_SIZE, 0x200000, 0 };
	bufs[0] = r0;
	bufs[1] = r1;
	if (vhost_mem_from_buffers(&t, bufs, &mem) != 0)
		goto out;
	memset(&vr, 0, sizeof(vr));
	vr.size = (uint16_t)(1u << (data[0] % 9)); /* 1 to 256 */
	vr.indirect = data[1] & 1;
	vr.event_idx = data[1] & 2;
	vr.last_avail = (uint16_t)(data[2] | data[3] << 8);
	vr.desc = (struct vring_desc *)r0;		/* 16 * 256 = 0x1000 */
	vr.avail = (struct vring_avail *)(r0 + 0x1000); /* up to 0x206 */
	vr.used = (struct vring_used *)(r0 + 0x2000);	/* up to 0x806 */
	vr.used_idx = vr.used->idx;
	for (;;) {
		struct vring_chain ch;
		const char *why;
		enum vring_pop p = vring_pop_head(&vr, &head);

		if (p != VRING_GOT)
			break;
		if (vring_walk(&vr, mem, head, iov, VHOST_MAX_IOVS, &ch, &why) == 0) {
			/* Touch every byte the chain gave: they must all be guest memory. */
			for (uint16_t i = 0; i < ch.iovcnt; i++)
				if (iov[i].iov_len > 0)
					((volatile uint8_t *)iov[i].iov_base)[iov[i].iov_len - 1] ^=
						0;
			vring_push_used(&vr, head, ch.in_len);
		} else {
			vring_push_used(&vr, head, 0);
		}
		/* The guest does not change the memory here, so the ring empties. */
		if (++n > vr.size)
			__builtin_trap();
	}
	(void)vring_publish(&vr);
	(void)vring_arm(&vr);
	vhost_mem_unmap(mem);
out:
	free(r0);
	free(r1);
	return 0;
}
