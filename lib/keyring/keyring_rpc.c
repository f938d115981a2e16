/* SPDK's keyring RPCs: keyring_file_add_key, keyring_file_remove_key, keyring_get_keys. Errors
 * carry a negative errno as their code, as SPDK's do, and a message saying what is wrong. */
#include <errno.h>
#include <string.h>

#include "compiler.h"
#include "keyring.h"
#include "mimo/jsonrpc.h"

struct add_params {
	char *name;
	char *path;
};

static const struct mimo_json_decoder add_decoders[] = {
	{ "name", offsetof(struct add_params, name), mimo_json_decode_string, false },
	{ "path", offsetof(struct add_params, path), mimo_json_decode_string, false },
};

static void rpc_keyring_file_add_key(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct add_params p = { 0 };
	char err[512];
	int rc;

	if (!mimo_rpc_decode(req, params, add_decoders, MIMO_COUNTOF(add_decoders), &p))
		return;
	rc = mimo_keyring_file_add_key(p.name, p.path, err, sizeof(err));
	if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "%s", err);
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(add_decoders, MIMO_COUNTOF(add_decoders), &p);
}

struct remove_params {
	char *name;
};

static const struct mimo_json_decoder remove_decoders[] = {
	{ "name", offsetof(struct remove_params, name), mimo_json_decode_string, false },
};

static void rpc_keyring_file_remove_key(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct remove_params p = { 0 };

	if (!mimo_rpc_decode(req, params, remove_decoders, MIMO_COUNTOF(remove_decoders), &p))
		return;
	if (mimo_keyring_file_remove_key(p.name) != 0)
		mimo_jsonrpc_send_error(req, -ENOENT, "no key named '%s'", p.name);
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(remove_decoders, MIMO_COUNTOF(remove_decoders), &p);
}

static void rpc_keyring_get_keys(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (mimo_rpc_no_params(req, params))
		mimo_jsonrpc_send_result(req, mimo_keyring_keys_json());
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "keyring_file_add_key", rpc_keyring_file_add_key, MIMO_RPC_RUNTIME },
	{ "keyring_file_remove_key", rpc_keyring_file_remove_key, MIMO_RPC_RUNTIME },
	{ "keyring_get_keys", rpc_keyring_get_keys, MIMO_RPC_RUNTIME },
};

MIMO_EXPORT void mimo_register_keyring(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
