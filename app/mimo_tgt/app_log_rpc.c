/*
 * SPDK's log_* methods over mimo's log (lib/util/log.h): the print level (what reaches
 * stderr), the log level (what reaches syslog), log flags (which components' debug lines are
 * written) and timestamps. Log state is not saved by save_config, as in SPDK: it is a
 * debugging setting of one run, given again with -L or these methods.
 */
#include <errno.h>
#include <stdlib.h>

#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"

struct level_param {
	char *level;
};

static const struct mimo_json_decoder level_decoders[] = {
	{ "level", offsetof(struct level_param, level), mimo_json_decode_string, false },
};

/* The level parameter as a threshold, or -1 after answering -32602. */
static int decode_level(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct level_param p = { 0 };
	int t;

	if (!mimo_rpc_decode(req, params, level_decoders, MIMO_COUNTOF(level_decoders), &p))
		return -1;
	t = mimo_log_threshold_parse(p.level);
	if (t < 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: parameter \"level\" must be one of ERROR, WARNING, "
					"NOTICE, INFO, DEBUG",
					mimo_jsonrpc_request_method(req));
	free(p.level);
	return t;
}

static void rpc_log_set_print_level(struct mimo_jsonrpc_request *req, const json_t *params)
{
	int t = decode_level(req, params);

	if (t < 0)
		return;
	mimo_log_set_print_level(t);
	mimo_jsonrpc_send_bool(req, true);
}

static void rpc_log_get_print_level(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_result(req,
				 json_string(mimo_log_threshold_name(mimo_log_get_print_level())));
}

static void rpc_log_set_level(struct mimo_jsonrpc_request *req, const json_t *params)
{
	int t = decode_level(req, params);

	if (t < 0)
		return;
	mimo_log_set_level(t);
	mimo_jsonrpc_send_bool(req, true);
}

static void rpc_log_get_level(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_result(req, json_string(mimo_log_threshold_name(mimo_log_get_level())));
}

struct flag_param {
	char *flag;
};

static const struct mimo_json_decoder flag_decoders[] = {
	{ "flag", offsetof(struct flag_param, flag), mimo_json_decode_string, false },
};

static void set_flag(struct mimo_jsonrpc_request *req, const json_t *params, bool on)
{
	struct flag_param p = { 0 };

	if (!mimo_rpc_decode(req, params, flag_decoders, MIMO_COUNTOF(flag_decoders), &p))
		return;
	if (mimo_log_set_flag(p.flag, on) != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"%s: invalid log flag \"%s\" (log_get_flags lists them)",
					mimo_jsonrpc_request_method(req), p.flag);
	else
		mimo_jsonrpc_send_bool(req, true);
	free(p.flag);
}

static void rpc_log_set_flag(struct mimo_jsonrpc_request *req, const json_t *params)
{
	set_flag(req, params, true);
}

static void rpc_log_clear_flag(struct mimo_jsonrpc_request *req, const json_t *params)
{
	set_flag(req, params, false);
}

static void rpc_log_get_flags(struct mimo_jsonrpc_request *req, const json_t *params)
{
	json_t *o;

	if (!mimo_rpc_no_params(req, params))
		return;
	o = json_object();
	for (size_t i = 0; i < mimo_log_flag_count(); i++) {
		bool on;
		const char *name = mimo_log_flag_get(i, &on);

		json_object_set_new(o, name, json_boolean(on));
	}
	mimo_jsonrpc_send_result(req, o);
}

struct timestamps_param {
	bool enabled;
};

static const struct mimo_json_decoder timestamps_decoders[] = {
	{ "enabled", offsetof(struct timestamps_param, enabled), mimo_json_decode_bool, false },
};

static void rpc_log_enable_timestamps(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct timestamps_param p = { 0 };

	if (!mimo_rpc_decode(req, params, timestamps_decoders, MIMO_COUNTOF(timestamps_decoders),
			     &p))
		return;
	mimo_log_enable_timestamps(p.enabled);
	mimo_jsonrpc_send_bool(req, true);
}

#define BOTH (MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME)
static const struct mimo_rpc_method g_rpcs[] = {
	{ "log_set_print_level", rpc_log_set_print_level, BOTH },
	{ "log_get_print_level", rpc_log_get_print_level, BOTH },
	{ "log_set_level", rpc_log_set_level, BOTH },
	{ "log_get_level", rpc_log_get_level, BOTH },
	{ "log_set_flag", rpc_log_set_flag, BOTH },
	{ "log_clear_flag", rpc_log_clear_flag, BOTH },
	{ "log_get_flags", rpc_log_get_flags, BOTH },
	{ "log_enable_timestamps", rpc_log_enable_timestamps, MIMO_RPC_RUNTIME },
	/* SPDK 18.x-19.x's names (SPDK_RPC_REGISTER_ALIAS_DEPRECATED in its log_rpc.c). */
	{ "set_log_print_level", rpc_log_set_print_level, BOTH, "log_set_print_level" },
	{ "get_log_print_level", rpc_log_get_print_level, BOTH, "log_get_print_level" },
	{ "set_log_level", rpc_log_set_level, BOTH, "log_set_level" },
	{ "get_log_level", rpc_log_get_level, BOTH, "log_get_level" },
	{ "set_log_flag", rpc_log_set_flag, BOTH, "log_set_flag" },
	{ "clear_log_flag", rpc_log_clear_flag, BOTH, "log_clear_flag" },
	{ "get_log_flags", rpc_log_get_flags, BOTH, "log_get_flags" },
};

void app_log_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
