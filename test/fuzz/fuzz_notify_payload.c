/*
 * Fuzz the bridge's payload validator and envelope builder.
 *
 * Properties checked on every input:
 *  - an accepted payload wrapped in the envelope is itself a valid object (the wire body can
 *    never be broken JSON), with the event, payload and timestamp jansson reads back;
 *  - the checker agrees with jansson: whatever one accepts as a single object the other does
 *    too, except where jansson is documented to be narrower (integers beyond 64 bits, reals
 *    that overflow, lone UTF-16 surrogate escapes, \u0000 in object keys) or the input nests
 *    deeper than our limit.
 *    Inputs with a raw NUL byte are only checked for safety: payloads are C strings, so none
 *    can hold one, and jansson wrongly accepts some (e.g. after a number);
 *  - event names: the check never reads past the name and accepts only the documented set.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "envelope.h"
#include "json_check.h"

#define DEPTH 64

static int jansson_narrower(const char *text)
{
	return strstr(text, "too big") != NULL || strstr(text, "overflow") != NULL ||
	       strstr(text, "invalid Unicode") != NULL ||
	       strstr(text, "NUL byte in object key") != NULL;
}

static void check_payload(const char *data, size_t size)
{
	size_t off = 0;
	int rc = mimo_json_check_object(data, size, DEPTH, &off);
	json_error_t err;
	json_t *j = json_loadb(data, size, JSON_ALLOW_NUL, &err);

	if (rc != 0 && off > size)
		abort();
	if (memchr(data, '\0', size) != NULL) {
		if (rc == 0)
			abort(); /* a NUL byte is never valid JSON */
		json_decref(j);
		return;
	}
	if (rc == 0) {
		struct mimo_buf b = { 0 };
		json_t *env;

		if (j == NULL && !jansson_narrower(err.text))
			abort(); /* we accepted what jansson calls broken */
		if (j != NULL && !json_is_object(j))
			abort();
		if (notify_envelope_build(&b, "fuzz_event", 10, data, size, 1234) != 0)
			abort();
		if (mimo_json_check_object(b.data, b.len, DEPTH + 1, NULL) != 0)
			abort();
		env = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
		if (env != NULL) {
			if (strcmp(json_string_value(json_object_get(env, "event")),
				   "fuzz_event") != 0 ||
			    json_integer_value(json_object_get(env, "timestamp")) != 1234 ||
			    !json_equal(json_object_get(env, "payload"), j))
				abort();
			json_decref(env);
		} else if (j != NULL) {
			abort();
		}
		mimo_buf_free(&b);
	} else if (rc == -EBADMSG && j != NULL && json_is_object(j)) {
		abort(); /* jansson accepts an object we called broken */
	}
	json_decref(j);
}

static void check_name(const uint8_t *data, size_t size)
{
	char name[200];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1, len = 0;
	int rc;

	memcpy(name, data, n);
	name[n] = '\0';
	rc = notify_check_name(name, &len);
	if (rc == 0) {
		if (len == 0 || len > NOTIFY_NAME_MAX || len != strlen(name))
			abort();
		for (size_t i = 0; i < len; i++) {
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
				    "_.:-",
				    name[i]))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_payload((const char *)data, size);
	check_name(data, size);
	return 0;
}
