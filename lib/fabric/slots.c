/*
 * Slots: a plugin name bound to a callback URL, with a token servers present when they
 * dispatch and a secret that signs the callbacks. Tokens are random (32 bytes) and stored
 * only as SHA-256 hashes, compared in constant time, never logged. Slot ids are never reused.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "bodies.h"
#include "slots.h"
#include "file.h"
#include "log.h"
#include "random.h"

#define COMP	   "agent"
#define SLOTS_FILE "slots.json"
#define MAX_SLOTS  65536

struct slots {
	pthread_mutex_t lock;
	struct slot_info *v;
	size_t n, cap;
	uint64_t next_id;
	slots_persist_fn persist;
	void *arg;
	char *dir;    /* file registry */
	uint64_t gen; /* bumped by every change (read without the lock) */
};

uint64_t slots_generation(struct slots *s)
{
	return __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
}

static void changed(struct slots *s)
{
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
}

void fab_hash_token(const char *token, uint8_t out[32])
{
	SHA256((const unsigned char *)token, strlen(token), out);
}

bool fab_token_equal(const char *a, const char *b)
{
	uint8_t ha[32], hb[32];

	/* Hash both so the comparison takes the same time whatever the lengths. */
	fab_hash_token(a, ha);
	fab_hash_token(b, hb);
	return CRYPTO_memcmp(ha, hb, 32) == 0;
}

struct slots *slots_new(slots_persist_fn persist, void *arg)
{
	struct slots *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->next_id = 1;
	s->persist = persist;
	s->arg = arg;
	return s;
}

void slots_free(struct slots *s)
{
	if (s == NULL)
		return;
	/* Secrets do not linger in freed memory. */
	if (s->v != NULL)
		OPENSSL_cleanse(s->v, s->cap * sizeof(*s->v));
	free(s->v);
	free(s->dir);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void slots_set_next_id(struct slots *s, uint64_t next)
{
	pthread_mutex_lock(&s->lock);
	if (next > s->next_id)
		s->next_id = next;
	pthread_mutex_unlock(&s->lock);
}

uint64_t slots_count(struct slots *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static struct slot_info *find_id(struct slots *s, uint64_t id)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].id == id)
			return &s->v[i];
	}
	return NULL;
}

static struct slot_info *find_plugin(struct slots *s, const char *plugin)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->v[i].plugin, plugin) == 0)
			return &s->v[i];
	}
	return NULL;
}

static int insert(struct slots *s, const struct slot_info *si)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct slot_info *nv = calloc(cap, sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		if (s->n > 0)
			memcpy(nv, s->v, s->n * sizeof(*nv));
		if (s->v != NULL)
			OPENSSL_cleanse(s->v, s->cap * sizeof(*s->v));
		free(s->v);
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = *si;
	changed(s);
	if (si->id >= s->next_id)
		s->next_id = si->id + 1;
	return 0;
}

static void remove_at(struct slots *s, struct slot_info *e)
{
	size_t i = (size_t)(e - s->v);

	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*e));
	s->n--;
	changed(s);
	OPENSSL_cleanse(&s->v[s->n], sizeof(*e));
}

static int new_credentials(struct slot_info *si, char token_out[FAB_TOKEN_HEX])
{
	uint8_t tok[FAB_TOKEN_BYTES], sec[32];
	char b64[48];
	int rc = mimo_random_bytes(tok, sizeof(tok));

	if (rc == 0)
		rc = mimo_random_bytes(sec, sizeof(sec));
	if (rc != 0)
		return rc;
	mimo_hex_encode(tok, sizeof(tok), token_out);
	fab_hash_token(token_out, si->token_hash);
	mimo_base64_encode(sec, sizeof(sec), b64);
	snprintf(si->secret, sizeof(si->secret), "whsec_%s", b64);
	OPENSSL_cleanse(tok, sizeof(tok));
	OPENSSL_cleanse(sec, sizeof(sec));
	return 0;
}

