/*
 * Sealing slot secrets that must live where others can read them (the gateway's NATS KV
 * bucket): AES-256-GCM under a key derived from the admin token, which every gateway holds.
 * Text form: base64(nonce[12] | ciphertext | tag[16]).
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "base64.h"
#include "seal.h"
#include "random.h"

#define NONCE 12
#define TAG   16

static void derive_key(const char *admin_token, uint8_t key[32])
{
	static const char label[] = "mimo slot secret seal v1";
	unsigned int n = 32;

	HMAC(EVP_sha256(), admin_token, (int)strlen(admin_token), (const unsigned char *)label,
	     sizeof(label) - 1, key, &n);
}

int fab_seal(const char *admin_token, const char *plain, char *out, size_t out_len)
{
	size_t len = strlen(plain);
	uint8_t key[32], buf[NONCE + 256 + TAG];
	EVP_CIPHER_CTX *ctx;
	int n = 0, rc = -EIO;

	if (len > 256 || mimo_base64_encoded_size(NONCE + len + TAG) > out_len)
		return -ENOSPC;
	if (mimo_random_bytes(buf, NONCE) != 0)
		return -EIO;
	derive_key(admin_token, key);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
	    EVP_EncryptUpdate(ctx, buf + NONCE, &n, (const unsigned char *)plain, (int)len) == 1 &&
	    EVP_EncryptFinal_ex(ctx, buf + NONCE + n, &n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, buf + NONCE + len) == 1) {
		mimo_base64_encode(buf, NONCE + len + TAG, out);
		rc = 0;
	}
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int fab_unseal(const char *admin_token, const char *sealed, char *out, size_t out_len)
{
	size_t slen = strlen(sealed);
	uint8_t key[32], buf[NONCE + 256 + TAG + 4];
	EVP_CIPHER_CTX *ctx;
	long raw;
	int n = 0, rc = -EACCES;

	if (slen > mimo_base64_encoded_size(sizeof(buf) - 4) - 1)
		return -EINVAL;
	raw = mimo_base64_decode(sealed, slen, buf);
	if (raw < NONCE + TAG || (size_t)(raw - NONCE - TAG) >= out_len)
		return -EINVAL;
	derive_key(admin_token, key);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
	    EVP_DecryptUpdate(ctx, (unsigned char *)out, &n, buf + NONCE,
			      (int)(raw - NONCE - TAG)) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, buf + raw - TAG) == 1 &&
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)out + n, &n) == 1) {
		out[raw - NONCE - TAG] = '\0';
		rc = 0;
	}
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}
