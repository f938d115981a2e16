/*
 * An agent started with --nats: it answers the gateways' requests on mimo.agent.<id>.rpc,
 * forwards its durable up-queue into the JetStream stream, and keeps its slot table from the
 * KV bucket the gateways write. A record leaves the local queue only once JetStream has
 * acknowledged it (published with Nats-Msg-Id = its webhook-id, so a record forwarded twice -
 * after a crash between the publish and the local release - is stored once).
 */
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "natsfab.h"
#include "webhook.h"

#define COMP   "nats"
#define WINDOW 512

struct nats_agent {
	struct agent *a;
	natsConnection *nc;
	jsCtx *js;
	kvStore *kv;
	kvWatcher *watcher;
	natsSubscription *rpc;
	struct upq_consumer *cons;
	pthread_t fwd, kvt;
	_Atomic bool stop; /* read by every thread, set by main */
	bool pub_failed;
	int active; /* request and retrieve threads running */
	pthread_cond_t idle;
	pthread_mutex_t mu;
	char subject_up[512];
};

/* --- requests from gateways ----------------------------------------------------------------------
 */

static void respond(struct nats_agent *n, natsMsg *req, int status, int code, const char *reason,
		    const void *data, size_t len)
{
	natsMsg *m = NULL;

	if (natsMsg_GetReply(req) == NULL)
		return;
	if (natsMsg_Create(&m, natsMsg_GetReply(req), NULL, data, (int)len) != NATS_OK)
		return;
	fab_hdr_set_u64(m, H_STATUS, (uint64_t)status);
	fab_hdr_set_u64(m, H_CODE, (uint64_t)code);
	if (reason != NULL && reason[0] != '\0')
		natsMsgHeader_Set(m, H_REASON, reason);
	natsConnection_PublishMsg(n->nc, m);
	natsMsg_Destroy(m);
}

static bool slot_from_headers(natsMsg *m, struct slot_info *si)
{
	const char *plugin = fab_hdr(m, H_PLUGIN);

	memset(si, 0, sizeof(*si));
	si->id = fab_hdr_u64(m, H_SLOT, 0);
	if (plugin == NULL || !mimo_wire_name_valid(plugin, strlen(plugin)) || si->id == 0)
		return false;
	snprintf(si->plugin, sizeof(si->plugin), "%s", plugin);
	return true;
}

struct blocking_op {
	struct nats_agent *n;
	natsMsg *msg;
};

/* Request-reply and RETRIEVE wait for the plugin: on a thread of their own, so the
 * subscription's thread goes on serving dispatches. */
