/*
 * SPDK's methods over a bdev's statistics and limits: bdev_get_iostat, bdev_reset_iostat,
 * bdev_set_qd_sampling_period, bdev_enable_histogram, bdev_get_histogram,
 * bdev_get_histogram_borders, bdev_set_qos_limit. Parameter names, defaults and result shapes
 * are SPDK's (lib/bdev/bdev_rpc.c, schema.yaml); docs/mimo_tgt.md lists them.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "bdev_internal.h"
#include "mimo/jsonrpc.h"
#include "ticks.h"

#define HIST_DEFAULT_GRANULARITY 7
#define HIST_MAX_GRANULARITY	 12 /* 4096 buckets a range: up to 2 MiB a channel */
#define HIST_DEFAULT_MIN_NS	 1000ull
#define HIST_DEFAULT_MAX_NS	 120000000000ull

/* "all", "maxmin", "error", "none"; NULL: dflt. false after answering -32602. */
static bool reset_mode(struct mimo_jsonrpc_request *req, const char *param, const char *text,
		       enum bdev_reset_mode dflt, enum bdev_reset_mode *out)
{
	static const char *const names[] = { [BDEV_RESET_ALL] = "all",
					     [BDEV_RESET_MAXMIN] = "maxmin",
					     [BDEV_RESET_ERROR] = "error",
					     [BDEV_RESET_NONE] = "none" };

	*out = dflt;
	if (text == NULL)
		return true;
	for (int m = 0; m <= BDEV_RESET_NONE; m++) {
		if (strcmp(text, names[m]) == 0) {
			*out = m;
			return true;
		}
	}
	mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
				"%s: parameter \"%s\" must be one of all, maxmin, error, none",
				mimo_jsonrpc_request_method(req), param);
	return false;
}

static struct mimo_bdev *bdev_or_answer(struct mimo_jsonrpc_request *req, const char *name)
{
	struct mimo_bdev *b = mimo_bdev_get_by_name(name);

	if (b == NULL)
		mimo_jsonrpc_send_errno(req, -ENODEV);
	return b;
}

/* --- bdev_get_iostat ---------------------------------------------------------------------- */

struct get_iostat {
	char *name; /* SPDK before 24.09, and mimo's own clients */
	const json_t *names;
	bool per_channel;
	char *reset_mode;
};

static const struct mimo_json_decoder get_iostat_decoders[] = {
	{ "name", offsetof(struct get_iostat, name), mimo_json_decode_string, true },
	{ "names", offsetof(struct get_iostat, names), mimo_json_decode_json, true },
	{ "per_channel", offsetof(struct get_iostat, per_channel), mimo_json_decode_bool, true },
	{ "reset_mode", offsetof(struct get_iostat, reset_mode), mimo_json_decode_string, true },
};

/* names: an array of strings, into a NULL-terminated vector of borrowed strings. */
static char **names_vector(struct mimo_jsonrpc_request *req, const json_t *names, size_t *n)
{
	char **v;
	size_t i;
	json_t *e;

	if (!json_is_array(names))
		goto bad;
	*n = json_array_size(names);
	v = calloc(*n + 1, sizeof(*v));
	if (v == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		return NULL;
	}
	json_array_foreach(names, i, e)
	{
		if (!json_is_string(e)) {
			free(v);
			goto bad;
		}
		v[i] = (char *)json_string_value(e);
	}
	return v;
bad:
	mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
				"bdev_get_iostat: parameter \"names\" must be an array of strings");
	return NULL;
}

void rpc_bdev_get_iostat(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_iostat p = { 0 };
	enum bdev_reset_mode mode;
	char **names = NULL;
	size_t n = 0;
	json_t *result;
	int rc;

	if (!mimo_rpc_decode(req, params, get_iostat_decoders, MIMO_COUNTOF(get_iostat_decoders),
			     &p))
		return;
	if (!reset_mode(req, "reset_mode", p.reset_mode, BDEV_RESET_NONE, &mode))
		goto out;
	if (p.names != NULL && p.name != NULL) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_get_iostat: give \"name\" or \"names\", not both");
		goto out;
	}
	if (p.names != NULL && (names = names_vector(req, p.names, &n)) == NULL)
		goto out;
	if (p.name != NULL) {
		names = calloc(2, sizeof(*names));
		if (names == NULL) {
			mimo_jsonrpc_send_errno(req, -ENOMEM);
			goto out;
		}
		names[0] = p.name;
		n = 1;
	}
	if (p.per_channel) {
		/* SPDK's rule: per-channel figures are of one bdev. */
		if (n != 1) {
			mimo_jsonrpc_send_error(
				req, -EINVAL,
				"Invalid argument: per_channel needs exactly one bdev");
			goto out;
		}
		result = bdev_iostat_channels_json(names[0], mode, &rc);
		if (result != NULL) {
			json_object_set_new(result, "tick_rate",
					    json_integer((json_int_t)mimo_get_ticks_hz()));
			json_object_set_new(result, "ticks",
					    json_integer((json_int_t)mimo_get_ticks()));
		}
	} else {
		json_t *bdevs = bdev_iostat_json(names, n, mode, &rc);

		result = bdevs == NULL ? NULL
				       : json_pack("{s:I, s:I, s:o}", "tick_rate",
						   (json_int_t)mimo_get_ticks_hz(), "ticks",
						   (json_int_t)mimo_get_ticks(), "bdevs", bdevs);
	}
	if (result == NULL)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_result(req, result);
