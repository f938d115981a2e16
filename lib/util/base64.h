/* Standard base64 (RFC 4648, with padding), as used by Standard Webhooks and GSE content. */
#ifndef MIMO_UTIL_BASE64_H
#define MIMO_UTIL_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode len bytes, including the terminating NUL. */
static inline size_t mimo_base64_encoded_size(size_t len)
{
	return (len + 2) / 3 * 4 + 1;
}

/* Encode len bytes into out (mimo_base64_encoded_size(len) bytes); returns the length. */
size_t mimo_base64_encode(const void *in, size_t len, char *out);

/* Decode text (padding required when the length is not a multiple of 4, whitespace refused)
 * into out, which must hold len / 4 * 3 bytes. Returns the decoded length or -EINVAL. */
long mimo_base64_decode(const char *in, size_t len, uint8_t *out);

#endif
