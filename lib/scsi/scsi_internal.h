/*
 * The SCSI layer's internals: devices, logical units, the per-task state kept inside
 * mimo_scsi_task, the command table, and the helpers the command files share.
 */
#ifndef MIMO_SCSI_INTERNAL_H
#define MIMO_SCSI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "compiler.h"
#include "mimo/bdev.h"
#include "mimo/reactor.h"
#include "mimo/scsi.h"

#define SCSI_COMP "scsi"

/* What the layer tells initiators about itself (INQUIRY). */
#define SCSI_VENDOR   "MIMO    "
#define SCSI_REVISION "0001"

/* Block limits (VPD page B0h) and how work is cut up. */
#define SCSI_MAX_CAW_BLOCKS	   255	  /* COMPARE AND WRITE's NUMBER OF LOGICAL BLOCKS */
#define SCSI_MAX_UNMAP_DESCRIPTORS 4095	  /* what a 16-bit parameter list length can carry */
#define SCSI_CHUNK_BYTES	   131072 /* one step of WRITE SAME and VERIFY loops */

/* --- per-task state ------------------------------------------------------------------------- */

struct scsi_lun;
struct scsi_lun_reactor;
struct scsi_cmd;
struct scsi_task_priv;
struct scsi_tmf;

typedef void (*scsi_step_fn)(struct scsi_task_priv *p);

struct scsi_task_priv {
	struct mimo_scsi_task *task;
	struct mimo_scsi_dev *dev;
	struct scsi_lun *lun;	     /* NULL for a device-level command */
	struct scsi_lun_reactor *st; /* the LUN's state on the submitting reactor */
	const struct scsi_cmd *cmd;
	TAILQ_ENTRY(scsi_task_priv) link; /* st->tasks: every task the LUN has here */
	TAILQ_ENTRY(scsi_task_priv) wait; /* st->parked, or the LUN's CAW queue */
	scsi_step_fn resume;		  /* what runs when a parked task is let through */
	uint64_t lba;
	uint64_t nblocks;
	uint64_t done;	      /* blocks (or descriptors) a loop has finished */
	uint64_t chunk;	      /* blocks a WRITE SAME pattern buffer holds */
	uint64_t iov_total;   /* bytes the task's iovecs hold */
	uint32_t edtl;	      /* transfer_len, in the task's direction, within its iovecs */
	uint64_t want;	      /* data-in bytes the command produces / data-out bytes it needs */
	uint8_t byte1;	      /* the CDB's flags byte (DPO, FUA, BYTCHK, UNMAP...) */
	uint8_t how;	      /* how a command chose to do its work (WRITE SAME) */
	bool fua;	      /* flush after the write (FUA, or write-through caching) */
	bool aborted;	      /* task management ended it: complete with TASK ABORTED */
	bool counted;	      /* counted in st->inflight (a COMPARE AND WRITE waits for it) */
	bool parked;	      /* on st->parked */
	bool is_caw;	      /* on the LUN's CAW queue */
	int err;	      /* first error of a multi-part operation */
	struct scsi_tmf *tmf; /* the task management function waiting for this task */
	void *buf;	      /* bounce / parameter buffer (freed at completion) */
	struct iovec *iov;    /* iovecs trimmed to the command's length */
	int iovcnt;
	struct iovec iov_inline[3];
};

_Static_assert(sizeof(struct scsi_task_priv) <= sizeof(((struct mimo_scsi_task *)0)->priv),
	       "MIMO_SCSI_TASK_PRIV_WORDS too small");

static inline struct scsi_task_priv *scsi_priv(struct mimo_scsi_task *task)
{
	return (struct scsi_task_priv *)(void *)task->priv;
}

/* --- logical units ------------------------------------------------------------------------- */

/* Mode page values that can change (MODE SELECT), as bits of scsi_lun.mode. */
#define SCSI_MODE_WCE	  (1u << 0) /* caching page: write cache enabled */
#define SCSI_MODE_D_SENSE (1u << 1) /* control page: descriptor-format sense */
#define SCSI_MODE_SWP	  (1u << 2) /* control page: software write protect */

/* Pending unit attention conditions, as bits of scsi_lun.ua: the lowest bit is reported
 * first (SPC-4's precedence: power on and resets before the others). */
enum scsi_ua {
	SCSI_UA_POWER_ON = 1u << 0,
	SCSI_UA_LUN_RESET = 1u << 1,
	SCSI_UA_CAPACITY_CHANGED = 1u << 2,
	SCSI_UA_LUNS_CHANGED = 1u << 3,
	SCSI_UA_MODE_CHANGED = 1u << 4,
};

