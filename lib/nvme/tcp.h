/* The boundary between the queue pair (qpair.c) and its transports (tcp.c, loop.c). */
#ifndef MIMO_NVME_TCP_QPAIR_H
#define MIMO_NVME_TCP_QPAIR_H

#include "nvme_internal.h"

/* tcp.c (its ops: nvme_tcp_transport) */
/* Build the CapsuleCmd PDU of a prepared slot and queue it (sent at the next flush). */
void nvme_tcp_send_req(struct nvme_req *req);
/* Connect progress, send what is queued, one readv, send what the PDUs queued. */
void nvme_tcp_poll(struct mimo_nvme_qpair *qp);
void nvme_tcp_feed(struct mimo_nvme_qpair *qp, const void *data, size_t len);
void nvme_tcp_flush(struct mimo_nvme_qpair *qp);
void nvme_tcp_close(struct mimo_nvme_qpair *qp);

/* qpair.c */
void nvme_req_complete(struct nvme_req *req, const struct mimo_nvme_cpl *cpl);
/* Complete with a status of our own (a command that never reached the controller). */
void nvme_req_complete_status(struct nvme_req *req, uint8_t sct, uint8_t sc);
/* A PDU of req left the send queue (or was dropped). */
void nvme_req_sends_done(struct nvme_req *req);
/* ICResp accepted: send the Fabrics Connect. Returns 0 or -ENOMEM. */
int nvme_qpair_send_connect(struct mimo_nvme_qpair *qp);

#endif
