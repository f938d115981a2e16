/*
 * SPDK's framework-wide options methods that its save_config always writes: iobuf_set_options,
 * accel_set_options, framework_set_scheduler. They size or tune parts of SPDK that mimo does
 * not have (a global I/O buffer pool, an acceleration framework, a scheduler that moves
 * threads between cores), so they are accepted with their parameters type-checked, and what
 * would ask for a behaviour - another scheduler, thread mappings - is refused. Each parameter
 * and the reason is in docs/mimo_tgt.md ("SPDK's options").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "mimo/jsonrpc.h"
#include "mimo/reactor.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS

/* Destination of the parameters that only get their type checked. */
struct unused {
	uint64_t u64;
	uint32_t u32;
	bool b;
};

/* iobuf: SPDK's global pool of I/O buffers shared by its bdev layer and transports. mimo
 * allocates each I/O's buffer (and the NVMe/TCP transport keeps its own pool, sized by
 * nvmf_create_transport's num_shared_buffers). */
static const struct mimo_json_decoder iobuf_decoders[] = {
	{ "small_pool_count", offsetof(struct unused, u64), mimo_json_decode_uint64, true },
	{ "large_pool_count", offsetof(struct unused, u64), mimo_json_decode_uint64, true },
	{ "small_bufsize", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "large_bufsize", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "enable_numa", offsetof(struct unused, b), mimo_json_decode_bool, true },
};

static void rpc_iobuf_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct unused p;

	if (mimo_rpc_decode(req, params, iobuf_decoders, MIMO_COUNTOF(iobuf_decoders), &p))
		mimo_jsonrpc_send_bool(req, true);
}

/* accel: SPDK's acceleration framework (offloaded copies, CRCs, crypto) and its per-channel
 * task, sequence and buffer caches. mimo computes digests inline (SSE4.2 CRC32C). */
static const struct mimo_json_decoder accel_decoders[] = {
	{ "small_cache_size", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "large_cache_size", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "task_count", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "sequence_count", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
	{ "buf_count", offsetof(struct unused, u32), mimo_json_decode_uint32, true },
};

static void rpc_accel_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct unused p;

	if (mimo_rpc_decode(req, params, accel_decoders, MIMO_COUNTOF(accel_decoders), &p))
		mimo_jsonrpc_send_bool(req, true);
}

/* --- framework_set_scheduler ------------------------------------------------------------- */

static uint64_t g_scheduler_period;   /* microseconds; 0 until framework_set_scheduler */
static uint64_t g_isolated_core_mask; /* scheduler_set_options */

struct scheduler {
	char *name;
	uint64_t period;
	uint32_t load_limit, core_limit, core_busy;
	char *mappings;
};

#define SCH struct scheduler
static const struct mimo_json_decoder scheduler_decoders[] = {
	{ "name", offsetof(SCH, name), mimo_json_decode_string, false },
	{ "period", offsetof(SCH, period), mimo_json_decode_uint64, true },
	{ "load_limit", offsetof(SCH, load_limit), mimo_json_decode_uint32, true },
	{ "core_limit", offsetof(SCH, core_limit), mimo_json_decode_uint32, true },
	{ "core_busy", offsetof(SCH, core_busy), mimo_json_decode_uint32, true },
	{ "mappings", offsetof(SCH, mappings), mimo_json_decode_string, true },
};
#undef SCH

/*
 * mimo's reactors are SPDK's "static" scheduler: one per core of -m, and what runs on one
 * stays there. So "static" is what mimo does (its period has nothing to schedule), and what
 * would move work - another scheduler, the dynamic scheduler's limits, thread mappings - is
 * refused.
 */
static void rpc_framework_set_scheduler(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct scheduler p = { 0 };
	const char *bad = NULL;

	if (!mimo_rpc_decode(req, params, scheduler_decoders, MIMO_COUNTOF(scheduler_decoders), &p))
		return;
	if (strcmp(p.name, "static") != 0)
		mimo_jsonrpc_send_error(
			req, INVALID,
			"framework_set_scheduler: scheduler \"%s\" is not supported: "
			"mimo's reactors keep their work on their core (SPDK's "
			"\"static\" scheduler, the only one mimo has)",
			p.name);
	else if ((p.load_limit != 0 && (bad = "load_limit")) ||
		 (p.core_limit != 0 && (bad = "core_limit")) ||
		 (p.core_busy != 0 && (bad = "core_busy")))
		mimo_jsonrpc_send_error(req, INVALID,
					"framework_set_scheduler: parameter \"%s\" is the dynamic "
					"scheduler's, which mimo does not have (leave it out)",
					bad);
	else if (p.mappings != NULL && p.mappings[0] != '\0')
		mimo_jsonrpc_send_error(
			req, INVALID,
			"framework_set_scheduler: parameter \"mappings\": mimo has no "
			"threads to place on cores (each reactor is one)");
	else {
		/* Kept only to be reported (framework_get_scheduler), as SPDK's: 1 s when first
		 * set without one. */
		if (p.period != 0)
			g_scheduler_period = p.period;
		else if (g_scheduler_period == 0)
			g_scheduler_period = 1000000;
		mimo_jsonrpc_send_bool(req, true);
	}
	mimo_json_decode_free(scheduler_decoders, MIMO_COUNTOF(scheduler_decoders), &p);
}

