/*
 * The admin queue: commands (raw and the common ones), properties, keep-alive, and the
 * asynchronous event requests kept outstanding, whose namespace notices trigger a rescan.
 */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "compiler.h"
#include "log.h"
#include "nvme_internal.h"

/* Event types and notices of Asynchronous Event Request completions (cdw0). */
#define AER_TYPE_NOTICE		  2
#define AER_INFO_NS_ATTR_CHANGED  0x00
#define AER_INFO_DISCOVERY_CHANGE 0xf0
/* Async Event Configuration bits the host may enable (mirroring OAES). */
#define AEC_NS_ATTR	 (1u << 8)
#define AEC_DISC_CHANGED (1u << 31)

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_admin_raw(struct mimo_nvme_ctrlr *ctrlr,
					      const struct mimo_nvme_cmd *cmd, void *buf,
					      uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	if (ctrlr == NULL || ctrlr->adminq == NULL || cmd == NULL)
		return -EINVAL;
	return nvme_qpair_submit(ctrlr->adminq, cmd, buf, len, cb, cb_arg);
}

struct sync_wait {
	bool done;
	struct mimo_nvme_cpl cpl;
};

static void sync_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct sync_wait *w = arg;

	w->cpl = *cpl;
	w->done = true;
}

int nvme_admin_wait(struct mimo_nvme_ctrlr *ctrlr, const bool *done)
{
	while (!*done) {
		int rc = mimo_nvme_ctrlr_process_admin_completions(ctrlr);

		if (*done)
			break;
		if (rc == -ENXIO)
			return -ENXIO;
		nvme_qpair_wait_io(ctrlr->adminq, 1);
	}
	return 0;
}

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_admin_sync(struct mimo_nvme_ctrlr *ctrlr,
					       const struct mimo_nvme_cmd *cmd, void *buf,
					       uint32_t len, struct mimo_nvme_cpl *cpl)
{
	struct sync_wait w = { 0 };
	int rc = mimo_nvme_ctrlr_cmd_admin_raw(ctrlr, cmd, buf, len, sync_cb, &w);

	if (rc != 0)
		return rc;
	/* A failing queue completes the command (aborted), so this always ends. */
	rc = nvme_admin_wait(ctrlr, &w.done);
	if (rc != 0 && !w.done)
		return rc;
	if (cpl != NULL)
		*cpl = w.cpl;
	return 0;
}

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_identify(struct mimo_nvme_ctrlr *ctrlr, uint8_t cns,
					     uint32_t nsid, void *buf, uint32_t len,
					     mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd cmd = { 0 };

	cmd.opc = MIMO_NVME_OPC_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	return mimo_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb, cb_arg);
}

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_get_log_page(struct mimo_nvme_ctrlr *ctrlr, uint8_t lid,
						 uint32_t nsid, void *buf, uint32_t len,
						 uint64_t offset, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd cmd = { 0 };
	uint32_t numd;

	/* Whole dwords, at a dword offset. */
	if (len < 4 || len % 4 != 0 || offset % 4 != 0)
		return -EINVAL;
	numd = len / 4 - 1; /* 0's based */
	cmd.opc = MIMO_NVME_OPC_GET_LOG_PAGE;
	cmd.nsid = nsid;
	cmd.cdw10 = lid | (numd & 0xffff) << 16;
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)offset;
	cmd.cdw13 = (uint32_t)(offset >> 32);
	return mimo_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb, cb_arg);
}

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_get_feature(struct mimo_nvme_ctrlr *ctrlr, uint8_t fid,
						uint32_t cdw11, void *buf, uint32_t len,
						mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd cmd = { 0 };

	cmd.opc = MIMO_NVME_OPC_GET_FEATURES;
	cmd.cdw10 = fid;
	cmd.cdw11 = cdw11;
	return mimo_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb, cb_arg);
}

MIMO_EXPORT int mimo_nvme_ctrlr_cmd_set_feature(struct mimo_nvme_ctrlr *ctrlr, uint8_t fid,
						uint32_t cdw11, uint32_t cdw12, void *buf,
						uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd cmd = { 0 };

	cmd.opc = MIMO_NVME_OPC_SET_FEATURES;
	cmd.cdw10 = fid;
	cmd.cdw11 = cdw11;
	cmd.cdw12 = cdw12;
	return mimo_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb, cb_arg);
}

/* --- properties ----------------------------------------------------------------------------- */

static int prop_cmd(struct mimo_nvme_ctrlr *ctrlr, uint8_t fctype, uint32_t ofst, uint8_t size8,
		    uint64_t value, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	union {
		struct mimo_nvme_cmd cmd;
		struct mimo_nvmf_prop_cmd prop;
	} u;

	memset(&u, 0, sizeof(u));
	u.prop.opc = MIMO_NVME_OPC_FABRIC;
	u.prop.fctype = fctype;
	u.prop.attrib = size8 ? 1 : 0;
	u.prop.ofst = ofst;
	u.prop.value = value;
	return nvme_qpair_submit(ctrlr->adminq, &u.cmd, NULL, 0, cb, cb_arg);
}

