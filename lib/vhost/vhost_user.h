/*
 * The vhost-user protocol on the wire (QEMU's docs/interop/vhost-user.rst) and the split
 * virtqueue layout (virtio 1.1, 2.6): message numbers, feature bits, payload layouts. Native
 * byte order on the socket; little-endian in the rings (x86 only, where that is the same).
 */
#ifndef MIMO_VHOST_USER_H
#define MIMO_VHOST_USER_H

#include <stdint.h>

enum vhost_user_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SET_SLAVE_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_MAX_REQUEST = 64, /* above anything defined: a name table's size */
};

#define VHOST_USER_VERSION	0x1u
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_REPLY_MASK	(1u << 2)
#define VHOST_USER_NEED_REPLY	(1u << 3)
#define VHOST_USER_HDR_SIZE	12u
/* Nothing legitimate is larger (a memory table of 8 regions is 264 bytes, a configuration
 * space access 268): a header announcing more drops the connection before reading it. */
#define VHOST_USER_MAX_PAYLOAD	  4096u
#define VHOST_USER_MAX_FDS	  8u
#define VHOST_USER_MAX_REGIONS	  8u
#define VHOST_USER_MAX_CONFIG	  256u
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD	  (1u << 8)

/* Messages the back-end sends on the back-end channel (SET_BACKEND_REQ_FD). */
#define VHOST_USER_BACKEND_CONFIG_CHANGE_MSG 2

/* Protocol features (GET/SET_PROTOCOL_FEATURES). */
#define VHOST_USER_PROTOCOL_F_MQ	     0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD	     1
#define VHOST_USER_PROTOCOL_F_REPLY_ACK	     3
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ    5 /* "SLAVE_REQ" in older texts */
#define VHOST_USER_PROTOCOL_F_CONFIG	     9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE   13

/* Device-independent feature bits. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VHOST_F_LOG_ALL		       26
#define VIRTIO_RING_F_INDIRECT_DESC    28
#define VIRTIO_RING_F_EVENT_IDX	       29
#define VIRTIO_F_VERSION_1	       32
#define VIRTIO_F_RING_PACKED	       34

#define VHOST_VRING_F_LOG 0u

struct vhost_user_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhost_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vhost_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

struct vhost_user_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vhost_user_memory {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_region regions[VHOST_USER_MAX_REGIONS];
};

struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHOST_USER_MAX_CONFIG];
};
#define VHOST_USER_CONFIG_HDR 12u

/* --- split virtqueues ------------------------------------------------------------------- */

#define VRING_DESC_F_NEXT	   1
#define VRING_DESC_F_WRITE	   2
#define VRING_DESC_F_INDIRECT	   4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	   1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event */
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* then avail_event */
};

#endif
