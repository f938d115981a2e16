/*
 * bdev_nvme's objects, shared by bdev_nvme.c (controllers, I/O, reconnecting) and
 * bdev_nvme_info.c (what the info RPCs report about them). Nothing outside the module.
 */
#ifndef MIMO_BDEV_NVME_PRIV_H
#define MIMO_BDEV_NVME_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bdev_nvme_internal.h"
#include "mimo/bdev_module.h"
#include "mimo/reactor.h"
#include <sys/queue.h>

enum nbc_state {
	NBC_CONNECTING,
	NBC_ENABLED,
	NBC_FAILED,
	NBC_DELETING,
	NBC_RECONNECTING, /* lost (ctrlr_loss_timeout_sec != 0) or reset: connecting again */
	NBC_DISABLED,	  /* bdev_nvme_disable_controller: disconnected until enabled */
};

/*
 * What I/O does when it finds no queue pair, or its command was aborted because the
 * connection went (read by every reactor, written by reactor 0).
 */
enum path_state {
	PATH_OK,    /* connected: a lost I/O queue alone is re-made by its channel */
	PATH_QUEUE, /* reconnecting: I/O waits in its channel for the new connection */
	PATH_FAIL,  /* given up (fast_io_fail_timeout_sec, deleted): I/O fails with -EIO */
};

struct nvme_disk;
struct nvme_path_stat;

/*
 * One error injection (bdev_nvme_add_error_injection, I/O commands): commands of opc fail
 * with status (sct, sc) err_count times, either instead of being sent (do_not_submit, after
 * delay_ns) or on their completion. Every reactor reads the table; reactor 0 fills a slot,
 * then marks it active (release); err_count is taken with a compare-and-swap.
 */
struct nvme_inject {
	int active;
	uint8_t opc;
	bool do_not_submit;
	uint16_t status; /* the completion's status field: SC, SCT (DNR set when not sent) */
	uint64_t delay_ns;
	uint32_t err_count;
};

#define NVME_MAX_INJECT 16

/* Controllers of one name in multipath mode (attach -x multipath): the first carries the
 * bdevs, the others are further paths to their namespaces. */
#define NVME_MAX_MP 4

enum mp_policy {
	MP_ACTIVE_PASSIVE, /* the preferred usable path, the next when it is not */
	MP_ACTIVE_ACTIVE,  /* round robin over the usable paths, min_io I/Os each */
};

struct nvme_bdev_ctrlr {
	char *name;
	char *dhchap_key; /* keyring names, for the configuration */
	char *dhchap_ctrlr_key;
	char *psk;
	struct mimo_nvme_trid trid;
	struct mimo_nvme_ctrlr_opts opts;
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_connect_ctx *connect;
	struct mimo_nvme_detach_ctx *detach;
	enum nbc_state state;
	struct mimo_poller *poller; /* connect, admin or detach: one at a time */
	bool io_device;
	TAILQ_HEAD(, nvme_disk) disks;
	uint32_t *hidden; /* namespaces whose bdev someone else deleted: not re-created */
	uint32_t num_hidden;
	bdev_nvme_attach_cb attach_cb;
	void *attach_arg;
	void (*detach_cb)(void *arg, int rc);
	void *detach_arg;
	/* Deletions refused (the bdev was claimed): retried from the admin poller. */
	bool retry_deletes;
	int64_t next_retry_ns;
	int64_t detach_deadline_ns;
	/* Reconnecting (reactor 0's but path, read by every reactor, atomically). */
	struct bdev_nvme_reconnect_opts reconnect;
	int path;		/* enum path_state */
	int64_t reset_start_ns; /* when the connection was lost */
	int64_t next_attempt_ns;
	/* Failover (attach -x failover): every path of the controller, paths[active] the one
	 * connected or tried (copied into trid); tried: failed attempts of this round. */
	struct mimo_nvme_trid *paths;
	uint32_t num_paths;
	uint32_t active;
	uint32_t tried;
	bool pausing;  /* the channels are letting go of their queue pairs */
	bool resuming; /* the channels are taking queue pairs of the new connection */
	/* A reset's or enable's caller: told how the first attempt to connect went. */
	void (*op_cb)(void *arg, int rc);
	void *op_arg;
	bool from_discovery; /* attached by bdev_nvme_start_discovery: not saved on its own */
	/*
	 * Multipath mode. The first controller of a name (the primary) lists every controller
	 * of the name in mp[] (mp[0] itself; a slot NULL when free; read by every reactor,
	 * atomically); the others point to it (mp_primary) and know their slot. A secondary
	 * has no bdevs of its own and is not found by name.
	 */
	struct nvme_bdev_ctrlr *mp[NVME_MAX_MP];
	struct nvme_bdev_ctrlr *mp_primary;
	uint32_t mp_slot;
	bool mp_unlinking; /* its primary's channels are letting go of it */
	/* A primary's detach waiting for its further controllers to go. */
	int mp_pending;
	void (*mp_then_cb)(void *arg, int rc);
	void *mp_then_arg;
	/* trid's changes (failover) against its reads by the path statistics (any reactor). */
	pthread_mutex_t path_lock;
	/* Error injections, kept across reconnects (bdev_nvme_inject.c). */
	struct nvme_inject inject[NVME_MAX_INJECT];
	int num_inject; /* active ones, read atomically: none costs the I/O path one load */
	/* The controller object the new connection replaced, shutting down. */
	struct mimo_nvme_detach_ctx *old_detach;
	TAILQ_ENTRY(nvme_bdev_ctrlr) link;
};

