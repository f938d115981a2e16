/*
 * The NVM command set over bdevs: Read, Write, Compare, Write Zeroes, Flush, Dataset
 * Management. On the queue pair's reactor, through that reactor's channel of the namespace.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transport.h"

#define COMP "nvmf"

/* --- per-reactor namespace state ----------------------------------------------------------- */

static struct nvmf_ns_reactor *ns_here(struct nvmf_ns *ns)
{
	return &ns->per_reactor[mimo_reactor_index(mimo_reactor_current())];
}

struct mimo_io_channel *nvmf_ns_get_channel(struct nvmf_ns *ns)
{
	struct nvmf_ns_reactor *st = ns_here(ns);

	if (mimo_unlikely(st->ch == NULL))
		st->ch = mimo_bdev_get_io_channel(ns->desc);
	return st->ch;
}

static void ns_drained_on_tgt(void *arg)
{
	struct nvmf_ns *ns = arg;

	ns->drained(ns);
}

static void ns_release_here(struct nvmf_ns *ns, struct nvmf_ns_reactor *st)
{
	if (st->ch != NULL)
		mimo_put_io_channel(st->ch);
	st->ch = NULL;
	if (atomic_fetch_sub(&ns->draining_reactors, 1) == 1)
		nvmf_msg(ns->subsys->tgt->reactor, ns_drained_on_tgt, ns);
}

void nvmf_ns_io_done(struct nvmf_ns *ns)
{
	struct nvmf_ns_reactor *st = ns_here(ns);

	if (--st->inflight == 0 && st->draining)
		ns_release_here(ns, st);
}

static void ns_drain_here(void *arg)
{
	struct nvmf_ns *ns = arg;
	struct nvmf_ns_reactor *st = ns_here(ns);

	st->draining = true;
	if (st->inflight == 0)
		ns_release_here(ns, st);
}

void nvmf_ns_drain(struct nvmf_ns *ns, void (*done)(struct nvmf_ns *ns))
{
	uint32_t n = mimo_reactor_count();

	ns->drained = done;
	atomic_store(&ns->draining_reactors, (int)n);
	for (uint32_t i = 0; i < n; i++)
		nvmf_msg(mimo_reactor_get(i), ns_drain_here, ns);
}

void nvmf_ns_free(struct nvmf_ns *ns)
{
	struct nvmf_host *h;

	while ((h = TAILQ_FIRST(&ns->visible_hosts)) != NULL) {
		TAILQ_REMOVE(&ns->visible_hosts, h, link);
		free(h);
	}
	mimo_bdev_close(ns->desc);
	free(ns->bdev_name);
	free(ns);
}

/* --- completion ---------------------------------------------------------------------------- */

static void finish(struct nvmf_req *req, uint8_t sct, uint8_t sc)
{
	nvmf_req_set_status(req, sct, sc);
	nvmf_req_complete(req);
}

static void io_status(struct nvmf_req *req, bool success)
{
	if (success)
		nvmf_req_set_status(req, 0, 0);
	else
		nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
}

static void io_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct nvmf_req *req = arg;
	struct nvmf_ns *ns = req->ns;
	bool nomem = !success && mimo_bdev_io_get_status(io) == -ENOMEM;
	uint8_t sct, sc;
	bool nvme_status = !success && mimo_bdev_io_get_nvme_status(io, &sct, &sc);

	mimo_bdev_free_io(io);
	req->ns = NULL;
	nvmf_ns_io_done(ns);
	if (mimo_unlikely(nomem)) {
		/* Out of resources below: not the host's problem; try again next turn. */
		nvmf_req_retry_later(req);
		return;
	}
	if (nvme_status) /* what the bdev below said (an NVMe device, an injected error) */
		nvmf_req_set_status(req, sct, sc);
	else
		io_status(req, success);
	nvmf_req_complete(req);
}

/*
 * A zero-copy read is in: req->data is the bdev's memory. The bdev I/O and the namespace's
 * in-flight count stay until nvmf_req_zcopy_end, so the namespace cannot drain, nor its bdev
 * go away (and its memory with it), while the transport still sends from that memory.
 */
static void zcopy_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct nvmf_req *req = arg;
	struct iovec *iov;
	int iovcnt;

	if (mimo_unlikely(!success)) {
		io_done(io, success, arg);
		return;
	}
	mimo_bdev_io_get_iovec(io, &iov, &iovcnt);
	req->data = iov[0].iov_base;
	req->zcopy_io = io;
	nvmf_req_set_status(req, 0, 0);
	nvmf_req_complete(req);
}

