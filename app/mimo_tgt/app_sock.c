/*
 * The "sock" subsystem of mimo_tgt: SPDK's sock_* methods for the NVMe/TCP sockets (state in
 * lib/nvme_tcp/sock_opts.h). SPDK has socket implementations; mimo has three kinds of NVMe/TCP
 * socket, which take the names of the SPDK implementations that carry them: "posix" (plain
 * TCP over epoll), "uring" (plain TCP whose target connections move bytes through the
 * reactors' io_uring) and "ssl" (TLS, userspace). Each option is implemented, without meaning here
 * (a mechanism mimo does not have, such as SPDK's receive pipe or MSG_ZEROCOPY), or refused - the
 * table in docs/mimo_tgt.md says which and why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "mimo/jsonrpc.h"
#include "sock_opts.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS

/* Refuse a parameter that asks for what mimo does not do, naming it and saying why. */
static void refuse(struct mimo_jsonrpc_request *req, const char *param, const char *why)
{
	mimo_jsonrpc_send_error(req, INVALID, "%s: parameter \"%s\": %s",
				mimo_jsonrpc_request_method(req), param, why);
}

static bool impl_of(struct mimo_jsonrpc_request *req, const char *name, enum mimo_sock_impl *impl)
{
	if (mimo_sock_impl_from_name(name, impl) == 0)
		return true;
	mimo_jsonrpc_send_error(req, INVALID,
				"%s: no socket implementation \"%s\" in mimo: its NVMe/TCP sockets "
				"are \"posix\" (plain TCP, epoll), \"uring\" (plain TCP, io_uring) "
				"and \"ssl\" (TLS 1.3, in userspace)",
				mimo_jsonrpc_request_method(req), name);
	return false;
}

/* --- sock_impl_set_options ---------------------------------------------------------------- */

struct impl_set {
	char *impl_name;
	uint32_t recv_buf_size, send_buf_size;
	bool enable_quickack;
	uint32_t enable_placement_id;
	uint32_t tls_version;
	bool enable_ktls;
	const json_t *psk_key, *psk_identity;
	bool ignored_bool;
	uint32_t ignored_u32;
};

#define IS struct impl_set
static const struct mimo_json_decoder impl_set_decoders[] = {
	{ "impl_name", offsetof(IS, impl_name), mimo_json_decode_string, false },
	{ "recv_buf_size", offsetof(IS, recv_buf_size), mimo_json_decode_uint32, true },
	{ "send_buf_size", offsetof(IS, send_buf_size), mimo_json_decode_uint32, true },
	{ "enable_quickack", offsetof(IS, enable_quickack), mimo_json_decode_bool, true },
	{ "enable_placement_id", offsetof(IS, enable_placement_id), mimo_json_decode_uint32, true },
	{ "tls_version", offsetof(IS, tls_version), mimo_json_decode_uint32, true },
	{ "enable_ktls", offsetof(IS, enable_ktls), mimo_json_decode_bool, true },
	/* No meaning in mimo, each with its type checked (docs/mimo_tgt.md says why). */
	{ "enable_recv_pipe", offsetof(IS, ignored_bool), mimo_json_decode_bool, true },
	{ "enable_zerocopy_send_server", offsetof(IS, ignored_bool), mimo_json_decode_bool, true },
	{ "enable_zerocopy_send_client", offsetof(IS, ignored_bool), mimo_json_decode_bool, true },
	{ "zerocopy_threshold", offsetof(IS, ignored_u32), mimo_json_decode_uint32, true },
	/* Older SPDK's socket-wide PSK: refused whatever its value (below). */
	{ "psk_key", offsetof(IS, psk_key), mimo_json_decode_json, true },
	{ "psk_identity", offsetof(IS, psk_identity), mimo_json_decode_json, true },
};
#undef IS

static void rpc_sock_impl_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct impl_set p = { 0 };
	struct mimo_sock_opts o;
	enum mimo_sock_impl impl;

	if (!mimo_rpc_decode(req, params, impl_set_decoders, MIMO_COUNTOF(impl_set_decoders), &p))
		return;
	if (!impl_of(req, p.impl_name, &impl))
		goto out;
	/* Security options first: whatever else the call asks, these are never let through. */
	if (p.psk_key != NULL || p.psk_identity != NULL) {
		refuse(req, p.psk_key != NULL ? "psk_key" : "psk_identity",
		       "a PSK for every socket (older SPDK's option, since removed) is not "
		       "supported: each host has its own PSK, a keyring name given to "
		       "nvmf_subsystem_add_host --psk (or bdev_nvme_attach_controller --psk)");
		goto out;
	}
	if (p.tls_version != 0 && p.tls_version != 13) {
		refuse(req, "tls_version",
		       "must be 0 or 13: mimo's secure channel is TLS 1.3 only, as NVMe/TCP "
		       "requires (TLS 1.2 and older are refused)");
		goto out;
	}
	if (p.enable_ktls) {
		refuse(req, "enable_ktls",
		       "must be false: mimo has no kernel TLS (its TLS runs in userspace, "
		       "OpenSSL)");
		goto out;
	}
	if (p.enable_placement_id != 0) {
		refuse(req, "enable_placement_id",
		       "must be 0: mimo does not place connections by NAPI ID or CPU (it spreads "
		       "I/O queues round-robin over its reactors)");
		goto out;
	}
	/* Only what was given changes; the rest keeps its value, as in SPDK. */
	mimo_sock_get_opts(impl, &o);
	if (json_object_get(params, "recv_buf_size") != NULL)
		o.recv_buf_size = p.recv_buf_size;
	if (json_object_get(params, "send_buf_size") != NULL)
		o.send_buf_size = p.send_buf_size;
	if (json_object_get(params, "enable_quickack") != NULL)
		o.enable_quickack = p.enable_quickack;
	mimo_sock_set_opts(impl, &o);
	mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(impl_set_decoders, MIMO_COUNTOF(impl_set_decoders), &p);
}

