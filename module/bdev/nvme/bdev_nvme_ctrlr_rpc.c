/*
 * The RPCs over an attached controller: bdev_nvme_reset_controller, _enable_controller,
 * _disable_controller, bdev_nvme_get_controller_health_info, and the reports over every
 * reactor, bdev_nvme_get_transport_statistics and bdev_nvme_get_io_paths. Parameters, errors
 * and results as SPDK's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "compiler.h"
#include "mimo/jsonrpc.h"

struct op_params {
	char *name;
	uint16_t cntlid;
};

static const struct mimo_json_decoder op_decoders[] = {
	{ "name", offsetof(struct op_params, name), mimo_json_decode_string, false },
	{ "cntlid", offsetof(struct op_params, cntlid), mimo_json_decode_uint16, true },
};

static void op_done(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc == 0)
		mimo_jsonrpc_send_bool(req, true);
	else
		mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
}

typedef int (*op_fn)(const char *name, void (*cb)(void *arg, int rc), void *arg);

static void controller_op(struct mimo_jsonrpc_request *req, const json_t *params, op_fn fn)
{
	struct op_params p = { 0 };
	int cntlid, rc;

	if (!mimo_rpc_decode(req, params, op_decoders, MIMO_COUNTOF(op_decoders), &p))
		return;
	/* cntlid names one controller of the name's; mimo has one, so it must be that one. */
	cntlid = bdev_nvme_get_cntlid(p.name);
	if (cntlid < 0 || (p.cntlid != 0 && cntlid != p.cntlid))
		rc = -ENODEV;
	else
		rc = fn(p.name, op_done, req);
	/* -EALREADY: nothing to do, and that is success (as SPDK). */
	if (rc == -EALREADY)
		mimo_jsonrpc_send_bool(req, true);
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
	mimo_json_decode_free(op_decoders, MIMO_COUNTOF(op_decoders), &p);
}

static void rpc_bdev_nvme_reset_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	controller_op(req, params, bdev_nvme_reset);
}

static void rpc_bdev_nvme_enable_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	controller_op(req, params, bdev_nvme_enable);
}

static void rpc_bdev_nvme_disable_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	controller_op(req, params, bdev_nvme_disable);
}

static void json_done(void *arg, int rc, json_t *result)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR, "%s",
					strerror(-rc));
	else
		mimo_jsonrpc_send_result(req, result);
}

struct name_param {
	char *name;
};

static const struct mimo_json_decoder name_required[] = {
	{ "name", offsetof(struct name_param, name), mimo_json_decode_string, false },
};

static const struct mimo_json_decoder name_optional[] = {
	{ "name", offsetof(struct name_param, name), mimo_json_decode_string, true },
};

static void rpc_bdev_nvme_get_controller_health_info(struct mimo_jsonrpc_request *req,
						     const json_t *params)
{
	struct name_param p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, name_required, 1, &p))
		return;
	rc = bdev_nvme_health_info(p.name, json_done, req);
	/* SPDK's words: an unknown name is "Device not found". */
	if (rc == -ENODEV)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR, "Device not found");
	else if (rc == -ENXIO)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"%s: the controller is not connected", p.name);
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR, "%s",
					strerror(-rc));
	mimo_json_decode_free(name_required, 1, &p);
}

static void rpc_bdev_nvme_get_transport_statistics(struct mimo_jsonrpc_request *req,
						   const json_t *params)
{
	int rc;

	if (params != NULL && !(json_is_object(params) && json_object_size(params) == 0)) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"'bdev_nvme_get_transport_statistics' requires no arguments");
		return;
	}
	rc = bdev_nvme_transport_stats(json_done, req);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
}

static void rpc_bdev_nvme_get_path_iostat(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct name_param p = { 0 };
	struct bdev_nvme_opts o;
	json_t *result;
	int rc;

	if (!mimo_rpc_decode(req, params, name_required, 1, &p))
		return;
	bdev_nvme_get_opts(&o);
	if (!o.io_path_stat) {
		/* SPDK's answer. */
		mimo_jsonrpc_send_error(req, -EPERM,
					"RPC not enabled if enable_io_path_stat is false");
	} else {
		rc = bdev_nvme_path_iostat(p.name, &result);
		if (rc != 0)
			mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
		else
			mimo_jsonrpc_send_result(req, result);
	}
	mimo_json_decode_free(name_required, 1, &p);
}

static void rpc_bdev_nvme_get_io_paths(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct name_param p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, name_optional, 1, &p))
		return;
	rc = bdev_nvme_io_paths(p.name, json_done, req);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	mimo_json_decode_free(name_optional, 1, &p);
}

