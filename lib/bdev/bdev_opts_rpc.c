/*
 * SPDK's bdev-wide methods that its save_config always writes: bdev_set_options,
 * bdev_wait_for_examine, and the raid module's bdev_raid_set_options; and bdev_examine. Most
 * of what the first two size or tune, mimo's bdev layer does not have (docs/mimo_tgt.md,
 * "SPDK's options"): those parameters are type-checked and accepted, nothing else changes.
 * bdev_auto_examine is kept, with bdev_examine's list of the bdevs to examine all the same,
 * so that SPDK's rules about the two hold and a saved configuration has them.
 * bdev_raid_set_options' values are kept for the raid module's rebuild.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_internal.h"
#include "bdev_rpc.h"
#include "log.h"
#include "mimo/jsonrpc.h"

#define COMP "bdev"

struct unused {
	uint32_t u32;
	bool b;
};

/* Both under g_examine_lock (written by RPCs, read by save_config from any reactor). */
static pthread_mutex_t g_examine_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_auto_examine = true;
static json_t *g_examine_list; /* names given to bdev_examine, in order */

bool bdev_auto_examine(void)
{
	bool v;

	pthread_mutex_lock(&g_examine_lock);
	v = g_auto_examine;
	pthread_mutex_unlock(&g_examine_lock);
	return v;
}

/* SPDK's save_config: bdev_set_options, then one bdev_examine per name. mimo writes them only
 * away from its defaults (auto-examine off), like its other options methods. */
json_t *bdev_examine_config_json(void)
{
	json_t *arr = json_array(), *name;
	size_t i;

	pthread_mutex_lock(&g_examine_lock);
	if (!g_auto_examine) {
		json_array_append_new(arr, json_pack("{s:s, s:{s:b}}", "method", "bdev_set_options",
						     "params", "bdev_auto_examine", false));
		json_array_foreach(g_examine_list, i, name) json_array_append_new(
			arr, json_pack("{s:s, s:{s:O}}", "method", "bdev_examine", "params", "name",
				       name));
	}
	pthread_mutex_unlock(&g_examine_lock);
	return arr;
}

/*
 * bdev_io_pool_size, bdev_io_cache_size: SPDK's preallocated pool of I/O descriptors and
 * each thread's cache of it; mimo allocates a descriptor per I/O. iobuf_*_cache_size: per
 * thread caches of SPDK's iobuf pool, which mimo does not have. bdev_auto_examine: whether
 * modules (lvol, gpt, raid...) examine new bdevs; mimo has no module that examines, so no
 * bdev is examined either way.
 */
struct bdev_set {
	struct unused u;
	const json_t *auto_examine;
};

static const struct mimo_json_decoder bdev_set_decoders[] = {
	{ "bdev_io_pool_size", offsetof(struct bdev_set, u.u32), mimo_json_decode_uint32, true },
	{ "bdev_io_cache_size", offsetof(struct bdev_set, u.u32), mimo_json_decode_uint32, true },
	{ "bdev_auto_examine", offsetof(struct bdev_set, auto_examine), mimo_json_decode_json,
	  true },
	{ "iobuf_small_cache_size", offsetof(struct bdev_set, u.u32), mimo_json_decode_uint32,
	  true },
	{ "iobuf_large_cache_size", offsetof(struct bdev_set, u.u32), mimo_json_decode_uint32,
	  true },
};

static void rpc_bdev_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct bdev_set p = { 0 };

	if (!mimo_rpc_decode(req, params, bdev_set_decoders, MIMO_COUNTOF(bdev_set_decoders), &p))
		return;
	if (p.auto_examine != NULL && !json_is_boolean(p.auto_examine)) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_set_options: parameter \"bdev_auto_examine\" must be "
					"a boolean");
		return;
	}
	if (p.auto_examine != NULL) {
		pthread_mutex_lock(&g_examine_lock);
		g_auto_examine = json_is_true(p.auto_examine);
		pthread_mutex_unlock(&g_examine_lock);
	}
	mimo_jsonrpc_send_bool(req, true);
}

struct examine {
	char *name;
};

static const struct mimo_json_decoder examine_decoders[] = {
	{ "name", offsetof(struct examine, name), mimo_json_decode_string, false },
};

