/*
 * The initiator's private structures: controllers, queue pairs (over NVMe/TCP, or the
 * in-process loop transport), requests and namespaces, shared by the files of lib/nvme (and
 * the fuzz target, which drives a queue pair from memory).
 */
#ifndef MIMO_NVME_INTERNAL_H
#define MIMO_NVME_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "mimo/nvme.h"
#include "nvme_tcp.h"

#define NVME_COMP "nvme"

/* The admin queue's in-capsule data size (NVMe/TCP transport specification, 8 KiB). */
#define NVME_ADMIN_ICD 8192
/* Asynchronous Event Requests kept outstanding, at most (and at most AERL + 1). */
#define NVME_MAX_AERS 4
/* Active namespace list entries per Identify CNS 2. */
#define NVME_NS_LIST_MAX 1024
/* Discovery log reads retried this often while the generation counter moves. */
#define NVME_DISCOVERY_RETRIES 10

enum nvme_qp_state {
	QP_CONNECTING, /* TCP connect in progress */
	QP_TLS,	       /* TLS handshake (a controller with a PSK) */
	QP_IC,	       /* ICReq sent, waiting for ICResp */
	QP_FABRIC,     /* Fabrics Connect sent */
	QP_AUTH,       /* connected, authenticating (DH-HMAC-CHAP): user commands wait */
	QP_READY,
	QP_FAILED,
};

enum nvme_dir {
	DIR_NONE,
	DIR_H2C, /* host to controller: in-capsule, or R2T + H2CData */
	DIR_C2H, /* controller to host: C2HData */
};

struct mimo_nvme_qpair;
struct nvme_req;
struct nvme_loop_queue;

/*
 * What carries a queue pair's commands (qpair.c decides what to send; these move it):
 * tcp.c's NVMe/TCP, loop.c's in-process queue. connect starts connecting and ends, once the
 * transport's own handshake is done, in nvme_qpair_send_connect; send_req sends a prepared
 * slot (or completes it with an error); poll receives and completes; flush sends what is
 * queued; close lets go of the connection (qp->sock.fd becomes -1).
 */
struct nvme_transport_ops {
	int (*connect)(struct mimo_nvme_qpair *qp);
	void (*send_req)(struct nvme_req *req);
	void (*poll)(struct mimo_nvme_qpair *qp);
	void (*flush)(struct mimo_nvme_qpair *qp);
	void (*close)(struct mimo_nvme_qpair *qp);
};

extern const struct nvme_transport_ops nvme_tcp_transport;
extern const struct nvme_transport_ops nvme_loop_transport;

/* One command slot; cid = its index. Preallocated per queue: no allocation per I/O. */
struct nvme_req {
	struct mimo_nvme_qpair *qp;
	mimo_nvme_cmd_cb cb;
	void *cb_arg;
	uint8_t *buf;
	uint32_t len;
	uint32_t xfer;	  /* C2H: bytes received; H2C: bytes handed to H2CData PDUs */
	uint32_t r2t_end; /* H2C: where the current R2T's range ends */
	uint16_t cid;
	uint16_t ttag;
	uint8_t dir;
	uint8_t sends; /* PDUs of this request not yet wholly in the socket */
	bool active;   /* between submission and completion callback */
	bool done;     /* cpl is final; the callback waits for sends to reach 0 */
	bool in_capsule;
	bool short_ok;	     /* C2H: less data than asked for is no error (Authentication
				Receive: the controller sends the message, not the buffer) */
	bool queued;	     /* on the pending list (not yet sent) */
	bool h2c_queued;     /* h2c is in the send queue: its header buffer is taken */
	uint16_t err_status; /* non-zero: replaces a successful status (data digest error) */
	struct mimo_nvme_cpl cpl;
	STAILQ_ENTRY(nvme_req) link; /* free, pending or completed list */
	struct mimo_tcp_send send;   /* the capsule */
	struct mimo_tcp_send h2c;    /* the H2CData PDU in flight */
	uint32_t ddgst;
	uint32_t h2c_ddgst;
	/* CapsuleCmd header (the SQE at offset 8), its digest and the padding CPDA asks for. */
	_Alignas(8) uint8_t hdr[MIMO_TCP_HDR_BUF];
	_Alignas(8) uint8_t h2c_hdr[MIMO_TCP_HDR_BUF];
};

