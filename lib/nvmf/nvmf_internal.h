/*
 * The NVMe-oF target's private structures, shaped like the kernel's nvmet: a target owns
 * subsystems (namespaces, hosts, listeners), controllers and a list of transports; each
 * transport owns its listeners (ports), per-reactor poll groups and queue pairs; a request is
 * one command on a queue pair. The core (everything but tcp*.c and loop.c) reaches a
 * transport only through its ops table (transport.h), and sees only the core's part of the
 * transport's structures (struct nvmf_qpair, nvmf_req, nvmf_port, nvmf_poll_group below).
 *
 * Who owns what (no locks on the I/O path):
 *  - The target's reactor: the target, its subsystems, their namespace tables (writes),
 *    hosts, listeners, ports, controllers and everything admin commands touch.
 *  - A queue pair's reactor: the queue pair, its requests, its socket, its poll group.
 *  - Namespaces are read from any reactor through an atomic pointer table; each reactor keeps
 *    its own bdev channel and in-flight count in the namespace (one cache line per reactor),
 *    so removing one drains every reactor before the bdev closes.
 * Cross-reactor work goes by message; a queue pair is freed only after its controller let
 * go of it and its last request came back.
 */
#ifndef MIMO_NVMF_INTERNAL_H
#define MIMO_NVMF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>

#include "compiler.h"
#include "mimo/bdev.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"

#define NVMF_MAX_REACTORS      64
#define NVMF_NUM_AER	       4
#define NVMF_CHANGED_NS_MAX    1024
#define NVMF_ADMIN_ICD	       8192 /* in-capsule data every admin queue accepts */
#define NVMF_ERROR_LOG_ENTRIES 16
#define NVMF_DISC_KATO_MS      120000 /* a discovery controller connected with KATO 0 */
#define NVMF_MIN_KATO_MS       100
/* Optional NVM commands: Compare (bit 0), Dataset Management (2), Write Zeroes (3). */
#define NVMF_ONCS	    ((1u << 0) | (1u << 2) | (1u << 3))
#define NVMF_DEFAULT_MODEL  "mimo bdev Controller"
#define NVMF_DEFAULT_SERIAL "00000000000000000000"

struct mimo_nvmf_tgt;
struct mimo_nvmf_subsystem;
struct nvmf_ctrlr;
struct nvmf_qpair;
struct nvmf_req;
struct nvmf_transport;
struct nvmf_poll_group;
struct nvmf_port;

/* --- namespaces ---------------------------------------------------------------------------- */

struct nvmf_ns_reactor {
	struct mimo_io_channel *ch; /* this reactor's channel, taken on first use */
	uint32_t inflight;
	bool draining; /* removed: put the channel once inflight reaches 0 */
} __attribute__((aligned(MIMO_CACHELINE)));

struct nvmf_ns {
	uint32_t nsid;
	struct mimo_nvmf_subsystem *subsys;
	struct mimo_bdev_desc *desc;
	struct mimo_bdev *bdev;
	char *bdev_name;
	uint32_t block_size;
	uint32_t block_shift; /* log2(block_size) */
	uint64_t num_blocks;
	uint8_t uuid[16];
	uint8_t nguid[16];
	uint8_t eui64[8];
	bool has_eui64;
	bool opt_uuid, opt_nguid; /* given by the user (saved in the configuration) */
	/* Visible to every host, or (no_auto_visible) only to the hosts listed; the list is the
	 * target reactor's, the I/O path reads each controller's bitmap (nvmf_ctrlr). */
	bool auto_visible;
	/* Its ANA group (1 to max_nsid; the nsid unless set): written on the target's reactor,
	 * read by the I/O path to find the path's ANA state. */
	_Atomic uint32_t anagrpid;
	TAILQ_HEAD(, nvmf_host) visible_hosts;
	atomic_int draining_reactors;
	void (*drained)(struct nvmf_ns *ns);
	struct nvmf_ns_reactor per_reactor[NVMF_MAX_REACTORS];
};

/* --- subsystems ---------------------------------------------------------------------------- */

struct mimo_key;

