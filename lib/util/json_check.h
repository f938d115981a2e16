/* A strict, allocation-free JSON checker (RFC 8259), fast enough for hot paths. */
#ifndef MIMO_UTIL_JSON_CHECK_H
#define MIMO_UTIL_JSON_CHECK_H

#include <stddef.h>

/* Deepest nesting mimo_json_check_object accepts. */
#define MIMO_JSON_MAX_DEPTH 256
/* Deepest nesting mimo_json_check accepts: Go's encoding/json limit (json.Valid). */
#define MIMO_JSON_MAX_DEPTH_ANY 10000

/* Flags of mimo_json_check. */
enum {
	MIMO_JSON_OBJECT = 1 << 0,	   /* the document must be an object, not any value */
	MIMO_JSON_ALLOW_BAD_UTF8 = 1 << 1, /* bytes >= 0x80 in strings need not be UTF-8 */
	/* buf is a C string of at most len bytes: it ends at its NUL (never read past), and
	 * *err_off receives its length on success (no strlen needed first) */
	MIMO_JSON_CSTR = 1 << 2,
};

/*
 * Check that buf[0..len) is exactly one JSON object, with optional whitespace around it.
 * Strings must be valid UTF-8 (no overlong forms, no surrogates) without raw control
 * characters; numbers follow the JSON grammar; nesting is limited to max_depth
 * (at most MIMO_JSON_MAX_DEPTH). A NUL byte anywhere is an error.
 * Returns 0, or -EBADMSG with *err_off (if not NULL) set to the offset of the first byte
 * that cannot belong to a valid object, or -E2BIG when nesting exceeds max_depth.
 */
int mimo_json_check_object(const char *buf, size_t len, unsigned max_depth, size_t *err_off);

/*
 * The same check for one JSON value of any kind (or only an object, with MIMO_JSON_OBJECT);
 * max_depth up to MIMO_JSON_MAX_DEPTH_ANY. With MIMO_JSON_ALLOW_BAD_UTF8, strings may hold
 * bytes that are not UTF-8 (what Go's json.Valid accepts): the document is then valid but
 * needs repair before it is sent, which the return value 1 says (see mimo_utf8_repair).
 * Returns 0, 1, -EBADMSG or -E2BIG as above.
 */
int mimo_json_check(const char *buf, size_t len, unsigned flags, unsigned max_depth,
		    size_t *err_off) __attribute__((hot));

/* Length of the valid UTF-8 sequence at p (p[0] >= 0x80, p < end), or 0 if it is not one. */
size_t mimo_utf8_seq_len(const unsigned char *p, const unsigned char *end);

#endif