bool nvmf_req_zcopy_possible(struct nvmf_req *req)
{
	struct nvmf_ns *ns;

	if (req->cmd.opc != MIMO_NVME_OPC_READ || req->qp->qid == 0 || req->qp->ctrlr == NULL ||
	    !req->qp->tt->opts.zcopy)
		return false;
	ns = nvmf_ctrlr_get_ns(req->qp->ctrlr, req->cmd.nsid);
	return ns != NULL && mimo_bdev_zcopy_supported(ns->bdev);
}

/* A zero-copy write given up on is done with: only now may the namespace drain. */
static void zcopy_write_dropped(struct mimo_bdev_io *io, bool success, void *arg)
{
	(void)success;
	mimo_bdev_free_io(io);
	nvmf_ns_io_done(arg);
}

void nvmf_req_zcopy_end(struct nvmf_req *req)
{
	struct nvmf_ns *ns = req->ns;
	struct mimo_bdev_io *io = req->zcopy_io;

	if (io == NULL)
		return;
	req->zcopy_io = NULL;
	req->data = NULL;
	req->ns = NULL;
	if (req->cmd.opc == MIMO_NVME_OPC_WRITE) {
		/* Its data did not all come (the connection went): the blocks may hold part of
		 * it. The bdev layer tells whoever caches them, then hands the I/O back. */
		mimo_bdev_zcopy_write_end(io, false, zcopy_write_dropped, ns);
		return;
	}
	mimo_bdev_free_io(io);
	nvmf_ns_io_done(ns);
}

/* A submission the bdev refused. -ENOMEM is temporary: the poll group retries (request.c). */
static void submit_failed(struct nvmf_req *req, int rc)
{
	struct nvmf_ns *ns = req->ns;

	req->ns = NULL;
	nvmf_ns_io_done(ns);
	if (rc == -ENOMEM) {
		nvmf_req_retry_later(req);
		return;
	}
	if (rc == -ENOTSUP)
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE);
	else if (rc == -ENODEV)
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_NAMESPACE_NOT_READY);
	else if (rc == -EINVAL)
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_LBA_OUT_OF_RANGE);
	else
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
}

/* --- the commands -------------------------------------------------------------------------- */

static bool range_ok(const struct nvmf_ns *ns, uint64_t slba, uint64_t nlb)
{
	return slba < ns->num_blocks && nlb <= ns->num_blocks - slba;
}

static void compare_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct nvmf_req *req = arg;
	struct nvmf_ns *ns = req->ns;
	uint32_t len = (uint32_t)(((req->cmd.cdw12 & 0xffff) + 1u) << ns->block_shift);

	mimo_bdev_free_io(io);
	req->ns = NULL;
	nvmf_ns_io_done(ns);
	if (!success)
		nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
	else if (memcmp(req->aux, req->data, len) != 0)
		nvmf_req_set_status(req, MIMO_NVME_SCT_MEDIA, MIMO_NVME_SC_COMPARE_FAILURE);
	else
		nvmf_req_set_status(req, 0, 0);
	free(req->aux);
	req->aux = NULL;
	nvmf_req_complete(req);
}

static void dsm_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct nvmf_req *req = arg;

	mimo_bdev_free_io(io);
	if (!success)
		req->sub_status = -EIO;
	if (--req->sub_pending != 0)
		return;
	nvmf_ns_io_done(req->ns);
	req->ns = NULL;
	io_status(req, req->sub_status == 0);
	nvmf_req_complete(req);
}

struct dsm_range {
	uint32_t attributes;
	uint32_t length;
	uint64_t slba;
};