/* A host a subsystem allows (or a namespace is visible to: then without keys). */
struct nvmf_host {
	char nqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	/* DH-HMAC-CHAP: with dhchap_key, every queue of this host must authenticate;
	 * dhchap_ctrlr_key answers a host that asks the controller to prove itself. */
	struct mimo_key *dhchap_key;
	struct mimo_key *dhchap_ctrlr_key;
	/* TLS: this host connects only over a secure channel, with this PSK (NVMeTLSkey-1). */
	struct mimo_key *psk;
	uint64_t auth_failures; /* queues of this host that did not authenticate */
	bool failure_logged;	/* one line per host until it authenticates again */
	TAILQ_ENTRY(nvmf_host) link;
};

struct nvmf_subsys_listener {
	struct nvmf_port *port;
	/* With ANA reporting: this path's state per ANA group ([max_nsid], MIMO_NVME_ANA_*),
	 * and the number of times it changed (the ANA log's change count). */
	uint8_t *ana_state;
	uint64_t ana_chgcnt;
	TAILQ_ENTRY(nvmf_subsys_listener) link;
};

enum nvmf_subsys_state {
	NVMF_SUBSYS_INACTIVE,
	NVMF_SUBSYS_ACTIVE,
	NVMF_SUBSYS_DELETING,
};

struct mimo_nvmf_subsystem {
	struct mimo_nvmf_tgt *tgt;
	char nqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	uint8_t subtype; /* MIMO_NVMF_SUBTYPE_NVME or _DISCOVERY */
	enum nvmf_subsys_state state;
	char sn[21];
	char mn[41];
	bool allow_any_host;
	uint16_t min_cntlid, max_cntlid, next_cntlid;
	uint32_t max_nsid;
	uint32_t dmrsl;	    /* reported in Identify CNS 06h (mimo_nvmf_subsystem_opts) */
	bool ana_reporting; /* Asymmetric Namespace Access: per listener and ANA group states */
	uint8_t wzsl;
	uint32_t num_ns;
	_Atomic(struct nvmf_ns *) *ns; /* [max_nsid], by nsid - 1 */
	TAILQ_HEAD(, nvmf_host) hosts;
	TAILQ_HEAD(, nvmf_subsys_listener) listeners;
	TAILQ_HEAD(, nvmf_ctrlr) ctrlrs;
	/* Deletion waits for every controller to go. */
	mimo_nvmf_done_cb destroy_cb;
	void *destroy_arg;
	TAILQ_ENTRY(mimo_nvmf_subsystem) link;
};

/* On any reactor: the namespace, or NULL (unknown or being removed). */
static inline struct nvmf_ns *nvmf_subsystem_get_ns(const struct mimo_nvmf_subsystem *s,
						    uint32_t nsid)
{
	if (nsid == 0 || nsid > s->max_nsid)
		return NULL;
	return atomic_load_explicit(&s->ns[nsid - 1], memory_order_acquire);
}

bool nvmf_nqn_is_valid(const char *nqn);
struct nvmf_host *nvmf_subsystem_find_host(const struct mimo_nvmf_subsystem *s, const char *nqn);
/* Put a host entry's keys and free it. */
void nvmf_host_free(struct nvmf_host *h);
bool nvmf_subsystem_listens_on(const struct mimo_nvmf_subsystem *s, const struct nvmf_port *port);
void nvmf_subsystem_ctrlr_gone(struct mimo_nvmf_subsystem *s);
void nvmf_subsystem_free(struct mimo_nvmf_subsystem *s);
/* The next free controller ID, or 0 when none is left. */
uint16_t nvmf_subsystem_alloc_cntlid(struct mimo_nvmf_subsystem *s);

/* --- target -------------------------------------------------------------------------------- */

/* nvmf_get_stats' counters of one reactor (SPDK's poll group statistics). Only that reactor
 * writes them, with a relaxed load and store (no locked instruction on the I/O path); the RPC
 * reactor reads them. */
struct nvmf_reactor_stat {
	_Atomic uint32_t admin_qpairs, io_qpairs; /* connected since start */
	_Atomic uint32_t current_admin_qpairs, current_io_qpairs;
	_Atomic uint32_t current_unassociated_qpairs; /* served here, not connected (yet) */
	_Atomic uint64_t pending_bdev_io;   /* commands the bdev had no resources for, retried */
	_Atomic uint64_t completed_nvme_io; /* commands answered on I/O queues */
	_Atomic uint64_t failed_nvme_io;    /* those answered with an error status (metrics) */
} __attribute__((aligned(MIMO_CACHELINE)));

