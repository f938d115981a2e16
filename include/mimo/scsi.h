/*
 * mimo/scsi.h - SCSI devices and logical units over bdevs: the command layer that SCSI
 * front-ends (vhost-user-scsi, iSCSI) share. It knows no transport: a front-end decodes its
 * own framing into a task (LUN, CDB, data direction, buffers, expected transfer length),
 * submits it, and gets the SCSI status, sense data and residual back in a callback.
 *
 * A device (SPDK's spdk_scsi_dev) has a name and up to MIMO_SCSI_MAX_LUNS logical units, each
 * one bdev. Commands: docs/scsi.md.
 *
 * Threads. A device belongs to the reactor that created it (its owner): create, destroy, add
 * and remove LUNs there; the event callback runs there. Tasks are submitted on any reactor
 * and complete on that reactor, never inside mimo_scsi_dev_submit. Task management functions
 * are called on any reactor and answer on it. The I/O path takes no lock.
 *
 * Errors: 0 or a negative errno.
 */
#ifndef MIMO_SCSI_H
#define MIMO_SCSI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mimo/scsi_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIMO_SCSI_MAX_LUNS     256
#define MIMO_SCSI_CDB_SIZE     32
#define MIMO_SCSI_SENSE_SIZE   32
#define MIMO_SCSI_DEV_NAME_MAX 255

struct mimo_scsi_dev;
struct mimo_scsi_task;

/* Register the RPC methods (scsi_get_devices and the legacy get_scsi_devices, get_luns):
 * mimo/jsonrpc.h, "Registration". */
void mimo_register_scsi(void);

/* --- tasks -------------------------------------------------------------------------------- */

enum mimo_scsi_dir {
	MIMO_SCSI_DIR_NONE,	/* no data phase */
	MIMO_SCSI_DIR_FROM_DEV, /* data-in: the iovecs receive data (reads, INQUIRY...) */
	MIMO_SCSI_DIR_TO_DEV,	/* data-out: the iovecs hold data (writes, MODE SELECT...) */
};

enum mimo_scsi_residual {
	MIMO_SCSI_RESIDUAL_NONE,
	MIMO_SCSI_RESIDUAL_UNDERFLOW, /* the command moved fewer bytes than transfer_len */
	MIMO_SCSI_RESIDUAL_OVERFLOW,  /* the command wanted more than transfer_len */
};

typedef void (*mimo_scsi_task_cb)(struct mimo_scsi_task *task);

/* The layer's per-task state, inside the task so that a submission allocates nothing. */
#define MIMO_SCSI_TASK_PRIV_WORDS 48

struct mimo_scsi_task {
	/* Set by the front-end after mimo_scsi_task_init. */
	uint32_t lun;			 /* 0..MIMO_SCSI_MAX_LUNS-1, decoded from the transport */
	uint8_t cdb[MIMO_SCSI_CDB_SIZE]; /* bytes past the transport's CDB length are zero */
	enum mimo_scsi_dir dir;
	struct iovec *iovs; /* the data buffer for dir; the layer neither frees nor keeps it */
	int iovcnt;
	/* Expected data transfer length in bytes (iSCSI's EDTL, the size of virtio's data
	 * buffers): at most the total of the iovecs. A command that moves less reports an
	 * underflow; one that wants more an overflow (reads then return what fits; writes are
	 * refused with INVALID FIELD IN INFORMATION UNIT and write nothing). */
	uint32_t transfer_len;
	uint64_t tag; /* the front-end's task identifier: ABORT TASK and QUERY TASK name it */
	mimo_scsi_task_cb cb;
	void *cb_arg;

	/* Results, valid in cb. */
	uint8_t status;	   /* enum mimo_scsi_status; TASK ABORTED when task management ended it */
	uint8_t sense_len; /* 0 unless CHECK CONDITION: fixed (18 bytes) or descriptor format */
	uint8_t sense[MIMO_SCSI_SENSE_SIZE];
	uint32_t data_transferred; /* bytes moved to or from the iovecs */
	enum mimo_scsi_residual residual_kind;
	uint32_t residual; /* bytes of underflow or overflow */

	uint64_t priv[MIMO_SCSI_TASK_PRIV_WORDS];
};

/* Zero a task (results and the layer's state); the front-end then sets its fields. */
void mimo_scsi_task_init(struct mimo_scsi_task *task);

/*
 * Run a task on dev, on a reactor; task->cb runs later on this reactor. The task and its
 * buffers must stay valid until then. A LUN that does not exist answers INQUIRY with
 * peripheral qualifier 011b, REPORT LUNS and REQUEST SENSE as the device, and everything
 * else with ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED.
 */
void mimo_scsi_dev_submit(struct mimo_scsi_dev *dev, struct mimo_scsi_task *task);

/* --- devices ------------------------------------------------------------------------------ */

enum mimo_scsi_lun_event {
	/* The LUN's bdev was deleted: the LUN has drained its tasks and is gone. The other
	 * LUNs of the device report REPORTED LUNS DATA HAS CHANGED once. (A LUN removed with
	 * mimo_scsi_dev_remove_lun gets no event: its caller has the callback.) */
	MIMO_SCSI_LUN_EVENT_REMOVED,
	/* The bdev's capacity changed; the LUN reports CAPACITY DATA HAS CHANGED once. */
	MIMO_SCSI_LUN_EVENT_RESIZED,
};