static void *blocking_main(void *arg)
{
	struct blocking_op *op = arg;
	struct nats_agent *n = op->n;
	natsMsg *m = op->msg;
	const char *kind = fab_hdr(m, H_OP);
	const char *msg_id = fab_hdr(m, H_MSG_ID);
	struct slot_info si;

	if (strcmp(kind, "request") == 0) {
		struct fab_result res;

		if (!slot_from_headers(m, &si) || msg_id == NULL ||
		    !mimo_wire_msg_id_valid(msg_id, strlen(msg_id))) {
			respond(n, m, FAB_FAILED, 400, "bad request", NULL, 0);
		} else {
			agent_request(n->a, &si, msg_id, natsMsg_GetData(m),
				      (size_t)natsMsg_GetDataLength(m),
				      (uint32_t)fab_hdr_u64(m, H_TIMEOUT, 5000), &res);
			respond(n, m, (int)res.status, res.code, res.reason, res.reply,
				res.reply_len);
			free(res.reply);
		}
	} else {
		struct fab_cache_req req = { .op = FAB_CACHE_RETRIEVE };
		struct mimo_buf data = { 0 };
		char reason[256] = "";
		int status;

		req.plugin = fab_hdr(m, H_PLUGIN);
		req.key = fab_hdr(m, H_KEY);
		req.offset = fab_hdr_u64(m, H_OFFSET, 0);
		req.size = fab_hdr_u64(m, H_SIZE, 0);
		req.timeout_ms = (uint32_t)fab_hdr_u64(m, H_TIMEOUT, 5000);
		if (req.plugin == NULL || req.key == NULL)
			status = 400;
		else
			status = agent_cache(n->a, &req, &data, reason, sizeof(reason));
		respond(n, m, status, status, reason, data.data, data.len);
		mimo_buf_free(&data);
	}
	natsMsg_Destroy(m);
	free(op);
	pthread_mutex_lock(&n->mu);
	if (--n->active == 0)
		pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

static void on_rpc(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct nats_agent *n = closure;
	const char *op = fab_hdr(m, H_OP);

	(void)nc;
	(void)sub;
	if (op == NULL) {
		respond(n, m, FAB_FAILED, 400, "no operation", NULL, 0);
	} else if (strcmp(op, "dispatch") == 0) {
		const char *msg_id = fab_hdr(m, H_MSG_ID);
		struct fab_result res;
		struct slot_info si;

		if (!slot_from_headers(m, &si) || msg_id == NULL ||
		    !mimo_wire_msg_id_valid(msg_id, strlen(msg_id))) {
			respond(n, m, FAB_FAILED, 400, "bad dispatch", NULL, 0);
		} else {
			agent_dispatch(n->a, &si, msg_id, natsMsg_GetData(m),
				       (size_t)natsMsg_GetDataLength(m),
				       (uint32_t)fab_hdr_u64(m, H_TTL, 0), &res);
			respond(n, m, (int)res.status, res.code, res.reason, NULL, 0);
		}
	} else if (strcmp(op, "request") == 0 || strcmp(op, "retrieve") == 0) {
		struct blocking_op *b = calloc(1, sizeof(*b));
		pthread_attr_t at;
		pthread_t t;

		if (b == NULL) {
			respond(n, m, FAB_FAILED, 500, "out of memory", NULL, 0);
		} else {
			b->n = n;
			b->msg = m;
			pthread_attr_init(&at);
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			pthread_mutex_lock(&n->mu);
			n->active++;
			pthread_mutex_unlock(&n->mu);
			if (pthread_create(&t, &at, blocking_main, b) == 0) {
				pthread_attr_destroy(&at);
				return; /* the thread owns m */
			}
			pthread_mutex_lock(&n->mu);
			n->active--;
			pthread_mutex_unlock(&n->mu);
			pthread_attr_destroy(&at);
			free(b);
			respond(n, m, FAB_FAILED, 500, "cannot start a thread", NULL, 0);
		}
	} else if (strcmp(op, "store") == 0 || strcmp(op, "delete") == 0 ||
		   strcmp(op, "inval") == 0 || strcmp(op, "poll") == 0) {
		struct fab_cache_req req = { 0 };
		char reason[256] = "";
		int status;

		req.op = strcmp(op, "store") == 0    ? FAB_CACHE_STORE
			 : strcmp(op, "delete") == 0 ? FAB_CACHE_DELETE
			 : strcmp(op, "inval") == 0  ? FAB_CACHE_INVAL
						     : FAB_CACHE_POLL;
		req.plugin = fab_hdr(m, H_PLUGIN);
		req.key = fab_hdr(m, H_KEY);
		req.offset = fab_hdr_u64(m, H_OFFSET, 0);
		req.size = fab_hdr_u64(m, H_SIZE, 0);
		req.data = natsMsg_GetData(m);
		req.len = (size_t)natsMsg_GetDataLength(m);
		if (req.plugin == NULL || (req.key == NULL && req.op != FAB_CACHE_POLL))
			status = 400;
		else
			status = agent_cache(n->a, &req, NULL, reason, sizeof(reason));
		respond(n, m, status, status, reason, NULL, 0);
	} else if (strcmp(op, "health") == 0) {
		json_t *h = agent_health(n->a);
		char *text = json_dumps(h, JSON_COMPACT);

		json_decref(h);
		respond(n, m, 200, 200, NULL, text, text != NULL ? strlen(text) : 0);
		free(text);
	} else {
		respond(n, m, FAB_FAILED, 400, "unknown operation", NULL, 0);
	}
	natsMsg_Destroy(m);
}

/* --- the slot table from KV ------------------------------------------------------------------ */

static void *kv_main(void *arg)
{
	struct nats_agent *n = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	/* Agents never sign callbacks: secrets stay sealed, unread. */
	fab_slot_kv_follow(n->a->slots, NULL, n->watcher, &n->stop);
	return NULL;
}

/* --- forwarding the up-queue into JetStream ------------------------------------------------------
 */

static void pub_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	struct nats_agent *n = closure;

	(void)js;
	pthread_mutex_lock(&n->mu);
	n->pub_failed = true;
	pthread_mutex_unlock(&n->mu);
	MIMO_DEBUG(COMP, "JetStream refused a message: %s", pae->ErrText ? pae->ErrText : "?");
}