#define NVMF_STAT_ADD(field, d)                                                           \
	atomic_store_explicit(&(field),                                                   \
			      atomic_load_explicit(&(field), memory_order_relaxed) + (d), \
			      memory_order_relaxed)

/* A discovery log entry the target points hosts to (nvmf_discovery_add_referral). */
struct nvmf_referral {
	struct mimo_nvmf_listen_addr addr;
	char subnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	bool secure_channel;
	TAILQ_ENTRY(nvmf_referral) link;
};

struct mimo_nvmf_tgt {
	char *name;
	struct mimo_nvmf_tgt_opts opts;
	struct mimo_reactor *reactor;
	TAILQ_HEAD(, mimo_nvmf_subsystem) subsystems;
	uint32_t num_subsystems;
	struct mimo_nvmf_subsystem *discovery;
	TAILQ_HEAD(, nvmf_transport) transports; /* transport.h: TCP, loop */
	/* DH-HMAC-CHAP: what nvmf_set_config allows (1 << HashID, 1 << DHgID) and the
	 * sequence numbers of challenges (random start, never 0). */
	uint32_t dhchap_digests;
	uint32_t dhchap_dhgroups;
	uint32_t auth_seqnum;
	uint64_t discovery_genctr;
	TAILQ_HEAD(, nvmf_referral) referrals; /* in the order added */
	struct nvmf_reactor_stat *stat;	       /* [NVMF_MAX_REACTORS], cache-line aligned */
	uint16_t crdt[3];		       /* nvmf_set_crdt: reported in Identify Controller */
	/* TLS PSKs by (host, subsystem), for the handshakes of every reactor (nvmf_tgt_psk_*). */
	pthread_mutex_t psk_lock;
	TAILQ_HEAD(, nvmf_psk) psks;
	atomic_uint next_reactor; /* round robin over reactor_mask (any thread: loop hosts) */
	/* Connections placed on each reactor (placement.c) that have not reached it yet. */
	_Atomic uint32_t placing[NVMF_MAX_REACTORS];
	bool destroying;
	void (*destroy_cb)(void *arg);
	void *destroy_arg;
	TAILQ_ENTRY(mimo_nvmf_tgt) link;
};

/* A host's TLS PSK in a subsystem, as the handshakes on any reactor find it. */
struct nvmf_psk {
	char hostnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	char subnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	struct mimo_key *key; /* a reference of its own */
	TAILQ_ENTRY(nvmf_psk) link;
};

/* On the target's reactor: set (key non-NULL, a new reference is taken) or drop the PSK of a
 * host in a subsystem. 0 or -ENOMEM. */
int nvmf_tgt_psk_set(struct mimo_nvmf_tgt *tgt, const char *subnqn, const char *hostnqn,
		     struct mimo_key *key);
/* From any reactor: a new reference to the PSK of that host in that subsystem (the caller
 * puts it), or NULL when it has none. What the key becomes in TLS is the transport's. */
struct mimo_key *nvmf_tgt_psk_get(struct mimo_nvmf_tgt *tgt, const char *subnqn,
				  const char *hostnqn);

/* A referral as SPDK shows and saves it (nvmf_referral_rpc.c). */
json_t *nvmf_referral_json(const struct nvmf_referral *r);
/* A subsystem, host, listener or namespace changed: discovery controllers hear of it. */
void nvmf_tgt_discovery_changed(struct mimo_nvmf_tgt *tgt);
/* A subsystem (or the last discovery controller) is gone: a target being destroyed goes on. */
void nvmf_tgt_subsystem_removed(struct mimo_nvmf_tgt *tgt);
struct mimo_reactor *nvmf_tgt_next_reactor(struct mimo_nvmf_tgt *tgt);
/* placement.c: the reactor a new connection goes to (the least load, an I/O queue pair or a
 * connection not connected yet counting two, an admin queue pair one), from any thread. Its reactor
 * calls nvmf_tgt_qpair_arrived once the queue pair is counted in its poll group, or was dropped
 * before. */
struct mimo_reactor *nvmf_tgt_place_qpair(struct mimo_nvmf_tgt *tgt);
void nvmf_tgt_qpair_arrived(struct mimo_nvmf_tgt *tgt);
static inline bool nvmf_on_tgt_reactor(const struct mimo_nvmf_tgt *tgt)
{
	return mimo_reactor_current() == tgt->reactor;
}

