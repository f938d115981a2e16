/* NVMe/TCP PDU headers: what each type looks like, building headers and TermReqs, digests. */
#include <string.h>

#include "compiler.h"
#include "crc32c.h"
#include "nvme_tcp.h"

struct pdu_type_info {
	const char *name;
	uint8_t hlen;
	bool from_host;
	bool has_data;
};

static const struct pdu_type_info g_types[] = {
	[MIMO_NVME_TCP_IC_REQ] = { "ICReq", 128, true, false },
	[MIMO_NVME_TCP_IC_RESP] = { "ICResp", 128, false, false },
	[MIMO_NVME_TCP_H2C_TERM_REQ] = { "H2CTermReq", 24, true, true },
	[MIMO_NVME_TCP_C2H_TERM_REQ] = { "C2HTermReq", 24, false, true },
	[MIMO_NVME_TCP_CAPSULE_CMD] = { "CapsuleCommand", 72, true, true },
	[MIMO_NVME_TCP_CAPSULE_RESP] = { "CapsuleResponse", 24, false, false },
	[MIMO_NVME_TCP_H2C_DATA] = { "H2CData", 24, true, true },
	[MIMO_NVME_TCP_C2H_DATA] = { "C2HData", 24, false, true },
	[MIMO_NVME_TCP_R2T] = { "R2T", 24, false, false },
};

static const struct pdu_type_info *type_info(uint8_t type)
{
	if (type >= MIMO_ARRAY_SIZE(g_types) || g_types[type].name == NULL)
		return NULL;
	return &g_types[type];
}

uint8_t mimo_tcp_pdu_hlen(uint8_t type)
{
	const struct pdu_type_info *t = type_info(type);

	return t != NULL ? t->hlen : 0;
}

const char *mimo_tcp_pdu_name(uint8_t type)
{
	const struct pdu_type_info *t = type_info(type);

	return t != NULL ? t->name : "unknown";
}

bool mimo_tcp_pdu_from_host(uint8_t type)
{
	const struct pdu_type_info *t = type_info(type);

	return t != NULL && t->from_host;
}

bool mimo_tcp_pdu_has_data(uint8_t type)
{
	const struct pdu_type_info *t = type_info(type);

	return t != NULL && t->has_data;
}

uint32_t mimo_tcp_digest(const void *buf, size_t len)
{
	return mimo_crc32c(buf, len);
}

uint32_t mimo_tcp_hdr_build(void *hdr, uint8_t type, uint8_t flags, uint32_t data_len, bool hdgst,
			    bool ddgst, uint8_t pda)
{
	struct mimo_nvme_tcp_ch *ch = hdr;
	uint8_t hlen = mimo_tcp_pdu_hlen(type);
	uint32_t hd = hdgst ? MIMO_NVME_TCP_DIGEST_LEN : 0;
	uint32_t pdo = data_len != 0 ? mimo_tcp_pdo(hlen, hdgst, pda) : 0;
	uint32_t front = data_len != 0 ? pdo : hlen + hd;

	ch->pdu_type = type;
	ch->flags = flags | (hdgst ? MIMO_NVME_TCP_FLAG_HDGST : 0) |
		    (ddgst && data_len != 0 ? MIMO_NVME_TCP_FLAG_DDGST : 0);
	ch->hlen = hlen;
	ch->pdo = (uint8_t)pdo;
	ch->plen = front + data_len + (ddgst && data_len != 0 ? MIMO_NVME_TCP_DIGEST_LEN : 0);
	if (hdgst) {
		uint32_t d = mimo_tcp_digest(hdr, hlen);

		memcpy((uint8_t *)hdr + hlen, &d, sizeof(d));
	}
	if (front > hlen + hd)
		memset((uint8_t *)hdr + hlen + hd, 0, front - hlen - hd);
	return front;
}

uint32_t mimo_tcp_term_req_build(void *hdr, uint8_t type, uint16_t fes, uint32_t fei,
				 const void *err_hdr, uint32_t err_len)
{
	struct mimo_nvme_tcp_term_req *t = hdr;

	if (err_len > MIMO_NVME_TCP_TERM_REQ_DATA_MAX)
		err_len = MIMO_NVME_TCP_TERM_REQ_DATA_MAX;
	memset(t, 0, sizeof(*t));
	t->ch.pdu_type = type;
	t->ch.hlen = sizeof(*t);
	/* TermReqs never carry digests; the data (the offending header) follows at once. */
	t->ch.pdo = err_len != 0 ? sizeof(*t) : 0;
	t->ch.plen = sizeof(*t) + err_len;
	t->fes = fes;
	/* FEI names a field for invalid-field and unsupported-parameter errors; else reserved. */
	if (fes == MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD ||
	    fes == MIMO_NVME_TCP_FES_UNSUPPORTED_PARAM)
		t->fei = fei;
	if (err_len != 0)
		memcpy(t + 1, err_hdr, err_len);
	return sizeof(*t) + err_len;
}
