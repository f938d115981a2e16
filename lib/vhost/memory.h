/*
 * The front-end's memory as this process sees it: the regions of a SET_MEM_TABLE, each
 * mapped from the file descriptor that came with it, and the translations the rings need -
 * guest physical addresses (descriptors) and the front-end's own addresses (ring locations)
 * to pointers here, always with the length that stays inside one region.
 */
#ifndef MIMO_VHOST_MEMORY_H
#define MIMO_VHOST_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost_user.h"

struct vhost_mem_region {
	uint64_t gpa; /* guest physical address of the first byte */
	uint64_t size;
	uint64_t uva;  /* the front-end's address of the first byte */
	uint8_t *host; /* ours */
	void *map;     /* what mmap returned (page-aligned, covers host..host+size) */
	size_t map_len;
};

struct vhost_mem {
	uint32_t nregions;
	struct vhost_mem_region regions[VHOST_USER_MAX_REGIONS];
};

/*
 * Map a memory table: one fd per region, in order (the caller keeps ownership of the fds;
 * they may be closed once this returns). Checks that regions are non-empty, do not wrap or
 * overlap in guest or front-end addresses, and that each file covers its region (a mapping
 * past a file's end would fault when touched). A memfd must be sealed against shrinking, so
 * that its owner cannot make our accesses fault later. Returns 0 with *out set, or a negative
 * errno with a reason in why.
 */
int vhost_mem_map(const struct vhost_user_memory *table, const int *fds, struct vhost_mem **out,
		  char *why, size_t why_len);
/* Build a table over memory this process already has (tests, fuzzing): no mapping. */
int vhost_mem_from_buffers(const struct vhost_user_memory *table, uint8_t *const *bufs,
			   struct vhost_mem **out);
void vhost_mem_unmap(struct vhost_mem *mem);

/* A pointer to guest physical address gpa, and in *len how many bytes from there lie in the
 * same region (capped at want); NULL if gpa is in no region. */
static inline uint8_t *vhost_gpa_to_host(const struct vhost_mem *mem, uint64_t gpa, uint64_t want,
					 uint64_t *len)
{
	for (uint32_t i = 0; i < mem->nregions; i++) {
		const struct vhost_mem_region *r = &mem->regions[i];
		uint64_t off = gpa - r->gpa;

		if (gpa >= r->gpa && off < r->size) {
			uint64_t left = r->size - off;

			*len = want < left ? want : left;
			return r->host + off;
		}
	}
	return NULL;
}

/* Append [gpa, gpa+len) to iov (*cnt entries used of max), split where it crosses regions:
 * 0, -EFAULT (outside guest memory) or -E2BIG (more than max entries). Both ring layouts
 * walk their descriptors into iovecs with it. */
int vhost_mem_add_range(const struct vhost_mem *mem, uint64_t gpa, uint32_t len, struct iovec *iov,
			uint16_t max, uint16_t *cnt);

/*
 * A full barrier between our stores and our next loads, against the driver in another
 * process (the Dekker-style check of notification suppression needs store-load order, in
 * both ring layouts). Written in assembly: ThreadSanitizer builds refuse
 * atomic_thread_fence, and the other side is not a thread of ours anyway.
 */
static inline void vhost_full_barrier(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__("mfence" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("dmb ish" ::: "memory");
#else
#error "a full memory barrier for this architecture"
#endif
}

/* The front-end address uva as a pointer, if [uva, uva+len) lies inside one region. */
uint8_t *vhost_uva_to_host(const struct vhost_mem *mem, uint64_t uva, uint64_t len);

#endif
