/* The controller's DH-HMAC-CHAP state machine (nvmf_auth.h). */
#include "nvmf_auth.h"

#include <errno.h>
#include <string.h>

#include "random.h"

static const char *const g_state_names[] = {
	[NVMF_AUTH_NEGOTIATE] = "negotiate", [NVMF_AUTH_CHALLENGE] = "challenge",
	[NVMF_AUTH_REPLY] = "reply",	     [NVMF_AUTH_SUCCESS1] = "success1",
	[NVMF_AUTH_SUCCESS2] = "success2",   [NVMF_AUTH_FAILURE1] = "failure1",
	[NVMF_AUTH_COMPLETED] = "completed", [NVMF_AUTH_FAILED] = "failed",
};

/* Strongest first: the pair chosen is the strongest both sides allow (as SPDK chooses). */
static const uint8_t g_digest_pref[] = { MIMO_NVMF_DHCHAP_HASH_SHA512, MIMO_NVMF_DHCHAP_HASH_SHA384,
					 MIMO_NVMF_DHCHAP_HASH_SHA256 };
static const uint8_t g_group_pref[] = {
	MIMO_NVMF_DHCHAP_DHGROUP_8192, MIMO_NVMF_DHCHAP_DHGROUP_6144, MIMO_NVMF_DHCHAP_DHGROUP_4096,
	MIMO_NVMF_DHCHAP_DHGROUP_3072, MIMO_NVMF_DHCHAP_DHGROUP_2048, MIMO_NVMF_DHCHAP_DHGROUP_NULL,
};

const char *nvmf_auth_state_name(enum nvmf_auth_state s)
{
	return (unsigned)s < sizeof(g_state_names) / sizeof(g_state_names[0]) ? g_state_names[s]
									      : "?";
}

void nvmf_auth_init(struct nvmf_auth *a)
{
	memset(a, 0, sizeof(*a));
	a->state = NVMF_AUTH_NEGOTIATE;
}

static void drop_transaction(struct nvmf_auth *a)
{
	dhchap_dh_free(a->dh);
	a->dh = NULL;
	a->cvalid = false;
	explicit_bzero(a->c1, sizeof(a->c1));
	explicit_bzero(a->r2, sizeof(a->r2));
}

void nvmf_auth_fini(struct nvmf_auth *a)
{
	drop_transaction(a);
}

/* The message cannot be accepted: the next Receive answers AUTH_Failure1. */
static enum nvmf_auth_event fail1(struct nvmf_auth *a, uint8_t reason, const char *why)
{
	drop_transaction(a);
	a->state = NVMF_AUTH_FAILURE1;
	a->fail_reason = reason;
	a->why = why;
	return NVMF_AUTH_EV_NONE;
}