static void dsm(struct nvmf_req *req, struct nvmf_ns *ns, struct mimo_io_channel *ch)
{
	uint32_t nr = (req->cmd.cdw10 & 0xff) + 1;
	const struct dsm_range *r = (const void *)req->data;
	uint32_t submitted = 0;

	if (req->data_len < nr * sizeof(*r)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	/* Only deallocate does anything; the other attributes are hints. */
	if (!(req->cmd.cdw11 & (1u << 2)) ||
	    !mimo_bdev_io_type_supported(ns->bdev, MIMO_BDEV_IO_UNMAP)) {
		finish(req, 0, 0);
		return;
	}
	for (uint32_t i = 0; i < nr; i++) {
		if (!range_ok(ns, r[i].slba, r[i].length)) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_LBA_OUT_OF_RANGE);
			return;
		}
	}
	req->ns = ns;
	ns_here(ns)->inflight++;
	req->sub_pending = 1; /* held until every range is submitted */
	req->sub_status = 0;
	for (uint32_t i = 0; i < nr; i++) {
		int rc;

		if (r[i].length == 0)
			continue;
		req->sub_pending++;
		rc = mimo_bdev_unmap_blocks(ns->desc, ch, r[i].slba, r[i].length, dsm_done, req);
		if (rc != 0) {
			req->sub_pending--;
			req->sub_status = rc;
			break;
		}
		submitted++;
	}
	(void)submitted;
	if (--req->sub_pending == 0) {
		nvmf_ns_io_done(ns);
		req->ns = NULL;
		io_status(req, req->sub_status == 0);
		nvmf_req_complete(req);
	}
}

/* The optional commands the transport's masked_oncs took away (Identify does not list them). */
static bool oncs_masked(uint16_t masked, uint8_t opc)
{
	if (mimo_likely(masked == 0))
		return false;
	return (opc == MIMO_NVME_OPC_COMPARE && (masked & (1u << 0))) ||
	       (opc == MIMO_NVME_OPC_DSM && (masked & (1u << 2))) ||
	       (opc == MIMO_NVME_OPC_WRITE_ZEROES && (masked & (1u << 3)));
}

/* Whether the namespace's ANA group is optimized or non-optimized on the controller's path
 * (a relaxed load of the state the target's reactor copied into the controller). */
static bool ana_accessible(const struct nvmf_ctrlr *c, const struct nvmf_ns *ns)
{
	uint32_t g = atomic_load_explicit(&ns->anagrpid, memory_order_relaxed);
	uint8_t st;

	if (c->ana_state == NULL || g == 0 || g > ns->subsys->max_nsid)
		return true;
	st = atomic_load_explicit(&c->ana_state[g - 1], memory_order_relaxed);
	return st == MIMO_NVME_ANA_OPTIMIZED || st == MIMO_NVME_ANA_NON_OPTIMIZED;
}

/*
 * Everything nvmf_io_exec checks before a Write, done before its data arrives, so that data
 * landing in the bdev's memory never belongs to a command that is then refused: a running
 * I/O queue, not fused, a namespace this controller sees, an accessible ANA path, the range,
 * and an SGL of exactly the blocks' length (anything else goes the buffered way, whose
 * checks then answer the host as always). The namespace is counted in flight from here, so
 * it cannot drain, nor its bdev's memory go, while data lands in it.
 */
bool nvmf_req_zcopy_write_start(struct nvmf_req *req)
{
	const struct mimo_nvme_cmd *cmd = &req->cmd;
	struct nvmf_qpair *qp = req->qp;
	struct nvmf_ns *ns;
	struct mimo_io_channel *ch;
	struct mimo_bdev_io *io;
	struct iovec *iov;
	uint64_t slba = cmd->cdw10 | (uint64_t)cmd->cdw11 << 32;
	uint32_t nlb = (cmd->cdw12 & 0xffff) + 1;
	int iovcnt;

	if (cmd->opc != MIMO_NVME_OPC_WRITE || (cmd->fuse_psdt & 3) != 0 || qp->qid == 0 ||
	    qp->state != NVMF_QP_RUNNING || qp->ctrlr == NULL || !qp->tt->opts.zcopy)
		return false;
	ns = nvmf_ctrlr_get_ns(qp->ctrlr, cmd->nsid);
	if (ns == NULL || !mimo_bdev_zcopy_supported(ns->bdev) || !range_ok(ns, slba, nlb) ||
	    ((uint64_t)nlb << ns->block_shift) != req->data_len)
		return false;
	if (mimo_unlikely(ns->subsys->ana_reporting) && !ana_accessible(qp->ctrlr, ns))
		return false;
	ch = nvmf_ns_get_channel(ns);
	if (ch == NULL || mimo_bdev_zcopy_write_start(ns->desc, ch, slba, nlb, &io) != 0)
		return false;
	mimo_bdev_io_get_iovec(io, &iov, &iovcnt);
	req->data = iov[0].iov_base;
	req->zcopy_io = io;
	req->ns = ns;
	ns_here(ns)->inflight++;
	return true;
}

