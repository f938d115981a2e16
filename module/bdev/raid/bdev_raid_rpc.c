/* bdev_raid_create / _delete / _get_bdevs / _add_base_bdev / _remove_base_bdev, with SPDK's
 * parameters, answers and errors. (bdev_raid_set_options is lib/bdev's, bdev_opts_rpc.c.) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_raid.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

struct raid_create {
	char *name;
	uint32_t strip_size_kb;
	char *raid_level;
	const json_t *base_bdevs;
	char *uuid;
	bool superblock;
};

static const struct mimo_json_decoder create_decoders[] = {
	{ "name", offsetof(struct raid_create, name), mimo_json_decode_string, false },
	{ "strip_size_kb", offsetof(struct raid_create, strip_size_kb), mimo_json_decode_uint32,
	  true },
	{ "raid_level", offsetof(struct raid_create, raid_level), mimo_json_decode_string, false },
	{ "base_bdevs", offsetof(struct raid_create, base_bdevs), mimo_json_decode_json, false },
	{ "uuid", offsetof(struct raid_create, uuid), mimo_json_decode_string, true },
	{ "superblock", offsetof(struct raid_create, superblock), mimo_json_decode_bool, true },
};

/* SPDK's names, and its short forms "0" and "1". -1: raid5f (not in mimo); -2: unknown. */
static int level_of(const char *s)
{
	if (strcmp(s, "raid0") == 0 || strcmp(s, "0") == 0)
		return RAID_LEVEL_0;
	if (strcmp(s, "raid1") == 0 || strcmp(s, "1") == 0)
		return RAID_LEVEL_1;
	if (strcmp(s, "concat") == 0)
		return RAID_LEVEL_CONCAT;
	if (strcmp(s, "raid5f") == 0 || strcmp(s, "5f") == 0)
		return -1;
	return -2;
}

/* The base bdev names: an array of non-empty strings (or one string of names separated by
 * spaces, the form SPDK's older clients send). NULL after answering when malformed. */
static char **base_names(struct mimo_jsonrpc_request *req, const json_t *v, uint32_t *n)
{
	char **names = NULL;
	size_t i;
	json_t *e;

	*n = 0;
	if (json_is_string(v)) {
		char *copy = strdup(json_string_value(v)), *save = NULL;

		for (char *t = copy != NULL ? strtok_r(copy, " ", &save) : NULL; t != NULL;
		     t = strtok_r(NULL, " ", &save)) {
			char **more = realloc(names, (*n + 1) * sizeof(*names));

			if (more == NULL)
				break;
			names = more;
			names[(*n)++] = strdup(t);
		}
		free(copy);
	} else if (json_is_array(v) && json_array_size(v) <= 255) {
		names = calloc(json_array_size(v) + 1, sizeof(*names));
		json_array_foreach(v, i, e)
		{
			if (names == NULL || !json_is_string(e) || json_string_length(e) == 0)
				break;
			names[(*n)++] = strdup(json_string_value(e));
		}
		if (names != NULL && *n != json_array_size(v)) {
			for (uint32_t k = 0; k < *n; k++)
				free(names[k]);
			free(names);
			mimo_jsonrpc_send_error(req, -EINVAL,
						"The base bdev name cannot be empty: Invalid "
						"argument");
			return NULL;
		}
	}
	for (uint32_t k = 0; k < *n; k++) {
		if (names[k] == NULL) {
			*n = 0;
			break;
		}
	}
	if (*n == 0) {
		free(names);
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_raid_create: parameter \"base_bdevs\" must be a "
					"non-empty array of bdev names");
		return NULL;
	}
	return names;
}

/* What is wrong with the raid's shape, before any base is looked at (NULL: nothing). */
static const char *shape_error(int level, uint32_t strip_size_kb, uint32_t n)
{
	if (n > RAID_MAX_BASES)
		return "mimo takes at most 64 base bdevs";
	if (level == RAID_LEVEL_1 && n < 2)
		return "raid1 needs at least 2 base bdevs";
	if (level == RAID_LEVEL_1 && strip_size_kb != 0)
		return "strip size is not supported by raid1";
	if (level != RAID_LEVEL_1 && (strip_size_kb == 0 || (strip_size_kb & (strip_size_kb - 1))))
		return "strip_size_kb must be a power of 2";
	return NULL;
}

