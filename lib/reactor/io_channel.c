/*
 * io_devices and per-reactor io_channels (SPDK's model): a module registers an io_device, and
 * each reactor that uses it gets one refcounted channel holding that reactor's state for it.
 * The registry is shared (a mutex, taken only when channels come and go); a channel itself is
 * touched only by its reactor.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reactor_internal.h"
#include "log.h"

#define COMP "reactor"

struct io_device {
	void *dev;
	mimo_io_channel_create_cb create_cb;
	mimo_io_channel_destroy_cb destroy_cb;
	size_t ctx_size;
	char name[48];
	uint32_t channels; /* under g_lock */
	bool unregistering;
	mimo_msg_fn unreg_done;
	void *unreg_arg;
	struct mimo_reactor *unreg_reactor;
	TAILQ_ENTRY(io_device) link;
};

struct mimo_io_channel {
	struct io_device *dev;
	struct mimo_reactor *r;
	uint32_t ref;
	bool destroying;
	TAILQ_ENTRY(mimo_io_channel) link;
	_Alignas(16) char ctx[];
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, io_device) g_devices = TAILQ_HEAD_INITIALIZER(g_devices);

static struct io_device *find_device(void *dev)
{
	struct io_device *d;

	TAILQ_FOREACH(d, &g_devices, link)
	{
		if (d->dev == dev)
			return d;
	}
	return NULL;
}

void mimo_io_device_register(void *io_device, mimo_io_channel_create_cb create_cb,
			     mimo_io_channel_destroy_cb destroy_cb, size_t ctx_size,
			     const char *name)
{
	struct io_device *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		MIMO_ERR(COMP, "io_device %s: out of memory", name ? name : "?");
		return;
	}
	d->dev = io_device;
	d->create_cb = create_cb;
	d->destroy_cb = destroy_cb;
	d->ctx_size = ctx_size;
	snprintf(d->name, sizeof(d->name), "%s", name ? name : "io_device");
	pthread_mutex_lock(&g_lock);
	if (find_device(io_device) != NULL) {
		pthread_mutex_unlock(&g_lock);
		MIMO_ERR(COMP, "io_device %s registered twice", d->name);
		free(d);
		return;
	}
	TAILQ_INSERT_TAIL(&g_devices, d, link);
	pthread_mutex_unlock(&g_lock);
}

static void send_retry(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	if (mimo_reactor_post(r, fn, arg) != 0)
		MIMO_ERR(COMP, "out of memory: a channel message is lost");
}

struct unreg_done_ctx {
	mimo_msg_fn fn;
	void *arg;
};

static void unreg_done_msg(void *p)
{
	struct unreg_done_ctx *c = p;

	c->fn(c->arg);
	free(c);
}

/*
 * The last channel of an unregistering device is gone: forget the device (g_lock held) and
 * say what must run once the lock is released - never run callbacks under it, as they may
 * well unregister another device.
 */
struct unreg_done {
	mimo_msg_fn fn;
	void *arg;
	struct mimo_reactor *reactor; /* NULL: run on the calling thread */
};

static struct unreg_done finish_unregister_locked(struct io_device *d)
{
	struct unreg_done u = { d->unreg_done, d->unreg_arg, d->unreg_reactor };

	TAILQ_REMOVE(&g_devices, d, link);
	free(d);
	return u;
}

static void run_unreg_done(struct unreg_done u)
{
	struct unreg_done_ctx *c;

	if (u.fn == NULL)
		return;
	if (u.reactor == NULL) {
		u.fn(u.arg);
		return;
	}
	c = malloc(sizeof(*c));
	if (c == NULL) {
		u.fn(u.arg); /* out of memory: better on the wrong thread than never */
		return;
	}
	c->fn = u.fn;
	c->arg = u.arg;
	send_retry(u.reactor, unreg_done_msg, c);
}

void mimo_io_device_unregister(void *io_device, mimo_msg_fn done, void *arg)
{
	struct unreg_done u = { 0 };
	struct io_device *d;

	pthread_mutex_lock(&g_lock);
	d = find_device(io_device);
	if (d == NULL) {
		pthread_mutex_unlock(&g_lock);
		MIMO_ERR(COMP, "unregistering an unknown io_device");
		if (done != NULL)
			done(arg);
		return;
	}
	d->unregistering = true;
	d->unreg_done = done;
	d->unreg_arg = arg;
	d->unreg_reactor = mimo_reactor_current();
	if (d->channels == 0) {
		/* Nothing to wait for: done runs now, on this thread. */
		d->unreg_reactor = NULL;
		u = finish_unregister_locked(d);
	}
	pthread_mutex_unlock(&g_lock);
	run_unreg_done(u);
}

struct mimo_io_channel *mimo_get_io_channel(void *io_device)
{
	struct mimo_reactor *r = mimo_reactor_current();
	struct mimo_io_channel *ch;
	struct io_device *d;

	if (r == NULL)
		return NULL;
	TAILQ_FOREACH(ch, &r->channels, link)
	{
		if (ch->dev->dev == io_device && !ch->destroying) {
			ch->ref++;
			return ch;
		}
	}
	pthread_mutex_lock(&g_lock);
	d = find_device(io_device);
	if (d == NULL || d->unregistering) {
		pthread_mutex_unlock(&g_lock);
		return NULL;
	}
	d->channels++;
	pthread_mutex_unlock(&g_lock);

