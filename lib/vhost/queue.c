/*
 * Virtqueues on their reactors: started and stopped by the session (by message), woken by
 * the driver's kicks (an fd watch on the kick eventfd - no polling, so an idle queue costs
 * nothing), requests handed to the device, completions gathered and published once per
 * reactor turn with at most one call (interrupt) per queue and turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "compiler.h"
#include "ticks.h"
#include "vhost_internal.h"

static inline struct vhost_req *req_at(struct vhost_queue *q, uint16_t head)
{
	return (struct vhost_req *)(q->reqs + (size_t)head * q->req_stride);
}

static void post(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	if (mimo_reactor_post(r, fn, arg) != 0)
		MIMO_ERR(COMP, "cannot send a message to reactor %u: out of memory",
			 mimo_reactor_index(r));
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VHOST_BAD("cannot signal an eventfd: %s", strerror(errno));
}

/* The driver broke the ring: stop taking requests from it, and say so on its error fd. */
static void mark_broken(struct vhost_queue *q, const char *why)
{
	VHOST_BAD("%s: queue %u: %s; the queue stops until the driver resets it", q->s->name,
		  q->index, why);
	atomic_store(&q->broken, true);
	if (q->kick_watch != NULL)
		mimo_fd_watch_remove(&q->kick_watch);
	signal_fd(q->err_fd);
}

void vhost_queue_broken(struct vhost_queue *q, const char *why)
{
	mark_broken(q, why);
}

/* Into the used ring of a split queue (published at the end of the turn), and into the
 * inflight region's batch when the queue is tracked. */
static void push_used(struct vhost_queue *q, uint16_t head, uint32_t len)
{
	vring_push_used(&q->vr, head, len);
	if (q->track != NULL)
		vhost_inflight_push(q->track, head);
}

