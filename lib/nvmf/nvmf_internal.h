/*
 * The NVMe-oF target's private structures, shaped like the kernel's nvmet: a target owns
 * subsystems (namespaces, hosts, listeners) and controllers; the TCP transport owns ports,
 * per-reactor poll groups and queue pairs; a request is one command on a queue pair.
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
#include <sys/queue.h>

#include "accept_backoff.h"
#include "compiler.h"
#include "mimo/bdev.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"
#include "nvme_tcp.h"

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

struct nvmf_tgt;
struct nvmf_subsystem;
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
	struct nvmf_subsystem *subsys;
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
	TAILQ_ENTRY(nvmf_subsys_listener) link;
};

enum nvmf_subsys_state {
	NVMF_SUBSYS_INACTIVE,
	NVMF_SUBSYS_ACTIVE,
	NVMF_SUBSYS_DELETING,
};

struct nvmf_subsystem {
	struct nvmf_tgt *tgt;
	char nqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	uint8_t subtype; /* MIMO_NVMF_SUBTYPE_NVME or _DISCOVERY */
	enum nvmf_subsys_state state;
	char sn[21];
	char mn[41];
	bool allow_any_host;
	uint16_t min_cntlid, max_cntlid, next_cntlid;
	uint32_t max_nsid;
	uint32_t num_ns;
	_Atomic(struct nvmf_ns *) *ns; /* [max_nsid], by nsid - 1 */
	TAILQ_HEAD(, nvmf_host) hosts;
	TAILQ_HEAD(, nvmf_subsys_listener) listeners;
	TAILQ_HEAD(, nvmf_ctrlr) ctrlrs;
	/* Deletion waits for every controller to go. */
	mimo_nvmf_done_cb destroy_cb;
	void *destroy_arg;
	TAILQ_ENTRY(nvmf_subsystem) link;
};

/* On any reactor: the namespace, or NULL (unknown or being removed). */
static inline struct nvmf_ns *nvmf_subsystem_get_ns(struct nvmf_subsystem *s, uint32_t nsid)
{
	if (nsid == 0 || nsid > s->max_nsid)
		return NULL;
	return atomic_load_explicit(&s->ns[nsid - 1], memory_order_acquire);
}

bool nvmf_nqn_is_valid(const char *nqn);
struct nvmf_host *nvmf_subsystem_find_host(const struct nvmf_subsystem *s, const char *nqn);
/* Put a host entry's keys and free it. */
void nvmf_host_free(struct nvmf_host *h);
bool nvmf_subsystem_listens_on(const struct nvmf_subsystem *s, const struct nvmf_port *port);
void nvmf_subsystem_ctrlr_gone(struct nvmf_subsystem *s);
void nvmf_subsystem_free(struct nvmf_subsystem *s);
/* The next free controller ID, or 0 when none is left. */
uint16_t nvmf_subsystem_alloc_cntlid(struct nvmf_subsystem *s);

/* --- target -------------------------------------------------------------------------------- */