void nvmf_io_exec(struct nvmf_req *req)
{
	const struct mimo_nvme_cmd *cmd = &req->cmd;
	struct nvmf_ns *ns;
	struct mimo_io_channel *ch;
	uint64_t slba = cmd->cdw10 | (uint64_t)cmd->cdw11 << 32;
	uint32_t nlb = (cmd->cdw12 & 0xffff) + 1;
	uint64_t len;
	int rc;

	if (req->zcopy_io != NULL) {
		/* A zero-copy write whose data is in the bdev: checked when it started. */
		struct mimo_bdev_io *io = req->zcopy_io;

		req->zcopy_io = NULL;
		mimo_bdev_zcopy_write_end(io, true, io_done, req);
		return;
	}
	ns = nvmf_ctrlr_get_ns(req->qp->ctrlr, cmd->nsid);
	if (mimo_unlikely(ns == NULL)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE);
		return;
	}
	if (mimo_unlikely(ns->subsys->ana_reporting) && !ana_accessible(req->qp->ctrlr, ns)) {
		finish(req, MIMO_NVME_SCT_PATH, MIMO_NVME_SC_ANA_INACCESSIBLE);
		return;
	}
	ch = nvmf_ns_get_channel(ns);
	if (mimo_unlikely(ch == NULL)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
		return;
	}
	len = (uint64_t)nlb << ns->block_shift;
	if (mimo_unlikely(oncs_masked(req->qp->tt->opts.masked_oncs, cmd->opc))) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE);
		return;
	}
	switch (cmd->opc) {
	case MIMO_NVME_OPC_READ:
	case MIMO_NVME_OPC_WRITE:
	case MIMO_NVME_OPC_COMPARE:
		if (mimo_unlikely(!range_ok(ns, slba, nlb))) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_LBA_OUT_OF_RANGE);
			return;
		}
		if (mimo_unlikely(len > req->data_len)) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		req->data_len = (uint32_t)len;
		break;
	case MIMO_NVME_OPC_WRITE_ZEROES:
		if (mimo_unlikely(!range_ok(ns, slba, nlb))) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_LBA_OUT_OF_RANGE);
			return;
		}
		break;
	case MIMO_NVME_OPC_FLUSH:
		if (!mimo_bdev_io_type_supported(ns->bdev, MIMO_BDEV_IO_FLUSH)) {
			finish(req, 0, 0); /* nothing cached below us */
			return;
		}
		break;
	case MIMO_NVME_OPC_DSM:
		dsm(req, ns, ch);
		return;
	default:
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE);
		return;
	}
	req->ns = ns;
	ns_here(ns)->inflight++;
	switch (cmd->opc) {
	case MIMO_NVME_OPC_READ:
		if (req->zcopy)
			/* No buffer was given (nvmf_req_zcopy_possible said yes): a bdev that no
			 * longer allows it (the namespace changed meanwhile) fails the read. */
			rc = mimo_bdev_zcopy_read_blocks(ns->desc, ch, slba, nlb, zcopy_done, req);
		else
			rc = mimo_bdev_read_blocks(ns->desc, ch, req->data, slba, nlb, io_done,
						   req);
		break;
	case MIMO_NVME_OPC_WRITE:
		rc = mimo_bdev_write_blocks(ns->desc, ch, req->data, slba, nlb, io_done, req);
		break;
	case MIMO_NVME_OPC_COMPARE:
		req->aux = aligned_alloc(4096, (len + 4095) & ~4095ull);
		if (req->aux == NULL) {
			rc = -ENOMEM;
			break;
		}
		rc = mimo_bdev_read_blocks(ns->desc, ch, req->aux, slba, nlb, compare_done, req);
		if (rc != 0) {
			free(req->aux);
			req->aux = NULL;
		}
		break;
	case MIMO_NVME_OPC_WRITE_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(ns->desc, ch, slba, nlb, io_done, req);
		break;
	default: /* flush */
		rc = mimo_bdev_flush_blocks(ns->desc, ch, 0, ns->num_blocks, io_done, req);
		break;
	}
	if (mimo_unlikely(rc != 0))
		/* -ENOTSUP from a zero-copy read is the bdev's, not the command's. */
		submit_failed(req, rc == -ENOTSUP && req->zcopy ? -EIO : rc);
}