static inline struct mimo_nvme_cmd *nvme_req_cmd(struct nvme_req *req)
{
	return &((struct mimo_nvme_tcp_cmd *)req->hdr)->sqe;
}

STAILQ_HEAD(nvme_req_list, nvme_req);

struct mimo_nvme_qpair {
	struct mimo_nvme_ctrlr *ctrlr;
	const struct nvme_transport_ops *ops;
	struct nvme_loop_queue *loop; /* loop: the target's end (lib/nvme_loop) */
	uint16_t qid;
	uint16_t num_entries; /* SQ entries; at most num_entries - 1 outstanding */
	enum nvme_qp_state state;
	/* TCP: the socket, .tls once the handshake is done; loop: .fd is readable when
	 * completions wait (not ours to close), .tls stays NULL. */
	struct mimo_tcp_sock sock;
	struct mimo_tls *handshake; /* TCP: during the TLS handshake */
	int fail_rc;
	bool hdgst, ddgst; /* negotiated by ICReq / ICResp */
	bool sqfc_disabled;
	uint8_t cpda;
	uint32_t maxh2cdata;
	uint32_t icd;	  /* in-capsule data bytes the controller takes on this queue */
	uint16_t sq_head; /* the last SQHD the controller reported */
	uint32_t outstanding;
	int64_t deadline_ns; /* of the connecting step under way */

	struct nvme_req *reqs;
	uint32_t num_reqs;
	struct nvme_req_list free_reqs;
	struct nvme_req_list pending;	/* submitted before the queue was ready */
	struct nvme_req_list completed; /* callbacks to run */

	struct mimo_tcp_rx rx;
	struct mimo_tcp_sendq sq;
	struct mimo_tcp_send ctl_send; /* ICReq or H2CTermReq */
	bool ctl_queued;
	uint8_t ctl_buf[sizeof(struct mimo_nvme_tcp_term_req) + MIMO_NVME_TCP_TERM_REQ_DATA_MAX];
	struct mimo_nvmf_connect_data connect_data;
	struct nvme_qp_auth *auth;	   /* while authenticating (qpair.c) */
	TAILQ_ENTRY(mimo_nvme_qpair) link; /* the controller's I/O queue pairs */
	/* Freeing from inside a completion callback: the process call in progress (depth > 0)
	 * frees it once its callback loop has unwound. */
	uint32_t depth;
	bool free_pending;
};

struct mimo_nvme_ns {
	struct mimo_nvme_ctrlr *ctrlr;
	uint32_t id;
	uint32_t sector_size;
	uint64_t num_sectors;
	bool active; /* the only field that changes once published: __atomic_* only */
	bool has_uuid, has_nguid;
	uint8_t uuid[16];
	uint8_t nguid[16];
	struct mimo_nvme_ns_data data;
};

struct nvme_scan; /* a namespace scan under way (ns.c) */

struct mimo_nvme_ctrlr {
	struct mimo_nvme_trid trid;
	struct mimo_nvme_ctrlr_opts opts;
	char hostnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	uint8_t hostid[16];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct sockaddr_storage src; /* trid.hostaddr resolved; src_len 0: none */
	socklen_t src_len;
	struct mimo_tls_ctx *tls; /* opts.tls_psk: the identity and TLS PSK every queue offers */
	const char *tls_cipher;

