/*
 * One front-end connection (a vhost-user session): reading messages with their file
 * descriptors, negotiating features, the memory table and the rings, replies and REPLY_ACK.
 *
 * Messages are handled one at a time, in order. One that changes what a running queue uses
 * (its ring, eventfds, the memory table, the features) first stops the queues concerned -
 * waiting for their requests to complete - then applies the change and starts again whatever
 * is ready; meanwhile the socket is not read, so the front-end's next message waits, as the
 * protocol expects. A message that breaks the protocol drops the connection; one that asks
 * for something mimo does not do is refused (REPLY_ACK failure when asked for) and the
 * connection goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler.h"
#include "msg.h"
#include "vhost_internal.h"

/* What a handler did. */
enum h_result {
	H_OK,	   /* done: REPLY_ACK success if asked */
	H_REFUSE,  /* not done, connection kept: REPLY_ACK failure if asked */
	H_DROP,	   /* protocol broken: the connection is closed */
	H_REPLIED, /* the handler sent the message's own reply */
	H_ASYNC,   /* waiting for queues to stop; resume() finishes it */
};

#define PROTOCOL_FEATURES                                                                        \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |        \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ) |                                           \
	 (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

static void on_readable(void *arg, uint32_t events);
static void teardown(struct vhost_session *s);

static uint64_t offered_features(struct vhost_session *s)
{
	return s->c->ops->features(s->c->dev) | (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
	       (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
}

static uint8_t *payload(struct vhost_session *s)
{
	return s->buf + VHOST_USER_HDR_SIZE;
}

static struct vhost_user_hdr *hdr(struct vhost_session *s)
{
	return (struct vhost_user_hdr *)s->buf;
}

static void drop(struct vhost_session *s, const char *why)
{
	VHOST_BAD("%s: %s: %s; closing the connection", s->name, vhost_msg_name(hdr(s)->request),
		  why);
	vhost_session_close(s, why);
}

/* --- sending ------------------------------------------------------------------------------ */

static int send_reply(struct vhost_session *s, const void *data, uint32_t len)
{
	uint8_t out[VHOST_USER_HDR_SIZE + VHOST_USER_CONFIG_HDR + VHOST_USER_MAX_CONFIG];
	struct vhost_user_hdr h = {
		.request = s->pending.request,
		.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
		.size = len,
	};
	ssize_t n;

	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), data, len);
	n = send(s->fd, out, sizeof(h) + len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)(sizeof(h) + len)) {
		/* A front-end that does not read its replies has left the protocol. */
		VHOST_BAD("%s: cannot send a reply: %s", s->name,
			  n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}

/* A reply carrying a file descriptor (GET_INFLIGHT_FD). */
static int send_reply_fd(struct vhost_session *s, const void *data, uint32_t len, int fd)
{
	uint8_t out[VHOST_USER_HDR_SIZE + 64];
	struct vhost_user_hdr h = {
		.request = s->pending.request,
		.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
		.size = len,
	};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { out, sizeof(h) + len };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), data, len);
	memset(&cm, 0, sizeof(cm));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	n = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)(sizeof(h) + len)) {
		VHOST_BAD("%s: cannot send a reply: %s", s->name,
			  n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}

static int reply_u64(struct vhost_session *s, uint64_t v)
{
	return send_reply(s, &v, sizeof(v));
}

/* --- queues -------------------------------------------------------------------------------- */

static struct vhost_queue *queue(struct vhost_session *s, uint32_t idx)
{
	struct vhost_queue *q = s->queues[idx];

	if (q != NULL)
		return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->s = s;
	q->index = (uint16_t)idx;
	q->kick_fd = q->call_fd = q->err_fd = -1;
	q->reactor = s->c->reactors[idx % s->c->nreactors];
	s->queues[idx] = q;
	return q;
}

static bool queue_index_ok(struct vhost_session *s, uint32_t idx)
{
	return idx < VHOST_MAX_QUEUES && idx < s->c->ops->max_queues(s->c->dev);
}

static bool ready(struct vhost_session *s, struct vhost_queue *q)
{
	bool enabled = q->enabled || !(s->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));

	return s->mem != NULL && q->num != 0 && q->addr_set && q->kick_fd >= 0 && enabled &&
	       !q->started && !atomic_load(&q->broken) && !s->closing;
}

