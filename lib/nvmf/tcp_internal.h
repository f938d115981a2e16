/*
 * The NVMe/TCP transport's structures, and what its parts share: tcp.c (listeners,
 * connections, poll groups, output), tcp_cmd.c (PDUs) and tcp_tls.c (the secure channel).
 * Each embeds the core's part of the object (nvmf_internal.h) as "core".
 */
#ifndef MIMO_NVMF_TCP_INTERNAL_H
#define MIMO_NVMF_TCP_INTERNAL_H

#include <sys/socket.h>

#include "accept_backoff.h"
#include "compiler.h"
#include "nvme_tcp.h"
#include "tls.h"
#include "transport.h"

struct nvmf_tcp_transport {
	struct nvmf_transport core;
	uint32_t max_conns;   /* per listener: the option, or what the fd limit allows */
	uint32_t qpairs_high; /* most connections since memory was last trimmed (tgt reactor) */
	bool trim_when_empty; /* trimmed while connections remained: trim again at none */
	uint64_t connect_timeout_ticks;
	uint32_t inline_size;	    /* per-request buffer: in-capsule data and small transfers */
	atomic_uint shared_buffers; /* large buffers allocated, over every poll group */
	struct mimo_tls_ctx *tls;   /* made with the first secure port (tcp_tls.c) */
	atomic_uint uring_qpairs;   /* connections served through io_uring now */
	/* Connections of a uring listener served by epoll: their reactor has no ring (it could
	 * not be made) or the ring could not take them. Since the start. */
	atomic_uint_fast64_t uring_fallback_qpairs;
	/* TLS reads that stopped at the per-turn budget with OpenSSL holding more bytes (read
	 * on the reactor's next turn). Since the start. */
	atomic_uint_fast64_t tls_reads_held;
};

/* A listening socket. On the target's reactor. Freed once it is closed and the last of
 * its connections is gone (they count against its cap until then). */
struct nvmf_tcp_port {
	struct nvmf_port core;
	int fd;
	struct mimo_fd_watch *watch;
	uint32_t nconns; /* accepted and not yet freed */
	uint64_t refused;
	struct mimo_accept_backoff backoff;
	bool uring; /* its connections move bytes through io_uring (tcp_uring.c) */
};

struct nvmf_tcp_uring;

/* One per reactor that serves queue pairs: flushes their output, lends large buffers. */
struct nvmf_tcp_poll_group {
	struct nvmf_poll_group core;
	struct nvmf_tcp_transport *tt;
	struct mimo_poller *poller;
	TAILQ_HEAD(, nvmf_tcp_qpair) dirty;	  /* output to flush */
	STAILQ_HEAD(, nvmf_tcp_req) buf_waiters;  /* requests waiting for a large buffer */
	TAILQ_HEAD(, nvmf_tcp_qpair) unconnected; /* oldest first: not yet past Connect */
	struct mimo_poller *timeout_poller;	  /* while unconnected is not empty */
	void **free_bufs;
	uint32_t num_free_bufs, max_free_bufs;
	struct nvmf_tcp_uring *uring; /* made with its first io_uring connection */
	bool uring_failed;	      /* could not be made: its connections use epoll */
	/* TLS connections whose last read left bytes in OpenSSL (rx.tls_held): read once each
	 * turn by the poll group's poller, oldest first, until one ends with nothing held. */
	TAILQ_HEAD(, nvmf_tcp_qpair) rx_held;
	uint64_t turn; /* the poller's turns, to read each held connection once a turn */
};

enum nvmf_tcp_req_state {
	NVMF_REQ_FREE,
	NVMF_REQ_RECV,	   /* its capsule is still arriving */
	NVMF_REQ_NEED_BUF, /* waiting for a large buffer */
	NVMF_REQ_R2T,	   /* R2T sent, H2CData arriving */
	NVMF_REQ_EXEC,	   /* with the core: the bdev, a retry, or the target's reactor */
	NVMF_REQ_SENDING,  /* response queued */
};

