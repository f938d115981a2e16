/* Between the TCP transport's two halves: tcp.c (connections) and tcp_cmd.c (PDUs). */
#ifndef MIMO_NVMF_TCP_INTERNAL_H
#define MIMO_NVMF_TCP_INTERNAL_H

#include "nvmf_internal.h"

extern const struct mimo_tcp_rx_ops nvmf_tcp_rx_ops;

/* Queue the queue pair for the poll group's next flush. */
void nvmf_tcp_qpair_kick(struct nvmf_qpair *qp);
void nvmf_tcp_qpair_flush(struct nvmf_qpair *qp);
/* Send a C2HTermReq for the PDU being received and close. */
void nvmf_tcp_qpair_terminate(struct nvmf_qpair *qp, uint16_t fes, uint32_t fei);
void nvmf_tcp_qpair_close(struct nvmf_qpair *qp);
void nvmf_tcp_qpair_try_free(struct nvmf_qpair *qp);
void nvmf_tcp_qpair_leave_ctrlr(struct nvmf_qpair *qp);
/* After the ICReq: the queue pair's requests and full receive staging. 0 or -ENOMEM. */
int nvmf_tcp_qpair_alloc_reqs(struct nvmf_qpair *qp);
/* Connect succeeded: the connect timeout no longer applies. */
void nvmf_tcp_qpair_connected(struct nvmf_qpair *qp);

/* Large buffers (max_io_size) from the poll group's pool; NULL when the pool is dry. */
void *nvmf_tcp_buf_get(struct nvmf_poll_group *pg);
/* Back to the pool, or straight to the first request waiting for one. */
void nvmf_tcp_buf_put(struct nvmf_poll_group *pg, void *buf);
void nvmf_tcp_req_got_buf(struct nvmf_req *req, void *buf);
/* The request is done with: its buffers go back and it joins the free list. */
void nvmf_tcp_req_release(struct nvmf_req *req);

#endif
