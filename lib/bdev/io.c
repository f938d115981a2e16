/*
 * The I/O path: submission, completion, statistics, write hooks.
 *
 * A write hook may hold a write's completion (the FUSE export does, until the kernel's page
 * cache shows the write): the count of holds lives in the I/O, the layer takes one more while
 * the hooks run, and the last release sends the completion back to the submitting reactor.
 *
 * Completions from inside a submission (modules that complete at once, like malloc) are
 * deferred to the end of the reactor's turn, so a callback that submits again never recurses
 * and a deep queue never grows the stack.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_internal.h"
#include "compiler.h"
#include "log.h"
#include "ticks.h"

#define COMP		 "bdev"
#define CHANNEL_IO_CACHE 1024
#define MAX_WRITE_HOOKS	 8

struct deferred {
	struct bdev_io_list ios;
	struct mimo_poller *poller;
};

static __thread unsigned t_submit_depth;
static __thread struct deferred t_deferred;

static struct {
	_Atomic(mimo_bdev_write_hook) cb;
	void *_Atomic arg;
} g_hooks[MAX_WRITE_HOOKS];
static _Atomic int g_nhooks;
static pthread_mutex_t g_hooks_lock = PTHREAD_MUTEX_INITIALIZER;

static void call_completion(struct mimo_bdev_io *io)
{
	/* Outstanding until the submitter hears of it: a held write still is. */
	ch_outstanding_add(io->ch, -1);
	io->cb(io, io->status == 0, io->cb_arg);
}

static int run_deferred(void *arg)
{
	struct bdev_io_list now;
	struct mimo_bdev_io *io;
	int n = 0;

	(void)arg;
	if (STAILQ_EMPTY(&t_deferred.ios))
		return 0;
	/* Only those present now: completions deferred while these run wait for next turn. */
	now = t_deferred.ios;
	STAILQ_INIT(&t_deferred.ios);
	while ((io = STAILQ_FIRST(&now)) != NULL) {
		STAILQ_REMOVE_HEAD(&now, link);
		call_completion(io);
		n++;
	}
	return n;
}

static void defer(struct mimo_bdev_io *io)
{
	if (mimo_unlikely(t_deferred.poller == NULL)) {
		STAILQ_INIT(&t_deferred.ios);
		t_deferred.poller = mimo_poller_register(run_deferred, NULL, 0);
	}
	STAILQ_INSERT_TAIL(&t_deferred.ios, io, link);
}

/* Run the hooks; true when one of them holds the completion (it comes later). */
static bool call_write_hooks(struct mimo_bdev_io *io)
{
	int n = atomic_load_explicit(&g_nhooks, memory_order_acquire);

	io->holds = 0; /* nobody else can see the I/O yet */
	for (int i = 0; i < n && i < MAX_WRITE_HOOKS; i++) {
		mimo_bdev_write_hook cb = atomic_load(&g_hooks[i].cb);

		if (cb != NULL)
			cb(atomic_load(&g_hooks[i].arg), io, io->bdev, io->offset_blocks,
			   io->num_blocks);
	}
	/* Drop the layer's own hold: if a release is still to come, it completes the I/O. */
	return __atomic_load_n(&io->holds, __ATOMIC_RELAXED) != 0 &&
	       __atomic_sub_fetch(&io->holds, 1, __ATOMIC_ACQ_REL) != 0;
}

MIMO_EXPORT void mimo_bdev_io_hold(struct mimo_bdev_io *io)
{
	/* On the submitting reactor, inside a hook: the first hold also counts the layer's. */
	if (__atomic_load_n(&io->holds, __ATOMIC_RELAXED) == 0) {
		io->hold_reactor = mimo_reactor_current();
		__atomic_store_n(&io->holds, 2, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&io->holds, 1, __ATOMIC_RELAXED);
	}
}

static void held_complete(void *arg)
{
	call_completion(arg); /* a message: never inside a submission */
}

