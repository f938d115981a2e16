/*
 * bdev_nvme_set_options and bdev_nvme_set_hotplug, with every parameter SPDK's schema gives
 * them. Each is mapped onto mimo's initiator (bdev_nvme_internal.h: struct bdev_nvme_opts),
 * has no meaning here (RDMA's, PCIe's, SPDK's accel framework - type-checked and accepted),
 * or asks for what mimo's initiator does not do and is refused unless off. docs/mimo_tgt.md
 * ("SPDK's options") lists them with their reasons.
 */
#include <errno.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "dhchap.h"
#include "mimo/jsonrpc.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS

struct set_options {
	char *action_on_timeout;
	uint64_t timeout_us, timeout_admin_us;
	uint32_t keep_alive_timeout_ms;
	uint32_t arbitration_burst, low_priority_weight, medium_priority_weight;
	uint32_t high_priority_weight;
	uint64_t nvme_adminq_poll_period_us, nvme_ioq_poll_period_us;
	bool delay_cmd_submit;
	int32_t bdev_retry_count;
	uint32_t transport_ack_timeout;
	int32_t ctrlr_loss_timeout_sec;
	uint32_t reconnect_delay_sec, fast_io_fail_timeout_sec;
	bool generate_uuids, nvme_error_stat, io_path_stat, enable_flush;
	const json_t *dhchap_digests, *dhchap_dhgroups, *multipath_opts;
	uint32_t tcp_connect_timeout_ms;
	/* Type-checked only. */
	uint64_t unused_u64;
	uint32_t unused_u32;
	bool unused_bool;
};

static const char *decode_u8(const json_t *val, void *out)
{
	uint32_t v;

	if (mimo_json_decode_uint32(val, &v) != NULL || v > UINT8_MAX)
		return "an unsigned 8-bit integer";
	*(uint32_t *)out = v;
	return NULL;
}

static const char *decode_u16(const json_t *val, void *out)
{
	uint16_t v;

	(void)out;
	return mimo_json_decode_uint16(val, &v);
}

static const char *decode_names(const json_t *val, void *out)
{
	size_t i;
	json_t *v;

	*(const json_t **)out = val;
	if (!json_is_array(val) || json_array_size(val) == 0)
		return "a non-empty array of names";
	json_array_foreach(val, i, v)
	{
		if (!json_is_string(v))
			return "a non-empty array of names";
	}
	return NULL;
}

#define SO(f) offsetof(struct set_options, f)
#define P(f, fn)                    \
	{                           \
#f, SO(f), fn, true \
	}
#define UNUSED(n, fn, f)           \
	{                          \
		n, SO(f), fn, true \
	}
static const struct mimo_json_decoder set_options_decoders[] = {
	P(action_on_timeout, mimo_json_decode_string),
	P(timeout_us, mimo_json_decode_uint64),
	P(timeout_admin_us, mimo_json_decode_uint64),
	P(keep_alive_timeout_ms, mimo_json_decode_uint32),
	P(arbitration_burst, mimo_json_decode_uint32),
	P(low_priority_weight, mimo_json_decode_uint32),
	P(medium_priority_weight, mimo_json_decode_uint32),
	P(high_priority_weight, mimo_json_decode_uint32),
	P(nvme_adminq_poll_period_us, mimo_json_decode_uint64),
	P(nvme_ioq_poll_period_us, mimo_json_decode_uint64),
	P(delay_cmd_submit, mimo_json_decode_bool),
	P(bdev_retry_count, mimo_json_decode_int32),
	P(transport_ack_timeout, decode_u8),
	P(ctrlr_loss_timeout_sec, mimo_json_decode_int32),
	P(reconnect_delay_sec, mimo_json_decode_uint32),
	P(fast_io_fail_timeout_sec, mimo_json_decode_uint32),
	P(generate_uuids, mimo_json_decode_bool),
	P(nvme_error_stat, mimo_json_decode_bool),
	P(io_path_stat, mimo_json_decode_bool),
	P(enable_flush, mimo_json_decode_bool),
	P(dhchap_digests, decode_names),
	P(dhchap_dhgroups, decode_names),
	P(multipath_opts, mimo_json_decode_json),
	P(tcp_connect_timeout_ms, mimo_json_decode_uint32),
	/* No meaning for mimo's NVMe/TCP initiator (docs/mimo_tgt.md). */
	UNUSED("io_queue_requests", mimo_json_decode_uint32, unused_u32),
	UNUSED("transport_retry_count", mimo_json_decode_uint32, unused_u32),
	UNUSED("disable_auto_failback", mimo_json_decode_bool, unused_bool),
	UNUSED("transport_tos", decode_u8, unused_u32),
	UNUSED("rdma_srq_size", mimo_json_decode_uint32, unused_u32),
	UNUSED("rdma_max_cq_size", mimo_json_decode_uint32, unused_u32),
	UNUSED("rdma_cm_event_timeout_ms", decode_u16, unused_u32),
	UNUSED("rdma_umr_per_io", mimo_json_decode_bool, unused_bool),
	UNUSED("allow_accel_sequence", mimo_json_decode_bool, unused_bool),
};
#undef P
#undef UNUSED