static bool listed(const uint8_t *ids, uint8_t n, uint8_t id)
{
	for (uint8_t i = 0; i < n; i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

static enum nvmf_auth_event negotiate(struct nvmf_auth *a, const struct nvmf_auth_params *p,
				      const uint8_t *msg, uint32_t len)
{
	const struct mimo_nvmf_auth_negotiate *n = (const void *)msg;
	const struct mimo_nvmf_auth_descriptor *d = NULL;
	int digest = -1, group = -1;

	/* A new transaction, whatever came before. */
	drop_transaction(a);
	a->tid = n->hdr.t_id;
	a->state = NVMF_AUTH_NEGOTIATE;
	if (!a->authenticated && ++a->attempts > NVMF_AUTH_MAX_ATTEMPTS)
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG,
			     "too many authentication transactions on a queue not yet "
			     "authenticated");
	if (len < sizeof(*n) || n->napd == 0 ||
	    len < sizeof(*n) + (uint32_t)n->napd * sizeof(n->descriptors[0]))
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			     "AUTH_Negotiate shorter than its protocol descriptors");
	if (n->sc_c != 0)
		return fail1(a, MIMO_NVMF_AUTH_SCC_MISMATCH,
			     "secure channel concatenation asked for (it needs TLS)");
	for (uint8_t i = 0; i < n->napd && d == NULL; i++) {
		if (n->descriptors[i].auth_id == MIMO_NVMF_AUTH_PROTOCOL_DHCHAP)
			d = &n->descriptors[i];
	}
	if (d == NULL)
		return fail1(a, MIMO_NVMF_AUTH_PROTOCOL_UNUSABLE, "no DH-HMAC-CHAP descriptor");
	if (d->halen > sizeof(d->hash_ids) || d->dhlen > sizeof(d->dhg_ids))
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD, "HALEN or DHLEN beyond 30");
	for (size_t i = 0; i < sizeof(g_digest_pref) && digest < 0; i++) {
		if ((p->digests & (1u << g_digest_pref[i])) &&
		    listed(d->hash_ids, d->halen, g_digest_pref[i]))
			digest = g_digest_pref[i];
	}
	if (digest < 0)
		return fail1(a, MIMO_NVMF_AUTH_HASH_UNUSABLE,
			     "no hash function both the host and the target allow");
	for (size_t i = 0; i < sizeof(g_group_pref) && group < 0; i++) {
		if ((p->dhgroups & (1u << g_group_pref[i])) &&
		    listed(d->dhg_ids, d->dhlen, g_group_pref[i]))
			group = g_group_pref[i];
	}
	if (group < 0)
		return fail1(a, MIMO_NVMF_AUTH_DHGROUP_UNUSABLE,
			     "no Diffie-Hellman group both the host and the target allow");
	a->digest = (uint8_t)digest;
	a->dhgroup = (uint8_t)group;
	a->state = NVMF_AUTH_CHALLENGE;
	return NVMF_AUTH_EV_NONE;
}

static enum nvmf_auth_event reply(struct nvmf_auth *a, const struct nvmf_auth_params *p,
				  const uint8_t *msg, uint32_t len)
{
	const struct mimo_nvmf_dhchap_reply *r = (const void *)msg;
	size_t hl = dhchap_hash_len(a->digest), glen = dhchap_dhgroup_len(a->dhgroup);
	uint8_t dh[DHCHAP_MAX_DH_LEN], expect[DHCHAP_MAX_HASH_LEN];
	struct mimo_key_material key;
	int rc;

	if (a->state != NVMF_AUTH_REPLY)
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG,
			     "DH-HMAC-CHAP_Reply out of sequence");
	if (len < sizeof(*r) || r->hl != hl || len != sizeof(*r) + 2 * hl + r->dhvlen)
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			     "DH-HMAC-CHAP_Reply of the wrong length or hash length");
	if (r->hdr.t_id != a->tid)
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			     "DH-HMAC-CHAP_Reply of another transaction");
	if ((glen == 0) != (r->dhvlen == 0) || r->dhvlen > glen)
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			     "the host's DH value does not fit the group");
	if (r->cvalid > 1 || (r->cvalid && r->seqnum == 0))
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			     "CVALID or a zero sequence number (secure channel concatenation) "
			     "not usable");
	if (glen != 0 && dhchap_dh_derive(a->dh, r->rval + 2 * hl, r->dhvlen, dh, glen) != 0)
		return fail1(a, MIMO_NVMF_AUTH_FAILED, "the host's DH value is not valid");
	rc = p->get_key(p->arg, false, &key);
	if (rc != 0) {
		explicit_bzero(dh, sizeof(dh));
		return fail1(a, MIMO_NVMF_AUTH_FAILED,
			     rc == -ENOKEY ? "no DH-HMAC-CHAP key is configured for this host"
					   : "the host's key cannot be read (removed from the "
					     "keyring, or its file changed)");
	}
	rc = dhchap_response(a->digest, &key, "HostHost", p->hostnqn, p->subnqn, a->seqnum, a->tid,
			     a->c1, glen != 0 ? dh : NULL, glen, expect);
	mimo_key_material_wipe(&key);
	if (rc != 0 || !dhchap_equal(expect, r->rval, hl)) {
		explicit_bzero(dh, sizeof(dh));
		return fail1(a, MIMO_NVMF_AUTH_FAILED,
			     rc != 0 ? "the host's key is not a DH-HMAC-CHAP secret"
				     : "wrong response: the host does not hold the key configured "
				       "for it");
	}
	a->cvalid = r->cvalid != 0;
	if (a->cvalid) {
		rc = p->get_key(p->arg, true, &key);
		if (rc != 0) {
			explicit_bzero(dh, sizeof(dh));
			return fail1(a, MIMO_NVMF_AUTH_FAILED,
				     rc == -ENOKEY ? "the host asks the controller to authenticate "
						     "itself, and no controller key is configured"
						   : "the controller key cannot be read "
						     "(removed from the keyring, or its file "
						     "changed)");
		}
		rc = dhchap_response(a->digest, &key, "Controller", p->subnqn, p->hostnqn,
				     r->seqnum, a->tid, r->rval + hl, glen != 0 ? dh : NULL, glen,
				     a->r2);
		mimo_key_material_wipe(&key);
		if (rc != 0) {
			explicit_bzero(dh, sizeof(dh));
			return fail1(a, MIMO_NVMF_AUTH_FAILED,
				     "the controller key is not a DH-HMAC-CHAP secret");
		}
	}
	explicit_bzero(dh, sizeof(dh));
	dhchap_dh_free(a->dh);
	a->dh = NULL;
	a->state = NVMF_AUTH_SUCCESS1;
	return NVMF_AUTH_EV_NONE;
}