MIMO_EXPORT void mimo_bdev_io_release(struct mimo_bdev_io *io)
{
	if (__atomic_sub_fetch(&io->holds, 1, __ATOMIC_ACQ_REL) == 0)
		bdev_send(io->hold_reactor, held_complete, io);
}

MIMO_EXPORT void *mimo_bdev_io_cb_arg_if(const struct mimo_bdev_io *io, mimo_bdev_io_cb cb)
{
	return io->cb == cb ? io->cb_arg : NULL;
}

MIMO_EXPORT void mimo_bdev_io_complete(struct mimo_bdev_io *io, int status)
{
	struct bdev_channel *ch = io->ch;
	uint64_t ticks = mimo_get_ticks() - io->submit_ticks;

	io->status = status;
	bdev_stat_count(ch, io, ticks);
	bdev_hist_complete(ch, io, ticks);
	if (mimo_likely(status == 0)) {
		if (io->type == MIMO_BDEV_IO_WRITE || io->type == MIMO_BDEV_IO_WRITE_ZEROES ||
		    io->type == MIMO_BDEV_IO_UNMAP) {
			if (atomic_load_explicit(&g_nhooks, memory_order_relaxed) > 0 &&
			    call_write_hooks(io))
				return; /* held: the last mimo_bdev_io_release completes it */
		}
	} else {
		bdev_report_io_error(io);
	}
	if (t_submit_depth > 0)
		defer(io);
	else
		call_completion(io);
}

static struct mimo_bdev_io *get_io(struct bdev_channel *ch)
{
	struct mimo_bdev_io *io = STAILQ_FIRST(&ch->free_ios);

	if (mimo_likely(io != NULL)) {
		STAILQ_REMOVE_HEAD(&ch->free_ios, link);
		ch->nfree--;
		return io;
	}
	return malloc(sizeof(*io) + bdev_io_ctx_size());
}

MIMO_EXPORT void mimo_bdev_free_io(struct mimo_bdev_io *io)
{
	struct bdev_channel *ch = io->ch;

	if (ch->nfree >= CHANNEL_IO_CACHE) {
		free(io);
		return;
	}
	STAILQ_INSERT_HEAD(&ch->free_ios, io, link);
	ch->nfree++;
}

MIMO_EXPORT int mimo_bdev_io_get_status(const struct mimo_bdev_io *io)
{
	return io->status;
}

MIMO_EXPORT void mimo_bdev_io_complete_nvme_status(struct mimo_bdev_io *io, uint8_t sct, uint8_t sc)
{
	io->nvme_sct = sct;
	io->nvme_sc = sc;
	mimo_bdev_io_complete(io, -EIO);
}

MIMO_EXPORT bool mimo_bdev_io_get_nvme_status(const struct mimo_bdev_io *io, uint8_t *sct,
					      uint8_t *sc)
{
	if (io->status != -EIO || (io->nvme_sct == 0 && io->nvme_sc == 0))
		return false;
	*sct = io->nvme_sct;
	*sc = io->nvme_sc;
	return true;
}

static bool needs_write(enum mimo_bdev_io_type t)
{
	return t == MIMO_BDEV_IO_WRITE || t == MIMO_BDEV_IO_WRITE_ZEROES || t == MIMO_BDEV_IO_UNMAP;
}

void bdev_io_dispatch(struct mimo_bdev_io *io)
{
	t_submit_depth++;
	if (io->zcopy)
		mimo_bdev_io_complete(io, 0);
	else
		io->bdev->fn_table->submit_request(io->ch->module_ch, io);
	t_submit_depth--;
}

/* Count it outstanding and dispatch it, unless QoS holds it back for now. */
static void start(struct bdev_channel *ch, struct mimo_bdev_io *io)
{
	struct bdev_ext *ext = bdev_ext(io->bdev);

	io->submit_ticks = mimo_get_ticks();
	ch_outstanding_add(ch, 1);
	if (mimo_unlikely(atomic_load_explicit(&ext->qos.enabled, memory_order_relaxed)) &&
	    !bdev_qos_admit(ch, io))
		return;
	bdev_io_dispatch(io);
}