static void refuse(struct mimo_jsonrpc_request *req, const char *param, const char *why)
{
	mimo_jsonrpc_send_error(req, INVALID, "bdev_nvme_set_options: parameter \"%s\": %s", param,
				why);
}

/* What DH-HMAC-CHAP's name lists may hold (dhchap.h's names). */
#define DHCHAP_CHOICES \
	"sha256, sha384, sha512; null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192"

/* Multipath bdevs start active_passive (bdev_nvme_set_multipath_policy changes one): a
 * default of active_active is refused; the selector and min_io only active_active uses. */
static bool multipath_ok(struct mimo_jsonrpc_request *req, const json_t *m)
{
	const char *key;
	json_t *v;

	if (m == NULL || json_is_null(m))
		return true;
	if (!json_is_object(m)) {
		refuse(req, "multipath_opts", "must be an object");
		return false;
	}
	json_object_foreach((json_t *)m, key, v)
	{
		const char *s = json_string_value(v);

		if (strcmp(key, "policy") == 0) {
			if (s == NULL || strcmp(s, "active_passive") != 0) {
				refuse(req, "multipath_opts",
				       "policy must be \"active_passive\": multipath bdevs start "
				       "active_passive, bdev_nvme_set_multipath_policy sets "
				       "active_active per bdev");
				return false;
			}
		} else if (strcmp(key, "selector") == 0) {
			if (s == NULL ||
			    (strcmp(s, "round_robin") != 0 && strcmp(s, "queue_depth") != 0)) {
				refuse(req, "multipath_opts",
				       "selector must be \"round_robin\" or \"queue_depth\"");
				return false;
			}
		} else if (strcmp(key, "min_io") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > UINT32_MAX) {
				refuse(req, "multipath_opts",
				       "min_io must be an unsigned 32-bit integer");
				return false;
			}
		} else {
			mimo_jsonrpc_send_error(req, INVALID,
						"bdev_nvme_set_options: multipath_opts: unknown "
						"parameter \"%s\"",
						key);
			return false;
		}
	}
	return true;
}

/* Refuses (answering) what the call asks that mimo's initiator does not do; true when it
 * asks for nothing of the kind. */
static bool check_unsupported(struct mimo_jsonrpc_request *req, const struct set_options *p)
{
	if (p->action_on_timeout != NULL && strcmp(p->action_on_timeout, "none") != 0 &&
	    strcmp(p->action_on_timeout, "reset") != 0 &&
	    strcmp(p->action_on_timeout, "abort") != 0)
		refuse(req, "action_on_timeout", "must be none, reset or abort");
	else if (p->timeout_us != 0 || p->timeout_admin_us != 0)
		refuse(req, p->timeout_us != 0 ? "timeout_us" : "timeout_admin_us",
		       "must be 0: mimo's initiator has no command timeouts (keep-alive and the "
		       "transport find a dead controller)");
	else if (p->arbitration_burst != 0 || p->low_priority_weight != 0 ||
		 p->medium_priority_weight != 0 || p->high_priority_weight != 0)
		refuse(req,
		       p->arbitration_burst != 0	? "arbitration_burst"
		       : p->low_priority_weight != 0	? "low_priority_weight"
		       : p->medium_priority_weight != 0 ? "medium_priority_weight"
							: "high_priority_weight",
		       "must be 0: mimo's initiator does not set the controller's arbitration");
	else if (!p->delay_cmd_submit)
		refuse(req, "delay_cmd_submit",
		       "must be true: mimo's initiator always sends what was submitted at the "
		       "queue's next poll, in one system call");
	else if (p->transport_ack_timeout != 0)
		refuse(req, "transport_ack_timeout",
		       "must be 0: mimo's initiator leaves the TCP retransmission timeout to the "
		       "kernel");
	else if (p->generate_uuids)
		refuse(req, "generate_uuids",
		       "must be false: a namespace without an NGUID or UUID gets a random UUID");
	else if (p->nvme_error_stat)
		refuse(req, "nvme_error_stat",
		       "must be false: mimo keeps no count of NVMe error statuses");
	else if (p->tcp_connect_timeout_ms != 0)
		refuse(req, "tcp_connect_timeout_ms",
		       "must be 0: each step of connecting (the TCP connection included) has "
		       "bdev_nvme_attach_controller's fabrics_connect_timeout_us, 10 s by default");
	else
		return true;
	return false;
}

