/* bdev_delay_create / bdev_delay_delete / bdev_delay_update_latency, with SPDK's parameters,
 * answers and errors. Latencies are microseconds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_delay.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

struct delay_create {
	char *base_bdev_name;
	char *name;
	char *uuid;
	uint64_t latency[DELAY_NUM_LATENCIES];
};

static const struct mimo_json_decoder create_decoders[] = {
	{ "base_bdev_name", offsetof(struct delay_create, base_bdev_name), mimo_json_decode_string,
	  false },
	{ "name", offsetof(struct delay_create, name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct delay_create, uuid), mimo_json_decode_string, true },
	{ "avg_read_latency", offsetof(struct delay_create, latency[DELAY_AVG_READ]),
	  mimo_json_decode_uint64, false },
	{ "p99_read_latency", offsetof(struct delay_create, latency[DELAY_P99_READ]),
	  mimo_json_decode_uint64, false },
	{ "avg_write_latency", offsetof(struct delay_create, latency[DELAY_AVG_WRITE]),
	  mimo_json_decode_uint64, false },
	{ "p99_write_latency", offsetof(struct delay_create, latency[DELAY_P99_WRITE]),
	  mimo_json_decode_uint64, false },
};

static void rpc_bdev_delay_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct delay_create p = { 0 };
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (!mimo_rpc_decode(req, params, create_decoders, MIMO_COUNTOF(create_decoders), &p))
		return;
	if (bdev_rpc_uuid(req, p.uuid, uuid_buf, &uuid)) {
		rc = bdev_delay_create(p.base_bdev_name, p.name, uuid, p.latency);
		if (rc == -ENODEV)
			/* SPDK would wait for the base to appear; mimo examines no new bdevs. */
			mimo_jsonrpc_send_error(req, -ENODEV,
						"No such device: base bdev %s does not exist (mimo "
						"creates a delay bdev only over an existing bdev)",
						p.base_bdev_name);
		else if (rc == -EINVAL)
			mimo_jsonrpc_send_error(req, -EINVAL,
						"Invalid argument: a p99 latency is less than its "
						"average latency");
		else if (rc == -EPERM)
			mimo_jsonrpc_send_error(req, -EPERM,
						"Operation not permitted: %s is already claimed",
						p.base_bdev_name);
		else if (rc != 0)
			mimo_jsonrpc_send_errno(req, rc);
		else
			mimo_jsonrpc_send_result(req, json_string(p.name));
	}
	mimo_json_decode_free(create_decoders, MIMO_COUNTOF(create_decoders), &p);
}

static void rpc_bdev_delay_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_delay_module);
}

struct delay_update {
	char *delay_bdev_name;
	char *latency_type;
	uint64_t latency_us;
};

static const struct mimo_json_decoder update_decoders[] = {
	{ "delay_bdev_name", offsetof(struct delay_update, delay_bdev_name),
	  mimo_json_decode_string, false },
	{ "latency_type", offsetof(struct delay_update, latency_type), mimo_json_decode_string,
	  false },
	{ "latency_us", offsetof(struct delay_update, latency_us), mimo_json_decode_uint64, false },
};

static int latency_of_name(const char *s)
{
	static const char *const names[DELAY_NUM_LATENCIES] = {
		[DELAY_AVG_READ] = "avg_read",
		[DELAY_P99_READ] = "p99_read",
		[DELAY_AVG_WRITE] = "avg_write",
		[DELAY_P99_WRITE] = "p99_write",
	};

	for (int i = 0; i < DELAY_NUM_LATENCIES; i++) {
		if (strcmp(s, names[i]) == 0)
			return i;
	}
	return -1;
}

static void rpc_bdev_delay_update_latency(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct delay_update p = { 0 };
	int which;

	if (!mimo_rpc_decode(req, params, update_decoders, MIMO_COUNTOF(update_decoders), &p))
		return;
	which = latency_of_name(p.latency_type);
	if (which < 0)
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"bdev_delay_update_latency: parameter \"latency_type\" must "
			"be one of avg_read, p99_read, avg_write, p99_write");
	else if (bdev_delay_update_latency(p.delay_bdev_name, which, p.latency_us) != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"The requested bdev does not exist.");
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(update_decoders, MIMO_COUNTOF(update_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_delay_create", rpc_bdev_delay_create, MIMO_RPC_RUNTIME },
	{ "bdev_delay_delete", rpc_bdev_delay_delete, MIMO_RPC_RUNTIME },
	{ "bdev_delay_update_latency", rpc_bdev_delay_update_latency, MIMO_RPC_RUNTIME },
};

void bdev_delay_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