/* Start every queue that can run. H_DROP if one's ring lies outside guest memory. */
static enum h_result start_ready(struct vhost_session *s)
{
	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++) {
		struct vhost_queue *q = s->queues[i];
		int rc;

		if (q == NULL || !ready(s, q))
			continue;
		rc = vhost_queue_start(q);
		if (rc == -EFAULT) {
			drop(s, "a ring lies outside the memory table");
			return H_DROP;
		}
		if (rc == -ERANGE) {
			/* Not started until the front-end sets the ring again. */
			VHOST_BAD("%s: queue %u: the ring base lies beyond the ring", s->name, i);
			atomic_store(&q->broken, true);
			continue;
		}
		if (rc != 0) {
			MIMO_ERR(COMP, "%s: cannot start queue %u: %s", s->name, i, strerror(-rc));
			return H_REFUSE;
		}
	}
	return H_OK;
}

static bool finish(struct vhost_session *s, enum h_result r);

static void one_stopped(struct vhost_queue *q)
{
	struct vhost_session *s = q->s;

	if (--s->waiting != 0)
		return;
	if (s->resume != NULL) {
		void (*fn)(struct vhost_session * s) = s->resume;

		s->resume = NULL;
		fn(s);
	}
}

/*
 * Stop the started queues among those of mask (bit i: queue i), then run then(s), which
 * finishes the message. Returns H_ASYNC, or what then returned when nothing had to stop.
 */
typedef int (*then_fn)(struct vhost_session *s);

static void resume_then(struct vhost_session *s);

static int stop_then(struct vhost_session *s, uint64_t mask, then_fn then)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++)
		if ((mask & (1ull << i)) && s->queues[i] != NULL && s->queues[i]->started)
			n++;
	if (n == 0)
		return then(s);
	s->waiting = n;
	s->then = then;
	s->resume = resume_then;
	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++) {
		struct vhost_queue *q = s->queues[i];

		if ((mask & (1ull << i)) && q != NULL && q->started)
			vhost_queue_stop(q, one_stopped);
	}
	return H_ASYNC;
}

static void resume_then(struct vhost_session *s)
{
	then_fn then = s->then;

	s->then = NULL;
	finish(s, s->closing ? H_OK : (enum h_result)then(s));
}

#define ALL_QUEUES (~0ull)

/* --- handlers ------------------------------------------------------------------------------ */

static uint64_t u64_at(struct vhost_session *s)
{
	uint64_t v;

	memcpy(&v, payload(s), sizeof(v));
	return v;
}

static struct vhost_vring_state state_at(struct vhost_session *s)
{
	struct vhost_vring_state st;

	memcpy(&st, payload(s), sizeof(st));
	return st;
}

static int apply_features(struct vhost_session *s)
{
	s->features = u64_at(s);
	s->features_set = true;
	return start_ready(s);
}

static enum h_result h_set_features(struct vhost_session *s)
{
	uint64_t f = u64_at(s);

	if (f & ~offered_features(s)) {
		drop(s, f & (1ull << VHOST_F_LOG_ALL)
				? "dirty logging asked for: mimo has no live migration"
				: "features that were not offered");
		return H_DROP;
	}
	return stop_then(s, ALL_QUEUES, apply_features);
}

static enum h_result h_set_protocol_features(struct vhost_session *s)
{
	uint64_t f = u64_at(s);

	if (f & ~PROTOCOL_FEATURES) {
		drop(s, "protocol features that were not offered");
		return H_DROP;
	}
	s->protocol_features = f;
	return H_OK;
}

static enum h_result h_set_owner(struct vhost_session *s)
{
	s->owner = true;
	if (!s->announced) {
		s->announced = true;
		vhost_emit("vhost_guest_connected", s->c->name,
			   json_pack("{s:s, s:s, s:i}", "ctrlr", s->c->name, "socket",
				     s->c->socket_path, "session", (int)s->id));
	}
	return H_OK;
}

static void inflight_unmap(struct vhost_session *s)
{
	if (s->inflight != NULL)
		munmap(s->inflight, s->inflight_size);
	s->inflight = NULL;
	s->inflight_size = 0;
}

