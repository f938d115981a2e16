/*
 * mimo/nvmf.h - the NVMe-oF target as a library: subsystems of bdev-backed namespaces served
 * over NVMe/TCP, in the process that calls it (mimo_tgt, or a test with an initiator beside it).
 *
 * Threads: a target belongs to the reactor that created it ("the target's reactor"). Every
 * call below is made there and every callback runs there. The target's reactor also runs the
 * controllers (admin queues, keep-alive, asynchronous events); I/O queues are spread over the
 * reactors of the target's reactor mask and never wait for the target's reactor, so an
 * initiator polling on any reactor, the target's included, cannot deadlock with it.
 *
 * Errors: 0 or a negative errno; callbacks get the same. JSON: a returned json_t * is a new
 * reference the caller releases with json_decref; a json_t * argument is borrowed.
 */
#ifndef MIMO_NVMF_H
#define MIMO_NVMF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/nvme_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mimo_nvmf_tgt;
struct mimo_nvmf_subsystem;

typedef void (*mimo_nvmf_done_cb)(void *cb_arg, int rc);

/* Register the nvmf_* RPC methods and the nvmf_* event types (mimo/jsonrpc.h,
 * "Registration"). */
void mimo_register_nvmf(void);

/* --- target ------------------------------------------------------------------------------- */

struct mimo_nvmf_tgt_opts {
	size_t opts_size;	 /* sizeof(struct mimo_nvmf_tgt_opts) */
	uint64_t reactor_mask;	 /* reactors (by index) that serve I/O queues: default all */
	uint32_t max_subsystems; /* default 1024, the discovery subsystem included */
};

void mimo_nvmf_tgt_opts_init(struct mimo_nvmf_tgt_opts *opts);

/* Create a target with its discovery subsystem. name: for lookups ("nvmf_tgt" in mimo_tgt).
 * Returns 0, -EEXIST (name taken), -ENOMEM, -EPERM (not on a reactor). */
int mimo_nvmf_tgt_create(const char *name, const struct mimo_nvmf_tgt_opts *opts,
			 struct mimo_nvmf_tgt **tgt);
/* Disconnect every host, delete every subsystem, close every listener, then free. */
void mimo_nvmf_tgt_destroy(struct mimo_nvmf_tgt *tgt, void (*cb)(void *cb_arg), void *cb_arg);
/* The most subsystems the target holds, its discovery subsystem included, as SPDK counts
 * (nvmf_set_max_subsystems); 0 is the default, 1024. -EBUSY when it has more already. */
int mimo_nvmf_tgt_set_max_subsystems(struct mimo_nvmf_tgt *tgt, uint32_t max_subsystems);
uint32_t mimo_nvmf_tgt_get_max_subsystems(const struct mimo_nvmf_tgt *tgt);
/* Command Retry Delay Times 1-3 (in 100 ms), reported in Identify Controller CRDT1-3
 * (nvmf_set_crdt; default 0). mimo's target never asks a host to delay a retry (it sets no
 * CRD in a completion), so these only tell hosts the times. */
void mimo_nvmf_tgt_set_crdt(struct mimo_nvmf_tgt *tgt, const uint16_t crdt[3]);
void mimo_nvmf_tgt_get_crdt(const struct mimo_nvmf_tgt *tgt, uint16_t crdt[3]);
/* The target of that name; NULL name: the first one created. */
struct mimo_nvmf_tgt *mimo_nvmf_tgt_find(const char *name);
const char *mimo_nvmf_tgt_get_name(const struct mimo_nvmf_tgt *tgt);

/* --- transports --------------------------------------------------------------------------- */

