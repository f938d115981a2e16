/*
 * The plugin's cache, filled by the agent's STORE notifies as FUSE's page cache is by
 * FUSE_NOTIFY_STORE: each entry is a byte array with a set of valid ranges. STORE writes bytes
 * and marks them valid, INVAL drops a range (it reads as a hole afterwards), DELETE removes the
 * entry. A read returns the contiguous valid bytes from its offset, as RETRIEVE does in FUSE
 * (pages from offset until the first one missing).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "plugin_internal.h"

#define BUCKETS 256

struct range {
	uint64_t start, end;
};

struct entry {
	struct entry *next;
	char *key;
	size_t key_len;
	uint8_t *data;
	uint64_t size; /* bytes allocated and addressable: the highest end stored */
	struct range *ranges;
	size_t nranges, cap;
};

struct plugin_cache {
	pthread_mutex_t lock;
	uint64_t bytes, max_bytes;
	struct entry *buckets[BUCKETS];
};

static unsigned hash(const char *k, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 16777619u;
	return h % BUCKETS;
}

struct plugin_cache *plugin_cache_new(uint64_t max_bytes)
{
	struct plugin_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	return c;
}

static void entry_free(struct entry *e)
{
	free(e->key);
	free(e->data);
	free(e->ranges);
	free(e);
}

void plugin_cache_free(struct plugin_cache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < BUCKETS; i++) {
		while (c->buckets[i] != NULL) {
			struct entry *e = c->buckets[i];

			c->buckets[i] = e->next;
			entry_free(e);
		}
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct entry **find(struct plugin_cache *c, const char *key, size_t n)
{
	struct entry **pp = &c->buckets[hash(key, n)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->key_len == n && memcmp((*pp)->key, key, n) == 0)
			return pp;
	}
	return pp;
}

/* Remove [start, end) from the valid set. Without memory for the new set every range goes:
 * forgetting valid bytes is always safe, keeping invalidated ones never is. */
static void ranges_cut(struct entry *e, uint64_t start, uint64_t end)
{
	struct range *nr;
	size_t out = 0;

	if (e->nranges == 0)
		return;
	nr = malloc((e->nranges + 1) * sizeof(*nr));
	if (nr == NULL) {
		e->nranges = 0;
		return;
	}
	for (size_t i = 0; i < e->nranges; i++) {
		struct range r = e->ranges[i];

		if (r.end <= start || r.start >= end) {
			nr[out++] = r;
			continue;
		}
		if (r.start < start)
			nr[out++] = (struct range){ r.start, start };
		if (r.end > end)
			nr[out++] = (struct range){ end, r.end };
	}
	free(e->ranges);
	e->cap = e->nranges + 1;
	e->ranges = nr;
	e->nranges = out;
}

/* Add [start, end) to the valid set, merging neighbours. */
static int ranges_add(struct entry *e, uint64_t start, uint64_t end)
{
	size_t i = 0, j;

	ranges_cut(e, start, end);
	if (e->nranges + 1 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 4;
		struct range *nr = realloc(e->ranges, cap * sizeof(*nr));

		if (nr == NULL)
			return -ENOMEM;
		e->ranges = nr;
		e->cap = cap;
	}
	while (i < e->nranges && e->ranges[i].start < start)
		i++;
	memmove(&e->ranges[i + 1], &e->ranges[i], (e->nranges - i) * sizeof(struct range));
	e->ranges[i] = (struct range){ start, end };
	e->nranges++;
	/* Merge with touching neighbours. */
	if (i > 0 && e->ranges[i - 1].end == start) {
		e->ranges[i - 1].end = end;
		memmove(&e->ranges[i], &e->ranges[i + 1],
			(e->nranges - i - 1) * sizeof(struct range));
		e->nranges--;
		i--;
	}
	j = i + 1;
	if (j < e->nranges && e->ranges[j].start == e->ranges[i].end) {
		e->ranges[i].end = e->ranges[j].end;
		memmove(&e->ranges[j], &e->ranges[j + 1],
			(e->nranges - j - 1) * sizeof(struct range));
		e->nranges--;
	}
	return 0;
}

int plugin_cache_store(struct plugin_cache *c, const char *key, size_t key_len, uint64_t offset,
		       const void *data, size_t len)
{
	struct entry **pp, *e;
	uint64_t end;
	int rc = 0;

	if (offset > UINT64_MAX - len)
		return -EINVAL;
	end = offset + len;
	pthread_mutex_lock(&c->lock);
	pp = find(c, key, key_len);
	e = *pp;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL || (e->key = malloc(key_len + 1)) == NULL) {
			free(e);
			rc = -ENOMEM;
			goto out;
		}
		memcpy(e->key, key, key_len);
		e->key[key_len] = '\0';
		e->key_len = key_len;
		*pp = e;
	}
	if (end > e->size) {
		uint8_t *nd;

		if (end - e->size > c->max_bytes - c->bytes) {
			rc = -ENOSPC;
			goto out;
		}
		nd = realloc(e->data, end);
		if (nd == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memset(nd + e->size, 0, end - e->size);
		c->bytes += end - e->size;
		e->data = nd;
		e->size = end;
	}
	if (len > 0) {
		memcpy(e->data + offset, data, len);
		rc = ranges_add(e, offset, end);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void plugin_cache_inval(struct plugin_cache *c, const char *key, size_t key_len, uint64_t offset,
			uint64_t size)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = *find(c, key, key_len);
	if (e != NULL)
		ranges_cut(e, offset,
			   size == 0 || offset > UINT64_MAX - size ? UINT64_MAX : offset + size);
	pthread_mutex_unlock(&c->lock);
}

void plugin_cache_delete(struct plugin_cache *c, const char *key, size_t key_len)
{
	struct entry **pp, *e;

	pthread_mutex_lock(&c->lock);
	pp = find(c, key, key_len);
	e = *pp;
	if (e != NULL) {
		*pp = e->next;
		c->bytes -= e->size;
		entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
}

long plugin_cache_read(struct plugin_cache *c, const char *key, size_t key_len, uint64_t offset,
		       void *buf, size_t len, uint64_t *total)
{
	struct entry *e;
	long rc = -ENODATA;

	pthread_mutex_lock(&c->lock);
	e = *find(c, key, key_len);
	if (e == NULL) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	if (total != NULL)
		*total = e->size;
	if (offset >= e->size) {
		rc = 0;
	} else {
		for (size_t i = 0; i < e->nranges; i++) {
			struct range r = e->ranges[i];

			if (offset >= r.start && offset < r.end) {
				size_t n = (size_t)MIMO_MIN((uint64_t)len, r.end - offset);

				memcpy(buf, e->data + offset, n);
				rc = (long)n;
				break;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}