/* RESET_OWNER (deprecated) and RESET_DEVICE: every ring stopped and forgotten. */
static int apply_reset(struct vhost_session *s)
{
	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++) {
		vhost_queue_free(s->queues[i]);
		s->queues[i] = NULL;
	}
	vhost_mem_unmap(s->mem);
	s->mem = NULL;
	inflight_unmap(s);
	s->features = 0;
	s->features_set = false;
	return H_OK;
}

static enum h_result h_reset(struct vhost_session *s)
{
	return stop_then(s, ALL_QUEUES, apply_reset);
}

static int apply_mem_table(struct vhost_session *s)
{
	struct vhost_user_memory t;
	struct vhost_mem *m;
	char why[256] = "";
	int rc;

	memset(&t, 0, sizeof(t));
	memcpy(&t, payload(s), hdr(s)->size);
	rc = vhost_mem_map(&t, s->fds, &m, why, sizeof(why));
	if (rc != 0) {
		drop(s, why[0] ? why : strerror(-rc));
		return H_DROP;
	}
	vhost_mem_unmap(s->mem);
	s->mem = m;
	/* Rings known already must lie in the new table. */
	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++) {
		if (s->queues[i] != NULL && vhost_queue_check_addr(s->queues[i]) != 0) {
			drop(s, "a ring lies outside the new memory table");
			return H_DROP;
		}
	}
	return start_ready(s);
}

static enum h_result h_set_mem_table(struct vhost_session *s)
{
	return stop_then(s, ALL_QUEUES, apply_mem_table);
}

/* The queue a vring message names, or NULL after dropping the connection. */
static struct vhost_queue *msg_queue(struct vhost_session *s, uint32_t idx)
{
	struct vhost_queue *q;

	if (!queue_index_ok(s, idx)) {
		drop(s, "queue index beyond the queues offered");
		return NULL;
	}
	if ((q = queue(s, idx)) == NULL)
		drop(s, "out of memory");
	return q;
}

static int apply_vring_num(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);
	struct vhost_queue *q = s->queues[st.index];

	q->num = st.num;
	atomic_store(&q->broken, false);
	if (vhost_queue_check_addr(q) != 0) {
		drop(s, "the ring no longer fits in the memory table");
		return H_DROP;
	}
	return start_ready(s);
}

static enum h_result h_set_vring_num(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);

	if (msg_queue(s, st.index) == NULL)
		return H_DROP;
	if (st.num == 0 || st.num > VHOST_MAX_QUEUE_SIZE || (st.num & (st.num - 1)) != 0) {
		drop(s, "ring size is not a power of two up to 1024");
		return H_DROP;
	}
	return stop_then(s, 1ull << st.index, apply_vring_num);
}

static int apply_vring_addr(struct vhost_session *s)
{
	struct vhost_vring_addr a;
	struct vhost_queue *q;

	memcpy(&a, payload(s), sizeof(a));
	q = s->queues[a.index];
	q->addr = a;
	q->addr_set = true;
	atomic_store(&q->broken, false);
	if (vhost_queue_check_addr(q) != 0) {
		drop(s, "ring address outside the memory table");
		return H_DROP;
	}
	return start_ready(s);
}

static enum h_result h_set_vring_addr(struct vhost_session *s)
{
	struct vhost_vring_addr a;

	memcpy(&a, payload(s), sizeof(a));
	if (msg_queue(s, a.index) == NULL)
		return H_DROP;
	if (a.flags & (1u << VHOST_VRING_F_LOG)) {
		drop(s, "used-ring logging asked for: mimo has no live migration");
		return H_DROP;
	}
	return stop_then(s, 1ull << a.index, apply_vring_addr);
}

static int apply_vring_base(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);

	s->queues[st.index]->base = st.num;
	atomic_store(&s->queues[st.index]->broken, false);
	return start_ready(s);
}

static enum h_result h_set_vring_base(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);

	if (msg_queue(s, st.index) == NULL)
		return H_DROP;
	/* A packed ring's base carries wrap counters above its 15-bit positions (the used
	 * half too, from QEMU: ignored, as nothing is in flight at a start); a split ring's
	 * is 16 bits. */
	if (st.num > 0xffff && !(s->features & (1ull << VIRTIO_F_RING_PACKED))) {
		drop(s, "ring base beyond 16 bits on a split ring");
		return H_DROP;
	}
	return stop_then(s, 1ull << st.index, apply_vring_base);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* GET_VRING_BASE stops the ring: its eventfds are forgotten (the next start sends new ones). */