static enum nvmf_auth_event done(struct nvmf_auth *a)
{
	drop_transaction(a);
	a->state = NVMF_AUTH_COMPLETED;
	a->authenticated = true;
	return NVMF_AUTH_EV_DONE;
}

enum nvmf_auth_event nvmf_auth_send(struct nvmf_auth *a, const struct nvmf_auth_params *p,
				    const uint8_t *msg, uint32_t len)
{
	const struct mimo_nvmf_auth_hdr *h = (const void *)msg;

	if (len < sizeof(*h))
		return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			     "a message shorter than its header");
	if (h->auth_type == MIMO_NVMF_AUTH_TYPE_COMMON) {
		if (h->auth_id == MIMO_NVMF_AUTH_ID_NEGOTIATE)
			return negotiate(a, p, msg, len);
		if (h->auth_id == MIMO_NVMF_AUTH_ID_FAILURE2 &&
		    (a->state == NVMF_AUTH_REPLY || a->state == NVMF_AUTH_SUCCESS2)) {
			/* The host gave up: it could not use our challenge, or our response. */
			a->why = a->state == NVMF_AUTH_SUCCESS2
					 ? "the host refused the controller's "
					   "response (AUTH_Failure2)"
					 : "the host refused the challenge "
					   "(AUTH_Failure2)";
			drop_transaction(a);
			a->state = NVMF_AUTH_FAILED;
			return NVMF_AUTH_EV_FAILED;
		}
	} else if (h->auth_type == MIMO_NVMF_AUTH_TYPE_DHCHAP) {
		if (h->auth_id == MIMO_NVMF_AUTH_ID_REPLY)
			return reply(a, p, msg, len);
		if (h->auth_id == MIMO_NVMF_AUTH_ID_SUCCESS2 && a->state == NVMF_AUTH_SUCCESS2) {
			if (len < sizeof(struct mimo_nvmf_dhchap_success2) || h->t_id != a->tid)
				return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
					     "DH-HMAC-CHAP_Success2 of the wrong length or "
					     "transaction");
			return done(a);
		}
	}
	return fail1(a, MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG,
		     "a message the controller does not expect now");
}

static uint32_t next_seqnum(const struct nvmf_auth_params *p)
{
	if (*p->seqnum == 0)
		(void)mimo_random_bytes(p->seqnum, sizeof(*p->seqnum));
	if (++*p->seqnum == 0)
		*p->seqnum = 1;
	return *p->seqnum;
}