typedef void (*mimo_scsi_lun_event_fn)(void *ctx, struct mimo_scsi_dev *dev, uint32_t lun,
				       enum mimo_scsi_lun_event event);

/*
 * Create a device with num_luns LUNs (lun_ids[i] over bdev_names[i]; lun_ids NULL: 0, 1...),
 * on a reactor, which owns it. Each bdev is opened for writing, or read-only (the LUN then
 * write-protected) when a module has claimed it. event_fn (may be NULL) runs on the owner.
 * Returns 0, -EINVAL (name empty or too long, a LUN id out of range or twice), -EEXIST (name
 * taken), -ENODEV (no such bdev), -EBUSY (a bdev being deleted), -EPERM (not on a reactor),
 * -ENOMEM.
 */
int mimo_scsi_dev_create(const char *name, const char *const bdev_names[], const uint32_t lun_ids[],
			 int num_luns, mimo_scsi_lun_event_fn event_fn, void *event_ctx,
			 struct mimo_scsi_dev **dev);
/* On the owner, once the front-end submits no more: remove every LUN (each drains its tasks,
 * and hot removals under way finish), then free; cb(arg) then runs on the owner. */
void mimo_scsi_dev_destroy(struct mimo_scsi_dev *dev, void (*cb)(void *arg), void *arg);

/*
 * Add a LUN over bdev_name, on the owner. lun_id -1: the lowest free id. Returns the LUN id,
 * or -EEXIST (id in use), -ENOSPC (no free id), -EINVAL, -ENODEV, -EBUSY, -ENOMEM, -EPERM (not
 * on the owner). The new
 * LUN reports POWER ON OCCURRED to its first command, the others REPORTED LUNS DATA HAS
 * CHANGED.
 */
int mimo_scsi_dev_add_lun(struct mimo_scsi_dev *dev, const char *bdev_name, int32_t lun_id);
/* Remove a LUN, on the owner: new tasks no longer see it; cb(arg) runs on the owner once its
 * tasks have completed and its bdev is closed. Returns 0, -ENODEV or -EPERM (not on the
 * owner). */
int mimo_scsi_dev_remove_lun(struct mimo_scsi_dev *dev, uint32_t lun, void (*cb)(void *arg),
			     void *arg);

const char *mimo_scsi_dev_get_name(const struct mimo_scsi_dev *dev);
/* The device's number (SPDK's "id"): the lowest free at creation. */
int mimo_scsi_dev_get_id(const struct mimo_scsi_dev *dev);
/* On the owner: the name of LUN lun's bdev, or NULL when there is no such LUN. */
const char *mimo_scsi_dev_get_lun_bdev(const struct mimo_scsi_dev *dev, uint32_t lun);
/* [{"id": 0, "bdev_name": "Malloc0"}...] in LUN order (any thread). */
json_t *mimo_scsi_dev_luns_json(struct mimo_scsi_dev *dev);
/* The device named name, or NULL (any thread; the owner may destroy it: use it there). */
struct mimo_scsi_dev *mimo_scsi_dev_find(const char *name);

/* --- task management ---------------------------------------------------------------------- */

enum mimo_scsi_tmf {
	MIMO_SCSI_TMF_ABORT_TASK,	  /* the task of this LUN with tag */
	MIMO_SCSI_TMF_ABORT_TASK_SET,	  /* every task of this LUN */
	MIMO_SCSI_TMF_CLEAR_TASK_SET,	  /* the same here: there is one task set per LUN */
	MIMO_SCSI_TMF_LOGICAL_UNIT_RESET, /* abort every task, restore the mode pages' defaults,
					     report BUS DEVICE RESET FUNCTION OCCURRED */
	MIMO_SCSI_TMF_TARGET_RESET,	  /* a logical unit reset of every LUN */
	MIMO_SCSI_TMF_QUERY_TASK,	  /* is the task with tag still in the task set? */
};

enum mimo_scsi_tmf_response {
	MIMO_SCSI_TMF_RESP_COMPLETE,	  /* done (also when ABORT TASK found nothing) */
	MIMO_SCSI_TMF_RESP_SUCCEEDED,	  /* QUERY TASK: the task is there */
	MIMO_SCSI_TMF_RESP_REJECTED,	  /* not a function this layer knows */
	MIMO_SCSI_TMF_RESP_INCORRECT_LUN, /* no such LUN */
};

/*
 * Run a task management function, on any reactor; cb runs on it once every task it ended
 * has completed (with status TASK ABORTED; a task already inside its bdev completes when the
 * bdev answers, since a bdev I/O cannot be called back). Returns 0, or -ENOMEM (cb not
 * called).
 */
int mimo_scsi_dev_task_mgmt(struct mimo_scsi_dev *dev, enum mimo_scsi_tmf fn, uint32_t lun,
			    uint64_t tag, void (*cb)(void *arg, enum mimo_scsi_tmf_response resp),
			    void *arg);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_SCSI_H */