struct mimo_nvmf_transport_opts {
	size_t opts_size;
	uint32_t max_queue_depth;      /* I/O queue entries (default 128) */
	uint32_t max_aq_depth;	       /* admin queue entries (default 128) */
	uint32_t max_qpairs_per_ctrlr; /* admin + I/O queues (default 128) */
	uint32_t in_capsule_data_size; /* bytes (default 4096) */
	uint32_t max_io_size;	       /* bytes per command (default 131072) */
	uint32_t io_unit_size;	       /* bytes per H2CData PDU, MAXH2CDATA (default 131072) */
	uint32_t num_shared_buffers;   /* max_io_size buffers for transfers larger than the
					  in-capsule size, allocated as needed (default 511) */
	bool c2h_success;	       /* C2HData SUCCESS without a response when the host
					  disabled SQ flow control (default true) */
	bool zcopy; /* SPDK's zcopy: reads leave from, and writes land in, the memory of a bdev
		       that gives it (malloc) - a reader may then see a write's data before
		       it completes. Default true here; SPDK's default is false. */
	/* mimo's own (SPDK has no such options): what a hostile client can hold. */
	uint32_t connect_timeout_ms; /* a connection that has not sent ICReq and a successful
					Connect by then is closed (default 10000) */
	uint32_t max_connections_per_listener; /* more are accepted and closed at once; 0 (the
						  default): leave a quarter of the process's
						  file descriptors to everything else, which
						  is also the most it may be (-EMFILE) */
	/* SPDK's, with SPDK's meaning: */
	uint32_t kas;		   /* Keep Alive granularity reported, in 100 ms (default 1) */
	uint32_t min_kato_ms;	   /* a smaller KATO from a host is raised to it (default 0) */
	uint16_t masked_oncs;	   /* ONCS bits not reported, their commands refused */
	uint32_t sock_priority;	   /* SO_PRIORITY of host connections, 0-6 (default 0) */
	uint32_t acceptor_backlog; /* listen() backlog (default 512) */
	uint32_t buf_cache_size;   /* large buffers a poll group keeps (default: all) */
};

void mimo_nvmf_transport_opts_init(struct mimo_nvmf_transport_opts *opts);

/* "TCP", or "loop" (any case): the in-process transport mimo's initiator reaches with
 * trtype:loop (docs/nvmf.md; its TCP-only options must stay at their defaults). Returns 0,
 * -EEXIST (already added), -EINVAL (unknown type, options out of range), -ENOMEM. */
int mimo_nvmf_tgt_add_transport(struct mimo_nvmf_tgt *tgt, const char *trtype,
				const struct mimo_nvmf_transport_opts *opts);
/* The options a transport was created with; -ENOENT when it was not. */
int mimo_nvmf_tgt_get_transport(struct mimo_nvmf_tgt *tgt, const char *trtype,
				struct mimo_nvmf_transport_opts *opts);

/* --- subsystems --------------------------------------------------------------------------- */

struct mimo_nvmf_subsystem_opts {
	size_t opts_size;
	const char *serial_number; /* up to 20 ASCII characters (default "00000000000000000000") */
	const char *model_number;  /* up to 40 (default "mimo bdev Controller") */
	bool allow_any_host;
	uint32_t max_namespaces; /* default 32 */
	uint16_t min_cntlid;	 /* default 1 */
	uint16_t max_cntlid;	 /* default 0xffef */
	/* Limits reported to hosts in the NVM command set's Identify Controller (CNS 06h), so
	 * that they split their commands (the Linux host does): Dataset Management Range Size
	 * Limit in logical blocks, Write Zeroes Size Limit as a power of two of 4 KiB pages.
	 * 0 (the default): no limit. A command beyond them is still carried out whole. */
	uint32_t dmrsl;
	uint8_t wzsl;
	/* Asymmetric Namespace Access reporting (SPDK's ana_reporting): each listener has a
	 * state per ANA group, set with nvmf_subsystem_listener_set_ana_state (default false). */
	bool ana_reporting;
};

void mimo_nvmf_subsystem_opts_init(struct mimo_nvmf_subsystem_opts *opts);

