/*
 * lib/vhost inside: controllers (a Unix socket each), sessions (one per front-end connection),
 * virtqueues served on reactors, and the device interface a virtio device type implements
 * (virtio-blk in blk.c; virtio-scsi over lib/scsi in scsi.c).
 *
 * Threads. Controllers, their sockets and every session's protocol handling live on the
 * reactor that created them (reactor 0, where the RPCs run). A virtqueue, once started, is
 * served on one reactor of its controller's cpumask (queue i on the (i mod n)-th): that
 * reactor watches its kick eventfd, walks its ring, submits to the device and writes the
 * used ring. The session changes a queue's configuration only while the queue is stopped;
 * start and stop are messages to the queue's reactor, and a stop is acknowledged once every
 * request of the queue has completed - so guest memory is never unmapped, nor a ring
 * reconfigured, under a request.
 */
#ifndef MIMO_VHOST_INTERNAL_H
#define MIMO_VHOST_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "inflight.h"
#include "inflight_packed.h"
#include "log.h"
#include "memory.h"
#include "mimo/reactor.h"
#include "vhost_user.h"
#include "vring.h"
#include "vring_packed.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                         \
	for ((var) = TAILQ_FIRST((head)); (var) && ((tvar) = TAILQ_NEXT((var), field), 1); \
	     (var) = (tvar))
#endif

#define COMP		   "vhost"
#define VHOST_MAX_QUEUES   32u
#define VHOST_MAX_SESSIONS 8u /* connections at once per controller */

struct vhost_ctrlr;
struct vhost_session;
struct vhost_queue;

/* One request taken from a ring: its chain as iovecs (device-readable first). A device's
 * per-request context follows it (vhost_req_ctx). */
struct vhost_req {
	struct vhost_queue *q;
	uint16_t head;	 /* split: the chain's head; packed: the buffer's id */
	uint16_t ndescs; /* packed: descriptors the buffer took in the ring */
	uint16_t slot;	 /* packed, tracked: its head entry in the inflight region */
	uint16_t iovcnt;
	uint16_t out_cnt;
	bool inflight;
	uint32_t out_len;
	uint32_t in_len;
	void (*deferred)(struct vhost_req *req);
	STAILQ_ENTRY(vhost_req) link;
	struct iovec iov[VHOST_MAX_IOVS];
} __attribute__((aligned(16)));

static inline void *vhost_req_ctx(struct vhost_req *req)
{
	return req + 1;
}

/*
 * What a virtio device type implements. Functions marked "queue" run on the queue's reactor;
 * the others on the controller's.
 */
struct vhost_dev_ops {
	const char *type;		 /* "blk", "scsi" */
	size_t req_ctx_size;		 /* bytes after each struct vhost_req */
	uint64_t (*features)(void *dev); /* virtio device feature bits offered */
	uint32_t (*max_queues)(void *dev);
	/* Fill len bytes of the configuration space from offset (zeroes past its end). */
	void (*get_config)(void *dev, uint8_t *buf, uint32_t offset, uint32_t len);
	/* queue: a request popped from the ring; complete it with vhost_req_complete(). */
	void (*submit)(void *dev, struct vhost_req *req);
	/* queue (may be NULL): the queue is stopping - complete any request the device holds
	 * without a deadline (virtio-scsi's event queue buffers), or the stop never ends. */
	void (*queue_stopping)(void *dev, struct vhost_queue *q);
	/* queue (may be NULL): after the last request of a stopping queue completed. */
	void (*queue_stopped)(void *dev, struct vhost_queue *q);
	/* The backend_specific object of vhost_get_controllers, and the calls that re-create
	 * the device in a saved configuration (appended to arr). */
	json_t *(*info_json)(void *dev);
	void (*config_json)(void *dev, struct vhost_ctrlr *c, json_t *arr);
	/* Release what the device holds (its bdev): done(arg) when it has, on this reactor.
	 * Requests arriving afterwards must fail. */
	void (*detach)(void *dev, void (*done)(void *arg), void *arg);
	void (*free)(void *dev);
};

struct vhost_queue {
	/* Configuration: written by the session's reactor while the queue is stopped. */
	struct vhost_session *s;
	uint16_t index;
	struct mimo_reactor *reactor;
	uint32_t num;
	bool addr_set;
	struct vhost_vring_addr addr;
	uint32_t base; /* split: the next available entry; packed: vring_packed_base() */
	int kick_fd, call_fd, err_fd;
	bool enabled;
	bool started;	     /* the session's view: started, its stop not yet acknowledged */
	_Atomic bool broken; /* the driver broke the ring: not restarted until reconfigured */

