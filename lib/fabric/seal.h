/*
 * Sealing slot secrets that must live where others can read them (the gateways' NATS KV
 * bucket): AES-256-GCM under a key derived from the admin token, which every gateway holds.
 *
 * Threading: pure functions, any thread. Memory: the caller's buffers. Errors: 0 or a
 * negative errno: -ENOSPC (fab_seal: plain over 256 bytes or out_len too small), -EINVAL
 * (fab_unseal: not a sealed text, or out_len too small), -EACCES (sealed under another admin
 * token, or tampered with), -EIO (the cipher failed).
 */
#ifndef MIMO_FAB_SEAL_H
#define MIMO_FAB_SEAL_H

#include <stddef.h>

/* plain sealed into out as text (base64 of nonce, ciphertext and tag). */
int fab_seal(const char *admin_token, const char *plain, char *out, size_t out_len);
int fab_unseal(const char *admin_token, const char *sealed, char *out, size_t out_len);

#endif
