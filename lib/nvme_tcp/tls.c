/* NVMe/TCP's TLS 1.3 with PSKs, on OpenSSL 3 (see tls.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "base64.h"
#include "compiler.h"
#include "tls.h"

/* Plaintext gathered per SSL_write: four full records. */
#define WBUF_SIZE (64 * 1024)
/* What a read may take from the socket at once (several records). */
#define RBUF_SIZE (64 * 1024)

struct mimo_tls_ctx {
	SSL_CTX *ssl;
	bool server;
	/* Client: what it offers. */
	uint8_t hash;
	char identity[MIMO_TLS_IDENTITY_MAX];
	uint8_t psk[MIMO_TLS_PSK_MAX];
	size_t psk_len;
};

struct mimo_tls {
	struct mimo_tls_ctx *ctx;
	SSL *ssl;
	mimo_tls_lookup_fn lookup;
	void *lookup_arg;
	bool refused; /* the server found no usable PSK for what the client offered */
	struct mimo_tls_identity peer;
	char err[640];
	uint8_t *wbuf;
	size_t wlen, woff; /* wbuf[woff, wlen): plaintext OpenSSL has not taken yet */
};

const char *mimo_tls_cipher_name(uint8_t hash)
{
	return hash == MIMO_TLS_SHA256	 ? "TLS_AES_128_GCM_SHA256"
	       : hash == MIMO_TLS_SHA384 ? "TLS_AES_256_GCM_SHA384"
					 : NULL;
}

static const char *md_name(uint8_t hash)
{
	return hash == MIMO_TLS_SHA256 ? "SHA256" : hash == MIMO_TLS_SHA384 ? "SHA384" : NULL;
}

/* --- keys ---------------------------------------------------------------------------------- */

/* HKDF-Expand-Label(HKDF-Extract(0, key), label, context, out_len), RFC 8446 7.1. */
static int hkdf_label(uint8_t hash, const uint8_t *key, size_t key_len, const char *label,
		      const void *context, size_t context_len, uint8_t *out, size_t out_len)
{
	const char *md = md_name(hash);
	size_t label_len = strlen(label), n = 0;
	uint8_t info[2 + 1 + 255 + 1 + 255];
	OSSL_PARAM params[4], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	int rc = -EINVAL;

	if (md == NULL || 6 + label_len > 255 || context_len > 255 || out_len > 0xffff)
		return -EINVAL;
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + label_len);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, label_len);
	n += label_len;
	info[n++] = (uint8_t)context_len;
	memcpy(info + n, context, context_len);
	n += context_len;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (kdf != NULL)
		kctx = EVP_KDF_CTX_new(kdf);
	/* No salt: HKDF-Extract's salt is then HashLen zeros (RFC 5869 2.2). */
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	*p = OSSL_PARAM_construct_end();
	if (kctx != NULL && EVP_KDF_derive(kctx, out, out_len, params) == 1)
		rc = 0;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(info, sizeof(info));
	return rc;
}

int mimo_tls_retained_psk(const uint8_t *configured, size_t len, uint8_t hh, const char *hostnqn,
			  uint8_t *out)
{
	if ((len != 32 && len != 48) || hh > MIMO_TLS_SHA384)
		return -EINVAL;
	if (hh == 0) {
		memcpy(out, configured, len);
		return 0;
	}
	return hkdf_label(hh, configured, len, "HostNQN", hostnqn, strlen(hostnqn), out, len);
}

static bool nqn_ok(const char *s, size_t len)
{
	if (len == 0 || len > MIMO_NVMF_NQN_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= ' ' || s[i] >= 0x7f)
			return false;
	}
	return true;
}

static bool base64_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/' && s[i] != '=')
			return false;
	}
	return true;
}

