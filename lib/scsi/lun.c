/*
 * Logical units: a bdev descriptor, the LUN's state on each reactor (a bdev channel taken on
 * first use, the tasks in flight there), unit attentions, and removal - unpublished first, so
 * that no new task finds it, then drained reactor by reactor, then closed on the owner.
 *
 * Lifetime: the owner holds a reference until the bdev is closed; every message sent to a
 * reactor about the LUN holds one; the memory goes with the last.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scsi_internal.h"

void scsi_post(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	static struct mimo_ratelimit rl;

	/* mimo_reactor_post fails only when it cannot allocate an overflow node; the ring
	 * itself may have room again a moment later. */
	while (mimo_reactor_post(r, fn, arg) != 0) {
		if (mimo_ratelimit_allow(&rl, 1000000000, NULL))
			MIMO_ERR(SCSI_COMP, "out of memory posting a message; retrying");
		if (mimo_reactor_send_msg(r, fn, arg) == 0)
			return;
		sched_yield();
	}
}

void scsi_lun_get(struct scsi_lun *lun)
{
	atomic_fetch_add(&lun->refs, 1);
}

void scsi_lun_put(struct scsi_lun *lun)
{
	if (atomic_fetch_sub(&lun->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&lun->caw_lock);
	free(lun->bdev_name);
	free(lun);
}

struct mimo_io_channel *scsi_lun_reactor_channel(struct scsi_lun *lun, struct scsi_lun_reactor *st)
{
	if (mimo_unlikely(st->ch == NULL))
		st->ch = mimo_bdev_get_io_channel(lun->desc);
	return st->ch;
}

struct mimo_io_channel *scsi_lun_channel(struct scsi_task_priv *p)
{
	return scsi_lun_reactor_channel(p->lun, p->st);
}

void scsi_lun_raise_ua(struct scsi_lun *lun, uint32_t ua)
{
	atomic_fetch_or(&lun->ua, ua);
}

void scsi_lun_reset_state(struct scsi_lun *lun)
{
	/* SAM-5: a logical unit reset returns the mode pages to their saved values (here, the
	 * defaults), and is reported as a unit attention; it supersedes the pending ones but
	 * power-on, which SPC-4 ranks first. */
	atomic_store(&lun->mode, scsi_lun_default_mode(lun));
	atomic_store(&lun->stopped, false);
	atomic_fetch_and(&lun->ua, SCSI_UA_POWER_ON);
	atomic_fetch_or(&lun->ua, SCSI_UA_LUN_RESET);
}

static void resized_on_owner(void *arg)
{
	struct scsi_lun *lun = arg;
	struct mimo_scsi_dev *dev = lun->dev;

	if (!atomic_load(&lun->removing) && dev->event_fn != NULL)
		dev->event_fn(dev->event_ctx, dev, lun->id, MIMO_SCSI_LUN_EVENT_RESIZED);
	scsi_lun_put(lun);
}

void scsi_lun_check_capacity(struct scsi_lun *lun)
{
	uint64_t now = mimo_bdev_get_num_blocks(lun->bdev);
	uint64_t seen = atomic_load_explicit(&lun->num_blocks, memory_order_relaxed);

	if (mimo_likely(now == seen))
		return;
	/* One task wins the change and tells everyone. */
	if (!atomic_compare_exchange_strong(&lun->num_blocks, &seen, now))
		return;
	scsi_lun_raise_ua(lun, SCSI_UA_CAPACITY_CHANGED);
	scsi_lun_get(lun);
	scsi_post(lun->dev->owner, resized_on_owner, lun);
}

/* --- creation ------------------------------------------------------------------------------ */

static void bdev_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct scsi_lun *lun = ctx;

	(void)bdev;
	if (type == MIMO_BDEV_EVENT_REMOVE && !atomic_load(&lun->removing))
		scsi_dev_lun_hot_removed(lun);
	/* At once, not at the next command: an idle initiator hears of it (PARAM_CHANGE). */
	else if (type == MIMO_BDEV_EVENT_RESIZE && !atomic_load(&lun->removing))
		scsi_lun_check_capacity(lun);
}

