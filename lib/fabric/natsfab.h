/*
 * How agents and gateways use NATS (docs/agent.md, "More than one host"):
 *
 *  - mimo.agent.<id>.rpc        core request-reply, gateway -> agent: dispatch, request, cache.
 *                               Operation and parameters in headers, content as the payload
 *                               (binary-safe). No responders = the agent is offline.
 *  - mimo.up.<id>               messages up, published by agents into the JetStream stream
 *                               MIMO_UP (file storage, work-queue retention, 2-minute duplicate
 *                               window keyed by Nats-Msg-Id = the message's webhook-id);
 *                               gateways consume it with the shared durable pull consumer
 *                               "mimo-gateway" and acknowledge after the callback answered 2xx.
 *  - KV bucket mimo_slots       the slot registry, written by gateways, watched by agents.
 *                               Secrets in it are sealed (AES-256-GCM, key from the admin token).
 * <id> is the agent id with '.', '*', '>', '%' and blanks percent-encoded.
 *
 * Threading: any thread (cnats's objects are thread-safe); fab_slot_kv_follow is a thread's
 * loop. Memory: a header value from fab_hdr belongs to its message and lives as long as it;
 * the caller's buffers otherwise. Errors: 0 or a negative errno; fab_nats_connect and
 * fab_nats_ensure log the reason.
 */
#ifndef MIMO_NATSFAB_H
#define MIMO_NATSFAB_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#include "slots.h"

#define FAB_STREAM	"MIMO_UP"
#define FAB_UP_SUBJECTS "mimo.up.>"
#define FAB_CONSUMER	"mimo-gateway"
#define FAB_KV_BUCKET	"mimo_slots"

/* Headers of rpc requests and replies, and of messages up. */
#define H_OP	      "Mimo-Op"
#define H_SLOT	      "Mimo-Slot-Id"
#define H_PLUGIN      "Mimo-Plugin"
#define H_MSG_ID      "Mimo-Message-Id"
#define H_TTL	      "Mimo-Ttl-Ms"
#define H_TIMEOUT     "Mimo-Timeout-Ms"
#define H_KEY	      "Mimo-Key"
#define H_OFFSET      "Mimo-Offset"
#define H_SIZE	      "Mimo-Size"
#define H_STATUS      "Mimo-Status"
#define H_CODE	      "Mimo-Code"
#define H_REASON      "Mimo-Reason"
#define H_AGENT	      "Mimo-Agent-Id"
#define H_ACCEPTED    "Mimo-Accepted-Ms"
#define H_EXPIRES     "Mimo-Expires-Ms"
#define H_IDEM	      "Mimo-Idempotency-Key"
#define H_NATS_MSG_ID "Nats-Msg-Id"

/* Connect (retrying for up to wait_ms while the server is not there yet), with reconnects
 * for ever and SendAsap; and a JetStream context. */
int fab_nats_connect(const char *url, const char *name, uint32_t wait_ms, natsConnection **nc,
		     jsCtx **js, jsOptions *jsopts);
/* Create the stream and the slots bucket if missing. */
int fab_nats_ensure(jsCtx *js, kvStore **kv);
/* <id> as a subject token (percent-encoded, see above), cut to fit len. */
void fab_subject_token(const char *id, char *out, size_t len);
/* mimo.agent.<id>.rpc: where an agent answers the gateways (512 bytes hold any). */
void fab_subject_rpc(const char *agent_id, char *out, size_t len);
/* Header helpers. */
const char *fab_hdr(natsMsg *m, const char *key);
uint64_t fab_hdr_u64(natsMsg *m, const char *key, uint64_t def);
void fab_hdr_set_u64(natsMsg *m, const char *key, uint64_t v);

/* A slot record in the KV bucket (secret sealed) and back. */
int fab_slot_kv_put(kvStore *kv, const char *admin_token, const struct slot_info *si, bool deleted);
/* Store a slot whose id must be new everywhere (another gateway may have just taken it): as
 * fab_slot_kv_put when the key exists, else created only if still absent - -EAGAIN when another
 * gateway created it first, -EIO when the secret cannot be sealed. */
int fab_slot_kv_create(kvStore *kv, const char *admin_token, const struct slot_info *si);
int fab_slot_kv_parse(const char *admin_token, const void *data, int len, struct slot_info *si);

/* Following the bucket into a registry (s). admin_token NULL: secrets are not unsealed (an
 * agent never signs callbacks); else a secret that does not unseal is logged and left empty.
 * Entries that are not slots, or do not parse, are skipped. */
void fab_slot_kv_apply(struct slots *s, const char *admin_token, kvEntry *e);
/* The bucket's current values, at start (before anything needs a slot). Blocks up to 5 s for
 * each entry. */
void fab_slot_kv_catch_up(struct slots *s, const char *admin_token, kvWatcher *w);
/* Every change from then on, until *stop is set (checked every 500 ms) or the watcher is
 * stopped: a thread's loop. */
void fab_slot_kv_follow(struct slots *s, const char *admin_token, kvWatcher *w,
			const _Atomic bool *stop);

#endif