/* --- controllers --------------------------------------------------------------------------- */

struct nvmf_ctrlr {
	struct mimo_nvmf_subsystem *subsys;
	uint16_t cntlid;
	char hostnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	uint8_t hostid[16];
	char traddr[64]; /* the host's address, for events and RPCs */
	char trsvcid[8];
	struct nvmf_port *port;

	struct nvmf_qpair *admin_qp;
	struct nvmf_qpair **io_qps; /* [max_qpairs], by qid */
	/* Bit nsid - 1: this host may see that namespace when it is not visible to all. Set on
	 * the target's reactor, read by the I/O path on any reactor. */
	_Atomic uint64_t *visible_ns;
	uint32_t max_qpairs;
	uint32_t num_io_qps;
	uint32_t num_io_queues; /* granted by Set Features Number of Queues */

	uint32_t cc, csts;
	uint32_t kato_ms;
	uint64_t last_keep_alive;
	struct mimo_poller *ka_poller;

	uint32_t aen_config;
	struct nvmf_req *aer[NVMF_NUM_AER];
	uint32_t num_aer;
	bool ns_notice_pending, ns_notice_masked;
	bool disc_notice_pending, disc_notice_masked;
	bool ana_notice_pending, ana_notice_masked;
	/* With ANA reporting: the states of the listener it came through, per ANA group, and
	 * their change count (copied by the target's reactor when they change; the I/O path
	 * of any reactor reads a state with a relaxed load). */
	_Atomic uint8_t *ana_state;
	uint64_t ana_chgcnt;
	uint32_t changed_ns[NVMF_CHANGED_NS_MAX];
	uint32_t num_changed_ns; /* > NVMF_CHANGED_NS_MAX: overflowed */

	bool vwc_enabled;
	/* Features with nothing behind them here, kept so that what a host sets reads back
	 * (spdk_nvme_identify asks for all of them). */
	uint32_t arbitration, power_mgmt, error_recovery, write_atomicity;
	uint16_t temp_over, temp_under; /* composite temperature thresholds, kelvin */
	uint64_t error_count;
	struct mimo_nvme_error_log_entry errors[NVMF_ERROR_LOG_ENTRIES];

	uint64_t start_ticks;
	bool disconnecting;
	/* The host was told of (log, nvmf_host_connected): at Connect, or once the admin queue
	 * authenticated when it must. */
	bool announced;
	TAILQ_ENTRY(nvmf_ctrlr) link;
};

static inline bool nvmf_ctrlr_sees(const struct nvmf_ctrlr *c, const struct nvmf_ns *ns)
{
	uint32_t bit = ns->nsid - 1;

	return ns->auto_visible ||
	       ((atomic_load_explicit(&c->visible_ns[bit / 64], memory_order_relaxed) >>
		 (bit % 64)) &
		1);
}

/* On any reactor: the namespace, if it exists and this controller's host may see it. */
static inline struct nvmf_ns *nvmf_ctrlr_get_ns(const struct nvmf_ctrlr *c, uint32_t nsid)
{
	struct nvmf_ns *ns = nvmf_subsystem_get_ns(c->subsys, nsid);

	return ns != NULL && nvmf_ctrlr_sees(c, ns) ? ns : NULL;
}

/* On the target's reactor: this controller's bit for nsid, and its notice if it changed. */
void nvmf_ctrlr_set_visible(struct nvmf_ctrlr *c, uint32_t nsid, bool visible);

