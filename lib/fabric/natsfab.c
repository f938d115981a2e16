/* NATS plumbing shared by mimo_agent and mimo_gateway (see natsfab.h). */
#include "natsfab.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "seal.h"

#define COMP "nats"

void fab_subject_token(const char *id, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = id; *p != '\0' && o + 4 < len; p++) {
		if (*p == '.' || *p == '*' || *p == '>' || *p == '%' || *p == ' ') {
			o += (size_t)snprintf(out + o, len - o, "%%%02X", (unsigned char)*p);
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

void fab_subject_rpc(const char *agent_id, char *out, size_t len)
{
	char token[400];

	fab_subject_token(agent_id, token, sizeof(token));
	snprintf(out, len, "mimo.agent.%s.rpc", token);
}

int fab_nats_connect(const char *url, const char *name, uint32_t wait_ms, natsConnection **nc,
		     jsCtx **js, jsOptions *jsopts)
{
	natsOptions *o = NULL;
	natsStatus s;
	uint32_t waited = 0;

	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, name);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 250);
	/* Latency over batching: a dispatch is one small message awaited by a person. */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, 64 << 20);
	for (;;) {
		if (s == NATS_OK)
			s = natsConnection_Connect(nc, o);
		if (s != NATS_NO_SERVER || waited >= wait_ms)
			break;
		usleep(100000);
		waited += 100;
		s = NATS_OK;
	}
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		MIMO_ERR(COMP, "cannot connect to %s: %s", url, natsStatus_GetText(s));
		return -ECONNREFUSED;
	}
	s = natsConnection_JetStream(js, *nc, jsopts);
	if (s != NATS_OK) {
		MIMO_ERR(COMP, "no JetStream on %s: %s", url, natsStatus_GetText(s));
		natsConnection_Destroy(*nc);
		*nc = NULL;
		return -EPROTO;
	}
	return 0;
}

int fab_nats_ensure(jsCtx *js, kvStore **kv)
{
	static const char *subjects[] = { FAB_UP_SUBJECTS };
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	kvConfig kc;
	natsStatus s;

	s = js_GetStreamInfo(&si, js, FAB_STREAM, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig_Init(&sc);
		sc.Name = FAB_STREAM;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		/* Each message is consumed once, by one gateway, then removed. */
		sc.Retention = js_WorkQueuePolicy;
		sc.Duplicates = 120LL * 1000000000;
		sc.MaxAge = 7LL * 24 * 3600 * 1000000000;
		s = js_AddStream(&si, js, &sc, NULL, &jerr);
		/* Another agent or gateway may have created it at the same moment. */
		if (s != NATS_OK && jerr == JSStreamNameExistErr)
			s = NATS_OK;
	}
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		MIMO_ERR(COMP, "cannot create stream %s: %s (%d)", FAB_STREAM,
			 natsStatus_GetText(s), (int)jerr);
		return -EIO;
	}
	s = js_KeyValue(kv, js, FAB_KV_BUCKET);
	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = FAB_KV_BUCKET;
		kc.History = 1;
		kc.StorageType = js_FileStorage;
		s = js_CreateKeyValue(kv, js, &kc);
		if (s != NATS_OK)
			s = js_KeyValue(kv, js, FAB_KV_BUCKET);
	}
	if (s != NATS_OK) {
		MIMO_ERR(COMP, "cannot open KV bucket %s: %s", FAB_KV_BUCKET,
			 natsStatus_GetText(s));
		return -EIO;
	}
	return 0;
}

const char *fab_hdr(natsMsg *m, const char *key)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
		return NULL;
	return v;
}

uint64_t fab_hdr_u64(natsMsg *m, const char *key, uint64_t def)
{
	const char *v = fab_hdr(m, key);
	char *end;
	unsigned long long n;

	if (v == NULL)
		return def;
	n = strtoull(v, &end, 10);
	return *end == '\0' && end != v ? n : def;
}

void fab_hdr_set_u64(natsMsg *m, const char *key, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	natsMsgHeader_Set(m, key, buf);
}

static void slot_key(uint64_t id, char *out, size_t len)
{
	snprintf(out, len, "slot.%" PRIu64, id);
}