int nvme_prop_get(struct mimo_nvme_ctrlr *ctrlr, uint32_t ofst, uint8_t size8, mimo_nvme_cmd_cb cb,
		  void *cb_arg)
{
	return prop_cmd(ctrlr, MIMO_NVMF_FCTYPE_PROPERTY_GET, ofst, size8, 0, cb, cb_arg);
}

int nvme_prop_set(struct mimo_nvme_ctrlr *ctrlr, uint32_t ofst, uint8_t size8, uint64_t value,
		  mimo_nvme_cmd_cb cb, void *cb_arg)
{
	return prop_cmd(ctrlr, MIMO_NVMF_FCTYPE_PROPERTY_SET, ofst, size8, value, cb, cb_arg);
}

/* --- keep alive ----------------------------------------------------------------------------- */

void nvme_ctrlr_start_keep_alive(struct mimo_nvme_ctrlr *ctrlr)
{
	uint32_t kato = ctrlr->opts.keep_alive_timeout_ms;

	if (kato == 0)
		return;
	/* Half the timeout, as SPDK's and Linux's hosts do: one lost command is survivable. */
	ctrlr->ka_interval_ns = (int64_t)kato * 1000000 / 2;
	ctrlr->next_ka_ns = mimo_now_ns() + ctrlr->ka_interval_ns;
}

static void keep_alive_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_ctrlr *ctrlr = arg;

	ctrlr->ka_outstanding = false;
	if (mimo_nvme_cpl_is_error(cpl) &&
	    mimo_nvme_status_sc(cpl->status) != MIMO_NVME_SC_ABORTED_SQ_DELETION)
		MIMO_WARN(NVME_COMP, "%s: Keep Alive failed: sct %u sc 0x%02x", ctrlr->trid.subnqn,
			  mimo_nvme_status_sct(cpl->status), mimo_nvme_status_sc(cpl->status));
}

static void keep_alive(struct mimo_nvme_ctrlr *ctrlr)
{
	struct mimo_nvme_cmd cmd = { 0 };
	int64_t now = mimo_now_ns();

	if (ctrlr->ka_outstanding) {
		/* Not answered within KATO: the target has given up on us by now, or cannot
		 * answer at all (hung, stopped, a network that drops everything). Fail the admin
		 * queue: outstanding commands complete aborted, the controller is lost. */
		if (now - ctrlr->ka_sent_ns >
		    (int64_t)ctrlr->opts.keep_alive_timeout_ms * 1000000) {
			MIMO_ERR(NVME_COMP,
				 "%s: Keep Alive not answered within %u ms: controller lost",
				 ctrlr->trid.subnqn, ctrlr->opts.keep_alive_timeout_ms);
			nvme_qpair_fail(ctrlr->adminq, -ETIMEDOUT);
		}
		return;
	}
	if (now < ctrlr->next_ka_ns)
		return;
	cmd.opc = MIMO_NVME_OPC_KEEP_ALIVE;
	if (nvme_qpair_submit(ctrlr->adminq, &cmd, NULL, 0, keep_alive_done, ctrlr) == 0) {
		ctrlr->ka_outstanding = true;
		ctrlr->ka_sent_ns = now;
	}
	ctrlr->next_ka_ns = now + ctrlr->ka_interval_ns;
}

int nvme_admin_process(struct mimo_nvme_ctrlr *ctrlr, bool *freed)
{
	int rc;

	ctrlr->admin_depth++;
	rc = nvme_qpair_process(ctrlr->adminq, 0);
	if (--ctrlr->admin_depth == 0 && ctrlr->free_pending) {
		ctrlr->free_pending = false;
		nvme_ctrlr_free(ctrlr);
		*freed = true;
		return -ENXIO;
	}
	return rc;
}

MIMO_EXPORT int mimo_nvme_ctrlr_process_admin_completions(struct mimo_nvme_ctrlr *ctrlr)
{
	bool freed = false;
	int rc;

	if (ctrlr == NULL || ctrlr->adminq == NULL)
		return -EINVAL;
	/* Before processing: a Keep Alive queued now leaves with this call's flush, not with
	 * the next call's (which may be a poll period away). */
	if (ctrlr->ka_interval_ns != 0 && !ctrlr->detaching && ctrlr->adminq->state == QP_READY)
		keep_alive(ctrlr);
	rc = nvme_admin_process(ctrlr, &freed);
	return rc;
}

/* --- asynchronous events -------------------------------------------------------------------- */