/* --- sock_impl_get_options, sock_set_default_impl, sock_get_default_impl ------------------- */

struct impl_name {
	char *impl_name;
};

static const struct mimo_json_decoder impl_name_decoders[] = {
	{ "impl_name", offsetof(struct impl_name, impl_name), mimo_json_decode_string, false },
};

/* What mimo does, in SPDK's shape: the mechanisms it lacks show as off. */
static void rpc_sock_impl_get_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct impl_name p = { 0 };
	struct mimo_sock_opts o;
	enum mimo_sock_impl impl;

	if (!mimo_rpc_decode(req, params, impl_name_decoders, MIMO_COUNTOF(impl_name_decoders), &p))
		return;
	if (impl_of(req, p.impl_name, &impl)) {
		mimo_sock_get_opts(impl, &o);
		mimo_jsonrpc_send_result(
			req,
			json_pack("{s:I, s:I, s:b, s:b, s:i, s:b, s:b, s:i, s:i, s:b}",
				  "recv_buf_size", (json_int_t)o.recv_buf_size, "send_buf_size",
				  (json_int_t)o.send_buf_size, "enable_recv_pipe", 0,
				  "enable_quickack", o.enable_quickack, "enable_placement_id", 0,
				  "enable_zerocopy_send_server", 0, "enable_zerocopy_send_client",
				  0, "zerocopy_threshold", 0, "tls_version",
				  impl == MIMO_SOCK_IMPL_SSL ? 13 : 0, "enable_ktls", 0));
	}
	free(p.impl_name);
}

static void rpc_sock_set_default_impl(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct impl_name p = { 0 };
	enum mimo_sock_impl impl;

	if (!mimo_rpc_decode(req, params, impl_name_decoders, MIMO_COUNTOF(impl_name_decoders), &p))
		return;
	if (impl_of(req, p.impl_name, &impl)) {
		char why[160];

		/* A socket is TLS because its listener or its host asks for it, never because of
		 * a process-wide default that would also turn every plain listener into TLS. */
		if (impl == MIMO_SOCK_IMPL_SSL) {
			refuse(req, "impl_name",
			       "the default is \"posix\" or \"uring\": a listener is TLS when it "
			       "asks (nvmf_subsystem_add_listener --secure-channel), a host's "
			       "connections when it has a PSK");
		} else if (impl == MIMO_SOCK_IMPL_URING &&
			   mimo_sock_uring_probe(why, sizeof(why)) != 0) {
			/* Refused, not accepted and served by epoll: the caller learns why. */
			mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
						"sock_set_default_impl: io_uring is unusable here: "
						"%s; the default stays \"%s\" (epoll)",
						why,
						mimo_sock_impl_name(mimo_sock_get_default_impl()));
		} else {
			mimo_sock_set_default_impl(impl);
			mimo_jsonrpc_send_bool(req, true);
		}
	}
	free(p.impl_name);
}

static void rpc_sock_get_default_impl(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (mimo_rpc_no_params(req, params))
		mimo_jsonrpc_send_result(
			req, json_pack("{s:s}", "impl_name",
				       mimo_sock_impl_name(mimo_sock_get_default_impl())));
}

/* save_config's "sock" subsystem: the implementations whose options were changed. */
json_t *app_sock_config(void)
{
	json_t *arr = json_array();

	/* First, as SPDK saves it: the listeners replayed later follow it. */
	if (mimo_sock_get_default_impl() != MIMO_SOCK_IMPL_POSIX)
		json_array_append_new(arr,
				      json_pack("{s:s, s:{s:s}}", "method", "sock_set_default_impl",
						"params", "impl_name",
						mimo_sock_impl_name(mimo_sock_get_default_impl())));
	for (int i = 0; i < MIMO_SOCK_IMPL_COUNT; i++) {
		struct mimo_sock_opts o;

		if (!mimo_sock_opts_changed((enum mimo_sock_impl)i))
			continue;
		mimo_sock_get_opts((enum mimo_sock_impl)i, &o);
		json_array_append_new(arr, json_pack("{s:s, s:{s:s, s:I, s:I, s:b}}", "method",
						     "sock_impl_set_options", "params", "impl_name",
						     mimo_sock_impl_name((enum mimo_sock_impl)i),
						     "recv_buf_size", (json_int_t)o.recv_buf_size,
						     "send_buf_size", (json_int_t)o.send_buf_size,
						     "enable_quickack", o.enable_quickack));
	}
	return arr;
}

/* SPDK's state masks: the setters only before framework_start_init. */
static const struct mimo_rpc_method g_rpcs[] = {
	{ "sock_impl_set_options", rpc_sock_impl_set_options, MIMO_RPC_STARTUP },
	{ "sock_impl_get_options", rpc_sock_impl_get_options, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	/* Also at run time (SPDK: startup only): it decides for listeners opened afterwards. */
	{ "sock_set_default_impl", rpc_sock_set_default_impl, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "sock_get_default_impl", rpc_sock_get_default_impl, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
};

void app_sock_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
