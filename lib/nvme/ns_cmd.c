/*
 * NVM command set I/O: read, write, compare, write zeroes, flush, deallocate, and raw I/O.
 * Each fills the SQE straight into its command slot: no intermediate copy, no allocation.
 */
#include <errno.h>
#include <string.h>

#include "compiler.h"
#include "nvme_internal.h"

/* NLB is 16 bits, 0's based. */
#define MAX_BLOCKS_PER_CMD 65536u

static inline int rw(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair, uint8_t opc, void *buf,
		     uint64_t lba, uint32_t lba_count, mimo_nvme_cmd_cb cb, void *cb_arg,
		     uint32_t io_flags, enum nvme_dir dir)
{
	struct mimo_nvme_qpair *qp = qpair;
	struct mimo_nvme_cmd *cmd;
	struct nvme_req *req;
	uint64_t len = (uint64_t)lba_count * ns->sector_size;

	if (mimo_unlikely(lba_count == 0 || lba_count > MAX_BLOCKS_PER_CMD ||
			  len > ns->ctrlr->max_xfer || (dir != DIR_NONE && buf == NULL)))
		return -EINVAL;
	if (mimo_unlikely(qp->state == QP_FAILED))
		return -ENXIO;
	/* A namespace removed or replaced under its ID: its blocks are not what the caller
	 * sized this I/O for. */
	if (mimo_unlikely(!mimo_nvme_ns_is_active(ns)))
		return -ENODEV;
	req = nvme_qpair_get_req(qp);
	if (mimo_unlikely(req == NULL))
		return -ENOMEM;
	cmd = nvme_req_cmd(req);
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = opc;
	cmd->nsid = ns->id;
	cmd->cdw10 = (uint32_t)lba;
	cmd->cdw11 = (uint32_t)(lba >> 32);
	cmd->cdw12 = (lba_count - 1) | (io_flags & 0xffff0000u);
	return nvme_qpair_submit_req(req, buf, dir == DIR_NONE ? 0 : (uint32_t)len, dir, cb,
				     cb_arg);
}

MIMO_EXPORT int mimo_nvme_ns_cmd_read(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
				      void *buf, uint64_t lba, uint32_t lba_count,
				      mimo_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags)
{
	return rw(ns, qpair, MIMO_NVME_OPC_READ, buf, lba, lba_count, cb, cb_arg, io_flags,
		  DIR_C2H);
}

MIMO_EXPORT int mimo_nvme_ns_cmd_write(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
				       const void *buf, uint64_t lba, uint32_t lba_count,
				       mimo_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags)
{
	/* The data only ever leaves from buf. */
	return rw(ns, qpair, MIMO_NVME_OPC_WRITE, (void *)buf, lba, lba_count, cb, cb_arg, io_flags,
		  DIR_H2C);
}

MIMO_EXPORT int mimo_nvme_ns_cmd_compare(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
					 const void *buf, uint64_t lba, uint32_t lba_count,
					 mimo_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags)
{
	return rw(ns, qpair, MIMO_NVME_OPC_COMPARE, (void *)buf, lba, lba_count, cb, cb_arg,
		  io_flags, DIR_H2C);
}

MIMO_EXPORT int mimo_nvme_ns_cmd_write_zeroes(struct mimo_nvme_ns *ns,
					      struct mimo_nvme_qpair *qpair, uint64_t lba,
					      uint32_t lba_count, mimo_nvme_cmd_cb cb, void *cb_arg,
					      uint32_t io_flags)
{
	struct mimo_nvme_qpair *qp = qpair;
	struct mimo_nvme_cmd *cmd;
	struct nvme_req *req;

	/* No data moves: the transfer size limit does not apply, only NLB's width. */
	if (lba_count == 0 || lba_count > MAX_BLOCKS_PER_CMD)
		return -EINVAL;
	if (qp->state == QP_FAILED)
		return -ENXIO;
	if (!mimo_nvme_ns_is_active(ns))
		return -ENODEV;
	req = nvme_qpair_get_req(qp);
	if (req == NULL)
		return -ENOMEM;
	cmd = nvme_req_cmd(req);
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = MIMO_NVME_OPC_WRITE_ZEROES;
	cmd->nsid = ns->id;
	cmd->cdw10 = (uint32_t)lba;
	cmd->cdw11 = (uint32_t)(lba >> 32);
	cmd->cdw12 = (lba_count - 1) | (io_flags & 0xffff0000u);
	return nvme_qpair_submit_req(req, NULL, 0, DIR_NONE, cb, cb_arg);
}

MIMO_EXPORT int mimo_nvme_ns_cmd_flush(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
				       mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd cmd = { 0 };

	if (!mimo_nvme_ns_is_active(ns))
		return -ENODEV;
	cmd.opc = MIMO_NVME_OPC_FLUSH;
	cmd.nsid = ns->id;
	return nvme_qpair_submit(qpair, &cmd, NULL, 0, cb, cb_arg);
}

MIMO_EXPORT int mimo_nvme_ns_cmd_deallocate(struct mimo_nvme_ns *ns, struct mimo_nvme_qpair *qpair,
					    const struct mimo_nvme_dsm_range *ranges,
					    uint16_t num_ranges, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd cmd = { 0 };

	_Static_assert(sizeof(struct mimo_nvme_dsm_range) == 16, "DSM range");
	if (ranges == NULL || num_ranges == 0 || num_ranges > 256)
		return -EINVAL;
	if (!mimo_nvme_ns_is_active(ns))
		return -ENODEV;
	cmd.opc = MIMO_NVME_OPC_DSM;
	cmd.nsid = ns->id;
	cmd.cdw10 = num_ranges - 1u; /* 0's based */
	cmd.cdw11 = 1u << 2;	     /* attribute: deallocate */
	return nvme_qpair_submit(qpair, &cmd, (void *)ranges,
				 num_ranges * (uint32_t)sizeof(*ranges), cb, cb_arg);
}

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_io_raw(struct mimo_nvme_ctrlr *ctrlr,
					   struct mimo_nvme_qpair *qpair,
					   const struct mimo_nvme_cmd *cmd, void *buf, uint32_t len,
					   mimo_nvme_cmd_cb cb, void *cb_arg)
{
	if (ctrlr == NULL || qpair == NULL || cmd == NULL)
		return -EINVAL;
	if (len > ctrlr->max_xfer)
		return -EINVAL;
	return nvme_qpair_submit(qpair, cmd, buf, len, cb, cb_arg);
}
