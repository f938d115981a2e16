/*
 * mimo_agent's Prometheus families (--metrics; docs/metrics.md): the counters /v1/health
 * shows, read the same way (the plugin table under a->lock, copied out before anything is
 * written), plus the HTTP front's. Runs on the metrics server's thread.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "expo.h"
#include "front_metrics.h"

struct plugin_snap {
	char name[MIMO_WIRE_MAX_NAME + 1];
	bool connected;
	uint64_t queued, inflight, held_bytes, delivered, expired, too_large, up;
};

/* One per-plugin family, and where its value is in the snapshot. */
struct plugin_family {
	const char *name;
	enum mimo_expo_type type;
	const char *help;
	size_t offset;
};

#define SNAP_OFF(f) offsetof(struct plugin_snap, f)

static const struct plugin_family g_families[] = {
	{ "mimo_agent_plugin_queued_messages", MIMO_EXPO_GAUGE,
	  "Messages down waiting to be written to the plugin (its down-queue's depth).",
	  SNAP_OFF(queued) },
	{ "mimo_agent_plugin_inflight_messages", MIMO_EXPO_GAUGE,
	  "Messages down written to the plugin and not yet acknowledged.", SNAP_OFF(inflight) },
	{ "mimo_agent_plugin_held_bytes", MIMO_EXPO_GAUGE,
	  "Bytes of messages down held for the plugin, queued and in flight (--down-queue-mb).",
	  SNAP_OFF(held_bytes) },
	{ "mimo_agent_plugin_delivered_total", MIMO_EXPO_COUNTER,
	  "Messages down the plugin acknowledged.", SNAP_OFF(delivered) },
	{ "mimo_agent_plugin_expired_total", MIMO_EXPO_COUNTER,
	  "Messages down dropped because their time to live ran out first.", SNAP_OFF(expired) },
	{ "mimo_agent_plugin_too_large_total", MIMO_EXPO_COUNTER,
	  "Messages down dropped as larger than the (GSE) plugin can receive.",
	  SNAP_OFF(too_large) },
	{ "mimo_agent_plugin_up_messages_total", MIMO_EXPO_COUNTER,
	  "Messages up the plugin sent (made durable).", SNAP_OFF(up) },
};

static struct plugin_snap *snapshot(struct agent *a, size_t *n, uint64_t *refused, uint64_t *conns)
{
	struct plugin_snap *s = NULL;
	size_t count = 0, i = 0;

	pthread_mutex_lock(&a->lock);
	for (struct plugin *p = a->plugins; p != NULL; p = p->next)
		count++;
	if (count > 0)
		s = calloc(count, sizeof(*s));
	for (struct plugin *p = a->plugins; s != NULL && p != NULL; p = p->next, i++) {
		snprintf(s[i].name, sizeof(s[i].name), "%s", p->name);
		s[i].connected = p->conn != NULL;
		s[i].queued = p->queued;
		s[i].inflight = p->inflight;
		s[i].held_bytes = p->queued_bytes + p->inflight_bytes;
		s[i].delivered = p->delivered;
		s[i].expired = p->dropped;
		s[i].too_large = p->too_large;
		s[i].up = p->up;
	}
	*refused = a->plugins_refused;
	*conns = a->conns_total;
	pthread_mutex_unlock(&a->lock);
	*n = s != NULL ? count : 0;
	return s;
}

static void plugin_metrics(struct mimo_expo *e, const struct plugin_snap *s, size_t n)
{
	uint64_t connected = 0;

	mimo_expo_family(e, "mimo_agent_plugin_connected", MIMO_EXPO_GAUGE,
			 "1 while the plugin has a connection to the agent, else 0.");
	for (size_t i = 0; i < n; i++) {
		mimo_expo_u64(e, "mimo_agent_plugin_connected",
			      (const char *const[]){ "plugin", s[i].name, NULL }, s[i].connected);
		connected += s[i].connected;
	}
	for (size_t f = 0; f < sizeof(g_families) / sizeof(g_families[0]); f++) {
		mimo_expo_family(e, g_families[f].name, g_families[f].type, g_families[f].help);
		for (size_t i = 0; i < n; i++)
			mimo_expo_u64(
				e, g_families[f].name,
				(const char *const[]){ "plugin", s[i].name, NULL },
				*(const uint64_t *)((const char *)&s[i] + g_families[f].offset));
	}
	mimo_expo_one_u64(e, "mimo_agent_plugins_connected", MIMO_EXPO_GAUGE,
			  "Plugins connected now.", connected);
}

void agent_metrics_collect(void *arg, struct mimo_expo *e)
{
	struct agent *a = arg;
	uint64_t refused, conns;
	struct upq_stats st;
	size_t n;
	struct plugin_snap *s = snapshot(a, &n, &refused, &conns);

	mimo_expo_build_info(e, "mimo_agent");
	mimo_expo_process(e);
	plugin_metrics(e, s, n);
	free(s);
	mimo_expo_one_u64(e, "mimo_agent_plugins_refused_total", MIMO_EXPO_COUNTER,
			  "Plugin handshakes refused (no slot, wrong process, name taken).",
			  refused);
	mimo_expo_one_u64(e, "mimo_agent_plugin_connections_total", MIMO_EXPO_COUNTER,
			  "Connections accepted on the plugin sockets.", conns);
	upq_get_stats(a->upq, &st);
	mimo_expo_one_u64(e, "mimo_agent_upq_appended_total", MIMO_EXPO_COUNTER,
			  "Messages up made durable in the up-queue.", st.appended);
	mimo_expo_one_u64(e, "mimo_agent_upq_duplicates_total", MIMO_EXPO_COUNTER,
			  "Messages up recognised as repeats and not queued again.", st.duplicates);
	mimo_expo_one_u64(e, "mimo_agent_upq_written_bytes_total", MIMO_EXPO_COUNTER,
			  "Bytes written to the up-queue.", st.bytes);
	mimo_expo_one_u64(e, "mimo_agent_upq_fsyncs_total", MIMO_EXPO_COUNTER,
			  "fdatasync calls of the up-queue.", st.fsyncs);
	mimo_expo_one_u64(e, "mimo_agent_upq_bytes", MIMO_EXPO_GAUGE,
			  "Bytes of the up-queue on disk now.", st.disk_bytes);
	mimo_expo_one_u64(e, "mimo_agent_upq_segments", MIMO_EXPO_GAUGE,
			  "Segment files of the up-queue now.", st.segments);
	mimo_expo_one_u64(e, "mimo_agent_up_delivered_total", MIMO_EXPO_COUNTER,
			  "Messages up whose callback answered 2xx.",
			  __atomic_load_n(&a->up_delivered, __ATOMIC_RELAXED));
	mimo_expo_one_u64(e, "mimo_agent_up_failed_total", MIMO_EXPO_COUNTER,
			  "Messages up dropped: refused for good, expired, or their slot deleted.",
			  __atomic_load_n(&a->up_dropped, __ATOMIC_RELAXED));
	mimo_expo_one_u64(e, "mimo_agent_up_retries_total", MIMO_EXPO_COUNTER,
			  "Callback attempts that failed and were tried again.",
			  __atomic_load_n(&a->up_retried, __ATOMIC_RELAXED));
	mimo_metrics_http_front(e, a->http);
}
