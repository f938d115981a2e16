/*
 * mimo/nvme.h - the NVMe-oF/TCP initiator (host): connect to a target (mimo_tgt, SPDK's
 * nvmf_tgt, the Linux kernel's nvmet), identify it, and do I/O on its namespaces. Also over
 * the loop transport, to a target in the same process (mimo/nvmf.h), without sockets.
 *
 * Polled, as SPDK's NVMe driver is: nothing happens behind the caller's back.
 *  - A controller's admin queue advances (completions, keep-alive, asynchronous events) in
 *    mimo_nvme_ctrlr_process_admin_completions().
 *  - An I/O queue pair sends what was submitted since the last call and reaps completions in
 *    mimo_nvme_qpair_process_completions(): submissions are batched until then, so a caller
 *    that submits 32 commands and then polls pays one system call for all of them.
 * One thread at a time uses a queue pair; the admin queue and each I/O queue pair may be used
 * by different threads. Completion callbacks run inside the process call of their queue.
 * Only mimo_nvme_connect(), mimo_nvme_detach(), mimo_nvme_qpair_wait_connected() and the
 * functions named _sync wait; they poll until done, so never call them on the reactor that
 * serves the target they talk to (the _async / _poll pairs are for that).
 *
 * Errors: 0 or a negative errno, as everywhere in mimo. A command that reached the target
 * completes with the target's status; one that could not (the connection failed) completes
 * with generic status ABORTED_SQ_DELETION, and the queue's process call returns -ENXIO.
 */
#ifndef MIMO_NVME_H
#define MIMO_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/nvme_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- transport IDs ------------------------------------------------------------------------ */

#define MIMO_NVME_TRADDR_MAX_LEN  256
#define MIMO_NVME_TRSVCID_MAX_LEN 32

struct mimo_nvme_trid {
	uint8_t trtype; /* MIMO_NVMF_TRTYPE_TCP, or _LOOP (a target in this process) */
	uint8_t adrfam; /* MIMO_NVMF_ADRFAM_IPV4 or _IPV6 */
	char traddr[MIMO_NVME_TRADDR_MAX_LEN + 1];
	char trsvcid[MIMO_NVME_TRSVCID_MAX_LEN + 1];
	char subnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	char hostnqn[MIMO_NVMF_NQN_MAX_LEN + 1]; /* optional: "" = the options' or a default */
	uint32_t nsid;				 /* optional "ns:N" of spdk_nvme_perf: 0 = all */
	char hostaddr[MIMO_NVME_TRADDR_MAX_LEN + 1]; /* optional: the local address to connect
							from ("" = the kernel's choice) */
	uint32_t priority; /* optional: SO_PRIORITY of its sockets (0-6) */
};

/*
 * Parse SPDK's transport ID string: space-separated key:value (or key=value) pairs, keys
 * case-insensitive: trtype (tcp, or loop), adrfam (IPv4/IPv6), traddr, trsvcid (default 4420),
 * subnqn (default the discovery NQN), hostnqn, ns, hostaddr (local address to connect from),
 * priority (socket priority). trtype:loop names a loop listener of a target in this process by
 * traddr (optional) and takes no adrfam, trsvcid, hostaddr or priority. Returns 0, or -EINVAL
 * for an unknown key, a missing traddr (TCP), a transport other than TCP and loop, a value too
 * long, a hostsvcid other than 0 (several connections cannot share one local port) or an
 * alt_traddr (no failover).
 */
int mimo_nvme_trid_parse(struct mimo_nvme_trid *trid, const char *str);
/* The canonical string ("trtype:TCP adrfam:IPv4 traddr:... trsvcid:... subnqn:..."). Returns
 * the length snprintf would. */
int mimo_nvme_trid_format(const struct mimo_nvme_trid *trid, char *buf, size_t len);

/* --- controllers -------------------------------------------------------------------------- */

struct mimo_nvme_ctrlr;
struct mimo_nvme_ns;
struct mimo_nvme_qpair;
struct mimo_nvme_connect_ctx;

/* A DH-HMAC-CHAP secret, decoded (mimo_nvme_dhchap_key_parse). len 0: none. */
struct mimo_nvme_dhchap_key {
	uint8_t hash; /* the secret's transformation: 0 none, 1-3 SHA-256/384/512 (its "hh") */
	uint8_t len;  /* 32, 48 or 64 */
	uint8_t key[64];
};