static void rpc_bdev_nvme_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct set_options p = { 0 };
	struct bdev_nvme_opts o;
	const char *why;
	int rc;

	/* As SPDK: what is left out keeps its value. */
	bdev_nvme_get_opts(&o);
	p.keep_alive_timeout_ms = o.keep_alive_timeout_ms;
	p.bdev_retry_count = o.bdev_retry_count;
	p.nvme_adminq_poll_period_us = o.adminq_poll_period_us;
	p.nvme_ioq_poll_period_us = o.ioq_poll_period_us;
	p.enable_flush = o.enable_flush;
	p.ctrlr_loss_timeout_sec = o.reconnect.ctrlr_loss_timeout_sec;
	p.reconnect_delay_sec = o.reconnect.reconnect_delay_sec;
	p.fast_io_fail_timeout_sec = o.reconnect.fast_io_fail_timeout_sec;
	p.delay_cmd_submit = true;
	p.io_path_stat = o.io_path_stat;
	if (!mimo_rpc_decode(req, params, set_options_decoders, MIMO_COUNTOF(set_options_decoders),
			     &p))
		return;
	if (!check_unsupported(req, &p) || !multipath_ok(req, p.multipath_opts) ||
	    !mimo_rpc_names_mask(req, "dhchap_digests", p.dhchap_digests, dhchap_hash_id,
				 DHCHAP_CHOICES, &o.dhchap_digests) ||
	    !mimo_rpc_names_mask(req, "dhchap_dhgroups", p.dhchap_dhgroups, dhchap_dhgroup_id,
				 DHCHAP_CHOICES, &o.dhchap_dhgroups))
		goto out;
	if (p.bdev_retry_count < -1) {
		refuse(req, "bdev_retry_count", "must be -1 (no limit) or more");
		goto out;
	}
	o.reconnect.ctrlr_loss_timeout_sec = p.ctrlr_loss_timeout_sec;
	o.reconnect.reconnect_delay_sec = p.reconnect_delay_sec;
	o.reconnect.fast_io_fail_timeout_sec = p.fast_io_fail_timeout_sec;
	why = bdev_nvme_reconnect_opts_check(&o.reconnect);
	if (why != NULL) {
		mimo_jsonrpc_send_error(req, INVALID, "bdev_nvme_set_options: %s", why);
		goto out;
	}
	o.keep_alive_timeout_ms = p.keep_alive_timeout_ms;
	o.bdev_retry_count = p.bdev_retry_count;
	o.adminq_poll_period_us = p.nvme_adminq_poll_period_us;
	o.ioq_poll_period_us = p.nvme_ioq_poll_period_us;
	o.enable_flush = p.enable_flush;
	o.io_path_stat = p.io_path_stat;
	rc = bdev_nvme_set_opts(&o);
	if (rc == -EPERM)
		mimo_jsonrpc_send_error(req, -EPERM,
					"RPC not permitted with nvme controllers already attached");
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(set_options_decoders, MIMO_COUNTOF(set_options_decoders), &p);
}

/* --- bdev_nvme_set_hotplug ----------------------------------------------------------------- */

struct hotplug {
	bool enable;
	uint64_t period_us;
};

static const struct mimo_json_decoder hotplug_decoders[] = {
	{ "enable", offsetof(struct hotplug, enable), mimo_json_decode_bool, false },
	{ "period_us", offsetof(struct hotplug, period_us), mimo_json_decode_uint64, true },
};

/* SPDK polls for PCIe NVMe devices inserted or removed. mimo's controllers are NVMe-oF ones
 * attached by RPC: disabling it is what mimo does, enabling it is refused. */
static void rpc_bdev_nvme_set_hotplug(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct hotplug p = { 0 };

	if (!mimo_rpc_decode(req, params, hotplug_decoders, MIMO_COUNTOF(hotplug_decoders), &p))
		return;
	if (p.enable)
		mimo_jsonrpc_send_error(
			req, INVALID,
			"bdev_nvme_set_hotplug: parameter \"enable\": mimo has no "
			"PCIe NVMe devices to hot-plug (its controllers are NVMe-oF "
			"ones, attached with bdev_nvme_attach_controller)");
	else
		mimo_jsonrpc_send_bool(req, true);
}

/* SPDK's state masks. */
static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_nvme_set_options", rpc_bdev_nvme_set_options, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "bdev_nvme_set_hotplug", rpc_bdev_nvme_set_hotplug, MIMO_RPC_RUNTIME },
};

void bdev_nvme_opts_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