/* On the target's reactor. */
void nvmf_ctrlr_connect(struct nvmf_req *req);
void nvmf_ctrlr_process_admin(struct nvmf_req *req);
void nvmf_ctrlr_process_fabrics(struct nvmf_req *req);
/* Authentication Send and Receive (ctrlr.c, with auth.c's state machine). */
void nvmf_ctrlr_process_auth(struct nvmf_req *req);
/* Tear a controller down: every queue disconnects; it is freed when the last one is gone. */
void nvmf_ctrlr_disconnect(struct nvmf_ctrlr *ctrlr);
/* A queue pair of the controller closed (message from its reactor). */
void nvmf_ctrlr_qpair_gone(struct nvmf_ctrlr *ctrlr, struct nvmf_qpair *qp);
/* The namespace was added or removed: the controllers that see it get a notice. */
void nvmf_ctrlr_ns_changed(struct mimo_nvmf_subsystem *s, const struct nvmf_ns *ns);
void nvmf_ctrlr_discovery_changed(struct nvmf_ctrlr *ctrlr);
/* The host read log page lid; without RAE its notices are re-armed (and the list cleared). */
void nvmf_ctrlr_log_read(struct nvmf_ctrlr *ctrlr, uint8_t lid, bool rae);
void nvmf_ctrlr_log_error(struct nvmf_ctrlr *ctrlr, struct nvmf_req *req);
void nvmf_ctrlr_emit(const struct nvmf_ctrlr *ctrlr, const char *type);

/* admin_cmd.c */
void nvmf_admin_identify(struct nvmf_req *req);
void nvmf_admin_get_log_page(struct nvmf_req *req);
void nvmf_admin_get_features(struct nvmf_req *req);
void nvmf_admin_set_features(struct nvmf_req *req);
uint64_t nvmf_ctrlr_cap(const struct nvmf_ctrlr *ctrlr);

/* ana.c: Asymmetric Namespace Access. */
const char *nvmf_ana_state_name(uint8_t state);
/* "optimized", "non_optimized", "inaccessible" (any case): the state, or 0. */
uint8_t nvmf_ana_state_parse(const char *name);
/* The ANA log page as controller c sees it (its path's states); rgo: groups only. */
void *nvmf_ana_log(const struct nvmf_ctrlr *c, bool rgo, size_t *len);
/* On the target's reactor: set the state of a listener for one ANA group (0: all); its
 * controllers get the new states and an ANA change notice. -ENOENT (not a listener of s),
 * -EINVAL (group out of range, or no ANA reporting). */
int nvmf_subsystem_set_ana_state(struct mimo_nvmf_subsystem *s, const struct nvmf_port *port,
				 uint8_t state, uint32_t anagrpid);
/* Move a namespace to another ANA group (1 to max_nsid); every controller hears of it.
 * -ENOENT (no such namespace), -EINVAL. */
int nvmf_subsystem_set_ns_ana_group(struct mimo_nvmf_subsystem *s, uint32_t nsid,
				    uint32_t anagrpid);
/* A new listener's states (every group optimized); -ENOMEM. */
int nvmf_listener_ana_init(const struct mimo_nvmf_subsystem *s, struct nvmf_subsys_listener *l);
/* A new controller's copy of its listener's states; -ENOMEM. */
int nvmf_ctrlr_ana_init(struct nvmf_ctrlr *c);
/* ctrlr.c: the controller's path changed state: copy the listener's, tell the host. */
void nvmf_ctrlr_ana_changed(struct nvmf_ctrlr *c, const struct nvmf_subsys_listener *l);
/* The listener of s on port, or NULL. */
struct nvmf_subsys_listener *nvmf_subsystem_find_listener(const struct mimo_nvmf_subsystem *s,
							  const struct nvmf_port *port);

/* discovery.c: the log for a host, as one buffer (header + entries). */
void *nvmf_discovery_log(struct mimo_nvmf_tgt *tgt, const char *hostnqn, size_t *len);

/* io_cmd.c: on the queue pair's reactor. */
void nvmf_io_exec(struct nvmf_req *req);
/*
 * Whether a command may run without a data buffer, its data then read in place from the
 * bdev's memory (a Read on an I/O queue of a namespace whose bdev allows zero-copy reads).
 * The transport asks before it allocates, sets req->zcopy, and calls nvmf_req_zcopy_end when
 * it no longer needs req->data (sent, or dropped), on the queue pair's reactor.
 */
bool nvmf_req_zcopy_possible(struct nvmf_req *req);
/*
 * A Write whose data may land in the bdev's memory (no buffer, no copy by the bdev): called
 * once the command and req->data_len (the SGL's length) are known and before any of its data
 * is placed. true: req->data is where the data goes, and every check the command would meet
 * in nvmf_io_exec has passed already (none runs again after the data, so data in the bdev
 * never belongs to a refused command); nvmf_req_exec commits it once the data is in, and
 * nvmf_req_zcopy_end drops it if the data never all comes. false: give it a buffer.
 */
