/*
 * A JSON parser that builds jansson trees (see parse.h for why it is not json_loadb).
 * Recursive descent, one pass; recursion is bounded by JSONRPC_PARSE_MAX_DEPTH. The rules
 * follow jansson 2.14's loader so that the two accept the same documents: strings are valid
 * UTF-8 without control characters, \u0000 and unpaired surrogates are refused, numbers follow
 * the JSON grammar strictly (no leading zeros, no bare '.'), and a later duplicate key
 * replaces an earlier one.
 */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number's text is copied here for strtod when it fits; longer ones go to the heap. */
#define NUMBER_STACK 64

struct parser {
	const char *p, *end;
	struct jsonrpc_bignums *bigs;
	char *err;
	size_t err_len;
	unsigned int depth;
};

static json_t *fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	/* Only the first (innermost) error is kept. */
	if (ps->err_len > 0 && ps->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(ps->err, ps->err_len, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* --- strings ---------------------------------------------------------------------------- */

/*
 * Length of the UTF-8 sequence at s (at most n bytes), or 0 when it is not valid: overlong
 * forms, surrogates and code points above U+10FFFF are refused, as jansson does.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000))
		return 0;
	return len;
}

static int hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* One \uXXXX escape (a surrogate pair counts as one) at s[0] == 'u'; *used: bytes after the
 * backslash. Returns the code point, or -1 with the error recorded. */
static long unicode_escape(struct parser *ps, const char *s, const char *end, size_t *used)
{
	uint32_t hi, lo;

	if (end - s < 5 || hex4(s + 1, &hi) != 0)
		return fail(ps, "invalid \\u escape"), -1;
	*used = 5;
	if (hi == 0)
		return fail(ps, "\\u0000 is not allowed"), -1;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return fail(ps, "invalid Unicode '\\u%04X'", hi), -1;
	if (hi < 0xD800 || hi > 0xDBFF)
		return hi;
	if (end - s < 11 || s[5] != '\\' || s[6] != 'u' || hex4(s + 7, &lo) != 0 || lo < 0xDC00 ||
	    lo > 0xDFFF)
		return fail(ps, "invalid Unicode '\\u%04X'", hi), -1;
	*used = 11;
	return 0x10000 + (((long)hi - 0xD800) << 10) + ((long)lo - 0xDC00);
}

/* True when none of the 8 bytes at s is a control character, '"', '\\' or non-ASCII. */
static bool plain8(const char *s)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t x;

	memcpy(&x, s, sizeof(x));
	/* A byte below 0x20, or with its high bit set, or equal to '"' or '\\' (the classic
	 * "has a zero byte" test on x ^ c). */
	return (((x - ones * 0x20) | x | ((x ^ (ones * '"')) - ones) |
		 ((x ^ (ones * '\\')) - ones)) &
		highs) == 0;
}

/*
 * A string at ps->p (just past its opening quote). On success *out points at its bytes
 * (either inside the input, or in *heap when escapes had to be decoded), *len its length.
 */
static int scan_string(struct parser *ps, const char **out, size_t *len, char **heap)
{
	const char *s = ps->p, *end = ps->end;
	bool escapes = false;
	char *o;

	*heap = NULL;
	/* First pass: find the end, check the bytes, note whether decoding is needed. */
	while (s < end && *s != '"') {
		unsigned char c = (unsigned char)*s;
		size_t n;

		/* Eight plain ASCII bytes at a time: most of a long string is nothing else. */
		if (end - s >= 8 && plain8(s)) {
			s += 8;
			continue;
		}

		if (c < 0x20)
			return fail(ps, "control character 0x%x in string", c), -1;
		if (c == '\\') {
			escapes = true;
			if (s + 1 >= end)
				return fail(ps, "premature end of input in string"), -1;
			if (s[1] == 'u') {
				uint32_t v;

				if (end - s < 6 || hex4(s + 2, &v) != 0)
					return fail(ps, "invalid \\u escape"), -1;
				s += 6;
				continue;
			}
			if (strchr("\"\\/bfnrt", s[1]) == NULL || s[1] == '\0')
				return fail(ps, "invalid escape"), -1;
			s += 2;
			continue;
		}
		n = utf8_len((const unsigned char *)s, (size_t)(end - s));
		if (n == 0)
			return fail(ps, "invalid UTF-8 in string"), -1;
		s += n;
	}
	if (s >= end)
		return fail(ps, "premature end of input in string"), -1;
	if (!escapes) {
		*out = ps->p;
		*len = (size_t)(s - ps->p);
		ps->p = s + 1;
		return 0;
	}
	/* Second pass: decode into a buffer no longer than the text (escapes only shrink). */
	o = malloc((size_t)(s - ps->p) + 1);
	if (o == NULL)
		return fail(ps, "out of memory"), -1;
	*heap = o;
	for (const char *q = ps->p; q < s;) {
		long cp;
		size_t used;

		if (*q != '\\') {
			*o++ = *q++;
			continue;
		}
		switch (q[1]) {
		case 'u':
			cp = unicode_escape(ps, q + 1, s, &used);
			if (cp < 0) {
				free(*heap);
				*heap = NULL;
				return -1;
			}
			o += utf8_put(o, (uint32_t)cp);
			q += 1 + used;
			continue;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		default: /* " \ / */
			*o++ = q[1];
			break;
		}
		q += 2;
	}
	*out = *heap;
	*len = (size_t)(o - *heap);
	ps->p = s + 1;
	return 0;
}

/* --- numbers ---------------------------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int bignum_add(struct jsonrpc_bignums *b, const json_t *v, uint64_t exact)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4;
		struct jsonrpc_bignum *nv = realloc(b->v, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		b->v = nv;
		b->cap = cap;
	}
	b->v[b->n].value = v;
	b->v[b->n].exact = exact;
	b->n++;
	return 0;
}

static json_t *parse_real(struct parser *ps, const char *start, size_t len)
{
	char stack[NUMBER_STACK], *text = stack;
	double d;
	json_t *v;

	if (len >= sizeof(stack)) {
		text = malloc(len + 1);
		if (text == NULL)
			return fail(ps, "out of memory");
	}
	memcpy(text, start, len);
	text[len] = '\0';
	errno = 0;
	d = strtod(text, NULL);
	if (text != stack)
		free(text);
	/* Underflow gives zero or a denormal, as in jansson; overflow is refused. */
	if (errno == ERANGE && isinf(d))
		return fail(ps, "real number overflow");
	v = json_real(d);
	return v != NULL ? v : fail(ps, "out of memory");
}

