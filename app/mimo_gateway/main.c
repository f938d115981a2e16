/*
 * mimo_gateway: the fabric's HTTP API for many hosts. Agents started with --nats register on
 * NATS under their id; the gateway reaches them with NATS request-reply (no responders = the
 * agent is offline, reported per agent), keeps the slot registry in a JetStream KV bucket, and
 * delivers the messages agents send up from the JetStream stream MIMO_UP to the slots'
 * callbacks. Several gateways share that work through one durable pull consumer - JetStream's
 * form of a queue group - and a message is acknowledged to JetStream only once its callback
 * answered, so a gateway killed with kill -9 loses nothing: what it held is redelivered to
 * another one after the ack wait. See docs/agent.md.
 */
#include <errno.h>
#include <stdatomic.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callback_post.h"
#include "compiler.h"
#include "api.h"
#include "callback.h"
#include "front_metrics.h"
#include "http_front.h"
#include "slots.h"
#include "log.h"
#include "natsfab.h"
#include "server.h"

#define COMP	     "gateway"
#define POSTER_CACHE 32
#define FETCH_BATCH  64

struct gw_opts {
	const char *nats_url;
	const char *http_addr;
	const char *admin_token_file;
	uint32_t workers;
	uint32_t ack_wait_ms;
	uint32_t rpc_timeout_ms;
	uint32_t callback_timeout_ms;
	uint32_t callback_backoff_ms;
	bool allow_link_local_callbacks;
	const char *metrics_addr; /* --metrics */
	struct fab_http_opts http;
};

struct gateway {
	struct gw_opts o;
	natsConnection *nc;
	jsCtx *js;
	kvStore *kv;
	kvWatcher *watcher;
	struct slots *slots;
	struct fab_api api;
	struct fab_http *http;
	pthread_t kvt, *workers;
	_Atomic bool stop; /* read by every thread, set by main */
	/* Messages up, for the metrics: callbacks answered 2xx, refused for good or expired,
	 * and attempts tried again. */
	_Atomic uint64_t up_delivered, up_failed, up_retried;
};

/* --- the slot registry in KV ------------------------------------------------------------------ */

static int persist_kv(void *arg, struct slots *s, const struct slot_info *changed, bool deleted)
{
	struct gateway *g = arg;

	(void)s;
	if (deleted)
		return fab_slot_kv_put(g->kv, g->api.admin_token, changed, true);
	return fab_slot_kv_create(g->kv, g->api.admin_token, changed);
}

static void *kv_main(void *arg)
{
	struct gateway *g = arg;

	fab_slot_kv_follow(g->slots, g->api.admin_token, g->watcher, &g->stop);
	return NULL;
}

/* --- the backend: agents over NATS ------------------------------------------------------------ */

static natsMsg *rpc_msg_to(const char *agent_id, const char *reply_to, const char *op,
			   const void *data, size_t len)
{
	char subj[512];
	natsMsg *m = NULL;

	fab_subject_rpc(agent_id, subj, sizeof(subj));
	if (natsMsg_Create(&m, subj, reply_to, data, (int)len) != NATS_OK)
		return NULL;
	natsMsgHeader_Set(m, H_OP, op);
	return m;
}

static natsMsg *rpc_msg(const char *agent_id, const char *op, const void *data, size_t len)
{
	return rpc_msg_to(agent_id, NULL, op, data, len);
}

