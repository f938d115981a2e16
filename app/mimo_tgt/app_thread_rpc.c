/*
 * SPDK's reactor and thread introspection: framework_get_reactors, thread_get_stats,
 * thread_get_pollers, thread_get_io_channels, thread_set_cpumask.
 *
 * SPDK runs lightweight threads (spdk_thread) on its reactors and can move them between
 * cores. mimo has no such layer: each reactor is one thread pinned to its core, and every
 * object created on it stays there. So mimo shows exactly one thread per reactor, named after
 * the reactor as its pthread is ("reactor_N", what `top -H` shows), id N + 1 (SPDK's thread
 * ids start at 1), cpumask the reactor's one core; its busy and idle ticks are the reactor's,
 * and its pollers are the reactor's. Every answer is gathered on each reactor in turn
 * (mimo_for_each_reactor), so the counters are read by the thread that writes them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"
#include "mimo/reactor.h"
#include "ticks.h"

struct gather {
	struct mimo_jsonrpc_request *req;
	json_t *result; /* the answer's object */
	json_t *list;	/* its array, appended to by each reactor */
	uint64_t now;
};

static void thread_name(const struct mimo_reactor *r, char *buf, size_t len)
{
	snprintf(buf, len, "reactor_%u", mimo_reactor_index(r));
}

static json_t *cpumask_of(const struct mimo_reactor *r)
{
	char mask[20];

	snprintf(mask, sizeof(mask), "%" PRIx64, (uint64_t)1 << mimo_reactor_core(r));
	return json_string(mask);
}

static json_int_t thread_id(const struct mimo_reactor *r)
{
	return (json_int_t)mimo_reactor_index(r) + 1;
}

static void gather_done(void *arg)
{
	struct gather *g = arg;

	mimo_jsonrpc_send_result(g->req, g->result);
	free(g);
}

/* Start a walk over the reactors: result {tick_rate, <extra>, list_name: []}. */
static void gather_start(struct mimo_jsonrpc_request *req, const char *list_name, bool with_pid,
			 mimo_msg_fn step)
{
	struct gather *g = calloc(1, sizeof(*g));
	int rc;

	if (g == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		return;
	}
	g->req = req;
	g->now = mimo_get_ticks();
	g->list = json_array();
	g->result = json_pack("{s:I}", "tick_rate", (json_int_t)mimo_get_ticks_hz());
	if (with_pid)
		json_object_set_new(g->result, "pid", json_integer(getpid()));
	json_object_set_new(g->result, list_name, g->list);
	rc = mimo_for_each_reactor(step, g, gather_done);
	if (rc != 0) {
		json_decref(g->result);
		free(g);
		mimo_jsonrpc_send_errno(req, rc);
	}
}

/* --- framework_get_reactors ---------------------------------------------------------------- */

static void reactor_step(void *arg)
{
	struct gather *g = arg;
	struct mimo_reactor *r = mimo_reactor_current();
	struct mimo_reactor_stats st;
	uint64_t usr = 0, sys = 0, irq = 0, start = mimo_reactor_start_ticks(r);
	char name[32];
	json_t *o;

	mimo_reactor_get_stats(r, &st);
	if (app_proc_stat_get(mimo_reactor_core(r), &usr, &sys, &irq) != 0)
		usr = sys = irq = 0; /* as SPDK: no /proc/stat, no figures */
	thread_name(r, name, sizeof(name));
	/* in_interrupt: mimo's reactors wait in epoll when idle unless --poll; SPDK's reactor in
	 * interrupt mode does the same, so that is what the flag means here. */
	o = json_pack(
		"{s:i, s:i, s:i, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:[{s:s, s:I, s:o, s:I}]}",
		"lcore", (int)mimo_reactor_core(r), "numa_id",
		app_core_numa_id(mimo_reactor_core(r)), "tid", mimo_reactor_tid(r), "busy",
		(json_int_t)st.busy_ticks, "idle", (json_int_t)st.idle_ticks, "in_interrupt",
		!mimo_reactor_poll_mode(r), "irq", (json_int_t)irq, "sys", (json_int_t)sys, "usr",
		(json_int_t)usr, "msgs", (json_int_t)st.msgs, "sleeps", (json_int_t)st.sleeps,
		"lw_threads", "name", name, "id", thread_id(r), "cpumask", cpumask_of(r), "elapsed",
		(json_int_t)(g->now > start ? g->now - start : 0));
	json_array_append_new(g->list, o);
}

static void rpc_framework_get_reactors(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	gather_start(req, "reactors", true, reactor_step);
}

/* --- thread_get_stats ------------------------------------------------------------------------ */

static void count_poller(const struct mimo_poller_info *info, void *arg)
{
	uint64_t *counts = arg; /* active, timed */

	counts[info->period_ticks != 0]++;
}

