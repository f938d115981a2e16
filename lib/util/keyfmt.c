#include "keyfmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "crc32.h"

#define DHCHAP_PREFIX "DHHC-1:"
#define TLS_PREFIX    "NVMeTLSkey-1:"

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len != 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The lengths a kind allows for hash hh; false when hh itself is not allowed. */
static bool length_allowed(enum mimo_key_kind kind, uint8_t hh, size_t n)
{
	if (kind == MIMO_KEY_DHCHAP)
		return hh <= 3 && (n == 32 || n == 48 || n == 64);
	switch (hh) {
	case 0:
		return n == 32 || n == 48;
	case 1:
		return n == 32;
	case 2:
		return n == 48;
	default:
		return false;
	}
}

int mimo_key_parse(const char *text, size_t len, struct mimo_key_material *out, char *err,
		   size_t err_len)
{
	uint8_t buf[(MIMO_KEY_MAX_LEN + 4 + 2) / 3 * 3 + 3];
	enum mimo_key_kind kind;
	const char *p, *end, *b64;
	size_t plen, b64_len;
	uint32_t crc, want;
	long n;
	int hi, lo;

	memset(out, 0, sizeof(*out));
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
			   text[len - 1] == '\t'))
		len--;
	end = text + len;
	if (len >= strlen(DHCHAP_PREFIX) &&
	    memcmp(text, DHCHAP_PREFIX, strlen(DHCHAP_PREFIX)) == 0) {
		kind = MIMO_KEY_DHCHAP;
		plen = strlen(DHCHAP_PREFIX);
	} else if (len >= strlen(TLS_PREFIX) && memcmp(text, TLS_PREFIX, strlen(TLS_PREFIX)) == 0) {
		kind = MIMO_KEY_TLS_PSK;
		plen = strlen(TLS_PREFIX);
	} else {
		return fail(err, err_len, -EINVAL,
			    "not a key: expected \"DHHC-1:<hh>:<base64>:\" (DH-HMAC-CHAP, nvme "
			    "gen-dhchap-key) or \"NVMeTLSkey-1:<hh>:<base64>:\" (TLS PSK, nvme "
			    "gen-tls-key)");
	}
	p = text + plen;
	if (end - p < 3 || (hi = hexval(p[0])) < 0 || (lo = hexval(p[1])) < 0 || p[2] != ':')
		return fail(err, err_len, -EINVAL,
			    "%s key: two hex digits (the hash) and ':' must follow the prefix",
			    mimo_key_kind_name(kind));
	out->hash = (uint8_t)(hi << 4 | lo);
	b64 = p + 3;
	p = memchr(b64, ':', (size_t)(end - b64));
	if (p == NULL || p + 1 != end)
		return fail(err, err_len, -EINVAL,
			    "%s key: the base64 part must end with ':' and nothing may follow it",
			    mimo_key_kind_name(kind));
	b64_len = (size_t)(p - b64);
	if (b64_len == 0 || b64_len / 4 * 3 > sizeof(buf))
		return fail(err, err_len, -EINVAL,
			    "%s key: %zu base64 characters is not a key's length",
			    mimo_key_kind_name(kind), b64_len);
	n = mimo_base64_decode(b64, b64_len, buf);
	if (n < 0) {
		explicit_bzero(buf, sizeof(buf));
		return fail(err, err_len, -EINVAL, "%s key: the secret is not valid base64",
			    mimo_key_kind_name(kind));
	}
	if (n < 4 || !length_allowed(kind, out->hash, (size_t)n - 4)) {
		explicit_bzero(buf, sizeof(buf));
		if (kind == MIMO_KEY_DHCHAP && out->hash > 3)
			return fail(
				err, err_len, -EINVAL,
				"dhchap key: hash %02x: 00 (none), 01 (SHA-256), 02 (SHA-384) or "
				"03 (SHA-512)",
				out->hash);
		if (kind == MIMO_KEY_DHCHAP)
			return fail(err, err_len, -EINVAL,
				    "dhchap key: %ld bytes decoded: a secret is 32, 48 or 64 bytes "
				    "followed by its 4-byte CRC-32",
				    n);
		return fail(
			err, err_len, -EINVAL,
			"tls_psk key: hash %02x with %ld bytes decoded: 01 takes a 32-byte PSK, "
			"02 a 48-byte one, 00 either; each followed by its 4-byte CRC-32",
			out->hash, n);
	}
	n -= 4;
	crc = (uint32_t)buf[n] | (uint32_t)buf[n + 1] << 8 | (uint32_t)buf[n + 2] << 16 |
	      (uint32_t)buf[n + 3] << 24;
	want = mimo_crc32(buf, (size_t)n);
	if (crc != want) {
		explicit_bzero(buf, sizeof(buf));
		return fail(err, err_len, -EBADMSG,
			    "%s key: bad CRC-32 (the key says %08x, its secret gives %08x): the "
			    "text was altered or cut",
			    mimo_key_kind_name(kind), crc, want);
	}
	out->kind = kind;
	out->len = (uint8_t)n;
	memcpy(out->key, buf, (size_t)n);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

const char *mimo_key_kind_name(enum mimo_key_kind kind)
{
	return kind == MIMO_KEY_TLS_PSK ? "tls_psk" : kind == MIMO_KEY_DHCHAP ? "dhchap" : "?";
}

void mimo_key_material_wipe(struct mimo_key_material *k)
{
	explicit_bzero(k, sizeof(*k));
}