/* A LUN's state on one reactor; only that reactor touches it, except where noted. */
struct scsi_lun_reactor {
	struct mimo_io_channel *ch; /* this reactor's bdev channel, taken on first use */
	TAILQ_HEAD(, scsi_task_priv) tasks;
	TAILQ_HEAD(, scsi_task_priv) parked; /* I/O held while a COMPARE AND WRITE runs */
	uint32_t inflight;		     /* tasks through the gate, not yet completed */
	bool drain_notify;		     /* a COMPARE AND WRITE waits for inflight to reach 0 */
	bool draining; /* the LUN is being removed: release once tasks is empty */
} __attribute__((aligned(MIMO_CACHELINE)));

struct scsi_lun {
	struct mimo_scsi_dev *dev;
	uint32_t id;
	char *bdev_name;
	struct mimo_bdev_desc *desc;
	struct mimo_bdev *bdev;
	uint32_t block_size;
	bool readonly; /* opened read-only: a module claims the bdev */
	bool can_unmap, can_write_zeroes, can_flush;
	uint8_t uuid[16];
	_Atomic uint64_t num_blocks; /* as last reported; a change raises a unit attention */
	_Atomic uint32_t ua;
	_Atomic uint32_t mode;
	atomic_bool stopped; /* START STOP UNIT with START 0: media commands are NOT READY */
	_Atomic int refs;
	atomic_bool removing;

	/* COMPARE AND WRITE: while one runs, the LUN's other writes wait (caw.c). */
	pthread_mutex_t caw_lock;
	TAILQ_HEAD(, scsi_task_priv) caw_queue; /* the head runs, the rest wait their turn */
	atomic_bool frozen;
	_Atomic int drain_pending;

	/* Removal (lun.c, dev.c). */
	_Atomic int draining_reactors;
	void (*removed_cb)(void *arg); /* lun.c calls it on the owner before the last put */
	void *removed_arg;
	bool hot;		    /* removed because its bdev was deleted */
	void (*user_cb)(void *arg); /* mimo_scsi_dev_remove_lun's caller */
	void *user_arg;

	uint32_t nreactors;
	struct scsi_lun_reactor per_reactor[];
};

struct mimo_scsi_dev {
	char name[MIMO_SCSI_DEV_NAME_MAX + 1];
	int id;
	struct mimo_reactor *owner;
	_Atomic(struct scsi_lun *) luns[MIMO_SCSI_MAX_LUNS];
	mimo_scsi_lun_event_fn event_fn;
	void *event_ctx;
	bool destroying;
	int removals; /* LUN removals in progress (owner) */
	int destroy_pending;
	void (*destroy_cb)(void *arg);
	void *destroy_arg;
	TAILQ_ENTRY(mimo_scsi_dev) link;
};

/* The registry of devices (dev.c): lookups, ids, scsi_get_devices. LUN tables are changed
 * under this lock too, so that a reader on another thread sees a LUN's name while it lives. */
extern pthread_mutex_t g_scsi_devs_lock;
TAILQ_HEAD(scsi_dev_list, mimo_scsi_dev);
extern struct scsi_dev_list g_scsi_devs;

int scsi_lun_create(struct mimo_scsi_dev *dev, uint32_t id, const char *bdev_name,
		    struct scsi_lun **out);
/* Unpublish and drain the LUN; cb(arg) on the owner once it is freed. */
void scsi_lun_remove(struct scsi_lun *lun, void (*cb)(void *arg), void *arg);
void scsi_lun_raise_ua(struct scsi_lun *lun, uint32_t ua);
/* The LUN's bdev channel on this reactor. */
struct mimo_io_channel *scsi_lun_channel(struct scsi_task_priv *p);
/* Check for a capacity change (cheap; on every task). */
void scsi_lun_check_capacity(struct scsi_lun *lun);
/* LOGICAL UNIT RESET's effects on the LUN's state: mode pages to their defaults, the unit
 * started, the unit attention raised. */
void scsi_lun_reset_state(struct scsi_lun *lun);
uint32_t scsi_lun_default_mode(const struct scsi_lun *lun);

/* --- commands ---------------------------------------------------------------------------- */

