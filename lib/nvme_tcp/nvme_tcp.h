/*
 * The NVMe/TCP PDU layer the target (lib/nvmf) and the initiator (lib/nvme) share: header
 * checks, digests, a receiver that places PDU data straight where it belongs, and a send
 * queue that batches whole PDUs into one writev.
 *
 * Neither end copies more than it must: the receiver reads with readv into the current PDU's
 * destination first and the staging buffer after it, so a large transfer lands in place and
 * the small PDUs behind it come in the same system call; the send queue gathers every queued
 * PDU (header, data, digest) into one sendmsg.
 */
#ifndef MIMO_NVME_TCP_H
#define MIMO_NVME_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compiler.h"
#include "mimo/nvme_spec.h"
#include "tls.h"

/* The longest header (ICReq/ICResp); every other PDU header is 24 or 72 bytes. */
#define MIMO_TCP_MAX_HLEN 128
/* Room for a header, its digest and the padding a PDA of 31 asks for (PDO <= 128). */
#define MIMO_TCP_HDR_BUF 160
/* Bytes the receiver stages between reads. */
#define MIMO_TCP_RX_STAGING (64 * 1024)
/* Staging of a connection that has not sent its ICReq yet: room for any one header. */
#define MIMO_TCP_RX_STAGING_MIN 256
/*
 * After a PDU with this much data or more, read only MIMO_TCP_RX_AHEAD bytes ahead into
 * staging: a stream of large transfers (128 KiB H2C or C2H data) would otherwise have up to
 * 64 KiB of the next PDU's data read into staging and copied out again, where a read after
 * its header puts it in place.
 */
#define MIMO_TCP_RX_LARGE_DATA (16 * 1024)
#define MIMO_TCP_RX_AHEAD      512

/* --- sockets ------------------------------------------------------------------------------- */

/*
 * A connection's socket: plain TCP, or TLS over it once its handshake is done (tls.h). The
 * receiver and the send queue move bytes through these two calls only, so every code path
 * above them is the same either way; plain TCP pays one predictable branch.
 */
struct mimo_tcp_sock {
	int fd;
	struct mimo_tls *tls; /* NULL: plain TCP */
};

static inline ssize_t mimo_tcp_sock_readv(struct mimo_tcp_sock *sk, const struct iovec *iov,
					  int cnt)
{
	if (mimo_likely(sk->tls == NULL))
		return readv(sk->fd, iov, cnt);
	return mimo_tls_readv(sk->tls, iov, cnt);
}

/* --- headers ------------------------------------------------------------------------------- */

/* The header length the specification fixes for a PDU type, or 0 for an unknown type. */
uint8_t mimo_tcp_pdu_hlen(uint8_t type);
/* The PDU's name, as Wireshark spells it ("CapsuleCommand", ...). */
const char *mimo_tcp_pdu_name(uint8_t type);
/* True for the types a host sends (ICReq, H2CTermReq, CapsuleCmd, H2CData). */
bool mimo_tcp_pdu_from_host(uint8_t type);
/* True for the types that may carry data (CapsuleCmd, H2CData, C2HData, TermReqs). */
bool mimo_tcp_pdu_has_data(uint8_t type);

/* PDO for data behind a header: hlen (+ 4 with a header digest), rounded up to (pda + 1) * 4
 * bytes when pda is non-zero. */
static inline uint32_t mimo_tcp_pdo(uint32_t hlen, bool hdgst, uint8_t pda)
{
	uint32_t off = hlen + (hdgst ? MIMO_NVME_TCP_DIGEST_LEN : 0);
	uint32_t align = ((uint32_t)pda + 1) * 4;

	return pda != 0 ? (off + align - 1) / align * align : off;
}

/*
 * Fill in the common header of a PDU whose specific header is already in hdr (zeroed
 * elsewhere): type, flags (the digest flags are added here), hlen, pdo and plen for data_len
 * bytes of data; writes the header digest and zeroes the padding. Returns the bytes of hdr to
 * send before the data (header + digest + padding).
 */
uint32_t mimo_tcp_hdr_build(void *hdr, uint8_t type, uint8_t flags, uint32_t data_len, bool hdgst,
			    bool ddgst, uint8_t pda);

/* Digests: CRC32C, stored little-endian. */
uint32_t mimo_tcp_digest(const void *buf, size_t len);

/* --- receiving ----------------------------------------------------------------------------- */

