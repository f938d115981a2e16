/*
 * SPDK's vhost RPCs: vhost_create_blk_controller, vhost_create_scsi_controller,
 * vhost_scsi_controller_add_target, vhost_scsi_controller_remove_target,
 * vhost_get_controllers, vhost_delete_controller, vhost_controller_set_coalescing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "ticks.h"
#include "mimo/events.h"
#include "mimo/jsonrpc.h"
#include "mimo/vhost.h"
#include "vhost_internal.h"

struct create_params {
	char *ctrlr;
	char *dev_name;
	char *cpumask;
	bool readonly;
	bool packed_ring;
	bool packed_ring_recovery;
	char *transport;
};

static const struct mimo_json_decoder create_decoders[] = {
	{ "ctrlr", offsetof(struct create_params, ctrlr), mimo_json_decode_string, false },
	{ "dev_name", offsetof(struct create_params, dev_name), mimo_json_decode_string, false },
	{ "cpumask", offsetof(struct create_params, cpumask), mimo_json_decode_string, true },
	{ "readonly", offsetof(struct create_params, readonly), mimo_json_decode_bool, true },
	{ "packed_ring", offsetof(struct create_params, packed_ring), mimo_json_decode_bool, true },
	{ "packed_ring_recovery", offsetof(struct create_params, packed_ring_recovery),
	  mimo_json_decode_bool, true },
	{ "transport", offsetof(struct create_params, transport), mimo_json_decode_string, true },
};

static void rpc_vhost_create_blk_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	/* packed_ring_recovery defaults to true here (SPDK's default is false): see below. */
	struct create_params p = { .packed_ring_recovery = true };
	char err[512] = "";
	int rc;

	if (!mimo_rpc_decode(req, params, create_decoders, MIMO_COUNTOF(create_decoders), &p))
		return;
	/* packed_ring_recovery: older SPDK's switch for keeping packed rings' positions in the
	 * inflight region. mimo tracks packed rings unless it is false (then, as SPDK without
	 * it, a packed ring does not survive this process); a front-end that asks for the region
	 * before it sets the features gets the split layout and untracked packed rings anyway. */
	if (p.transport != NULL && strcmp(p.transport, "vhost_user_blk") != 0) {
		mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
					"transport '%s': mimo has only vhost_user_blk",
					p.transport);
	} else if ((rc = mimo_vhost_blk_create(p.ctrlr, p.dev_name, p.cpumask, p.readonly,
					       p.packed_ring, p.packed_ring_recovery, err,
					       sizeof(err))) != 0) {
		mimo_jsonrpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	} else {
		mimo_jsonrpc_send_bool(req, true);
	}
	mimo_json_decode_free(create_decoders, MIMO_COUNTOF(create_decoders), &p);
}

struct scsi_create_params {
	char *ctrlr;
	char *cpumask;
	bool delay;
};

static const struct mimo_json_decoder scsi_create_decoders[] = {
	{ "ctrlr", offsetof(struct scsi_create_params, ctrlr), mimo_json_decode_string, false },
	{ "cpumask", offsetof(struct scsi_create_params, cpumask), mimo_json_decode_string, true },
	{ "delay", offsetof(struct scsi_create_params, delay), mimo_json_decode_bool, true },
};

/* SPDK's "delay" holds the controller back until vhost_start_scsi_controller, so no front-end
 * connects before the targets are added (SPDK's own save_config writes it that way). */
static void rpc_vhost_create_scsi_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct scsi_create_params p = { 0 };
	char err[512] = "";
	int rc;

	if (!mimo_rpc_decode(req, params, scsi_create_decoders, MIMO_COUNTOF(scsi_create_decoders),
			     &p))
		return;
	if ((rc = mimo_vhost_scsi_create(p.ctrlr, p.cpumask, p.delay, err, sizeof(err))) != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(scsi_create_decoders, MIMO_COUNTOF(scsi_create_decoders), &p);
}

struct start_params {
	char *ctrlr;
};

static const struct mimo_json_decoder start_decoders[] = {
	{ "ctrlr", offsetof(struct start_params, ctrlr), mimo_json_decode_string, false },
};