struct nvmf_tgt {
	char *name;
	struct mimo_nvmf_tgt_opts opts;
	struct mimo_reactor *reactor;
	TAILQ_HEAD(, nvmf_subsystem) subsystems;
	uint32_t num_subsystems;
	struct nvmf_subsystem *discovery;
	struct nvmf_transport *tcp;
	/* DH-HMAC-CHAP: what nvmf_set_config allows (1 << HashID, 1 << DHgID) and the
	 * sequence numbers of challenges (random start, never 0). */
	uint32_t dhchap_digests;
	uint32_t dhchap_dhgroups;
	uint32_t auth_seqnum;
	uint64_t discovery_genctr;
	/* TLS PSKs by (host, subsystem), for the handshakes of every reactor (nvmf_psk_*). */
	pthread_mutex_t psk_lock;
	TAILQ_HEAD(, nvmf_psk) psks;
	uint32_t next_reactor;
	bool destroying;
	void (*destroy_cb)(void *arg);
	void *destroy_arg;
	TAILQ_ENTRY(nvmf_tgt) link;
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
int nvmf_tgt_psk_set(struct nvmf_tgt *tgt, const char *subnqn, const char *hostnqn,
		     struct mimo_key *key);
/* From any reactor: the retained PSK (mimo_tls_lookup_fn) of the identity's host and
 * subsystem. -ENOKEY: none; the key file's errors. */
int nvmf_tgt_psk_lookup(struct nvmf_tgt *tgt, const struct mimo_tls_identity *id,
			uint8_t retained[MIMO_TLS_PSK_MAX], size_t *len);

/* A subsystem, host, listener or namespace changed: discovery controllers hear of it. */
void nvmf_tgt_discovery_changed(struct nvmf_tgt *tgt);
/* A subsystem (or the last discovery controller) is gone: a target being destroyed goes on. */
void nvmf_tgt_subsystem_removed(struct nvmf_tgt *tgt);
struct mimo_reactor *nvmf_tgt_next_reactor(struct nvmf_tgt *tgt);
static inline bool nvmf_on_tgt_reactor(const struct nvmf_tgt *tgt)
{
	return mimo_reactor_current() == tgt->reactor;
}

/* --- controllers --------------------------------------------------------------------------- */

struct nvmf_ctrlr {
	struct nvmf_subsystem *subsys;
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
static inline struct nvmf_ns *nvmf_ctrlr_get_ns(struct nvmf_ctrlr *c, uint32_t nsid)
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
void nvmf_ctrlr_ns_changed(struct nvmf_subsystem *s, const struct nvmf_ns *ns);
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

/* discovery.c: the log for a host, as one buffer (header + entries). */
void *nvmf_discovery_log(struct nvmf_tgt *tgt, const char *hostnqn, size_t *len);

/* io_cmd.c: on the queue pair's reactor. */
void nvmf_io_exec(struct nvmf_req *req);

/* --- transport ----------------------------------------------------------------------------- */

/* A listening socket. On the target's reactor. Freed once it is closed and the last of
 * its connections is gone (they count against its cap until then). */
struct nvmf_port {
	struct mimo_nvmf_listen_addr addr;
	struct nvmf_transport *tt;
	int fd;
	struct mimo_fd_watch *watch;
	uint32_t refs; /* subsystems listening on it */
	uint16_t portid;
	bool secure; /* TLS only (secure_channel): every connection starts with a handshake */
	bool closed;
	uint32_t nconns; /* accepted and not yet freed */
	uint64_t refused;
	struct mimo_accept_backoff backoff;
	TAILQ_ENTRY(nvmf_port) link;
};

struct nvmf_transport {
	struct nvmf_tgt *tgt;
	struct mimo_nvmf_transport_opts opts;
	uint32_t max_conns;   /* per listener: the option, or what the fd limit allows */
	uint32_t qpairs_high; /* most connections since memory was last trimmed (tgt reactor) */
	bool trim_when_empty; /* trimmed while connections remained: trim again at none */
	uint64_t connect_timeout_ticks;
	uint32_t inline_size;	  /* per-request buffer: in-capsule data and small transfers */
	struct mimo_tls_ctx *tls; /* made with the first secure port */
	TAILQ_HEAD(, nvmf_port) ports;
	uint16_t next_portid;
	atomic_uint shared_buffers; /* large buffers allocated, over every poll group */
	struct nvmf_poll_group *groups[NVMF_MAX_REACTORS];
	atomic_uint num_qpairs; /* counted from accept to free */
	atomic_bool destroying;
	atomic_uint groups_left;
	void (*destroy_cb)(void *arg);
	void *destroy_arg;
};

/* One per reactor that serves queue pairs: flushes their output, lends large buffers. */
struct nvmf_poll_group {
	struct nvmf_transport *tt;
	struct mimo_reactor *reactor;
	uint32_t reactor_index;
	struct mimo_poller *poller;
	TAILQ_HEAD(, nvmf_qpair) qpairs;
	TAILQ_HEAD(, nvmf_qpair) dirty;	      /* output to flush */
	STAILQ_HEAD(, nvmf_req) buf_waiters;  /* requests waiting for a large buffer */
	STAILQ_HEAD(, nvmf_req) retry;	      /* bdev said -ENOMEM: submit again */
	TAILQ_HEAD(, nvmf_qpair) unconnected; /* oldest first: not yet past Connect */
	struct mimo_poller *timeout_poller;   /* while unconnected is not empty */
	void **free_bufs;
	uint32_t num_free_bufs, max_free_bufs;
};

enum nvmf_qpair_state {
	NVMF_QP_TLS_HANDSHAKE, /* a secure port's connection: TLS first */
	NVMF_QP_AWAIT_IC,
	NVMF_QP_AWAIT_CONNECT,	/* ICResp sent: the first capsule must be Connect */
	NVMF_QP_CONNECTING,	/* Connect is with the target's reactor */
	NVMF_QP_AUTHENTICATING, /* connected; only authentication commands until it succeeds */
	NVMF_QP_RUNNING,
	NVMF_QP_CLOSING,
};

enum nvmf_req_state {
	NVMF_REQ_FREE,
	NVMF_REQ_RECV,	   /* its capsule is still arriving */
	NVMF_REQ_NEED_BUF, /* waiting for a large buffer */
	NVMF_REQ_R2T,	   /* R2T sent, H2CData arriving */
	NVMF_REQ_EXEC,	   /* with the bdev or the target's reactor */
	NVMF_REQ_RETRY,	   /* the bdev was out of resources: waiting to be submitted again */
	NVMF_REQ_SENDING,  /* response queued */
};

struct nvmf_req {
	struct nvmf_qpair *qp;
	enum nvmf_req_state state;
	uint16_t ttag;
	struct mimo_nvme_cmd cmd;
	struct mimo_nvme_cpl cpl;
	uint8_t *data; /* data_len bytes: the inline buffer, a large buffer, or malloc'd */
	uint32_t data_len;
	uint32_t h2c_done;   /* H2CData bytes received */
	bool h2c;	     /* data moves host to controller */
	bool data_is_large;  /* from the poll group's pool */
	bool data_is_malloc; /* admin data larger than the inline buffer */
	bool ddgst_error;    /* data arrived with a bad digest: fail without executing */
	uint8_t auth_event;  /* an authentication command's outcome (enum nvmf_auth_event) */
	uint8_t *inline_buf;
	struct nvmf_ns *ns;   /* counted in flight on its reactor */
	uint32_t sub_pending; /* DSM ranges, compare reads */
	int sub_status;
	void *aux; /* compare: the read-back buffer */
	uint32_t ddgst;
	struct mimo_tcp_send send_data; /* R2T or C2HData */
	struct mimo_tcp_send send_rsp;	/* CapsuleResp */
	uint8_t data_hdr[MIMO_TCP_HDR_BUF];
	uint8_t rsp_hdr[MIMO_TCP_HDR_BUF];
	STAILQ_ENTRY(nvmf_req) link;
};

struct nvmf_qpair {
	struct nvmf_transport *tt;
	struct nvmf_poll_group *pg;
	struct nvmf_port *port; /* the port that accepted it (its struct outlives us) */
	uint16_t portid;
	struct mimo_tcp_sock sock;  /* .tls once a secure port's handshake is done */
	struct mimo_tls *handshake; /* during the handshake */
	struct mimo_fd_watch *watch;
	bool want_out; /* EPOLLOUT armed */
	enum nvmf_qpair_state state;
	struct mimo_tcp_rx rx;
	struct mimo_tcp_sendq sq;
	bool dirty;
	bool hdgst, ddgst;
	uint8_t hpda;
	uint32_t maxh2cdata;

