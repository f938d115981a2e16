/* bdev_malloc_create / bdev_malloc_delete, and the legacy construct_malloc_bdev. */
#include <errno.h>
#include <stdlib.h>

#include "mimo/jsonrpc.h"
#include "modules.h"

struct malloc_create {
	char *name;
	char *uuid;
	uint64_t num_blocks;
	uint32_t block_size;
	double total_size; /* legacy: MiB */
	struct bdev_rpc_md_params md;
};

static const struct mimo_json_decoder malloc_create_decoders[] = {
	{ "name", offsetof(struct malloc_create, name), mimo_json_decode_string, true },
	{ "uuid", offsetof(struct malloc_create, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct malloc_create, num_blocks), mimo_json_decode_uint64,
	  false },
	{ "block_size", offsetof(struct malloc_create, block_size), mimo_json_decode_uint32,
	  false },
	MD_DECODERS(struct malloc_create),
};

/* construct_malloc_bdev as py-spdk and SPDK <= 19 sent it: a size in MiB or in blocks. */
static const struct mimo_json_decoder construct_malloc_decoders[] = {
	{ "name", offsetof(struct malloc_create, name), mimo_json_decode_string, true },
	{ "uuid", offsetof(struct malloc_create, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct malloc_create, num_blocks), mimo_json_decode_uint64, true },
	{ "total_size", offsetof(struct malloc_create, total_size), mimo_json_decode_double, true },
	{ "block_size", offsetof(struct malloc_create, block_size), mimo_json_decode_uint32,
	  false },
};

static void create(struct mimo_jsonrpc_request *req, struct malloc_create *p)
{
	struct mimo_bdev *bdev;
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (!bdev_rpc_check_geometry(req, p->block_size, p->num_blocks, &p->md) ||
	    !bdev_rpc_uuid(req, p->uuid, uuid_buf, &uuid))
		return;
	rc = bdev_malloc_create(p->name, p->num_blocks, p->block_size, uuid, &bdev);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_result(req, json_string(mimo_bdev_get_name(bdev)));
}

static void rpc_bdev_malloc_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct malloc_create p = { 0 };

	if (!mimo_rpc_decode(req, params, malloc_create_decoders,
			     MIMO_COUNTOF(malloc_create_decoders), &p))
		return;
	create(req, &p);
	mimo_json_decode_free(malloc_create_decoders, MIMO_COUNTOF(malloc_create_decoders), &p);
}
MIMO_RPC_REGISTER("bdev_malloc_create", rpc_bdev_malloc_create, MIMO_RPC_RUNTIME)

static void rpc_construct_malloc_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct malloc_create p = { 0 };

	if (!mimo_rpc_decode(req, params, construct_malloc_decoders,
			     MIMO_COUNTOF(construct_malloc_decoders), &p))
		return;
	if (p.num_blocks == 0 && p.total_size > 0 && p.block_size > 0)
		p.num_blocks = (uint64_t)(p.total_size * 1024 * 1024) / p.block_size;
	create(req, &p);
	mimo_json_decode_free(construct_malloc_decoders, MIMO_COUNTOF(construct_malloc_decoders),
			      &p);
}
MIMO_RPC_REGISTER_LEGACY("construct_malloc_bdev", rpc_construct_malloc_bdev, MIMO_RPC_RUNTIME,
			 "bdev_malloc_create")

static void rpc_bdev_malloc_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_malloc_module);
}
MIMO_RPC_REGISTER("bdev_malloc_delete", rpc_bdev_malloc_delete, MIMO_RPC_RUNTIME)