static void rpc_vhost_start_scsi_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct start_params p = { 0 };
	char err[512] = "";
	int rc;

	if (!mimo_rpc_decode(req, params, start_decoders, MIMO_COUNTOF(start_decoders), &p))
		return;
	if ((rc = mimo_vhost_scsi_start(p.ctrlr, err, sizeof(err))) != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(start_decoders, MIMO_COUNTOF(start_decoders), &p);
}

struct target_params {
	char *ctrlr;
	int32_t scsi_target_num;
	char *bdev_name;
};

static const struct mimo_json_decoder add_target_decoders[] = {
	{ "ctrlr", offsetof(struct target_params, ctrlr), mimo_json_decode_string, false },
	{ "scsi_target_num", offsetof(struct target_params, scsi_target_num),
	  mimo_json_decode_int32, false },
	{ "bdev_name", offsetof(struct target_params, bdev_name), mimo_json_decode_string, false },
};

static void rpc_vhost_scsi_controller_add_target(struct mimo_jsonrpc_request *req,
						 const json_t *params)
{
	struct target_params p = { 0 };
	char err[512] = "";
	int rc;

	if (!mimo_rpc_decode(req, params, add_target_decoders, MIMO_COUNTOF(add_target_decoders),
			     &p))
		return;
	rc = mimo_vhost_scsi_add_target(p.ctrlr, p.scsi_target_num, p.bdev_name, err, sizeof(err));
	if (rc < 0)
		mimo_jsonrpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	else
		mimo_jsonrpc_send_result(req, json_integer(rc)); /* the target's number, as SPDK */
	mimo_json_decode_free(add_target_decoders, MIMO_COUNTOF(add_target_decoders), &p);
}

static const struct mimo_json_decoder remove_target_decoders[] = {
	{ "ctrlr", offsetof(struct target_params, ctrlr), mimo_json_decode_string, false },
	{ "scsi_target_num", offsetof(struct target_params, scsi_target_num),
	  mimo_json_decode_int32, false },
};

static void target_removed(void *arg)
{
	mimo_jsonrpc_send_bool(arg, true);
}

/* Answered once the target's requests have completed and its device is gone. */
static void rpc_vhost_scsi_controller_remove_target(struct mimo_jsonrpc_request *req,
						    const json_t *params)
{
	struct target_params p = { 0 };
	char err[512] = "";
	int rc;

	if (!mimo_rpc_decode(req, params, remove_target_decoders,
			     MIMO_COUNTOF(remove_target_decoders), &p))
		return;
	rc = p.scsi_target_num < 0
		     ? (snprintf(err, sizeof(err), "target %d: 0 to 7", p.scsi_target_num), -EINVAL)
		     : mimo_vhost_scsi_remove_target(p.ctrlr, (uint32_t)p.scsi_target_num,
						     target_removed, req, err, sizeof(err));
	if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	mimo_json_decode_free(remove_target_decoders, MIMO_COUNTOF(remove_target_decoders), &p);
}

struct name_params {
	char *name;
};

static const struct mimo_json_decoder get_decoders[] = {
	{ "name", offsetof(struct name_params, name), mimo_json_decode_string, true },
};

static void rpc_vhost_get_controllers(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct name_params p = { 0 };
	struct vhost_ctrlr *c;

	if (!mimo_rpc_decode(req, params, get_decoders, MIMO_COUNTOF(get_decoders), &p))
		return;
	if (p.name == NULL)
		mimo_jsonrpc_send_result(req, vhost_ctrlr_list_json());
	else if ((c = vhost_ctrlr_find(p.name)) == NULL)
		mimo_jsonrpc_send_errno(req, -ENODEV);
	else
		mimo_jsonrpc_send_result(req, json_pack("[o]", vhost_ctrlr_info_json(c)));
	mimo_json_decode_free(get_decoders, MIMO_COUNTOF(get_decoders), &p);
}

static const struct mimo_json_decoder delete_decoders[] = {
	{ "ctrlr", offsetof(struct name_params, name), mimo_json_decode_string, false },
};