#define SCSI_CMD_SA	  (1u << 0) /* a service action in byte 1 (bits 4-0) */
#define SCSI_CMD_NO_UA	  (1u << 1) /* INQUIRY, REPORT LUNS, REQUEST SENSE: no unit attention */
#define SCSI_CMD_MEDIA	  (1u << 2) /* needs the unit started */
#define SCSI_CMD_WRITE	  (1u << 3) /* changes data: write protection applies */
#define SCSI_CMD_DEVICE	  (1u << 4) /* answered by the device, without a LUN */
#define SCSI_CMD_DATA_OUT (1u << 5) /* its data moves to the device */

struct scsi_cmd {
	uint8_t opcode;
	uint8_t sa;
	uint8_t cdb_len;
	uint8_t flags;
	uint8_t usage[16]; /* REPORT SUPPORTED OPERATION CODES' CDB USAGE DATA; also the bits a
			      CDB may have set (others: INVALID FIELD IN CDB) */
	scsi_step_fn exec;
	const char *name;
	const struct scsi_cmd *sub; /* an opcode with service actions: their commands */
	uint8_t nsub;
};

/* The command for a CDB, or NULL; *bad_sa: the opcode exists but not this service action. */
const struct scsi_cmd *scsi_cmd_lookup(const uint8_t *cdb, bool *bad_sa);

/* Command implementations (cmds.c, inquiry.c, mode.c, rw.c, unmap.c, caw.c). */
void scsi_exec_test_unit_ready(struct scsi_task_priv *p);
void scsi_exec_request_sense(struct scsi_task_priv *p);
void scsi_exec_report_luns(struct scsi_task_priv *p);
void scsi_exec_read_capacity10(struct scsi_task_priv *p);
void scsi_exec_read_capacity16(struct scsi_task_priv *p);
void scsi_exec_start_stop_unit(struct scsi_task_priv *p);
void scsi_exec_report_supported_opcodes(struct scsi_task_priv *p);
void scsi_exec_report_supported_tmfs(struct scsi_task_priv *p);
void scsi_exec_inquiry(struct scsi_task_priv *p);
void scsi_exec_mode_sense(struct scsi_task_priv *p);
void scsi_exec_mode_select(struct scsi_task_priv *p);
void scsi_exec_read(struct scsi_task_priv *p);
void scsi_exec_write(struct scsi_task_priv *p);
void scsi_exec_verify(struct scsi_task_priv *p);
void scsi_exec_write_verify(struct scsi_task_priv *p);
void scsi_exec_sync_cache(struct scsi_task_priv *p);
void scsi_exec_unmap(struct scsi_task_priv *p);
void scsi_exec_write_same(struct scsi_task_priv *p);
void scsi_exec_get_lba_status(struct scsi_task_priv *p);
void scsi_exec_compare_and_write(struct scsi_task_priv *p);

/* Device-level answers for a LUN that does not exist (inquiry.c, cmds.c). */
void scsi_inquiry_no_lun(struct scsi_task_priv *p);
void scsi_request_sense_no_lun(struct scsi_task_priv *p);

/* --- task helpers (task.c) ---------------------------------------------------------------- */

/* Finish the task: status and sense are set. From a bdev callback (not inside a submission
 * of the task itself) call it directly; from an exec function use scsi_task_done_later. */
void scsi_task_done(struct scsi_task_priv *p);
void scsi_task_done_later(struct scsi_task_priv *p);

/* Answer data-in: avail bytes of buf, of which the command's allocation length lets alloc
 * through; GOOD status, residuals set. Completes the task (later). */
void scsi_task_data_in(struct scsi_task_priv *p, const void *buf, size_t avail, uint32_t alloc);
/* GOOD status, nothing transferred. Completes the task (later). */
void scsi_task_good(struct scsi_task_priv *p);

/* CHECK CONDITION with sense (format from the LUN's D_SENSE); the caller completes. */
void scsi_task_sense(struct scsi_task_priv *p, uint8_t key, uint16_t asc);
void scsi_task_sense_info(struct scsi_task_priv *p, uint8_t key, uint16_t asc, uint64_t info);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB (cd) or IN PARAMETER LIST, with the field pointer
 * (byte) and bit pointer (bit, or -1). */
void scsi_task_invalid_field(struct scsi_task_priv *p, bool cd, uint16_t byte, int bit);
/* Shorthands that also complete the task (later). */
void scsi_task_fail(struct scsi_task_priv *p, uint8_t key, uint16_t asc);
void scsi_task_fail_field(struct scsi_task_priv *p, uint16_t byte, int bit);
void scsi_task_fail_lba(struct scsi_task_priv *p);

