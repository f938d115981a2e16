/*
 * The interchange formats of NVMe secrets, as nvme-cli's gen-dhchap-key and gen-tls-key print
 * them and the Linux kernel, SPDK and mimo take them:
 *
 *   DHHC-1:<hh>:<base64 of secret || CRC-32>:        DH-HMAC-CHAP secret (NVMe Base 2.0,
 *        hh: 00 used as is, 01/02/03 transformed with SHA-256/384/512 first; the secret is
 *        32, 48 or 64 bytes)
 *   NVMeTLSkey-1:<hh>:<base64 of PSK || CRC-32>:     TLS PSK (NVMe/TCP transport spec,
 *        hh: 01 SHA-256 (32 bytes), 02 SHA-384 (48 bytes), 00 configured PSK of 32 or 48)
 *
 * The CRC-32 (IEEE) of the secret follows it little-endian; a typing error shows as a bad CRC.
 */
#ifndef MIMO_UTIL_KEYFMT_H
#define MIMO_UTIL_KEYFMT_H

#include <stddef.h>
#include <stdint.h>

enum mimo_key_kind {
	MIMO_KEY_DHCHAP = 1,  /* DHHC-1 */
	MIMO_KEY_TLS_PSK = 2, /* NVMeTLSkey-1 */
};

#define MIMO_KEY_MAX_LEN 64

/* A secret, decoded. Wipe it (mimo_key_material_wipe) when done. */
struct mimo_key_material {
	enum mimo_key_kind kind;
	uint8_t hash; /* hh: DH-HMAC-CHAP 0 none, 1 SHA-256, 2 SHA-384, 3 SHA-512; TLS 0-2 */
	uint8_t len;  /* bytes in key: 32, 48 or 64 */
	uint8_t key[MIMO_KEY_MAX_LEN];
};

/*
 * Parse len bytes of text (trailing white space, as a file's final newline, is ignored).
 * Returns 0, -EINVAL (not one of the formats, a hash or length they do not allow) or -EBADMSG
 * (the CRC-32 does not match: the text was altered), with a sentence for a human in err.
 */
int mimo_key_parse(const char *text, size_t len, struct mimo_key_material *out, char *err,
		   size_t err_len);

/* "dhchap" or "tls_psk". */
const char *mimo_key_kind_name(enum mimo_key_kind kind);

void mimo_key_material_wipe(struct mimo_key_material *k);

#endif
