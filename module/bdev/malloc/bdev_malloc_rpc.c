/* bdev_malloc_create / bdev_malloc_delete, and the legacy construct_malloc_bdev. */
#include <errno.h>
#include <stdlib.h>

#include "bdev_malloc.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

static const struct mimo_json_decoder malloc_create_decoders[] = {
	{ "name", offsetof(struct bdev_rpc_create_params, name), mimo_json_decode_string, true },
	{ "uuid", offsetof(struct bdev_rpc_create_params, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct bdev_rpc_create_params, num_blocks),
	  mimo_json_decode_uint64, false },
	{ "block_size", offsetof(struct bdev_rpc_create_params, block_size),
	  mimo_json_decode_uint32, false },
	MD_DECODERS(struct bdev_rpc_create_params),
};

/* construct_malloc_bdev as py-spdk and SPDK <= 19 sent it: a size in MiB or in blocks. */
static const struct mimo_json_decoder construct_malloc_decoders[] = {
	{ "name", offsetof(struct bdev_rpc_create_params, name), mimo_json_decode_string, true },
	{ "uuid", offsetof(struct bdev_rpc_create_params, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct bdev_rpc_create_params, num_blocks),
	  mimo_json_decode_uint64, true },
	{ "total_size", offsetof(struct bdev_rpc_create_params, total_size),
	  mimo_json_decode_double, true },
	{ "block_size", offsetof(struct bdev_rpc_create_params, block_size),
	  mimo_json_decode_uint32, false },
};

static void rpc_bdev_malloc_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct bdev_rpc_create_params p = { 0 };

	if (!mimo_rpc_decode(req, params, malloc_create_decoders,
			     MIMO_COUNTOF(malloc_create_decoders), &p))
		return;
	bdev_rpc_create(req, &p, bdev_malloc_create);
	mimo_json_decode_free(malloc_create_decoders, MIMO_COUNTOF(malloc_create_decoders), &p);
}

static void rpc_construct_malloc_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct bdev_rpc_create_params p = { 0 };

	if (!mimo_rpc_decode(req, params, construct_malloc_decoders,
			     MIMO_COUNTOF(construct_malloc_decoders), &p))
		return;
	bdev_rpc_create(req, &p, bdev_malloc_create);
	mimo_json_decode_free(construct_malloc_decoders, MIMO_COUNTOF(construct_malloc_decoders),
			      &p);
}

static void rpc_bdev_malloc_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_malloc_module);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_malloc_create", rpc_bdev_malloc_create, MIMO_RPC_RUNTIME },
	{ "construct_malloc_bdev", rpc_construct_malloc_bdev, MIMO_RPC_RUNTIME,
	  "bdev_malloc_create" },
	{ "bdev_malloc_delete", rpc_bdev_malloc_delete, MIMO_RPC_RUNTIME },
};

void bdev_malloc_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