int slots_create(struct slots *s, const char *plugin, const char *url, struct slot_info *si,
		 char token_out[FAB_TOKEN_HEX])
{
	int rc;

	if (!mimo_wire_name_valid(plugin, strlen(plugin)) || !fab_url_valid(url))
		return -EINVAL;
	memset(si, 0, sizeof(*si));
	snprintf(si->plugin, sizeof(si->plugin), "%s", plugin);
	snprintf(si->url, sizeof(si->url), "%s", url);
	si->created = (int64_t)time(NULL);
	rc = new_credentials(si, token_out);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	if (find_plugin(s, plugin) != NULL) {
		rc = -EEXIST;
	} else if (s->n >= MAX_SLOTS) {
		rc = -ENOSPC;
	} else {
		si->id = s->next_id;
		rc = insert(s, si);
		if (rc == 0 && s->persist != NULL) {
			rc = s->persist(s->arg, s, si, false);
			if (rc != 0)
				remove_at(s, find_id(s, si->id));
			else
				s->next_id = si->id + 1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int slots_rotate(struct slots *s, uint64_t id, struct slot_info *si, char token_out[FAB_TOKEN_HEX])
{
	struct slot_info *e, old;
	int rc;

	pthread_mutex_lock(&s->lock);
	e = find_id(s, id);
	if (e == NULL) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	old = *e;
	rc = new_credentials(e, token_out);
	if (rc == 0 && s->persist != NULL)
		rc = s->persist(s->arg, s, e, false);
	if (rc != 0)
		*e = old;
	else
		*si = *e;
	changed(s);
	pthread_mutex_unlock(&s->lock);
	OPENSSL_cleanse(&old, sizeof(old));
	return rc;
}

int slots_delete(struct slots *s, uint64_t id)
{
	struct slot_info *e, old;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	e = find_id(s, id);
	if (e == NULL) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	old = *e;
	remove_at(s, e);
	if (s->persist != NULL) {
		rc = s->persist(s->arg, s, &old, true);
		if (rc != 0)
			insert(s, &old);
	}
	pthread_mutex_unlock(&s->lock);
	OPENSSL_cleanse(&old, sizeof(old));
	return rc;
}

void slots_apply(struct slots *s, const struct slot_info *si, bool deleted)
{
	struct slot_info *e;

	pthread_mutex_lock(&s->lock);
	e = find_id(s, si->id);
	if (deleted) {
		if (e != NULL)
			remove_at(s, e);
	} else if (e != NULL) {
		*e = *si;
		changed(s);
	} else {
		insert(s, si);
	}
	pthread_mutex_unlock(&s->lock);
}

int slots_get(struct slots *s, uint64_t id, struct slot_info *si)
{
	struct slot_info *e;

	pthread_mutex_lock(&s->lock);
	e = find_id(s, id);
	if (e != NULL)
		*si = *e;
	pthread_mutex_unlock(&s->lock);
	return e != NULL ? 0 : -ENOENT;
}

int slots_find_plugin(struct slots *s, const char *plugin, struct slot_info *si)
{
	struct slot_info *e;

	pthread_mutex_lock(&s->lock);
	e = find_plugin(s, plugin);
	if (e != NULL && si != NULL)
		*si = *e;
	pthread_mutex_unlock(&s->lock);
	return e != NULL ? 0 : -ENOENT;
}

static int check(struct slot_info *e, const char *token, struct slot_info *si)
{
	uint8_t h[32];

	if (e == NULL)
		return -ENOENT;
	if (token == NULL)
		return -EACCES;
	fab_hash_token(token, h);
	if (CRYPTO_memcmp(h, e->token_hash, 32) != 0)
		return -EACCES;
	if (si != NULL)
		*si = *e;
	return 0;
}

int slots_check_token(struct slots *s, uint64_t id, const char *token, struct slot_info *si)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = check(find_id(s, id), token, si);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int slots_check_plugin_token(struct slots *s, const char *plugin, const char *token,
			     struct slot_info *si)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = check(find_plugin(s, plugin), token, si);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

json_t *slots_list_json(struct slots *s)
{
	json_t *a = json_array();

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && a != NULL; i++)
		json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:I}", "slot_id",
						   (json_int_t)s->v[i].id, "plugin_name",
						   s->v[i].plugin, "callback_url", s->v[i].url,
						   "created", (json_int_t)s->v[i].created));
	pthread_mutex_unlock(&s->lock);
	return a;
}

json_t *slot_to_json(const struct slot_info *si)
{
	char hash[65];

	mimo_hex_encode(si->token_hash, 32, hash);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}", "slot_id", (json_int_t)si->id,
			 "plugin_name", si->plugin, "callback_url", si->url, "token_sha256", hash,
			 "secret", si->secret, "created", (json_int_t)si->created);
}

static int unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return h[2 * n] == '\0' ? 0 : -EINVAL;
}

int slot_from_json(const json_t *j, struct slot_info *si)
{
	json_int_t id = 0, created = 0;
	const char *plugin = NULL, *url = NULL, *hash = NULL, *secret = NULL;

	memset(si, 0, sizeof(*si));
	if (json_unpack((json_t *)j, "{s:I, s:s, s:s, s:s, s:s, s?I}", "slot_id", &id,
			"plugin_name", &plugin, "callback_url", &url, "token_sha256", &hash,
			"secret", &secret, "created", &created) != 0 ||
	    id <= 0 || !mimo_wire_name_valid(plugin, strlen(plugin)) || !fab_url_valid(url) ||
	    strlen(hash) != 64 || unhex(hash, si->token_hash, 32) != 0 ||
	    strlen(secret) >= sizeof(si->secret))
		return -EINVAL;
	si->id = (uint64_t)id;
	si->created = created;
	snprintf(si->plugin, sizeof(si->plugin), "%s", plugin);
	snprintf(si->url, sizeof(si->url), "%s", url);
	snprintf(si->secret, sizeof(si->secret), "%s", secret);
	return 0;
}