static void fail(struct fab_result *out, int code, const char *reason)
{
	out->status = FAB_FAILED;
	out->code = code;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

/* The agent's answer, or why there was none. */
static void read_reply(natsStatus s, natsMsg *reply, struct fab_result *out)
{
	const char *reason;

	if (s == NATS_NO_RESPONDERS || (s == NATS_OK && natsMsg_IsNoResponders(reply))) {
		fail(out, FAB_ERR_UNKNOWN_AGENT, "unknown agent (not connected to NATS)");
		return;
	}
	if (s == NATS_TIMEOUT) {
		fail(out, FAB_ERR_TIMEOUT, "timeout");
		return;
	}
	if (s != NATS_OK) {
		fail(out, FAB_ERR_INTERNAL, natsStatus_GetText(s));
		return;
	}
	out->status = (enum fab_status)fab_hdr_u64(reply, H_STATUS, FAB_FAILED);
	out->code = (int)fab_hdr_u64(reply, H_CODE, 0);
	reason = fab_hdr(reply, H_REASON);
	snprintf(out->reason, sizeof(out->reason), "%s", reason != NULL ? reason : "");
	if (natsMsg_GetDataLength(reply) > 0) {
		out->reply_len = (size_t)natsMsg_GetDataLength(reply);
		out->reply = malloc(out->reply_len);
		if (out->reply != NULL)
			memcpy(out->reply, natsMsg_GetData(reply), out->reply_len);
	} else {
		out->reply = malloc(1);
		out->reply_len = 0;
	}
}

static void be_dispatch(void *ctx, const char *agent_id, const struct slot_info *slot,
			const char *message_id, const void *content, size_t len, uint32_t ttl_ms,
			struct fab_result *out)
{
	struct gateway *g = ctx;
	natsMsg *m = rpc_msg(agent_id, "dispatch", content, len), *reply = NULL;
	natsStatus s;

	memset(out, 0, sizeof(*out));
	if (m == NULL) {
		fail(out, FAB_ERR_INTERNAL, "out of memory");
		return;
	}
	fab_hdr_set_u64(m, H_SLOT, slot->id);
	natsMsgHeader_Set(m, H_PLUGIN, slot->plugin);
	natsMsgHeader_Set(m, H_MSG_ID, message_id);
	fab_hdr_set_u64(m, H_TTL, ttl_ms);
	s = natsConnection_RequestMsg(&reply, g->nc, m, g->o.rpc_timeout_ms);
	read_reply(s, reply, out);
	free(out->reply);
	out->reply = NULL;
	natsMsg_Destroy(reply);
	natsMsg_Destroy(m);
}

/* Answers to the requests of one be_request call, collected by cnats's delivery thread. */
struct collect {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	size_t n, left;
	bool *done;
	struct fab_result *out;
};

static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct collect *c = closure;
	const char *dot = strrchr(natsMsg_GetSubject(m), '.');
	size_t i = dot != NULL ? strtoull(dot + 1, NULL, 10) : c->n;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&c->mu);
	/* A "no responders" status arrives here too (a sync NextMsg would hide whose it is). */
	if (i < c->n && !c->done[i]) {
		read_reply(NATS_OK, m, &c->out[i]);
		c->done[i] = true;
		c->left--;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->mu);
	natsMsg_Destroy(m);
}

/* Every agent at once: one inbox, one request each, answers collected until the deadline. */
static void be_request(void *ctx, const char *const *agent_ids, size_t n,
		       const struct slot_info *slot, const char *message_id,
		       const uint8_t *const *contents, const size_t *lens, uint32_t timeout_ms,
		       struct fab_result *out)
{
	struct gateway *g = ctx;
	struct collect c = { .n = n, .left = n, .out = out };
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	char wild[256], reply_to[300];
	struct timespec ts;