static void stats_step(void *arg)
{
	struct gather *g = arg;
	struct mimo_reactor *r = mimo_reactor_current();
	struct mimo_reactor_stats st;
	uint64_t counts[2] = { 0, 0 };
	char name[32];

	mimo_reactor_get_stats(r, &st);
	mimo_reactor_foreach_poller(count_poller, counts);
	thread_name(r, name, sizeof(name));
	/* paused_pollers_count: mimo's pollers cannot be paused (a paused fd watch is a timer). */
	json_array_append_new(g->list, json_pack("{s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:i}", "name",
						 name, "id", thread_id(r), "cpumask", cpumask_of(r),
						 "busy", (json_int_t)st.busy_ticks, "idle",
						 (json_int_t)st.idle_ticks, "active_pollers_count",
						 (json_int_t)counts[0], "timed_pollers_count",
						 (json_int_t)counts[1], "paused_pollers_count", 0));
}

static void rpc_thread_get_stats(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	gather_start(req, "threads", false, stats_step);
}

/* --- thread_get_pollers ---------------------------------------------------------------------- */

struct poller_lists {
	json_t *active, *timed;
};

static void add_poller(const struct mimo_poller_info *info, void *arg)
{
	struct poller_lists *l = arg;
	json_t *o =
		json_pack("{s:s, s:I, s:s, s:I, s:I}", "name", info->name, "id",
			  (json_int_t)info->id, "state", "waiting", "run_count",
			  (json_int_t)info->run_count, "busy_count", (json_int_t)info->busy_count);

	/* SPDK writes period_ticks for timed pollers only. */
	if (info->period_ticks != 0)
		json_object_set_new(o, "period_ticks",
				    json_integer((json_int_t)info->period_ticks));
	json_array_append_new(info->period_ticks != 0 ? l->timed : l->active, o);
}

static void pollers_step(void *arg)
{
	struct gather *g = arg;
	struct mimo_reactor *r = mimo_reactor_current();
	struct poller_lists l = { json_array(), json_array() };
	char name[32];

	mimo_reactor_foreach_poller(add_poller, &l);
	thread_name(r, name, sizeof(name));
	json_array_append_new(g->list, json_pack("{s:s, s:I, s:o, s:o, s:[]}", "name", name, "id",
						 thread_id(r), "active_pollers", l.active,
						 "timed_pollers", l.timed, "paused_pollers"));
}

static void rpc_thread_get_pollers(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	gather_start(req, "threads", false, pollers_step);
}

/* --- thread_get_io_channels ------------------------------------------------------------------ */

static void add_channel(const char *io_device_name, uint32_t refs, void *arg)
{
	json_array_append_new(arg,
			      json_pack("{s:s, s:i}", "name", io_device_name, "ref", (int)refs));
}

static void channels_step(void *arg)
{
	struct gather *g = arg;
	json_t *list = json_array();
	char name[32];

	mimo_reactor_foreach_channel(add_channel, list);
	thread_name(mimo_reactor_current(), name, sizeof(name));
	json_array_append_new(g->list, json_pack("{s:s, s:o}", "name", name, "io_channels", list));
}

static void rpc_thread_get_io_channels(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	gather_start(req, "threads", false, channels_step);
}

/* --- thread_set_cpumask ---------------------------------------------------------------------- */

struct set_cpumask {
	uint64_t id;
	char *cpumask;
};

static const struct mimo_json_decoder set_cpumask_decoders[] = {
	{ "id", offsetof(struct set_cpumask, id), mimo_json_decode_uint64, false },
	{ "cpumask", offsetof(struct set_cpumask, cpumask), mimo_json_decode_string, false },
};

/*
 * A mimo thread is its reactor, pinned to one core, and its objects (queue pairs, channels,
 * fd watches) live in that reactor's lists without any way to hand them to another: moving is
 * not possible. So the thread's own core is accepted (nothing to do, as SPDK answers a mask
 * the thread is already in), and every other mask is refused, saying why.
 */
static void rpc_thread_set_cpumask(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct set_cpumask p = { 0 };
	struct mimo_reactor *r;
	uint64_t mask;

	if (!mimo_rpc_decode(req, params, set_cpumask_decoders, MIMO_COUNTOF(set_cpumask_decoders),
			     &p))
		return;
	r = p.id >= 1 && p.id <= mimo_reactor_count() ? mimo_reactor_get((uint32_t)(p.id - 1))
						      : NULL;
	if (r == NULL) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"Thread %" PRIu64 " does not exist", p.id);
	} else if (mimo_reactor_parse_cpumask(p.cpumask, &mask) != 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Invalid cpumask %s", p.cpumask);
	} else if (mask & ((uint64_t)1 << mimo_reactor_core(r))) {
		mimo_jsonrpc_send_bool(req, true);
	} else {
		mimo_jsonrpc_send_error(
			req, -EOPNOTSUPP,
			"thread_set_cpumask: mimo's threads cannot move: thread %" PRIu64
			" is reactor %u, pinned to core %u with everything it owns; only a mask "
			"with core %u is accepted",
			p.id, mimo_reactor_index(r), mimo_reactor_core(r), mimo_reactor_core(r));
	}
	free(p.cpumask);
}