int mimo_tls_identity_parse(const void *id, size_t len, struct mimo_tls_identity *out)
{
	const char *s = id, *end = s + len, *sp;
	const char *f[3];
	size_t fl[3];
	int nf = 0;

	memset(out, 0, sizeof(*out));
	if (len < 10 || len >= MIMO_TLS_IDENTITY_MAX || memcmp(s, "NVMe", 4) != 0 ||
	    (s[4] != '0' && s[4] != '1') || s[5] != 'R' || s[6] != '0' ||
	    (s[7] != '1' && s[7] != '2') || s[8] != ' ')
		return -EINVAL;
	out->version = (uint8_t)(s[4] - '0');
	out->hash = (uint8_t)(s[7] - '0');
	/* Fields separated by single spaces, to the end: two NQNs, and a digest for version 1. */
	for (s += 9;; s = sp + 1) {
		if (nf == 3)
			return -EINVAL;
		sp = memchr(s, ' ', (size_t)(end - s));
		if (sp == NULL)
			sp = end;
		f[nf] = s;
		fl[nf++] = (size_t)(sp - s);
		if (sp == end)
			break;
	}
	if (nf != (out->version == 0 ? 2 : 3) || !nqn_ok(f[0], fl[0]) || !nqn_ok(f[1], fl[1]))
		return -EINVAL;
	memcpy(out->hostnqn, f[0], fl[0]);
	memcpy(out->subnqn, f[1], fl[1]);
	if (out->version == 1) {
		/* Base64 only: the digest is compared as a string, so a NUL or a byte after one
		 * must not let a second spelling of the same identity through. */
		if (fl[2] == 0 || fl[2] >= sizeof(out->digest) || !base64_ok(f[2], fl[2]))
			return -EINVAL;
		memcpy(out->digest, f[2], fl[2]);
	}
	return 0;
}

int mimo_tls_identity_format(char *out, size_t len, uint8_t hash, const char *hostnqn,
			     const char *subnqn)
{
	int n;

	if (md_name(hash) == NULL || !nqn_ok(hostnqn, strlen(hostnqn)) ||
	    !nqn_ok(subnqn, strlen(subnqn)))
		return -EINVAL;
	n = snprintf(out, len, "NVMe0R%02u %s %s", hash, hostnqn, subnqn);
	return n < 0 || (size_t)n >= len ? -EINVAL : n;
}

int mimo_tls_psk_digest(const uint8_t *retained, size_t len, uint8_t hash, const char *hostnqn,
			const char *subnqn, char out[65])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char msg[2 * MIMO_NVMF_NQN_MAX_LEN + 32];
	int n;

	if (md_name(hash) == NULL)
		return -EINVAL;
	n = snprintf(msg, sizeof(msg), "%s %s NVMe-over-Fabrics", hostnqn, subnqn);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(hash == MIMO_TLS_SHA256 ? EVP_sha256() : EVP_sha384(), retained, (int)len,
		 (const uint8_t *)msg, (size_t)n, mac, &mac_len) == NULL)
		return -EINVAL;
	mimo_base64_encode(mac, mac_len, out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int mimo_tls_derive_psk(const uint8_t *retained, size_t len, const struct mimo_tls_identity *id,
			const char *identity_text, uint8_t *out)
{
	char context[80];
	int rc;

	if (id->version == 0)
		return hkdf_label(id->hash, retained, len, "nvme-tls-psk", identity_text,
				  strlen(identity_text), out, len);
	rc = mimo_tls_psk_digest(retained, len, id->hash, id->hostnqn, id->subnqn, context + 3);
	if (rc != 0)
		return rc;
	if (strcmp(context + 3, id->digest) != 0)
		return -EKEYREJECTED;
	context[0] = '0';
	context[1] = (char)('0' + id->hash);
	context[2] = ' ';
	return hkdf_label(id->hash, retained, len, "nvme-tls-psk", context, strlen(context), out,
			  len);
}

/* --- sessions ------------------------------------------------------------------------------ */

/* A session that makes psk (len bytes) TLS 1.3's external PSK for the cipher suite of hash. */
static SSL_SESSION *psk_session(SSL *ssl, uint8_t hash, const uint8_t *psk, size_t len)
{
	const uint8_t id[2] = { 0x13, hash }; /* TLS_AES_128_GCM_SHA256 / _256_GCM_SHA384 */
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, id);
	SSL_SESSION *s = cipher != NULL ? SSL_SESSION_new() : NULL;

	if (s != NULL && (SSL_SESSION_set_cipher(s, cipher) != 1 ||
			  SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1 ||
			  SSL_SESSION_set1_master_key(s, psk, len) != 1)) {
		SSL_SESSION_free(s);
		s = NULL;
	}
	return s;
}