	for (size_t i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cond, NULL);
	c.done = calloc(n, sizeof(bool));
	if (c.done == NULL || natsInbox_Create(&inbox) != NATS_OK) {
		for (size_t i = 0; i < n; i++)
			fail(&out[i], FAB_ERR_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(wild, sizeof(wild), "%s.*", (const char *)inbox);
	if (natsConnection_Subscribe(&sub, g->nc, wild, on_answer, &c) != NATS_OK) {
		for (size_t i = 0; i < n; i++)
			fail(&out[i], FAB_ERR_INTERNAL, "cannot subscribe");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		natsMsg *m;

		snprintf(reply_to, sizeof(reply_to), "%s.%zu", (const char *)inbox, i);
		m = rpc_msg_to(agent_ids[i], reply_to, "request", contents[i], lens[i]);
		if (m == NULL) {
			pthread_mutex_lock(&c.mu);
			fail(&out[i], FAB_ERR_INTERNAL, "out of memory");
			c.done[i] = true;
			c.left--;
			pthread_mutex_unlock(&c.mu);
			continue;
		}
		fab_hdr_set_u64(m, H_SLOT, slot->id);
		natsMsgHeader_Set(m, H_PLUGIN, slot->plugin);
		natsMsgHeader_Set(m, H_MSG_ID, message_id);
		fab_hdr_set_u64(m, H_TIMEOUT, timeout_ms);
		natsConnection_PublishMsg(g->nc, m);
		natsMsg_Destroy(m);
	}
	natsConnection_Flush(g->nc);
	/* The agent times out on its own; a little more here lets its answer arrive. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (timeout_ms + 1000) / 1000;
	ts.tv_nsec += (long)((timeout_ms + 1000) % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c.mu);
	while (c.left > 0) {
		if (pthread_cond_timedwait(&c.cond, &c.mu, &ts) != 0)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (!c.done[i]) {
			fail(&out[i], FAB_ERR_TIMEOUT, "timeout");
			c.done[i] = true; /* a late answer must not touch out[] */
		}
	}
	pthread_mutex_unlock(&c.mu);
	/* Unsubscribe and wait until the callback can no longer run before c goes away. */
	if (natsSubscription_Drain(sub) == NATS_OK)
		natsSubscription_WaitForDrainCompletion(sub, 5000);
out:
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	pthread_mutex_lock(&c.mu);
	pthread_mutex_unlock(&c.mu);
	free(c.done);
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.mu);
}

static int be_cache(void *ctx, const char *agent_id, const struct fab_cache_req *req,
		    struct mimo_buf *data, char *reason, size_t reason_len)
{
	static const char *const ops[] = { "store", "retrieve", "delete", "inval", "poll" };
	struct gateway *g = ctx;
	natsMsg *m = rpc_msg(agent_id, ops[req->op], req->op == FAB_CACHE_STORE ? req->data : NULL,
			     req->op == FAB_CACHE_STORE ? req->len : 0),
		*reply = NULL;
	struct fab_result res = { 0 };
	natsStatus s;
	int status;

	if (m == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return 500;
	}
	natsMsgHeader_Set(m, H_PLUGIN, req->plugin);
	if (req->key != NULL)
		natsMsgHeader_Set(m, H_KEY, req->key);
	fab_hdr_set_u64(m, H_OFFSET, req->offset);
	fab_hdr_set_u64(m, H_SIZE, req->size);
	fab_hdr_set_u64(m, H_TIMEOUT, req->timeout_ms);
	s = natsConnection_RequestMsg(&reply, g->nc, m, req->timeout_ms + 1000);
	read_reply(s, reply, &res);
	if (res.status == FAB_FAILED && (s != NATS_OK || natsMsg_IsNoResponders(reply))) {
		status = res.code == FAB_ERR_UNKNOWN_AGENT ? 404 : res.code;
		snprintf(reason, reason_len, "%s", res.reason);
	} else {
		status = (int)fab_hdr_u64(reply, H_STATUS, 502);
		snprintf(reason, reason_len, "%s", res.reason);
		if (status < 300 && data != NULL && res.reply != NULL)
			mimo_buf_append(data, res.reply, res.reply_len);
	}
	free(res.reply);
	natsMsg_Destroy(reply);
	natsMsg_Destroy(m);
	return status;
}

static json_t *be_health(void *ctx)
{
	struct gateway *g = ctx;

	return json_pack("{s:s, s:s, s:s, s:I}", "role", "gateway", "version", MIMO_VERSION, "nats",
			 g->o.nats_url, "slots", (json_int_t)slots_count(g->slots));
}

/* --- delivering messages up ------------------------------------------------------------------ */

/* A worker's posters, one per slot it delivered for lately (least recently used replaced). */
struct poster_ent {
	uint64_t slot_id;
	struct fab_cb_poster *p;
	int64_t used;
};