static natsMsg *up_msg(struct nats_agent *n, const struct up_rec *r)
{
	char id[WEBHOOK_ID_LEN], buf[300];
	natsMsg *m = NULL;

	if (natsMsg_Create(&m, n->subject_up, NULL, r->content, (int)r->content_len) != NATS_OK)
		return NULL;
	webhook_make_id(id, r->key_hi, r->key_lo);
	natsMsgHeader_Set(m, H_NATS_MSG_ID, id);
	natsMsgHeader_Set(m, H_AGENT, n->a->o.agent_id);
	fab_hdr_set_u64(m, H_SLOT, r->slot_id);
	snprintf(buf, sizeof(buf), "%.*s", (int)r->plugin_len, r->plugin);
	natsMsgHeader_Set(m, H_PLUGIN, buf);
	snprintf(buf, sizeof(buf), "%.*s", (int)r->msg_id_len, r->msg_id);
	natsMsgHeader_Set(m, H_MSG_ID, buf);
	fab_hdr_set_u64(m, H_ACCEPTED, (uint64_t)r->accepted_ms);
	fab_hdr_set_u64(m, H_EXPIRES, (uint64_t)r->expires_ms);
	snprintf(buf, sizeof(buf), "%016" PRIx64 "%016" PRIx64, r->key_hi, r->key_lo);
	natsMsgHeader_Set(m, H_IDEM, buf);
	return m;
}

static void *fwd_main(void *arg)
{
	struct nats_agent *n = arg;
	struct upq_pos *nexts = calloc(WINDOW, sizeof(*nexts));
	struct mimo_buf rec = { 0 };
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!n->stop && nexts != NULL) {
		struct upq_pos start = { 0 };
		jsPubOptions po;
		size_t cnt = 0;
		bool failed;
		natsStatus s;

		for (; cnt < WINDOW; cnt++) {
			struct up_rec r;
			natsMsg *m;
			int rc = upq_next(n->cons, &r, &nexts[cnt], &rec, cnt == 0 ? 1000 : 0);

			if (rc != 0)
				break;
			if (cnt == 0)
				start = (struct upq_pos){ nexts[0].seg,
							  nexts[0].off - upq_rec_size(&r) };
			m = up_msg(n, &r);
			if (m == NULL || js_PublishMsgAsync(n->js, &m, NULL) != NATS_OK) {
				natsMsg_Destroy(m);
				pthread_mutex_lock(&n->mu);
				n->pub_failed = true;
				pthread_mutex_unlock(&n->mu);
				cnt++;
				break;
			}
		}
		if (cnt == 0)
			continue;
		jsPubOptions_Init(&po);
		po.MaxWait = 10000;
		s = js_PublishAsyncComplete(n->js, &po);
		pthread_mutex_lock(&n->mu);
		failed = n->pub_failed || s != NATS_OK;
		n->pub_failed = false;
		pthread_mutex_unlock(&n->mu);
		if (failed) {
			/* Send the whole window again: JetStream drops the copies it has. */
			MIMO_WARN(COMP, "forwarding to JetStream failed (%s); retrying",
				  natsStatus_GetText(s));
			upq_rewind(n->cons, start);
			for (int i = 0; i < 10 && !n->stop; i++)
				usleep(50000);
			continue;
		}
		for (size_t i = 0; i < cnt; i++)
			upq_release(n->cons, nexts[i]);
	}
	mimo_buf_free(&rec);
	free(nexts);
	return NULL;
}

