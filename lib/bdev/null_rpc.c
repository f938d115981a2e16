/* bdev_null_create / bdev_null_delete, and the legacy construct_null_bdev. */
#include <errno.h>
#include <stdlib.h>

#include "mimo/jsonrpc.h"
#include "modules.h"

struct null_create {
	char *name;
	char *uuid;
	uint64_t num_blocks;
	uint32_t block_size;
	double total_size; /* legacy: MiB */
	struct bdev_rpc_md_params md;
};

static const struct mimo_json_decoder null_create_decoders[] = {
	{ "name", offsetof(struct null_create, name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct null_create, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct null_create, num_blocks), mimo_json_decode_uint64, false },
	{ "block_size", offsetof(struct null_create, block_size), mimo_json_decode_uint32, false },
	MD_DECODERS(struct null_create),
};

static const struct mimo_json_decoder construct_null_decoders[] = {
	{ "name", offsetof(struct null_create, name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct null_create, uuid), mimo_json_decode_string, true },
	{ "num_blocks", offsetof(struct null_create, num_blocks), mimo_json_decode_uint64, true },
	{ "total_size", offsetof(struct null_create, total_size), mimo_json_decode_double, true },
	{ "block_size", offsetof(struct null_create, block_size), mimo_json_decode_uint32, false },
};

static void create(struct mimo_jsonrpc_request *req, struct null_create *p)
{
	struct mimo_bdev *bdev;
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (!bdev_rpc_check_geometry(req, p->block_size, p->num_blocks, &p->md) ||
	    !bdev_rpc_uuid(req, p->uuid, uuid_buf, &uuid))
		return;
	rc = bdev_null_create(p->name, p->num_blocks, p->block_size, uuid, &bdev);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_result(req, json_string(mimo_bdev_get_name(bdev)));
}

static void rpc_bdev_null_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct null_create p = { 0 };

	if (!mimo_rpc_decode(req, params, null_create_decoders, MIMO_COUNTOF(null_create_decoders),
			     &p))
		return;
	create(req, &p);
	mimo_json_decode_free(null_create_decoders, MIMO_COUNTOF(null_create_decoders), &p);
}
MIMO_RPC_REGISTER("bdev_null_create", rpc_bdev_null_create, MIMO_RPC_RUNTIME)

static void rpc_construct_null_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct null_create p = { 0 };

	if (!mimo_rpc_decode(req, params, construct_null_decoders,
			     MIMO_COUNTOF(construct_null_decoders), &p))
		return;
	if (p.num_blocks == 0 && p.total_size > 0 && p.block_size > 0)
		p.num_blocks = (uint64_t)(p.total_size * 1024 * 1024) / p.block_size;
	create(req, &p);
	mimo_json_decode_free(construct_null_decoders, MIMO_COUNTOF(construct_null_decoders), &p);
}
MIMO_RPC_REGISTER_LEGACY("construct_null_bdev", rpc_construct_null_bdev, MIMO_RPC_RUNTIME,
			 "bdev_null_create")

static void rpc_bdev_null_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_null_module);
}
MIMO_RPC_REGISTER("bdev_null_delete", rpc_bdev_null_delete, MIMO_RPC_RUNTIME)