/* nvme-cli's interchange form "DHHC-1:<hh>:<base64 secret || CRC-32>:". Returns 0, -EINVAL
 * (not that form) or -EBADMSG (the CRC-32 does not match). */
int mimo_nvme_dhchap_key_parse(const char *secret, struct mimo_nvme_dhchap_key *key);

/* A TLS PSK as configured (NVMe/TCP's secure channel), decoded. len 0: none. */
struct mimo_nvme_tls_psk {
	uint8_t hash; /* its "hh": 0 used as the retained PSK, 1/2 retained PSK derived with
			 SHA-256/SHA-384 and the host NQN */
	uint8_t len;  /* 32 (TLS_AES_128_GCM_SHA256) or 48 (TLS_AES_256_GCM_SHA384) */
	uint8_t key[48];
};

/* nvme-cli's gen-tls-key form "NVMeTLSkey-1:<hh>:<base64 PSK || CRC-32>:". Returns 0,
 * -EINVAL or -EBADMSG (bad CRC-32). */
int mimo_nvme_tls_psk_parse(const char *interchange, struct mimo_nvme_tls_psk *psk);

struct mimo_nvme_ctrlr_opts {
	size_t opts_size;	   /* sizeof(struct mimo_nvme_ctrlr_opts) */
	uint32_t num_io_queues;	   /* asked for with Set Features (default 128) */
	uint32_t io_queue_size;	   /* entries per I/O queue (default 128, capped by CAP.MQES) */
	uint32_t admin_queue_size; /* default 32 */
	uint32_t keep_alive_timeout_ms; /* default 10000; 0: none */
	uint32_t connect_timeout_ms;	/* per step of connecting (default 10000) */
	bool header_digest;
	bool data_digest;
	/* Host identity: "" / all zero = the trid's hostnqn, else one derived from hostid, which
	 * defaults to a random UUID per process. */
	char hostnqn[MIMO_NVMF_NQN_MAX_LEN + 1];
	uint8_t hostid[16];
	/* Ask I/O queues to run without SQ flow control (Connect CATTR bit 2): the target then
	 * omits SQ head updates and may complete reads with C2HData SUCCESS, saving a response
	 * PDU per read. Default false, as SPDK's driver. */
	bool disable_sq_flow_control;
	/*
	 * In-band authentication (DH-HMAC-CHAP, NVMe Base 2.0 8.13). With dhchap_key, each queue
	 * authenticates when the controller asks (Connect's AUTHREQ.ATR); without, a controller
	 * that asks is refused (-ENOKEY). With dhchap_ctrlr_key as well, each queue also makes the
	 * controller prove that it holds that key - whether it asked or not - and a controller
	 * that cannot is refused (-EACCES). The hash functions and groups offered: masks of
	 * 1 << HashID and 1 << DHgID (mimo/nvme_spec.h), 0 meaning all; the controller chooses.
	 */
	struct mimo_nvme_dhchap_key dhchap_key;
	struct mimo_nvme_dhchap_key dhchap_ctrlr_key;
	uint32_t dhchap_digests;
	uint32_t dhchap_dhgroups;
	/*
	 * TLS (NVMe/TCP's secure channel): with a PSK, every queue starts with a TLS 1.3
	 * handshake that offers the identity "NVMe0R<hh> <hostnqn> <subnqn>" (hh 01 for a 32-byte
	 * PSK and TLS_AES_128_GCM_SHA256, 02 for 48 bytes and TLS_AES_256_GCM_SHA384) and the TLS
	 * PSK derived from it, as SPDK and the Linux host do; there is no fallback to plain TCP.
	 * A target that refuses the PSK fails the connect with -EACCES, one that does not speak
	 * TLS on that port with -ECONNRESET or -EPROTO. DH-HMAC-CHAP, if asked for, then runs
	 * inside the channel (without secure channel concatenation). Over trtype:loop, which has
	 * no connection to secure, a PSK is -EINVAL.
	 */
	struct mimo_nvme_tls_psk tls_psk;
};

void mimo_nvme_ctrlr_opts_init(struct mimo_nvme_ctrlr_opts *opts);