struct nvmf_tcp_req {
	struct nvmf_req core;
	struct nvmf_tcp_qpair *qp;
	enum nvmf_tcp_req_state state;
	uint16_t ttag;
	uint32_t h2c_done;   /* H2CData bytes received */
	bool h2c;	     /* data moves host to controller */
	bool data_is_large;  /* from the poll group's pool */
	bool data_is_malloc; /* admin data larger than the inline buffer */
	bool ddgst_error;    /* data arrived with a bad digest: fail without executing */
	uint8_t *inline_buf;
	uint32_t ddgst;
	struct mimo_tcp_send send_data; /* R2T or C2HData */
	struct mimo_tcp_send send_rsp;	/* CapsuleResp */
	uint8_t data_hdr[MIMO_TCP_HDR_BUF];
	uint8_t rsp_hdr[MIMO_TCP_HDR_BUF];
	STAILQ_ENTRY(nvmf_tcp_req) link; /* buf_waiters */
};

struct nvmf_tcp_qpair {
	struct nvmf_qpair core;
	struct nvmf_tcp_transport *tt;
	struct nvmf_tcp_poll_group *pg;
	struct mimo_tcp_sock sock;  /* .tls once a secure port's handshake is done */
	struct mimo_tls *handshake; /* a secure port's connection until its handshake is done */
	struct mimo_fd_watch *watch;
	bool want_out; /* EPOLLOUT armed */
	struct mimo_tcp_rx rx;
	struct mimo_tcp_sendq sq;
	bool dirty;
	bool hdgst, ddgst;
	uint8_t hpda;
	uint32_t maxh2cdata;

	struct nvmf_tcp_req *reqs;
	uint32_t num_reqs;
	struct nvmf_tcp_req **free_reqs; /* LIFO: the hot requests stay in cache */
	uint32_t num_free;

	struct mimo_tcp_send send_ctl; /* ICResp */
	uint8_t ctl_hdr[MIMO_TCP_HDR_BUF];
	struct mimo_tcp_send send_term; /* C2HTermReq */
	uint8_t term_hdr[MIMO_TCP_HDR_BUF];
	/* io_uring (tcp_uring.c); ring NULL: epoll. SQEs out (the multishot receive, one
	 * sendmsg): the queue pair is freed only once none is. */
	struct nvmf_tcp_uring *ring;
	uint8_t ring_ops;
	bool recv_armed, send_busy, free_pending;
	struct msghdr send_msg;
	struct iovec *send_iov;
	TAILQ_ENTRY(nvmf_tcp_qpair) zombie_link;
	bool unconnected;	 /* on pg->unconnected */
	uint64_t accepted_ticks; /* when the connect timeout started */
	TAILQ_ENTRY(nvmf_tcp_qpair) unconnected_link;
	TAILQ_ENTRY(nvmf_tcp_qpair) dirty_link;
	bool rx_held;	    /* on pg->rx_held */
	uint64_t held_turn; /* the poll group's turn when it was put there */
	TAILQ_ENTRY(nvmf_tcp_qpair) rx_held_link;
};

static inline struct nvmf_tcp_qpair *nvmf_tcp_qpair(struct nvmf_qpair *qp)
{
	return mimo_container_of(qp, struct nvmf_tcp_qpair, core);
}

static inline struct nvmf_tcp_req *nvmf_tcp_req(struct nvmf_req *req)
{
	return mimo_container_of(req, struct nvmf_tcp_req, core);
}

extern const struct mimo_tcp_rx_ops nvmf_tcp_rx_ops;

