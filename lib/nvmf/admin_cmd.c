/* Admin commands that read or change controller data: Identify, Get Log Page, Get and Set
 * Features. On the target's reactor; the caller completes the request. */
#include <stdlib.h>
#include <string.h>

#include "transport.h"
#include "ticks.h"

#define AEN_NS_ATTR    (1u << 8)
#define AEN_ANA_CHANGE (1u << 11)
#define AEN_DISCOVERY  (1u << 31)

static bool is_discovery(const struct nvmf_ctrlr *c)
{
	return c->subsys->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY;
}

static void set_error(struct nvmf_req *req, uint8_t sct, uint8_t sc)
{
	nvmf_req_set_status(req, sct, sc);
}

/* Copy a string into a space-padded identify field. */
static void pad_copy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n);

	memset(dst, ' ', n);
	memcpy(dst, src, len);
}

/* Send len bytes of page from the request's buffer (the host's SGL may be longer). */
static void reply(struct nvmf_req *req, const void *page, uint32_t len)
{
	if (req->data_len < len) {
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	memcpy(req->data, page, len);
	req->data_len = len;
}

uint64_t nvmf_ctrlr_cap(const struct nvmf_ctrlr *c)
{
	const struct mimo_nvmf_transport_opts *o = &c->admin_qp->tt->opts;
	uint64_t mqes = (is_discovery(c) ? o->max_aq_depth : o->max_queue_depth) - 1;

	/* MQES, contiguous queues required, TO = 500 ms, NVM command set; 4 KiB pages. */
	return mqes | (1ull << 16) | (1ull << 24) | (1ull << 37);
}

static uint8_t log2_floor(uint32_t v)
{
	return v == 0 ? 0 : (uint8_t)(31 - __builtin_clz(v));
}

static void build_ctrlr_data(const struct nvmf_ctrlr *c, struct mimo_nvme_ctrlr_data *cd)
{
	const struct mimo_nvmf_subsystem *s = c->subsys;
	const struct mimo_nvmf_transport_opts *o = &c->admin_qp->tt->opts;

	memset(cd, 0, sizeof(*cd));
	pad_copy(cd->sn, sizeof(cd->sn), s->sn);
	pad_copy(cd->mn, sizeof(cd->mn), s->mn);
	pad_copy(cd->fr, sizeof(cd->fr), MIMO_VERSION);
	cd->rab = 6;
	cd->mdts = log2_floor(o->max_io_size / 4096);
	cd->cntlid = c->cntlid;
	cd->ver = 0x00010300;
	cd->ctratt = 1; /* 128-bit host identifier */
	memcpy(cd->crdt, s->tgt->crdt, sizeof(cd->crdt));
	cd->aerl = NVMF_NUM_AER - 1;
	cd->lpa = 1u << 2; /* extended Get Log Page (offsets) */
	cd->elpe = NVMF_ERROR_LOG_ENTRIES - 1;
	cd->kas = (uint16_t)c->admin_qp->tt->opts.kas;
	cd->sqes = 0x66;
	cd->cqes = 0x44;
	/* SGLs with no alignment need, offsets for in-capsule data. */
	cd->sgls = 1u | (1u << 20);
	cd->ioccsz = (uint32_t)(sizeof(struct mimo_nvme_cmd) + o->in_capsule_data_size) / 16;
	cd->iorcsz = sizeof(struct mimo_nvme_cpl) / 16;
	cd->msdbd = 1;
	cd->ofcs = 1; /* Disconnect */
	snprintf(cd->subnqn, sizeof(cd->subnqn), "%s", s->nqn);
	if (is_discovery(c)) {
		cd->cntrltype = 2;
		cd->oaes = AEN_DISCOVERY;
		cd->maxcmd = (uint16_t)o->max_aq_depth;
		return;
	}
	cd->cntrltype = 1;
	cd->cmic = 0x3; /* more than one port, more than one controller */
	cd->oaes = AEN_NS_ATTR;
	if (s->ana_reporting) {
		/* One ANA group per possible namespace, as SPDK. */
		uint32_t ngrps = s->max_nsid;

		cd->cmic |= 1u << 3; /* ANA reporting */
		cd->oaes |= AEN_ANA_CHANGE;
		cd->anatt = 10; /* seconds; states change at once here */
		/* Optimized, non-optimized and inaccessible states reported (bits 0-2); a
		 * namespace's group does not change while it is attached (bit 6). */
		cd->anacap = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 6);
		cd->anagrpmax = ngrps;
		cd->nanagrpid = ngrps;
		cd->mnan = ngrps; /* as SPDK; Linux's multipath refuses an ANA controller
				     without it */
	}
	cd->acl = 3;
	cd->frmw = 0x3; /* one slot, read-only */
	cd->maxcmd = (uint16_t)o->max_queue_depth;
	cd->nn = s->max_nsid;
	/* Compare, DSM, write zeroes; masked_oncs takes some away (io_cmd.c refuses them). */
	cd->oncs = NVMF_ONCS & ~c->admin_qp->tt->opts.masked_oncs;
	cd->vwc = 1;
}