/*
 * SPDK's rules: only with auto-examine off (-EINVAL otherwise), each name once (-EEXIST); the
 * name need not exist yet (it is examined when it appears). mimo has no module that examines
 * bdevs (no lvol, gpt or raid superblocks to find), so the examination itself finds nothing;
 * the name is kept for save_config.
 */
static void rpc_bdev_examine(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct examine p = { 0 };
	json_t *n;
	size_t i;
	int rc = 0;

	if (!mimo_rpc_decode(req, params, examine_decoders, MIMO_COUNTOF(examine_decoders), &p))
		return;
	pthread_mutex_lock(&g_examine_lock);
	if (g_auto_examine) {
		rc = -EINVAL;
	} else {
		if (g_examine_list == NULL)
			g_examine_list = json_array();
		json_array_foreach(g_examine_list, i, n)
		{
			if (strcmp(json_string_value(n), p.name) == 0)
				rc = -EEXIST;
		}
		if (rc == 0 && json_array_append_new(g_examine_list, json_string(p.name)) != 0)
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&g_examine_lock);
	if (rc == -EINVAL)
		mimo_jsonrpc_send_error(req, -EINVAL,
					"Invalid argument: manual examine is not allowed while "
					"auto examine is enabled (bdev_set_options "
					"--no-auto-examine, at start-up)");
	else if (rc == -EEXIST)
		mimo_jsonrpc_send_error(req, -EEXIST, "File exists: %s is already to be examined",
					p.name);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
	free(p.name);
}

/* Answers once every examination of every bdev is done: with no module that examines, that
 * is always already the case. */
static void rpc_bdev_wait_for_examine(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (mimo_rpc_no_params(req, params))
		mimo_jsonrpc_send_bool(req, true);
}

/* The window and bandwidth of a raid bdev's background process (a raid1's rebuild), kept
 * here where the method has always been registered (its place in rpc_get_methods), for the
 * raid module to read when a rebuild starts. */
struct raid_opts {
	uint32_t process_window_size_kb;
	uint32_t process_max_bandwidth_mb_sec;
};

static pthread_mutex_t g_raid_lock = PTHREAD_MUTEX_INITIALIZER;
static struct raid_opts g_raid_opts = { .process_window_size_kb = 1024 };

static const struct mimo_json_decoder raid_set_decoders[] = {
	{ "process_window_size_kb", offsetof(struct raid_opts, process_window_size_kb),
	  mimo_json_decode_uint32, true },
	{ "process_max_bandwidth_mb_sec", offsetof(struct raid_opts, process_max_bandwidth_mb_sec),
	  mimo_json_decode_uint32, true },
};

static void rpc_bdev_raid_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct raid_opts p;

	pthread_mutex_lock(&g_raid_lock);
	p = g_raid_opts;
	pthread_mutex_unlock(&g_raid_lock);
	if (!mimo_rpc_decode(req, params, raid_set_decoders, MIMO_COUNTOF(raid_set_decoders), &p))
		return;
	if (p.process_window_size_kb == 0) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"bdev_raid_set_options: parameter \"process_window_size_kb\" "
			"must be at least 1");
		return;
	}
	pthread_mutex_lock(&g_raid_lock);
	g_raid_opts = p;
	pthread_mutex_unlock(&g_raid_lock);
	mimo_jsonrpc_send_bool(req, true);
}

void bdev_raid_process_opts(uint32_t *window_kb, uint32_t *max_mb_sec)
{
	pthread_mutex_lock(&g_raid_lock);
	*window_kb = g_raid_opts.process_window_size_kb;
	*max_mb_sec = g_raid_opts.process_max_bandwidth_mb_sec;
	pthread_mutex_unlock(&g_raid_lock);
}

/* SPDK's state masks. */
static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_set_options", rpc_bdev_set_options, MIMO_RPC_STARTUP },
	{ "bdev_wait_for_examine", rpc_bdev_wait_for_examine, MIMO_RPC_RUNTIME },
	{ "bdev_raid_set_options", rpc_bdev_raid_set_options, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "bdev_examine", rpc_bdev_examine, MIMO_RPC_RUNTIME },
};

void bdev_opts_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