static struct fab_cb_poster *poster_for(struct gateway *g, struct poster_ent *cache,
					uint64_t slot_id)
{
	struct poster_ent *e = NULL, *lru = &cache[0];

	for (int i = 0; i < POSTER_CACHE; i++) {
		if (cache[i].p != NULL && cache[i].slot_id == slot_id) {
			e = &cache[i];
			break;
		}
		if (cache[i].used < lru->used)
			lru = &cache[i];
	}
	if (e == NULL) {
		/* A poster follows each message's slot: the least recently used one moves on. */
		e = lru;
		e->slot_id = slot_id;
	}
	if (e->p == NULL)
		e->p = fab_cb_poster_new(&(struct fab_cb_poster_opts){
			.slots = g->slots,
			.timeout_ms = g->o.callback_timeout_ms,
			.backoff_ms = g->o.callback_backoff_ms,
			/* JetStream hands what is held longer than the ack wait to another. */
			.max_pause_ms = MIMO_MAX(g->o.ack_wait_ms / 2, 1u),
			.user_agent = "mimo-gateway/" MIMO_VERSION,
			.allow_link_local = g->o.allow_link_local_callbacks,
			.log_component = COMP });
	e->used = nats_Now();
	return e->p;
}

static uint64_t hex64(const char *s)
{
	char part[17];

	snprintf(part, sizeof(part), "%.16s", s);
	return strtoull(part, NULL, 16);
}

/* The message being delivered, for the delivery loop's hooks. */
struct delivery {
	struct gateway *g;
	natsMsg *m;
};

static bool stopping(void *arg)
{
	return ((struct delivery *)arg)->g->stop;
}

/* Tell JetStream we are still on it, so it does not hand it to another gateway. */
static void pausing(void *arg)
{
	struct delivery *d = arg;

	atomic_fetch_add_explicit(&d->g->up_retried, 1, memory_order_relaxed);
	natsMsg_InProgress(d->m, NULL);
}

enum verdict {
	V_ACK,	/* delivered, or refused for good: done with it */
	V_STOP, /* stopping: leave it to another gateway */
};

static enum verdict deliver(struct gateway *g, struct poster_ent *cache, natsMsg *m,
			    struct mimo_buf *body)
{
	const char *agent = fab_hdr(m, H_AGENT), *plugin = fab_hdr(m, H_PLUGIN);
	const char *msg_id = fab_hdr(m, H_MSG_ID), *idem = fab_hdr(m, H_IDEM);
	struct delivery d = { .g = g, .m = m };
	struct fab_cb_hooks h = { .arg = &d, .stopping = stopping, .pausing = pausing };
	struct fab_cb_poster *p;
	struct fab_cb_msg cm;
	char name[2 * 256];
	struct fab_callback cb;

	if (agent == NULL || plugin == NULL || msg_id == NULL || idem == NULL ||
	    strlen(idem) != 32) {
		MIMO_WARN(COMP, "a message without mimo's headers on %s: dropped",
			  natsMsg_GetSubject(m));
		return V_ACK;
	}
	/* The agent's callback shape, byte for byte. */
	cb = (struct fab_callback){ .msg_id = msg_id,
				    .msg_id_len = strlen(msg_id),
				    .agent_id = agent,
				    .content = natsMsg_GetData(m),
				    .content_len = (size_t)natsMsg_GetDataLength(m),
				    .plugin = plugin,
				    .plugin_len = strlen(plugin),
				    .slot_id = fab_hdr_u64(m, H_SLOT, 0),
				    .timestamp = (int64_t)(fab_hdr_u64(m, H_ACCEPTED, 0) / 1000) };
	if (fab_callback_json(body, &cb) != 0)
		return V_STOP;
	p = poster_for(g, cache, cb.slot_id);
	if (p == NULL)
		return V_STOP;
	snprintf(name, sizeof(name), "%s from %s", msg_id, agent);
	cm = (struct fab_cb_msg){ .slot_id = cb.slot_id,
				  .key_hi = hex64(idem),
				  .key_lo = hex64(idem + 16),
				  .expires_ms = (int64_t)fab_hdr_u64(m, H_EXPIRES, 0),
				  .name = name,
				  .body = body->data,
				  .len = body->len };
	switch (fab_cb_post(p, &cm, &h)) {
	case FAB_CB_STOPPED:
		return V_STOP;
	case FAB_CB_DELIVERED:
		atomic_fetch_add_explicit(&g->up_delivered, 1, memory_order_relaxed);
		return V_ACK;
	default:
		atomic_fetch_add_explicit(&g->up_failed, 1, memory_order_relaxed);
		return V_ACK;
	}
}