struct nvme_disk {
	struct mimo_bdev bdev;
	struct nvme_bdev_ctrlr *nbc;
	struct mimo_nvme_ns *ns;
	uint32_t nsid;
	bool removing; /* its deletion is under way (asked for and accepted) */
	bool delete_warned;
	/* Per-path statistics (io_path_stat), added to from any reactor under the lock. */
	pthread_mutex_t stat_lock;
	struct nvme_path_stat *stats;
	/* Multipath: the namespace through each controller of the name (mp_ns[0] unused: that
	 * is ns); the policy (bdev_nvme_set_multipath_policy) and preferred slot. */
	struct mimo_nvme_ns *mp_ns[NVME_MAX_MP];
	int policy;
	uint32_t min_io;
	uint32_t preferred;
	TAILQ_ENTRY(nvme_disk) link;
};

/* bdev_nvme_path_stat.c: kind 0 read, 1 write, 2 unmap. */
void nvme_path_stat_add(struct nvme_disk *d, const char *traddr, const char *trsvcid, int kind,
			uint64_t bytes, uint64_t ticks);
void nvme_path_stat_free(struct nvme_disk *d);

struct nvme_channel {
	struct nvme_bdev_ctrlr *nbc;
	struct mimo_nvme_qpair *qp;
	struct mimo_poller *poller;
	STAILQ_HEAD(, mimo_bdev_io) retry; /* waiting for a free command slot, or a connection */
	int64_t requeue_ns;
	/* The controller is reconnecting: no queue pair, none re-made, until it is back. */
	bool paused;
	struct bdev_nvme_group *group;	       /* this reactor's, for the statistics */
	STAILQ_HEAD(, nvme_deferred) deferred; /* injected errors completing later */
	/* Multipath (a primary's channel): this reactor's channels of the other controllers of
	 * the name, taken when first used; the round robin's place. */
	struct mimo_io_channel *mp_ch[NVME_MAX_MP];
	uint32_t rr_slot, rr_count;
	TAILQ_ENTRY(nvme_channel) group_link;
};

/*
 * Per reactor (SPDK's poll group): its NVMe channels and the counters of
 * bdev_nvme_get_transport_statistics. Written only by its reactor; read by the RPC's walk
 * on that reactor, so no locks.
 */
struct bdev_nvme_group {
	bool used;		     /* a channel was ever made here */
	uint64_t polls;		     /* pollings of a queue pair's socket */
	uint64_t idle_polls;	     /* ... that found nothing */
	uint64_t socket_completions; /* ... that found something (completions, data) */
	uint64_t nvme_completions;   /* commands completed */
	uint64_t submitted_requests; /* commands submitted */
	uint64_t queued_requests;    /* submissions that found the queue full and waited */
	TAILQ_HEAD(, nvme_channel) channels;
};

/* What an injection decided for one command (bdev_nvme_inject.c). */
struct nvme_inject_hit {
	int slot;
	bool do_not_submit;
	uint16_t status;
	uint64_t delay_ns;
};

/* bdev_nvme_failover.c: 0 when ctrlr's namespaces are those of nbc's bdevs, else -EINVAL. */
int bdev_nvme_same_namespaces(const struct nvme_bdev_ctrlr *nbc, struct mimo_nvme_ctrlr *ctrlr);

/* Whether a command of opc meets an injection now (its err_count taken). */
bool nvme_inject_match(struct nvme_bdev_ctrlr *nbc, uint8_t opc, struct nvme_inject_hit *hit);
/* Give back the count a command took and then could not be submitted (queue full). */
void nvme_inject_undo(struct nvme_bdev_ctrlr *nbc, const struct nvme_inject_hit *hit);

#define BDEV_NVME_MAX_GROUPS 64 /* reactors: the -m mask has 64 bits */

/* This reactor's group (reactor 0's when called off the reactors). */
struct bdev_nvme_group *bdev_nvme_group_get(void);
/* The group of reactor index i (the RPC's walk reads it on that reactor). */
struct bdev_nvme_group *bdev_nvme_group_of(uint32_t i);

TAILQ_HEAD(nbc_list, nvme_bdev_ctrlr);
extern struct nbc_list g_bdev_nvme_ctrlrs; /* reactor 0's */

#endif
