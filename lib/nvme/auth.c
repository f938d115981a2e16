/* The host's DH-HMAC-CHAP messages (nvme_auth.h). */
#include "nvme_auth.h"

#include <string.h>

#include "random.h"

static const char *const g_reasons[] = {
	[MIMO_NVMF_AUTH_FAILED] = "authentication failed",
	[MIMO_NVMF_AUTH_PROTOCOL_UNUSABLE] = "protocol not usable",
	[MIMO_NVMF_AUTH_SCC_MISMATCH] = "secure channel concatenation mismatch",
	[MIMO_NVMF_AUTH_HASH_UNUSABLE] = "hash function not usable",
	[MIMO_NVMF_AUTH_DHGROUP_UNUSABLE] = "DH group not usable",
	[MIMO_NVMF_AUTH_INCORRECT_PAYLOAD] = "incorrect payload",
	[MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG] = "incorrect protocol message",
};

const char *nvme_auth_reason_name(uint8_t reason)
{
	return reason < sizeof(g_reasons) / sizeof(g_reasons[0]) && g_reasons[reason] != NULL
		       ? g_reasons[reason]
		       : "unknown reason";
}

void nvme_auth_wipe(struct nvme_auth *a)
{
	explicit_bzero(a->r2, sizeof(a->r2));
}

uint32_t nvme_auth_negotiate(struct nvme_auth *a, const struct nvme_auth_params *p, uint16_t tid,
			     uint8_t *out)
{
	struct mimo_nvmf_auth_negotiate *n = (void *)out;
	struct mimo_nvmf_auth_descriptor *d = &n->descriptors[0];

	memset(a, 0, sizeof(*a));
	a->tid = tid;
	memset(out, 0, sizeof(*n) + sizeof(*d));
	n->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_COMMON;
	n->hdr.auth_id = MIMO_NVMF_AUTH_ID_NEGOTIATE;
	n->hdr.t_id = tid;
	n->sc_c = 0; /* no secure channel concatenation */
	n->napd = 1;
	d->auth_id = MIMO_NVMF_AUTH_PROTOCOL_DHCHAP;
	for (uint8_t id = MIMO_NVMF_DHCHAP_HASH_SHA256; id <= MIMO_NVMF_DHCHAP_HASH_SHA512; id++) {
		if (p->digests & (1u << id))
			d->hash_ids[d->halen++] = id;
	}
	for (uint8_t id = MIMO_NVMF_DHCHAP_DHGROUP_NULL; id <= MIMO_NVMF_DHCHAP_DHGROUP_8192;
	     id++) {
		if (p->dhgroups & (1u << id))
			d->dhg_ids[d->dhlen++] = id;
	}
	return sizeof(*n) + sizeof(*d);
}

static enum nvme_auth_result failure2(struct nvme_auth *a, uint8_t reason, const char *why,
				      uint8_t *out, uint32_t *out_len)
{
	struct mimo_nvmf_auth_failure *f = (void *)out;

	nvme_auth_wipe(a);
	a->reason = reason;
	a->why = why;
	memset(f, 0, sizeof(*f));
	f->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_COMMON;
	f->hdr.auth_id = MIMO_NVMF_AUTH_ID_FAILURE2;
	f->hdr.t_id = a->tid;
	f->rescode = MIMO_NVMF_AUTH_RC_FAILURE;
	f->rescode_exp = reason;
	*out_len = sizeof(*f);
	return NVME_AUTH_FAILURE2;
}

/* Failure1 from the controller, or the message expected (type, id and transaction checked):
 * anything else is answered with Failure2. */
static enum nvme_auth_result expect(struct nvme_auth *a, const uint8_t *msg, uint32_t len,
				    uint8_t id, uint32_t min_len, uint8_t *out, uint32_t *out_len)
{
	const struct mimo_nvmf_auth_failure *f = (const void *)msg;

	if (len >= sizeof(*f) && f->hdr.auth_type == MIMO_NVMF_AUTH_TYPE_COMMON &&
	    f->hdr.auth_id == MIMO_NVMF_AUTH_ID_FAILURE1) {
		nvme_auth_wipe(a);
		a->reason = f->rescode_exp;
		a->why = "the controller refused (AUTH_Failure1)";
		return NVME_AUTH_REFUSED;
	}
	if (len < sizeof(f->hdr) || f->hdr.auth_type != MIMO_NVMF_AUTH_TYPE_DHCHAP ||
	    f->hdr.auth_id != id)
		return failure2(a, MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG,
				"the controller sent another message than the one expected", out,
				out_len);
	if (len < min_len || f->hdr.t_id != a->tid)
		return failure2(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
				"a message of another transaction, or too short", out, out_len);
	return NVME_AUTH_NEXT;
}