static int submit(struct mimo_bdev_desc *desc, struct mimo_io_channel *ioch,
		  enum mimo_bdev_io_type type, struct iovec *iov, int iovcnt, void *buf,
		  uint64_t offset, uint64_t num, mimo_bdev_io_cb cb, void *cb_arg)
{
	struct bdev_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct mimo_bdev *bdev = desc->bdev;
	uint64_t blockcnt = mimo_bdev_get_num_blocks(bdev);
	struct mimo_bdev_io *io;

	if (mimo_unlikely(needs_write(type) && !desc->write))
		return -EBADF;
	if (mimo_unlikely(type != MIMO_BDEV_IO_RESET &&
			  (offset > blockcnt || num > blockcnt - offset ||
			   (num == 0 && type != MIMO_BDEV_IO_FLUSH))))
		return -EINVAL;
	if (mimo_unlikely(!bdev->fn_table->io_type_supported(bdev->ctxt, type)))
		return -ENOTSUP;
	if (type == MIMO_BDEV_IO_READ || type == MIMO_BDEV_IO_WRITE) {
		size_t total = 0;

		if (iov == NULL) {
			if (buf == NULL)
				return -EINVAL;
		} else {
			for (int i = 0; i < iovcnt; i++)
				total += iov[i].iov_len;
			if (iovcnt <= 0 || total != num * bdev->blocklen)
				return -EINVAL;
		}
	}
	io = get_io(ch);
	if (mimo_unlikely(io == NULL))
		return -ENOMEM;
	io->bdev = bdev;
	io->ch = ch;
	io->type = type;
	if (iov == NULL) {
		io->iov.iov_base = buf;
		io->iov.iov_len = num * bdev->blocklen;
		io->iovs = &io->iov;
		io->iovcnt = buf != NULL ? 1 : 0;
	} else {
		io->iovs = iov;
		io->iovcnt = iovcnt;
	}
	io->offset_blocks = offset;
	io->num_blocks = num;
	io->status = 0;
	io->cb = cb;
	io->cb_arg = cb_arg;
	io->zcopy = false;
	io->private_bufs = desc->private_bufs;
	io->nvme_sct = io->nvme_sc = 0;
	start(ch, io);
	return 0;
}

MIMO_EXPORT int mimo_bdev_read_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				      void *buf, uint64_t offset, uint64_t num, mimo_bdev_io_cb cb,
				      void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_READ, NULL, 0, buf, offset, num, cb, cb_arg);
}

MIMO_EXPORT bool mimo_bdev_zcopy_supported(const struct mimo_bdev *bdev)
{
	return bdev->fn_table->zcopy_addr != NULL;
}

/* An I/O over the bdev's own memory at addr (zero copy), one iovec, nothing counted yet. */
static struct mimo_bdev_io *zcopy_io(struct bdev_channel *ch, struct mimo_bdev *bdev,
				     enum mimo_bdev_io_type type, void *addr, uint64_t offset,
				     uint64_t num, mimo_bdev_io_cb cb, void *cb_arg)
{
	struct mimo_bdev_io *io = get_io(ch);

	if (mimo_unlikely(io == NULL))
		return NULL;
	io->bdev = bdev;
	io->ch = ch;
	io->type = type;
	io->iov.iov_base = addr;
	io->iov.iov_len = num * bdev->blocklen;
	io->iovs = &io->iov;
	io->iovcnt = 1;
	io->offset_blocks = offset;
	io->num_blocks = num;
	io->cb = cb;
	io->cb_arg = cb_arg;
	io->status = 0;
	io->zcopy = true;
	io->private_bufs = false;
	io->nvme_sct = io->nvme_sc = 0;
	return io;
}