struct mimo_tcp_rx_pdu {
	union {
		struct mimo_nvme_tcp_ch ch;
		struct mimo_nvme_tcp_ic ic;
		struct mimo_nvme_tcp_term_req term;
		struct mimo_nvme_tcp_cmd cmd;
		struct mimo_nvme_tcp_rsp rsp;
		struct mimo_nvme_tcp_data data;
		struct mimo_nvme_tcp_r2t r2t;
		uint8_t raw[MIMO_TCP_MAX_HLEN + MIMO_NVME_TCP_DIGEST_LEN];
	} hdr;
	uint32_t data_len; /* data bytes the PDU carries */
	/* Set by on_header when data_len > 0: where the data goes. Left NULL, data of a
	 * TermReq (at most 128 bytes) goes to the receiver's own scratch. */
	void *data;
	void *arg; /* on_header's, for on_pdu */
	/* Set by on_header when data goes where it will not be read back soon (a bdev's
	 * memory): bytes staged ahead of it are copied there with mimo_copy_cold. */
	bool data_cold;
	bool ddgst_ok; /* false when the data digest did not match */
};

/*
 * on_header: the header arrived, its digest matched and its fields passed the checks below.
 * Return 0 (and set pdu->data for data), or a TermReq FES (> 0) after setting *fei to the
 * offending byte: the receiver stops and reports it.
 * on_pdu: the whole PDU arrived. Return 0 to go on, a FES as above, or < 0 to stop reading
 * (the connection is going away; the error is passed up).
 */
struct mimo_tcp_rx_ops {
	int (*on_header)(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei);
	int (*on_pdu)(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei);
};

enum mimo_tcp_rx_state {
	MIMO_TCP_RX_HEADER, /* gathering a header in staging */
	MIMO_TCP_RX_DATA,   /* placing data (and its digest) */
};

struct mimo_tcp_rx {
	/* What the PDUs must carry: set after ICReq/ICResp. Before, no digests. */
	bool hdgst, ddgst;
	bool host;	       /* this end is the host: it receives controller PDUs */
	uint32_t max_data_len; /* larger data in one PDU is a TermReq (data limit exceeded) */

	enum mimo_tcp_rx_state state;
	struct mimo_tcp_rx_pdu pdu;
	uint32_t hdr_len;    /* header + digest bytes of the current PDU */
	uint32_t data_off;   /* where its data starts (PDO; see check_ch for TermReqs) */
	uint32_t pad_left;   /* padding between the header and data still to skip */
	uint32_t data_done;  /* bytes of pdu.data filled */
	uint32_t ddgst_done; /* bytes of the data digest received */
	uint8_t ddgst_recv[4];
	uint8_t scratch[MIMO_NVME_TCP_TERM_REQ_DATA_MAX];

	bool large;	      /* the last PDU with data had MIMO_TCP_RX_LARGE_DATA or more */
	uint64_t staged_data; /* PDU data bytes that came through staging (copied twice) */
	uint8_t *buf;	      /* staging */
	uint32_t buf_size;
	uint32_t head, tail;

	/* Set when a read or check failed: what the TermReq should say. */
	uint16_t fes;
	uint32_t fei;

	/* TLS: one read of the buffers per mimo_tcp_rx_read, as over plain TCP, instead of
	 * reading on while OpenSSL holds more (the target sets it: one fast host must not keep
	 * its reactor from the others). tls_held then says the last read left decrypted or
	 * buffered bytes in OpenSSL, which the socket will not signal again: the caller reads
	 * again on its next turn. */
	bool one_read;
	bool tls_held;
};

int mimo_tcp_rx_init(struct mimo_tcp_rx *rx, bool host, uint32_t max_data_len);
/*
 * The same with only MIMO_TCP_RX_STAGING_MIN bytes of staging, for a connection that may
 * never get past its ICReq (a target holding thousands of them pays a header each, not 64
 * KiB); mimo_tcp_rx_grow gives it the full staging once the connection is worth it.
 * Both return 0 or -ENOMEM.
 */
int mimo_tcp_rx_init_small(struct mimo_tcp_rx *rx, bool host, uint32_t max_data_len);
int mimo_tcp_rx_grow(struct mimo_tcp_rx *rx);
void mimo_tcp_rx_fini(struct mimo_tcp_rx *rx);