/* --- start and stop --------------------------------------------------------------------------- */

int nats_agent_start(struct agent *a)
{
	struct nats_agent *n = calloc(1, sizeof(*n));
	char token[400], subj[512], name[256];

	_Static_assert(sizeof(((struct nats_agent *)0)->subject_up) > 400 + 8, "room");
	jsOptions jo;
	int rc;

	if (n == NULL)
		return -ENOMEM;
	n->a = a;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->idle, NULL);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = WINDOW * 2;
	jo.PublishAsync.ErrHandler = pub_err;
	jo.PublishAsync.ErrHandlerClosure = n;
	snprintf(name, sizeof(name), "mimo_agent %s", a->o.agent_id);
	rc = fab_nats_connect(a->o.nats_url, name, 10000, &n->nc, &n->js, &jo);
	if (rc == 0)
		rc = fab_nats_ensure(n->js, &n->kv);
	if (rc != 0)
		goto fail;
	fab_subject_token(a->o.agent_id, token, sizeof(token));
	snprintf(n->subject_up, sizeof(n->subject_up), "mimo.up.%s", token);
	if (kvStore_WatchAll(&n->watcher, n->kv, NULL) != NATS_OK) {
		rc = -EIO;
		goto fail;
	}
	/* The slot table first, so that plugins connecting now are recognised. */
	fab_slot_kv_catch_up(a->slots, NULL, n->watcher);
	n->cons = upq_consumer_open(a->upq, 0);
	if (n->cons == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	a->nats = n;
	fab_subject_rpc(a->o.agent_id, subj, sizeof(subj));
	if (natsConnection_Subscribe(&n->rpc, n->nc, subj, on_rpc, n) != NATS_OK ||
	    natsConnection_Flush(n->nc) != NATS_OK) {
		rc = -EIO;
		goto fail;
	}
	if (pthread_create(&n->kvt, NULL, kv_main, n) != 0 ||
	    pthread_create(&n->fwd, NULL, fwd_main, n) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	MIMO_INFO(COMP, "agent %s registered on %s (%s)", a->o.agent_id, a->o.nats_url, subj);
	return 0;
fail:
	a->nats = NULL;
	natsSubscription_Destroy(n->rpc);
	upq_consumer_close(n->cons);
	kvWatcher_Destroy(n->watcher);
	kvStore_Destroy(n->kv);
	jsCtx_Destroy(n->js);
	natsConnection_Destroy(n->nc);
	free(n);
	return rc;
}

void nats_agent_stop(struct agent *a)
{
	struct nats_agent *n = a->nats;

	if (n == NULL)
		return;
	/* No new requests; those running were woken by agent_cancel_waiters. */
	if (natsSubscription_Drain(n->rpc) == NATS_OK)
		natsSubscription_WaitForDrainCompletion(n->rpc, 5000);
	pthread_mutex_lock(&n->mu);
	while (n->active > 0)
		pthread_cond_wait(&n->idle, &n->mu);
	pthread_mutex_unlock(&n->mu);
	n->stop = true;
	upq_consumer_stop(n->cons);
	kvWatcher_Stop(n->watcher);
	pthread_join(n->fwd, NULL);
	pthread_join(n->kvt, NULL);
	natsSubscription_Destroy(n->rpc);
	upq_consumer_close(n->cons);
	kvWatcher_Destroy(n->watcher);
	kvStore_Destroy(n->kv);
	jsCtx_Destroy(n->js);
	natsConnection_Close(n->nc);
	natsConnection_Destroy(n->nc);
	pthread_cond_destroy(&n->idle);
	pthread_mutex_destroy(&n->mu);
	a->nats = NULL;
	free(n);
}