static void create_failed(struct mimo_jsonrpc_request *req, const char *name, int rc,
			  const char *bad)
{
	if (rc == -ENODEV && bad != NULL)
		/* SPDK would wait for such a bdev to appear (the raid "configuring"); mimo
		 * examines no new bdevs. */
		mimo_jsonrpc_send_error(req, -ENODEV,
					"Failed to create RAID bdev %s: No such device: base bdev "
					"%s does not exist (mimo builds a raid only from existing "
					"bdevs)",
					name, bad);
	else if (rc == -EPERM && bad != NULL)
		mimo_jsonrpc_send_error(req, -EPERM,
					"Failed to create RAID bdev %s: Operation not permitted: "
					"base bdev %s is already claimed",
					name, bad);
	else if (rc == -EINVAL && bad != NULL)
		mimo_jsonrpc_send_error(
			req, -EINVAL,
			"Failed to create RAID bdev %s: Invalid argument: base bdev "
			"%s is named twice or its block size differs",
			name, bad);
	else
		mimo_jsonrpc_send_error(req, rc, "Failed to create RAID bdev %s: %s", name,
					strerror(-rc));
}

static void rpc_bdev_raid_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct raid_create p = { 0 };
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	const char *bad = NULL;
	char **names;
	uint32_t n;
	int level, rc;

	if (!mimo_rpc_decode(req, params, create_decoders, MIMO_COUNTOF(create_decoders), &p))
		return;
	level = level_of(p.raid_level);
	if (p.superblock) {
		mimo_jsonrpc_send_error(
			req, -EOPNOTSUPP,
			"bdev_raid_create: \"superblock\": mimo writes no raid "
			"superblock to the base bdevs; the raid's configuration is "
			"kept by save_config instead (create it without superblock)");
	} else if (level == -1) {
		mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
					"bdev_raid_create: raid level raid5f is not supported by "
					"mimo (raid0, raid1 and concat are)");
	} else if (level < 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"bdev_raid_create: parameter \"raid_level\" must be one of "
					"raid0, 0, raid1, 1, concat");
	} else if (bdev_rpc_uuid(req, p.uuid, uuid_buf, &uuid) &&
		   (names = base_names(req, p.base_bdevs, &n)) != NULL) {
		const char *why = shape_error(level, p.strip_size_kb, n);

		rc = why != NULL ? -EINVAL
				 : bdev_raid_create(p.name, p.strip_size_kb, level, names, n, uuid,
						    &bad);
		if (why != NULL)
			mimo_jsonrpc_send_error(
				req, -EINVAL, "Failed to create RAID bdev %s: Invalid argument: %s",
				p.name, why);
		else if (rc != 0)
			create_failed(req, p.name, rc, bad);
		else
			mimo_jsonrpc_send_bool(req, true);
		for (uint32_t k = 0; k < n; k++)
			free(names[k]);
		free(names);
	}
	mimo_json_decode_free(create_decoders, MIMO_COUNTOF(create_decoders), &p);
}

struct raid_get {
	char *category;
};

static const struct mimo_json_decoder get_decoders[] = {
	{ "category", offsetof(struct raid_get, category), mimo_json_decode_string, false },
};

static void rpc_bdev_raid_get_bdevs(struct mimo_jsonrpc_request *req, const json_t *params)
{
	static const char *const names[] = { "online", "configuring", "offline", "all" };
	struct raid_get p = { 0 };
	int state = -2;

	if (!mimo_rpc_decode(req, params, get_decoders, MIMO_COUNTOF(get_decoders), &p))
		return;
	for (int i = 0; i < 4; i++) {
		if (strcmp(p.category, names[i]) == 0)
			state = i == 3 ? -1 : i;
	}
	if (state == -2)
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
			"bdev_raid_get_bdevs: parameter \"category\" must be one of "
			"all, online, configuring, offline");
	else
		mimo_jsonrpc_send_result(req, bdev_raid_list_json(state));
	mimo_json_decode_free(get_decoders, MIMO_COUNTOF(get_decoders), &p);
}

struct raid_delete {
	char *name;
	bool clear_sb;
};

static const struct mimo_json_decoder delete_decoders[] = {
	{ "name", offsetof(struct raid_delete, name), mimo_json_decode_string, false },
	/* Clearing the superblock: mimo writes none, so there is never one to clear. */
	{ "clear_sb", offsetof(struct raid_delete, clear_sb), mimo_json_decode_bool, true },
};