/* The record as the bucket holds it: the slot's JSON with its secret sealed. NULL on failure. */
static char *slot_kv_text(const char *admin_token, const struct slot_info *si)
{
	char sealed[256];
	struct slot_info copy = *si;
	json_t *j;
	char *text;

	if (fab_seal(admin_token, si->secret, sealed, sizeof(sealed)) != 0)
		return NULL;
	copy.secret[0] = '\0';
	j = slot_to_json(&copy);
	json_object_set_new(j, "secret", json_string(sealed));
	json_object_set_new(j, "sealed", json_true());
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* Store the sealed record under its key; create: only while the key is absent (-EAGAIN when
 * it no longer is). */
static int slot_kv_store(kvStore *kv, const char *admin_token, const struct slot_info *si,
			 bool create)
{
	char key[48], *text = slot_kv_text(admin_token, si);
	natsStatus s;

	if (text == NULL)
		return -EIO;
	slot_key(si->id, key, sizeof(key));
	s = create ? kvStore_CreateString(NULL, kv, key, text)
		   : kvStore_PutString(NULL, kv, key, text);
	free(text);
	if (s == NATS_OK)
		return 0;
	return create ? -EAGAIN : -EIO;
}

int fab_slot_kv_put(kvStore *kv, const char *admin_token, const struct slot_info *si, bool deleted)
{
	char key[48];

	if (!deleted)
		return slot_kv_store(kv, admin_token, si, false);
	slot_key(si->id, key, sizeof(key));
	return kvStore_Delete(kv, key) == NATS_OK ? 0 : -EIO;
}

int fab_slot_kv_create(kvStore *kv, const char *admin_token, const struct slot_info *si)
{
	char key[48];
	kvEntry *e = NULL;
	natsStatus s;

	slot_key(si->id, key, sizeof(key));
	s = kvStore_Get(&e, kv, key);
	if (e != NULL)
		kvEntry_Destroy(e);
	return slot_kv_store(kv, admin_token, si, s == NATS_NOT_FOUND);
}

int fab_slot_kv_parse(const char *admin_token, const void *data, int len, struct slot_info *si)
{
	json_t *j = json_loadb(data, (size_t)len, 0, NULL), *sec;
	char plain[FAB_SECRET_LEN];
	int rc;

	if (j == NULL)
		return -EINVAL;
	sec = json_object_get(j, "secret");
	if (!json_is_string(sec) || json_string_length(sec) >= 200) {
		json_decref(j);
		return -EINVAL;
	}
	/* slot_from_json checks the length of the (sealed) secret against the clear one's
	 * room: unseal first when the key is known, else keep a marker. */
	if (admin_token != NULL &&
	    fab_unseal(admin_token, json_string_value(sec), plain, sizeof(plain)) == 0) {
		json_object_set_new(j, "secret", json_string(plain));
	} else {
		json_object_set_new(j, "secret", json_string(""));
	}
	rc = slot_from_json(j, si);
	json_decref(j);
	return rc;
}

void fab_slot_kv_apply(struct slots *s, const char *admin_token, kvEntry *e)
{
	const char *key = kvEntry_Key(e);
	struct slot_info si = { 0 };

	if (strncmp(key, "slot.", 5) != 0)
		return;
	if (kvEntry_Operation(e) == kvOp_Put) {
		if (fab_slot_kv_parse(admin_token, kvEntry_Value(e), kvEntry_ValueLen(e), &si) != 0)
			return;
		if (admin_token != NULL && si.secret[0] == '\0')
			MIMO_ERR(COMP,
				 "slot %" PRIu64 ": cannot unseal its secret - was it registered "
				 "with another admin token? Its callbacks go unsigned until it is "
				 "rotated",
				 si.id);
		slots_apply(s, &si, false);
	} else {
		si.id = strtoull(key + 5, NULL, 10);
		slots_apply(s, &si, true);
	}
	/* Ids are never reused, whoever took them. */
	slots_set_next_id(s, si.id + 1);
}

void fab_slot_kv_catch_up(struct slots *s, const char *admin_token, kvWatcher *w)
{
	for (;;) {
		kvEntry *e = NULL;

		/* A NULL entry marks the end of the current values. */
		if (kvWatcher_Next(&e, w, 5000) != NATS_OK || e == NULL)
			break;
		fab_slot_kv_apply(s, admin_token, e);
		kvEntry_Destroy(e);
	}
}

void fab_slot_kv_follow(struct slots *s, const char *admin_token, kvWatcher *w,
			const _Atomic bool *stop)
{
	while (!*stop) {
		kvEntry *e = NULL;
		natsStatus st = kvWatcher_Next(&e, w, 500);

		if (st == NATS_TIMEOUT || (st == NATS_OK && e == NULL))
			continue;
		if (st != NATS_OK)
			break;
		fab_slot_kv_apply(s, admin_token, e);
		kvEntry_Destroy(e);
	}
}
