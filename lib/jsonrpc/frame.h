/*
 * Find where the first JSON value in a byte stream ends, without parsing it: SPDK's framing
 * is concatenated JSON values, so a server must know when a request is complete before it
 * hands it to a parser. Strings, escapes and nesting are tracked; everything else is left to
 * the parser that follows.
 *
 * The framer keeps its state between calls, so a request that arrives in many reads is
 * scanned once in all (a 4 MiB request in 64 KiB reads costs 4 MiB of scanning, not 130 MiB).
 */
#ifndef MIMO_JSONRPC_FRAME_H
#define MIMO_JSONRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Nesting deeper than this is refused while framing (the parser's limit is the same). */
#define JSONRPC_FRAME_MAX_DEPTH 1024

struct jsonrpc_framer {
	size_t pos;   /* bytes of the buffer scanned so far */
	size_t start; /* where the value begins (once pos is past leading whitespace) */
	uint32_t depth;
	uint8_t kind; /* what the value is, once its first byte was seen */
	bool in_string;
	bool escape;
};

/* Forget any partial scan (after the caller consumed a value or dropped its buffer). */
static inline void jsonrpc_framer_reset(struct jsonrpc_framer *f)
{
	*f = (struct jsonrpc_framer){ 0 };
}

/*
 * Continue scanning buf[0..len) - the same bytes as before plus any appended since, with
 * nothing consumed in between (reset after consuming). Returns the offset just past the value
 * (> 0) when it is complete, its first byte at f->start; 0 when more bytes are needed (while
 * only whitespace was seen, f->start says how much of it can be dropped); -EBADMSG when the
 * bytes cannot be the start of JSON, with f->start at the offending byte.
 */
ssize_t jsonrpc_framer_scan(struct jsonrpc_framer *f, const char *buf, size_t len);

/* One-shot: scan buf from its beginning (tests and fuzzers). */
ssize_t jsonrpc_frame(const char *buf, size_t len, size_t *start);

#endif