/* Build sense bytes into out (MIMO_SCSI_SENSE_SIZE): returns the length. */
uint8_t scsi_build_sense(uint8_t *out, bool desc, uint8_t key, uint16_t asc, bool info_valid,
			 uint64_t info, bool sks_valid, const uint8_t sks[3]);

/* Map a failed bdev I/O (negative errno) to sense; lba: the I/O's first block. */
void scsi_task_bdev_error(struct scsi_task_priv *p, int rc, bool write, uint64_t lba);

/* Data-out: check that edtl covers want bytes; if not, fail the task (INVALID FIELD IN
 * INFORMATION UNIT, overflow residual) and return false. */
bool scsi_task_need_data_out(struct scsi_task_priv *p, uint64_t want);
/* Copy data-out bytes [off, off+len) into buf. */
void scsi_task_gather(struct scsi_task_priv *p, void *buf, size_t off, size_t len);
/* Point p->iov at bytes [off, off+len) of the task's iovecs. Returns 0 or -ENOMEM. */
int scsi_task_sub_iov(struct scsi_task_priv *p, size_t off, size_t len);
/* Residual and data_transferred once the command has moved moved bytes of want. */
void scsi_task_set_transfer(struct scsi_task_priv *p, uint64_t want, uint32_t moved);

/* Bytes [off, off+len) of the data-out against buf: the offset of the first byte that
 * differs, or -1. */
int64_t scsi_task_compare(struct scsi_task_priv *p, size_t off, const void *buf, size_t len);
/* A bdev submission or completion failed with rc: -ENOMEM runs step again next turn (returns
 * true); anything else is the caller's to report. */
bool scsi_task_retry(struct scsi_task_priv *p, int rc, scsi_step_fn step);
/* rc from a bdev I/O of a step: retried (-ENOMEM) or reported and the task completed. */
void scsi_task_io_failed(struct scsi_task_priv *p, int rc, bool write, uint64_t lba,
			 scsi_step_fn step);

/* Write protection, for commands that change data: fails the task when it applies. */
bool scsi_task_write_allowed(struct scsi_task_priv *p);
/* LBA range check: lba + n must not pass the capacity. Fails the task when it does. */
bool scsi_task_range_ok(struct scsi_task_priv *p, uint64_t lba, uint64_t n);

/* Byte order. */
static inline uint16_t scsi_be16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}
static inline uint32_t scsi_be24(const uint8_t *b)
{
	return (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
}
static inline uint32_t scsi_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static inline uint64_t scsi_be64(const uint8_t *b)
{
	return (uint64_t)scsi_be32(b) << 32 | scsi_be32(b + 4);
}
static inline void scsi_put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void scsi_put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void scsi_put64(uint8_t *b, uint64_t v)
{
	scsi_put32(b, (uint32_t)(v >> 32));
	scsi_put32(b + 4, (uint32_t)v);
}

/* --- the LUN's gate and COMPARE AND WRITE (caw.c) ---------------------------------------- */

/* Let a task that reads or writes the medium through the LUN's gate and run step, now or
 * once the COMPARE AND WRITEs queued have finished. */
void scsi_gate(struct scsi_task_priv *p, scsi_step_fn step);
/* At completion: leave the gate's count. */
void scsi_gate_leave(struct scsi_task_priv *p);

/* Cross-file internals. */
uint16_t scsi_lun_take_ua(struct scsi_lun *lun);
void scsi_lun_release_here(struct scsi_lun *lun, struct scsi_lun_reactor *st);
void scsi_lun_get(struct scsi_lun *lun);
void scsi_lun_put(struct scsi_lun *lun);
struct mimo_io_channel *scsi_lun_reactor_channel(struct scsi_lun *lun, struct scsi_lun_reactor *st);
void scsi_tmf_task_done(struct scsi_tmf *tmf);
void scsi_dev_lun_hot_removed(struct scsi_lun *lun);
/* mimo_reactor_post that cannot fail: the layer's own bookkeeping messages must arrive. */
void scsi_post(struct mimo_reactor *r, mimo_msg_fn fn, void *arg);
/* The verify loop shared by VERIFY, WRITE AND VERIFY (rw.c): p->lba, p->nblocks, bytchk in
 * p->byte1's bits 2-1 as VERIFY has them. */
void scsi_verify_start(struct scsi_task_priv *p);

/* RPC (scsi_rpc.c). */
void scsi_rpc_register(void);

#endif /* MIMO_SCSI_INTERNAL_H */