int scsi_lun_create(struct mimo_scsi_dev *dev, uint32_t id, const char *bdev_name,
		    struct scsi_lun **out)
{
	uint32_t n = mimo_reactor_count();
	size_t size = sizeof(struct scsi_lun) + n * sizeof(struct scsi_lun_reactor);
	struct scsi_lun *lun;
	int rc;

	lun = aligned_alloc(MIMO_CACHELINE,
			    (size + MIMO_CACHELINE - 1) & ~(size_t)(MIMO_CACHELINE - 1));
	if (lun == NULL)
		return -ENOMEM;
	memset(lun, 0, size);
	lun->dev = dev;
	lun->id = id;
	lun->nreactors = n;
	lun->bdev_name = strdup(bdev_name);
	if (lun->bdev_name == NULL) {
		free(lun);
		return -ENOMEM;
	}
	rc = mimo_bdev_open(bdev_name, true, bdev_event, lun, &lun->desc);
	if (rc == -EPERM) {
		/* A module claims the bdev (the base of an error bdev): readers are still
		 * welcome, and the LUN is write-protected. */
		rc = mimo_bdev_open(bdev_name, false, bdev_event, lun, &lun->desc);
		lun->readonly = true;
	}
	if (rc != 0) {
		free(lun->bdev_name);
		free(lun);
		return rc;
	}
	lun->bdev = mimo_bdev_desc_get_bdev(lun->desc);
	lun->block_size = mimo_bdev_get_block_size(lun->bdev);
	atomic_init(&lun->num_blocks, mimo_bdev_get_num_blocks(lun->bdev));
	memcpy(lun->uuid, mimo_bdev_get_uuid(lun->bdev), sizeof(lun->uuid));
	lun->can_unmap =
		!lun->readonly && mimo_bdev_io_type_supported(lun->bdev, MIMO_BDEV_IO_UNMAP);
	lun->can_write_zeroes = mimo_bdev_io_type_supported(lun->bdev, MIMO_BDEV_IO_WRITE_ZEROES);
	lun->can_flush = mimo_bdev_io_type_supported(lun->bdev, MIMO_BDEV_IO_FLUSH);
	atomic_init(&lun->mode, scsi_lun_default_mode(lun));
	/* SAM-5: the first command after the logical unit appears learns of its "power on". */
	atomic_init(&lun->ua, SCSI_UA_POWER_ON);
	atomic_init(&lun->refs, 1);
	pthread_mutex_init(&lun->caw_lock, NULL);
	TAILQ_INIT(&lun->caw_queue);
	for (uint32_t i = 0; i < n; i++) {
		TAILQ_INIT(&lun->per_reactor[i].tasks);
		TAILQ_INIT(&lun->per_reactor[i].parked);
	}
	*out = lun;
	return 0;
}

/* --- removal ------------------------------------------------------------------------------- */

static void lun_finish_on_owner(void *arg)
{
	struct scsi_lun *lun = arg;

	mimo_bdev_close(lun->desc);
	lun->desc = NULL;
	if (lun->removed_cb != NULL)
		lun->removed_cb(lun->removed_arg);
	scsi_lun_put(lun);
}

void scsi_lun_release_here(struct scsi_lun *lun, struct scsi_lun_reactor *st)
{
	if (st->ch != NULL)
		mimo_put_io_channel(st->ch);
	st->ch = NULL;
	if (atomic_fetch_sub(&lun->draining_reactors, 1) == 1) {
		scsi_post(lun->dev->owner, lun_finish_on_owner, lun);
	}
}

static void drain_here(void *arg)
{
	struct scsi_lun *lun = arg;
	struct scsi_lun_reactor *st = &lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];

	st->draining = true;
	if (TAILQ_EMPTY(&st->tasks))
		scsi_lun_release_here(lun, st);
}

void scsi_lun_remove(struct scsi_lun *lun, void (*cb)(void *arg), void *arg)
{
	atomic_store(&lun->removing, true);
	lun->removed_cb = cb;
	lun->removed_arg = arg;
	atomic_store(&lun->draining_reactors, (int)lun->nreactors);
	/* The owner's reference keeps the LUN until lun_finish_on_owner. */
	for (uint32_t i = 0; i < lun->nreactors; i++) {
		scsi_post(mimo_reactor_get(i), drain_here, lun);
	}
}