/* --- framework_monitor_context_switch ------------------------------------------------------ */

/*
 * SPDK's reactors check their thread's context switches once a second and log them (with the
 * reactor flag). In mimo the check is a one-second timer on each reactor while the monitor is
 * on - off by default, unlike SPDK's, because the timer would wake idle reactors that
 * otherwise sleep until there is work - and its lines are the reactor flag's debug lines.
 */
struct csw {
	struct mimo_poller *poller;
	long nvcsw, nivcsw;
};

static struct csw g_csw[64];
static atomic_bool g_csw_on;

static int csw_check(void *arg)
{
	struct csw *c = arg;
	struct mimo_reactor *r = mimo_reactor_current();
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	if (ru.ru_nvcsw != c->nvcsw || ru.ru_nivcsw != c->nivcsw)
		MIMO_DEBUG("reactor",
			   "reactor %u: %ld voluntary context switches and %ld involuntary context "
			   "switches in the last second",
			   mimo_reactor_core(r), ru.ru_nvcsw - c->nvcsw, ru.ru_nivcsw - c->nivcsw);
	c->nvcsw = ru.ru_nvcsw;
	c->nivcsw = ru.ru_nivcsw;
	return 0;
}

/* On each reactor: start or stop its timer as the monitor now says. */
static void csw_step(void *arg)
{
	struct csw *c = &g_csw[mimo_reactor_index(mimo_reactor_current())];
	struct rusage ru;

	(void)arg;
	if (atomic_load(&g_csw_on) && c->poller == NULL) {
		if (getrusage(RUSAGE_THREAD, &ru) == 0) {
			c->nvcsw = ru.ru_nvcsw;
			c->nivcsw = ru.ru_nivcsw;
		}
		c->poller = mimo_poller_register(csw_check, c, 1000000);
	} else if (!atomic_load(&g_csw_on)) {
		mimo_poller_unregister(&c->poller);
	}
}

static void csw_done(void *arg)
{
	mimo_jsonrpc_send_result(arg, json_pack("{s:b}", "enabled", atomic_load(&g_csw_on)));
}

struct csw_param {
	bool enabled;
};

static const struct mimo_json_decoder csw_decoders[] = {
	{ "enabled", offsetof(struct csw_param, enabled), mimo_json_decode_bool, true },
};

static void rpc_framework_monitor_context_switch(struct mimo_jsonrpc_request *req,
						 const json_t *params)
{
	struct csw_param p = { .enabled = atomic_load(&g_csw_on) };
	int rc;

	/* Without "enabled" it only answers the state, as SPDK's. */
	if (!mimo_rpc_decode(req, params, csw_decoders, MIMO_COUNTOF(csw_decoders), &p))
		return;
	atomic_store(&g_csw_on, p.enabled);
	/* Answered once every reactor took the change. */
	rc = mimo_for_each_reactor(csw_step, req, csw_done);
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
}

/* SPDK lists the PCI devices its drivers attached; mimo attaches none (no PCIe NVMe, no
 * virtio-pci, no DPDK), so its list is empty - which is what it is, not a stand-in. */
static void rpc_framework_get_pci_devices(struct mimo_jsonrpc_request *req, const json_t *params)
{
	if (!mimo_rpc_no_params(req, params))
		return;
	mimo_jsonrpc_send_result(req, json_array());
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "framework_get_reactors", rpc_framework_get_reactors, MIMO_RPC_RUNTIME },
	{ "thread_get_stats", rpc_thread_get_stats, MIMO_RPC_RUNTIME },
	{ "thread_get_pollers", rpc_thread_get_pollers, MIMO_RPC_RUNTIME },
	{ "thread_get_io_channels", rpc_thread_get_io_channels, MIMO_RPC_RUNTIME },
	{ "thread_set_cpumask", rpc_thread_set_cpumask, MIMO_RPC_RUNTIME },
	{ "framework_monitor_context_switch", rpc_framework_monitor_context_switch,
	  MIMO_RPC_RUNTIME },
	{ "framework_get_pci_devices", rpc_framework_get_pci_devices, MIMO_RPC_RUNTIME },
	/* SPDK 19.x's name (SPDK_RPC_REGISTER_ALIAS_DEPRECATED in its app_rpc.c). */
	{ "context_switch_monitor", rpc_framework_monitor_context_switch, MIMO_RPC_RUNTIME,
	  "framework_monitor_context_switch" },
};

void app_thread_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
