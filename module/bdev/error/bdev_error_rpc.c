/* bdev_error_create / _delete / _inject_error, and the legacy construct_error_bdev. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_error.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

struct error_create {
	char *base_name;
	char *basename; /* SPDK <= 19 */
	char *uuid;
};

static const struct mimo_json_decoder error_create_decoders[] = {
	{ "base_name", offsetof(struct error_create, base_name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct error_create, uuid), mimo_json_decode_string, true },
};

static const struct mimo_json_decoder construct_error_decoders[] = {
	{ "base_name", offsetof(struct error_create, base_name), mimo_json_decode_string, true },
	{ "basename", offsetof(struct error_create, basename), mimo_json_decode_string, true },
};

static void create(struct mimo_jsonrpc_request *req, const char *base, const char *uuid_text)
{
	struct mimo_bdev *bdev;
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (!bdev_rpc_uuid(req, uuid_text, uuid_buf, &uuid))
		return;
	rc = bdev_error_create(base, uuid, &bdev);
	if (rc == -EPERM)
		mimo_jsonrpc_send_error(req, -EPERM,
					"Operation not permitted: %s is already claimed", base);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
}

static void rpc_bdev_error_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct error_create p = { 0 };

	if (!mimo_rpc_decode(req, params, error_create_decoders,
			     MIMO_COUNTOF(error_create_decoders), &p))
		return;
	create(req, p.base_name, p.uuid);
	mimo_json_decode_free(error_create_decoders, MIMO_COUNTOF(error_create_decoders), &p);
}

static void rpc_construct_error_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct error_create p = { 0 };
	const char *base;

	if (!mimo_rpc_decode(req, params, construct_error_decoders,
			     MIMO_COUNTOF(construct_error_decoders), &p))
		return;
	base = p.base_name != NULL ? p.base_name : p.basename;
	if (base == NULL)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"construct_error_bdev: missing parameter \"base_name\"");
	else
		create(req, base, NULL);
	mimo_json_decode_free(construct_error_decoders, MIMO_COUNTOF(construct_error_decoders), &p);
}

static void rpc_bdev_error_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_error_module);
}

struct inject {
	char *name;
	char *io_type;
	char *error_type;
	uint32_t num;
	uint64_t queue_depth;
	uint64_t corrupt_offset;
	uint32_t corrupt_value;
	uint32_t nvme_sct, nvme_sc;
};

static const struct mimo_json_decoder inject_decoders[] = {
	{ "name", offsetof(struct inject, name), mimo_json_decode_string, false },
	{ "io_type", offsetof(struct inject, io_type), mimo_json_decode_string, false },
	{ "error_type", offsetof(struct inject, error_type), mimo_json_decode_string, false },
	{ "num", offsetof(struct inject, num), mimo_json_decode_uint32, true },
	{ "queue_depth", offsetof(struct inject, queue_depth), mimo_json_decode_uint64, true },
	{ "corrupt_offset", offsetof(struct inject, corrupt_offset), mimo_json_decode_uint64,
	  true },
	{ "corrupt_value", offsetof(struct inject, corrupt_value), mimo_json_decode_uint32, true },
	{ "nvme_sct", offsetof(struct inject, nvme_sct), mimo_json_decode_uint32, true },
	{ "nvme_sc", offsetof(struct inject, nvme_sc), mimo_json_decode_uint32, true },
};

static int parse_io_type(const char *s)
{
	if (strcmp(s, "all") == 0 || strcmp(s, "clear") == 0)
		return -1;
	for (int t = 0; t < MIMO_BDEV_IO_NUM_TYPES; t++) {
		if (strcmp(s, mimo_bdev_io_type_name(t)) == 0)
			return t;
	}
	return -2;
}

