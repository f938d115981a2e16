#include "webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "buf.h"

int webhook_signer_init(struct webhook_signer *s, const char *secret)
{
	size_t n;

	memset(s, 0, sizeof(*s));
	if (secret == NULL || secret[0] == '\0')
		return 0;
	n = strlen(secret);
	if (strncmp(secret, "whsec_", 6) == 0) {
		long k;

		if ((n - 6) / 4 * 3 > sizeof(s->key))
			return -EINVAL;
		k = mimo_base64_decode(secret + 6, n - 6, s->key);
		if (k <= 0)
			return -EINVAL;
		s->key_len = (size_t)k;
	} else {
		if (n > sizeof(s->key))
			return -EINVAL;
		memcpy(s->key, secret, n);
		s->key_len = n;
	}
	s->enabled = true;
	return 0;
}

int webhook_sign(const struct webhook_signer *s, const char *id, int64_t timestamp,
		 const char *body, size_t body_len, char out[WEBHOOK_SIGNATURE_LEN])
{
	unsigned char mac[32];
	unsigned int mac_len = sizeof(mac);
	struct mimo_buf msg = { 0 };

	if (mimo_buf_printf(&msg, "%s.%" PRId64 ".", id, timestamp) != 0 ||
	    mimo_buf_append(&msg, body, body_len) != 0) {
		mimo_buf_free(&msg);
		return -ENOMEM;
	}
	if (HMAC(EVP_sha256(), s->key, (int)s->key_len, (const unsigned char *)msg.data, msg.len,
		 mac, &mac_len) == NULL) {
		mimo_buf_free(&msg);
		return -ENOMEM;
	}
	mimo_buf_free(&msg);
	memcpy(out, "v1,", 3);
	mimo_base64_encode(mac, mac_len, out + 3);
	return 0;
}

void webhook_make_id(char out[WEBHOOK_ID_LEN], uint64_t prefix, uint64_t seq)
{
	snprintf(out, WEBHOOK_ID_LEN, "msg_%016" PRIx64 "%016" PRIx64, prefix, seq);
}