static int apply_get_vring_base(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);
	struct vhost_queue *q = s->queues[st.index];

	st.num = q->base;
	close_fd(&q->kick_fd);
	close_fd(&q->call_fd);
	return send_reply(s, &st, sizeof(st)) == 0 ? H_REPLIED : H_DROP;
}

static enum h_result h_get_vring_base(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);

	if (msg_queue(s, st.index) == NULL)
		return H_DROP;
	return stop_then(s, 1ull << st.index, apply_get_vring_base);
}

/* Only eventfds are taken as kick and call descriptors: anything else could block a reactor
 * or is not what the front-end meant. They are made non-blocking (QEMU's already are). */
static bool is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;
	int fl;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	if (strcmp(link, "anon_inode:[eventfd]") != 0)
		return false;
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return true;
}

static int apply_vring_fd(struct vhost_session *s)
{
	uint64_t v = u64_at(s);
	struct vhost_queue *q = s->queues[v & VHOST_USER_VRING_IDX_MASK];
	int fd = (v & VHOST_USER_VRING_NOFD) ? -1 : s->fds[0];
	int *slot = hdr(s)->request == VHOST_USER_SET_VRING_KICK   ? &q->kick_fd
		    : hdr(s)->request == VHOST_USER_SET_VRING_CALL ? &q->call_fd
								   : &q->err_fd;

	close_fd(slot);
	*slot = fd;
	if (fd >= 0)
		s->fds[0] = -1; /* ours now */
	if (hdr(s)->request == VHOST_USER_SET_VRING_KICK)
		atomic_store(&q->broken, false);
	/* Completions may have been published with no call descriptor yet (QEMU starts a ring
	 * before it sends the guest's call eventfd: the queue's first requests can be answered
	 * in between) or signalled on one nobody reads any more (QEMU's "masked" notifier,
	 * replaced, not read, under TCG): that interrupt is lost and the guest waits forever
	 * for a request that is done. So a new call descriptor is signalled once when the
	 * queue starts with it, as libvhost-user and SPDK do; a spurious interrupt costs the
	 * driver nothing. */
	if (hdr(s)->request == VHOST_USER_SET_VRING_CALL && fd >= 0)
		q->signal_at_start = true;
	return start_ready(s);
}

static enum h_result h_set_vring_fd(struct vhost_session *s)
{
	uint64_t v = u64_at(s);
	uint32_t idx = (uint32_t)(v & VHOST_USER_VRING_IDX_MASK);

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD)) {
		drop(s, "reserved bits set");
		return H_DROP;
	}
	if (msg_queue(s, idx) == NULL)
		return H_DROP;
	if (!(v & VHOST_USER_VRING_NOFD) && hdr(s)->request != VHOST_USER_SET_VRING_ERR &&
	    !is_eventfd(s->fds[0])) {
		drop(s, "the descriptor is not an eventfd");
		return H_DROP;
	}
	if ((v & VHOST_USER_VRING_NOFD) && hdr(s)->request == VHOST_USER_SET_VRING_KICK) {
		VHOST_BAD("%s: queue %u: a ring without kicks (polling) is not served", s->name,
			  idx);
		return H_REFUSE;
	}
	return stop_then(s, 1ull << idx, apply_vring_fd);
}

static int apply_vring_enable(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);

	s->queues[st.index]->enabled = st.num != 0;
	return start_ready(s);
}

static enum h_result h_set_vring_enable(struct vhost_session *s)
{
	struct vhost_vring_state st = state_at(s);

	if (msg_queue(s, st.index) == NULL)
		return H_DROP;
	if (st.num > 1) {
		drop(s, "enable is neither 0 nor 1");
		return H_DROP;
	}
	if (st.num == 1)
		return apply_vring_enable(s);
	return stop_then(s, 1ull << st.index, apply_vring_enable);
}

/* --- inflight tracking (INFLIGHT_SHMFD) ------------------------------------------------------ */

/* The layout of the region: the packed rings' when the front-end took them. QEMU (5.2 and
 * later) sets the features before it asks for the region or hands it over; one that does not
 * gets the split layout, and its packed rings are not tracked (queue_packed.c) - as do those
 * of a controller created with packed_ring_recovery false. */