/*
 * Start connecting (TCP connect, ICReq, Fabrics Connect, CC.EN, Identify, Set Features,
 * namespaces). Poll with mimo_nvme_connect_poll until it returns something other than
 * -EAGAIN: 0 with *ctrlr set, or a negative errno (-ECONNREFUSED, -ETIMEDOUT, -EACCES for a
 * host the subsystem does not allow or an authentication that failed either way, -ENOKEY for
 * a controller that requires authentication from a host without a key, -EOPNOTSUPP for one
 * that requires a secure channel, -ENOENT for an unknown subsystem, -EPROTO). The context
 * is freed when poll returns anything but -EAGAIN, or by mimo_nvme_connect_abort.
 */
int mimo_nvme_connect_async(const struct mimo_nvme_trid *trid,
			    const struct mimo_nvme_ctrlr_opts *opts,
			    struct mimo_nvme_connect_ctx **ctx);
int mimo_nvme_connect_poll(struct mimo_nvme_connect_ctx *ctx, struct mimo_nvme_ctrlr **ctrlr);
void mimo_nvme_connect_abort(struct mimo_nvme_connect_ctx *ctx);
/* Both at once: waits until connected or failed. */
int mimo_nvme_connect(const struct mimo_nvme_trid *trid, const struct mimo_nvme_ctrlr_opts *opts,
		      struct mimo_nvme_ctrlr **ctrlr);

/* "TLS_AES_128_GCM_SHA256" or "TLS_AES_256_GCM_SHA384" for a controller connected over TLS,
 * else NULL. */
const char *mimo_nvme_ctrlr_get_tls_cipher(const struct mimo_nvme_ctrlr *ctrlr);

/* Shut the controller down (CC.SHN), close every queue (their outstanding commands complete
 * aborted) and free it. I/O queue pairs must not be in use by other threads. May be called
 * from inside a completion callback (admin, or an I/O queue's on the admin thread): what the
 * running process call still walks is freed when it returns. */
int mimo_nvme_detach(struct mimo_nvme_ctrlr *ctrlr);
/*
 * The same without waiting, for a reactor that may serve the target itself: start, then poll
 * until it returns something other than -EAGAIN (0, or the error of a shutdown the target did
 * not confirm; the controller is freed either way and ctx with it).
 */
struct mimo_nvme_detach_ctx;
int mimo_nvme_detach_async(struct mimo_nvme_ctrlr *ctrlr, struct mimo_nvme_detach_ctx **ctx);
int mimo_nvme_detach_poll(struct mimo_nvme_detach_ctx *ctx);

const struct mimo_nvme_trid *mimo_nvme_ctrlr_get_trid(const struct mimo_nvme_ctrlr *ctrlr);
const struct mimo_nvme_ctrlr_data *mimo_nvme_ctrlr_get_data(const struct mimo_nvme_ctrlr *ctrlr);
uint64_t mimo_nvme_ctrlr_get_cap(const struct mimo_nvme_ctrlr *ctrlr);
uint32_t mimo_nvme_ctrlr_get_vs(const struct mimo_nvme_ctrlr *ctrlr);
/* I/O queues the controller granted. */
uint32_t mimo_nvme_ctrlr_get_num_io_queues(const struct mimo_nvme_ctrlr *ctrlr);
/* The largest transfer one command may move, in bytes (MDTS). */
uint32_t mimo_nvme_ctrlr_get_max_xfer_size(const struct mimo_nvme_ctrlr *ctrlr);
bool mimo_nvme_ctrlr_is_discovery(const struct mimo_nvme_ctrlr *ctrlr);
/* False once the admin connection failed or the target dropped the controller. */
bool mimo_nvme_ctrlr_is_connected(const struct mimo_nvme_ctrlr *ctrlr);
/*
 * Drop the admin connection as a transport error would, without a shutdown: what the admin
 * queue holds completes aborted (at its next processing), the controller shows failed, and
 * the object stays valid until detached. A host's reset (bdev_nvme_reset_controller,
 * _disable_controller) does this, then connects a new controller object. The I/O queues are
 * their owners' to free (each on its thread). On the admin thread.
 */
void mimo_nvme_ctrlr_disconnect(struct mimo_nvme_ctrlr *ctrlr);

/* Admin queue: send, reap, keep alive. Returns completions reaped, or -ENXIO when the
 * connection failed. */
int mimo_nvme_ctrlr_process_admin_completions(struct mimo_nvme_ctrlr *ctrlr);

typedef void (*mimo_nvme_cmd_cb)(void *cb_arg, const struct mimo_nvme_cpl *cpl);

