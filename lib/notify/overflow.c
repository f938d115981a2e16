#include "overflow.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "envelope.h"

struct notify_ovf_chunk {
	_Atomic(struct notify_ovf_chunk *) next; /* set once the chunk is full: sealed */
	size_t size;				 /* bytes mapped, this header included */
	_Atomic size_t committed;		 /* end of the last record published */
	_Alignas(8) char data[];
};

/* A record: this header, the name, the payload, padded to 8 bytes. */
struct ovf_rec {
	uint32_t size;
	uint16_t name_len;
	uint16_t flags;
	uint32_t payload_len;
	uint32_t pad;
	int64_t timestamp;
};

static size_t rec_size(size_t name_len, size_t payload_len)
{
	return (sizeof(struct ovf_rec) + name_len + payload_len + 7) & ~(size_t)7;
}

void notify_ovf_init(struct notify_ovf *o, _Atomic int *active, uint64_t max_bytes)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	o->active = active;
	atomic_store(active, 0);
	atomic_store(&o->max_bytes, max_bytes);
}

static void unmap_chunk(struct notify_ovf *o, struct notify_ovf_chunk *c)
{
	atomic_fetch_sub(&o->bytes, c->size);
	munmap(c, c->size);
}

void notify_ovf_fini(struct notify_ovf *o)
{
	struct notify_ovf_chunk *c = o->head != NULL ? o->head : atomic_load(&o->first);

	while (c != NULL) {
		struct notify_ovf_chunk *next = atomic_load(&c->next);

		unmap_chunk(o, c);
		c = next;
	}
	o->head = o->tail = NULL;
	atomic_store(&o->first, NULL);
	o->head_off = o->tail_used = 0;
	if (o->active != NULL)
		atomic_store(o->active, 0);
}

void notify_ovf_abandon(struct notify_ovf *o)
{
	pthread_mutex_init(&o->lock, NULL);
	o->head = o->tail = NULL;
	atomic_store(&o->first, NULL);
	o->head_off = o->tail_used = 0;
	atomic_store(&o->bytes, 0);
	if (o->active != NULL)
		atomic_store(o->active, 0);
}

int notify_ovf_push(struct notify_ovf *o, int64_t timestamp, const char *name, uint16_t name_len,
		    const char *payload, uint32_t payload_len, unsigned flags)
{
	size_t need = rec_size(name_len, payload_len);
	struct ovf_rec h = { .size = (uint32_t)need,
			     .name_len = name_len,
			     .flags = (uint16_t)flags,
			     .payload_len = payload_len,
			     .timestamp = timestamp };
	struct notify_ovf_chunk *c;
	char *dst;

	pthread_mutex_lock(&o->lock);
	c = o->tail;
	if (c == NULL || o->tail_used + need > c->size - sizeof(*c)) {
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		size_t size = sizeof(*c) + need > NOTIFY_OVF_CHUNK
				      ? (sizeof(*c) + need + page - 1) & ~(page - 1)
				      : NOTIFY_OVF_CHUNK;
		void *p;

		if (atomic_load(&o->bytes) + size > atomic_load(&o->max_bytes)) {
			pthread_mutex_unlock(&o->lock);
			return -ENOBUFS;
		}
		/* Populated at once: the call that maps a chunk pays for its pages (about
		 * 0.1 ms a MiB), the next ~10,000 calls pay no page fault each 4 KiB (a fault
		 * costs microseconds: it would be every 50th call's latency). Given back whole
		 * when the sender has read the chunk. */
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED) {
			pthread_mutex_unlock(&o->lock);
			return -ENOMEM;
		}
		c = p;
		atomic_init(&c->next, NULL);
		c->size = size;
		atomic_init(&c->committed, 0);
		atomic_fetch_add(&o->bytes, size);
		if (atomic_load(&o->bytes) > atomic_load(&o->peak_bytes))
			atomic_store(&o->peak_bytes, atomic_load(&o->bytes));
		/* Everything committed to the old tail is final: seal it. */
		if (o->tail != NULL)
			atomic_store_explicit(&o->tail->next, c, memory_order_release);
		else
			atomic_store_explicit(&o->first, c, memory_order_release);
		o->tail = c;
		o->tail_used = 0;
	}
	/* From now on every producer comes here, until the sender has taken it all. */
	atomic_store_explicit(o->active, 1, memory_order_relaxed);
	dst = c->data + o->tail_used;
	memcpy(dst, &h, sizeof(h));
	memcpy(dst + sizeof(h), name, name_len);
	if (payload_len > 0)
		memcpy(dst + sizeof(h) + name_len, payload, payload_len);
	o->tail_used += need;
	atomic_fetch_add(&o->pushed, 1);
	atomic_store_explicit(&c->committed, o->tail_used, memory_order_release);
	pthread_mutex_unlock(&o->lock);
	return 0;
}

/* The next record, or NULL; unmaps chunks read to their end. */
static const struct ovf_rec *peek(struct notify_ovf *o)
{
	for (;;) {
		struct notify_ovf_chunk *next;

		if (o->head == NULL) {
			o->head = atomic_load_explicit(&o->first, memory_order_acquire);
			o->head_off = 0;
			if (o->head == NULL)
				return NULL;
		}
		if (o->head_off < atomic_load_explicit(&o->head->committed, memory_order_acquire))
			return (const struct ovf_rec *)(o->head->data + o->head_off);
		next = atomic_load_explicit(&o->head->next, memory_order_acquire);
		if (next == NULL)
			return NULL;
		/* Sealed: its last records were committed before next was set. */
		if (o->head_off < atomic_load_explicit(&o->head->committed, memory_order_acquire))
			continue;
		/* first may still name this chunk: only settle() (under the lock) reads it
		 * again, after resetting it. */
		unmap_chunk(o, o->head);
		o->head = next;
		o->head_off = 0;
	}
}

bool notify_ovf_ready(struct notify_ovf *o)
{
	return peek(o) != NULL;
}

int notify_ovf_pop_envelope(struct notify_ovf *o, struct mimo_buf *out)
{
	const struct ovf_rec *r = peek(o);
	const char *name;
	int rc;

	if (r == NULL)
		return 0;
	name = (const char *)(r + 1);
	rc = notify_envelope_build(out, name, r->name_len, name + r->name_len, r->payload_len,
				   r->flags, r->timestamp) == 0
		     ? 1
		     : -ENOMEM;
	o->head_off += r->size;
	atomic_fetch_add(&o->popped, 1);
	return rc;
}

void notify_ovf_settle(struct notify_ovf *o)
{
	if (!atomic_load_explicit(o->active, memory_order_relaxed))
		return;
	pthread_mutex_lock(&o->lock);
	if (atomic_load(&o->pushed) == atomic_load(&o->popped)) {
		/* Everything appended has been read: give the chunks back (the tail, at most
		 * the one before it); the next burst maps a fresh one. */
		struct notify_ovf_chunk *c = o->head != NULL ? o->head : atomic_load(&o->first);

		while (c != NULL) {
			struct notify_ovf_chunk *next = atomic_load(&c->next);

			unmap_chunk(o, c);
			c = next;
		}
		o->tail = o->head = NULL;
		o->tail_used = o->head_off = 0;
		atomic_store(&o->first, NULL);
		atomic_store_explicit(o->active, 0, memory_order_relaxed);
	}
	pthread_mutex_unlock(&o->lock);
}
