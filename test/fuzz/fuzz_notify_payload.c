/*
 * Fuzz the bridge's payload validator, name check and envelope builder, in both modes.
 *
 * Properties checked on every input:
 *  - strict mode (one object, valid UTF-8, 64 levels): an accepted payload wrapped in the
 *    envelope is itself a valid object (the wire body can never be broken JSON), with the
 *    event, payload and timestamp jansson reads back; the checker agrees with jansson:
 *    whatever one accepts as a single object the other does too, except where jansson is
 *    documented to be narrower (integers beyond 64 bits, reals that overflow, lone UTF-16
 *    surrogate escapes, \u0000 in object keys) or the input nests deeper than our limit;
 *  - default mode (the Go bridge's json.Valid: any value, strings need not be UTF-8): what
 *    jansson accepts as any value is accepted; an accepted payload always gives an envelope
 *    that the strict checker accepts (bytes that are not UTF-8 are repaired), and when the
 *    payload needed no repair jansson reads the same value back;
 *    Inputs with a raw NUL byte are only checked for safety: payloads are C strings, so none
 *    can hold one, and jansson wrongly accepts some (e.g. after a number);
 *  - the C-string form (MIMO_JSON_CSTR, what NotifyEvent uses: the checker finds the end
 *    itself) agrees with the checker given the length, never reads past the NUL (the copy is
 *    allocated to it exactly; ASan watches) and reports the length;
 *  - event names: the strict check accepts only the documented set; the default check accepts
 *    any non-empty string, and the envelope carries it escaped so that jansson reads it back
 *    (as U+FFFD where it is not UTF-8).
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
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
	       strstr(text, "NUL byte in object key") != NULL ||
	       strstr(text, "maximum parsing depth") != NULL;
}

/* The envelope of an accepted payload is a valid object of valid UTF-8. */
static json_t *envelope_of(const char *data, size_t size, unsigned flags)
{
	struct mimo_buf b = { 0 };
	json_error_t err;
	json_t *env;

	if (notify_envelope_build(&b, "fuzz_event", 10, data, size, flags, 1234) != 0)
		abort();
	if (mimo_json_check(b.data, b.len, MIMO_JSON_OBJECT, MIMO_JSON_MAX_DEPTH_ANY, NULL) != 0)
		abort();
	env = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
	if (env != NULL &&
	    (strcmp(json_string_value(json_object_get(env, "event")), "fuzz_event") != 0 ||
	     json_integer_value(json_object_get(env, "timestamp")) != 1234))
		abort();
	mimo_buf_free(&b);
	return env;
}

static void check_strict(const char *data, size_t size)
{
	size_t off = 0;
	int rc = mimo_json_check(data, size, MIMO_JSON_OBJECT, DEPTH, &off);
	json_error_t err;
	json_t *j = json_loadb(data, size, JSON_ALLOW_NUL, &err);

	if (rc == 1 || (rc < 0 && off > size))
		abort();
	if (memchr(data, '\0', size) != NULL) {
		if (rc == 0)
			abort(); /* a NUL byte is never valid JSON */
		json_decref(j);
		return;
	}
	if (rc == 0) {
		json_t *env;

		if (j == NULL && !jansson_narrower(err.text))
			abort(); /* we accepted what jansson calls broken */
		if (j != NULL && !json_is_object(j))
			abort();
		env = envelope_of(data, size, NOTIFY_F_PAYLOAD);
		if (env != NULL && !json_equal(json_object_get(env, "payload"), j))
			abort();
		if (env == NULL && j != NULL)
			abort();
		json_decref(env);
	} else if (rc == -EBADMSG && j != NULL && json_is_object(j)) {
		abort(); /* jansson accepts an object we called broken */
	}
	json_decref(j);
}

static void check_any(const char *data, size_t size)
{
	size_t off = 0;
	int rc = mimo_json_check(data, size, MIMO_JSON_ALLOW_BAD_UTF8, MIMO_JSON_MAX_DEPTH_ANY,
				 &off);
	json_error_t err;
	json_t *j = json_loadb(data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);

	if (rc < 0 && off > size)
		abort();
	if (memchr(data, '\0', size) != NULL) {
		if (rc >= 0)
			abort();
		json_decref(j);
		return;
	}
	if (rc >= 0) {
		json_t *env = envelope_of(data, size,
					  NOTIFY_F_PAYLOAD | (rc == 1 ? NOTIFY_F_PAYLOAD_UTF8 : 0));

		if (rc == 0 && j == NULL && !jansson_narrower(err.text))
			abort();
		if (rc == 1 && j != NULL)
			abort(); /* jansson took bytes that are not UTF-8? */
		if (rc == 0 && env != NULL && j != NULL &&
		    !json_equal(json_object_get(env, "payload"), j))
			abort();
		json_decref(env);
	} else if (j != NULL) {
		abort(); /* jansson accepts a value we called broken */
	}
	json_decref(j);
}

static bool valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		size_t n = *p < 0x80 ? 1 : mimo_utf8_seq_len(p, end);

		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

static void check_name(const uint8_t *data, size_t size)
{
	char name[200];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1, len = 0;
	bool esc = false;
	int rc;

	memcpy(name, data, n);
	name[n] = '\0';
	rc = notify_check_name(name, true, &len, &esc);
	if (rc == 0) {
		if (len == 0 || len > NOTIFY_NAME_MAX || len != strlen(name) || esc)
			abort();
		for (size_t i = 0; i < len; i++) {
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
				    "_.:-",
				    name[i]))
				abort();
		}
	}
	rc = notify_check_name(name, false, &len, &esc);
	if ((rc == 0) != (name[0] != '\0'))
		abort();
	if (rc == 0) {
		struct mimo_buf b = { 0 };
		json_error_t err;
		json_t *env;

		if (len != strlen(name))
			abort();
		if (notify_envelope_build(&b, name, len, NULL, 0, esc ? NOTIFY_F_NAME_ESCAPE : 0,
					  1) != 0)
			abort();
		if (mimo_json_check(b.data, b.len, MIMO_JSON_OBJECT, 4, NULL) != 0)
			abort();
		env = json_loadb(b.data, b.len, 0, &err);
		if (env == NULL)
			abort();
		/* A name of valid UTF-8 comes back unchanged. */
		if (valid_utf8(name, len) &&
		    strcmp(json_string_value(json_object_get(env, "event")), name) != 0)
			abort();
		json_decref(env);
		mimo_buf_free(&b);
	}
}

static void check_cstr(const char *data, size_t size)
{
	size_t n = strnlen(data, size), len = 0, off = 0;
	char *s = malloc(n + 1);
	static const unsigned modes[] = { MIMO_JSON_OBJECT, MIMO_JSON_ALLOW_BAD_UTF8 };

	if (s == NULL)
		return;
	memcpy(s, data, n);
	s[n] = '\0';
	for (size_t i = 0; i < 2; i++) {
		/* A limit past the string, as NotifyEvent passes max_payload_bytes + 1. */
		int rc = mimo_json_check(s, n + 64, modes[i] | MIMO_JSON_CSTR, 64, &len);
		int want = mimo_json_check(s, n, modes[i], 64, &off);

		if (rc != want || (rc >= 0 && len != n))
			abort();
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_strict((const char *)data, size);
	check_any((const char *)data, size);
	check_cstr((const char *)data, size);
	check_name(data, size);
	return 0;
}