static int parse_error_type(const char *s)
{
	static const char *const names[] = { "failure", "pending", "corrupt_data", "nomem",
					     "nvme_failure" };
	static const enum error_inject_type types[] = { ERROR_INJECT_FAILURE, ERROR_INJECT_PENDING,
							ERROR_INJECT_CORRUPT_DATA,
							ERROR_INJECT_NOMEM,
							ERROR_INJECT_NVME_FAILURE };

	for (size_t i = 0; i < MIMO_COUNTOF(names); i++) {
		if (strcmp(s, names[i]) == 0)
			return (int)types[i];
	}
	return -1;
}

static void rpc_bdev_error_inject_error(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct inject p = { .num = 1, .corrupt_value = 0xff };
	int io_type, error_type, rc;

	if (!mimo_rpc_decode(req, params, inject_decoders, MIMO_COUNTOF(inject_decoders), &p))
		return;
	io_type = parse_io_type(p.io_type);
	error_type = strcmp(p.io_type, "clear") == 0 ? ERROR_INJECT_NONE
						     : parse_error_type(p.error_type);
	if (io_type == -2) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"bdev_error_inject_error: parameter \"io_type\" must be one "
			"of clear, all, read, write, unmap, flush, reset, "
			"write_zeroes");
	} else if (error_type < 0) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"bdev_error_inject_error: parameter \"error_type\" must be "
			"one of failure, pending, corrupt_data, nomem, nvme_failure");
	} else if (p.nvme_sct > 7 || p.nvme_sc > 255) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_error_inject_error: \"nvme_sct\" is 0..7 and "
					"\"nvme_sc\" 0..255");
	} else if ((error_type == ERROR_INJECT_NVME_FAILURE) !=
		   (p.nvme_sct != 0 || p.nvme_sc != 0)) {
		/* SPDK's rule and message: a status with nvme_failure, and only with it. */
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"nvme_sct or nvme_sc should be specified for NVMe error "
					"injection");
	} else if (error_type == ERROR_INJECT_CORRUPT_DATA &&
		   (p.corrupt_value == 0 || p.corrupt_value > 255)) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_error_inject_error: parameter \"corrupt_value\" must "
					"be 1..255");
	} else {
		rc = error_type == ERROR_INJECT_NVME_FAILURE
			     ? bdev_error_inject_nvme(p.name, io_type, p.num, p.queue_depth,
						      (uint8_t)p.nvme_sct, (uint8_t)p.nvme_sc)
			     : bdev_error_inject_at_depth(p.name, io_type, error_type, p.num,
							  p.corrupt_offset,
							  (uint8_t)p.corrupt_value, p.queue_depth);
		if (rc != 0)
			mimo_jsonrpc_send_errno(req, rc);
		else
			mimo_jsonrpc_send_bool(req, true);
	}
	mimo_json_decode_free(inject_decoders, MIMO_COUNTOF(inject_decoders), &p);
}

struct resume {
	char *name;
};

static const struct mimo_json_decoder resume_decoders[] = {
	{ "name", offsetof(struct resume, name), mimo_json_decode_string, false },
};

static void resumed(void *arg, int status)
{
	struct mimo_jsonrpc_request *req = arg;

	if (status == 0)
		mimo_jsonrpc_send_bool(req, true);
	else
		mimo_jsonrpc_send_errno(req, status);
}

static void rpc_bdev_error_resume_pending(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct resume p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, resume_decoders, MIMO_COUNTOF(resume_decoders), &p))
		return;
	rc = bdev_error_resume_pending(p.name, resumed, req);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	free(p.name);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_error_create", rpc_bdev_error_create, MIMO_RPC_RUNTIME },
	{ "construct_error_bdev", rpc_construct_error_bdev, MIMO_RPC_RUNTIME, "bdev_error_create" },
	{ "bdev_error_delete", rpc_bdev_error_delete, MIMO_RPC_RUNTIME },
	{ "bdev_error_inject_error", rpc_bdev_error_inject_error, MIMO_RPC_RUNTIME },
	{ "bdev_error_resume_pending", rpc_bdev_error_resume_pending, MIMO_RPC_RUNTIME },
};

void bdev_error_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