/* A new, inactive subsystem: it takes no connections until started. Returns 0, -EEXIST,
 * -EINVAL (an NQN that is not nqn.yyyy-mm.reverse-domain:..., or over 223 bytes; a serial or
 * model number too long or not printable ASCII), -ENOSPC (max_subsystems reached). */
int mimo_nvmf_subsystem_create(struct mimo_nvmf_tgt *tgt, const char *nqn,
			       const struct mimo_nvmf_subsystem_opts *opts,
			       struct mimo_nvmf_subsystem **subsys);
/* Disconnect its hosts, close its namespaces, forget it. -EPERM for the discovery subsystem. */
int mimo_nvmf_subsystem_destroy(struct mimo_nvmf_subsystem *subsys, mimo_nvmf_done_cb cb,
				void *cb_arg);
struct mimo_nvmf_subsystem *mimo_nvmf_tgt_find_subsystem(struct mimo_nvmf_tgt *tgt,
							 const char *nqn);
const char *mimo_nvmf_subsystem_get_nqn(const struct mimo_nvmf_subsystem *subsys);

/* Start taking connections; stop disconnects every host and takes no more. */
void mimo_nvmf_subsystem_start(struct mimo_nvmf_subsystem *subsys, mimo_nvmf_done_cb cb,
			       void *cb_arg);
void mimo_nvmf_subsystem_stop(struct mimo_nvmf_subsystem *subsys, mimo_nvmf_done_cb cb,
			      void *cb_arg);

/* --- namespaces --------------------------------------------------------------------------- */

struct mimo_nvmf_ns_opts {
	size_t opts_size;
	uint32_t nsid; /* 0: the lowest free */
	bool has_uuid, has_nguid, has_eui64;
	uint8_t uuid[16];  /* default: the bdev's UUID */
	uint8_t nguid[16]; /* default: the UUID's bytes */
	uint8_t eui64[8];  /* default: none */
	/* SPDK's --no-auto-visible: no host sees the namespace until mimo_nvmf_ns_add_host
	 * names it (default false: every host the subsystem allows sees it). */
	bool no_auto_visible;
	/* Its ANA group, 1 to max_namespaces (default 0: its nsid, as SPDK). */
	uint32_t anagrpid;
};

void mimo_nvmf_ns_opts_init(struct mimo_nvmf_ns_opts *opts);

/*
 * Open bdev_name and serve it as a namespace; connected controllers get a namespace
 * attribute notice. Returns the nsid (> 0), or -ENODEV (no such bdev), -EEXIST (nsid taken),
 * -EINVAL (nsid above max_namespaces), -ENOSPC (no nsid free), -EBUSY (bdev claimed).
 */
int mimo_nvmf_subsystem_add_ns(struct mimo_nvmf_subsystem *subsys, const char *bdev_name,
			       const struct mimo_nvmf_ns_opts *opts);
/* Commands to it fail from now on; the bdev closes once its I/O in flight completed.
 * Controllers get a namespace attribute notice. Returns 0 or -ENOENT. */
int mimo_nvmf_subsystem_remove_ns(struct mimo_nvmf_subsystem *subsys, uint32_t nsid);

/*
 * Namespace visibility, as SPDK's nvmf_ns_add_host / nvmf_ns_remove_host: a namespace added
 * with no_auto_visible is seen only by the hosts named here - in Identify, the active
 * namespace list and I/O (others get Invalid Namespace). The controllers of the host get a
 * namespace attribute notice. On the target's reactor. Returns 0, -EINVAL (nsid 0, hostnqn
 * not an NQN), -ENOENT (no such namespace; on remove also: host not named), -EPERM (the
 * namespace is visible to every host), -EEXIST (already named), -ENOMEM.
 */
int mimo_nvmf_ns_add_host(struct mimo_nvmf_subsystem *subsys, uint32_t nsid, const char *hostnqn);
int mimo_nvmf_ns_remove_host(struct mimo_nvmf_subsystem *subsys, uint32_t nsid,
			     const char *hostnqn);