static bool packed_layout(const struct vhost_session *s)
{
	return (s->features & (1ull << VIRTIO_F_RING_PACKED)) && !s->c->packed_untracked;
}

/* What a region for these queues needs; 0 if the front-end asks for something impossible. */
static size_t inflight_bytes(struct vhost_session *s, const struct vhost_user_inflight *in)
{
	if (in->num_queues == 0 || !queue_index_ok(s, in->num_queues - 1u) || in->queue_size == 0 ||
	    in->queue_size > VHOST_MAX_QUEUE_SIZE)
		return 0;
	return (size_t)in->num_queues * (packed_layout(s)
						 ? vhost_inflight_packed_queue_bytes(in->queue_size)
						 : vhost_inflight_queue_bytes(in->queue_size));
}

/* GET_INFLIGHT_FD: a new, zeroed region for the front-end to keep and hand to every back-end
 * it connects to from now on (a sealed memfd: nobody can shrink it under a mapping). */
static int apply_get_inflight(struct vhost_session *s)
{
	struct vhost_user_inflight in;
	size_t size;
	void *p;
	int fd, rc;

	memcpy(&in, payload(s), sizeof(in));
	if ((size = inflight_bytes(s, &in)) == 0) {
		drop(s, "inflight region for no queue, too many, or rings over 1024 entries");
		return H_DROP;
	}
	fd = memfd_create("mimo-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
	    (p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		MIMO_ERR(COMP, "%s: cannot make an inflight region of %zu bytes: %s", s->name, size,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return H_REFUSE;
	}
	/* A packed part stays zeroed (version 0) until its queue first starts: it is laid out
	 * then, from the ring base. */
	if (!packed_layout(s))
		vhost_inflight_init(p, in.num_queues, in.queue_size);
	inflight_unmap(s);
	s->inflight_packed = packed_layout(s);
	s->inflight = p;
	s->inflight_size = size;
	s->inflight_queues = in.num_queues;
	s->inflight_qsize = in.queue_size;
	in.mmap_size = size;
	in.mmap_offset = 0;
	rc = send_reply_fd(s, &in, sizeof(in), fd);
	close(fd);
	if (rc != 0)
		return H_DROP;
	/* The queues were stopped only to swap the region under them: those that were running
	 * go on, tracked in the new one (QEMU asks before the first start, when none runs). */
	return start_ready(s) == H_DROP ? H_DROP : H_REPLIED;
}

static enum h_result h_get_inflight_fd(struct vhost_session *s)
{
	if (!(s->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))) {
		drop(s, "GET_INFLIGHT_FD without INFLIGHT_SHMFD");
		return H_DROP; /* it expects a reply with a descriptor: nothing else will do */
	}
	return stop_then(s, ALL_QUEUES, apply_get_inflight);
}

/* SET_INFLIGHT_FD: the region the front-end kept - from this process, or from one that died
 * with requests in flight, which the queues submit again when they start. */
static int apply_set_inflight(struct vhost_session *s)
{
	struct vhost_user_inflight in;
	struct stat st;
	size_t size;
	long page = sysconf(_SC_PAGESIZE);
	int seals;
	void *p;

	memcpy(&in, payload(s), sizeof(in));
	size = inflight_bytes(s, &in);
	if (size == 0 || in.mmap_size < size || in.mmap_size > size + (uint64_t)page ||
	    in.mmap_offset % (uint64_t)page != 0 || in.mmap_offset > INT64_MAX - in.mmap_size) {
		drop(s, "inflight region of the wrong size or offset");
		return H_DROP;
	}
	if (fstat(s->fds[0], &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < in.mmap_offset + in.mmap_size) {
		drop(s, "inflight region: not a file, or shorter than the region");
		return H_DROP;
	}
	/* The same rule as guest memory: a memfd that could shrink under the mapping is not
	 * taken (mimo's own are sealed). */
	seals = fcntl(s->fds[0], F_GET_SEALS);
	if (seals >= 0 && !(seals & F_SEAL_SHRINK)) {
		drop(s, "inflight region: a memfd without F_SEAL_SHRINK");
		return H_DROP;
	}
	p = mmap(NULL, in.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fds[0],
		 (off_t)in.mmap_offset);
	if (p == MAP_FAILED) {
		MIMO_ERR(COMP, "%s: cannot map the inflight region: %s", s->name, strerror(errno));
		return H_REFUSE;
	}
	inflight_unmap(s);
	s->inflight_packed = packed_layout(s);
	s->inflight = p;
	s->inflight_size = in.mmap_size;
	s->inflight_queues = in.num_queues;
	s->inflight_qsize = in.queue_size;
	return start_ready(s);
}

static enum h_result h_set_inflight_fd(struct vhost_session *s)
{
	if (!(s->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))) {
		VHOST_BAD("%s: SET_INFLIGHT_FD refused: INFLIGHT_SHMFD was not negotiated",
			  s->name);
		return H_REFUSE;
	}
	return stop_then(s, ALL_QUEUES, apply_set_inflight);
}

/* The back-end channel: where mimo tells the front-end that the configuration changed. */
static enum h_result h_set_backend_req_fd(struct vhost_session *s)
{
	if (!(s->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ))) {
		VHOST_BAD("%s: SET_BACKEND_REQ_FD refused: BACKEND_REQ was not negotiated",
			  s->name);
		return H_REFUSE;
	}
	if (s->backend_fd >= 0)
		close(s->backend_fd);
	s->backend_fd = s->fds[0];
	s->fds[0] = -1; /* kept: clear_message must not close it */
	return H_OK;
}