enum nvme_auth_result nvme_auth_challenge(struct nvme_auth *a, const struct nvme_auth_params *p,
					  const uint8_t *msg, uint32_t len, uint8_t *out,
					  uint32_t *out_len)
{
	const struct mimo_nvmf_dhchap_challenge *c = (const void *)msg;
	struct mimo_nvmf_dhchap_reply *r = (void *)out;
	uint8_t dh[DHCHAP_MAX_DH_LEN], c2[DHCHAP_MAX_HASH_LEN] = { 0 };
	enum nvme_auth_result res;
	struct dhchap_dh *mine = NULL;
	size_t hl, glen;
	int rc;

	res = expect(a, msg, len, MIMO_NVMF_AUTH_ID_CHALLENGE, sizeof(*c), out, out_len);
	if (res != NVME_AUTH_NEXT)
		return res;
	hl = dhchap_hash_len(c->hash_id);
	glen = dhchap_dhgroup_len(c->dhg_id);
	if (hl == 0 || !(p->digests & (1u << c->hash_id)))
		return failure2(a, MIMO_NVMF_AUTH_HASH_UNUSABLE,
				"the controller chose a hash function not offered", out, out_len);
	if (dhchap_dhgroup_name(c->dhg_id) == NULL || !(p->dhgroups & (1u << c->dhg_id)))
		return failure2(a, MIMO_NVMF_AUTH_DHGROUP_UNUSABLE,
				"the controller chose a DH group not offered", out, out_len);
	if (c->hl != hl || c->seqnum == 0 || c->dhvlen > glen || (glen != 0 && c->dhvlen == 0) ||
	    sizeof(*c) + hl + c->dhvlen > len)
		return failure2(
			a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			"a challenge with the wrong hash length, sequence number 0, or a DH "
			"value that does not fit the group",
			out, out_len);
	a->digest = c->hash_id;
	a->dhgroup = c->dhg_id;
	memset(r, 0, sizeof(*r) + 2 * hl + glen);
	if (glen != 0) {
		/* g^y from the controller, g^x ours: both sides then hold g^xy. */
		rc = dhchap_dh_generate(c->dhg_id, &mine);
		if (rc == 0)
			rc = dhchap_dh_public(mine, r->rval + 2 * hl, glen);
		if (rc == 0)
			rc = dhchap_dh_derive(mine, c->cval + hl, c->dhvlen, dh, glen);
		dhchap_dh_free(mine);
		if (rc != 0) {
			explicit_bzero(dh, sizeof(dh));
			return failure2(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
					"the controller's DH value is not valid", out, out_len);
		}
	}
	rc = dhchap_response(a->digest, p->key, "HostHost", p->hostnqn, p->subnqn, c->seqnum,
			     a->tid, c->cval, glen != 0 ? dh : NULL, glen, r->rval);
	if (rc == 0 && p->ctrl_key != NULL) {
		/* Our challenge for the controller, and the answer only its key gives. */
		a->s2 = p->seqnum != 0 ? p->seqnum : 1;
		rc = mimo_random_bytes(c2, hl);
		if (rc == 0)
			rc = dhchap_response(a->digest, p->ctrl_key, "Controller", p->subnqn,
					     p->hostnqn, a->s2, a->tid, c2, glen != 0 ? dh : NULL,
					     glen, a->r2);
	}
	explicit_bzero(dh, sizeof(dh));
	if (rc != 0)
		return failure2(a, MIMO_NVMF_AUTH_FAILED, "the response cannot be computed", out,
				out_len);
	r->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_DHCHAP;
	r->hdr.auth_id = MIMO_NVMF_AUTH_ID_REPLY;
	r->hdr.t_id = a->tid;
	r->hl = (uint8_t)hl;
	r->cvalid = p->ctrl_key != NULL;
	r->dhvlen = (uint16_t)glen;
	r->seqnum = a->s2;
	memcpy(r->rval + hl, c2, hl);
	*out_len = (uint32_t)(sizeof(*r) + 2 * hl + glen);
	return NVME_AUTH_NEXT;
}

enum nvme_auth_result nvme_auth_success1(struct nvme_auth *a, const struct nvme_auth_params *p,
					 const uint8_t *msg, uint32_t len, uint8_t *out,
					 uint32_t *out_len)
{
	const struct mimo_nvmf_dhchap_success1 *s = (const void *)msg;
	struct mimo_nvmf_dhchap_success2 *s2 = (void *)out;
	size_t hl = dhchap_hash_len(a->digest);
	enum nvme_auth_result res;

	res = expect(a, msg, len, MIMO_NVMF_AUTH_ID_SUCCESS1, sizeof(*s), out, out_len);
	if (res != NVME_AUTH_NEXT)
		return res;
	*out_len = 0;
	if (p->ctrl_key == NULL) {
		nvme_auth_wipe(a);
		return NVME_AUTH_DONE;
	}
	if (!s->rvalid || s->hl != hl || sizeof(*s) + hl > len)
		return failure2(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
				"the controller did not answer our challenge", out, out_len);
	if (!dhchap_equal(s->rval, a->r2, hl))
		return failure2(a, MIMO_NVMF_AUTH_FAILED,
				"the controller's response is wrong: it does not hold the "
				"controller key",
				out, out_len);
	nvme_auth_wipe(a);
	memset(s2, 0, sizeof(*s2));
	s2->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_DHCHAP;
	s2->hdr.auth_id = MIMO_NVMF_AUTH_ID_SUCCESS2;
	s2->hdr.t_id = a->tid;
	*out_len = sizeof(*s2);
	return NVME_AUTH_DONE;
}
