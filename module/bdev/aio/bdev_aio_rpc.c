/* bdev_aio_create / bdev_aio_delete, and the legacy construct_aio_bdev. */
#include <errno.h>
#include <stdlib.h>

#include "bdev_aio.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

struct aio_create {
	char *name;
	char *filename;
	char *uuid;
	uint32_t block_size;
	bool readonly;
	bool fallocate;
	bool nowait;
};

static const struct mimo_json_decoder aio_create_decoders[] = {
	{ "name", offsetof(struct aio_create, name), mimo_json_decode_string, false },
	{ "filename", offsetof(struct aio_create, filename), mimo_json_decode_string, false },
	{ "block_size", offsetof(struct aio_create, block_size), mimo_json_decode_uint32, true },
	{ "readonly", offsetof(struct aio_create, readonly), mimo_json_decode_bool, true },
	/* SPDK: use fallocate for write-zeroes. mimo always does where the file allows. */
	{ "fallocate", offsetof(struct aio_create, fallocate), mimo_json_decode_bool, true },
	/* SPDK: submit with RWF_NOWAIT. io_uring never blocks the reactor anyway. */
	{ "nowait", offsetof(struct aio_create, nowait), mimo_json_decode_bool, true },
	{ "uuid", offsetof(struct aio_create, uuid), mimo_json_decode_string, true },
};

static const struct mimo_json_decoder construct_aio_decoders[] = {
	{ "name", offsetof(struct aio_create, name), mimo_json_decode_string, false },
	{ "filename", offsetof(struct aio_create, filename), mimo_json_decode_string, false },
	{ "block_size", offsetof(struct aio_create, block_size), mimo_json_decode_uint32, true },
};

static void create(struct mimo_jsonrpc_request *req, struct aio_create *p)
{
	struct mimo_bdev *bdev;
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (p->block_size != 0 && !mimo_bdev_block_size_ok(p->block_size)) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: parameter \"block_size\" must be a multiple of 512 "
					"from 512 to 65536",
					mimo_jsonrpc_request_method(req));
		return;
	}
	if (!bdev_rpc_uuid(req, p->uuid, uuid_buf, &uuid))
		return;
	rc = bdev_aio_create(p->name, p->filename, p->block_size, p->readonly, uuid, &bdev);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_result(req, json_string(mimo_bdev_get_name(bdev)));
}

static void rpc_bdev_aio_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct aio_create p = { 0 };

	if (!mimo_rpc_decode(req, params, aio_create_decoders, MIMO_COUNTOF(aio_create_decoders),
			     &p))
		return;
	create(req, &p);
	mimo_json_decode_free(aio_create_decoders, MIMO_COUNTOF(aio_create_decoders), &p);
}

static void rpc_construct_aio_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct aio_create p = { 0 };

	if (!mimo_rpc_decode(req, params, construct_aio_decoders,
			     MIMO_COUNTOF(construct_aio_decoders), &p))
		return;
	create(req, &p);
	mimo_json_decode_free(construct_aio_decoders, MIMO_COUNTOF(construct_aio_decoders), &p);
}

static void rpc_bdev_aio_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_aio_module);
}

struct aio_rescan {
	char *name;
};

static const struct mimo_json_decoder aio_rescan_decoders[] = {
	{ "name", offsetof(struct aio_rescan, name), mimo_json_decode_string, false },
};

static void rpc_bdev_aio_rescan(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct aio_rescan p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, aio_rescan_decoders, MIMO_COUNTOF(aio_rescan_decoders),
			     &p))
		return;
	rc = bdev_aio_rescan(p.name);
	if (rc == -EBUSY)
		mimo_jsonrpc_send_error(req, rc,
					"Device or resource busy: %s shrank while it is open; "
					"its users could have I/O beyond the new end",
					p.name);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
	free(p.name);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_aio_create", rpc_bdev_aio_create, MIMO_RPC_RUNTIME },
	{ "construct_aio_bdev", rpc_construct_aio_bdev, MIMO_RPC_RUNTIME, "bdev_aio_create" },
	{ "bdev_aio_delete", rpc_bdev_aio_delete, MIMO_RPC_RUNTIME },
	{ "bdev_aio_rescan", rpc_bdev_aio_rescan, MIMO_RPC_RUNTIME },
};

void bdev_aio_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
