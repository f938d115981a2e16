/* DH-HMAC-CHAP's shared parts (dhchap.h), on OpenSSL 3. */
#include "dhchap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

struct dhchap_dh {
	EVP_PKEY *pkey;
	uint8_t group;
};

static const struct {
	const char *name;
	size_t len;
} g_hashes[] = {
	[MIMO_NVMF_DHCHAP_HASH_SHA256] = { "sha256", 32 },
	[MIMO_NVMF_DHCHAP_HASH_SHA384] = { "sha384", 48 },
	[MIMO_NVMF_DHCHAP_HASH_SHA512] = { "sha512", 64 },
};

static const struct {
	const char *name;
	size_t len;
} g_groups[] = {
	[MIMO_NVMF_DHCHAP_DHGROUP_NULL] = { "null", 0 },
	[MIMO_NVMF_DHCHAP_DHGROUP_2048] = { "ffdhe2048", 256 },
	[MIMO_NVMF_DHCHAP_DHGROUP_3072] = { "ffdhe3072", 384 },
	[MIMO_NVMF_DHCHAP_DHGROUP_4096] = { "ffdhe4096", 512 },
	[MIMO_NVMF_DHCHAP_DHGROUP_6144] = { "ffdhe6144", 768 },
	[MIMO_NVMF_DHCHAP_DHGROUP_8192] = { "ffdhe8192", 1024 },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

size_t dhchap_hash_len(uint8_t id)
{
	return id < COUNT(g_hashes) && g_hashes[id].name != NULL ? g_hashes[id].len : 0;
}

const char *dhchap_hash_name(uint8_t id)
{
	return id < COUNT(g_hashes) ? g_hashes[id].name : NULL;
}

int dhchap_hash_id(const char *name)
{
	for (size_t i = 0; name != NULL && i < COUNT(g_hashes); i++) {
		if (g_hashes[i].name != NULL && strcmp(g_hashes[i].name, name) == 0)
			return (int)i;
	}
	return -EINVAL;
}

const char *dhchap_dhgroup_name(uint8_t id)
{
	return id < COUNT(g_groups) ? g_groups[id].name : NULL;
}

int dhchap_dhgroup_id(const char *name)
{
	for (size_t i = 0; name != NULL && i < COUNT(g_groups); i++) {
		if (strcmp(g_groups[i].name, name) == 0)
			return (int)i;
	}
	return -EINVAL;
}

size_t dhchap_dhgroup_len(uint8_t id)
{
	return id < COUNT(g_groups) ? g_groups[id].len : 0;
}

static int parse_list(const char *list, int (*id_of)(const char *), uint32_t *mask, char *bad,
		      size_t bad_len)
{
	uint32_t m = 0;
	const char *p = list;

	if (list == NULL || *list == '\0')
		return -EINVAL;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		char name[32];
		int id;

		if (n == 0 || n >= sizeof(name)) {
			snprintf(bad, bad_len, "%.*s", (int)(n < 32 ? n : 32), p);
			return -EINVAL;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		id = id_of(name);
		if (id < 0) {
			snprintf(bad, bad_len, "%s", name);
			return -EINVAL;
		}
		m |= 1u << id;
		p += n;
		if (*p == ',')
			p++;
	}
	*mask = m;
	return 0;
}

int dhchap_parse_digests(const char *list, uint32_t *mask, char *bad, size_t bad_len)
{
	return parse_list(list, dhchap_hash_id, mask, bad, bad_len);
}

int dhchap_parse_dhgroups(const char *list, uint32_t *mask, char *bad, size_t bad_len)
{
	return parse_list(list, dhchap_dhgroup_id, mask, bad, bad_len);
}

static const EVP_MD *md_of(uint8_t hash_id)
{
	switch (hash_id) {
	case MIMO_NVMF_DHCHAP_HASH_SHA256:
		return EVP_sha256();
	case MIMO_NVMF_DHCHAP_HASH_SHA384:
		return EVP_sha384();
	case MIMO_NVMF_DHCHAP_HASH_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* HMAC-H over the concatenation of n pieces. */
static int hmac(uint8_t hash_id, const uint8_t *key, size_t key_len, const void *const *piece,
		const size_t *piece_len, size_t n, uint8_t *out)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	const char *name = dhchap_hash_name(hash_id);
	size_t len = dhchap_hash_len(hash_id), got = 0;
	OSSL_PARAM params[2];
	int rc = -EIO;

	if (len == 0 || name == NULL) {
		rc = -EINVAL;
		goto out;
	}
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, key_len, params) != 1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (piece_len[i] != 0 && EVP_MAC_update(ctx, piece[i], piece_len[i]) != 1)
			goto out;
	}
	if (EVP_MAC_final(ctx, out, &got, DHCHAP_MAX_HASH_LEN) != 1 || got != len)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

int dhchap_transform_key(const struct mimo_key_material *key, const char *nqn, uint8_t *out)
{
	static const char fabrics[] = "NVMe-over-Fabrics";
	const void *piece[2] = { nqn, fabrics };
	size_t len[2] = { strlen(nqn), sizeof(fabrics) - 1 };
	int rc;

	if (key->kind != MIMO_KEY_DHCHAP || key->len == 0 || key->len > DHCHAP_MAX_HASH_LEN)
		return -EINVAL;
	if (key->hash == 0) {
		memcpy(out, key->key, key->len);
		return key->len;
	}
	rc = hmac(key->hash, key->key, key->len, piece, len, 2, out);
	return rc != 0 ? rc : (int)dhchap_hash_len(key->hash);
}

int dhchap_response(uint8_t hash_id, const struct mimo_key_material *key, const char *role,
		    const char *owner_nqn, const char *other_nqn, uint32_t seq, uint16_t tid,
		    const uint8_t *chal, const uint8_t *dh, size_t dh_len, uint8_t *out)
{
	uint8_t kt[DHCHAP_MAX_HASH_LEN], ca[DHCHAP_MAX_HASH_LEN], seq_le[4], tid_le[2];
	const uint8_t zero = 0, *c = chal;
	size_t hl = dhchap_hash_len(hash_id);
	int klen, rc;

	if (hl == 0)
		return -EINVAL;
	klen = dhchap_transform_key(key, owner_nqn, kt);
	if (klen < 0)
		return klen;
	if (dh != NULL && dh_len != 0) {
		uint8_t hdh[DHCHAP_MAX_HASH_LEN];
		unsigned int hdh_len = 0;
		const void *piece[1] = { chal };
		size_t plen[1] = { hl };

		if (EVP_Digest(dh, dh_len, hdh, &hdh_len, md_of(hash_id), NULL) != 1 ||
		    hdh_len != hl) {
			rc = -EIO;
			goto out;
		}
		rc = hmac(hash_id, hdh, hl, piece, plen, 1, ca);
		OPENSSL_cleanse(hdh, sizeof(hdh));
		if (rc != 0)
			goto out;
		c = ca;
	}
	seq_le[0] = (uint8_t)seq;
	seq_le[1] = (uint8_t)(seq >> 8);
	seq_le[2] = (uint8_t)(seq >> 16);
	seq_le[3] = (uint8_t)(seq >> 24);
	tid_le[0] = (uint8_t)tid;
	tid_le[1] = (uint8_t)(tid >> 8);
	{
		const void *piece[8] = {
			c, seq_le, tid_le, &zero, role, owner_nqn, &zero, other_nqn
		};
		size_t plen[8] = {
			hl, 4, 2, 1, strlen(role), strlen(owner_nqn), 1, strlen(other_nqn)
		};

		rc = hmac(hash_id, kt, (size_t)klen, piece, plen, 8, out);
	}
out:
	OPENSSL_cleanse(kt, sizeof(kt));
	OPENSSL_cleanse(ca, sizeof(ca));
	return rc;
}

int dhchap_dh_generate(uint8_t dhg_id, struct dhchap_dh **out)
{
	const char *name =
		dhg_id != MIMO_NVMF_DHCHAP_DHGROUP_NULL ? dhchap_dhgroup_name(dhg_id) : NULL;
	EVP_PKEY_CTX *ctx;
	struct dhchap_dh *dh;
	OSSL_PARAM params[2];
	EVP_PKEY *pkey = NULL;

	if (name == NULL)
		return -EINVAL;
	dh = calloc(1, sizeof(*dh));
	if (dh == NULL)
		return -ENOMEM;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_params(ctx, params) != 1 || EVP_PKEY_generate(ctx, &pkey) != 1) {
		EVP_PKEY_CTX_free(ctx);
		free(dh);
		return -EIO;
	}
	EVP_PKEY_CTX_free(ctx);
	dh->pkey = pkey;
	dh->group = dhg_id;
	*out = dh;
	return 0;
}