/*
 * No module call at all: the module only says where the blocks are. The I/O still goes
 * through the layer's accounting (statistics, outstanding count, QoS) and completes deferred,
 * at the end of the turn, as a malloc read would.
 */
MIMO_EXPORT int mimo_bdev_zcopy_read_blocks(struct mimo_bdev_desc *desc,
					    struct mimo_io_channel *ioch, uint64_t offset,
					    uint64_t num, mimo_bdev_io_cb cb, void *cb_arg)
{
	struct bdev_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct mimo_bdev *bdev = desc->bdev;
	struct mimo_bdev_io *io;
	void *addr;

	if (mimo_unlikely(bdev->fn_table->zcopy_addr == NULL))
		return -ENOTSUP;
	if (mimo_unlikely(offset > mimo_bdev_get_num_blocks(bdev) || num == 0 ||
			  num > mimo_bdev_get_num_blocks(bdev) - offset))
		return -EINVAL;
	addr = bdev->fn_table->zcopy_addr(bdev->ctxt, offset * bdev->blocklen,
					  num * bdev->blocklen);
	if (mimo_unlikely(addr == NULL))
		return -ENOTSUP;
	io = zcopy_io(ch, bdev, MIMO_BDEV_IO_READ, addr, offset, num, cb, cb_arg);
	if (mimo_unlikely(io == NULL))
		return -ENOMEM;
	start(ch, io);
	return 0;
}

/*
 * The start only finds the memory and takes an I/O: nothing is counted yet but the I/O as
 * outstanding (it holds the channel's memory). The write is counted, admitted by QoS and
 * heard of by the write hooks at its end, as a malloc write of a buffer would be after its
 * copy: the data landing in between is what the copy was.
 */
MIMO_EXPORT int mimo_bdev_zcopy_write_start(struct mimo_bdev_desc *desc,
					    struct mimo_io_channel *ioch, uint64_t offset,
					    uint64_t num, struct mimo_bdev_io **out)
{
	struct bdev_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct mimo_bdev *bdev = desc->bdev;
	struct mimo_bdev_io *io;
	void *addr;

	if (mimo_unlikely(!desc->write))
		return -EBADF;
	if (mimo_unlikely(bdev->fn_table->zcopy_addr == NULL))
		return -ENOTSUP;
	if (mimo_unlikely(offset > mimo_bdev_get_num_blocks(bdev) || num == 0 ||
			  num > mimo_bdev_get_num_blocks(bdev) - offset))
		return -EINVAL;
	/* A limited write waits for its budget; its data must not be visible before. */
	if (mimo_unlikely(atomic_load_explicit(&bdev_ext(bdev)->qos.enabled, memory_order_relaxed)))
		return -EAGAIN;
	addr = bdev->fn_table->zcopy_addr(bdev->ctxt, offset * bdev->blocklen,
					  num * bdev->blocklen);
	if (mimo_unlikely(addr == NULL))
		return -ENOTSUP;
	io = zcopy_io(ch, bdev, MIMO_BDEV_IO_WRITE, addr, offset, num, NULL, NULL);
	if (mimo_unlikely(io == NULL))
		return -ENOMEM;
	ch_outstanding_add(ch, 1);
	*out = io;
	return 0;
}

MIMO_EXPORT void mimo_bdev_zcopy_write_end(struct mimo_bdev_io *io, bool commit, mimo_bdev_io_cb cb,
					   void *cb_arg)
{
	struct bdev_ext *ext = bdev_ext(io->bdev);

	io->cb = cb;
	io->cb_arg = cb_arg;
	io->submit_ticks = mimo_get_ticks();
	if (mimo_likely(commit)) {
		/* Outstanding since the start: only QoS and the dispatch of start() remain. */
		if (mimo_unlikely(atomic_load_explicit(&ext->qos.enabled, memory_order_relaxed)) &&
		    !bdev_qos_admit(io->ch, io))
			return;
		bdev_io_dispatch(io);
		return;
	}
	/* Not a write that happened (no statistics, no error event: the front-end gave up on
	 * it), but part of its data may be in the blocks: whoever caches them must hear of it.
	 * The completion comes at the end of the turn, never inside the caller's teardown. */
	io->status = -ECANCELED;
	if (atomic_load_explicit(&g_nhooks, memory_order_relaxed) > 0 && call_write_hooks(io))
		return;
	defer(io);
}