/* --- framework_get_scheduler, scheduler_set_options, framework_get_governor --------------- */

json_t *app_scheduler_config(void)
{
	/* As SPDK writes it (name, period); nothing while it was never set, since mimo's
	 * reactors are the static scheduler anyway. */
	if (g_scheduler_period == 0)
		return json_array();
	return json_pack("[{s:s, s:{s:s, s:I}}]", "method", "framework_set_scheduler", "params",
			 "name", "static", "period", (json_int_t)g_scheduler_period);
}

/* The first core of -m: where SPDK's scheduler would run, and mimo's RPC server does. */
static uint32_t main_core(void)
{
	return (uint32_t)__builtin_ctzll(g_app_opts.core_mask);
}

static void rpc_framework_get_scheduler(struct mimo_jsonrpc_request *req, const json_t *params)
{
	char mask[20];

	if (!mimo_rpc_no_params(req, params))
		return;
	snprintf(mask, sizeof(mask), "%" PRIx64, g_isolated_core_mask);
	/* No governor_name: mimo has no CPU frequency governor (SPDK leaves it out likewise). */
	mimo_jsonrpc_send_result(req, json_pack("{s:s, s:I, s:s, s:i}", "scheduler_name", "static",
						"scheduler_period", (json_int_t)g_scheduler_period,
						"isolated_core_mask", mask, "scheduling_core",
						(int)main_core()));
}

/* No governor: SPDK answers {} when it has none, and mimo never has one (it does not change
 * CPU frequencies). */
static void rpc_framework_get_governor(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_result(req, json_object());
}

struct sched_opts {
	uint32_t scheduling_core;
	char *isolated_core_mask;
};

static const struct mimo_json_decoder sched_opts_decoders[] = {
	{ "scheduling_core", offsetof(struct sched_opts, scheduling_core), mimo_json_decode_uint32,
	  true },
	{ "isolated_core_mask", offsetof(struct sched_opts, isolated_core_mask),
	  mimo_json_decode_string, true },
};

/*
 * SPDK's scheduling core is where its scheduler runs and idle threads gather; the isolated
 * cores are left out of its decisions. mimo's static placement makes no decisions: the
 * scheduling core can only be the main core (where mimo's RPC and configuration run), and an
 * isolated mask is kept to be reported, as SPDK's static scheduler keeps it.
 */
static void rpc_scheduler_set_options(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct sched_opts p = { .scheduling_core = main_core() };
	uint64_t mask = 0;

	if (!mimo_rpc_decode(req, params, sched_opts_decoders, MIMO_COUNTOF(sched_opts_decoders),
			     &p))
		return;
	if (p.isolated_core_mask != NULL && strcmp(p.isolated_core_mask, "0") != 0 &&
	    mimo_reactor_parse_cpumask(p.isolated_core_mask, &mask) != 0)
		mimo_jsonrpc_send_error(req, INVALID, "Invalid isolated core mask");
	else if (mask & (1ULL << (p.scheduling_core & 63)))
		mimo_jsonrpc_send_error(
			req, INVALID, "Scheduling core cannot be included in isolated core mask.");
	else if (p.scheduling_core != main_core())
		mimo_jsonrpc_send_error(
			req, INVALID,
			"scheduler_set_options: parameter \"scheduling_core\": mimo "
			"schedules nothing; only the main core (%u) is accepted",
			main_core());
	else {
		g_isolated_core_mask = mask;
		mimo_jsonrpc_send_bool(req, true);
	}
	free(p.isolated_core_mask);
}

/*
 * SPDK's iobuf is one pool of data buffers its bdev layer and transports take from, and its
 * statistics count the takes per module. mimo has no such pool - a bdev I/O's buffer belongs
 * to its caller, the NVMe/TCP transport keeps its own (num_shared_buffers) - so there are no
 * counts to report, and inventing zeros would say a pool was never used.
 */
static void rpc_iobuf_get_stats(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
				"iobuf_get_stats: mimo has no iobuf pool (bdev I/O buffers are the "
				"caller's; the NVMe/TCP transport sizes its own with "
				"num_shared_buffers): there are no statistics to report");
}

/* SPDK's state masks. */
static const struct mimo_rpc_method g_rpcs[] = {
	{ "iobuf_set_options", rpc_iobuf_set_options, MIMO_RPC_STARTUP },
	{ "accel_set_options", rpc_accel_set_options, MIMO_RPC_STARTUP },
	{ "framework_set_scheduler", rpc_framework_set_scheduler,
	  MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "framework_get_scheduler", rpc_framework_get_scheduler,
	  MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "framework_get_governor", rpc_framework_get_governor, MIMO_RPC_RUNTIME },
	{ "scheduler_set_options", rpc_scheduler_set_options, MIMO_RPC_STARTUP },
	{ "iobuf_get_stats", rpc_iobuf_get_stats, MIMO_RPC_RUNTIME },
};

void app_spdk_opts_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
