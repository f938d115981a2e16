/*
 * Differential fuzzing of the RPC server's JSON parser (lib/jsonrpc/parse.c) against jansson,
 * whose json_loadb it replaces.
 *
 * Properties: nothing crashes or leaks; whatever jansson accepts, the parser accepts and
 * builds an equal tree; whatever jansson refuses, the parser refuses too - except a document
 * whose only fault for jansson is an integer in (INT64_MAX, UINT64_MAX], which the parser
 * keeps as a real with its exact value on the side; and nesting past the parser's limit of
 * 1024 (jansson's is 2048), which only the parser refuses. Every big integer recorded is a
 * real of the tree whose value is the nearest double to the exact one.
 *
 * jansson's loader stops at a NUL byte as if the input ended there ("0\0" is 0 to it); the
 * framer never hands the parser a NUL outside a string, so inputs with one are parsed for
 * safety but not compared.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Nesting of the deepest container in the text, strings skipped. */
static size_t max_depth(const char *s, size_t n)
{
	size_t depth = 0, max = 0;
	int in_str = 0, esc = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* Every recorded big integer must still be a node of the tree. */
static int in_tree(const json_t *t, const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (t == v)
		return 1;
	if (json_is_array(t)) {
		json_array_foreach(t, i, item) if (in_tree(item, v)) return 1;
	} else if (json_is_object(t)) {
		json_object_foreach((json_t *)t, key, item) if (in_tree(item, v)) return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct jsonrpc_bignums bigs = { 0 };
	json_error_t jerr;
	char err[128];
	json_t *ours = jsonrpc_parse(text, size, &bigs, err, sizeof(err));
	json_t *theirs = NULL;

	if (memchr(text, '\0', size) == NULL)
		theirs = json_loadb(text, size, JSON_DECODE_ANY, &jerr);
	else
		jerr.text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_null_character;
	if (theirs != NULL) {
		if (ours == NULL && max_depth(text, size) < JSONRPC_PARSE_MAX_DEPTH)
			abort(); /* jansson took it, we did not */
		if (ours != NULL && !json_equal(ours, theirs))
			abort();
		if (bigs.n != 0)
			abort(); /* jansson had room for every integer */
	} else if (ours != NULL && memchr(text, '\0', size) == NULL) {
		/* Only a too-big integer may separate us (jansson stops at the first error, so
		 * it must be that one; a duplicate key may have dropped it from the tree). */
		if (json_error_code(&jerr) != json_error_numeric_overflow)
			abort();
	}
	for (size_t i = 0; i < bigs.n; i++) {
		if (!json_is_real(bigs.v[i].value) || bigs.v[i].exact <= (uint64_t)INT64_MAX ||
		    json_real_value(bigs.v[i].value) != (double)bigs.v[i].exact ||
		    !in_tree(ours, bigs.v[i].value))
			abort();
	}
	json_decref(ours);
	json_decref(theirs);
	jsonrpc_bignums_free(&bigs);
	return 0;
}
