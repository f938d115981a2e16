/*
 * Find where the first JSON value in a byte stream ends, without parsing it: SPDK's framing
 * is concatenated JSON values, so a server must know when a request is complete before it
 * hands it to a parser. Strings, escapes and nesting are tracked; everything else is left to
 * the parser that follows.
 */
#ifndef MIMO_JSONRPC_FRAME_H
#define MIMO_JSONRPC_FRAME_H

#include <stddef.h>
#include <sys/types.h>

/* Nesting deeper than this is refused while framing (the parser's own limit is 2048). */
#define JSONRPC_FRAME_MAX_DEPTH 1024

/*
 * Scan buf[0..len). Leading whitespace is skipped; *start receives the offset of the value.
 * Returns the offset just past the value (> 0) when it is complete; 0 when more bytes are
 * needed (a value is incomplete, or there is only whitespace: *start then says how much of it
 * can be dropped); -EBADMSG when the bytes cannot be the start of JSON, with *start at the
 * offending byte.
 */
ssize_t jsonrpc_frame(const char *buf, size_t len, size_t *start);

#endif