/* An integer: magnitude accumulated without strtoll, so the unsigned range is kept. */
static json_t *parse_integer(struct parser *ps, const char *digits, const char *end, bool neg)
{
	uint64_t u = 0;
	json_t *v;

	for (const char *q = digits; q < end; q++) {
		unsigned int d = (unsigned int)(*q - '0');

		if (u > (UINT64_MAX - d) / 10)
			return fail(ps, neg ? "too big negative integer" : "too big integer");
		u = u * 10 + d;
	}
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return fail(ps, "too big negative integer");
		v = json_integer(u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)u);
	} else if (u <= (uint64_t)INT64_MAX) {
		v = json_integer((json_int_t)u);
	} else {
		/* Above int64: a real for generic readers, the exact value on the side. */
		v = json_real((double)u);
		if (v != NULL && bignum_add(ps->bigs, v, u) != 0) {
			json_decref(v);
			v = NULL;
		}
	}
	return v != NULL ? v : fail(ps, "out of memory");
}

static json_t *parse_number(struct parser *ps)
{
	const char *start = ps->p, *q = ps->p, *end = ps->end, *digits;
	bool neg = false, real = false;

	if (*q == '-') {
		neg = true;
		q++;
	}
	digits = q;
	if (q < end && *q == '0') {
		q++;
		if (q < end && is_digit(*q))
			return fail(ps, "invalid number (leading zero)");
	} else if (q < end && is_digit(*q)) {
		while (q < end && is_digit(*q))
			q++;
	} else {
		return fail(ps, "invalid token");
	}
	if (q < end && *q == '.') {
		real = true;
		q++;
		if (q >= end || !is_digit(*q))
			return fail(ps, "invalid number (fraction)");
		while (q < end && is_digit(*q))
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		real = true;
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q >= end || !is_digit(*q))
			return fail(ps, "invalid number (exponent)");
		while (q < end && is_digit(*q))
			q++;
	}
	ps->p = q;
	return real ? parse_real(ps, start, (size_t)(q - start))
		    : parse_integer(ps, digits, q, neg);
}

/* The big integers inside v leave the table: v is about to be freed (a duplicate key
 * replaces it), and a later allocation may reuse their addresses. */
static void forget_bignums(struct jsonrpc_bignums *b, const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (json_is_real(v)) {
		for (i = 0; i < b->n; i++) {
			if (b->v[i].value == v) {
				b->v[i] = b->v[--b->n];
				return;
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) forget_bignums(b, item);
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, item) forget_bignums(b, item);
	}
}

/* --- values ----------------------------------------------------------------------------- */

static json_t *parse_value(struct parser *ps);

