/* The keyring and its file module (keyring.h). */
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define COMP "keyring"
/* The longest file that can hold a key (its text is about 100 bytes). */
#define KEY_FILE_MAX 4096

struct mimo_key {
	char *name;
	char *path;
	enum mimo_key_kind kind;
	int refs;     /* the keyring's own (until removed) and every user's */
	bool removed; /* not found by name any more, material refused; listed until unused */
	TAILQ_ENTRY(mimo_key) link;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, mimo_key) g_keys = TAILQ_HEAD_INITIALIZER(g_keys);

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len != 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Open, check and parse a key file (SPDK's rules, checked on the open file). */
static int read_key_file(const char *path, struct mimo_key_material *out, char *err, size_t err_len)
{
	char buf[KEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	if (path[0] != '/')
		return fail(err, err_len, -EINVAL, "key file '%s': the path must be absolute",
			    path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		return fail(err, err_len, rc, "key file '%s': %s", path, strerror(-rc));
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(fd);
		return fail(err, err_len, rc, "key file '%s': %s", path, strerror(-rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, err_len, -EINVAL, "key file '%s': not a regular file", path);
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return fail(err, err_len, -EPERM,
			    "key file '%s': owned by uid %u, must be owned by the daemon's user "
			    "(uid %u)",
			    path, (unsigned)st.st_uid, (unsigned)geteuid());
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return fail(err, err_len, -EPERM,
			    "key file '%s': mode 0%03o lets group or others in; it must be 0600 "
			    "(chmod 0600)",
			    path, (unsigned)(st.st_mode & 0777));
	}
	while (got < sizeof(buf) && (n = read(fd, buf + got, sizeof(buf) - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return fail(err, err_len, rc, "key file '%s': %s", path, strerror(-rc));
		}
		got += (size_t)n;
	}
	close(fd);
	if (got > KEY_FILE_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return fail(err, err_len, -EINVAL, "key file '%s': larger than %d bytes: not a key",
			    path, KEY_FILE_MAX);
	}
	{
		char why[200];

		rc = mimo_key_parse(buf, got, out, why, sizeof(why));
		explicit_bzero(buf, sizeof(buf));
		if (rc != 0)
			return fail(err, err_len, rc, "key file '%s': %s", path, why);
	}
	return 0;
}

int mimo_key_load_arg(const char *arg, struct mimo_key_material *out, char *err, size_t err_len)
{
	char path[PATH_MAX];

	memset(out, 0, sizeof(*out));
	if (strncmp(arg, "DHHC-1:", 7) == 0 || strncmp(arg, "NVMeTLSkey-1:", 13) == 0)
		return mimo_key_parse(arg, strlen(arg), out, err, err_len);
	if (realpath(arg, path) == NULL) {
		int rc = -errno;

		return fail(err, err_len, rc, "key file '%s': %s", arg, strerror(-rc));
	}
	return read_key_file(path, out, err, err_len);
}

static bool name_ok(const char *name)
{
	size_t len = name != NULL ? strnlen(name, MIMO_KEY_NAME_MAX + 1) : 0;

	if (len == 0 || len > MIMO_KEY_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
			return false;
	}
	return true;
}

static struct mimo_key *find(const char *name)
{
	struct mimo_key *k;

	TAILQ_FOREACH(k, &g_keys, link)
	{
		if (!k->removed && strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

int mimo_keyring_file_add_key(const char *name, const char *path, char *err, size_t err_len)
{
	struct mimo_key_material m;
	struct mimo_key *k;
	int rc;

	if (!name_ok(name))
		return fail(err, err_len, -EINVAL,
			    "key name '%s': 1 to %d printable characters without spaces",
			    name != NULL ? name : "", MIMO_KEY_NAME_MAX);
	if (path == NULL || path[0] == '\0')
		return fail(err, err_len, -EINVAL, "key '%s': no path", name);
	rc = read_key_file(path, &m, err, err_len);
	if (rc != 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (k != NULL) {
		k->name = strdup(name);
		k->path = strdup(path);
	}
	if (k == NULL || k->name == NULL || k->path == NULL) {
		if (k != NULL) {
			free(k->name);
			free(k->path);
		}
		free(k);
		mimo_key_material_wipe(&m);
		return fail(err, err_len, -ENOMEM, "out of memory");
	}
	k->kind = m.kind;
	k->refs = 1;
	mimo_key_material_wipe(&m);
	pthread_mutex_lock(&g_lock);
	if (find(name) != NULL) {
		pthread_mutex_unlock(&g_lock);
		free(k->name);
		free(k->path);
		free(k);
		return fail(err, err_len, -EEXIST, "a key named '%s' exists already", name);
	}
	TAILQ_INSERT_TAIL(&g_keys, k, link);
	pthread_mutex_unlock(&g_lock);
	MIMO_INFO(COMP, "key %s (%s) added from %s", name, mimo_key_kind_name(k->kind), path);
	return 0;
}

static void key_free(struct mimo_key *k)
{
	free(k->name);
	free(k->path);
	free(k);
}

/* With the lock held: drop a reference; true when it was the last (then it is off the list:
 * free it unlocked). */
static bool unref_locked(struct mimo_key *k)
{
	if (--k->refs != 0)
		return false;
	TAILQ_REMOVE(&g_keys, k, link);
	return true;
}

int mimo_keyring_file_remove_key(const char *name)
{
	struct mimo_key *k;
	bool last;

	pthread_mutex_lock(&g_lock);
	k = name != NULL ? find(name) : NULL;
	if (k == NULL) {
		pthread_mutex_unlock(&g_lock);
		return -ENOENT;
	}
	k->removed = true;
	last = unref_locked(k);
	pthread_mutex_unlock(&g_lock);
	MIMO_INFO(COMP, "key %s removed", name);
	if (last)
		key_free(k);
	return 0;
}

void mimo_keyring_clear(void)
{
	struct mimo_key *k, *next;

	pthread_mutex_lock(&g_lock);
	for (k = TAILQ_FIRST(&g_keys); k != NULL; k = next) {
		next = TAILQ_NEXT(k, link);
		if (k->removed)
			continue;
		k->removed = true;
		if (unref_locked(k))
			key_free(k);
	}
	pthread_mutex_unlock(&g_lock);
}

struct mimo_key *mimo_keyring_get(const char *name)
{
	struct mimo_key *k;

	if (name == NULL)
		return NULL;
	pthread_mutex_lock(&g_lock);
	k = find(name);
	if (k != NULL)
		k->refs++;
	pthread_mutex_unlock(&g_lock);
	return k;
}

struct mimo_key *mimo_key_ref(struct mimo_key *k)
{
	if (k != NULL) {
		pthread_mutex_lock(&g_lock);
		k->refs++;
		pthread_mutex_unlock(&g_lock);
	}
	return k;
}

void mimo_key_put(struct mimo_key *k)
{
	bool last;

	if (k == NULL)
		return;
	pthread_mutex_lock(&g_lock);
	last = unref_locked(k);
	pthread_mutex_unlock(&g_lock);
	if (last)
		key_free(k);
}

/* Name, path and kind never change once added: readable without the lock. */
const char *mimo_key_name(const struct mimo_key *k)
{
	return k->name;
}

enum mimo_key_kind mimo_key_kind(const struct mimo_key *k)
{
	return k->kind;
}

int mimo_key_get_material(struct mimo_key *k, struct mimo_key_material *out)
{
	char err[512];
	bool removed;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g_lock);
	removed = k->removed;
	pthread_mutex_unlock(&g_lock);
	if (removed) {
		MIMO_ERR(COMP, "key %s was removed from the keyring: it cannot be used", k->name);
		return -EKEYREVOKED;
	}
	rc = read_key_file(k->path, out, err, sizeof(err));
	if (rc != 0) {
		MIMO_ERR(COMP, "key %s: %s", k->name, err);
		return rc;
	}
	if (out->kind != k->kind) {
		MIMO_ERR(COMP, "key %s: %s now holds a %s key, it was added as %s", k->name,
			 k->path, mimo_key_kind_name(out->kind), mimo_key_kind_name(k->kind));
		mimo_key_material_wipe(out);
		return -EKEYREJECTED;
	}
	return 0;
}

static json_t *key_json(const struct mimo_key *k)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:i, s:s, s:s}", "name", k->name, "module",
			 "keyring_file", "removed", k->removed, "probed", false, "refcnt", k->refs,
			 "path", k->path, "kind", mimo_key_kind_name(k->kind));
}

json_t *mimo_keyring_keys_json(void)
{
	json_t *a = json_array();
	struct mimo_key *k;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(k, &g_keys, link)
	json_array_append_new(a, key_json(k));
	pthread_mutex_unlock(&g_lock);
	return a;
}

json_t *mimo_keyring_config_json(void)
{
	json_t *a = json_array();
	struct mimo_key *k;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(k, &g_keys, link)
	{
		if (k->removed)
			continue;
		json_array_append_new(a, json_pack("{s:s, s:{s:s, s:s}}", "method",
						   "keyring_file_add_key", "params", "name",
						   k->name, "path", k->path));
	}
	pthread_mutex_unlock(&g_lock);
	return a;
}