int dhchap_dh_public(const struct dhchap_dh *dh, uint8_t *pub, size_t len)
{
	BIGNUM *bn = NULL;
	int rc = -EIO;

	if (len != dhchap_dhgroup_len(dh->group))
		return -EINVAL;
	if (EVP_PKEY_get_bn_param(dh->pkey, OSSL_PKEY_PARAM_PUB_KEY, &bn) == 1 &&
	    BN_bn2binpad(bn, pub, (int)len) == (int)len)
		rc = 0;
	BN_free(bn);
	return rc;
}

/* The peer's value as a key of our group; NULL when OpenSSL will not take it. */
static EVP_PKEY *peer_key(const struct dhchap_dh *dh, const uint8_t *peer, size_t len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(peer, (int)len, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY *key = NULL;

	if (ctx == NULL || bld == NULL || bn == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    dhchap_dhgroup_name(dh->group), 0) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, bn) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	OSSL_PARAM_free(params);
	BN_free(bn);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

int dhchap_dh_derive(const struct dhchap_dh *dh, const uint8_t *peer, size_t peer_len,
		     uint8_t *secret, size_t len)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk;
	size_t got = len;
	int rc = -EINVAL;

	if (len != dhchap_dhgroup_len(dh->group) || peer_len == 0 || peer_len > len)
		return -EINVAL;
	pk = peer_key(dh, peer, peer_len);
	if (pk == NULL)
		return -EINVAL;
	/*
	 * The peer's value is checked to lie in 2 .. p - 2 (OpenSSL's quick check), not to be of
	 * order q (the full check): with a safe prime p = 2q + 1 the range check leaves out the
	 * only small subgroup, {1, p - 1}, and a value outside the order-q subgroup could tell
	 * its sender no more than the parity of a private exponent used once and thrown away.
	 * The full check is an exponentiation by q: for ffdhe8192, 25 times the cost of the
	 * exchange itself (140 ms against 6 ms), on every queue of every host.
	 */
	ctx = EVP_PKEY_CTX_new(pk, NULL);
	if (ctx == NULL || EVP_PKEY_public_check_quick(ctx) != 1) {
		rc = ctx == NULL ? -ENOMEM : -EINVAL;
		goto out;
	}
	EVP_PKEY_CTX_free(ctx);
	ctx = EVP_PKEY_CTX_new(dh->pkey, NULL);
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_CTX_set_dh_pad(ctx, 1) != 1 ||
	    EVP_PKEY_derive_set_peer_ex(ctx, pk, 0) != 1) {
		rc = ctx == NULL ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (EVP_PKEY_derive(ctx, secret, &got) != 1 || got != len) {
		OPENSSL_cleanse(secret, len);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

void dhchap_dh_free(struct dhchap_dh *dh)
{
	if (dh == NULL)
		return;
	EVP_PKEY_free(dh->pkey);
	free(dh);
}

bool dhchap_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