MIMO_EXPORT void mimo_bdev_io_get_iovec(struct mimo_bdev_io *io, struct iovec **iovs, int *iovcnt)
{
	*iovs = io->iovs;
	*iovcnt = io->iovcnt;
}

MIMO_EXPORT int mimo_bdev_readv_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				       struct iovec *iov, int iovcnt, uint64_t offset, uint64_t num,
				       mimo_bdev_io_cb cb, void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_READ, iov, iovcnt, NULL, offset, num, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_write_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				       void *buf, uint64_t offset, uint64_t num, mimo_bdev_io_cb cb,
				       void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_WRITE, NULL, 0, buf, offset, num, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_writev_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
					struct iovec *iov, int iovcnt, uint64_t offset,
					uint64_t num, mimo_bdev_io_cb cb, void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_WRITE, iov, iovcnt, NULL, offset, num, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_write_zeroes_blocks(struct mimo_bdev_desc *desc,
					      struct mimo_io_channel *ch, uint64_t offset,
					      uint64_t num, mimo_bdev_io_cb cb, void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_WRITE_ZEROES, NULL, 0, NULL, offset, num, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_unmap_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				       uint64_t offset, uint64_t num, mimo_bdev_io_cb cb,
				       void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_UNMAP, NULL, 0, NULL, offset, num, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_flush_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				       uint64_t offset, uint64_t num, mimo_bdev_io_cb cb,
				       void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_FLUSH, NULL, 0, NULL, offset, num, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_reset(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				mimo_bdev_io_cb cb, void *cb_arg)
{
	return submit(desc, ch, MIMO_BDEV_IO_RESET, NULL, 0, NULL, 0, 0, cb, cb_arg);
}

MIMO_EXPORT int mimo_bdev_add_write_hook(mimo_bdev_write_hook cb, void *arg)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&g_hooks_lock);
	for (int i = 0; i < MAX_WRITE_HOOKS; i++) {
		if (atomic_load(&g_hooks[i].cb) == NULL) {
			atomic_store(&g_hooks[i].arg, arg);
			atomic_store(&g_hooks[i].cb, cb);
			if (i + 1 > atomic_load(&g_nhooks))
				atomic_store(&g_nhooks, i + 1);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&g_hooks_lock);
	return rc;
}

MIMO_EXPORT void mimo_bdev_remove_write_hook(mimo_bdev_write_hook cb, void *arg)
{
	pthread_mutex_lock(&g_hooks_lock);
	for (int i = 0; i < MAX_WRITE_HOOKS; i++) {
		if (atomic_load(&g_hooks[i].cb) == cb && atomic_load(&g_hooks[i].arg) == arg)
			atomic_store(&g_hooks[i].cb, NULL);
	}
	pthread_mutex_unlock(&g_hooks_lock);
}

MIMO_EXPORT void mimo_iov_to_buf(const struct iovec *iov, int iovcnt, void *buf, size_t len)
{
	char *p = buf;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = MIMO_MIN(iov[i].iov_len, len);

		memcpy(p, iov[i].iov_base, n);
		p += n;
		len -= n;
	}
}

MIMO_EXPORT void mimo_iov_from_buf(const struct iovec *iov, int iovcnt, const void *buf, size_t len)
{
	const char *p = buf;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = MIMO_MIN(iov[i].iov_len, len);

		memcpy(iov[i].iov_base, p, n);
		p += n;
		len -= n;
	}
}