	struct mimo_nvme_qpair *adminq;
	uint64_t cap;
	uint32_t vs;
	uint16_t cntlid;
	bool is_discovery;
	/* Read by I/O threads (is_connected, their queues' process calls): __atomic_* only. */
	bool failed;	/* the admin queue is gone (or timed out): the controller is lost */
	bool ready;	/* connected (set once, at the end of connect) */
	bool detaching; /* internal callbacks must not start anything new */
	uint32_t cc;	/* the CC value written when enabling */
	struct mimo_nvme_ctrlr_data cdata;
	uint32_t num_io_queues; /* granted */
	uint32_t io_queue_size; /* entries per I/O queue, within CAP.MQES */
	uint32_t max_xfer;
	uint32_t io_icd;
	/* DH-HMAC-CHAP: the transaction IDs and S2 sequence numbers of the controller's queues
	 * (any thread: __atomic_*). */
	uint16_t auth_tid;
	uint32_t auth_seqnum;

	/* Keep alive: a command every KATO / 2. */
	int64_t ka_interval_ns;
	int64_t next_ka_ns;
	int64_t ka_sent_ns; /* of the Keep Alive outstanding: unanswered after KATO fails us */
	bool ka_outstanding;

	/* Asynchronous events. */
	mimo_nvme_aer_cb aer_cb;
	void *aer_arg;
	uint32_t aers_outstanding;
	uint8_t *aer_log; /* the changed namespace list page, read to re-arm the event */

	/* Namespaces: objects live as long as the controller (I/O threads hold pointers);
	 * ns[] sorted by id (the current object of each id), active ids in active[], objects
	 * replaced under their id (another namespace, block size or size) in retired[]. */
	struct mimo_nvme_ns **ns;
	uint32_t num_ns, ns_cap;
	struct mimo_nvme_ns **retired;
	uint32_t num_retired;
	uint32_t *active;
	uint32_t num_active;
	struct nvme_scan *scan;
	bool rescan; /* a notice arrived during a scan: scan again */

	/* Admin process calls in progress: a detach from inside an admin callback (or one of an
	 * I/O queue's, on the admin thread) frees the controller when the outermost returns. */
	uint32_t admin_depth;
	bool free_pending;

	pthread_mutex_t lock; /* qids and io_qpairs (I/O queues come and go from any thread) */
	uint8_t *qid_used;
	uint32_t last_qid;
	TAILQ_HEAD(, mimo_nvme_qpair) io_qpairs;
};

/* --- trid.c -------------------------------------------------------------------------------- */

/* The process's host identity: a random UUID made once. */
void nvme_default_hostid(uint8_t hostid[16]);
/* "nqn.2014-08.org.nvmexpress:uuid:<uuid>" */
void nvme_hostnqn_from_hostid(const uint8_t hostid[16], char *out, size_t len);

/* --- qpair.c / tcp.c ----------------------------------------------------------------------- */

/* A queue pair of entries SQ slots, not yet connected. */
int nvme_qpair_create(struct mimo_nvme_ctrlr *ctrlr, uint16_t qid, uint32_t entries,
		      struct mimo_nvme_qpair **out);
/* Start connecting (TCP: a non-blocking connect to the controller's address). */
int nvme_qpair_connect(struct mimo_nvme_qpair *qp);
/* Take an already connected socket and send ICReq (tests, fuzzing). */
int nvme_qpair_start_fd(struct mimo_nvme_qpair *qp, int fd);
/* Close the socket, complete everything outstanding as aborted (callbacks run), free. From
 * inside one of its own completion callbacks, the free waits until the process call that
 * runs them returns. Once called, further calls do nothing. */
void nvme_qpair_destroy(struct mimo_nvme_qpair *qp);
/* Send, receive (one readv), deliver up to max completions (0: all). Returns the number
 * delivered, or -ENXIO once failed (after delivering the aborted commands). */
int nvme_qpair_process(struct mimo_nvme_qpair *qp, uint32_t max);
/* Parse bytes as if they came from the socket (the fuzz target's entry). Same return as
 * process, without reading the socket. */