	ch = calloc(1, sizeof(*ch) + d->ctx_size);
	if (ch == NULL || (d->create_cb != NULL && d->create_cb(io_device, ch->ctx) != 0)) {
		struct unreg_done u = { 0 };

		free(ch);
		pthread_mutex_lock(&g_lock);
		d->channels--;
		if (d->unregistering && d->channels == 0)
			u = finish_unregister_locked(d);
		pthread_mutex_unlock(&g_lock);
		run_unreg_done(u);
		return NULL;
	}
	ch->dev = d;
	ch->r = r;
	ch->ref = 1;
	TAILQ_INSERT_TAIL(&r->channels, ch, link);
	return ch;
}

static void destroy_channel(struct mimo_io_channel *ch)
{
	struct io_device *d = ch->dev;

	TAILQ_REMOVE(&ch->r->channels, ch, link);
	if (d->destroy_cb != NULL)
		d->destroy_cb(d->dev, ch->ctx);
	struct unreg_done u = { 0 };

	free(ch);
	pthread_mutex_lock(&g_lock);
	d->channels--;
	if (d->unregistering && d->channels == 0)
		u = finish_unregister_locked(d);
	pthread_mutex_unlock(&g_lock);
	run_unreg_done(u);
}

static void put_channel_msg(void *p)
{
	struct mimo_io_channel *ch = p;

	/* Someone may have taken a new reference since the put. */
	if (ch->ref == 0)
		destroy_channel(ch);
	else
		ch->destroying = false;
}

void mimo_put_io_channel(struct mimo_io_channel *ch)
{
	if (ch == NULL || ch->ref == 0)
		return;
	if (--ch->ref > 0)
		return;
	if (ch->r->releasing) {
		destroy_channel(ch); /* the reactor is stopping: no message will run */
		return;
	}
	/* Destroy from a message, not from inside the caller's callback chain (as SPDK). */
	ch->destroying = true;
	send_retry(ch->r, put_channel_msg, ch);
}

void io_channels_release_all(struct mimo_reactor *r)
{
	struct mimo_io_channel *ch;

	/* Newest first: a channel's create took the channels it holds (a bdev's module channel)
	 * before it joined the list. Destroying it puts those; with releasing set they go at
	 * once and leave the list, so the loop never meets a freed channel. */
	r->releasing = true;
	while ((ch = TAILQ_LAST(&r->channels, channel_list)) != NULL) {
		if (ch->ref > 0)
			MIMO_WARN(COMP, "reactor %u stops with a channel of %s still held",
				  r->index, ch->dev->name);
		ch->ref = 0;
		destroy_channel(ch);
	}
}

void mimo_reactor_foreach_channel(mimo_channel_info_fn fn, void *arg)
{
	struct mimo_reactor *r = mimo_reactor_current();
	struct mimo_io_channel *ch;

	if (r == NULL)
		return;
	/* The device's name is fixed at registration and the device outlives its channels. */
	TAILQ_FOREACH(ch, &r->channels, link)
	{
		if (!ch->destroying)
			fn(ch->dev->name, ch->ref, arg);
	}
}

void *mimo_io_channel_get_ctx(struct mimo_io_channel *ch)
{
	return ch->ctx;
}

void *mimo_io_channel_get_io_device(struct mimo_io_channel *ch)
{
	return ch->dev->dev;
}

struct mimo_reactor *mimo_io_channel_get_reactor(struct mimo_io_channel *ch)
{
	return ch->r;
}

struct mimo_io_channel *mimo_io_channel_from_ctx(void *ctx)
{
	return (struct mimo_io_channel *)((char *)ctx - offsetof(struct mimo_io_channel, ctx));
}

/* --- for_each_channel ------------------------------------------------------------------ */

struct chan_iter {
	void *dev;
	mimo_channel_iter_fn fn;
	mimo_channel_iter_done done;
	void *arg;
	struct mimo_reactor *origin;
	uint32_t next;
	int status;
};

static void iter_step(void *p);

static void iter_finish(void *p)
{
	struct chan_iter *it = p;

	if (it->done != NULL)
		it->done(it->arg, it->status);
	free(it);
}

static void iter_advance(struct chan_iter *it)
{
	if (it->status == 0 && it->next < mimo_reactor_count())
		send_retry(mimo_reactor_get(it->next), iter_step, it);
	else
		send_retry(it->origin, iter_finish, it);
}

static void iter_step(void *p)
{
	struct chan_iter *it = p;
	struct mimo_reactor *r = mimo_reactor_current();
	struct mimo_io_channel *ch;

	it->next++;
	TAILQ_FOREACH(ch, &r->channels, link)
	{
		if (ch->dev->dev == it->dev && !ch->destroying) {
			it->status = it->fn(ch, it->arg);
			break;
		}
	}
	iter_advance(it);
}

int mimo_for_each_channel(void *io_device, mimo_channel_iter_fn fn, void *arg,
			  mimo_channel_iter_done done)
{
	struct chan_iter *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -ENOMEM;
	it->origin = mimo_reactor_current();
	if (it->origin == NULL) {
		free(it);
		return -EPERM;
	}
	it->dev = io_device;
	it->fn = fn;
	it->done = done;
	it->arg = arg;
	iter_advance(it);
	return 0;
}