static void rpc_bdev_raid_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct raid_delete p = { 0 };
	struct mimo_bdev *bdev;

	if (!mimo_rpc_decode(req, params, delete_decoders, MIMO_COUNTOF(delete_decoders), &p))
		return;
	bdev = mimo_bdev_get_by_name(p.name);
	if (bdev != NULL && bdev->module == &g_raid_module)
		bdev_rpc_delete(req, p.name, &g_raid_module);
	else if (bdev_raid_delete_offline(p.name) == 0)
		mimo_jsonrpc_send_bool(req, true);
	else
		mimo_jsonrpc_send_error(req, -ENODEV, "raid bdev %s is not found in config",
					p.name);
	mimo_json_decode_free(delete_decoders, MIMO_COUNTOF(delete_decoders), &p);
}

struct raid_add {
	char *raid_bdev;
	char *base_bdev;
};

static const struct mimo_json_decoder add_decoders[] = {
	{ "raid_bdev", offsetof(struct raid_add, raid_bdev), mimo_json_decode_string, false },
	{ "base_bdev", offsetof(struct raid_add, base_bdev), mimo_json_decode_string, false },
};

static void rpc_bdev_raid_add_base_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct raid_add p = { 0 };
	enum raid_state state;
	int rc;

	if (!mimo_rpc_decode(req, params, add_decoders, MIMO_COUNTOF(add_decoders), &p))
		return;
	rc = bdev_raid_free_slot(p.raid_bdev, &state);
	if (rc == -ENODEV)
		mimo_jsonrpc_send_error(req, -ENODEV, "Failed to find raid bdev: %s", p.raid_bdev);
	else if (mimo_bdev_get_by_name(p.base_bdev) == NULL)
		mimo_jsonrpc_send_error(req, -ENODEV,
					"Failed to add base bdev to RAID bdev: No such device: %s",
					p.base_bdev);
	else if (rc == -ENOSPC)
		mimo_jsonrpc_send_error(
			req, -EINVAL,
			"Failed to add base bdev to RAID bdev: %s has no empty base "
			"bdev slot",
			p.raid_bdev);
	else if (state == RAID_STATE_OFFLINE)
		mimo_jsonrpc_send_error(req, -EINVAL,
					"Failed to add base bdev to RAID bdev: %s is offline (it "
					"lost a member it cannot do without): delete it and create "
					"it again",
					p.raid_bdev);
	else if ((rc = bdev_raid_add_base(p.raid_bdev, p.base_bdev)) == -EBUSY)
		mimo_jsonrpc_send_error(req, -EBUSY,
					"Failed to add base bdev to RAID bdev: %s is already being "
					"rebuilt onto another member",
					p.raid_bdev);
	else if (rc == -EINVAL)
		mimo_jsonrpc_send_error(req, -EINVAL,
					"Failed to add base bdev to RAID bdev: %s must have the "
					"raid's block size and at least its blocks",
					p.base_bdev);
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "Failed to add base bdev to RAID bdev: %s",
					strerror(-rc));
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(add_decoders, MIMO_COUNTOF(add_decoders), &p);
}

struct raid_remove {
	char *name;
};

static const struct mimo_json_decoder remove_decoders[] = {
	{ "name", offsetof(struct raid_remove, name), mimo_json_decode_string, false },
};

static void remove_done(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "Failed to remove base bdev from raid bdev");
	else
		mimo_jsonrpc_send_bool(req, true);
}

static void rpc_bdev_raid_remove_base_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct raid_remove p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, remove_decoders, MIMO_COUNTOF(remove_decoders), &p))
		return;
	rc = bdev_raid_remove_base(p.name, remove_done, req);
	if (rc == -ENODEV)
		mimo_jsonrpc_send_error(req, -ENODEV, "base bdev %s is not a member of any raid",
					p.name);
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "Failed to remove base bdev from raid bdev");
	mimo_json_decode_free(remove_decoders, MIMO_COUNTOF(remove_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_raid_get_bdevs", rpc_bdev_raid_get_bdevs, MIMO_RPC_RUNTIME },
	{ "bdev_raid_create", rpc_bdev_raid_create, MIMO_RPC_RUNTIME },
	{ "bdev_raid_delete", rpc_bdev_raid_delete, MIMO_RPC_RUNTIME },
	{ "bdev_raid_add_base_bdev", rpc_bdev_raid_add_base_bdev, MIMO_RPC_RUNTIME },
	{ "bdev_raid_remove_base_bdev", rpc_bdev_raid_remove_base_bdev, MIMO_RPC_RUNTIME },
};

void bdev_raid_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