bool nvmf_req_zcopy_write_start(struct nvmf_req *req);
/* The transport is done with req->data: a zero-copy read's was sent, or a zero-copy write's
 * will never all come (a write already committed has nothing left to end). */
void nvmf_req_zcopy_end(struct nvmf_req *req);

/* --- queue pairs and requests, as the core sees them --------------------------------------- */

/*
 * A transport's structures embed these (transport.h): the core reads and writes only the
 * fields below, and reaches everything else through the transport's ops table.
 */

/* A listener: one per (transport, address); subsystems share it. On the target's reactor.
 * The transport frees it (nvmf_port_unlink first) once it is closed and the last of its
 * connections is gone: queue pairs point to the port they came through. */
struct nvmf_port {
	struct mimo_nvmf_listen_addr addr;
	struct nvmf_transport *tt;
	uint32_t refs; /* subsystems listening on it */
	uint16_t portid;
	/* A secure channel only (listener option secure_channel; TCP: TLS 1.3 with the hosts'
	 * PSKs before the first PDU), for every subsystem on it. */
	bool secure;
	/* As the listener asked (enum mimo_nvmf_sock_impl): what save_config says. */
	uint8_t sock_impl;
	/* The default socket layer when it opened (enum mimo_sock_impl): a listener that
	 * followed the default keeps what it gave then, whatever sock_set_default_impl says
	 * later, so save_config names it when the default has changed since. */
	uint8_t default_impl;
	bool closed;
	TAILQ_ENTRY(nvmf_port) link;
};

/* One per transport and reactor that serves queue pairs of it. */
struct nvmf_poll_group {
	struct nvmf_transport *tt;
	struct mimo_reactor *reactor;
	uint32_t reactor_index;
	TAILQ_HEAD(, nvmf_qpair) qpairs;
	STAILQ_HEAD(, nvmf_req) retry;	  /* the bdev said -ENOMEM: submit again */
	struct mimo_poller *retry_poller; /* while retry is not empty */
};

enum nvmf_qpair_state {
	NVMF_QP_AWAIT_IC,	/* the transport's own handshake (TCP: TLS, ICReq) is not done */
	NVMF_QP_AWAIT_CONNECT,	/* the first command must be Connect */
	NVMF_QP_CONNECTING,	/* Connect is with the target's reactor */
	NVMF_QP_AUTHENTICATING, /* connected; only authentication commands until it succeeds */
	NVMF_QP_RUNNING,
	NVMF_QP_CLOSING,
};

struct nvmf_qpair {
	struct nvmf_transport *tt;
	struct nvmf_poll_group *group; /* its reactor's */
	struct nvmf_port *port;	       /* the listener it came through (outlives us) */
	enum nvmf_qpair_state state;
	uint16_t qid;
	uint16_t sqsize; /* 0's based, from Connect */
	uint16_t sqhd;
	bool sq_fc_disabled;
	struct nvmf_ctrlr *ctrlr;
	struct mimo_nvmf_subsystem *subsys;
	/* In-band authentication: the target reactor's (allocated at a Connect that requires
	 * it, or at the host's first authentication command; freed when the queue leaves its
	 * controller). Never touched on the queue pair's reactor. */
	struct nvmf_auth *auth;
	/* The secure channel the queue pair came through: the host and subsystem its key was
	 * found by (TCP: the TLS PSK identity's NQNs), set by the transport before the first
	 * command and valid as long as the queue pair. NULL: no secure channel. Connect checks
	 * them against the host (ctrlr.c). */
	const char *secure_hostnqn;
	const char *secure_subnqn;
	uint32_t outstanding;  /* requests the transport handed out and did not take back */
	bool connect_pending;  /* Connect is with the target's reactor */
	bool ctrlr_released;   /* the controller let go of it */
	bool close_after_send; /* Disconnect answered, or authentication failed: close once sent */
	bool free_scheduled;
	bool stat_counted;	/* in its reactor's current_admin/io_qpairs */
	bool stat_unassociated; /* in its reactor's current_unassociated_qpairs */
	char traddr[64];	/* the host's address, for logs, events and RPCs */
	char trsvcid[8];
	/* How its bytes move (TCP: "posix", "uring", "ssl"; NULL: no socket), set by the
	 * transport before the queue pair is served and never changed: nvmf_subsystem_get_qpairs
	 * shows it, so a uring listener's connection that fell back to epoll is seen. */
	const char *sock_impl;
	TAILQ_ENTRY(nvmf_qpair) link; /* its poll group's */
};

