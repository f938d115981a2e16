/*
 * What the bdev layer gives the RPC files of the bdev modules (module/bdev/<name>/): the
 * create and delete forms every module shares, the "uuid" parameter, and SPDK's geometry,
 * metadata and protection parameters. Implemented in bdev_rpc.c.
 *
 * In-tree only, like the other headers a library shares through its meson dependency
 * (keyring.h, nvme_internal.h): no program outside the tree builds a bdev module, so these
 * are not part of include/mimo.
 */
#ifndef MIMO_BDEV_RPC_H
#define MIMO_BDEV_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/bdev_module.h"
#include "mimo/jsonrpc.h"

/* A module's delete RPC: params {name*}; answers true or the error. */
void bdev_rpc_delete_params(struct mimo_jsonrpc_request *req, const json_t *params,
			    const struct mimo_bdev_module *module);
/* Delete name if it belongs to module (any module when NULL); answers req with true or the
 * error once done. */
void bdev_rpc_delete(struct mimo_jsonrpc_request *req, const char *name,
		     const struct mimo_bdev_module *module);
/* Parse an optional "uuid" parameter; answers -32602 and returns false when malformed. */
bool bdev_rpc_uuid(struct mimo_jsonrpc_request *req, const char *text, uint8_t out[16],
		   const uint8_t **uuid);
/* SPDK's metadata and protection parameters, accepted at their defaults only (mimo keeps
 * no metadata); answers -32602 naming the first one set otherwise. */
struct bdev_rpc_md_params {
	uint32_t physical_block_size;
	uint32_t optimal_io_boundary;
	uint32_t md_size;
	bool md_interleave;
	int32_t dif_type;
	bool dif_is_head_of_md;
	int32_t dif_pi_format;
	int32_t numa_id;
};
/* Decoder entries for struct bdev_rpc_md_params md inside a parameter struct of type. */
#define MD_DECODERS(type)                                                                         \
	{ "physical_block_size", offsetof(type, md.physical_block_size), mimo_json_decode_uint32, \
	  true },                                                                                 \
		{ "optimal_io_boundary", offsetof(type, md.optimal_io_boundary),                  \
		  mimo_json_decode_uint32, true },                                                \
		{ "md_size", offsetof(type, md.md_size), mimo_json_decode_uint32, true },         \
		{ "md_interleave", offsetof(type, md.md_interleave), mimo_json_decode_bool,       \
		  true },                                                                         \
		{ "dif_type", offsetof(type, md.dif_type), mimo_json_decode_int32, true },        \
		{ "dif_is_head_of_md", offsetof(type, md.dif_is_head_of_md),                      \
		  mimo_json_decode_bool, true },                                                  \
		{ "dif_pi_format", offsetof(type, md.dif_pi_format), mimo_json_decode_int32,      \
		  true },                                                                         \
	{                                                                                         \
		"numa_id", offsetof(type, md.numa_id), mimo_json_decode_int32, true               \
	}

bool bdev_rpc_md_defaults(struct mimo_jsonrpc_request *req, const struct bdev_rpc_md_params *md,
			  uint32_t block_size);
/* A create RPC's size checks (block size, at least one block) and SPDK extras (md may be
 * NULL); answers -32602 naming the parameter and returns false when bad. */
bool bdev_rpc_check_geometry(struct mimo_jsonrpc_request *req, uint32_t block_size,
			     uint64_t num_blocks, const struct bdev_rpc_md_params *md);

/* The parameters of a create RPC for a bdev that is only a geometry (malloc, null). */
struct bdev_rpc_create_params {
	char *name;
	char *uuid;
	uint64_t num_blocks;
	uint32_t block_size;
	double total_size; /* legacy: MiB */
	struct bdev_rpc_md_params md;
};
typedef int (*bdev_rpc_create_fn)(const char *name, uint64_t num_blocks, uint32_t block_size,
				  const uint8_t *uuid, struct mimo_bdev **out);
/* Check p, create the bdev with fn and answer req with its name or the error. The legacy
 * form's total_size (MiB) stands for num_blocks when that is not given. */
void bdev_rpc_create(struct mimo_jsonrpc_request *req, struct bdev_rpc_create_params *p,
		     bdev_rpc_create_fn fn);

/* bdev_raid_set_options' values (bdev_opts_rpc.c), for the raid module's rebuild: the window
 * it copies at a time in KiB (SPDK's default 1024), its bandwidth in MiB/s (0: no limit). */
void bdev_raid_process_opts(uint32_t *window_kb, uint32_t *max_mb_sec);

#endif