out:
	free(names);
	free(p.name);
	free(p.reset_mode);
}

/* --- bdev_reset_iostat -------------------------------------------------------------------- */

struct reset_iostat {
	char *name;
	char *mode;
};

static const struct mimo_json_decoder reset_iostat_decoders[] = {
	{ "name", offsetof(struct reset_iostat, name), mimo_json_decode_string, true },
	{ "mode", offsetof(struct reset_iostat, mode), mimo_json_decode_string, true },
};

static void rpc_bdev_reset_iostat(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct reset_iostat p = { 0 };
	enum bdev_reset_mode mode;
	int rc;

	if (!mimo_rpc_decode(req, params, reset_iostat_decoders,
			     MIMO_COUNTOF(reset_iostat_decoders), &p))
		return;
	if (reset_mode(req, "mode", p.mode, BDEV_RESET_ALL, &mode)) {
		/* SPDK answers mode none with true before looking for the bdev. */
		rc = mode == BDEV_RESET_NONE ? 0 : bdev_reset_iostat_named(p.name, mode);
		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
		else
			mimo_jsonrpc_send_errno(req, rc);
	}
	free(p.name);
	free(p.mode);
}

/* --- bdev_set_qd_sampling_period ---------------------------------------------------------- */

struct qd_period {
	char *name;
	uint64_t period;
};

static const struct mimo_json_decoder qd_period_decoders[] = {
	{ "name", offsetof(struct qd_period, name), mimo_json_decode_string, false },
	{ "period", offsetof(struct qd_period, period), mimo_json_decode_uint64, false },
};

static void rpc_bdev_set_qd_sampling_period(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct qd_period p = { 0 };
	struct mimo_bdev *b;
	int rc;

	if (!mimo_rpc_decode(req, params, qd_period_decoders, MIMO_COUNTOF(qd_period_decoders), &p))
		return;
	b = bdev_or_answer(req, p.name);
	if (b != NULL) {
		rc = bdev_set_qd_sampling_period(b, p.period);
		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
		else
			mimo_jsonrpc_send_errno(req, rc);
	}
	free(p.name);
}

/* --- bdev_set_qos_limit ------------------------------------------------------------------- */

struct qos_limit {
	char *name;
	uint64_t limit[QOS_NUM];
};

static const struct mimo_json_decoder qos_decoders[] = {
	{ "name", offsetof(struct qos_limit, name), mimo_json_decode_string, false },
	{ "rw_ios_per_sec", offsetof(struct qos_limit, limit[QOS_RW_IOPS]), mimo_json_decode_uint64,
	  true },
	{ "rw_mbytes_per_sec", offsetof(struct qos_limit, limit[QOS_RW_BPS]),
	  mimo_json_decode_uint64, true },
	{ "r_mbytes_per_sec", offsetof(struct qos_limit, limit[QOS_R_BPS]), mimo_json_decode_uint64,
	  true },
	{ "w_mbytes_per_sec", offsetof(struct qos_limit, limit[QOS_W_BPS]), mimo_json_decode_uint64,
	  true },
};