	/* On the queue's reactor while started. */
	bool packed; /* VIRTIO_F_RING_PACKED: vp is the ring, not vr (queue_packed.c) */
	struct vring vr;
	struct vring_packed vp;
	struct vhost_mem *mem;
	struct mimo_fd_watch *kick_watch;
	struct mimo_poller *poller;
	uint8_t *reqs;
	size_t req_stride;
	uint32_t nreqs;
	_Atomic uint32_t inflight; /* one writer (the queue's reactor); read anywhere */
	bool stopping;
	bool dirty;	      /* used entries not yet published */
	bool signal_at_start; /* signal the call fd when (re)started: a new one, or the last
			       * stop published entries */
	STAILQ_HEAD(, vhost_req) deferred;
	/* Inflight tracking (INFLIGHT_SHMFD): this queue's part of the session's region, the
	 * next request's counter, and the requests a dead back-end left, to submit at start. */
	struct vhost_inflight_queue *track;
	struct vhost_inflight_pqueue *ptrack; /* the same for a packed ring */
	uint64_t track_counter;
	uint16_t *resubmit;
	uint16_t nresubmit;
	void *dev_ctx; /* the device's per-queue state (malloc'd; freed with the queue) */
	/* Interrupt coalescing: completions counted per window; above the threshold the call
	 * is held until next_call, a timer delivering it. */
	uint32_t window_reqs;
	uint64_t window_end, next_call, call_delay_ticks;
	bool call_held;
	struct mimo_poller *call_timer;
	void (*stop_done)(struct vhost_queue *q);

	/* Counters, written on the queue's reactor, read anywhere. */
	_Atomic uint64_t requests, kicks, calls;
};

enum vhost_op_state {
	OP_NONE,
	OP_PENDING
};

struct vhost_session {
	struct vhost_ctrlr *c;
	TAILQ_ENTRY(vhost_session) link;
	uint32_t id;
	char name[80];
	int fd;
	int backend_fd; /* SET_BACKEND_REQ_FD's socket, or -1 */
	struct mimo_fd_watch *watch;
	/* Receiving the current message. */
	uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD];
	uint32_t have;
	int fds[VHOST_USER_MAX_FDS];
	uint32_t nfds;
	/* Negotiated state. */
	uint64_t features;
	uint64_t protocol_features;
	bool features_set;
	bool owner;
	bool announced;
	struct vhost_mem *mem;
	/* The inflight region (GET/SET_INFLIGHT_FD), mapped; NULL when there is none. */
	void *inflight;
	size_t inflight_size;
	uint16_t inflight_queues, inflight_qsize;
	bool inflight_packed; /* its layout: packed rings' (the features when it was set) */
	struct vhost_queue *queues[VHOST_MAX_QUEUES];
	/* A message whose handling waits for queues to stop. */
	bool busy;
	uint32_t waiting; /* queue stops not yet acknowledged */
	void (*resume)(struct vhost_session *s);
	int (*then)(struct vhost_session *s); /* enum h_result in session.c */
	struct vhost_user_hdr pending;
	bool in_handler;
	bool closing;
	const char *close_reason;
};

struct vhost_ctrlr {
	char *name;
	char *socket_path;
	uint64_t cpumask;
	struct mimo_reactor *reactors[64];
	uint32_t nreactors;
	struct mimo_reactor *home; /* where the controller and its sessions live */
	int listen_fd;
	struct mimo_fd_watch *listen_watch;
	TAILQ_HEAD(, vhost_session) sessions;
	uint32_t nsessions;
	uint32_t next_session_id;
	/* Interrupt coalescing (vhost_controller_set_coalescing; delay 0: off): set on the
	 * home reactor, read by the queues' reactors at each signal. */
	_Atomic uint32_t delay_base_us, iops_threshold;
	const struct vhost_dev_ops *ops;
	void *dev;
	bool deleted;  /* gone from the registry: sessions left fail their I/O */
	bool detached; /* the device released what it held */
	/* packed_ring_recovery false: packed rings get no inflight tracking (the split layout
	 * is handed out, as for a front-end that asks before it sets the features). */
	bool packed_untracked;
	TAILQ_ENTRY(vhost_ctrlr) link;
	void (*gone)(void *arg); /* once freed (shutdown) */
	void *gone_arg;
};

/* --- ctrlr.c ------------------------------------------------------------------------------ */
/* The counts of mimo_vhost_get_stats: a session came (+1) or went (-1). */
void vhost_stats_session(int delta);
struct vhost_ctrlr *vhost_ctrlr_find(const char *name);
/* Make a controller listening on socket_dir/name with device (ops, dev) - or, with delay,
 * not listening until vhost_ctrlr_start. On its reactor. */