/* --metrics: the gateway's families (docs/metrics.md), on the metrics server's thread. */
static void collect_metrics(void *arg, struct mimo_expo *e)
{
	struct gateway *g = arg;

	mimo_expo_build_info(e, "mimo_gateway");
	mimo_expo_process(e);
	mimo_expo_one_u64(e, "mimo_gateway_slots", MIMO_EXPO_GAUGE,
			  "Slots in the deployment's registry, as this gateway knows it.",
			  (uint64_t)slots_count(g->slots));
	mimo_expo_one_u64(e, "mimo_gateway_up_delivered_total", MIMO_EXPO_COUNTER,
			  "Messages up whose callback answered 2xx.",
			  atomic_load_explicit(&g->up_delivered, memory_order_relaxed));
	mimo_expo_one_u64(e, "mimo_gateway_up_failed_total", MIMO_EXPO_COUNTER,
			  "Messages up dropped: refused for good, expired, or their slot deleted.",
			  atomic_load_explicit(&g->up_failed, memory_order_relaxed));
	mimo_expo_one_u64(e, "mimo_gateway_up_retries_total", MIMO_EXPO_COUNTER,
			  "Callback attempts that failed and were tried again.",
			  atomic_load_explicit(&g->up_retried, memory_order_relaxed));
	mimo_metrics_http_front(e, g->http);
}

static void *worker_main(void *arg)
{
	struct gateway *g = arg;
	struct poster_ent cache[POSTER_CACHE] = { 0 };
	struct mimo_buf body = { 0 };
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	jsSubOptions_Init(&so);
	so.Stream = FAB_STREAM;
	so.Config.AckWait = (int64_t)g->o.ack_wait_ms * 1000000;
	so.Config.MaxDeliver = -1;
	so.Config.MaxAckPending = 4096;
	so.ManualAck = true;
	while (!g->stop && js_PullSubscribe(&sub, g->js, FAB_UP_SUBJECTS, FAB_CONSUMER, NULL, &so,
					    &jerr) != NATS_OK) {
		MIMO_WARN(COMP, "cannot bind the consumer %s (%d); retrying", FAB_CONSUMER,
			  (int)jerr);
		sleep(1);
	}
	while (!g->stop) {
		natsMsgList list = { 0 };
		natsStatus s = natsSubscription_Fetch(&list, sub, FETCH_BATCH, 500, &jerr);

		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			usleep(100000);
			continue;
		}
		for (int i = 0; i < list.Count; i++) {
			if (g->stop)
				break; /* the rest are redelivered after the ack wait */
			if (deliver(g, cache, list.Msgs[i], &body) == V_ACK)
				natsMsg_Ack(list.Msgs[i], NULL);
		}
		natsMsgList_Destroy(&list);
	}
	natsSubscription_Destroy(sub);
	for (int i = 0; i < POSTER_CACHE; i++)
		fab_cb_poster_free(cache[i].p);
	mimo_buf_free(&body);
	return NULL;
}

/* --- main ---------------------------------------------------------------------------------------
 */