static int find_session_cb(SSL *ssl, const unsigned char *identity, size_t identity_len,
			   SSL_SESSION **sess)
{
	struct mimo_tls *t = SSL_get_app_data(ssl);
	uint8_t retained[MIMO_TLS_PSK_MAX], psk[MIMO_TLS_PSK_MAX];
	char text[MIMO_TLS_IDENTITY_MAX];
	size_t len = 0;
	int rc;

	*sess = NULL;
	t->refused = true;
	if (mimo_tls_identity_parse(identity, identity_len, &t->peer) != 0) {
		snprintf(t->err, sizeof(t->err),
			 "the PSK identity offered is not an NVMe one (NVMe0R01 <hostnqn> "
			 "<subnqn>, ...)");
		return 1; /* no PSK: the handshake fails (there is no certificate either) */
	}
	memcpy(text, identity, identity_len);
	text[identity_len] = '\0';
	rc = t->lookup(t->lookup_arg, &t->peer, retained, &len);
	if (rc != 0) {
		snprintf(t->err, sizeof(t->err), "no PSK for host %s in subsystem %s (%s)",
			 t->peer.hostnqn, t->peer.subnqn, strerror(-rc));
		return 1;
	}
	if (mimo_tls_hash_for_len(len) != t->peer.hash) {
		snprintf(t->err, sizeof(t->err),
			 "the identity's hash %02u does not go with that host's %zu-byte PSK "
			 "(identity %.8s)",
			 t->peer.hash, len, text);
	} else if ((rc = mimo_tls_derive_psk(retained, len, &t->peer, text, psk)) != 0) {
		snprintf(t->err, sizeof(t->err), "%s (identity %.8s)",
			 rc == -EKEYREJECTED
				 ? "the identity's PSK digest is not that of the host's "
				   "PSK"
				 : "cannot derive the TLS PSK",
			 text);
	} else {
		*sess = psk_session(ssl, t->peer.hash, psk, len);
		t->refused = *sess == NULL;
	}
	OPENSSL_cleanse(retained, sizeof(retained));
	OPENSSL_cleanse(psk, sizeof(psk));
	return 1;
}

static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *id_len,
			  SSL_SESSION **sess)
{
	struct mimo_tls *t = SSL_get_app_data(ssl);
	struct mimo_tls_ctx *c = t->ctx;

	*sess = NULL;
	/* After a HelloRetryRequest: only a PSK of the hash already chosen. */
	if (md != NULL && EVP_MD_get_size(md) != (c->hash == MIMO_TLS_SHA256 ? 32 : 48))
		return 1;
	*sess = psk_session(ssl, c->hash, c->psk, c->psk_len);
	if (*sess == NULL)
		return 0;
	*id = (const unsigned char *)c->identity;
	*id_len = strlen(c->identity);
	return 1;
}

