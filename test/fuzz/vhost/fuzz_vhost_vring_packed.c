/*
 * A guest's packed ring as bytes: the input is the guest memory (two regions with the hole
 * between them that a PC's memory has), with the descriptor ring and the two event structures
 * in it; its first bytes choose the ring's size, the features and the ring base. Every
 * available buffer is taken and walked, as a queue does, and given back - in the order taken
 * or the reverse, since the device completes in any order; whatever the guest wrote, nothing
 * may be touched outside the memory nor loop forever.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "memory.h"
#include "vring_packed.h"

#define R0_SIZE	     0x4000u
#define R1_SIZE	     0x4000u
#define R0_GPA	     0x0u
#define R1_GPA	     0x8000u
#define HDR	     4u
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[VHOST_MAX_IOVS];
	static struct vring_packed_buf taken[256];
	uint8_t *r0, *r1;
	struct vhost_user_memory t = { .nregions = 2 };
	struct vhost_mem *mem;
	struct vring_packed vr;
	uint8_t *bufs[2];
	uint32_t n = 0;

	if (size < HDR)
		return 0;
	/* Exact-size buffers: ASan sees any access past a region. */
	r0 = aligned_alloc(16, R0_SIZE);
	r1 = aligned_alloc(16, R1_SIZE);
	memset(r0, 0, R0_SIZE);
	memset(r1, 0, R1_SIZE);
	memcpy(r0, data + HDR, MIN_SZ(size - HDR, R0_SIZE));
	if (size - HDR > R0_SIZE)
		memcpy(r1, data + HDR + R0_SIZE, MIN_SZ(size - HDR - R0_SIZE, R1_SIZE));
	t.regions[0] = (struct vhost_user_region){ R0_GPA, R0_SIZE, 0x100000, 0 };
	t.regions[1] = (struct vhost_user_region){ R1_GPA, R1_SIZE, 0x200000, 0 };
	bufs[0] = r0;
	bufs[1] = r1;
	if (vhost_mem_from_buffers(&t, bufs, &mem) != 0)
		goto out;
	memset(&vr, 0, sizeof(vr));
	/* Packed rings need not be powers of two: 1 to 256 descriptors. */
	vr.size = (uint16_t)(data[0] + 1);
	vr.indirect = data[1] & 1;
	vr.event_idx = data[1] & 2;
	vr.desc = (struct vring_packed_desc *)r0; /* 16 * 256 = 0x1000 */
	vr.driver = (struct vring_packed_event *)(r0 + 0x1000);
	vr.device = (struct vring_packed_event *)(r0 + 0x1004);
	if (vring_packed_start(&vr, (uint32_t)(data[2] | data[3] << 8)) != 0)
		goto unmap;
	for (;;) {
		struct vring_chain ch;
		const char *why;
		enum vring_pop p = vring_packed_pop(&vr, &taken[n], &why);

		if (p != VRING_GOT)
			break;
		if (taken[n].id >= vr.size || taken[n].ndescs == 0 || taken[n].ndescs > vr.size)
			__builtin_trap();
		if (vring_packed_walk(&vr, mem, &taken[n], iov, VHOST_MAX_IOVS, &ch, &why) == 0) {
			/* Touch every byte the buffer gave: they must all be guest memory. */
			for (uint16_t i = 0; i < ch.iovcnt; i++)
				if (iov[i].iov_len > 0)
					((volatile uint8_t *)iov[i].iov_base)[iov[i].iov_len - 1] ^=
						0;
		}
		/* Nothing is made available again here, so at most one lap of the ring can be
		 * taken: a descriptor is available in one lap only. */
		if (++n > vr.size)
			__builtin_trap();
	}
	/* Completed in reverse order: used slots are written over the ones taken. */
	for (uint32_t i = n; i-- > 0;)
		vring_packed_push_used(&vr, taken[i].id, taken[i].ndescs, 0);
	(void)vring_packed_publish(&vr);
	(void)vring_packed_arm(&vr);
	(void)vring_packed_base(&vr);
unmap:
	vhost_mem_unmap(mem);
out:
	free(r0);
	free(r1);
	return 0;
}
