#include "base64.h"

#include <errno.h>
#include <openssl/evp.h>

size_t mimo_base64_encode(const void *in, size_t len, char *out)
{
	/* EVP_EncodeBlock takes an int; callers here never encode more than INT_MAX bytes. */
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

long mimo_base64_decode(const char *in, size_t len, uint8_t *out)
{
	size_t pad = 0;
	int n;

	if (len % 4 != 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || c == '+' || c == '/';

		if (c == '=' && i >= len - 2) {
			/* Padding only at the end, and nothing but padding after it. */
			pad++;
			if (i == len - 2 && in[len - 1] != '=')
				return -EINVAL;
			continue;
		}
		if (!ok)
			return -EINVAL;
	}
	/* EVP_DecodeBlock keeps the padding's zero bytes in its count; take them off. */
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -EINVAL;
	return (long)n - (long)pad;
}