json_t *slots_dump_locked(struct slots *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n && a != NULL; i++)
		json_array_append_new(a, slot_to_json(&s->v[i]));
	return a;
}

/* --- the agent's file registry --------------------------------------------------------------- */

static int persist_file(void *arg, struct slots *s, const struct slot_info *changed, bool deleted)
{
	json_t *root;
	char *text;
	uint64_t next = s->next_id;
	int rc;

	(void)arg;
	(void)deleted;
	if (changed->id >= next)
		next = changed->id + 1;
	root = json_pack("{s:I, s:o}", "next_id", (json_int_t)next, "slots", slots_dump_locked(s));
	if (root == NULL)
		return -ENOMEM;
	text = json_dumps(root, JSON_INDENT(1));
	json_decref(root);
	if (text == NULL)
		return -ENOMEM;
	rc = mimo_file_write_durable(s->dir, SLOTS_FILE, text, strlen(text), 0600);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (rc != 0)
		MIMO_ERR(COMP, "cannot write %s/%s: %s", s->dir, SLOTS_FILE, strerror(-rc));
	return rc;
}

int slots_open_file(struct slots **out, const char *state_dir)
{
	struct slots *s = slots_new(persist_file, NULL);
	char path[4096];
	json_error_t jerr;
	json_t *root, *arr, *e;
	char *text = NULL;
	size_t len, i;
	struct stat st;
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->dir = strdup(state_dir);
	if (s->dir == NULL) {
		slots_free(s);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", state_dir, SLOTS_FILE);
	rc = mimo_file_read_all(path, 64u << 20, &text, &len);
	if (rc == -ENOENT) {
		*out = s;
		return 0;
	}
	if (rc != 0) {
		MIMO_ERR(COMP, "cannot read %s: %s", path, strerror(-rc));
		slots_free(s);
		return rc;
	}
	/* Secrets are in this file: refuse to trust one others can read or write. */
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		MIMO_WARN(COMP, "%s was mode %03o; made 0600", path, st.st_mode & 0777);
		chmod(path, 0600);
	}
	root = json_loadb(text, len, 0, &jerr);
	OPENSSL_cleanse(text, len);
	free(text);
	arr = json_object_get(root, "slots");
	if (root == NULL || !json_is_array(arr)) {
		MIMO_ERR(COMP, "%s is not a slot registry (%s); refusing to start over it", path,
			 root == NULL ? jerr.text : "no \"slots\" array");
		json_decref(root);
		slots_free(s);
		return -EINVAL;
	}
	json_array_foreach(arr, i, e)
	{
		struct slot_info si;

		if (slot_from_json(e, &si) != 0) {
			MIMO_ERR(COMP, "%s: slot entry %zu is malformed; refusing to start", path,
				 i);
			json_decref(root);
			slots_free(s);
			return -EINVAL;
		}
		insert(s, &si);
		OPENSSL_cleanse(&si, sizeof(si));
	}
	if (json_is_integer(json_object_get(root, "next_id")))
		slots_set_next_id(s,
				  (uint64_t)json_integer_value(json_object_get(root, "next_id")));
	json_decref(root);
	*out = s;
	return 0;
}

/* --- the admin token ------------------------------------------------------------------------- */

int fab_admin_token_load(const char *path, char token[FAB_TOKEN_HEX + 16])
{
	char *text = NULL;
	size_t len;
	int rc = mimo_file_read_all(path, 4096, &text, &len);

	if (rc == 0) {
		while (len > 0 &&
		       (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
			len--;
		if (len < 16 || len > FAB_TOKEN_HEX + 14) {
			MIMO_ERR(COMP, "%s: an admin token must be 16-78 characters", path);
			OPENSSL_cleanse(text, len);
			free(text);
			return -EINVAL;
		}
		memcpy(token, text, len);
		token[len] = '\0';
		OPENSSL_cleanse(text, len);
		free(text);
		return 0;
	}
	if (rc == -ENOENT) {
		uint8_t raw[FAB_TOKEN_BYTES];
		char line[FAB_TOKEN_HEX + 1];
		char *slash, dir[4096];
		int fd;

		rc = mimo_random_bytes(raw, sizeof(raw));
		if (rc != 0)
			return rc;
		mimo_hex_encode(raw, sizeof(raw), token);
		OPENSSL_cleanse(raw, sizeof(raw));
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			mimo_mkdir_p(dir, 0700);
		}
		/* O_EXCL: two processes starting together must not each write their own. */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				return fab_admin_token_load(path, token);
			rc = -errno;
			MIMO_ERR(COMP, "cannot create %s: %s", path, strerror(-rc));
			return rc;
		}
		snprintf(line, sizeof(line), "%s\n", token);
		if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd) != 0) {
			rc = -EIO;
			close(fd);
			unlink(path);
			return rc;
		}
		close(fd);
		MIMO_INFO(COMP, "created admin token file %s (mode 0600)", path);
		return 0;
	}
	MIMO_ERR(COMP, "cannot read %s: %s", path, strerror(-rc));
	return rc;
}
