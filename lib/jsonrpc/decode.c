/* Parameter decoding through tables, as SPDK's spdk_json_decode_object, with messages that
 * name the parameter at fault. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "mimo/jsonrpc.h"
#include "parse.h"

MIMO_EXPORT const char *mimo_json_decode_string(const json_t *val, void *out)
{
	char **p = out;

	if (!json_is_string(val))
		return "a string";
	free(*p);
	*p = strdup(json_string_value(val));
	return *p != NULL ? NULL : "a string (out of memory)";
}

MIMO_EXPORT const char *mimo_json_decode_bool(const json_t *val, void *out)
{
	if (!json_is_boolean(val))
		return "true or false";
	*(bool *)out = json_is_true(val);
	return NULL;
}

/* Integers may arrive as JSON reals with no fraction (some clients write 512.0). */
static bool integer_of(const json_t *val, long double *v)
{
	if (json_is_integer(val)) {
		*v = (long double)json_integer_value(val);
		return true;
	}
	if (json_is_real(val)) {
		double d = json_real_value(val);

		if (isfinite(d) && d == floor(d)) {
			*v = (long double)d;
			return true;
		}
	}
	return false;
}

MIMO_EXPORT const char *mimo_json_decode_uint16(const json_t *val, void *out)
{
	long double v;

	if (!integer_of(val, &v) || v < 0 || v > UINT16_MAX)
		return "an unsigned 16-bit integer";
	*(uint16_t *)out = (uint16_t)v;
	return NULL;
}

MIMO_EXPORT const char *mimo_json_decode_uint32(const json_t *val, void *out)
{
	long double v;

	if (!integer_of(val, &v) || v < 0 || v > UINT32_MAX)
		return "an unsigned 32-bit integer";
	*(uint32_t *)out = (uint32_t)v;
	return NULL;
}

MIMO_EXPORT const char *mimo_json_decode_uint64(const json_t *val, void *out)
{
	long double v;

	/* Above INT64_MAX the parser kept the exact value beside the tree (parse.h). */
	if (json_is_real(val) && jsonrpc_bignum_lookup(val, (uint64_t *)out))
		return NULL;
	/* A real of 2^64 or more (the nearest doubles to the top of the range are) does not
	 * fit; one below 2^64 converts exactly. */
	if (!integer_of(val, &v) || v < 0 || v >= 18446744073709551616.0L)
		return "an unsigned 64-bit integer";
	*(uint64_t *)out = json_is_integer(val) ? (uint64_t)json_integer_value(val) : (uint64_t)v;
	return NULL;
}

MIMO_EXPORT const char *mimo_json_decode_int32(const json_t *val, void *out)
{
	long double v;

	if (!integer_of(val, &v) || v < INT32_MIN || v > INT32_MAX)
		return "a 32-bit integer";
	*(int32_t *)out = (int32_t)v;
	return NULL;
}

MIMO_EXPORT const char *mimo_json_decode_double(const json_t *val, void *out)
{
	if (!json_is_number(val))
		return "a number";
	*(double *)out = json_number_value(val);
	return NULL;
}

MIMO_EXPORT const char *mimo_json_decode_json(const json_t *val, void *out)
{
	*(const json_t **)out = val;
	return NULL;
}

MIMO_EXPORT const char *mimo_json_decode_unsupported(const json_t *val, void *out)
{
	(void)out;
	if (json_is_null(val) || json_is_false(val) ||
	    (json_is_integer(val) && json_integer_value(val) == 0) ||
	    (json_is_string(val) && json_string_length(val) == 0))
		return NULL;
	return "left out (or false, 0, \"\"): mimo does not support what it asks for";
}

MIMO_EXPORT const char *mimo_json_decode_no_meaning(const json_t *val, void *out)
{
	(void)val;
	(void)out;
	return NULL;
}

MIMO_EXPORT int mimo_json_decode_object(const json_t *params,
					const struct mimo_json_decoder *decoders, size_t count,
					void *out, char *err, size_t err_len)
{
	const char *key;
	json_t *val;

	if (params != NULL && !json_is_object(params)) {
		snprintf(err, err_len, "parameters must be a JSON object");
		return -EINVAL;
	}
	if (params != NULL) {
		json_object_foreach((json_t *)params, key, val)
		{
			size_t i;

			for (i = 0; i < count; i++) {
				if (strcmp(decoders[i].name, key) == 0)
					break;
			}
			if (i == count) {
				snprintf(err, err_len, "unknown parameter \"%s\"", key);
				return -EINVAL;
			}
		}
	}
	for (size_t i = 0; i < count; i++) {
		const struct mimo_json_decoder *d = &decoders[i];
		json_t *v = params != NULL ? json_object_get(params, d->name) : NULL;
		const char *expected;

		if (v == NULL) {
			if (d->optional)
				continue;
			snprintf(err, err_len, "missing parameter \"%s\"", d->name);
			return -EINVAL;
		}
		expected = d->decode(v, (char *)out + d->offset);
		if (expected != NULL) {
			snprintf(err, err_len, "parameter \"%s\" must be %s", d->name, expected);
			return -EINVAL;
		}
	}
	return 0;
}

MIMO_EXPORT void mimo_json_decode_free(const struct mimo_json_decoder *decoders, size_t count,
				       void *out)
{
	for (size_t i = 0; i < count; i++) {
		if (decoders[i].decode == mimo_json_decode_string) {
			char **p = (char **)((char *)out + decoders[i].offset);

			free(*p);
			*p = NULL;
		}
	}
}
