/* The framework's RPCs: spdk_get_version, framework_*, spdk_kill_instance. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"
#include "mimo/reactor.h"

#define COMP "app"

static void rpc_spdk_get_version(struct mimo_jsonrpc_request *req, const json_t *params)
{
	int major = 0, minor = 0, patch = 0;

	if (!mimo_rpc_no_params(req, params))
		return;
	sscanf(MIMO_VERSION, "%d.%d.%d", &major, &minor, &patch);
	mimo_jsonrpc_send_result(req, json_pack("{s:s, s:{s:i, s:i, s:i, s:s}}", "version",
						"mimo v" MIMO_VERSION, "fields", "major", major,
						"minor", minor, "patch", patch, "suffix", ""));
}

static void start_init_done(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc == 0)
		mimo_jsonrpc_send_bool(req, true);
	else
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"framework_start_init: the configuration failed (%s)",
					strerror(-rc));
}

static void rpc_framework_start_init(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	app_start_init(start_init_done, req);
}

static void rpc_framework_wait_init(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	if (app_init_done())
		mimo_jsonrpc_send_bool(req, true);
	else
		app_wait_init(req);
}

static void rpc_framework_get_subsystems(struct mimo_jsonrpc_request *req, const json_t *params)
{
	json_t *arr = json_array();
	size_t n;
	const struct app_subsystem *s = app_subsystems(&n);

	if (!mimo_rpc_no_params(req, params)) {
		json_decref(arr);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *deps = json_array();

		for (size_t d = 0; d < 4 && s[i].depends_on[d] != NULL; d++)
			json_array_append_new(deps, json_string(s[i].depends_on[d]));
		json_array_append_new(
			arr, json_pack("{s:s, s:o}", "subsystem", s[i].name, "depends_on", deps));
	}
	mimo_jsonrpc_send_result(req, arr);
}

struct get_config {
	char *name;
	bool with_batches; /* SPDK 26: group entries in batch arrays; mimo lists them flat */
};

static const struct mimo_json_decoder get_config_decoders[] = {
	{ "name", offsetof(struct get_config, name), mimo_json_decode_string, false },
	{ "with_batches", offsetof(struct get_config, with_batches), mimo_json_decode_bool, true },
};

static void rpc_framework_get_config(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_config p = { 0 };
	const struct app_subsystem *s;
	size_t n;

	if (!mimo_rpc_decode(req, params, get_config_decoders, MIMO_COUNTOF(get_config_decoders),
			     &p))
		return;
	s = app_subsystems(&n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s[i].name, p.name) == 0) {
			mimo_jsonrpc_send_result(req, s[i].config != NULL ? s[i].config()
									  : json_array());
			free(p.name);
			return;
		}
	}
	mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
				"framework_get_config: subsystem '%s' not found", p.name);
	free(p.name);
}

struct kill {
	char *sig_name;
};

static const struct mimo_json_decoder kill_decoders[] = {
	{ "sig_name", offsetof(struct kill, sig_name), mimo_json_decode_string, false },
};

static struct mimo_poller *g_kill_poller;
static int g_kill_signal;

/* A few milliseconds after answering, so the answer reaches the client first. */
static int send_kill(void *arg)
{
	(void)arg;
	mimo_poller_unregister(&g_kill_poller);
	MIMO_INFO(COMP, "spdk_kill_instance: sending signal %d to ourselves", g_kill_signal);
	kill(getpid(), g_kill_signal);
	return 1;
}

static void rpc_spdk_kill_instance(struct mimo_jsonrpc_request *req, const json_t *params)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = { { "SIGINT", SIGINT }, { "SIGTERM", SIGTERM }, { "SIGQUIT", SIGQUIT },
		     { "SIGHUP", SIGHUP }, { "SIGKILL", SIGKILL }, { "SIGUSR1", SIGUSR1 } };
	struct kill p = { 0 };
	int sig = 0;

	if (!mimo_rpc_decode(req, params, kill_decoders, MIMO_COUNTOF(kill_decoders), &p))
		return;
	for (size_t i = 0; i < MIMO_COUNTOF(sigs); i++) {
		/* SPDK accepts the name with or without "SIG". */
		if (strcmp(p.sig_name, sigs[i].name) == 0 ||
		    strcmp(p.sig_name, sigs[i].name + 3) == 0)
			sig = sigs[i].sig;
	}
	if (sig == 0) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"%s: parameter \"sig_name\" must be one of SIGINT, SIGTERM, "
			"SIGQUIT, SIGHUP, SIGKILL, SIGUSR1",
			mimo_jsonrpc_request_method(req));
	} else if (g_kill_poller != NULL) {
		mimo_jsonrpc_send_error(req, -EALREADY, "a signal is already on its way");
	} else {
		g_kill_signal = sig;
		g_kill_poller = mimo_poller_register(send_kill, NULL, 10000);
		mimo_jsonrpc_send_bool(req, true);
	}
	free(p.sig_name);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "spdk_get_version", rpc_spdk_get_version, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "framework_start_init", rpc_framework_start_init, MIMO_RPC_STARTUP },
	{ "framework_wait_init", rpc_framework_wait_init, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "framework_get_subsystems", rpc_framework_get_subsystems,
	  MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "framework_get_config", rpc_framework_get_config, MIMO_RPC_RUNTIME },
	{ "spdk_kill_instance", rpc_spdk_kill_instance, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "kill_instance", rpc_spdk_kill_instance, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME,
	  "spdk_kill_instance" },
	/* SPDK 19.x's names (SPDK_RPC_REGISTER_ALIAS_DEPRECATED in its app.c, app_rpc.c,
	 * subsystem_rpc.c). */
	{ "get_spdk_version", rpc_spdk_get_version, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME,
	  "spdk_get_version" },
	{ "start_subsystem_init", rpc_framework_start_init, MIMO_RPC_STARTUP,
	  "framework_start_init" },
	{ "wait_subsystem_init", rpc_framework_wait_init, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME,
	  "framework_wait_init" },
	{ "get_subsystems", rpc_framework_get_subsystems, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME,
	  "framework_get_subsystems" },
	{ "get_subsystem_config", rpc_framework_get_config, MIMO_RPC_RUNTIME,
	  "framework_get_config" },
};

void app_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
