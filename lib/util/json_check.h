/* A strict, allocation-free JSON checker (RFC 8259), fast enough for hot paths. */
#ifndef MIMO_UTIL_JSON_CHECK_H
#define MIMO_UTIL_JSON_CHECK_H

#include <stddef.h>

/* Deepest nesting accepted by the checker. */
#define MIMO_JSON_MAX_DEPTH 256

/*
 * Check that buf[0..len) is exactly one JSON object, with optional whitespace around it.
 * Strings must be valid UTF-8 (no overlong forms, no surrogates) without raw control
 * characters; numbers follow the JSON grammar; nesting is limited to max_depth
 * (at most MIMO_JSON_MAX_DEPTH). A NUL byte anywhere is an error.
 * Returns 0, or -EBADMSG with *err_off (if not NULL) set to the offset of the first byte
 * that cannot belong to a valid object, or -E2BIG when nesting exceeds max_depth.
 */
int mimo_json_check_object(const char *buf, size_t len, unsigned max_depth, size_t *err_off);

#endif