static uint32_t failure1(struct nvmf_auth *a, uint8_t *buf)
{
	struct mimo_nvmf_auth_failure *f = (void *)buf;

	f->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_COMMON;
	f->hdr.auth_id = MIMO_NVMF_AUTH_ID_FAILURE1;
	f->hdr.t_id = a->tid;
	f->rescode = MIMO_NVMF_AUTH_RC_FAILURE;
	f->rescode_exp = a->fail_reason;
	drop_transaction(a);
	a->state = NVMF_AUTH_FAILED;
	return sizeof(*f);
}

static uint32_t challenge(struct nvmf_auth *a, const struct nvmf_auth_params *p, uint8_t *buf,
			  uint32_t al)
{
	struct mimo_nvmf_dhchap_challenge *c = (void *)buf;
	size_t hl = dhchap_hash_len(a->digest), glen = dhchap_dhgroup_len(a->dhgroup);

	if (al < sizeof(*c) + hl + glen) {
		fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
		      "AUTH_Receive too short for the challenge");
		return failure1(a, buf);
	}
	if (mimo_random_bytes(a->c1, hl) != 0 ||
	    (glen != 0 && (dhchap_dh_generate(a->dhgroup, &a->dh) != 0 ||
			   dhchap_dh_public(a->dh, c->cval + hl, glen) != 0))) {
		fail1(a, MIMO_NVMF_AUTH_FAILED, "no randomness or DH key pair to be had");
		return failure1(a, buf);
	}
	a->seqnum = next_seqnum(p);
	c->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_DHCHAP;
	c->hdr.auth_id = MIMO_NVMF_AUTH_ID_CHALLENGE;
	c->hdr.t_id = a->tid;
	c->hl = (uint8_t)hl;
	c->hash_id = a->digest;
	c->dhg_id = a->dhgroup;
	c->dhvlen = (uint16_t)glen;
	c->seqnum = a->seqnum;
	memcpy(c->cval, a->c1, hl);
	a->state = NVMF_AUTH_REPLY;
	return (uint32_t)(sizeof(*c) + hl + glen);
}

enum nvmf_auth_event nvmf_auth_recv(struct nvmf_auth *a, const struct nvmf_auth_params *p,
				    uint8_t *buf, uint32_t al, uint32_t *len)
{
	struct mimo_nvmf_dhchap_success1 *s = (void *)buf;
	size_t hl = dhchap_hash_len(a->digest);

	*len = 0;
	if (al < sizeof(struct mimo_nvmf_auth_failure)) {
		drop_transaction(a);
		a->state = NVMF_AUTH_FAILED;
		a->why = "AUTH_Receive too short for any message";
		return NVMF_AUTH_EV_FAILED;
	}
	switch (a->state) {
	case NVMF_AUTH_CHALLENGE:
		*len = challenge(a, p, buf, al);
		return a->state == NVMF_AUTH_FAILED ? NVMF_AUTH_EV_FAILED : NVMF_AUTH_EV_NONE;
	case NVMF_AUTH_SUCCESS1:
		if (al < sizeof(*s) + (a->cvalid ? hl : 0)) {
			fail1(a, MIMO_NVMF_AUTH_INCORRECT_PAYLOAD,
			      "AUTH_Receive too short for Success1");
			*len = failure1(a, buf);
			return NVMF_AUTH_EV_FAILED;
		}
		s->hdr.auth_type = MIMO_NVMF_AUTH_TYPE_DHCHAP;
		s->hdr.auth_id = MIMO_NVMF_AUTH_ID_SUCCESS1;
		s->hdr.t_id = a->tid;
		s->hl = (uint8_t)hl; /* always: the Linux host checks it */
		s->rvalid = a->cvalid;
		*len = sizeof(*s);
		if (!a->cvalid)
			return done(a);
		memcpy(s->rval, a->r2, hl);
		*len += (uint32_t)hl;
		a->state = NVMF_AUTH_SUCCESS2;
		return NVMF_AUTH_EV_NONE;
	case NVMF_AUTH_FAILURE1:
		*len = failure1(a, buf);
		return NVMF_AUTH_EV_FAILED;
	default:
		fail1(a, MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG,
		      "AUTH_Receive when the controller has nothing to send");
		*len = failure1(a, buf);
		return NVMF_AUTH_EV_FAILED;
	}
}