static inline bool mimo_nvme_cpl_is_error(const struct mimo_nvme_cpl *cpl)
{
	return (cpl->status & 0x7ffe) != 0;
}

/*
 * Any admin command; cid is filled in. The data direction follows the opcode (bit 0 host to
 * controller, bit 1 controller to host; for fabrics commands, the fctype). buf (len bytes)
 * stays the caller's until the callback. Returns 0, -ENOMEM (queue full), -ENXIO.
 */
int mimo_nvme_ctrlr_cmd_admin_raw(struct mimo_nvme_ctrlr *ctrlr, const struct mimo_nvme_cmd *cmd,
				  void *buf, uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg);
/* Submit and process the admin queue until the command completes; *cpl gets its completion.
 * Returns 0 when it completed (check cpl's status), or a negative errno. */
int mimo_nvme_ctrlr_cmd_admin_sync(struct mimo_nvme_ctrlr *ctrlr, const struct mimo_nvme_cmd *cmd,
				   void *buf, uint32_t len, struct mimo_nvme_cpl *cpl);
int mimo_nvme_ctrlr_cmd_identify(struct mimo_nvme_ctrlr *ctrlr, uint8_t cns, uint32_t nsid,
				 void *buf, uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg);
int mimo_nvme_ctrlr_cmd_get_log_page(struct mimo_nvme_ctrlr *ctrlr, uint8_t lid, uint32_t nsid,
				     void *buf, uint32_t len, uint64_t offset, mimo_nvme_cmd_cb cb,
				     void *cb_arg);
int mimo_nvme_ctrlr_cmd_get_feature(struct mimo_nvme_ctrlr *ctrlr, uint8_t fid, uint32_t cdw11,
				    void *buf, uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg);
int mimo_nvme_ctrlr_cmd_set_feature(struct mimo_nvme_ctrlr *ctrlr, uint8_t fid, uint32_t cdw11,
				    uint32_t cdw12, void *buf, uint32_t len, mimo_nvme_cmd_cb cb,
				    void *cb_arg);

/*
 * Asynchronous events: the driver keeps Asynchronous Event Requests outstanding. On a
 * namespace attribute notice it reads the changed namespace list and refreshes its namespaces
 * before calling cb, so mimo_nvme_ctrlr_get_ns already shows the change. cpl->cdw0 is the
 * event (type bits 0-2, info bits 8-15, log page bits 16-23). In the admin process call.
 */
typedef void (*mimo_nvme_aer_cb)(void *cb_arg, const struct mimo_nvme_cpl *cpl);
void mimo_nvme_ctrlr_register_aer_callback(struct mimo_nvme_ctrlr *ctrlr, mimo_nvme_aer_cb cb,
					   void *cb_arg);

/* A discovery controller's whole log (every record, consistent by its generation counter):
 * *log is malloc'd (free it); numrec records follow the header. */
int mimo_nvme_ctrlr_get_discovery_log_sync(struct mimo_nvme_ctrlr *ctrlr,
					   struct mimo_nvmf_discovery_log **log);

/* --- namespaces --------------------------------------------------------------------------- */

/* Active namespace IDs in increasing order: first, then next(prev) until 0. */
uint32_t mimo_nvme_ctrlr_get_first_active_ns(const struct mimo_nvme_ctrlr *ctrlr);
uint32_t mimo_nvme_ctrlr_get_next_active_ns(const struct mimo_nvme_ctrlr *ctrlr, uint32_t prev);
/* NULL when nsid is not active. Valid until the next admin process call that refreshes it. */
struct mimo_nvme_ns *mimo_nvme_ctrlr_get_ns(struct mimo_nvme_ctrlr *ctrlr, uint32_t nsid);

/*
 * A namespace object never changes once returned (any thread may read it): when the target
 * replaces a namespace under the same ID (another identity, LBA format or size), a rescan
 * publishes a new object for that ID and the old one stays inactive until the controller is
 * freed. I/O on an inactive namespace is refused (-ENODEV).
 */
bool mimo_nvme_ns_is_active(const struct mimo_nvme_ns *ns);
uint32_t mimo_nvme_ns_get_id(const struct mimo_nvme_ns *ns);
uint32_t mimo_nvme_ns_get_sector_size(const struct mimo_nvme_ns *ns);
uint64_t mimo_nvme_ns_get_num_sectors(const struct mimo_nvme_ns *ns);
const struct mimo_nvme_ns_data *mimo_nvme_ns_get_data(const struct mimo_nvme_ns *ns);
/* From the namespace identification descriptors: NULL when the target gave none. */
const uint8_t *mimo_nvme_ns_get_uuid(const struct mimo_nvme_ns *ns);
const uint8_t *mimo_nvme_ns_get_nguid(const struct mimo_nvme_ns *ns);