	uint16_t qid;
	uint16_t sqsize; /* 0's based, from Connect */
	uint16_t sqhd;
	bool sq_fc_disabled;
	struct nvmf_ctrlr *ctrlr;
	struct nvmf_subsystem *subsys;
	/* In-band authentication: the target reactor's (allocated at a Connect that requires
	 * it, or at the host's first authentication command; freed when the queue leaves its
	 * controller). Never touched on the queue pair's reactor. */
	struct nvmf_auth *auth;

	struct nvmf_req *reqs;
	uint32_t num_reqs;
	struct nvmf_req **free_reqs; /* LIFO: the hot requests stay in cache */
	uint32_t num_free;
	uint32_t outstanding;
	bool connect_pending; /* Connect is with the target's reactor */
	bool ctrlr_released;  /* the controller let go of it */

	char traddr[64];
	char trsvcid[8];
	struct mimo_tcp_send send_ctl; /* ICResp */
	uint8_t ctl_hdr[MIMO_TCP_HDR_BUF];
	struct mimo_tcp_send send_term; /* C2HTermReq */
	uint8_t term_hdr[MIMO_TCP_HDR_BUF];
	bool close_after_send; /* Disconnect answered, or a TermReq sent */
	bool free_scheduled;
	bool unconnected;	 /* on pg->unconnected */
	uint64_t accepted_ticks; /* when the connect timeout started */
	TAILQ_ENTRY(nvmf_qpair) unconnected_link;
	TAILQ_ENTRY(nvmf_qpair) link;
	TAILQ_ENTRY(nvmf_qpair) dirty_link;
};

/* tcp.c */
/* The most connections a listener may take: 3/4 of RLIMIT_NOFILE (the default cap). */
uint32_t nvmf_tcp_max_conns_allowed(void);
int nvmf_transport_create(struct nvmf_tgt *tgt, const struct mimo_nvmf_transport_opts *opts,
			  struct nvmf_transport **tt);
void nvmf_transport_destroy(struct nvmf_transport *tt, void (*cb)(void *arg), void *arg);
/* The port at addr: the open one (-EPROTOTYPE when it is not secure as asked), or a new one. */
int nvmf_port_get(struct nvmf_transport *tt, struct mimo_nvmf_listen_addr *addr, bool secure,
		  struct nvmf_port **port);
void nvmf_port_put(struct nvmf_port *port);
struct nvmf_port *nvmf_port_find(struct nvmf_transport *tt,
				 const struct mimo_nvmf_listen_addr *addr);
/* A port still open, by its ID (queue pairs remember which port accepted them). */
struct nvmf_port *nvmf_port_by_id(struct nvmf_transport *tt, uint16_t portid);

/* Finish a request: queue its response (and read data) on its queue pair's reactor, from any
 * reactor. req->cpl holds the status. */
void nvmf_req_complete(struct nvmf_req *req);
/* Ask the queue pair to close (from its reactor or, by message, any other). */
void nvmf_qpair_disconnect(struct nvmf_qpair *qp);
/* Controller side: the queue pair's controller no longer refers to it. */
void nvmf_qpair_ctrlr_released(struct nvmf_qpair *qp);
struct mimo_reactor *nvmf_qpair_reactor(const struct nvmf_qpair *qp);
/* A buffer for an admin command's data when the request has none yet (len bytes, zeroed). */
int nvmf_req_alloc_admin_data(struct nvmf_req *req, uint32_t len);

/* Errors a host may retry go without Do Not Retry; every other error has it. */
static inline void nvmf_req_set_status(struct nvmf_req *req, uint8_t sct, uint8_t sc)
{
	bool retry = sct == MIMO_NVME_SCT_GENERIC &&
		     (sc == MIMO_NVME_SC_SUCCESS || sc == MIMO_NVME_SC_INTERNAL_DEVICE_ERROR ||
		      sc == MIMO_NVME_SC_ABORTED_SQ_DELETION ||
		      sc == MIMO_NVME_SC_TRANSIENT_TRANSPORT_ERROR ||
		      sc == MIMO_NVME_SC_NAMESPACE_NOT_READY);

	req->cpl.status = mimo_nvme_status(sct, sc, !retry);
}

/* Send a message between reactors (mimo_reactor_post: never a spin on a full ring). */
void nvmf_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg);

/* Namespace I/O accounting on the calling reactor (io_cmd.c). */
struct mimo_io_channel *nvmf_ns_get_channel(struct nvmf_ns *ns);
void nvmf_ns_io_done(struct nvmf_ns *ns);
/* Start removing ns from every reactor; done (on the target's reactor) once drained. */
void nvmf_ns_drain(struct nvmf_ns *ns, void (*done)(struct nvmf_ns *ns));
void nvmf_ns_free(struct nvmf_ns *ns);

/* Events (nvmf_events.c). */
void nvmf_emit(const char *type, json_t *payload, const char *ctx);

#endif
