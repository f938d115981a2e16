/*
 * DH-HMAC-CHAP (NVMe Base 2.0, 8.13.5), what the target (lib/nvmf/auth.c) and the host
 * (lib/nvme/auth.c) share: the hash functions and Diffie-Hellman groups by identifier and
 * name, the transformation of a secret, the Diffie-Hellman exchange over the RFC 7919 groups,
 * and the response of either side. Every primitive is OpenSSL 3's: SHA-2 digests and HMAC,
 * FFDHE key generation and derivation. Nothing here keeps state between calls, so any thread
 * may call it.
 */
#ifndef MIMO_DHCHAP_H
#define MIMO_DHCHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyfmt.h"
#include "mimo/nvme_spec.h"

#define DHCHAP_MAX_HASH_LEN 64	 /* SHA-512 */
#define DHCHAP_MAX_DH_LEN   1024 /* ffdhe8192 */
/* Every hash and every group: the masks of allowed ones are (1 << id). */
#define DHCHAP_ALL_DIGESTS                                                             \
	((1u << MIMO_NVMF_DHCHAP_HASH_SHA256) | (1u << MIMO_NVMF_DHCHAP_HASH_SHA384) | \
	 (1u << MIMO_NVMF_DHCHAP_HASH_SHA512))
#define DHCHAP_ALL_DHGROUPS 0x3fu /* null, ffdhe2048 .. ffdhe8192 */

/* SHA-256/384/512 by HashID: 32, 48, 64 bytes; 0 for anything else. */
size_t dhchap_hash_len(uint8_t hash_id);
/* "sha256".."sha512", or NULL. */
const char *dhchap_hash_name(uint8_t hash_id);
/* The HashID of a name, or -EINVAL. */
int dhchap_hash_id(const char *name);
/* "null", "ffdhe2048".."ffdhe8192", or NULL. */
const char *dhchap_dhgroup_name(uint8_t dhg_id);
int dhchap_dhgroup_id(const char *name);
/* The size of a group's values in bytes (its prime's): 0 for null and unknown groups. */
size_t dhchap_dhgroup_len(uint8_t dhg_id);
/* Parse "sha256,sha512" or "null,ffdhe2048" (SPDK's --dhchap-digests/-dhgroups) into a mask:
 * 0 or -EINVAL with the offending name in bad. */
int dhchap_parse_digests(const char *list, uint32_t *mask, char *bad, size_t bad_len);
int dhchap_parse_dhgroups(const char *list, uint32_t *mask, char *bad, size_t bad_len);

/*
 * The secret as the response uses it: unchanged when the key's hh is 0, else
 * HMAC-H(secret, NQN || "NVMe-over-Fabrics") with H the key's own hash (hh), where NQN is the
 * key owner's: the host's for its key, the subsystem's for the controller's. out holds
 * DHCHAP_MAX_HASH_LEN bytes; returns their length, or a negative errno.
 */
int dhchap_transform_key(const struct mimo_key_material *key, const char *nqn, uint8_t *out);

/*
 * A response, as the host (role "HostHost", key owner NQNh, other NQNc) and the controller
 * (role "Controller", owner NQNc, other NQNh) compute it:
 *   R = HMAC-H(Kt, Ca || le32 seq || le16 tid || 00h || role || owner || 00h || other)
 * with Kt the transformed key and Ca the challenge, augmented when a DH exchange took place:
 *   Ca = HMAC-H(H(g^xy mod p), C).
 * hash_id is the negotiated H; chal is hash-length bytes; dh is NULL (dh_len 0) for the null
 * group. out gets hash-length bytes. Returns 0 or a negative errno.
 */
int dhchap_response(uint8_t hash_id, const struct mimo_key_material *key, const char *role,
		    const char *owner_nqn, const char *other_nqn, uint32_t seq, uint16_t tid,
		    const uint8_t *chal, const uint8_t *dh, size_t dh_len, uint8_t *out);

/* One side of a Diffie-Hellman exchange in an RFC 7919 group. */
struct dhchap_dh;
/* A new key pair. Returns 0, -EINVAL (not an FFDHE group), -ENOMEM or -EIO. */
int dhchap_dh_generate(uint8_t dhg_id, struct dhchap_dh **out);
/* The public value g^x mod p, padded to the group's length (dhchap_dhgroup_len). */
int dhchap_dh_public(const struct dhchap_dh *dh, uint8_t *pub, size_t len);
/*
 * The shared value (peer^x mod p), padded to the group's length, into secret (len bytes, the
 * group's length). -EINVAL when the peer's value is not a public value of the group (outside
 * 2 .. p - 2, or longer than the group: the range check; dhchap.c says why no more), -EIO on
 * other failures.
 */
int dhchap_dh_derive(const struct dhchap_dh *dh, const uint8_t *peer, size_t peer_len,
		     uint8_t *secret, size_t len);
void dhchap_dh_free(struct dhchap_dh *dh);

/* Compare in constant time: true when equal. */
bool dhchap_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