MIMO_EXPORT void mimo_nvme_ctrlr_register_aer_callback(struct mimo_nvme_ctrlr *ctrlr,
						       mimo_nvme_aer_cb cb, void *cb_arg)
{
	ctrlr->aer_cb = cb;
	ctrlr->aer_arg = cb_arg;
}

static void aer_done(void *arg, const struct mimo_nvme_cpl *cpl);

static void submit_aer(struct mimo_nvme_ctrlr *ctrlr)
{
	struct mimo_nvme_cmd cmd = { 0 };

	cmd.opc = MIMO_NVME_OPC_ASYNC_EVENT_REQ;
	if (nvme_qpair_submit(ctrlr->adminq, &cmd, NULL, 0, aer_done, ctrlr) == 0)
		ctrlr->aers_outstanding++;
}

struct aer_notice {
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_cpl cpl;
};

static void notice_scanned(void *arg, int rc)
{
	struct mimo_nvme_ctrlr *ctrlr = arg;

	if (rc != 0 && !ctrlr->detaching)
		MIMO_WARN(NVME_COMP, "%s: namespace rescan failed: %s", ctrlr->trid.subnqn,
			  strerror(-rc));
	if (!ctrlr->detaching && ctrlr->aer_cb != NULL) {
		struct mimo_nvme_cpl cpl = { 0 };

		cpl.cdw0 = AER_TYPE_NOTICE | AER_INFO_NS_ATTR_CHANGED << 8 |
			   (uint32_t)MIMO_NVME_LOG_CHANGED_NS_LIST << 16;
		ctrlr->aer_cb(ctrlr->aer_arg, &cpl);
	}
}

/* The changed namespace list was read (which re-arms the notice): now find out what. */
static void changed_list_read(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_ctrlr *ctrlr = arg;
	int rc;

	(void)cpl; /* read or not, the list of namespaces is what counts */
	if (ctrlr->detaching)
		return;
	rc = nvme_ns_scan(ctrlr, notice_scanned, ctrlr);
	/* -EBUSY: the scan under way repeats itself and reports. */
	if (rc != 0 && rc != -EBUSY)
		notice_scanned(ctrlr, rc);
}

static void aer_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_ctrlr *ctrlr = arg;
	uint8_t type, info, lid;

	ctrlr->aers_outstanding--;
	/* Aborted (the queue went away) or refused (limit): leave it there. */
	if (mimo_nvme_cpl_is_error(cpl) || ctrlr->detaching)
		return;
	type = cpl->cdw0 & 7;
	info = (cpl->cdw0 >> 8) & 0xff;
	lid = (cpl->cdw0 >> 16) & 0xff;
	submit_aer(ctrlr);
	MIMO_DEBUG(NVME_COMP, "%s: asynchronous event type %u info 0x%02x log 0x%02x",
		   ctrlr->trid.subnqn, type, info, lid);
	if (type == AER_TYPE_NOTICE && info == AER_INFO_NS_ATTR_CHANGED && !ctrlr->is_discovery) {
		if (mimo_nvme_ctrlr_cmd_get_log_page(ctrlr, MIMO_NVME_LOG_CHANGED_NS_LIST,
						     0xffffffff, ctrlr->aer_log, 4096, 0,
						     changed_list_read, ctrlr) != 0)
			changed_list_read(ctrlr, cpl);
		return;
	}
	if (ctrlr->aer_cb != NULL)
		ctrlr->aer_cb(ctrlr->aer_arg, cpl);
}

static void aec_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_ctrlr *ctrlr = arg;

	if (mimo_nvme_cpl_is_error(cpl))
		MIMO_DEBUG(NVME_COMP, "%s: Async Event Configuration refused (sc 0x%02x)",
			   ctrlr->trid.subnqn, mimo_nvme_status_sc(cpl->status));
}

void nvme_ctrlr_start_aers(struct mimo_nvme_ctrlr *ctrlr)
{
	uint32_t aec = ctrlr->cdata.oaes & (AEC_NS_ATTR | AEC_DISC_CHANGED);
	uint32_t n = MIMO_MIN((uint32_t)ctrlr->cdata.aerl + 1, (uint32_t)NVME_MAX_AERS);

	/* Only what OAES says the controller can send: others may refuse unknown bits. */
	if (aec != 0)
		(void)mimo_nvme_ctrlr_cmd_set_feature(ctrlr, MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG, aec,
						      0, NULL, 0, aec_done, ctrlr);
	/* Leave room on the admin queue for keep-alive and the commands of a rescan. */
	if (n + 3 > ctrlr->adminq->num_reqs)
		n = ctrlr->adminq->num_reqs > 3 ? ctrlr->adminq->num_reqs - 3 : 0;
	for (uint32_t i = 0; i < n; i++)
		submit_aer(ctrlr);
}
