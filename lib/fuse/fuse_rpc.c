/*
 * fuse_export_create, fuse_export_delete, fuse_get_exports, fuse_export_verify_cache.
 *
 * Mounting, unmounting and verifying block and wait for bdev I/O on reactors, so those
 * handlers hand the work to a short-lived thread, which answers the request itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_internal.h"
#include "log.h"
#include "mimo/jsonrpc.h"

struct create_params {
	char *mountpoint;
	const json_t *bdevs;
	bool writable;
	char *coherence;
	bool allow_other;
};

static const struct mimo_json_decoder create_decoders[] = {
	{ "mountpoint", offsetof(struct create_params, mountpoint), mimo_json_decode_string,
	  false },
	{ "bdevs", offsetof(struct create_params, bdevs), mimo_json_decode_json, true },
	{ "writable", offsetof(struct create_params, writable), mimo_json_decode_bool, true },
	{ "coherence", offsetof(struct create_params, coherence), mimo_json_decode_string, true },
	{ "allow_other", offsetof(struct create_params, allow_other), mimo_json_decode_bool, true },
};

struct job {
	struct mimo_jsonrpc_request *req;
	char *mountpoint;
	char *bdev; /* verify */
	char **bdevs;
	size_t num_bdevs;
	bool has_bdevs, writable, allow_other;
	enum mimo_fuse_coherence coherence;
};

static void job_free(struct job *j)
{
	for (size_t i = 0; i < j->num_bdevs; i++)
		free(j->bdevs[i]);
	free(j->bdevs);
	free(j->mountpoint);
	free(j->bdev);
	free(j);
}

static void run_job(struct mimo_jsonrpc_request *req, struct job *j, void *(*fn)(void *))
{
	pthread_attr_t a;
	pthread_t t;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &a, fn, j);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		job_free(j);
		mimo_jsonrpc_send_errno(req, -rc);
	}
}

static void *create_job(void *arg)
{
	struct job *j = arg;
	struct mimo_fuse_export_opts o = {
		.mountpoint = j->mountpoint,
		.bdevs = j->has_bdevs ? (const char *const *)j->bdevs : NULL,
		.num_bdevs = j->num_bdevs,
		.writable = j->writable,
		.coherence = j->coherence,
		.allow_other = j->allow_other,
	};
	char err[512] = "";
	int rc = mimo_fuse_export_create(&o, err, sizeof(err));

	if (rc == 0)
		mimo_jsonrpc_send_bool(j->req, true);
	else
		mimo_jsonrpc_send_error(j->req, rc, "%s", err[0] ? err : strerror(-rc));
	job_free(j);
	return NULL;
}

static void rpc_fuse_export_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct create_params p = { .writable = true };
	struct job *j;
	size_t i;
	json_t *v;

	if (!mimo_rpc_decode(req, params, create_decoders, MIMO_COUNTOF(create_decoders), &p))
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		goto out;
	}
	j->req = req;
	j->writable = p.writable;
	j->allow_other = p.allow_other;
	if (p.coherence != NULL && mimo_fuse_coherence_parse(p.coherence, &j->coherence) != 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"coherence must be \"store\", \"inval\" or \"none\"");
		job_free(j);
		goto out;
	}
	if (p.bdevs != NULL && !json_is_null(p.bdevs)) {
		if (!json_is_array(p.bdevs)) {
			mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
						"bdevs must be an array of bdev names");
			job_free(j);
			goto out;
		}
		j->has_bdevs = true;
		j->bdevs = calloc(json_array_size(p.bdevs) + 1, sizeof(char *));
		json_array_foreach(p.bdevs, i, v)
		{
			const char *s = json_string_value(v);

			/* Bdev names, not paths: "lvs/lvol" names an lvol (docs/fuse.md). */
			if (s == NULL || s[0] == '\0') {
				mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
							"bdevs must be an array of bdev names");
				job_free(j);
				goto out;
			}
			if (j->bdevs != NULL)
				j->bdevs[j->num_bdevs++] = strdup(s);
		}
	}
	j->mountpoint = strdup(p.mountpoint);
	run_job(req, j, create_job);
out:
	mimo_json_decode_free(create_decoders, MIMO_COUNTOF(create_decoders), &p);
}

struct mp_params {
	char *mountpoint;
	char *bdev;
};

static const struct mimo_json_decoder delete_decoders[] = {
	{ "mountpoint", offsetof(struct mp_params, mountpoint), mimo_json_decode_string, false },
};

static void *delete_job(void *arg)
{
	struct job *j = arg;
	int rc = mimo_fuse_export_delete(j->mountpoint);

	if (rc == 0)
		mimo_jsonrpc_send_bool(j->req, true);
	else
		mimo_jsonrpc_send_error(j->req, rc, "no export on %s", j->mountpoint);
	job_free(j);
	return NULL;
}

static void rpc_fuse_export_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct mp_params p = { 0 };
	struct job *j;

	if (!mimo_rpc_decode(req, params, delete_decoders, MIMO_COUNTOF(delete_decoders), &p))
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->mountpoint = strdup(p.mountpoint)) == NULL) {
		free(j);
		mimo_jsonrpc_send_errno(req, -ENOMEM);
	} else {
		j->req = req;
		run_job(req, j, delete_job);
	}
	mimo_json_decode_free(delete_decoders, MIMO_COUNTOF(delete_decoders), &p);
}

static void rpc_fuse_get_exports(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_result(req, mimo_fuse_exports_json());
}

static const struct mimo_json_decoder verify_decoders[] = {
	{ "mountpoint", offsetof(struct mp_params, mountpoint), mimo_json_decode_string, false },
	{ "bdev", offsetof(struct mp_params, bdev), mimo_json_decode_string, false },
};

static void *verify_job(void *arg)
{
	struct job *j = arg;
	uint64_t checked = 0, mismatched = 0;
	int rc = mimo_fuse_export_verify_cache(j->mountpoint, j->bdev, &checked, &mismatched);

	if (rc == 0)
		mimo_jsonrpc_send_result(j->req, json_pack("{s:I, s:I}", "pages_checked",
							   (json_int_t)checked, "pages_mismatched",
							   (json_int_t)mismatched));
	else if (rc == -ENOENT)
		mimo_jsonrpc_send_error(j->req, rc, "no bdev %s in an export on %s", j->bdev,
					j->mountpoint);
	else
		mimo_jsonrpc_send_errno(j->req, rc);
	job_free(j);
	return NULL;
}

static void rpc_fuse_export_verify_cache(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct mp_params p = { 0 };
	struct job *j;

	if (!mimo_rpc_decode(req, params, verify_decoders, MIMO_COUNTOF(verify_decoders), &p))
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->mountpoint = strdup(p.mountpoint)) == NULL ||
	    (j->bdev = strdup(p.bdev)) == NULL) {
		if (j != NULL)
			free(j->mountpoint);
		free(j);
		mimo_jsonrpc_send_errno(req, -ENOMEM);
	} else {
		j->req = req;
		run_job(req, j, verify_job);
	}
	mimo_json_decode_free(verify_decoders, MIMO_COUNTOF(verify_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "fuse_export_create", rpc_fuse_export_create, MIMO_RPC_RUNTIME },
	{ "fuse_export_delete", rpc_fuse_export_delete, MIMO_RPC_RUNTIME },
	{ "fuse_get_exports", rpc_fuse_get_exports, MIMO_RPC_RUNTIME },
	{ "fuse_export_verify_cache", rpc_fuse_export_verify_cache, MIMO_RPC_RUNTIME },
};

void fuse_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