/* --- multipath policy -------------------------------------------------------------------- */

struct policy_params {
	char *name;
	char *policy;
	char *selector;
	uint32_t rr_min_io;
	uint16_t cntlid;
};

static const struct mimo_json_decoder policy_decoders[] = {
	{ "name", offsetof(struct policy_params, name), mimo_json_decode_string, false },
	{ "policy", offsetof(struct policy_params, policy), mimo_json_decode_string, false },
	{ "selector", offsetof(struct policy_params, selector), mimo_json_decode_string, true },
	{ "rr_min_io", offsetof(struct policy_params, rr_min_io), mimo_json_decode_uint32, true },
};

static const struct mimo_json_decoder preferred_decoders[] = {
	{ "name", offsetof(struct policy_params, name), mimo_json_decode_string, false },
	{ "cntlid", offsetof(struct policy_params, cntlid), mimo_json_decode_uint16, false },
};

static void rpc_bdev_nvme_set_multipath_policy(struct mimo_jsonrpc_request *req,
					       const json_t *params)
{
	struct policy_params p = { .rr_min_io = 1 }; /* SPDK's default */
	bool aa;
	int rc;

	if (!mimo_rpc_decode(req, params, policy_decoders, MIMO_COUNTOF(policy_decoders), &p))
		return;
	aa = strcmp(p.policy, "active_active") == 0;
	if (!aa && strcmp(p.policy, "active_passive") != 0)
		mimo_jsonrpc_send_error(req, -EINVAL, "policy: active_passive or active_active");
	else if (p.selector != NULL && !aa)
		mimo_jsonrpc_send_error(req, -EINVAL, "selector only works in active_active mode");
	else if (p.selector != NULL && strcmp(p.selector, "queue_depth") == 0)
		mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
					"selector queue_depth is not supported: mimo's "
					"active_active goes round robin (round_robin, rr_min_io)");
	else if (p.selector != NULL && strcmp(p.selector, "round_robin") != 0)
		mimo_jsonrpc_send_error(req, -EINVAL, "selector: round_robin or queue_depth");
	else if ((rc = bdev_nvme_set_multipath_policy(p.name, aa, p.rr_min_io)) != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(policy_decoders, MIMO_COUNTOF(policy_decoders), &p);
}

static void rpc_bdev_nvme_set_preferred_path(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct policy_params p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, preferred_decoders, MIMO_COUNTOF(preferred_decoders), &p))
		return;
	rc = bdev_nvme_set_preferred_path(p.name, p.cntlid);
	if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(preferred_decoders, MIMO_COUNTOF(preferred_decoders), &p);
}

/* --- bdev_nvme_set_keys --------------------------------------------------------------------- */

struct keys_params {
	char *name;
	char *dhchap_key;
	char *dhchap_ctrlr_key;
};

static const struct mimo_json_decoder keys_decoders[] = {
	{ "name", offsetof(struct keys_params, name), mimo_json_decode_string, false },
	{ "dhchap_key", offsetof(struct keys_params, dhchap_key), mimo_json_decode_string, true },
	{ "dhchap_ctrlr_key", offsetof(struct keys_params, dhchap_ctrlr_key),
	  mimo_json_decode_string, true },
};

static void rpc_bdev_nvme_set_keys(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct keys_params p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, keys_decoders, MIMO_COUNTOF(keys_decoders), &p))
		return;
	rc = bdev_nvme_set_keys(p.name, p.dhchap_key, p.dhchap_ctrlr_key, op_done, req);
	if (rc == -ENOKEY)
		mimo_jsonrpc_send_error(req, rc, "%s or %s: no key of that name in the keyring",
					p.dhchap_key != NULL ? p.dhchap_key : "",
					p.dhchap_ctrlr_key != NULL ? p.dhchap_ctrlr_key : "");
	else if (rc == -EKEYREJECTED)
		mimo_jsonrpc_send_error(req, rc, "%s or %s: not a DH-HMAC-CHAP secret",
					p.dhchap_key != NULL ? p.dhchap_key : "",
					p.dhchap_ctrlr_key != NULL ? p.dhchap_ctrlr_key : "");
	else if (rc == -EINVAL)
		mimo_jsonrpc_send_error(req, rc,
					"dhchap_ctrlr_key needs dhchap_key: the controller proves "
					"itself only to a host that does");
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
	mimo_json_decode_free(keys_decoders, MIMO_COUNTOF(keys_decoders), &p);
}