static struct mimo_tls_ctx *ctx_new(bool server, const char *suites)
{
	struct mimo_tls_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->server = server;
	c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (c->ssl == NULL || SSL_CTX_set_min_proto_version(c->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(c->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(c->ssl, suites) != 1) {
		SSL_CTX_free(c->ssl);
		free(c);
		return NULL;
	}
	SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_read_ahead(c->ssl, 1);
	SSL_CTX_set_default_read_buffer_len(c->ssl, RBUF_SIZE);
	/* A PSK connection resumes nothing: no tickets, no early data. */
	SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
	/* A peer that closes without close_notify has closed, as over plain TCP (a PDU cut short
	 * shows as one): no fatal alert written to a socket the peer already closed. */
	SSL_CTX_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (server) {
		SSL_CTX_set_num_tickets(c->ssl, 0);
		SSL_CTX_set_psk_find_session_callback(c->ssl, find_session_cb);
	} else {
		SSL_CTX_set_psk_use_session_callback(c->ssl, use_session_cb);
	}
	return c;
}

struct mimo_tls_ctx *mimo_tls_server_ctx_new(void)
{
	return ctx_new(true, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
}

struct mimo_tls_ctx *mimo_tls_client_ctx_new(const char *identity, const uint8_t *psk, size_t len,
					     uint8_t hash)
{
	const char *suite = mimo_tls_cipher_name(hash);
	struct mimo_tls_ctx *c;

	if (suite == NULL || len > MIMO_TLS_PSK_MAX || strlen(identity) >= MIMO_TLS_IDENTITY_MAX)
		return NULL;
	c = ctx_new(false, suite);
	if (c == NULL)
		return NULL;
	c->hash = hash;
	snprintf(c->identity, sizeof(c->identity), "%s", identity);
	memcpy(c->psk, psk, len);
	c->psk_len = len;
	return c;
}

void mimo_tls_ctx_free(struct mimo_tls_ctx *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ssl);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* --- connections --------------------------------------------------------------------------- */

struct mimo_tls *mimo_tls_new(struct mimo_tls_ctx *ctx, int fd, mimo_tls_lookup_fn lookup,
			      void *arg)
{
	struct mimo_tls *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ctx = ctx;
	t->lookup = lookup;
	t->lookup_arg = arg;
	t->ssl = SSL_new(ctx->ssl);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	SSL_set_app_data(t->ssl, t);
	if (ctx->server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	return t;
}

void mimo_tls_free(struct mimo_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	if (t->wbuf != NULL) {
		OPENSSL_cleanse(t->wbuf, WBUF_SIZE);
		free(t->wbuf);
	}
	free(t);
}

/* The first OpenSSL error of this thread as text (its reason: "decrypt error", ...). */
static const char *ssl_reason(unsigned long e)
{
	const char *r = ERR_reason_error_string(e);

	return r != NULL ? r : "TLS failure";
}

int mimo_tls_handshake(struct mimo_tls *t, bool *want_write)
{
	unsigned long e;
	int rc, reason;

	*want_write = false;
	ERR_clear_error();
	rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		t->refused = false;
		return 0;
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want_write = true;
		return -EAGAIN;
	case SSL_ERROR_SSL:
		e = ERR_peek_error();
		reason = ERR_GET_REASON(e);
		if (t->refused)
			return -EACCES; /* err says why */
		/* The peer's alert: a binder that does not verify (the other end's PSK is not
		 * ours: OpenSSL's server says illegal_parameter), no PSK in common
		 * (handshake_failure), an identity it does not know. */
		if (reason == SSL_R_BINDER_DOES_NOT_VERIFY ||
		    reason == SSL_AD_REASON_OFFSET + SSL_AD_DECRYPT_ERROR ||
		    reason == SSL_AD_REASON_OFFSET + SSL_AD_ILLEGAL_PARAMETER ||
		    reason == SSL_AD_REASON_OFFSET + SSL_AD_HANDSHAKE_FAILURE ||
		    reason == SSL_AD_REASON_OFFSET + SSL_AD_UNKNOWN_PSK_IDENTITY) {
			snprintf(t->err, sizeof(t->err), "the PSKs do not match (%s)",
				 ssl_reason(e));
			return -EACCES;
		}
		/* SPDK's target ends the handshake with internal_error when it holds no PSK for
		 * the identity: to the host that is a refusal, and says which. */
		if (!t->ctx->server && reason == SSL_AD_REASON_OFFSET + SSL_AD_INTERNAL_ERROR) {
			snprintf(t->err, sizeof(t->err),
				 "the target refused the TLS handshake (%s: SPDK's target answers "
				 "so when it holds no PSK for this host and subsystem)",
				 ssl_reason(e));
			return -EACCES;
		}
		snprintf(t->err, sizeof(t->err), "TLS handshake failed: %s%s", ssl_reason(e),
			 reason == SSL_R_WRONG_VERSION_NUMBER ||
					 reason == SSL_R_PACKET_LENGTH_TOO_LONG
				 ? " (the other end does not speak TLS)"
				 : "");
		return -EPROTO;
	default:
		snprintf(t->err, sizeof(t->err), "the connection closed during the TLS handshake%s",
			 t->ctx->server ? "" : " (the target refused TLS or our PSK)");
		return -ECONNRESET;
	}
}

const char *mimo_tls_error(const struct mimo_tls *t)
{
	return t->err[0] != '\0' ? t->err : "TLS failure";
}

const struct mimo_tls_identity *mimo_tls_peer_identity(const struct mimo_tls *t)
{
	return &t->peer;
}

const char *mimo_tls_cipher(const struct mimo_tls *t)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);

	return c != NULL ? SSL_CIPHER_get_name(c) : "";
}

/* The errno of a failed SSL_read_ex / SSL_write_ex; 0 for the end of the stream. */
static int io_errno(struct mimo_tls *t, int ret)
{
	switch (SSL_get_error(t->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		return errno == 0 ? 0 : errno == EPIPE ? ECONNRESET : errno;
	default:
		snprintf(t->err, sizeof(t->err), "TLS: %s", ssl_reason(ERR_peek_error()));
		return ECONNABORTED;
	}
}

ssize_t mimo_tls_readv(struct mimo_tls *t, const struct iovec *iov, int iovcnt)
{
	size_t total = 0, off = 0;
	int i = 0, err = 0;

	ERR_clear_error();
	errno = 0;
	/* Until every buffer is full or the socket has nothing more: so that nothing OpenSSL
	 * already holds waits for the socket to become readable again. */
	while (i < iovcnt) {
		size_t want = iov[i].iov_len - off, got = 0;
		int ret;

		if (want == 0) {
			i++;
			off = 0;
			continue;
		}
		ret = SSL_read_ex(t->ssl, (uint8_t *)iov[i].iov_base + off, want, &got);
		if (ret != 1) {
			err = io_errno(t, ret);
			break;
		}
		total += got;
		off += got;
	}
	if (total > 0)
		return (ssize_t)MIMO_MIN(total, (size_t)SSIZE_MAX);
	if (i == iovcnt)
		return 0; /* nothing asked for */
	if (err == 0)
		return 0;
	errno = err;
	return -1;
}

ssize_t mimo_tls_writev(struct mimo_tls *t, const struct iovec *iov, int iovcnt)
{
	size_t done = 0;
	int err = 0;

	if (t->wbuf == NULL) {
		t->wbuf = malloc(WBUF_SIZE);
		if (t->wbuf == NULL) {
			errno = ENOMEM;
			return -1;
		}
	}
	ERR_clear_error();
	errno = 0;
	for (;;) {
		/* What the last call left in wbuf is the start of this call's iov. */
		if (t->wlen == 0) {
			size_t skip = done;

			for (int i = 0; i < iovcnt && t->wlen < WBUF_SIZE; i++) {
				size_t n = iov[i].iov_len;

				if (skip >= n) {
					skip -= n;
					continue;
				}
				n = MIMO_MIN(n - skip, WBUF_SIZE - t->wlen);
				memcpy(t->wbuf + t->wlen, (const uint8_t *)iov[i].iov_base + skip,
				       n);
				t->wlen += n;
				skip = 0;
			}
			t->woff = 0;
			if (t->wlen == 0)
				break;
		}
		while (t->woff < t->wlen) {
			size_t n = 0;
			int ret = SSL_write_ex(t->ssl, t->wbuf + t->woff, t->wlen - t->woff, &n);

			if (ret != 1) {
				err = io_errno(t, ret);
				goto out;
			}
			t->woff += n;
			done += n;
		}
		t->wlen = t->woff = 0;
	}
out:
	if (done > 0)
		return (ssize_t)MIMO_MIN(done, (size_t)SSIZE_MAX);
	if (t->wlen == 0)
		return 0;
	errno = err == 0 ? ECONNRESET : err;
	return -1;
}

bool mimo_tls_pending(const struct mimo_tls *t)
{
	return SSL_has_pending(t->ssl) == 1;
}
