/*
 * Slots: a plugin name bound to a callback URL, with a token that servers present when they
 * dispatch and a secret that signs the callbacks (docs/agent.md, "Slots"). The registry is
 * kept in a file by a lone agent (state_dir/slots.json), and in the NATS KV bucket by the
 * gateways (natsfab.h); agents behind NATS follow the bucket with slots_apply. Also here: the
 * admin token, which guards slot changes.
 *
 * Threading: every function may be called from any thread (the registry has its own lock);
 * a slots_persist_fn runs with that lock held, so it must not call back into the registry
 * except slots_dump_locked. Memory: struct slot_info is a value (no pointers), copied in and
 * out; a json_t * returned is a new reference the caller releases (json_decref).
 * Errors: functions returning int return 0 or a negative errno; those returning a pointer
 * return NULL only when out of memory.
 */
#ifndef MIMO_FAB_SLOTS_H
#define MIMO_FAB_SLOTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/wire.h"

#define FAB_TOKEN_BYTES 32
#define FAB_TOKEN_HEX	(2 * FAB_TOKEN_BYTES + 1)
#define FAB_SECRET_LEN	64 /* "whsec_" + base64(32 bytes) + NUL = 51 */
#define FAB_URL_MAX	1024

struct slot_info {
	uint64_t id;
	char plugin[MIMO_WIRE_MAX_NAME + 1];
	char url[FAB_URL_MAX];
	uint8_t token_hash[32]; /* SHA-256 of the token: the token itself is never stored */
	char secret[FAB_SECRET_LEN];
	int64_t created;
};

struct slots;

/* Persistence of one change (the file registry rewrites its file; the gateway's writes the
 * NATS KV bucket). Called with the registry's lock held; a failure (its negative errno) undoes
 * the change and is what the change returns. */
typedef int (*slots_persist_fn)(void *arg, struct slots *s, const struct slot_info *changed,
				bool deleted);

/* An empty registry; persist may be NULL (changes stay in memory). */
struct slots *slots_new(slots_persist_fn persist, void *arg);
void slots_free(struct slots *s);
/* The agent's registry: state_dir/slots.json, mode 0600 (secrets in clear, like SSH keys). */
int slots_open_file(struct slots **out, const char *state_dir);
/* Apply a change made elsewhere (the KV watcher): no persistence. */
void slots_apply(struct slots *s, const struct slot_info *si, bool deleted);

/* -EEXIST (a slot already serves that plugin), -EINVAL, or the persistence's error.
 * token_out receives the token (hex), si->secret the secret. */
int slots_create(struct slots *s, const char *plugin, const char *url, struct slot_info *si,
		 char token_out[FAB_TOKEN_HEX]);
/* A new token and secret for slot id (-ENOENT: no such slot). */
int slots_rotate(struct slots *s, uint64_t id, struct slot_info *si, char token_out[FAB_TOKEN_HEX]);
int slots_delete(struct slots *s, uint64_t id);
/* -ENOENT when there is no such slot. */
int slots_get(struct slots *s, uint64_t id, struct slot_info *si);
int slots_find_plugin(struct slots *s, const char *plugin, struct slot_info *si);
/* -ENOENT (no such slot: 401); -EACCES (wrong token: 403). Constant-time comparison. */
int slots_check_token(struct slots *s, uint64_t id, const char *token, struct slot_info *si);
/* As above, for a plugin name (cache endpoints). */
int slots_check_plugin_token(struct slots *s, const char *plugin, const char *token,
			     struct slot_info *si);
/* The slots as the API lists them (no hashes, no secrets). */
json_t *slots_list_json(struct slots *s);
/* All slots, for persistence (from a slots_persist_fn): full records, hashes and secrets. */
json_t *slots_dump_locked(struct slots *s);
/* One full record and back (-EINVAL: not a slot's record). */
int slot_from_json(const json_t *j, struct slot_info *si);
json_t *slot_to_json(const struct slot_info *si);
uint64_t slots_count(struct slots *s);
/* Changes with every change of the registry: a reader may keep a copy while it stays. Reads
 * no lock. */
uint64_t slots_generation(struct slots *s);
/* Ids below next are taken (ids are never reused). */
void slots_set_next_id(struct slots *s, uint64_t next);

/* SHA-256 of a token. */
void fab_hash_token(const char *token, uint8_t out[32]);

/* The admin token: read from path, or created there (0600) with a random value. Logs why it
 * could not. */
int fab_admin_token_load(const char *path, char token[FAB_TOKEN_HEX + 16]);
/* Compare a presented token with the admin token in constant time. */
bool fab_token_equal(const char *a, const char *b);

#endif