void vhost_session_config_changed(struct vhost_session *s)
{
	struct vhost_user_hdr h = { .request = VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
				    .flags = VHOST_USER_VERSION };

	if (s->closing || s->backend_fd < 0 ||
	    !(s->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)))
		return;
	/* Twelve bytes on a socket nobody else writes: it has room unless the front-end stopped
	 * reading it, and then a lost notice is its own doing (GET_CONFIG still tells). */
	if (send(s->backend_fd, &h, VHOST_USER_HDR_SIZE, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)VHOST_USER_HDR_SIZE)
		VHOST_BAD("%s: cannot send the configuration-change notice: %s", s->name,
			  strerror(errno));
}

static enum h_result h_get_config(struct vhost_session *s)
{
	struct vhost_user_config cfg;

	memcpy(&cfg, payload(s), VHOST_USER_CONFIG_HDR);
	memset(cfg.region, 0, sizeof(cfg.region));
	s->c->ops->get_config(s->c->dev, cfg.region, cfg.offset, cfg.size);
	return send_reply(s, &cfg, VHOST_USER_CONFIG_HDR + cfg.size) == 0 ? H_REPLIED : H_DROP;
}

static enum h_result handle(struct vhost_session *s)
{
	struct vhost_user_hdr *h = hdr(s);
	const char *why;

	if (vhost_msg_check(h, payload(s), s->nfds, &why) != 0) {
		drop(s, why);
		return H_DROP;
	}
	MIMO_DEBUG(COMP, "%s: %s (%u bytes, %u fds)", s->name, vhost_msg_name(h->request), h->size,
		   s->nfds);
	switch (h->request) {
	case VHOST_USER_GET_FEATURES:
		return reply_u64(s, offered_features(s)) == 0 ? H_REPLIED : H_DROP;
	case VHOST_USER_SET_FEATURES:
		return h_set_features(s);
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return reply_u64(s, PROTOCOL_FEATURES) == 0 ? H_REPLIED : H_DROP;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		return h_set_protocol_features(s);
	case VHOST_USER_SET_OWNER:
		return h_set_owner(s);
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_RESET_DEVICE:
		return h_reset(s);
	case VHOST_USER_GET_QUEUE_NUM:
		return reply_u64(s, s->c->ops->max_queues(s->c->dev)) == 0 ? H_REPLIED : H_DROP;
	case VHOST_USER_SET_MEM_TABLE:
		return h_set_mem_table(s);
	case VHOST_USER_SET_VRING_NUM:
		return h_set_vring_num(s);
	case VHOST_USER_SET_VRING_ADDR:
		return h_set_vring_addr(s);
	case VHOST_USER_SET_VRING_BASE:
		return h_set_vring_base(s);
	case VHOST_USER_GET_VRING_BASE:
		return h_get_vring_base(s);
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return h_set_vring_fd(s);
	case VHOST_USER_SET_VRING_ENABLE:
		return h_set_vring_enable(s);
	case VHOST_USER_GET_CONFIG:
		return h_get_config(s);
	case VHOST_USER_SET_SLAVE_REQ_FD:
		return h_set_backend_req_fd(s);
	case VHOST_USER_GET_INFLIGHT_FD:
		return h_get_inflight_fd(s);
	case VHOST_USER_SET_INFLIGHT_FD:
		return h_set_inflight_fd(s);
	case VHOST_USER_SET_CONFIG:
		VHOST_BAD("%s: SET_CONFIG refused: no field of the configuration is writable",
			  s->name);
		return H_REFUSE;
	case VHOST_USER_SET_LOG_BASE:
	case VHOST_USER_SET_LOG_FD:
		VHOST_BAD("%s: %s refused: mimo has no live migration (dirty logging)", s->name,
			  vhost_msg_name(h->request));
		return H_REFUSE;
	default:
		VHOST_BAD("%s: %s (%u) refused: not offered", s->name, vhost_msg_name(h->request),
			  h->request);
		return H_REFUSE;
	}
}