MIMO_EXPORT int mimo_vhost_delete(const char *name)
{
	struct vhost_ctrlr *c = vhost_ctrlr_find(name);

	if (c == NULL)
		return -ENODEV;
	vhost_ctrlr_delete(c);
	return 0;
}

static void rpc_vhost_delete_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct name_params p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, delete_decoders, MIMO_COUNTOF(delete_decoders), &p))
		return;
	rc = mimo_vhost_delete(p.name);
	if (rc == 0)
		mimo_jsonrpc_send_bool(req, true);
	else
		mimo_jsonrpc_send_errno(req, rc);
	mimo_json_decode_free(delete_decoders, MIMO_COUNTOF(delete_decoders), &p);
}

struct coalescing_params {
	char *ctrlr;
	uint32_t delay_base_us;
	uint32_t iops_threshold;
};

static const struct mimo_json_decoder coalescing_decoders[] = {
	{ "ctrlr", offsetof(struct coalescing_params, ctrlr), mimo_json_decode_string, false },
	{ "delay_base_us", offsetof(struct coalescing_params, delay_base_us),
	  mimo_json_decode_uint32, false },
	{ "iops_threshold", offsetof(struct coalescing_params, iops_threshold),
	  mimo_json_decode_uint32, false },
};

/* SPDK's limits: the threshold counts requests per 10 ms window, so below 100 IOPS it would be
 * zero; the delay is kept in ticks in 32 bits. */
static void rpc_vhost_controller_set_coalescing(struct mimo_jsonrpc_request *req,
						const json_t *params)
{
	struct coalescing_params p = { 0 };
	struct vhost_ctrlr *c;

	if (!mimo_rpc_decode(req, params, coalescing_decoders, MIMO_COUNTOF(coalescing_decoders),
			     &p))
		return;
	if ((c = vhost_ctrlr_find(p.ctrlr)) == NULL) {
		mimo_jsonrpc_send_errno(req, -ENODEV);
	} else if ((uint64_t)p.iops_threshold * 10 / 1000 == 0) {
		mimo_jsonrpc_send_error(
			req, -EINVAL,
			"iops_threshold %u is too low: the minimum is 100 (requests "
			"are counted per 10 ms)",
			p.iops_threshold);
	} else if ((uint64_t)p.delay_base_us * mimo_get_ticks_hz() / 1000000 >= UINT32_MAX) {
		mimo_jsonrpc_send_error(req, -EINVAL, "delay_base_us %u is too big",
					p.delay_base_us);
	} else {
		c->iops_threshold = p.iops_threshold;
		c->delay_base_us = p.delay_base_us;
		mimo_jsonrpc_send_bool(req, true);
	}
	mimo_json_decode_free(coalescing_decoders, MIMO_COUNTOF(coalescing_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "vhost_create_blk_controller", rpc_vhost_create_blk_controller, MIMO_RPC_RUNTIME },
	{ "vhost_create_scsi_controller", rpc_vhost_create_scsi_controller, MIMO_RPC_RUNTIME },
	{ "vhost_start_scsi_controller", rpc_vhost_start_scsi_controller, MIMO_RPC_RUNTIME },
	{ "vhost_scsi_controller_add_target", rpc_vhost_scsi_controller_add_target,
	  MIMO_RPC_RUNTIME },
	{ "vhost_scsi_controller_remove_target", rpc_vhost_scsi_controller_remove_target,
	  MIMO_RPC_RUNTIME },
	{ "vhost_get_controllers", rpc_vhost_get_controllers, MIMO_RPC_RUNTIME },
	{ "vhost_delete_controller", rpc_vhost_delete_controller, MIMO_RPC_RUNTIME },
	{ "vhost_controller_set_coalescing", rpc_vhost_controller_set_coalescing,
	  MIMO_RPC_RUNTIME },
};

MIMO_EXPORT void mimo_register_vhost(void)
{
	mimo_event_register_type("vhost_controller_created");
	mimo_event_register_type("vhost_controller_deleted");
	mimo_event_register_type("vhost_guest_connected");
	mimo_event_register_type("vhost_guest_disconnected");
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