int vhost_ctrlr_create(const char *name, const char *cpumask, const struct vhost_dev_ops *ops,
		       void *dev, bool delay, struct vhost_ctrlr **out, char *err, size_t err_len);
/* Listen on a controller created with delay (SPDK's vhost_start_scsi_controller); 0 when it
 * listens already. */
int vhost_ctrlr_start(struct vhost_ctrlr *c, char *err, size_t err_len);
/* Delete: the socket goes at once; sessions still connected fail every request until their
 * front-end disconnects. */
void vhost_ctrlr_delete(struct vhost_ctrlr *c);
json_t *vhost_ctrlr_info_json(struct vhost_ctrlr *c);
/* Called by session.c when a session has ended and freed itself. */
void vhost_ctrlr_session_gone(struct vhost_ctrlr *c, struct vhost_session *s);
void vhost_emit(const char *type, const char *ctx, json_t *payload);
json_t *vhost_ctrlr_list_json(void);
/* The saved configuration of the controllers of one device type ("blk", "scsi"). */
json_t *vhost_ctrlr_config_json(const char *type);
struct mimo_ratelimit *vhost_ratelimit(void);

/* --- session.c --------------------------------------------------------------------------- */
/* A new connection (fd, non-blocking) on controller c's reactor. */
int vhost_session_create(struct vhost_ctrlr *c, int fd);
/* End a session now (shutdown): its queues stop, then it frees itself. */
void vhost_session_close(struct vhost_session *s, const char *reason);
/* Tell the front-end (back-end channel) that the device configuration changed: it reads it
 * again (GET_CONFIG) and tells the guest. On the controller's home reactor. */
void vhost_session_config_changed(struct vhost_session *s);
void vhost_ctrlr_config_changed(struct vhost_ctrlr *c);
json_t *vhost_session_info_json(struct vhost_session *s);

/* --- queue.c ----------------------------------------------------------------------------- */
/* On the session's reactor: send the queue to its reactor to be served. 0 or -errno. */
int vhost_queue_start(struct vhost_queue *q);
/* On the session's reactor: stop serving; done(q) runs there once every request completed. */
void vhost_queue_stop(struct vhost_queue *q, void (*done)(struct vhost_queue *q));
void vhost_queue_free(struct vhost_queue *q);
/* On the session's reactor: 0 if the ring addresses lie in the memory table (or are not all
 * known yet), -EFAULT if not. */
int vhost_queue_check_addr(struct vhost_queue *q);
/* Queue: a request taken from the ring and walked into ch goes to the device (counted in
 * flight). Split and packed rings alike. */
void vhost_req_submit(struct vhost_queue *q, struct vhost_req *req, const struct vring_chain *ch);
/* Queue: the device is done with req; used_len bytes were written into its writable part. */
void vhost_req_complete(struct vhost_req *req, uint32_t used_len);
/* Queue: run fn(req) again at the end of this reactor turn (a resource was short). */
void vhost_req_defer(struct vhost_req *req, void (*fn)(struct vhost_req *req));

/* --- queue_packed.c: the packed ring's side of queue.c ------------------------------------- */
/* Queue: take every available buffer of a packed ring, then arm for the next kick. */
void vhost_queue_process_packed(struct vhost_queue *q);
/* Session: point vp at the rings in guest memory (-EFAULT if they are not all in it). */
int vhost_queue_translate_packed(struct vhost_queue *q);
/* Session: the ring's positions and its inflight tracking, at start (-ERANGE for a base
 * beyond the ring, -ENOMEM). */
int vhost_queue_start_packed(struct vhost_queue *q);
/* Queue: the buffer of head entry e of the queue's inflight part, left in flight by a back-end
 * that died, submitted again. */
void vhost_queue_resubmit_packed(struct vhost_queue *q, uint16_t e);
/* Queue: give req's buffer back (len bytes written), through the inflight region if tracked. */
void vhost_queue_push_used_packed(struct vhost_queue *q, const struct vhost_req *req, uint32_t len);
/* queue.c: the driver broke the ring (stop taking from it, say so on the error fd). */
void vhost_queue_broken(struct vhost_queue *q, const char *why);

/* --- iovec helpers (blk.c) ---------------------------------------------------------------- */
size_t vhost_iov_copy_out(const struct iovec *iov, uint32_t cnt, size_t off, void *dst, size_t len);

/* A line for input the other side controls, at most one a second. */
#define VHOST_BAD(...)                                                             \
	do {                                                                       \
		uint64_t _supp;                                                    \
		if (mimo_ratelimit_allow(vhost_ratelimit(), 1000000000LL, &_supp)) \
			mimo_log(MIMO_LOG_WARN, COMP, __VA_ARGS__);                \
	} while (0)

#endif