/* --- the message loop ------------------------------------------------------------------------ */

static void clear_message(struct vhost_session *s)
{
	for (uint32_t i = 0; i < s->nfds; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	s->nfds = 0;
	s->have = 0;
}

/* The message is done (H_ASYNC ones come back here through resume). Returns true when the
 * session is closing (and may be gone): the caller must not touch it again. */
static bool finish(struct vhost_session *s, enum h_result r)
{
	bool ack = (s->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
		   (s->pending.flags & VHOST_USER_NEED_REPLY) &&
		   !vhost_msg_has_reply(s->pending.request);

	clear_message(s);
	s->in_handler = false;
	if (!s->closing && ack && (r == H_OK || r == H_REFUSE) &&
	    reply_u64(s, r == H_OK ? 0 : 1) != 0) {
		s->closing = true;
		s->close_reason = "the front-end does not read its replies";
	}
	if (s->busy) {
		s->busy = false;
		if (!s->closing) {
			if (mimo_fd_watch_add(s->fd, EPOLLIN, on_readable, s, &s->watch) != 0) {
				s->watch = NULL;
				s->closing = true;
				s->close_reason = "cannot watch the socket";
			}
		}
	}
	if (s->closing) {
		if (s->watch != NULL)
			mimo_fd_watch_remove(&s->watch);
		teardown(s);
		return true;
	}
	return false;
}

/* Read what the current message still lacks: 1 when it is whole, 0 when the socket has no
 * more for now, -1 when the connection must end (why set). */
static int receive(struct vhost_session *s, const char **why)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
	} cm;
	uint32_t need = s->have < VHOST_USER_HDR_SIZE ? VHOST_USER_HDR_SIZE
						      : VHOST_USER_HDR_SIZE + hdr(s)->size;
	struct iovec iov = { s->buf + s->have, need - s->have };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cm.buf,
		.msg_controllen = sizeof(cm.buf),
	};
	ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *c;

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		*why = strerror(errno);
		return -1;
	}
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (s->nfds < VHOST_USER_MAX_FDS)
				s->fds[s->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		*why = "more than 8 file descriptors with a message";
		return -1;
	}
	if (n == 0) {
		*why = s->have == 0 ? "the front-end closed the connection"
				    : "the front-end closed the connection inside a message";
		return -1;
	}
	s->have += (uint32_t)n;
	if (s->have == VHOST_USER_HDR_SIZE && vhost_msg_check_hdr(hdr(s), why) != 0)
		return -1;
	return s->have == VHOST_USER_HDR_SIZE + hdr(s)->size && s->have >= VHOST_USER_HDR_SIZE;
}

static void on_readable(void *arg, uint32_t events)
{
	struct vhost_session *s = arg;

	(void)events;
	while (!s->busy && !s->closing) {
		const char *why = NULL;
		int rc = receive(s, &why);
		enum h_result r;

		if (rc == 0)
			return;
		if (rc < 0) {
			if (s->have >= VHOST_USER_HDR_SIZE || strstr(why, "closed") == NULL)
				VHOST_BAD("%s: %s; closing the connection", s->name, why);
			vhost_session_close(s, why);
			return;
		}
		memcpy(&s->pending, hdr(s), sizeof(s->pending));
		s->in_handler = true;
		r = handle(s);
		if (r == H_ASYNC) {
			s->busy = true;
			mimo_fd_watch_remove(&s->watch);
			return;
		}
		if (finish(s, r))
			return;
	}
}

