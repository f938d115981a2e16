/* RPCs over every bdev: bdev_get_bdevs, bdev_get_iostat, and the legacy get_bdevs and
 * delete_bdev; helpers the module RPCs share. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_internal.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"
#include "ticks.h"
#include "uuid.h"

static void delete_done(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc == 0)
		mimo_jsonrpc_send_bool(req, true);
	else
		mimo_jsonrpc_send_errno(req, rc);
}

void bdev_rpc_delete(struct mimo_jsonrpc_request *req, const char *name,
		     const struct mimo_bdev_module *module)
{
	struct mimo_bdev *bdev = mimo_bdev_get_by_name(name);
	int rc;

	if (bdev == NULL || (module != NULL && bdev->module != module)) {
		mimo_jsonrpc_send_errno(req, -ENODEV);
		return;
	}
	rc = mimo_bdev_delete(name, delete_done, req);
	if (rc == -EBUSY)
		mimo_jsonrpc_send_error(req, -EBUSY,
					"Device or resource busy: %s is in use (claimed by another "
					"bdev, or already being deleted)",
					name);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
}

bool bdev_rpc_uuid(struct mimo_jsonrpc_request *req, const char *text, uint8_t out[16],
		   const uint8_t **uuid)
{
	*uuid = NULL;
	if (text == NULL)
		return true;
	if (mimo_uuid_parse(text, out) != 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: parameter \"uuid\" must be a UUID",
					mimo_jsonrpc_request_method(req));
		return false;
	}
	*uuid = out;
	return true;
}

bool bdev_rpc_md_defaults(struct mimo_jsonrpc_request *req, const struct bdev_rpc_md_params *md,
			  uint32_t block_size)
{
	const char *bad = NULL;

	if (md->md_size != 0)
		bad = "md_size";
	else if (md->md_interleave)
		bad = "md_interleave";
	else if (md->dif_type != 0)
		bad = "dif_type";
	else if (md->dif_is_head_of_md)
		bad = "dif_is_head_of_md";
	else if (md->dif_pi_format != 0)
		bad = "dif_pi_format";
	if (bad != NULL) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: parameter \"%s\": metadata and protection information "
					"are not supported",
					mimo_jsonrpc_request_method(req), bad);
		return false;
	}
	if (md->physical_block_size != 0 &&
	    (md->physical_block_size < block_size || md->physical_block_size % block_size != 0)) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"%s: parameter \"physical_block_size\" must be a multiple of "
			"block_size",
			mimo_jsonrpc_request_method(req));
		return false;
	}
	return true;
}

bool bdev_rpc_check_geometry(struct mimo_jsonrpc_request *req, uint32_t block_size,
			     uint64_t num_blocks, const struct bdev_rpc_md_params *md)
{
	if (!mimo_bdev_block_size_ok(block_size)) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: parameter \"block_size\" must be a multiple of 512 "
					"from 512 to 65536",
					mimo_jsonrpc_request_method(req));
		return false;
	}
	if (num_blocks == 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: the size must be at least one block",
					mimo_jsonrpc_request_method(req));
		return false;
	}
	if (num_blocks > MIMO_BDEV_MAX_BYTES / block_size) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: %" PRIu64 " blocks of %u bytes is more than the "
					"largest size a bdev may have (2^63 - 1 bytes)",
					mimo_jsonrpc_request_method(req), num_blocks, block_size);
		return false;
	}
	return md == NULL || bdev_rpc_md_defaults(req, md, block_size);
}

struct delete_params {
	char *name;
};

static const struct mimo_json_decoder delete_decoders[] = {
	{ "name", offsetof(struct delete_params, name), mimo_json_decode_string, false },
};

void bdev_rpc_delete_params(struct mimo_jsonrpc_request *req, const json_t *params,
			    const struct mimo_bdev_module *module)
{
	struct delete_params p = { 0 };

	if (!mimo_rpc_decode(req, params, delete_decoders, MIMO_COUNTOF(delete_decoders), &p))
		return;
	bdev_rpc_delete(req, p.name, module);
	free(p.name);
}

/* --- bdev_get_bdevs ----------------------------------------------------------------------- */

