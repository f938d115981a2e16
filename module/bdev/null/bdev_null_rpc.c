/* bdev_null_create / bdev_null_delete, and the legacy construct_null_bdev. */
#include <errno.h>
#include <stdlib.h>

#include "bdev_null.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

static const struct mimo_json_decoder null_create_decoders[] = {
	{ "name", offsetof(struct bdev_rpc_create_params, name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct bdev_rpc_create_params, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct bdev_rpc_create_params, num_blocks),
	  mimo_json_decode_uint64, false },
	{ "block_size", offsetof(struct bdev_rpc_create_params, block_size),
	  mimo_json_decode_uint32, false },
	MD_DECODERS(struct bdev_rpc_create_params),
	/* SPDK's hints to the bdev's users about the writes and unmaps it prefers (NVMe's
	 * NPWG, NPWA, NOWS, NPDG, NPDA); mimo's bdevs report none, so only 0 - no hint - is
	 * taken (the decoder writes nothing). */
	{ "preferred_write_granularity", 0, mimo_json_decode_unsupported, true },
	{ "preferred_write_alignment", 0, mimo_json_decode_unsupported, true },
	{ "optimal_write_size", 0, mimo_json_decode_unsupported, true },
	{ "preferred_unmap_granularity", 0, mimo_json_decode_unsupported, true },
	{ "preferred_unmap_alignment", 0, mimo_json_decode_unsupported, true },
};

static const struct mimo_json_decoder construct_null_decoders[] = {
	{ "name", offsetof(struct bdev_rpc_create_params, name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct bdev_rpc_create_params, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct bdev_rpc_create_params, num_blocks),
	  mimo_json_decode_uint64, true },
	{ "total_size", offsetof(struct bdev_rpc_create_params, total_size),
	  mimo_json_decode_double, true },
	{ "block_size", offsetof(struct bdev_rpc_create_params, block_size),
	  mimo_json_decode_uint32, false },
};

static void rpc_bdev_null_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct bdev_rpc_create_params p = { 0 };

	if (!mimo_rpc_decode(req, params, null_create_decoders, MIMO_COUNTOF(null_create_decoders),
			     &p))
		return;
	bdev_rpc_create(req, &p, bdev_null_create);
	mimo_json_decode_free(null_create_decoders, MIMO_COUNTOF(null_create_decoders), &p);
}

static void rpc_construct_null_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct bdev_rpc_create_params p = { 0 };

	if (!mimo_rpc_decode(req, params, construct_null_decoders,
			     MIMO_COUNTOF(construct_null_decoders), &p))
		return;
	bdev_rpc_create(req, &p, bdev_null_create);
	mimo_json_decode_free(construct_null_decoders, MIMO_COUNTOF(construct_null_decoders), &p);
}

static void rpc_bdev_null_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_null_module);
}

struct null_resize {
	char *name;
	uint64_t new_size;
};

static const struct mimo_json_decoder null_resize_decoders[] = {
	{ "name", offsetof(struct null_resize, name), mimo_json_decode_string, false },
	{ "new_size", offsetof(struct null_resize, new_size), mimo_json_decode_uint64, false },
};

static void rpc_bdev_null_resize(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct null_resize p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, null_resize_decoders, MIMO_COUNTOF(null_resize_decoders),
			     &p))
		return;
	rc = bdev_null_resize(p.name, p.new_size);
	if (rc == -EINVAL)
		mimo_jsonrpc_send_error(
			req, rc,
			"Invalid argument: %s is not a null bdev, or new_size (MiB) "
			"is smaller than its size",
			p.name);
	else if (rc == -EBUSY)
		mimo_jsonrpc_send_error(req, rc, "Device or resource busy: %s is open", p.name);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
	free(p.name);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_null_create", rpc_bdev_null_create, MIMO_RPC_RUNTIME },
	{ "construct_null_bdev", rpc_construct_null_bdev, MIMO_RPC_RUNTIME, "bdev_null_create" },
	{ "bdev_null_delete", rpc_bdev_null_delete, MIMO_RPC_RUNTIME },
	{ "bdev_null_resize", rpc_bdev_null_resize, MIMO_RPC_RUNTIME },
};

void bdev_null_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