static void rpc_bdev_set_qos_limit(struct mimo_jsonrpc_request *req, const json_t *params)
{
	/* UINT64_MAX: not given, leave that limit as it is (SPDK's convention). */
	struct qos_limit p = { .limit = { UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX } };
	struct mimo_bdev *b;
	bool any = false;

	if (!mimo_rpc_decode(req, params, qos_decoders, MIMO_COUNTOF(qos_decoders), &p))
		return;
	b = bdev_or_answer(req, p.name);
	for (int i = 0; i < QOS_NUM; i++)
		any |= p.limit[i] != UINT64_MAX;
	if (b == NULL) {
		/* answered */
	} else if (!any) {
		mimo_jsonrpc_send_error(req, -EINVAL, "No rate limits specified");
	} else {
		int rc = bdev_qos_set(b, p.limit);

		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
		else
			mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
						"Failed to configure rate limit: %s",
						strerror(-rc));
	}
	free(p.name);
}

/* --- histograms --------------------------------------------------------------------------- */

struct enable_hist {
	char *name;
	bool enable;
	char *opc;
	uint32_t granularity;
	uint64_t min_nsec, max_nsec;
};

static const struct mimo_json_decoder enable_hist_decoders[] = {
	{ "name", offsetof(struct enable_hist, name), mimo_json_decode_string, false },
	{ "enable", offsetof(struct enable_hist, enable), mimo_json_decode_bool, false },
	{ "opc", offsetof(struct enable_hist, opc), mimo_json_decode_string, true },
	{ "granularity", offsetof(struct enable_hist, granularity), mimo_json_decode_uint32, true },
	{ "min_nsec", offsetof(struct enable_hist, min_nsec), mimo_json_decode_uint64, true },
	{ "max_nsec", offsetof(struct enable_hist, max_nsec), mimo_json_decode_uint64, true },
};

static int io_type_of(const char *name)
{
	for (int t = 0; t < MIMO_BDEV_IO_NUM_TYPES; t++) {
		if (strcmp(name, mimo_bdev_io_type_name(t)) == 0)
			return t;
	}
	return -1;
}

static void rpc_bdev_enable_histogram(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct enable_hist p = { .granularity = HIST_DEFAULT_GRANULARITY,
				 .min_nsec = HIST_DEFAULT_MIN_NS,
				 .max_nsec = HIST_DEFAULT_MAX_NS };
	struct mimo_bdev *b;
	int io_type = -1, rc;

	if (!mimo_rpc_decode(req, params, enable_hist_decoders, MIMO_COUNTOF(enable_hist_decoders),
			     &p))
		return;
	if (p.opc != NULL && (io_type = io_type_of(p.opc)) < 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_enable_histogram: parameter \"opc\": no I/O type "
					"\"%s\" (read, write, unmap, flush, reset, write_zeroes)",
					p.opc);
	} else if (p.granularity > HIST_MAX_GRANULARITY) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_enable_histogram: parameter \"granularity\" must be "
					"at most %d",
					HIST_MAX_GRANULARITY);
	} else if (p.min_nsec >= p.max_nsec) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_enable_histogram: \"min_nsec\" must be less than "
					"\"max_nsec\"");
	} else if ((b = bdev_or_answer(req, p.name)) != NULL) {
		rc = bdev_hist_configure(b, p.enable, io_type, p.granularity, p.min_nsec,
					 p.max_nsec);
		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
		else
			mimo_jsonrpc_send_errno(req, rc);
	}
	free(p.name);
	free(p.opc);
}

/* The histogram of the bdev named, summed over its channels; false after answering. */
static bool collect(struct mimo_jsonrpc_request *req, const char *name, struct bdev_hist *h)
{
	struct mimo_bdev *b = bdev_or_answer(req, name);
	int rc;

	if (b == NULL)
		return false;
	rc = bdev_hist_collect(b, h);
	if (rc == -EFAULT)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Bad address: the histogram of %s is not enabled "
					"(bdev_enable_histogram)",
					name);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	return rc == 0;
}

struct name_only {
	char *name;
};

static const struct mimo_json_decoder name_decoders[] = {
	{ "name", offsetof(struct name_only, name), mimo_json_decode_string, false },
};

/* SPDK's answer: the buckets as base64 of little-endian 64-bit counts (x86's own order). */
static void rpc_bdev_get_histogram(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct name_only p = { 0 };
	struct bdev_hist h = { 0 };
	size_t len;
	char *b64;

	if (!mimo_rpc_decode(req, params, name_decoders, MIMO_COUNTOF(name_decoders), &p))
		return;
	if (collect(req, p.name, &h)) {
		len = bdev_hist_num_buckets(&h) * sizeof(uint64_t);
		for (size_t i = 0; i < bdev_hist_num_buckets(&h); i++)
			h.bucket[i] = htole64(h.bucket[i]);
		b64 = malloc(mimo_base64_encoded_size(len));
		if (b64 == NULL) {
			mimo_jsonrpc_send_errno(req, -ENOMEM);
		} else {
			mimo_base64_encode(h.bucket, len, b64);
			mimo_jsonrpc_send_result(
				req, json_pack("{s:s, s:I, s:I, s:I, s:I}", "histogram", b64,
					       "granularity", (json_int_t)h.granularity,
					       "min_range", (json_int_t)h.min_range, "max_range",
					       (json_int_t)h.max_range, "tsc_rate",
					       (json_int_t)mimo_get_ticks_hz()));
			free(b64);
		}
		bdev_hist_free(&h);
	}
	free(p.name);
}