struct get_bdevs {
	char *name;
	uint64_t timeout;
};

static const struct mimo_json_decoder get_bdevs_decoders[] = {
	{ "name", offsetof(struct get_bdevs, name), mimo_json_decode_string, true },
	{ "timeout", offsetof(struct get_bdevs, timeout), mimo_json_decode_uint64, true },
};

struct wait_bdev {
	struct mimo_jsonrpc_request *req;
	char *name;
	uint64_t deadline;
	struct mimo_poller *poller;
};

/* bdev_get_bdevs with a timeout waits for a bdev that is not there yet (SPDK's behaviour). */
static bool answer_if_found(struct mimo_jsonrpc_request *req, const char *name)
{
	size_t len;
	char *text = mimo_bdev_list_text(name, &len);

	if (text == NULL)
		return false;
	mimo_jsonrpc_send_result_text(req, text, len);
	return true;
}

static int wait_bdev_poll(void *arg)
{
	struct wait_bdev *w = arg;

	if (answer_if_found(w->req, w->name)) {
		/* answered */
	} else if (mimo_get_ticks() < w->deadline) {
		return 0;
	} else {
		mimo_jsonrpc_send_errno(w->req, -ENODEV);
	}
	mimo_poller_unregister(&w->poller);
	free(w->name);
	free(w);
	return 1;
}

/* Answered from each bdev's cached JSON text: listing many bdevs is a copy, not a rebuild. */
static void rpc_bdev_get_bdevs(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_bdevs p = { 0 };

	if (!mimo_rpc_decode(req, params, get_bdevs_decoders, MIMO_COUNTOF(get_bdevs_decoders), &p))
		return;
	if (answer_if_found(req, p.name)) {
		/* answered */
	} else if (p.timeout > 0) {
		struct wait_bdev *w = calloc(1, sizeof(*w));

		if (w == NULL) {
			mimo_jsonrpc_send_errno(req, -ENOMEM);
		} else {
			w->req = req;
			w->name = p.name;
			p.name = NULL;
			w->deadline = mimo_get_ticks() + p.timeout * mimo_get_ticks_hz() / 1000;
			w->poller = mimo_poller_register(wait_bdev_poll, w, 10000);
		}
	} else {
		mimo_jsonrpc_send_errno(req, -ENODEV);
	}
	free(p.name);
}

/* --- delete_bdev (legacy, any module) --------------------------------------------------- */

static void rpc_delete_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, NULL);
}

void bdev_rpc_create(struct mimo_jsonrpc_request *req, struct bdev_rpc_create_params *p,
		     bdev_rpc_create_fn fn)
{
	struct mimo_bdev *bdev;
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (p->num_blocks == 0 && p->total_size > 0 && p->block_size > 0)
		p->num_blocks = (uint64_t)(p->total_size * 1024 * 1024) / p->block_size;
	if (!bdev_rpc_check_geometry(req, p->block_size, p->num_blocks, &p->md) ||
	    !bdev_rpc_uuid(req, p->uuid, uuid_buf, &uuid))
		return;
	rc = fn(p->name, p->num_blocks, p->block_size, uuid, &bdev);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_result(req, json_string(mimo_bdev_get_name(bdev)));
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_get_bdevs", rpc_bdev_get_bdevs, MIMO_RPC_RUNTIME },
	{ "get_bdevs", rpc_bdev_get_bdevs, MIMO_RPC_RUNTIME, "bdev_get_bdevs" },
	{ "bdev_get_iostat", rpc_bdev_get_iostat, MIMO_RPC_RUNTIME },
	{ "delete_bdev", rpc_delete_bdev, MIMO_RPC_RUNTIME, "bdev_*_delete" },
};

void bdev_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