/* --- hosts -------------------------------------------------------------------------------- */

/* Returns 0, -EEXIST, -EINVAL (not an NQN). */
int mimo_nvmf_subsystem_add_host(struct mimo_nvmf_subsystem *subsys, const char *hostnqn);

/*
 * In-band authentication (DH-HMAC-CHAP, NVMe Base 2.0 8.13): a host given a key must
 * authenticate every queue before it may use it; given a controller key too, the controller
 * answers a host that asks it to prove itself (bidirectional authentication). Keys are names
 * in the keyring (keyring.h: keyring_file_add_key), read when a queue authenticates.
 */
struct mimo_nvmf_host_opts {
	size_t opts_size;
	const char *dhchap_key;	      /* the host's secret, by keyring name; NULL: none */
	const char *dhchap_ctrlr_key; /* the controller's, by name; needs dhchap_key */
	/* TLS (NVMe/TCP secure channel): the host's PSK (NVMeTLSkey-1), by keyring name. A host
	 * with a PSK connects through secure listeners only (docs/nvmf.md). NULL: none. */
	const char *psk;
};

void mimo_nvmf_host_opts_init(struct mimo_nvmf_host_opts *opts);
/* Returns 0, -EEXIST, -EINVAL (not an NQN, a controller key without a host key), -ENOKEY (no
 * key of that name), -EKEYREJECTED (a key that is not a DH-HMAC-CHAP secret, or a psk that is
 * not a TLS PSK). */
int mimo_nvmf_subsystem_add_host_ext(struct mimo_nvmf_subsystem *subsys, const char *hostnqn,
				     const struct mimo_nvmf_host_opts *opts);
/* Replace a listed host's keys (NULL: none; both NULL: the host no longer authenticates).
 * Queues authenticate with the new keys from their next transaction on. Returns 0, -ENOENT
 * (host not listed), and the key errors of add_host_ext. */
int mimo_nvmf_subsystem_set_keys(struct mimo_nvmf_subsystem *subsys, const char *hostnqn,
				 const char *dhchap_key, const char *dhchap_ctrlr_key);
/* The hash functions and DH groups a target accepts, as masks of 1 << HashID (SHA-256 1,
 * SHA-384 2, SHA-512 3) and 1 << DHgID (null 0, ffdhe2048 1 .. ffdhe8192 5). Default: all.
 * -EINVAL for an empty mask or unknown bits. */
int mimo_nvmf_tgt_set_dhchap(struct mimo_nvmf_tgt *tgt, uint32_t digests, uint32_t dhgroups);
void mimo_nvmf_tgt_get_dhchap(const struct mimo_nvmf_tgt *tgt, uint32_t *digests,
			      uint32_t *dhgroups);
/* Also disconnects that host's controllers. Returns 0 or -ENOENT. */
int mimo_nvmf_subsystem_remove_host(struct mimo_nvmf_subsystem *subsys, const char *hostnqn);
void mimo_nvmf_subsystem_allow_any_host(struct mimo_nvmf_subsystem *subsys, bool allow);
bool mimo_nvmf_subsystem_host_allowed(const struct mimo_nvmf_subsystem *subsys,
				      const char *hostnqn);

/* --- listeners ---------------------------------------------------------------------------- */

struct mimo_nvmf_listen_addr {
	char trtype[8];	  /* "TCP", or "loop" */
	char adrfam[8];	  /* "IPv4" (default) or "IPv6"; loop: "" or "loop" */
	char traddr[257]; /* loop: the listener's name, unique in the process */
	char trsvcid[33]; /* default "4420"; loop: "" */
};

/* Listen on addr for this subsystem (the port opens on first use; trsvcid "0" picks a free
 * port, which addr then holds on success). cb runs before this returns and gets 0, -EADDRINUSE,
 * -EADDRNOTAVAIL, -ENOENT (no transport of that type), -EEXIST (already listening for this
 * subsystem), -EINVAL. */