/* --- error injection ------------------------------------------------------------------------ */

struct inject_params {
	char *name;
	char *cmd_type;
	uint8_t opc;
	bool do_not_submit;
	uint64_t timeout_in_us;
	uint32_t err_count;
	uint8_t sct;
	uint8_t sc;
};

static const char *decode_u8(const json_t *val, void *out)
{
	uint16_t v;

	if (mimo_json_decode_uint16(val, &v) != NULL || v > UINT8_MAX)
		return "an unsigned 8-bit integer";
	*(uint8_t *)out = (uint8_t)v;
	return NULL;
}

#define I(f, fn, opt)                                          \
	{                                                      \
#f, offsetof(struct inject_params, f), fn, opt \
	}

static const struct mimo_json_decoder inject_decoders[] = {
	I(name, mimo_json_decode_string, false),
	I(cmd_type, mimo_json_decode_string, false),
	I(opc, decode_u8, false),
	I(do_not_submit, mimo_json_decode_bool, true),
	I(timeout_in_us, mimo_json_decode_uint64, true),
	I(err_count, mimo_json_decode_uint32, true),
	I(sct, decode_u8, true),
	I(sc, decode_u8, true),
};

/* Only name, cmd_type and opc. */
#define REMOVE_DECODERS 3

/* cmd_type: SPDK's "admin" or "io"; mimo injects into I/O commands only. */
static bool io_only(struct mimo_jsonrpc_request *req, const char *cmd_type)
{
	if (strcmp(cmd_type, "io") == 0)
		return true;
	if (strcmp(cmd_type, "admin") == 0)
		mimo_jsonrpc_send_error(
			req, -EOPNOTSUPP,
			"cmd_type admin: mimo injects errors into I/O commands only "
			"(its admin queue carries lib/nvme's own keep-alives and "
			"events); use cmd_type io");
	else
		mimo_jsonrpc_send_error(req, -EINVAL, "Failed to parse the request: cmd_type %s",
					cmd_type);
	return false;
}

static void rpc_bdev_nvme_add_error_injection(struct mimo_jsonrpc_request *req,
					      const json_t *params)
{
	struct inject_params p = { .err_count = 1 }; /* SPDK's default */
	int rc;

	if (!mimo_rpc_decode(req, params, inject_decoders, MIMO_COUNTOF(inject_decoders), &p))
		return;
	if (io_only(req, p.cmd_type)) {
		rc = bdev_nvme_inject_add(p.name, p.opc, p.do_not_submit, p.timeout_in_us,
					  p.err_count, p.sct, p.sc);
		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
		else if (rc == -ENODEV)
			mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
		else
			mimo_jsonrpc_send_error(req, rc, "Failed to add the error injection");
	}
	mimo_json_decode_free(inject_decoders, MIMO_COUNTOF(inject_decoders), &p);
}

static void rpc_bdev_nvme_remove_error_injection(struct mimo_jsonrpc_request *req,
						 const json_t *params)
{
	struct inject_params p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, inject_decoders, REMOVE_DECODERS, &p))
		return;
	if (io_only(req, p.cmd_type)) {
		rc = bdev_nvme_inject_remove(p.name, p.opc);
		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
		else
			mimo_jsonrpc_send_error(req, rc, "%s", strerror(-rc));
	}
	mimo_json_decode_free(inject_decoders, REMOVE_DECODERS, &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_nvme_set_keys", rpc_bdev_nvme_set_keys, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_set_multipath_policy", rpc_bdev_nvme_set_multipath_policy, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_set_preferred_path", rpc_bdev_nvme_set_preferred_path, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_add_error_injection", rpc_bdev_nvme_add_error_injection, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_remove_error_injection", rpc_bdev_nvme_remove_error_injection,
	  MIMO_RPC_RUNTIME },
	{ "bdev_nvme_reset_controller", rpc_bdev_nvme_reset_controller, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_enable_controller", rpc_bdev_nvme_enable_controller, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_disable_controller", rpc_bdev_nvme_disable_controller, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_get_controller_health_info", rpc_bdev_nvme_get_controller_health_info,
	  MIMO_RPC_RUNTIME },
	{ "bdev_nvme_get_transport_statistics", rpc_bdev_nvme_get_transport_statistics,
	  MIMO_RPC_RUNTIME },
	{ "bdev_nvme_get_io_paths", rpc_bdev_nvme_get_io_paths, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_get_path_iostat", rpc_bdev_nvme_get_path_iostat, MIMO_RPC_RUNTIME },
};

void bdev_nvme_ctrlr_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