/* The NVM command set's limits (CNS 06h, CSI 0): what nvmf_create_subsystem's dmrsl and wzsl
 * set. One Dataset Management range may cover DMRSL blocks; the number of ranges and their
 * total are not limited (DMRL and DMSL 0), as mimo carries out all 256 ranges a command may
 * have. */
static void build_nvm_ctrlr_data(const struct nvmf_ctrlr *c, struct mimo_nvme_nvm_ctrlr_data *nd)
{
	memset(nd, 0, sizeof(*nd));
	nd->wzsl = c->subsys->wzsl;
	nd->dmrsl = c->subsys->dmrsl;
}

static void build_ns_data(const struct nvmf_ns *ns, struct mimo_nvme_ns_data *nd)
{
	const struct mimo_nvmf_subsystem *s = ns->subsys;

	uint64_t bytes = ns->num_blocks << ns->block_shift;

	memset(nd, 0, sizeof(*nd));
	nd->nsze = ns->num_blocks;
	nd->ncap = ns->num_blocks;
	nd->nuse = ns->num_blocks;
	nd->nmic = 1; /* may be shared by several controllers */
	if (s->ana_reporting)
		nd->anagrpid = atomic_load(&ns->anagrpid);
	nd->lbaf[0].lbads = (uint8_t)ns->block_shift;
	memcpy(nd->nvmcap, &bytes, sizeof(bytes));
	memcpy(nd->nguid, ns->nguid, sizeof(nd->nguid));
	if (ns->has_eui64)
		memcpy(nd->eui64, ns->eui64, sizeof(nd->eui64));
}

static uint32_t build_ns_descs(const struct nvmf_ns *ns, uint8_t *buf)
{
	uint32_t off = 0;

#define ADD_DESC(type, field)                                \
	do {                                                 \
		buf[off] = (type);                           \
		buf[off + 1] = sizeof(field);                \
		memcpy(buf + off + 4, field, sizeof(field)); \
		off += 4 + sizeof(field);                    \
	} while (0)
	if (ns->has_eui64)
		ADD_DESC(MIMO_NVME_NIDT_EUI64, ns->eui64);
	ADD_DESC(MIMO_NVME_NIDT_NGUID, ns->nguid);
	ADD_DESC(MIMO_NVME_NIDT_UUID, ns->uuid);
#undef ADD_DESC
	return off;
}

void nvmf_admin_identify(struct nvmf_req *req)
{
	struct nvmf_ctrlr *c = req->qp->ctrlr;
	struct mimo_nvmf_subsystem *s = c->subsys;
	uint8_t cns = req->cmd.cdw10 & 0xff;
	uint32_t nsid = req->cmd.nsid;
	uint8_t page[4096] __attribute__((aligned(8)));
	struct nvmf_ns *ns;

	memset(page, 0, sizeof(page));
	if (is_discovery(c) && cns != MIMO_NVME_CNS_CTRLR) {
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	switch (cns) {
	case MIMO_NVME_CNS_CTRLR:
		build_ctrlr_data(c, (struct mimo_nvme_ctrlr_data *)page);
		break;
	case MIMO_NVME_CNS_CTRLR_IOCS:
		/* Only the NVM command set is implemented (CAP.CSS). */
		if ((req->cmd.cdw11 >> 24) != MIMO_NVME_CSI_NVM) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		build_nvm_ctrlr_data(c, (struct mimo_nvme_nvm_ctrlr_data *)page);
		break;
	case MIMO_NVME_CNS_NS:
		if (nsid == 0 || nsid > s->max_nsid) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE);
			return;
		}
		/* An inactive namespace, or one this host may not see, reads as zeroes. */
		ns = nvmf_ctrlr_get_ns(c, nsid);
		if (ns != NULL)
			build_ns_data(ns, (struct mimo_nvme_ns_data *)page);
		break;
	case MIMO_NVME_CNS_ACTIVE_NS_LIST: {
		uint32_t *list = (uint32_t *)page, n = 0;

		if (nsid >= 0xfffffffe) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE);
			return;
		}
		for (uint32_t id = nsid + 1; id <= s->max_nsid && n < 1024; id++) {
			if (nvmf_ctrlr_get_ns(c, id) != NULL)
				list[n++] = id;
		}
		break;
	}
	case MIMO_NVME_CNS_NS_ID_DESC:
		ns = nvmf_ctrlr_get_ns(c, nsid);
		if (ns == NULL) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE);
			return;
		}
		build_ns_descs(ns, page);
		break;
	default:
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	reply(req, page, sizeof(page));
}