/* The listener the queue pair came through, if it still listens. */
static inline struct nvmf_port *nvmf_qpair_port(const struct nvmf_qpair *qp)
{
	return qp->port != NULL && !qp->port->closed ? qp->port : NULL;
}

struct nvmf_req {
	struct nvmf_qpair *qp;
	struct mimo_nvme_cmd cmd;
	struct mimo_nvme_cpl cpl;
	uint8_t *data; /* data_len bytes, the transport's: in-capsule, fetched, or to be sent */
	uint32_t data_len;
	uint8_t auth_event;   /* an authentication command's outcome (enum nvmf_auth_event) */
	struct nvmf_ns *ns;   /* counted in flight on its reactor */
	uint32_t sub_pending; /* DSM ranges, compare reads */
	int sub_status;
	void *aux; /* compare: the read-back buffer; Connect: the controller */
	/* Set by the transport before exec: a Read may leave data pointing at the bdev's own
	 * memory (no buffer given). zcopy_io then holds that memory, and ns stays counted in
	 * flight, until the transport calls nvmf_req_zcopy_end once the data is sent. A Write
	 * started by nvmf_req_zcopy_write_start holds zcopy_io (and ns) from before its data
	 * until exec commits it; zcopy stays false for it. */
	bool zcopy;
	struct mimo_bdev_io *zcopy_io;
	STAILQ_ENTRY(nvmf_req) link; /* the poll group's retry list */
};

/* The core's fields of a request the transport takes for a new command. */
static inline void nvmf_req_clear(struct nvmf_req *req)
{
	req->data = NULL;
	req->data_len = 0;
	req->auth_event = 0;
	req->ns = NULL;
	req->aux = NULL;
	req->zcopy = false;
	req->zcopy_io = NULL;
	memset(&req->cpl, 0, sizeof(req->cpl));
}

static inline bool nvmf_cmd_is_fabrics(const struct mimo_nvme_cmd *cmd, uint8_t fctype)
{
	return cmd->opc == MIMO_NVME_OPC_FABRIC &&
	       ((const struct mimo_nvmf_connect_cmd *)cmd)->fctype == fctype;
}

/* 1: host to controller, 2: controller to host, 0: none (3, both, is invalid). */
static inline uint8_t nvmf_cmd_xfer_dir(const struct mimo_nvme_cmd *cmd)
{
	if (cmd->opc == MIMO_NVME_OPC_FABRIC)
		return ((const struct mimo_nvmf_connect_cmd *)cmd)->fctype & 3;
	return cmd->opc & 3;
}

/* request.c: what a command is and where it goes. On the queue pair's reactor. */

/*
 * A command arrived on its queue pair (req->cmd set, nothing else yet): advance the SQ head,
 * check that the queue's state and the command's form allow it. Returns its data direction
 * (nvmf_cmd_xfer_dir) for the transport to fetch or place data, or -1 when the request has
 * been completed with an error already. damaged: the transport found the capsule's data
 * corrupt (TCP's data digest): it fails with Transient Transport Error.
 */
int nvmf_req_init(struct nvmf_req *req, bool damaged);
/* The data is in (req->data, req->data_len): run the command - here (I/O), or on the
 * target's reactor (admin, Fabrics). It completes through the transport's queue_response. */
void nvmf_req_exec(struct nvmf_req *req);
/* Finish a request from any reactor: its response goes out on its queue pair's reactor.
 * req->cpl holds the status. */
void nvmf_req_complete(struct nvmf_req *req);
/* Set the status and complete (on the queue pair's reactor). */
void nvmf_req_fail(struct nvmf_req *req, uint8_t sct, uint8_t sc);
/* The bdev was out of resources: submit again on a later turn of this reactor. */
void nvmf_req_retry_later(struct nvmf_req *req);
/* The queue pair is closing: its requests waiting for a retry end now (without response). */
void nvmf_qpair_drop_retries(struct nvmf_qpair *qp);

/* transport.c: the core's half of queue pairs, listeners and poll groups. */

