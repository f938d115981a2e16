/*
 * The keyring: named keys, as SPDK's keyring and its "file" module have them. A key is a file
 * holding one secret in its interchange form (lib/util/keyfmt.h: "DHHC-1:..." for
 * DH-HMAC-CHAP, "NVMeTLSkey-1:..." for a TLS PSK), added by name and path. The keyring keeps
 * the name and the path, never the secret: the file is read, checked and decoded each time a
 * key is used, so rewriting the file changes the key for the next use, and the secret lives in
 * memory only while an authentication needs it.
 *
 * Rules for the file, as SPDK's keyring_file checks them: an absolute path, a regular file,
 * owned by the daemon's (effective) user, with no permission bits for group or others (0600
 * or 0400). And its content must parse, CRC-32 included, when the key is added.
 *
 * Users of keys (nvmf hosts, bdev_nvme controllers, and TLS when it lands) hold a reference:
 *
 *     struct mimo_key *k = mimo_keyring_get("key0");         NULL: no such key
 *     struct mimo_key_material m;
 *     if (mimo_key_kind(k) == MIMO_KEY_TLS_PSK && mimo_key_get_material(k, &m) == 0) {
 *             ... m.key[0 .. m.len), m.hash (hh) ...
 *             mimo_key_material_wipe(&m);
 *     }
 *     mimo_key_put(k);
 *
 * A key removed while referenced stays (listed "removed": true) until its last reference
 * goes, but its material can no longer be had (-EKEYREVOKED): whatever uses it fails closed.
 *
 * Threads: every function may be called from any thread (one mutex).
 */
#ifndef MIMO_KEYRING_H
#define MIMO_KEYRING_H

#include <jansson.h>
#include <stddef.h>

#include "keyfmt.h"

#define MIMO_KEY_NAME_MAX 255

struct mimo_key;

/* Register keyring_file_add_key, keyring_file_remove_key and keyring_get_keys: defined by the
 * keyring's RPC library (keyring_rpc_dep), for daemons (mimo/jsonrpc.h, "Registration"). */
void mimo_register_keyring(void);

/*
 * Add a key named name (1..255 printable characters) read from path. Returns 0, -EEXIST (a
 * key has that name), -EINVAL (bad name, relative path, not a regular file, not a key),
 * -EPERM (owner or permissions), -EBADMSG (bad CRC-32), -ENOENT and other errnos of open;
 * err says what is wrong in words.
 */
int mimo_keyring_file_add_key(const char *name, const char *path, char *err, size_t err_len);
/* Returns 0 or -ENOENT. */
int mimo_keyring_file_remove_key(const char *name);
/* Drop every key (at exit): references held elsewhere keep theirs. */
void mimo_keyring_clear(void);

/* The key of that name, with a reference (mimo_key_put); NULL when there is none. */
struct mimo_key *mimo_keyring_get(const char *name);
struct mimo_key *mimo_key_ref(struct mimo_key *key);
void mimo_key_put(struct mimo_key *key);
const char *mimo_key_name(const struct mimo_key *key);
/* The kind its file held when it was added. */
enum mimo_key_kind mimo_key_kind(const struct mimo_key *key);
/*
 * Read, check and decode the key's file now. Returns 0 with the secret in *out (wipe it),
 * -EKEYREVOKED (the key was removed), or the errors of add (the file changed since, or its
 * permissions did; also -EKEYREJECTED when it now holds another kind of key).
 */
int mimo_key_get_material(struct mimo_key *key, struct mimo_key_material *out);

/*
 * For tools (mimo_perf, mimo_identify: --dhchap-key): arg is the secret itself ("DHHC-1:...",
 * "NVMeTLSkey-1:...") or the path of a file holding it, relative or absolute, checked as
 * keyring_file_add_key checks its files. Returns 0 or what add would, with err in words.
 */
int mimo_key_load_arg(const char *arg, struct mimo_key_material *out, char *err, size_t err_len);

/* keyring_get_keys: [{name, module, removed, probed, refcnt, path, kind}], no secret. */
json_t *mimo_keyring_keys_json(void);
/* save_config's "keyring" subsystem: keyring_file_add_key {name, path} for each key. */
json_t *mimo_keyring_config_json(void);

#endif