void vhost_req_submit(struct vhost_queue *q, struct vhost_req *req, const struct vring_chain *ch)
{
	req->iovcnt = ch->iovcnt;
	req->out_cnt = ch->out_cnt;
	req->out_len = ch->out_len;
	req->in_len = ch->in_len;
	req->inflight = true;
	atomic_store_explicit(&q->inflight,
			      atomic_load_explicit(&q->inflight, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&q->requests,
			      atomic_load_explicit(&q->requests, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	q->s->c->ops->submit(q->s->c->dev, req);
}

static void take(struct vhost_queue *q, uint16_t head)
{
	struct vhost_req *req = req_at(q, head);
	struct vring_chain ch;
	const char *why;
	int rc;

	if (mimo_unlikely(req->inflight)) {
		mark_broken(q, "the driver made a request of a descriptor still in flight");
		return;
	}
	req->q = q;
	req->head = head;
	/* Noted before anything is done with it: a back-end that dies from here on leaves it
	 * to the next one to submit again. */
	if (q->track != NULL)
		vhost_inflight_take(q->track, head, q->track_counter++);
	rc = vring_walk(&q->vr, q->mem, head, req->iov, VHOST_MAX_IOVS, &ch, &why);
	if (mimo_unlikely(rc != 0)) {
		/* The request goes back unread: the driver sees a zero-length completion. */
		VHOST_BAD("%s: queue %u: request %u refused: %s", q->s->name, q->index, head, why);
		push_used(q, head, 0);
		q->dirty = true;
		return;
	}
	vhost_req_submit(q, req, &ch);
}

/* Take every available request; then ask for the next kick and look once more. */
static void process(struct vhost_queue *q)
{
	uint16_t head;

	if (q->stopping || atomic_load_explicit(&q->broken, memory_order_relaxed))
		return;
	if (q->packed) {
		vhost_queue_process_packed(q);
		return;
	}
	do {
		enum vring_pop p;

		while ((p = vring_pop_head(&q->vr, &head)) == VRING_GOT) {
			take(q, head);
			if (atomic_load_explicit(&q->broken, memory_order_relaxed))
				return;
		}
		if (p == VRING_BROKEN) {
			mark_broken(q, "impossible available index or head");
			return;
		}
	} while (vring_arm(&q->vr));
}

/* The kick eventfd is watched edge-triggered: every write by the front-end is an edge, so its
 * counter need not be read back to zero - one system call less per kick. (It would take
 * centuries of kicks to reach the counter's limit.) */
static void on_kick(void *arg, uint32_t events)
{
	struct vhost_queue *q = arg;

	(void)events;
	atomic_store_explicit(&q->kicks, atomic_load_explicit(&q->kicks, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	process(q);
}

static void call(struct vhost_queue *q)
{
	signal_fd(q->call_fd);
	atomic_store_explicit(&q->calls, atomic_load_explicit(&q->calls, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/*
 * Interrupt coalescing, SPDK's rule: completions are counted over 10 ms windows; when a
 * window saw more than the threshold (iops_threshold × 10 ms), each call is followed by a
 * quiet time of delay_base_us × (count − threshold) / threshold, and completions in it are
 * signalled together when it ends. (SPDK keeps counting across windows until the threshold
 * is passed; mimo starts every window at zero, so a queue below the threshold never waits.)
 * SPDK's polling reactors signal the held call at their next poll; mimo's may be asleep,
 * so a one-shot timer delivers it.
 */
#define COALESCING_WINDOW_MS 10

static void update_call_delay(struct vhost_queue *q, uint64_t now, uint32_t base_us)
{
	uint64_t hz = mimo_get_ticks_hz();
	uint32_t iops = atomic_load_explicit(&q->s->c->iops_threshold, memory_order_relaxed);
	uint64_t thr = (uint64_t)iops * COALESCING_WINDOW_MS / 1000;

	if (now < q->window_end)
		return;
	if (thr == 0)
		thr = 1;
	q->call_delay_ticks = q->window_reqs > thr ? (uint64_t)base_us * (q->window_reqs - thr) /
							     thr * hz / 1000000
						   : 0;
	q->window_reqs = 0;
	q->window_end = now + hz * COALESCING_WINDOW_MS / 1000;
}

static int call_timer_fired(void *arg)
{
	struct vhost_queue *q = arg;

	mimo_poller_unregister(&q->call_timer);
	if (q->call_held) {
		q->call_held = false;
		call(q);
		q->next_call = mimo_get_ticks() + q->call_delay_ticks;
	}
	return 1;
}

/* The driver wants an interrupt for what was published: now, or when the quiet time ends. */
static void call_or_hold(struct vhost_queue *q)
{
	uint32_t base_us = atomic_load_explicit(&q->s->c->delay_base_us, memory_order_relaxed);
	uint64_t now;

	if (mimo_likely(base_us == 0)) {
		call(q);
		return;
	}
	now = mimo_get_ticks();
	update_call_delay(q, now, base_us);
	if (now < q->next_call) {
		uint64_t us = (q->next_call - now) * 1000000 / mimo_get_ticks_hz() + 1;

		q->call_held = true;
		if (q->call_timer == NULL)
			q->call_timer = mimo_poller_register(call_timer_fired, q, us);
		if (q->call_timer != NULL)
			return;
		q->call_held = false; /* no timer: signal now rather than never */
	}
	call(q);
	q->next_call = mimo_get_ticks() + q->call_delay_ticks;
}

static void flush(struct vhost_queue *q)
{
	if (!q->dirty)
		return;
	q->dirty = false;
	if ((q->packed ? vring_packed_publish(&q->vp) : vring_publish(&q->vr)) && q->call_fd >= 0)
		call_or_hold(q);
	if (q->track != NULL)
		vhost_inflight_published(q->track, q->vr.size, q->vr.used_idx);
}

static void stopped_on_session(void *arg)
{
	struct vhost_queue *q = arg;
	void (*done)(struct vhost_queue * q) = q->stop_done;

	q->started = false;
	q->stop_done = NULL;
	if (done != NULL)
		done(q);
}

static void finish_stop(struct vhost_queue *q)
{
	/* What a stop publishes (virtio-scsi's event buffers given back) may be signalled on
	 * a call eventfd the front-end is replacing - QEMU swaps it when the guest masks or
	 * unmasks the queue's vector - and be lost: the next start signals once more. */
	q->signal_at_start |= q->dirty || q->call_held;
	flush(q);
	mimo_poller_unregister(&q->poller);
	mimo_poller_unregister(&q->call_timer);
	q->call_held = false;
	if (q->s->c->ops->queue_stopped != NULL)
		q->s->c->ops->queue_stopped(q->s->c->dev, q);
	q->base = q->packed ? vring_packed_base(&q->vp) : q->vr.last_avail;
	q->stopping = false;
	post(q->s->c->home, stopped_on_session, q);
}

/* Late poller: what was deferred, then publish the turn's completions with one call. */
static int on_turn_end(void *arg)
{
	struct vhost_queue *q = arg;
	int work = 0;

	if (mimo_unlikely(!STAILQ_EMPTY(&q->deferred))) {
		STAILQ_HEAD(, vhost_req) now = STAILQ_HEAD_INITIALIZER(now);
		struct vhost_req *req;

		STAILQ_CONCAT(&now, &q->deferred);
		while ((req = STAILQ_FIRST(&now)) != NULL) {
			STAILQ_REMOVE_HEAD(&now, link);
			req->deferred(req);
		}
		work = 1;
	}
	if (q->dirty) {
		flush(q);
		work = 1;
	}
	if (q->stopping && atomic_load_explicit(&q->inflight, memory_order_relaxed) == 0)
		finish_stop(q);
	return work;
}

void vhost_req_complete(struct vhost_req *req, uint32_t used_len)
{
	struct vhost_queue *q = req->q;

	req->inflight = false;
	if (q->packed)
		vhost_queue_push_used_packed(q, req, used_len);
	else
		push_used(q, req->head, used_len);
	q->dirty = true;
	q->window_reqs++;
	atomic_store_explicit(&q->inflight,
			      atomic_load_explicit(&q->inflight, memory_order_relaxed) - 1,
			      memory_order_relaxed);
}

void vhost_req_defer(struct vhost_req *req, void (*fn)(struct vhost_req *req))
{
	req->deferred = fn;
	STAILQ_INSERT_TAIL(&req->q->deferred, req, link);
}

static void start_here(void *arg)
{
	struct vhost_queue *q = arg;

	q->poller = mimo_poller_register_late(on_turn_end, q);
	if (mimo_fd_watch_add(q->kick_fd, EPOLLIN | EPOLLET, on_kick, q, &q->kick_watch) != 0)
		q->kick_watch = NULL;
	if (q->poller == NULL || q->kick_watch == NULL) {
		mark_broken(q, "cannot watch its kick eventfd");
		return;
	}
	if (q->signal_at_start) {
		q->signal_at_start = false;
		signal_fd(q->call_fd); /* a spurious interrupt costs a driver nothing */
	}
	/* Requests a back-end that died had taken (inflight tracking), oldest first. */
	for (uint16_t i = 0; i < q->nresubmit && !atomic_load(&q->broken); i++) {
		if (q->packed)
			vhost_queue_resubmit_packed(q, q->resubmit[i]);
		else
			take(q, q->resubmit[i]);
	}
	q->nresubmit = 0;
	/* Requests made before the start (a restart after a stop) do not kick again. */
	process(q);
}

static void stop_here(void *arg)
{
	struct vhost_queue *q = arg;

	if (q->kick_watch != NULL)
		mimo_fd_watch_remove(&q->kick_watch);
	q->stopping = true;
	if (q->poller != NULL && q->s->c->ops->queue_stopping != NULL)
		q->s->c->ops->queue_stopping(q->s->c->dev, q);
	if (q->poller == NULL) { /* the start failed */
		q->stopping = false;
		q->base = q->packed ? vring_packed_base(&q->vp) : q->vr.last_avail;
		post(q->s->c->home, stopped_on_session, q);
		return;
	}
	if (atomic_load_explicit(&q->inflight, memory_order_relaxed) == 0 &&
	    STAILQ_EMPTY(&q->deferred))
		finish_stop(q);
}

static int translate(struct vhost_queue *q)
{
	const struct vhost_mem *mem = q->s->mem;
	const struct vhost_vring_addr *a = &q->addr;
	uint8_t *d = vhost_uva_to_host(mem, a->desc_user_addr, vring_desc_bytes(q->num));
	uint8_t *av = vhost_uva_to_host(mem, a->avail_user_addr, vring_avail_bytes(q->num));
	uint8_t *u = vhost_uva_to_host(mem, a->used_user_addr, vring_used_bytes(q->num));

	if (d == NULL || av == NULL || u == NULL || ((uintptr_t)d & 15) || ((uintptr_t)av & 1) ||
	    ((uintptr_t)u & 3))
		return -EFAULT;
	q->vr.desc = (struct vring_desc *)d;
	q->vr.avail = (struct vring_avail *)av;
	q->vr.used = (struct vring_used *)u;
	return 0;
}

/* The ring layout the features chose. */
static int translate_ring(struct vhost_queue *q)
{
	if (q->s->features & (1ull << VIRTIO_F_RING_PACKED))
		return vhost_queue_translate_packed(q);
	return translate(q);
}

int vhost_queue_check_addr(struct vhost_queue *q)
{
	return q->s->mem != NULL && q->num != 0 && q->addr_set ? translate_ring(q) : 0;
}

/*
 * The queue's part of the session's inflight region, if any: what it says a back-end that
 * died had taken and not given back is submitted again at start, and the ring goes on after
 * them (the front-end's base is then its used index: it could not ask the dead back-end).
 * After a clean stop nothing is left in flight, and the base is kept.
 */
static int track(struct vhost_queue *q)
{
	struct vhost_session *s = q->s;
	struct vhost_inflight_queue *r;
	uint16_t *heads;
	int n;

	q->track = NULL;
	q->nresubmit = 0;
	/* The ring must fit in its part of the region (the part's size is the session's, not
	 * what the region says of itself). */
	if (s->inflight == NULL || s->inflight_packed || q->index >= s->inflight_queues ||
	    q->num > s->inflight_qsize)
		return 0;
	heads = realloc(q->resubmit, sizeof(*heads) * q->num);
	if (heads == NULL)
		return -ENOMEM;
	q->resubmit = heads;
	r = vhost_inflight_queue_at(s->inflight, s->inflight_qsize, q->index);
	n = vhost_inflight_recover(r, (uint16_t)q->num, q->vr.used_idx, heads, &q->track_counter);
	if (n < 0) {
		VHOST_BAD("%s: queue %u: the inflight region does not fit the ring (%u entries): "
			  "not tracked",
			  s->name, q->index, q->num);
		return 0;
	}
	q->track = r;
	q->nresubmit = (uint16_t)n;
	if (n > 0) {
		/* A warning: it means a back-end died under a guest. */
		MIMO_WARN(COMP,
			  "%s: queue %u: %d request(s) left in flight by the last back-end are "
			  "submitted again",
			  s->name, q->index, n);
		q->vr.last_avail = (uint16_t)(q->vr.used_idx + n);
	}
	return 0;
}

int vhost_queue_start(struct vhost_queue *q)
{
	struct vhost_session *s = q->s;
	size_t stride = sizeof(struct vhost_req) + ((s->c->ops->req_ctx_size + 15) & ~(size_t)15);
	int rc = translate_ring(q);

	if (rc != 0)
		return rc;
	if (q->nreqs != q->num || q->req_stride != stride) {
		free(q->reqs);
		/* calloc of a large array maps it lazily: only the entries used cost memory. */
		q->reqs = calloc(q->num, stride);
		q->nreqs = q->reqs != NULL ? q->num : 0;
		q->req_stride = stride;
		if (q->reqs == NULL)
			return -ENOMEM;
	}
	/* Every slot is free: a new array is zeroed, and a stop waited for every request. The
	 * slots are not touched here, so only those the driver's heads use cost memory. */
	q->packed = s->features & (1ull << VIRTIO_F_RING_PACKED);
	if (q->packed) {
		if ((rc = vhost_queue_start_packed(q)) != 0)
			return rc;
	} else {
		q->ptrack = NULL;
		q->vr.size = (uint16_t)q->num;
		q->vr.last_avail = (uint16_t)q->base;
		q->vr.used_idx = __atomic_load_n(&q->vr.used->idx, __ATOMIC_ACQUIRE);
		q->vr.signalled_valid = false;
		q->vr.event_idx = s->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
		if ((rc = track(q)) != 0)
			return rc;
		q->vr.indirect = s->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	}
	q->mem = s->mem;
	q->stopping = false;
	q->dirty = false;
	STAILQ_INIT(&q->deferred);
	atomic_store(&q->inflight, 0);
	q->reactor = s->c->reactors[q->index % s->c->nreactors];
	q->started = true;
	post(q->reactor, start_here, q);
	return 0;
}

void vhost_queue_stop(struct vhost_queue *q, void (*done)(struct vhost_queue *q))
{
	q->stop_done = done;
	post(q->reactor, stop_here, q);
}

void vhost_queue_free(struct vhost_queue *q)
{
	if (q == NULL)
		return;
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	if (q->err_fd >= 0)
		close(q->err_fd);
	free(q->reqs);
	free(q->resubmit);
	free(q->dev_ctx);
	free(q);
}
