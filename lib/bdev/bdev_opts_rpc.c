/*
 * SPDK's bdev-wide methods that its save_config always writes: bdev_set_options,
 * bdev_wait_for_examine, and the raid module's bdev_raid_set_options. What the first two size
 * or tune, mimo's bdev layer does not have (docs/mimo_tgt.md, "SPDK's options"): parameters
 * are type-checked and accepted, nothing else changes. bdev_raid_set_options' values are kept
 * for the raid module's rebuild.
 */
#include <errno.h>

#include "bdev_internal.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

struct unused {
	uint32_t u32;
	bool b;
};

/*
 * bdev_io_pool_size, bdev_io_cache_size: SPDK's preallocated pool of I/O descriptors and
 * each thread's cache of it; mimo allocates a descriptor per I/O. iobuf_*_cache_size: per
 * thread caches of SPDK's iobuf pool, which mimo does not have. bdev_auto_examine: whether
 * modules (lvol, gpt, raid...) examine new bdevs; mimo has no module that examines, so no
 * bdev is examined either way.
 */
static const struct mimo_json_decoder bdev_set_decoders[] = {
	{ "bdev_io_pool_size", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "bdev_io_cache_size", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "bdev_auto_examine", offsetof(struct unused, b), mimo_json_decode_bool, true },
	{ "iobuf_small_cache_size", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "iobuf_large_cache_size", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
};

static void rpc_bdev_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct unused p;

	if (mimo_rpc_decode(req, params, bdev_set_decoders, MIMO_COUNTOF(bdev_set_decoders), &p))
		mimo_jsonrpc_send_bool(req, true);
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
};

void bdev_opts_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