int nvme_qpair_feed(struct mimo_nvme_qpair *qp, const void *data, size_t len);
/* Wait up to timeout_ms for the socket to have something to read (sync helpers). */
void nvme_qpair_wait_io(struct mimo_nvme_qpair *qp, int timeout_ms);
void nvme_qpair_fail(struct mimo_nvme_qpair *qp, int rc);

/* A free slot, or NULL (queue full). */
struct nvme_req *nvme_qpair_get_req(struct mimo_nvme_qpair *qp);
/* Submit a slot whose SQE (nvme_req_cmd) is filled in: cid, SGL and the PDU are set here.
 * Returns 0 or -EINVAL (a transfer this queue cannot carry; the slot is released). */
int nvme_qpair_submit_req(struct nvme_req *req, void *buf, uint32_t len, enum nvme_dir dir,
			  mimo_nvme_cmd_cb cb, void *cb_arg);
/* Allocate, copy cmd, submit. Returns 0, -ENOMEM (full), -ENXIO (failed), -EINVAL. */
int nvme_qpair_submit(struct mimo_nvme_qpair *qp, const struct mimo_nvme_cmd *cmd, void *buf,
		      uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg);
/* The direction a command's data moves, from its opcode (fabrics: its fctype). */
int nvme_cmd_dir(const struct mimo_nvme_cmd *cmd, enum nvme_dir *dir);

/* --- ctrlr.c ------------------------------------------------------------------------------- */

/* A controller object with its identity and address resolved, no queue yet. */
int nvme_ctrlr_alloc(const struct mimo_nvme_trid *trid, const struct mimo_nvme_ctrlr_opts *opts,
		     struct mimo_nvme_ctrlr **out);
void nvme_ctrlr_free(struct mimo_nvme_ctrlr *ctrlr);
/* Check the options' DH-HMAC-CHAP keys: 0 or -EINVAL. */
int nvme_ctrlr_check_dhchap(const struct mimo_nvme_ctrlr_opts *opts);

/* Map a failed Fabrics Connect completion to an errno (-ENOENT unknown subsystem, -EACCES
 * host not allowed, -EPROTO otherwise). */
int nvme_connect_status_errno(const struct mimo_nvme_cpl *cpl);

/* --- admin.c ------------------------------------------------------------------------------- */

int nvme_prop_get(struct mimo_nvme_ctrlr *ctrlr, uint32_t ofst, uint8_t size8, mimo_nvme_cmd_cb cb,
		  void *cb_arg);
int nvme_prop_set(struct mimo_nvme_ctrlr *ctrlr, uint32_t ofst, uint8_t size8, uint64_t value,
		  mimo_nvme_cmd_cb cb, void *cb_arg);
/* Configure asynchronous events and keep the requests outstanding (end of connect). */
void nvme_ctrlr_start_aers(struct mimo_nvme_ctrlr *ctrlr);
void nvme_ctrlr_start_keep_alive(struct mimo_nvme_ctrlr *ctrlr);
/* Process the admin queue until done is set or the queue fails (sync helpers). */
int nvme_admin_wait(struct mimo_nvme_ctrlr *ctrlr, const bool *done);
/* One pass over the admin queue. Sets *freed (and returns -ENXIO) when a callback detached
 * the controller: it is gone, the caller must not touch it. */
int nvme_admin_process(struct mimo_nvme_ctrlr *ctrlr, bool *freed);

/* --- ns.c ---------------------------------------------------------------------------------- */

/* Scan the active namespaces (CNS 2, then CNS 0 and CNS 3 for each), asynchronously on the
 * admin queue; done(arg, rc) when finished. A scan already running is told to repeat. */
int nvme_ns_scan(struct mimo_nvme_ctrlr *ctrlr, void (*done)(void *arg, int rc), void *arg);
void nvme_ns_free_all(struct mimo_nvme_ctrlr *ctrlr);
/* Fill ns identity fields from a namespace identification descriptor list (4096 bytes). */
void nvme_ns_parse_descs(struct mimo_nvme_ns *ns, const uint8_t *descs, size_t len);

#endif