/* --- life ---------------------------------------------------------------------------------- */

int vhost_session_create(struct vhost_ctrlr *c, int fd)
{
	struct vhost_session *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->c = c;
	s->fd = fd;
	s->backend_fd = -1;
	s->id = c->next_session_id++;
	snprintf(s->name, sizeof(s->name), "%ss%u", c->name, s->id);
	rc = mimo_fd_watch_add(fd, EPOLLIN, on_readable, s, &s->watch);
	if (rc != 0) {
		free(s);
		return rc;
	}
	TAILQ_INSERT_TAIL(&c->sessions, s, link);
	c->nsessions++;
	vhost_stats_session(1);
	MIMO_INFO(COMP, "%s: a front-end connected to %s", s->name, c->socket_path);
	return 0;
}

static void free_session(struct vhost_session *s)
{
	struct vhost_ctrlr *c = s->c;

	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++)
		vhost_queue_free(s->queues[i]);
	vhost_mem_unmap(s->mem);
	inflight_unmap(s);
	clear_message(s);
	close(s->fd);
	if (s->backend_fd >= 0)
		close(s->backend_fd);
	if (s->announced)
		vhost_emit("vhost_guest_disconnected", c->name,
			   json_pack("{s:s, s:i, s:s}", "ctrlr", c->name, "session", (int)s->id,
				     "reason", s->close_reason ? s->close_reason : ""));
	MIMO_INFO(COMP, "%s: session ended (%s)", s->name,
		  s->close_reason ? s->close_reason : "closed");
	TAILQ_REMOVE(&c->sessions, s, link);
	c->nsessions--;
	vhost_stats_session(-1);
	free(s);
	vhost_ctrlr_session_gone(c, NULL);
}

static void teardown_stopped(struct vhost_session *s)
{
	free_session(s);
}

static void teardown(struct vhost_session *s)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++)
		if (s->queues[i] != NULL && s->queues[i]->started)
			n++;
	if (n == 0) {
		free_session(s);
		return;
	}
	s->busy = true;
	s->waiting = n;
	s->resume = teardown_stopped;
	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++)
		if (s->queues[i] != NULL && s->queues[i]->started)
			vhost_queue_stop(s->queues[i], one_stopped);
}

void vhost_session_close(struct vhost_session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = true;
	s->close_reason = reason;
	if (s->watch != NULL)
		mimo_fd_watch_remove(&s->watch);
	/* A message being handled, or waiting for queues, finishes first, then tears the
	 * session down (finish()). */
	if (!s->busy && !s->in_handler)
		teardown(s);
}

json_t *vhost_session_info_json(struct vhost_session *s)
{
	json_t *queues = json_array();
	uint64_t inflight = 0;
	bool started = false;
	uint32_t n = 0;

	for (uint32_t i = 0; i < VHOST_MAX_QUEUES; i++) {
		struct vhost_queue *q = s->queues[i];

		if (q == NULL)
			continue;
		n = i + 1;
		started |= q->started;
		inflight += atomic_load_explicit(&q->inflight, memory_order_relaxed);
		json_array_append_new(
			queues,
			json_pack(
				"{s:i, s:i, s:b, s:b, s:I, s:I, s:I}", "index", (int)i, "size",
				(int)q->num, "started", q->started, "broken",
				atomic_load(&q->broken), "requests",
				(json_int_t)atomic_load_explicit(&q->requests,
								 memory_order_relaxed),
				"kicks",
				(json_int_t)atomic_load_explicit(&q->kicks, memory_order_relaxed),
				"calls",
				(json_int_t)atomic_load_explicit(&q->calls, memory_order_relaxed)));
	}
	char features[24];

	/* What the driver took: tells whether a guest gets events (virtio-scsi's hot-plug). */
	snprintf(features, sizeof(features), "0x%llx", (unsigned long long)s->features);
	return json_pack("{s:i, s:i, s:s, s:b, s:i, s:I, s:s, s:o}", "vid", (int)s->id, "id",
			 (int)s->id, "name", s->name, "started", started, "max_queues", (int)n,
			 "inflight_task_cnt", (json_int_t)inflight, "features", features, "queues",
			 queues);
}