/* --- log pages ----------------------------------------------------------------------------- */

static void *error_log(const struct nvmf_ctrlr *c, size_t *len)
{
	struct mimo_nvme_error_log_entry *e = calloc(NVMF_ERROR_LOG_ENTRIES, sizeof(*e));

	if (e == NULL)
		return NULL;
	/* Newest first. */
	for (uint32_t i = 0; i < NVMF_ERROR_LOG_ENTRIES && i < c->error_count; i++)
		e[i] = c->errors[(c->error_count - i) % NVMF_ERROR_LOG_ENTRIES];
	*len = NVMF_ERROR_LOG_ENTRIES * sizeof(*e);
	return e;
}

static void add_u128(uint64_t v[2], uint64_t add)
{
	uint64_t old = v[0];

	v[0] += add;
	if (v[0] < old)
		v[1]++;
}

static void *health_log(const struct nvmf_ctrlr *c, uint32_t nsid, size_t *len)
{
	struct mimo_nvme_health_log *h = calloc(1, sizeof(*h));
	const struct mimo_nvmf_subsystem *s = c->subsys;
	uint64_t hours;

	if (h == NULL)
		return NULL;
	h->temperature = 298; /* kelvin: nothing here heats up */
	h->available_spare = 100;
	h->available_spare_threshold = 10;
	for (uint32_t id = 1; id <= s->max_nsid; id++) {
		struct nvmf_ns *ns = nvmf_ctrlr_get_ns(c, id);
		struct mimo_bdev_io_stat st;

		if (ns == NULL || (nsid != 0 && nsid != 0xffffffff && nsid != id))
			continue;
		mimo_bdev_get_io_stat(ns->bdev, &st);
		/* Data units are thousands of 512-byte units, rounded up. */
		add_u128(h->data_units_read, (st.bytes_read + 511999) / 512000);
		add_u128(h->data_units_written, (st.bytes_written + 511999) / 512000);
		add_u128(h->host_read_commands, st.num_read_ops);
		add_u128(h->host_write_commands, st.num_write_ops);
		add_u128(h->media_errors, st.num_failed_ops);
	}
	hours = (mimo_get_ticks() - c->start_ticks) / mimo_get_ticks_hz() / 3600;
	add_u128(h->power_on_hours, hours);
	add_u128(h->power_cycles, 1);
	add_u128(h->num_error_info_log_entries, c->error_count);
	*len = sizeof(*h);
	return h;
}

static void *firmware_log(size_t *len)
{
	uint8_t *p = calloc(1, 512);

	if (p == NULL)
		return NULL;
	p[0] = 1; /* slot 1 active */
	pad_copy((char *)p + 8, 8, MIMO_VERSION);
	*len = 512;
	return p;
}

static void *changed_ns_log(const struct nvmf_ctrlr *c, size_t *len)
{
	uint32_t *list = calloc(NVMF_CHANGED_NS_MAX, sizeof(uint32_t)), n = 0;

	if (list == NULL)
		return NULL;
	if (c->num_changed_ns > NVMF_CHANGED_NS_MAX) {
		list[0] = 0xffffffff;
	} else {
		/* Ascending, as the specification asks. */
		for (uint32_t i = 0; i < c->num_changed_ns; i++)
			list[n++] = c->changed_ns[i];
		for (uint32_t i = 1; i < n; i++) {
			for (uint32_t j = i; j > 0 && list[j - 1] > list[j]; j--) {
				uint32_t t = list[j];

				list[j] = list[j - 1];
				list[j - 1] = t;
			}
		}
	}
	*len = NVMF_CHANGED_NS_MAX * sizeof(uint32_t);
	return list;
}

