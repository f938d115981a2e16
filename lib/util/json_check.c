#include "json_check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* Byte classes for the string fast path: 0 = plain ASCII, 1 = quote or backslash,
 * 2 = control character (invalid), 3 = start of a UTF-8 multi-byte sequence (or invalid). */
enum {
	C_PLAIN = 0,
	C_STOP = 1,
	C_CTRL = 2,
	C_HIGH = 3
};

/* Computed, not looked up: a table would be one more cache line (and page) for a caller whose
 * caches are cold. */
static inline unsigned str_class(uint8_t c)
{
	if (c >= 0x80)
		return C_HIGH;
	if (c < 0x20)
		return C_CTRL;
	return c == '"' || c == '\\' ? C_STOP : C_PLAIN;
}

static inline bool str_plain(uint8_t c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static inline bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

size_t mimo_utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
	uint8_t c = p[0];
	size_t n;
	uint8_t lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

/* p points after the opening quote. Returns a pointer after the closing quote, or NULL
 * with *bad set to the offending byte. */
/* hot: placed with mimo_json_check and the bridge's producer path (see notify.c). */
static __attribute__((hot)) const uint8_t *scan_string(const uint8_t *p, const uint8_t *end,
						       const uint8_t **bad, unsigned flags,
						       bool *bad_utf8)
{
	for (;;) {
		while (p < end && str_plain(*p))
			p++;
		if (p >= end)
			break;
		switch (str_class(*p)) {
		case C_STOP:
			if (*p == '"')
				return p + 1;
			/* backslash escape */
			if (p + 1 >= end) {
				*bad = p + 1;
				return NULL;
			}
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				break;
			case 'u':
				for (int i = 2; i < 6; i++) {
					if (p + i >= end || !is_hex(p[i])) {
						*bad = p + i;
						return NULL;
					}
				}
				p += 6;
				break;
			default:
				*bad = p + 1;
				return NULL;
			}
			break;
		case C_HIGH: {
			size_t n = mimo_utf8_seq_len(p, end);

			if (n == 0) {
				if (!(flags & MIMO_JSON_ALLOW_BAD_UTF8)) {
					*bad = p;
					return NULL;
				}
				*bad_utf8 = true;
				n = 1;
			}
			p += n;
			break;
		}
		default: /* C_CTRL */
			*bad = p;
			return NULL;
		}
	}
	*bad = end;
	return NULL;
}

static const uint8_t *scan_number(const uint8_t *p, const uint8_t *end, const uint8_t **bad)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		goto fail;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && is_digit(*p))
			p++;
	} else {
		goto fail;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !is_digit(*p))
			goto fail;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !is_digit(*p))
			goto fail;
		while (p < end && is_digit(*p))
			p++;
	}
	return p;
fail:
	*bad = p;
	return NULL;
}

static const uint8_t *scan_literal(const uint8_t *p, const uint8_t *end, const char *word,
				   const uint8_t **bad)
{
	for (const char *w = word; *w; w++, p++) {
		if (p >= end || *p != (uint8_t)*w) {
			*bad = p;
			return NULL;
		}
	}
	return p;
}

enum state {
	S_VALUE,	    /* a value must follow */
	S_OBJ_KEY_OR_END,   /* after '{' */
	S_OBJ_KEY,	    /* after ',' in an object */
	S_ARR_VALUE_OR_END, /* after '[' */
	S_AFTER_VALUE,	    /* a value just ended */
};

int mimo_json_check_object(const char *buf, size_t len, unsigned max_depth, size_t *err_off)
{
	return mimo_json_check(buf, len, MIMO_JSON_OBJECT,
			       max_depth < MIMO_JSON_MAX_DEPTH ? max_depth : MIMO_JSON_MAX_DEPTH,
			       err_off);
}

int mimo_json_check(const char *buf, size_t len, unsigned flags, unsigned max_depth,
		    size_t *err_off)
{
	const uint8_t *start = (const uint8_t *)buf, *p = start, *end = start + len;
	const uint8_t *bad = NULL;
	/* One bit per open container: 1 = object, 0 = array. Each bit is written when its
	 * container opens, before it is read, so the words need no clearing. */
	uint64_t stack[(MIMO_JSON_MAX_DEPTH_ANY + 63) / 64];
	unsigned depth = 0;
	bool bad_utf8 = false;
	enum state st = S_VALUE;

	if (max_depth > MIMO_JSON_MAX_DEPTH_ANY)
		max_depth = MIMO_JSON_MAX_DEPTH_ANY;
	while (p < end && is_ws(*p))
		p++;
	if ((flags & MIMO_JSON_OBJECT) && (p >= end || *p != '{' || max_depth == 0)) {
		bad = p;
		goto fail;
	}

	for (;;) {
		while (p < end && is_ws(*p))
			p++;
		if (st == S_AFTER_VALUE && depth == 0)
			break;
		if (p >= end) {
			bad = p;
			goto fail;
		}
		switch (st) {
		case S_OBJ_KEY_OR_END:
			if (*p == '}') {
				p++;
				depth--;
				st = S_AFTER_VALUE;
				break;
			}
			/* fall through */
		case S_OBJ_KEY:
			if (*p != '"') {
				bad = p;
				goto fail;
			}
			p = scan_string(p + 1, end, &bad, flags, &bad_utf8);
			if (p == NULL)
				goto fail;
			while (p < end && is_ws(*p))
				p++;
			if (p >= end || *p != ':') {
				bad = p;
				goto fail;
			}
			p++;
			st = S_VALUE;
			break;
		case S_ARR_VALUE_OR_END:
			if (*p == ']') {
				p++;
				depth--;
				st = S_AFTER_VALUE;
				break;
			}
			/* fall through */
		case S_VALUE:
			switch (*p) {
			case '{':
			case '[':
				if (depth >= max_depth) {
					if (err_off != NULL)
						*err_off = (size_t)(p - start);
					return -E2BIG;
				}
				if (*p == '{') {
					stack[depth / 64] |= 1ULL << (depth % 64);
					st = S_OBJ_KEY_OR_END;
				} else {
					stack[depth / 64] &= ~(1ULL << (depth % 64));
					st = S_ARR_VALUE_OR_END;
				}
				depth++;
				p++;
				continue;
			case '"':
				p = scan_string(p + 1, end, &bad, flags, &bad_utf8);
				break;
			case 't':
				p = scan_literal(p, end, "true", &bad);
				break;
			case 'f':
				p = scan_literal(p, end, "false", &bad);
				break;
			case 'n':
				p = scan_literal(p, end, "null", &bad);
				break;
			default:
				p = scan_number(p, end, &bad);
				break;
			}
			if (p == NULL)
				goto fail;
			st = S_AFTER_VALUE;
			break;
		case S_AFTER_VALUE: {
			bool in_obj = (stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;

			if (*p == ',') {
				st = in_obj ? S_OBJ_KEY : S_VALUE;
			} else if (*p == (in_obj ? '}' : ']')) {
				depth--;
			} else {
				bad = p;
				goto fail;
			}
			p++;
			break;
		}
		}
	}
	/* A C string ends at its NUL; nothing before it reads past one (a NUL is invalid in
	 * every other place of a document). */
	if (p != end && !((flags & MIMO_JSON_CSTR) && *p == '\0')) {
		bad = p;
		goto fail;
	}
	if ((flags & MIMO_JSON_CSTR) && err_off != NULL)
		*err_off = (size_t)(p - start);
	return bad_utf8 ? 1 : 0;
fail:
	if (err_off != NULL)
		*err_off = (size_t)(bad - start);
	return -EBADMSG;
}