/* Queue the queue pair for the poll group's next flush. */
void nvmf_tcp_qpair_kick(struct nvmf_tcp_qpair *qp);
void nvmf_tcp_qpair_flush(struct nvmf_tcp_qpair *qp);
/* Send a C2HTermReq for the PDU being received and close. */
void nvmf_tcp_qpair_terminate(struct nvmf_tcp_qpair *qp, uint16_t fes, uint32_t fei);
void nvmf_tcp_qpair_close(struct nvmf_tcp_qpair *qp);
/* Read and parse what the socket has; a failure closes the queue pair. */
void nvmf_tcp_qpair_read(struct nvmf_tcp_qpair *qp);
/* Parse len bytes that arrived (io_uring's receive); a failure closes the queue pair. */
void nvmf_tcp_qpair_feed(struct nvmf_tcp_qpair *qp, const void *data, size_t len);
/* The last of freeing a queue pair: its socket, its memory, its count on the port. */
void nvmf_tcp_qpair_free_final(struct nvmf_tcp_qpair *qp);
/* After the ICReq: the queue pair's requests and full receive staging. 0 or -ENOMEM. */
int nvmf_tcp_qpair_alloc_reqs(struct nvmf_tcp_qpair *qp);
/* Connect succeeded: the connect timeout no longer applies. */
void nvmf_tcp_qpair_connected(struct nvmf_qpair *qp);

/* Large buffers (max_io_size) from the poll group's pool; NULL when the pool is dry. */
void *nvmf_tcp_buf_get(struct nvmf_tcp_poll_group *pg);
/* Back to the pool, or straight to the first request waiting for one. */
void nvmf_tcp_buf_put(struct nvmf_tcp_poll_group *pg, void *buf);
void nvmf_tcp_req_got_buf(struct nvmf_tcp_req *req, void *buf);
/* The request is done with: its buffers go back and it joins the free list. */
void nvmf_tcp_req_release(struct nvmf_tcp_req *req);
/* The core's completion hook (transport.h): send the response. */
void nvmf_tcp_queue_response(struct nvmf_req *req);

/* tcp_uring.c: connections whose bytes move through the poll group's io_uring. */

/* On the queue pair's reactor, before its first byte: serve it through the ring (made now if
 * this is the poll group's first). 0, or a negative errno: the caller serves it by epoll. */
int nvmf_tcp_uring_attach(struct nvmf_tcp_qpair *qp);
/* Prepare a sendmsg of what the send queue holds, unless one is in flight. */
void nvmf_tcp_uring_flush(struct nvmf_tcp_qpair *qp);
/* Hand the turn's SQEs to the kernel in one call. Returns 1 if there were any. */
int nvmf_tcp_uring_submit(struct nvmf_tcp_poll_group *pg);
/* The queue pair is closing: cancel its SQEs. */
void nvmf_tcp_uring_cancel(struct nvmf_tcp_qpair *qp);
/* The core frees the queue pair: true when SQEs are still out, and the ring calls
 * nvmf_tcp_qpair_free_final once the last completes. */
bool nvmf_tcp_uring_free_later(struct nvmf_tcp_qpair *qp);
void nvmf_tcp_uring_destroy(struct nvmf_tcp_poll_group *pg);

/* tcp_tls.c: NVMe/TCP's secure channel, TLS 1.3 with the PSKs of the hosts. */

/* A secure port is opening: the transport's server context, made once. 0 or -ENOMEM. */
int nvmf_tcp_tls_listen(struct nvmf_tcp_transport *tt);
/* A connection accepted on a secure port: its handshake comes before any PDU (qp->handshake).
 * 0 or -ENOMEM. */
int nvmf_tcp_tls_start(struct nvmf_tcp_qpair *qp);
/* The socket is ready while the handshake runs: step it. Done, the queue pair reads its
 * ICReq inside the channel; failed, it is closed. */
void nvmf_tcp_tls_step(struct nvmf_tcp_qpair *qp);
/* The discovery log's TSAS for a TCP port: SECTYPE TLS 1.3 on a secure one, else none. */
void nvmf_tcp_listener_discover(const struct nvmf_port *port, struct mimo_nvmf_discovery_entry *e);

#endif