void mimo_nvmf_subsystem_add_listener(struct mimo_nvmf_subsystem *subsys,
				      struct mimo_nvmf_listen_addr *addr, mimo_nvmf_done_cb cb,
				      void *cb_arg);
/*
 * The same with options: secure_channel makes the port TLS-only (TLS 1.3 with the PSKs of the
 * hosts, NVMe/TCP's secure channel); a port is secure or plain for every subsystem on it, and a
 * listener that asks for the other kind gets -EPROTOTYPE. The discovery subsystem cannot ask
 * for a secure channel (-EINVAL: it has no hosts, so no PSKs), nor can a loop listener
 * (-EINVAL: TLS secures a TCP connection, and loop has none).
 */
/* How a plain TCP listener's connections move bytes (SPDK's listener sock_impl). */
enum mimo_nvmf_sock_impl {
	MIMO_NVMF_SOCK_IMPL_DEFAULT, /* as sock_set_default_impl says when the port opens */
	MIMO_NVMF_SOCK_IMPL_POSIX,   /* epoll and readv/sendmsg */
	MIMO_NVMF_SOCK_IMPL_URING,   /* the reactor's io_uring */
};

struct mimo_nvmf_listener_opts {
	size_t opts_size;
	bool secure_channel;
	enum mimo_nvmf_sock_impl sock_impl; /* plain TCP only; a secure channel is TLS */
};
void mimo_nvmf_listener_opts_init(struct mimo_nvmf_listener_opts *opts);
void mimo_nvmf_subsystem_add_listener_ext(struct mimo_nvmf_subsystem *subsys,
					  struct mimo_nvmf_listen_addr *addr,
					  const struct mimo_nvmf_listener_opts *opts,
					  mimo_nvmf_done_cb cb, void *cb_arg);
/* Hosts connected through it are disconnected; the port closes when no subsystem uses it. */
void mimo_nvmf_subsystem_remove_listener(struct mimo_nvmf_subsystem *subsys,
					 const struct mimo_nvmf_listen_addr *addr,
					 mimo_nvmf_done_cb cb, void *cb_arg);

/* --- state as JSON (the RPC results) ----------------------------------------------------- */

/* nvmf_get_subsystems: every subsystem, or the one named (NULL if none). */
json_t *mimo_nvmf_tgt_subsystems_json(struct mimo_nvmf_tgt *tgt, const char *nqn);
/* nvmf_subsystem_get_controllers. */
json_t *mimo_nvmf_subsystem_controllers_json(struct mimo_nvmf_subsystem *subsys);
/* nvmf_subsystem_get_qpairs: every queue of every controller, with its authentication. */
json_t *mimo_nvmf_subsystem_qpairs_json(struct mimo_nvmf_subsystem *subsys);
/* nvmf_get_transports. */
json_t *mimo_nvmf_tgt_transports_json(struct mimo_nvmf_tgt *tgt);
/* save_config's "nvmf" subsystem: the {method, params} that re-create the target. */
json_t *mimo_nvmf_tgt_config_json(struct mimo_nvmf_tgt *tgt);

/*
 * The process' NVMe-oF target counters, every target summed, readable from any thread (the
 * metrics endpoint): controllers that exist now; queue pairs now, as nvmf_get_stats counts
 * them (connected admin and I/O queues, and those accepted whose Connect has not succeeded);
 * commands answered on I/O queues since the start, those with an error status, and those the
 * bdev had no resources for (retried).
 */
struct mimo_nvmf_stats {
	uint64_t controllers;
	uint64_t admin_qpairs, io_qpairs, unassociated_qpairs;
	uint64_t io_commands, io_command_errors;
	uint64_t bdev_retries;
};
void mimo_nvmf_get_stats(struct mimo_nvmf_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_NVMF_H */