static void usage(const char *prog)
{
	printf("usage: %s --nats URL [options]\n\n"
	       "  --nats URL               the NATS server (JetStream enabled)\n"
	       "  --http ADDR              the HTTP API (default 127.0.0.1:8090)\n"
	       "  --admin-token-file PATH  created 0600 with a random token if missing (default\n"
	       "                           /var/lib/mimo/gateway/admin.token); every gateway of\n"
	       "                           one deployment must use the same token\n"
	       "  --workers N              threads delivering messages up (default 4)\n"
	       "  --ack-wait-ms MS         JetStream redelivers what a gateway holds this long\n"
	       "                           without an ack (default 30000)\n"
	       "  --rpc-timeout-ms MS      wait for an agent's answer to a dispatch (default "
	       "5000)\n"
	       "  --callback-timeout-ms MS per callback attempt (default 5000)\n"
	       "  --callback-backoff-ms MS first pause after a failed callback (default 100)\n"
	       "  --allow-link-local-callbacks  accept callback URLs at link-local and cloud\n"
	       "                           metadata addresses (169.254.0.0/16, fe80::/10, ...)\n"
	       "%s"
	       "  --metrics ADDR:PORT      serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	       "                           (IPv4, [IPv6] or :PORT for every address; off by "
	       "default)\n"
	       "  -h, --help, --version\n",
	       prog, fab_http_usage);
}

static int parse_args(int argc, char **argv, struct gw_opts *o)
{
	static const struct option opts[] = {
		{ "nats", required_argument, NULL, 'n' },
		{ "http", required_argument, NULL, 'H' },
		{ "admin-token-file", required_argument, NULL, 'a' },
		{ "workers", required_argument, NULL, 'w' },
		{ "ack-wait-ms", required_argument, NULL, 'k' },
		{ "rpc-timeout-ms", required_argument, NULL, 'r' },
		{ "callback-timeout-ms", required_argument, NULL, 't' },
		{ "callback-backoff-ms", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "allow-link-local-callbacks", no_argument, NULL, 'L' },
		{ "http-max-conns", required_argument, NULL, 'F' },
		{ "http-max-conns-per-ip", required_argument, NULL, 'F' },
		{ "http-header-timeout", required_argument, NULL, 'F' },
		{ "http-idle-timeout", required_argument, NULL, 'F' },
		{ "http-workers", required_argument, NULL, 'F' },
		{ "metrics", required_argument, NULL, 'M' },
		{ 0 },
	};
	int c, idx;

	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		char *end = NULL;
		unsigned long v = 0;

		if (c == 'F') {
			/* The HTTP front's options, shared with mimo_agent. */
			if (fab_http_parse_opt(&o->http, opts[idx].name, optarg) != 0) {
				fprintf(stderr, "mimo_gateway: invalid value '%s' for --%s\n",
					optarg, opts[idx].name);
				return -1;
			}
			continue;
		}
		if (c == 'L') {
			o->allow_link_local_callbacks = true;
			continue;
		}
		if (c == 'M') {
			struct sockaddr_storage ss;
			char err[160];

			if (mimo_metrics_parse_addr(optarg, &ss, err, sizeof(err)) != 0) {
				fprintf(stderr, "mimo_gateway: --metrics %s: %s\n", optarg, err);
				return -1;
			}
			o->metrics_addr = optarg;
			continue;
		}

		if (c == 'w' || c == 'k' || c == 'r' || c == 't' || c == 'b') {
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v == 0 || v > 3600000) {
				fprintf(stderr, "mimo_gateway: invalid number '%s'\n", optarg);
				return -1;
			}
		}
		switch (c) {
		case 'n':
			o->nats_url = optarg;
			break;
		case 'H':
			o->http_addr = optarg;
			break;
		case 'a':
			o->admin_token_file = optarg;
			break;
		case 'w':
			o->workers = (uint32_t)MIMO_MIN(v, 64ul);
			break;
		case 'k':
			o->ack_wait_ms = (uint32_t)v;
			break;
		case 'r':
			o->rpc_timeout_ms = (uint32_t)v;
			break;
		case 't':
			o->callback_timeout_ms = (uint32_t)v;
			break;
		case 'b':
			o->callback_backoff_ms = (uint32_t)v;
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
		case 'V':
			printf("mimo_gateway %s\n", MIMO_VERSION);
			exit(0);
		default:
			fprintf(stderr, "mimo_gateway: see --help\n");
			return -1;
		}
	}
	if (optind < argc || o->nats_url == NULL) {
		fprintf(stderr, "mimo_gateway: --nats URL is required; see --help\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct gateway g;
	struct mimo_metrics_server *metrics = NULL;
	sigset_t sigs;
	jsOptions jo;
	int rc, sig;

	memset(&g, 0, sizeof(g));
	g.o = (struct gw_opts){ .http_addr = "127.0.0.1:8090",
				.admin_token_file = "/var/lib/mimo/gateway/admin.token",
				.workers = 4,
				.ack_wait_ms = 30000,
				.rpc_timeout_ms = 5000,
				.callback_timeout_ms = 5000,
				.callback_backoff_ms = 100 };
	if (parse_args(argc, argv, &g.o) != 0)
		return 2;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGQUIT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = fab_admin_token_load(g.o.admin_token_file, g.api.admin_token);
	if (rc != 0)
		return 1;
	jsOptions_Init(&jo);
	rc = fab_nats_connect(g.o.nats_url, "mimo_gateway", 10000, &g.nc, &g.js, &jo);
	if (rc == 0)
		rc = fab_nats_ensure(g.js, &g.kv);
	if (rc != 0)
		return 1;
	g.slots = slots_new(persist_kv, &g);
	if (g.slots == NULL || kvStore_WatchAll(&g.watcher, g.kv, NULL) != NATS_OK)
		return 1;
	/* The registry before anything else: a message up needs its slot's URL and secret. */
	fab_slot_kv_catch_up(g.slots, g.api.admin_token, g.watcher);
	g.api.slots = g.slots;
	g.api.backend_waits = true; /* every call is a NATS round trip */
	g.api.allow_link_local_callbacks = g.o.allow_link_local_callbacks;
	g.api.be = (struct fab_backend){ .ctx = &g,
					 .dispatch = be_dispatch,
					 .request = be_request,
					 .cache = be_cache,
					 .health = be_health };
	pthread_create(&g.kvt, NULL, kv_main, &g);
	g.workers = calloc(g.o.workers, sizeof(pthread_t));
	for (uint32_t i = 0; g.workers != NULL && i < g.o.workers; i++)
		pthread_create(&g.workers[i], NULL, worker_main, &g);
	rc = fab_http_start(&g.http, g.o.http_addr, &g.o.http, &g.api);
	if (rc != 0)
		return 1;
	/* After the front: its counters are among the metrics. */
	if (g.o.metrics_addr != NULL &&
	    mimo_metrics_start(g.o.metrics_addr, collect_metrics, &g, &metrics) != 0)
		return 1;
	MIMO_INFO(COMP, "mimo_gateway %s ready: HTTP on %s (port %u), NATS %s, %u worker(s)",
		  MIMO_VERSION, g.o.http_addr, fab_http_port(g.http), g.o.nats_url, g.o.workers);
	for (;;) {
		sig = sigwaitinfo(&sigs, NULL);
		if (sig > 0 && sig != SIGHUP)
			break;
	}
	MIMO_INFO(COMP, "signal %d: shutting down", sig);
	mimo_metrics_stop(metrics);
	fab_http_stop(g.http);
	g.stop = true;
	kvWatcher_Stop(g.watcher);
	for (uint32_t i = 0; g.workers != NULL && i < g.o.workers; i++)
		pthread_join(g.workers[i], NULL);
	pthread_join(g.kvt, NULL);
	free(g.workers);
	kvWatcher_Destroy(g.watcher);
	kvStore_Destroy(g.kv);
	jsCtx_Destroy(g.js);
	natsConnection_Close(g.nc);
	natsConnection_Destroy(g.nc);
	slots_free(g.slots);
	nats_Close();
	return 0;
}