/* --- I/O queue pairs ---------------------------------------------------------------------- */

struct mimo_nvme_io_qpair_opts {
	size_t opts_size;
	uint32_t io_queue_size; /* 0: the controller options' */
};

/*
 * A new I/O queue pair, connecting in the background: commands submitted before it is
 * connected wait and go out once it is. From any thread (queue IDs are handed out under a
 * lock). Returns 0, -ENOSPC (no queue IDs left), -ENOMEM.
 */
int mimo_nvme_ctrlr_alloc_io_qpair(struct mimo_nvme_ctrlr *ctrlr,
				   const struct mimo_nvme_io_qpair_opts *opts,
				   struct mimo_nvme_qpair **qpair);
/* Process the queue until it is connected (0) or failed; -ETIMEDOUT after timeout_ms. */
int mimo_nvme_qpair_wait_connected(struct mimo_nvme_qpair *qpair, uint32_t timeout_ms);
bool mimo_nvme_qpair_is_connected(const struct mimo_nvme_qpair *qpair);
/* Close it; outstanding commands complete aborted. May be called from inside one of its own
 * completion callbacks: the queue is then closed at once and freed when the process call
 * running the callback returns (which returns -ENXIO); calling it again does nothing. */
void mimo_nvme_ctrlr_free_io_qpair(struct mimo_nvme_qpair *qpair);

/* Send what was submitted, reap up to max completions (0: all there are). Returns the number
 * reaped, or -ENXIO when the connection failed. */
int mimo_nvme_qpair_process_completions(struct mimo_nvme_qpair *qpair, uint32_t max);
/* Commands submitted and not yet completed. */
uint32_t mimo_nvme_qpair_outstanding(const struct mimo_nvme_qpair *qpair);

/* io_flags for read/write/compare. */
#define MIMO_NVME_IO_FLAGS_FUA (1u << 30)

/*
 * I/O commands. buf stays the caller's until the callback: a write's data leaves straight
 * from it and a read's data lands straight in it. Returns 0, -EINVAL (zero blocks, beyond the
 * maximum transfer), -ENOMEM (the queue is full), -ENXIO (the queue failed), -ENODEV (the
 * namespace is no longer active: removed, or replaced by another under its ID).
 */
int mimo_nvme_ns_cmd_read(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair, void *buf,
			  uint64_t lba, uint32_t lba_count, mimo_nvme_cmd_cb cb, void *cb_arg,
			  uint32_t io_flags);
int mimo_nvme_ns_cmd_write(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair, const void *buf,
			   uint64_t lba, uint32_t lba_count, mimo_nvme_cmd_cb cb, void *cb_arg,
			   uint32_t io_flags);
int mimo_nvme_ns_cmd_compare(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
			     const void *buf, uint64_t lba, uint32_t lba_count, mimo_nvme_cmd_cb cb,
			     void *cb_arg, uint32_t io_flags);
int mimo_nvme_ns_cmd_write_zeroes(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
				  uint64_t lba, uint32_t lba_count, mimo_nvme_cmd_cb cb,
				  void *cb_arg, uint32_t io_flags);
int mimo_nvme_ns_cmd_flush(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
			   mimo_nvme_cmd_cb cb, void *cb_arg);

struct mimo_nvme_dsm_range {
	uint32_t attributes;
	uint32_t length; /* blocks */
	uint64_t starting_lba;
};
/* Dataset Management with the deallocate attribute over 1..256 ranges. */
int mimo_nvme_ns_cmd_deallocate(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
				const struct mimo_nvme_dsm_range *ranges, uint16_t num_ranges,
				mimo_nvme_cmd_cb cb, void *cb_arg);
/* Any I/O command (nsid and cid as given / filled in); direction from the opcode. */
int mimo_nvme_ctrlr_cmd_io_raw(struct mimo_nvme_ctrlr *ctrlr, struct mimo_nvme_qpair *qpair,
			       const struct mimo_nvme_cmd *cmd, void *buf, uint32_t len,
			       mimo_nvme_cmd_cb cb, void *cb_arg);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_NVME_H */
