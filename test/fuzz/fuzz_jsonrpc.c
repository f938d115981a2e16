/*
 * Fuzz the JSON-RPC server's input path: the stream framer over a byte stream of requests,
 * jansson on each framed value, request validation, batches, method dispatch and the
 * parameter decoders, down to the response each request gets.
 *
 * Properties: nothing crashes or leaks; the framer never claims bytes it was not given; every
 * response is a JSON object (or an array of them, for batches) with "jsonrpc":"2.0" and
 * exactly one of "result" and "error"; a request answered with a result decoded cleanly.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "jsonrpc_internal.h"
#include "mimo/jsonrpc.h"
#include "parse.h"

struct all_types {
	char *s;
	bool b;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	double d;
	const json_t *j;
};

static const struct mimo_json_decoder decoders[] = {
	{ "s", offsetof(struct all_types, s), mimo_json_decode_string, true },
	{ "b", offsetof(struct all_types, b), mimo_json_decode_bool, true },
	{ "u16", offsetof(struct all_types, u16), mimo_json_decode_uint16, true },
	{ "u32", offsetof(struct all_types, u32), mimo_json_decode_uint32, false },
	{ "u64", offsetof(struct all_types, u64), mimo_json_decode_uint64, true },
	{ "i32", offsetof(struct all_types, i32), mimo_json_decode_int32, true },
	{ "d", offsetof(struct all_types, d), mimo_json_decode_double, true },
	{ "j", offsetof(struct all_types, j), mimo_json_decode_json, true },
};

static void fuzz_decode(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct all_types p = { 0 };

	if (!mimo_rpc_decode(req, params, decoders, MIMO_COUNTOF(decoders), &p))
		return;
	mimo_jsonrpc_send_result(req, json_pack("{s:i}", "u32", (int)p.u32));
	mimo_json_decode_free(decoders, MIMO_COUNTOF(decoders), &p);
}

static void fuzz_noparams(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (mimo_rpc_no_params(req, params))
		mimo_jsonrpc_send_bool(req, true);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "fuzz_decode", fuzz_decode, MIMO_RPC_RUNTIME },
	{ "fuzz_noparams", fuzz_noparams, MIMO_RPC_RUNTIME },
};

static void register_fuzz_methods(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}

static void check_response(const json_t *r)
{
	bool has_result, has_error;

	if (!json_is_object(r))
		abort();
	if (!json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
		abort();
	has_result = json_object_get(r, "result") != NULL;
	has_error = json_object_get(r, "error") != NULL;
	if (has_result == has_error)
		abort();
	if (has_error && !json_is_integer(json_object_get(json_object_get(r, "error"), "code")))
		abort();
}

static void deliver(struct rpc_sink *sink, char *text, size_t len)
{
	json_t *response = json_loadb(text, len, JSON_DECODE_ANY, NULL), *r;
	size_t i;

	(void)sink;
	/* What goes on the wire must be JSON of the right shape. */
	if (response == NULL || strlen(text) != len)
		abort();
	if (json_is_array(response)) {
		if (json_array_size(response) == 0)
			abort();
		json_array_foreach(response, i, r) check_response(r);
	} else {
		check_response(response);
	}
	json_decref(response);
	free(text);
}

static void release(struct rpc_sink *sink)
{
	(void)sink;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The framer's rules one byte at a time, with nothing clever: the oracle the real framer (and
 * its memchr over strings) must agree with. */
static ssize_t ref_frame(const char *b, size_t n, size_t *start)
{
	size_t i = 0, depth = 0;
	int in_str = 0, esc = 0;

	while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
		i++;
	*start = i;
	if (i == n)
		return 0;
	if (b[i] != '{' && b[i] != '[') {
		ssize_t whole = jsonrpc_frame(b, n, start); /* scalars: not what this checks */
		return whole;
	}
	for (; i < n; i++) {
		if (in_str) {
			if (esc)
				esc = 0;
			else if (b[i] == '\\')
				esc = 1;
			else if (b[i] == '"')
				in_str = 0;
		} else if (b[i] == '"') {
			in_str = 1;
		} else if (b[i] == '{' || b[i] == '[') {
			if (++depth > JSONRPC_FRAME_MAX_DEPTH) {
				*start = i;
				return -EBADMSG;
			}
		} else if (b[i] == '}' || b[i] == ']') {
			if (--depth == 0)
				return (ssize_t)(i + 1);
		}
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	register_fuzz_methods();
	mimo_register_jsonrpc();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_sink sink = {
		.reactor = NULL, .refs = 1, .deliver = deliver, .release = release
	};
	struct jsonrpc_framer f = { 0 };
	const char *p = (const char *)data;
	size_t left = size, avail;

	/*
	 * As a connection does: frame values out of the stream until one is incomplete. The
	 * bytes arrive in pieces (the first byte of the input says how long), so the framer
	 * resumes its scan; it must find the same ends as a scan of everything at once.
	 */
	avail = size > 0 ? (size_t)data[0] % 17 + 1 : 0;
	while (left > 0) {
		struct jsonrpc_bignums bigs = { 0 };
		size_t start = 0, whole_start;
		ssize_t end, whole;
		char err[128];
		json_t *v;

		if (avail > left)
			avail = left;
		end = jsonrpc_framer_scan(&f, p, avail);
		start = f.start;
		if (start > avail || (end > 0 && (size_t)end > avail))
			abort();
		if (end == 0 && avail < left) {
			avail += avail; /* more bytes arrive */
			continue;
		}
		whole = jsonrpc_frame(p, left, &whole_start);
		if (end != 0 && (end != whole || start != whole_start))
			abort();
		{
			size_t ref_start;

			if (ref_frame(p, left, &ref_start) != whole || ref_start != whole_start)
				abort();
		}
		if (end <= 0)
			break;
		v = jsonrpc_parse(p + start, (size_t)end - start, &bigs, err, sizeof(err));
		if (v == NULL) {
			jsonrpc_bignums_free(&bigs);
			break; /* the server answers -32700 and closes */
		}
		jsonrpc_bignums_enter(&bigs);
		jsonrpc_handle_value(&sink, v);
		jsonrpc_bignums_leave();
		json_decref(v);
		jsonrpc_bignums_free(&bigs);
		jsonrpc_framer_reset(&f);
		p += end;
		left -= (size_t)end;
		avail = left;
	}
	if (sink.refs != 1)
		abort(); /* every request answered and released */
	return 0;
}