struct borders {
	char *name;
	const json_t *borders;
};

static const struct mimo_json_decoder borders_decoders[] = {
	{ "name", offsetof(struct borders, name), mimo_json_decode_string, false },
	{ "borders", offsetof(struct borders, borders), mimo_json_decode_json, false },
};

/* The start of bucket (range, index)'s successor: SPDK's bucket boundaries. */
static uint64_t bucket_end(const struct bdev_hist *h, uint32_t range, uint32_t index)
{
	index += 1;
	if (range == 0)
		return index;
	return (1ull << (range + h->granularity - 1)) + ((uint64_t)index << (range - 1));
}

/*
 * For each border (µs, ascending), how many I/Os took less than it, and a last count of all:
 * SPDK's walk (spdk_histogram_get_borders_count), a bucket counted under the first border
 * its start does not exceed.
 */
static json_t *borders_count(const struct bdev_hist *h, const uint64_t *border, size_t n)
{
	uint64_t *count = calloc(n + 1, sizeof(*count)), so_far = 0, start, end = 0;
	size_t idx = 0;
	json_t *arr;

	if (count == NULL)
		return NULL;
	for (uint32_t r = h->min_range; r <= h->max_range; r++) {
		for (uint32_t j = 0; j < (1u << h->granularity); j++) {
			so_far += h->bucket[((size_t)(r - h->min_range) << h->granularity) + j];
			start = end;
			end = bucket_end(h, r, j);
			while (idx < n && start > border[idx]) {
				idx++;
				count[idx] = count[idx - 1];
			}
			count[idx] = so_far;
		}
	}
	arr = json_array();
	for (size_t i = 0; i <= n; i++)
		json_array_append_new(arr, json_integer((json_int_t)count[i]));
	free(count);
	return arr;
}

static void rpc_bdev_get_histogram_borders(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct borders p = { 0 };
	struct bdev_hist h = { 0 };
	uint64_t *border = NULL, per_us = mimo_get_ticks_hz() / 1000000;
	size_t n = 0, i;
	json_t *e, *counts;

	if (!mimo_rpc_decode(req, params, borders_decoders, MIMO_COUNTOF(borders_decoders), &p))
		return;
	if (!json_is_array(p.borders) || (n = json_array_size(p.borders)) == 0)
		goto bad;
	border = calloc(n, sizeof(*border));
	if (border == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		goto out;
	}
	json_array_foreach(p.borders, i, e)
	{
		if (!json_is_integer(e) || json_integer_value(e) < 0)
			goto bad;
		border[i] = (uint64_t)json_integer_value(e) * per_us; /* µs to ticks, as SPDK */
	}
	if (collect(req, p.name, &h)) {
		counts = borders_count(&h, border, n);
		if (counts == NULL)
			mimo_jsonrpc_send_errno(req, -ENOMEM);
		else
			mimo_jsonrpc_send_result(req, json_pack("{s:o}", "borders_count", counts));
		bdev_hist_free(&h);
	}
	goto out;
bad:
	mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
				"bdev_get_histogram_borders: parameter \"borders\" must be a "
				"non-empty array of unsigned integers (microseconds)");
out:
	free(border);
	free(p.name);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_reset_iostat", rpc_bdev_reset_iostat, MIMO_RPC_RUNTIME },
	{ "bdev_set_qd_sampling_period", rpc_bdev_set_qd_sampling_period, MIMO_RPC_RUNTIME },
	{ "bdev_set_qos_limit", rpc_bdev_set_qos_limit, MIMO_RPC_RUNTIME },
	{ "bdev_enable_histogram", rpc_bdev_enable_histogram, MIMO_RPC_RUNTIME },
	{ "bdev_get_histogram", rpc_bdev_get_histogram, MIMO_RPC_RUNTIME },
	{ "bdev_get_histogram_borders", rpc_bdev_get_histogram_borders, MIMO_RPC_RUNTIME },
};

void bdev_stat_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
