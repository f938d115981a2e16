/* Standard Webhooks: message ids and HMAC-SHA256 signatures (https://www.standardwebhooks.com). */
#ifndef MIMO_HTTP_WEBHOOK_H
#define MIMO_HTTP_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "msg_" + 32 hex digits + NUL */
#define WEBHOOK_ID_LEN 37
/* "v1," + base64 of 32 bytes + NUL */
#define WEBHOOK_SIGNATURE_LEN 48

struct webhook_signer {
	bool enabled;
	size_t key_len;
	uint8_t key[1024];
};

/*
 * secret "whsec_<base64>" signs with the decoded bytes (the Standard Webhooks form); any
 * other non-empty string signs with its own bytes; NULL or "" disables signing.
 * Returns 0, or -EINVAL for an undecodable whsec_ secret or one over 1 KiB.
 */
int webhook_signer_init(struct webhook_signer *s, const char *secret);

/* out = "v1,<base64(HMAC-SHA256(key, id "." timestamp "." body))>". Returns 0 or -ENOMEM. */
int webhook_sign(const struct webhook_signer *s, const char *id, int64_t timestamp,
		 const char *body, size_t body_len, char out[WEBHOOK_SIGNATURE_LEN]);

/* A unique, stable id for one event: a per-process random prefix and a sequence number. */
void webhook_make_id(char out[WEBHOOK_ID_LEN], uint64_t prefix, uint64_t seq);

#endif