static json_t *parse_array(struct parser *ps)
{
	json_t *a = json_array(), *v;

	if (a == NULL)
		return fail(ps, "out of memory");
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return a;
	}
	for (;;) {
		v = parse_value(ps);
		if (v == NULL || json_array_append_new(a, v) != 0)
			goto fail;
		skip_ws(ps);
		if (ps->p >= ps->end) {
			fail(ps, "premature end of input in array");
			goto fail;
		}
		if (*ps->p == ']') {
			ps->p++;
			return a;
		}
		if (*ps->p != ',') {
			fail(ps, "']' or ',' expected");
			goto fail;
		}
		ps->p++;
	}
fail:
	fail(ps, "out of memory");
	json_decref(a);
	return NULL;
}

static json_t *parse_object(struct parser *ps)
{
	json_t *o = json_object(), *v;

	if (o == NULL)
		return fail(ps, "out of memory");
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return o;
	}
	for (;;) {
		const char *key;
		size_t key_len;
		char *heap;
		int rc;

		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			fail(ps, "string or '}' expected");
			goto fail;
		}
		ps->p++;
		if (scan_string(ps, &key, &key_len, &heap) != 0)
			goto fail;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			free(heap);
			fail(ps, "':' expected");
			goto fail;
		}
		ps->p++;
		v = parse_value(ps);
		if (v == NULL) {
			free(heap);
			goto fail;
		}
		/* The key was checked above; a later duplicate replaces the earlier value. */
		if (ps->bigs->n != 0) {
			json_t *old = json_object_getn(o, key, key_len);

			if (old != NULL)
				forget_bignums(ps->bigs, old);
		}
		rc = json_object_setn_new_nocheck(o, key, key_len, v);
		free(heap);
		if (rc != 0)
			goto fail;
		skip_ws(ps);
		if (ps->p >= ps->end) {
			fail(ps, "premature end of input in object");
			goto fail;
		}
		if (*ps->p == '}') {
			ps->p++;
			return o;
		}
		if (*ps->p != ',') {
			fail(ps, "'}' or ',' expected");
			goto fail;
		}
		ps->p++;
	}
fail:
	fail(ps, "out of memory");
	json_decref(o);
	return NULL;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	/* jansson reads a whole run of letters as one word: "truex" is no "true". */
	if ((size_t)(ps->end - ps->p) > n) {
		char c = ps->p[n];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			return false;
	}
	ps->p += n;
	return true;
}

static json_t *parse_value(struct parser *ps)
{
	json_t *v;

	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "premature end of input");
	if (++ps->depth > JSONRPC_PARSE_MAX_DEPTH)
		return fail(ps, "maximum parsing depth reached");
	switch (*ps->p) {
	case '{':
		ps->p++;
		v = parse_object(ps);
		break;
	case '[':
		ps->p++;
		v = parse_array(ps);
		break;
	case '"': {
		const char *s;
		size_t len;
		char *heap;

		ps->p++;
		if (scan_string(ps, &s, &len, &heap) != 0)
			return NULL;
		v = json_stringn_nocheck(s, len);
		free(heap);
		if (v == NULL)
			return fail(ps, "out of memory");
		break;
	}
	case 't':
		v = literal(ps, "true") ? json_true() : fail(ps, "invalid token");
		break;
	case 'f':
		v = literal(ps, "false") ? json_false() : fail(ps, "invalid token");
		break;
	case 'n':
		v = literal(ps, "null") ? json_null() : fail(ps, "invalid token");
		break;
	default:
		v = parse_number(ps);
		break;
	}
	ps->depth--;
	return v;
}

json_t *jsonrpc_parse(const char *text, size_t len, struct jsonrpc_bignums *bigs, char *err,
		      size_t err_len)
{
	struct parser ps = {
		.p = text, .end = text + len, .bigs = bigs, .err = err, .err_len = err_len
	};
	json_t *v;

	if (err_len > 0)
		err[0] = '\0';
	v = parse_value(&ps);
	if (v != NULL) {
		skip_ws(&ps);
		if (ps.p == ps.end)
			return v;
		json_decref(v);
		fail(&ps, "end of input expected");
	}
	if (err_len > 0 && err[0] == '\0')
		snprintf(err, err_len, "invalid JSON");
	bigs->n = 0; /* they pointed into the tree just freed */
	return NULL;
}

void jsonrpc_bignums_free(struct jsonrpc_bignums *bigs)
{
	free(bigs->v);
	memset(bigs, 0, sizeof(*bigs));
}

static __thread const struct jsonrpc_bignums *t_current;

void jsonrpc_bignums_enter(const struct jsonrpc_bignums *bigs)
{
	t_current = bigs;
}

void jsonrpc_bignums_leave(void)
{
	t_current = NULL;
}

int jsonrpc_bignum_lookup(const json_t *value, uint64_t *exact)
{
	const struct jsonrpc_bignums *b = t_current;

	if (b == NULL)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].value == value) {
			*exact = b->v[i].exact;
			return 1;
		}
	}
	return 0;
}
