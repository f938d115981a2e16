/* notify_get_types and notify_get_notifications, SPDK's pull interface to the event ring. */
#include "compiler.h"
#include "mimo/events.h"
#include "mimo/jsonrpc.h"

static void rpc_notify_get_types(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_result(req, mimo_events_get_types());
}

struct get_notifications {
	uint64_t id;
	uint64_t max;
};

static const struct mimo_json_decoder get_notifications_decoders[] = {
	{ "id", offsetof(struct get_notifications, id), mimo_json_decode_uint64, true },
	{ "max", offsetof(struct get_notifications, max), mimo_json_decode_uint64, true },
};

static void rpc_notify_get_notifications(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_notifications p = { 0 };

	if (!mimo_rpc_decode(req, params, get_notifications_decoders,
			     MIMO_COUNTOF(get_notifications_decoders), &p))
		return;
	mimo_jsonrpc_send_result(req, mimo_events_get(p.id, p.max));
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "notify_get_types", rpc_notify_get_types, MIMO_RPC_RUNTIME },
	{ "notify_get_notifications", rpc_notify_get_notifications, MIMO_RPC_RUNTIME },
	/* SPDK 19.x's names (SPDK_RPC_REGISTER_ALIAS_DEPRECATED in its notify_rpc.c). */
	{ "get_notification_types", rpc_notify_get_types, MIMO_RPC_RUNTIME, "notify_get_types" },
	{ "get_notifications", rpc_notify_get_notifications, MIMO_RPC_RUNTIME,
	  "notify_get_notifications" },
};

MIMO_EXPORT void mimo_register_events(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
