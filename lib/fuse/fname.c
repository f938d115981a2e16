/*
 * Bdev names as file names: escaping and hashing (the rules are in fname.h).
 *
 * A name is handled as a sequence of tokens, each what one input character becomes: an escape
 * (\xHH) or the character itself, a whole UTF-8 sequence kept together. A hashed name's prefix
 * is cut between tokens, so it never ends in half an escape or half a character and the file
 * name stays valid UTF-8 when the bdev name is.
 */
#include "fname.h"

#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uuid.h"

static bool is_dots(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

bool fuse_fname_is_plain(const char *name)
{
	size_t len = strnlen(name, FUSE_FNAME_MAX + 1);

	return len > 0 && len <= FUSE_FNAME_MAX && strchr(name, '/') == NULL && !is_dots(name);
}

/* Bytes of the UTF-8 sequence at p, or 1 when p does not start a complete one. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 1; /* ASCII, a stray continuation byte, or never a lead byte */
	n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* the terminating NUL stops this too */
			return 1;
	}
	return n;
}

/* What the character at p becomes (into tok), its length; *adv: input bytes it takes. */
static size_t token(const unsigned char *p, bool dots, char tok[4], size_t *adv)
{
	if (*p == '/' || *p == '\\' || *p == '~' || (dots && *p == '.')) {
		static const char hex[] = "0123456789abcdef";

		tok[0] = '\\';
		tok[1] = 'x';
		tok[2] = hex[*p >> 4];
		tok[3] = hex[*p & 15];
		*adv = 1;
		return 4;
	}
	*adv = utf8_len(p);
	memcpy(tok, p, *adv);
	return *adv;
}

size_t fuse_fname_escape(const char *name, char *out, size_t cap)
{
	bool dots = is_dots(name);
	size_t o = 0, adv;
	char tok[4];

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p += adv) {
		size_t tl = token(p, dots, tok, &adv);

		for (size_t i = 0; i < tl; i++, o++) {
			if (o + 1 < cap)
				out[o] = tok[i];
		}
	}
	if (cap > 0)
		out[o < cap ? o : cap - 1] = '\0';
	return o;
}

/* Whether escaping name gives exactly fname, without building the escape. */
static bool escapes_to(const char *name, const char *fname)
{
	bool dots = is_dots(name);
	size_t adv;
	char tok[4];

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p += adv) {
		size_t tl = token(p, dots, tok, &adv);

		if (strncmp(fname, tok, tl) != 0)
			return false;
		fname += tl;
	}
	return *fname == '\0';
}

bool fuse_fname_unescape(const char *fname, char *out)
{
	const char *s = fname;
	char *d = out;

	while (*s != '\0') {
		int hi, lo;

		if (s[0] == '\\' && s[1] == 'x' && (hi = mimo_hexval(s[2])) >= 0 &&
		    (lo = mimo_hexval(s[3])) >= 0) {
			if (hi == 0 && lo == 0)
				return false; /* no bdev name holds a NUL */
			*d++ = (char)(hi << 4 | lo);
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
	return escapes_to(out, fname);
}

bool fuse_fname_is_hashed(const char *fname)
{
	size_t len = strlen(fname);

	if (len < 1 + FUSE_FNAME_HASH_HEX || fname[len - 1 - FUSE_FNAME_HASH_HEX] != '~')
		return false;
	for (size_t i = len - FUSE_FNAME_HASH_HEX; i < len; i++) {
		if (!((fname[i] >= '0' && fname[i] <= '9') || (fname[i] >= 'a' && fname[i] <= 'f')))
			return false;
	}
	return true;
}

/*
 * The k-th hashed name of name. The digest is SHA-256: a client that may create bdevs cannot
 * make two names share one (a weak hash would let it hide a bdev behind another's file name).
 * Should OpenSSL fail (out of memory), the digest stays zero: names may then collide, and the
 * next listing or lookup, with memory, is right again.
 */
static void hashed(const char *name, uint32_t k, char out[FUSE_FNAME_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH] = { 0 };
	bool dots = is_dots(name);
	size_t o = 0, adv;
	char tok[4];

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p += adv) {
		size_t tl = token(p, dots, tok, &adv);

		if (o + tl > FUSE_FNAME_PREFIX)
			break;
		memcpy(out + o, tok, tl);
		o += tl;
	}
	SHA256((const unsigned char *)name, strlen(name), md);
	if (k > 0) {
		/* Another digest for each try: SHA-256(digest, k as 4 bytes big-endian). */
		unsigned char in[SHA256_DIGEST_LENGTH + 4];

		memcpy(in, md, SHA256_DIGEST_LENGTH);
		for (int i = 0; i < 4; i++)
			in[SHA256_DIGEST_LENGTH + i] = (unsigned char)(k >> (24 - 8 * i));
		SHA256(in, sizeof(in), md);
	}
	out[o++] = '~';
	for (size_t i = 0; i < FUSE_FNAME_HASH_HEX / 2; i++) {
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 15];
	}
	out[o] = '\0';
}

void fuse_fname_map(const char *name, fuse_fname_taken_fn taken, void *ctx,
		    char out[FUSE_FNAME_MAX + 1])
{
	if (fuse_fname_is_plain(name)) {
		memcpy(out, name, strlen(name) + 1);
		return;
	}
	if (fuse_fname_escape(name, out, FUSE_FNAME_MAX + 1) <= FUSE_FNAME_MAX &&
	    (taken == NULL || !taken(ctx, out)))
		return;
	/* Ends: each name tried and taken is another bdev's, and there are finitely many. */
	for (uint32_t k = 0;; k++) {
		hashed(name, k, out);
		if (taken == NULL || !taken(ctx, out))
			return;
	}
}