void nvmf_admin_get_log_page(struct nvmf_req *req)
{
	struct nvmf_ctrlr *c = req->qp->ctrlr;
	const struct mimo_nvme_cmd *cmd = &req->cmd;
	uint8_t lid = cmd->cdw10 & 0xff;
	bool rae = (cmd->cdw10 >> 15) & 1;
	uint64_t numd = ((uint64_t)(cmd->cdw11 & 0xffff) << 16 | (cmd->cdw10 >> 16)) + 1;
	uint64_t offset = cmd->cdw12 | (uint64_t)cmd->cdw13 << 32;
	uint64_t len = numd * 4;
	size_t page_len = 0;
	void *page = NULL;

	if (offset & 3) {
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	if (len > req->data_len) {
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	switch (lid) {
	case MIMO_NVME_LOG_ERROR:
		page = error_log(c, &page_len);
		break;
	case MIMO_NVME_LOG_HEALTH:
		if (!is_discovery(c))
			page = health_log(c, cmd->nsid, &page_len);
		break;
	case MIMO_NVME_LOG_FIRMWARE:
		if (!is_discovery(c))
			page = firmware_log(&page_len);
		break;
	case MIMO_NVME_LOG_CHANGED_NS_LIST:
		if (!is_discovery(c))
			page = changed_ns_log(c, &page_len);
		break;
	case MIMO_NVME_LOG_ANA:
		/* LSP bit 0 (cdw10 bit 8): Return Groups Only. */
		if (!is_discovery(c))
			page = nvmf_ana_log(c, (cmd->cdw10 >> 8) & 1, &page_len);
		break;
	case MIMO_NVME_LOG_DISCOVERY:
		if (is_discovery(c))
			page = nvmf_discovery_log(c->subsys->tgt, c->hostnqn, &page_len);
		break;
	default:
		break;
	}
	if (page == NULL) {
		set_error(req, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVME_SC_INVALID_LOG_PAGE);
		return;
	}
	if (offset > page_len) {
		free(page);
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	/* Past the page's end the host reads zeroes. */
	memset(req->data, 0, len);
	memcpy(req->data, (uint8_t *)page + offset, MIMO_MIN(len, page_len - offset));
	req->data_len = (uint32_t)len;
	free(page);
	nvmf_ctrlr_log_read(c, lid, rae);
}

/* --- features ------------------------------------------------------------------------------ */

static bool feature_supported(const struct nvmf_ctrlr *c, uint8_t fid)
{
	switch (fid) {
	case MIMO_NVME_FEAT_KEEP_ALIVE_TIMER:
	case MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG:
		return true;
	case MIMO_NVME_FEAT_NUMBER_OF_QUEUES:
	case MIMO_NVME_FEAT_VOLATILE_WRITE_CACHE:
	case MIMO_NVME_FEAT_ARBITRATION:
	case MIMO_NVME_FEAT_POWER_MANAGEMENT:
	case MIMO_NVME_FEAT_TEMPERATURE_THRESHOLD:
	case MIMO_NVME_FEAT_ERROR_RECOVERY:
	case MIMO_NVME_FEAT_WRITE_ATOMICITY:
		return !is_discovery(c);
	default:
		return false;
	}
}

/* Temperature Threshold selects one threshold: the composite temperature's (TMPSEL 0), over
 * (THSEL 0) or under (THSEL 1); there are no other sensors. NULL: an invalid selection. */
static uint16_t *temp_threshold(struct nvmf_ctrlr *c, uint32_t cdw11)
{
	uint32_t tmpsel = (cdw11 >> 16) & 0xf, thsel = (cdw11 >> 20) & 3;

	if (tmpsel != 0 || thsel > 1)
		return NULL;
	return thsel == 0 ? &c->temp_over : &c->temp_under;
}

static uint32_t queues_dword(uint32_t n)
{
	return (n - 1) | (n - 1) << 16;
}

void nvmf_admin_get_features(struct nvmf_req *req)
{
	struct nvmf_ctrlr *c = req->qp->ctrlr;
	uint8_t fid = req->cmd.cdw10 & 0xff;
	uint8_t sel = (req->cmd.cdw10 >> 8) & 7;

	if (!feature_supported(c, fid)) {
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	if (sel == 3) {
		req->cpl.cdw0 = 1u << 2; /* changeable, not saveable, controller-wide */
		return;
	}
	switch (fid) {
	case MIMO_NVME_FEAT_NUMBER_OF_QUEUES:
		req->cpl.cdw0 = queues_dword(c->num_io_queues);
		break;
	case MIMO_NVME_FEAT_KEEP_ALIVE_TIMER:
		req->cpl.cdw0 = c->kato_ms;
		break;
	case MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG:
		req->cpl.cdw0 = c->aen_config;
		break;
	case MIMO_NVME_FEAT_VOLATILE_WRITE_CACHE:
		req->cpl.cdw0 = c->vwc_enabled ? 1 : 0;
		break;
	case MIMO_NVME_FEAT_ARBITRATION:
		req->cpl.cdw0 = c->arbitration;
		break;
	case MIMO_NVME_FEAT_POWER_MANAGEMENT:
		req->cpl.cdw0 = c->power_mgmt;
		break;
	case MIMO_NVME_FEAT_TEMPERATURE_THRESHOLD: {
		uint16_t *th = temp_threshold(c, req->cmd.cdw11);

		if (th == NULL) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		req->cpl.cdw0 = *th;
		break;
	}
	case MIMO_NVME_FEAT_ERROR_RECOVERY:
		req->cpl.cdw0 = c->error_recovery;
		break;
	case MIMO_NVME_FEAT_WRITE_ATOMICITY:
		req->cpl.cdw0 = c->write_atomicity;
		break;
	}
}

void nvmf_admin_set_features(struct nvmf_req *req)
{
	struct nvmf_ctrlr *c = req->qp->ctrlr;
	uint8_t fid = req->cmd.cdw10 & 0xff;
	uint32_t cdw11 = req->cmd.cdw11;

	if (req->cmd.cdw10 & (1u << 31)) {
		set_error(req, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVME_SC_FEATURE_NOT_SAVEABLE);
		return;
	}
	if (!feature_supported(c, fid)) {
		set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	switch (fid) {
	case MIMO_NVME_FEAT_NUMBER_OF_QUEUES: {
		uint32_t nsq = (cdw11 & 0xffff) + 1, ncq = (cdw11 >> 16) + 1;
		uint32_t max = c->max_qpairs - 1;

		if (nsq > 0xffff || ncq > 0xffff) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		if (c->num_io_qps != 0) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR);
			return;
		}
		c->num_io_queues = MIMO_MIN(MIMO_MIN(nsq, ncq), max);
		req->cpl.cdw0 = queues_dword(c->num_io_queues);
		break;
	}
	case MIMO_NVME_FEAT_KEEP_ALIVE_TIMER:
		break; /* the caller re-arms the timer */
	case MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG:
		c->aen_config = cdw11 & (AEN_NS_ATTR | AEN_ANA_CHANGE | AEN_DISCOVERY | 0xff);
		break;
	case MIMO_NVME_FEAT_VOLATILE_WRITE_CACHE:
		c->vwc_enabled = cdw11 & 1;
		break;
	case MIMO_NVME_FEAT_ARBITRATION:
		c->arbitration = cdw11 & 0xffffff07;
		break;
	case MIMO_NVME_FEAT_POWER_MANAGEMENT:
		/* One power state (NPSS 0): PS 0 is all there is. */
		if ((cdw11 & 0x1f) != 0) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		c->power_mgmt = cdw11 & 0xff;
		break;
	case MIMO_NVME_FEAT_TEMPERATURE_THRESHOLD: {
		uint16_t *th = temp_threshold(c, cdw11);

		if (th == NULL) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		*th = cdw11 & 0xffff;
		break;
	}
	case MIMO_NVME_FEAT_ERROR_RECOVERY:
		/* DULBE needs namespaces that report deallocated blocks as errors: none does. */
		if (cdw11 & (1u << 16)) {
			set_error(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		c->error_recovery = cdw11 & 0xffff;
		break;
	case MIMO_NVME_FEAT_WRITE_ATOMICITY:
		c->write_atomicity = cdw11 & 1;
		break;
	}
}
