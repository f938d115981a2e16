/*
 * The JSON parser of the RPC server: one complete value (framed by frame.c) into a jansson
 * tree, in one pass over its bytes.
 *
 * It accepts exactly what jansson's json_loadb(JSON_DECODE_ANY) accepts and builds the same
 * tree (test/fuzz/fuzz_jsonrpc_parse.c checks the two against each other), with one
 * difference: an integer above INT64_MAX and up to UINT64_MAX - which SPDK's rpc.py sends
 * for unsigned 64-bit parameters, and jansson refuses as "too big integer" - is kept. jansson
 * has no type for it, so it becomes a JSON real (its nearest double, for anyone who reads it
 * as a number) and its exact value is recorded in a side table that mimo_json_decode_uint64
 * consults while the request is being dispatched (jsonrpc_bignums_enter/leave).
 */
#ifndef MIMO_JSONRPC_PARSE_H
#define MIMO_JSONRPC_PARSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused (the framer's limit is the same). */
#define JSONRPC_PARSE_MAX_DEPTH 1024

struct jsonrpc_bignum {
	const json_t *value; /* a real in the tree */
	uint64_t exact;
};

/* Integers of one parsed value that did not fit in int64 (usually none). */
struct jsonrpc_bignums {
	struct jsonrpc_bignum *v;
	size_t n, cap;
};

/*
 * Parse text[0..len): one JSON value with optional whitespace around it. Returns a new
 * reference, or NULL with a message in err (at least 64 bytes are useful). bigs receives the
 * integers above INT64_MAX (pass it empty; free it with jsonrpc_bignums_free); it is left
 * empty when parsing fails.
 */
json_t *jsonrpc_parse(const char *text, size_t len, struct jsonrpc_bignums *bigs, char *err,
		      size_t err_len);

void jsonrpc_bignums_free(struct jsonrpc_bignums *bigs);

/*
 * While a parsed value is dispatched on this thread, its big integers can be looked up: the
 * server calls enter before jsonrpc_handle_value and leave after. Decoders called later (a
 * handler that decodes on another thread) do not see them and refuse the value as too large.
 */
void jsonrpc_bignums_enter(const struct jsonrpc_bignums *bigs);
void jsonrpc_bignums_leave(void);
/* True and *exact set when value is one of the current value's big integers. */
int jsonrpc_bignum_lookup(const json_t *value, uint64_t *exact);

#endif
