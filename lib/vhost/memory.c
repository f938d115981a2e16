/* Mapping the front-end's memory regions and translating addresses into them. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory.h"

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Regions must be non-empty, must not wrap and must not overlap one another. */
static int check_table(const struct vhost_user_memory *t, char *why, size_t why_len)
{
	if (t->nregions == 0 || t->nregions > VHOST_USER_MAX_REGIONS) {
		snprintf(why, why_len, "%u memory regions (1 to %u)", t->nregions,
			 VHOST_USER_MAX_REGIONS);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < t->nregions; i++) {
		const struct vhost_user_region *r = &t->regions[i];

		if (r->memory_size == 0 ||
		    r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
		    r->userspace_addr + r->memory_size < r->userspace_addr ||
		    r->mmap_offset + r->memory_size < r->mmap_offset ||
		    r->memory_size > (uint64_t)SIZE_MAX / 2) {
			snprintf(why, why_len, "memory region %u is empty or wraps", i);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			const struct vhost_user_region *o = &t->regions[j];

			if (overlaps(r->guest_phys_addr, r->memory_size, o->guest_phys_addr,
				     o->memory_size) ||
			    overlaps(r->userspace_addr, r->memory_size, o->userspace_addr,
				     o->memory_size)) {
				snprintf(why, why_len, "memory regions %u and %u overlap", j, i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static void fill(struct vhost_mem *m, const struct vhost_user_memory *t)
{
	m->nregions = t->nregions;
	for (uint32_t i = 0; i < t->nregions; i++) {
		m->regions[i].gpa = t->regions[i].guest_phys_addr;
		m->regions[i].size = t->regions[i].memory_size;
		m->regions[i].uva = t->regions[i].userspace_addr;
	}
}

void vhost_mem_unmap(struct vhost_mem *mem)
{
	if (mem == NULL)
		return;
	for (uint32_t i = 0; i < mem->nregions; i++)
		if (mem->regions[i].map != NULL)
			munmap(mem->regions[i].map, mem->regions[i].map_len);
	free(mem);
}

int vhost_mem_map(const struct vhost_user_memory *table, const int *fds, struct vhost_mem **out,
		  char *why, size_t why_len)
{
	long page = sysconf(_SC_PAGESIZE);
	struct vhost_mem *m;
	int rc = check_table(table, why, why_len);

	if (rc != 0)
		return rc;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	fill(m, table);
	for (uint32_t i = 0; i < table->nregions; i++) {
		const struct vhost_user_region *r = &table->regions[i];
		struct vhost_mem_region *mr = &m->regions[i];
		struct stat st;
		uint64_t align = (uint64_t)page, start, skip;
		int seals;
		void *p;

		if (fstat(fds[i], &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
			snprintf(why, why_len, "memory region %u: the descriptor is not a file", i);
			rc = -EINVAL;
			goto fail;
		}
		/* hugetlbfs files map in units of their page size. */
		if (st.st_blksize > 0 &&
		    ((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)) == 0 &&
		    (uint64_t)st.st_blksize > align)
			align = (uint64_t)st.st_blksize;
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->mmap_offset + r->memory_size) {
			snprintf(why, why_len,
				 "memory region %u: the file (%lld bytes) ends before the region",
				 i, (long long)st.st_size);
			rc = -EINVAL;
			goto fail;
		}
		seals = fcntl(fds[i], F_GET_SEALS);
		if (seals >= 0 && !(seals & F_SEAL_SHRINK)) {
			snprintf(why, why_len,
				 "memory region %u: a memfd that can shrink (seal it with "
				 "F_SEAL_SHRINK, as QEMU's memory-backend-memfd does)",
				 i);
			rc = -EPERM;
			goto fail;
		}
		start = r->mmap_offset & ~(align - 1);
		skip = r->mmap_offset - start;
		mr->map_len = (size_t)(skip + r->memory_size);
		p = mmap(NULL, mr->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i],
			 (off_t)start);
		if (p == MAP_FAILED) {
			rc = -errno;
			snprintf(why, why_len, "memory region %u: mmap: %s", i, strerror(errno));
			goto fail;
		}
		mr->map = p;
		mr->host = (uint8_t *)p + skip;
	}
	*out = m;
	return 0;
fail:
	vhost_mem_unmap(m);
	return rc;
}

int vhost_mem_from_buffers(const struct vhost_user_memory *table, uint8_t *const *bufs,
			   struct vhost_mem **out)
{
	char why[128];
	struct vhost_mem *m;
	int rc = check_table(table, why, sizeof(why));

	if (rc != 0)
		return rc;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	fill(m, table);
	for (uint32_t i = 0; i < table->nregions; i++)
		m->regions[i].host = bufs[i];
	*out = m;
	return 0;
}

uint8_t *vhost_uva_to_host(const struct vhost_mem *mem, uint64_t uva, uint64_t len)
{
	for (uint32_t i = 0; i < mem->nregions; i++) {
		const struct vhost_mem_region *r = &mem->regions[i];
		uint64_t off = uva - r->uva;

		if (uva >= r->uva && off < r->size && len <= r->size - off)
			return r->host + off;
	}
	return NULL;
}

int vhost_mem_add_range(const struct vhost_mem *mem, uint64_t gpa, uint32_t len, struct iovec *iov,
			uint16_t max, uint16_t *cnt)
{
	while (len > 0) {
		uint64_t got;
		uint8_t *p = vhost_gpa_to_host(mem, gpa, len, &got);

		if (p == NULL)
			return -EFAULT;
		if (*cnt >= max)
			return -E2BIG;
		iov[*cnt].iov_base = p;
		iov[*cnt].iov_len = (size_t)got;
		(*cnt)++;
		gpa += got;
		len -= (uint32_t)got;
	}
	return 0;
}