/* Ask the queue pair to close (from its reactor or, by message, any other). */
void nvmf_qpair_disconnect(struct nvmf_qpair *qp);
/* Controller side: the queue pair's controller no longer refers to it. */
void nvmf_qpair_ctrlr_released(struct nvmf_qpair *qp);
/* Transport side, closing: tell the controller (if any) that the queue pair is gone. */
void nvmf_qpair_leave_ctrlr(struct nvmf_qpair *qp);
/* Closed, no request out, the controller let go: the transport's qpair_free, by message. */
void nvmf_qpair_try_free(struct nvmf_qpair *qp);

/* The listener of tt at addr (the transport's defaults filled in), opened on first use;
 * counted until nvmf_port_put. An open one that is not secure as opts asks: -EPROTOTYPE (a
 * port is secure or plain for every subsystem on it: which shows before the first PDU, the
 * subsystem only at Connect). */
int nvmf_port_get(struct nvmf_transport *tt, struct mimo_nvmf_listen_addr *addr,
		  const struct mimo_nvmf_listener_opts *opts, struct nvmf_port **port);
void nvmf_port_put(struct nvmf_port *port);
struct nvmf_port *nvmf_port_find(struct nvmf_transport *tt,
				 const struct mimo_nvmf_listen_addr *addr);
/* A closed port leaves its transport's list (the transport frees it). */
void nvmf_port_unlink(struct nvmf_port *port);

/* The transport of that type the target has, or NULL. */
struct nvmf_transport *nvmf_tgt_find_transport(struct mimo_nvmf_tgt *tgt, const char *trtype);
/* Destroy every transport of the target, then cb(arg). */
void nvmf_tgt_destroy_transports(struct mimo_nvmf_tgt *tgt, void (*cb)(void *arg), void *arg);

/* request.c: a poll group's retry list, on its reactor. */
void nvmf_poll_group_init(struct nvmf_poll_group *pg, struct nvmf_transport *tt);
void nvmf_poll_group_fini(struct nvmf_poll_group *pg);

/* Errors a host may retry go without Do Not Retry; every other error has it. */
static inline void nvmf_req_set_status(struct nvmf_req *req, uint8_t sct, uint8_t sc)
{
	/* A path error (ANA) without Do Not Retry: the host tries another path. */
	bool retry = sct == MIMO_NVME_SCT_PATH ||
		     (sct == MIMO_NVME_SCT_GENERIC &&
		      (sc == MIMO_NVME_SC_SUCCESS || sc == MIMO_NVME_SC_INTERNAL_DEVICE_ERROR ||
		       sc == MIMO_NVME_SC_ABORTED_SQ_DELETION ||
		       sc == MIMO_NVME_SC_TRANSIENT_TRANSPORT_ERROR ||
		       sc == MIMO_NVME_SC_NAMESPACE_NOT_READY));

	req->cpl.status = mimo_nvme_status(sct, sc, !retry);
}

/* Send a message between reactors (mimo_reactor_post: never a spin on a full ring). */
void nvmf_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg);

/* mimo_nvmf_get_stats (stats.c): a controller was made (+1) or freed (-1). */
void nvmf_stats_ctrlr(int delta);
/* Every target's per-reactor counters in turn, from any thread, under the targets' list lock
 * (no target is freed meanwhile; tgt.c). */
void nvmf_tgts_foreach_stat(void (*fn)(void *arg, const struct nvmf_reactor_stat *st), void *arg);

/* Namespace I/O accounting on the calling reactor (io_cmd.c). */
struct mimo_io_channel *nvmf_ns_get_channel(struct nvmf_ns *ns);
void nvmf_ns_io_done(struct nvmf_ns *ns);
/* Start removing ns from every reactor; done (on the target's reactor) once drained. */
void nvmf_ns_drain(struct nvmf_ns *ns, void (*done)(struct nvmf_ns *ns));
void nvmf_ns_free(struct nvmf_ns *ns);

/* Events (nvmf_events.c). */
void nvmf_emit(const char *type, json_t *payload, const char *ctx);
/* nvmf_rpc.c: register its methods (mimo_register_nvmf does). */
void nvmf_rpc_register(void);
void nvmf_tgt_rpc_register(void); /* nvmf_tgt_rpc.c: the target-wide limits */

#endif
