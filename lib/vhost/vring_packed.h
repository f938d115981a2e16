/*
 * Packed virtqueues (virtio 1.1 §2.7, VIRTIO_F_RING_PACKED), device side: one descriptor ring
 * the driver and the device share, each side with its own position and wrap counter; the
 * driver marks a descriptor available by setting its AVAIL flag to the driver's wrap counter
 * (and USED to the opposite), the device marks a buffer used by writing its id and length in
 * the next slot of its own position and setting AVAIL and USED both to the device's wrap
 * counter. Buffers complete in any order: the device's position advances by the number of
 * descriptors each completed buffer took. Notifications are governed by two small event
 * structures: the driver's (read here: whether to call) and the device's (written here:
 * whether the driver kicks).
 *
 * As in the split walker (vring.h): the ring is guest memory the guest writes whenever it
 * likes, so every descriptor is read once into a local copy and checked before it is used,
 * buffer ids index nothing until checked, and no chain or indirect table can make a walk
 * longer than its ring or table. Pure functions over mapped memory: unit-tested and fuzzed
 * without a socket.
 */
#ifndef MIMO_VHOST_VRING_PACKED_H
#define MIMO_VHOST_VRING_PACKED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory.h"
#include "vring.h"

#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED  (1u << 15)

/* The event suppression structures' flags (driver's and device's alike). */
#define VRING_PACKED_EVENT_ENABLE  0u
#define VRING_PACKED_EVENT_DISABLE 1u
#define VRING_PACKED_EVENT_DESC	   2u /* only with VIRTIO_RING_F_EVENT_IDX */

/* The wrap counter's place in an event's off_wrap, and in a vhost-user ring base. */
#define VRING_PACKED_WRAP_BIT 15

struct vring_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct vring_packed_event {
	uint16_t off_wrap;
	uint16_t flags;
};

struct vring_packed {
	uint16_t size; /* descriptors in the ring, at most 32768 */
	struct vring_packed_desc *desc;
	struct vring_packed_event *driver; /* the driver's event structure (driver area) */
	struct vring_packed_event *device; /* ours (device area) */
	uint16_t last_avail;		   /* next descriptor to look at for a new buffer */
	bool avail_wrap;
	uint16_t used_pos; /* next descriptor to write a used buffer into */
	bool used_wrap;
	uint16_t signalled; /* used_pos when the driver was last called (EVENT_IDX) */
	bool signalled_valid;
	bool event_idx;
	bool indirect;
};

/* Bytes the descriptor ring of n entries and each event structure take in guest memory. */
static inline uint64_t vring_packed_desc_bytes(uint32_t n)
{
	return 16ull * n;
}
#define VRING_PACKED_EVENT_BYTES 4u

/* A buffer the driver made available: its first descriptor's place, how many descriptors of
 * the ring it takes, and its id (already checked to be below the ring's size). */
struct vring_packed_buf {
	uint16_t pos;
	uint16_t ndescs;
	uint16_t id;
};

/*
 * Take the next available buffer, if any: finds where its chain ends and advances
 * last_avail (and the wrap counter) past it. VRING_BROKEN (with why) when the ring cannot be
 * followed any further: a chain longer than the ring, a descriptor of a chain not made
 * available with its head, an id beyond the ring's size.
 */
enum vring_pop vring_packed_pop(struct vring_packed *vr, struct vring_packed_buf *buf,
				const char **why);

/*
 * Walk a popped buffer's descriptors (direct, or one indirect table) into iov (max entries).
 * Returns 0, or a negative errno with a reason, as vring_walk does; the buffer can then be
 * given back with a zero length.
 */
int vring_packed_walk(const struct vring_packed *vr, const struct vhost_mem *mem,
		      const struct vring_packed_buf *buf, struct iovec *iov, uint16_t max,
		      struct vring_chain *out, const char **why);

/* Give buffer id (which took ndescs descriptors) back as used, len bytes written. Visible to
 * the driver at once; vring_packed_publish says whether to call it. */
void vring_packed_push_used(struct vring_packed *vr, uint16_t id, uint16_t ndescs, uint32_t len);

/* After pushing: true if the driver wants a call now (its event structure). */
bool vring_packed_publish(struct vring_packed *vr);

/* Before going idle: ask for a kick at our next position (EVENT_IDX) and check, after a full
 * barrier, that no buffer arrived meanwhile. True when one is available. */
bool vring_packed_arm(struct vring_packed *vr);

/* Start from a vhost-user ring base (bits 0-14 the next descriptor, bit 15 its wrap
 * counter; nothing is in flight, so the used position is the same). -EINVAL if the position
 * lies beyond the ring. Sets the device's event structure to ask for kicks. */
int vring_packed_start(struct vring_packed *vr, uint32_t base);

/* Start with the available and used positions apart (each bits 0-14 the descriptor, bit 15
 * its wrap counter): buffers between them are in flight, as inflight tracking found them
 * after a restart. -EINVAL if either lies beyond the ring. */
int vring_packed_resume(struct vring_packed *vr, uint16_t avail, uint16_t used);

/* The ring base to report in GET_VRING_BASE: the available position and wrap counter in the
 * low 16 bits, the used ones in the high 16 (what QEMU keeps and sends back). */
uint32_t vring_packed_base(const struct vring_packed *vr);

#endif