/*
 * Read what the socket has (one readv; over TLS, again while OpenSSL holds more than fitted)
 * and process every complete PDU. Returns the bytes read (0: nothing to read now), -ECONNRESET
 * when the peer closed, -EPROTO with rx->fes / rx->fei set after a protocol error (send a
 * TermReq and close), -ECONNABORTED when TLS failed, or another negative errno.
 */
int mimo_tcp_rx_read(struct mimo_tcp_rx *rx, struct mimo_tcp_sock *sk,
		     const struct mimo_tcp_rx_ops *ops, void *ctx);
/* The same parse from memory (fuzzing, tests): consumes all of data or stops at an error. */
int mimo_tcp_rx_feed(struct mimo_tcp_rx *rx, const void *data, size_t len,
		     const struct mimo_tcp_rx_ops *ops, void *ctx);
/* The header bytes of the PDU being received, for a TermReq (at most 128). */
static inline uint32_t mimo_tcp_rx_error_hdr(const struct mimo_tcp_rx *rx, const void **hdr)
{
	uint32_t n = rx->pdu.hdr.ch.hlen;

	*hdr = rx->pdu.hdr.raw;
	if (n < sizeof(struct mimo_nvme_tcp_ch))
		n = sizeof(struct mimo_nvme_tcp_ch);
	return n > MIMO_NVME_TCP_TERM_REQ_DATA_MAX ? MIMO_NVME_TCP_TERM_REQ_DATA_MAX : n;
}

/* --- sending ------------------------------------------------------------------------------- */

#define MIMO_TCP_SEND_IOV 4

/* One PDU to send, embedded in the caller's request: header, data, data digest. */
struct mimo_tcp_send {
	struct iovec iov[MIMO_TCP_SEND_IOV];
	uint8_t iovcnt;
	uint32_t len;
	/* Runs once every byte is in the socket (the buffers may be reused). May be NULL. */
	void (*done)(struct mimo_tcp_send *s);
	STAILQ_ENTRY(mimo_tcp_send) link;
};

struct mimo_tcp_sendq {
	STAILQ_HEAD(, mimo_tcp_send) q;
	size_t offset; /* bytes of the first PDU already sent */
	size_t bytes;  /* queued and not yet sent */
	uint32_t count;
};

void mimo_tcp_sendq_init(struct mimo_tcp_sendq *sq);

static inline void mimo_tcp_send_reset(struct mimo_tcp_send *s)
{
	s->iovcnt = 0;
	s->len = 0;
}
static inline void mimo_tcp_send_add(struct mimo_tcp_send *s, void *base, size_t len)
{
	if (len == 0)
		return;
	s->iov[s->iovcnt].iov_base = base;
	s->iov[s->iovcnt].iov_len = len;
	s->iovcnt++;
	s->len += (uint32_t)len;
}

void mimo_tcp_sendq_push(struct mimo_tcp_sendq *sq, struct mimo_tcp_send *s);
static inline bool mimo_tcp_sendq_empty(const struct mimo_tcp_sendq *sq)
{
	return STAILQ_EMPTY(&sq->q);
}
/* Write as much as the socket takes. Returns 0 (all sent), 1 (the socket is full: wait for
 * EPOLLOUT) or a negative errno. done callbacks run for every PDU fully sent (over TLS: once
 * OpenSSL took every byte of it). */
int mimo_tcp_sendq_flush(struct mimo_tcp_sendq *sq, struct mimo_tcp_sock *sk);
/*
 * The same in two halves, for a caller that sends asynchronously (io_uring): gather the
 * iovecs of what is queued (from the first unsent byte; at most max, whole PDUs) - they stay
 * valid until the bytes are advanced past - then, once n bytes went, drop them, running done
 * for every PDU they finish.
 */
int mimo_tcp_sendq_gather(const struct mimo_tcp_sendq *sq, struct iovec *iov, int max);
void mimo_tcp_sendq_advance(struct mimo_tcp_sendq *sq, size_t n);
/* Drop everything queued (the connection is gone), running done for each. */
void mimo_tcp_sendq_abort(struct mimo_tcp_sendq *sq);

/* Build a TermReq (type H2C or C2H) carrying the first bytes of the offending header. */
uint32_t mimo_tcp_term_req_build(void *hdr, uint8_t type, uint16_t fes, uint32_t fei,
				 const void *err_hdr, uint32_t err_len);

#endif
