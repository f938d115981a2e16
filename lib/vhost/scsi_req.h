/*
 * virtio-scsi's wire structures (virtio 1.2, 5.6) and the parsing of a request queue's
 * descriptor chain into a command: header, target and LUN, data direction and buffers. Kept
 * apart from the device (scsi.c) so that the unit test and the fuzz target link it alone.
 *
 * The header sizes follow the configuration space's cdb_size (32) and sense_size (96), which
 * this device never lets the driver change (Linux writes the same values back).
 */
#ifndef MIMO_VHOST_SCSI_REQ_H
#define MIMO_VHOST_SCSI_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTIO_SCSI_CDB_SIZE   32
#define VIRTIO_SCSI_SENSE_SIZE 96
#define VSCSI_MAX_TARGETS      8 /* as SPDK: targets 0..7, each one SCSI device */

/* Feature bits. */
#define VIRTIO_SCSI_F_INOUT   0
#define VIRTIO_SCSI_F_HOTPLUG 1
#define VIRTIO_SCSI_F_CHANGE  2

/* Response codes. */
#define VIRTIO_SCSI_S_OK		 0
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE	 0
#define VIRTIO_SCSI_S_OVERRUN		 1
#define VIRTIO_SCSI_S_ABORTED		 2
#define VIRTIO_SCSI_S_BAD_TARGET	 3
#define VIRTIO_SCSI_S_RESET		 4
#define VIRTIO_SCSI_S_BUSY		 5
#define VIRTIO_SCSI_S_TRANSPORT_FAILURE	 6
#define VIRTIO_SCSI_S_TARGET_FAILURE	 7
#define VIRTIO_SCSI_S_NEXUS_FAILURE	 8
#define VIRTIO_SCSI_S_FAILURE		 9
#define VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VIRTIO_SCSI_S_FUNCTION_REJECTED	 11
#define VIRTIO_SCSI_S_INCORRECT_LUN	 12

/* Control queue: request types and task management functions. */
#define VIRTIO_SCSI_T_TMF		     0
#define VIRTIO_SCSI_T_AN_QUERY		     1
#define VIRTIO_SCSI_T_AN_SUBSCRIBE	     2
#define VIRTIO_SCSI_T_TMF_ABORT_TASK	     0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK_SET     1
#define VIRTIO_SCSI_T_TMF_CLEAR_ACA	     2
#define VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET     3
#define VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET    4
#define VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET 5
#define VIRTIO_SCSI_T_TMF_QUERY_TASK	     6
#define VIRTIO_SCSI_T_TMF_QUERY_TASK_SET     7

/* Event queue. */
#define VIRTIO_SCSI_T_NO_EVENT	      0
#define VIRTIO_SCSI_T_TRANSPORT_RESET 1
#define VIRTIO_SCSI_T_ASYNC_NOTIFY    2
#define VIRTIO_SCSI_T_PARAM_CHANGE    3
#define VIRTIO_SCSI_T_EVENTS_MISSED   0x80000000u
#define VIRTIO_SCSI_EVT_RESET_RESCAN  1
#define VIRTIO_SCSI_EVT_RESET_REMOVED 2

struct virtio_scsi_cmd_req {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t task_attr;
	uint8_t prio;
	uint8_t crn;
	uint8_t cdb[VIRTIO_SCSI_CDB_SIZE];
} __attribute__((packed));

struct virtio_scsi_cmd_resp {
	uint32_t sense_len;
	uint32_t resid;
	uint16_t status_qualifier;
	uint8_t status;
	uint8_t response;
	uint8_t sense[VIRTIO_SCSI_SENSE_SIZE];
} __attribute__((packed));

struct virtio_scsi_ctrl_tmf_req {
	uint32_t type;
	uint32_t subtype;
	uint8_t lun[8];
	uint64_t tag;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_req {
	uint32_t type;
	uint8_t lun[8];
	uint32_t event_requested;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_resp {
	uint32_t event_actual;
	uint8_t response;
} __attribute__((packed));

struct virtio_scsi_event {
	uint32_t event;
	uint8_t lun[8];
	uint32_t reason;
} __attribute__((packed));

struct virtio_scsi_config {
	uint32_t num_queues;
	uint32_t seg_max;
	uint32_t max_sectors;
	uint32_t cmd_per_lun;
	uint32_t event_info_size;
	uint32_t sense_size;
	uint32_t cdb_size;
	uint16_t max_channel;
	uint16_t max_target;
	uint32_t max_lun;
} __attribute__((packed));

enum vscsi_dir {
	VSCSI_DIR_NONE,
	VSCSI_DIR_FROM_DEV, /* data-in: the writable buffers after the response */
	VSCSI_DIR_TO_DEV,   /* data-out: the readable buffers after the header */
};

enum vscsi_parse {
	VSCSI_PARSE_OK,
	VSCSI_PARSE_NO_RESP, /* no room for a response: the request goes back unanswered */
	VSCSI_PARSE_BAD_HDR, /* a header shorter than virtio_scsi_cmd_req: answered FAILURE */
	VSCSI_PARSE_BIDI,    /* data both ways (INOUT was not offered): answered FAILURE */
};

struct vscsi_cmd {
	struct virtio_scsi_cmd_req hdr;
	uint8_t target;
	uint32_t lun; /* (lun[2] << 8 | lun[3]) & 0x3fff; past the LUN range if lun[4..7] != 0 */
	bool addr_ok; /* lun[0] == 1 and the target is one of ours (0..7) */
	enum vscsi_dir dir;
	struct iovec *data; /* into the caller's array */
	uint16_t datacnt;
	uint32_t data_len;
};

/* The target and LUN a virtio-scsi LUN field names; false if it is no single-level address
 * of a target 0..7. */
bool vscsi_decode_lun(const uint8_t lun[8], uint8_t *target, uint32_t *lun_id);

/*
 * A request queue's chain (iov[0..iovcnt), the first out_cnt readable, out_len and in_len
 * bytes) as a command. The data buffers are copied into data[] (VHOST_MAX_IOVS entries) with
 * the header or the response cut off their front.
 */
enum vscsi_parse vscsi_parse_cmd(const struct iovec *iov, uint16_t iovcnt, uint16_t out_cnt,
				 uint32_t out_len, uint32_t in_len, struct iovec *data,
				 struct vscsi_cmd *cmd);

/* Copy len bytes into the iovecs from off: returns how many fitted. */
size_t vscsi_iov_copy_in(const struct iovec *iov, uint32_t cnt, size_t off, const void *src,
			 size_t len);
/* Copy len bytes out of the iovecs from off: returns how many there were. */
size_t vscsi_iov_copy_out(const struct iovec *iov, uint32_t cnt, size_t off, void *dst, size_t len);

#endif
