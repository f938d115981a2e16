/*
 * SCSI devices: a name, an id, a table of LUNs. The table is read lock-free by tasks on any
 * reactor (an atomic pointer per LUN) and changed by the owner under g_scsi_devs_lock, which
 * also guards the registry of devices (lookups, ids, scsi_get_devices).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scsi_internal.h"

pthread_mutex_t g_scsi_devs_lock = PTHREAD_MUTEX_INITIALIZER;
struct scsi_dev_list g_scsi_devs = TAILQ_HEAD_INITIALIZER(g_scsi_devs);

MIMO_EXPORT void mimo_register_scsi(void)
{
	scsi_rpc_register();
}

static struct mimo_scsi_dev *find_locked(const char *name)
{
	struct mimo_scsi_dev *d;

	TAILQ_FOREACH(d, &g_scsi_devs, link)
	{
		if (strcmp(d->name, name) == 0)
			return d;
	}
	return NULL;
}

static int lowest_free_id_locked(void)
{
	for (int id = 0;; id++) {
		struct mimo_scsi_dev *d;
		bool used = false;

		TAILQ_FOREACH(d, &g_scsi_devs, link)
		{
			if (d->id == id) {
				used = true;
				break;
			}
		}
		if (!used)
			return id;
	}
}

static struct scsi_lun *lun_at(const struct mimo_scsi_dev *dev, uint32_t id)
{
	return id < MIMO_SCSI_MAX_LUNS ? atomic_load_explicit(&dev->luns[id], memory_order_acquire)
				       : NULL;
}

/* A LUN never published: nothing runs on it, close at once. */
static void lun_destroy_unused(struct scsi_lun *lun)
{
	mimo_bdev_close(lun->desc);
	scsi_lun_put(lun);
}

/* The device's other LUNs learn that the inventory changed. */
static void luns_changed(struct mimo_scsi_dev *dev, uint32_t except)
{
	for (uint32_t i = 0; i < MIMO_SCSI_MAX_LUNS; i++) {
		struct scsi_lun *lun = lun_at(dev, i);

		if (lun != NULL && i != except)
			scsi_lun_raise_ua(lun, SCSI_UA_LUNS_CHANGED);
	}
}

MIMO_EXPORT int mimo_scsi_dev_create(const char *name, const char *const bdev_names[],
				     const uint32_t lun_ids[], int num_luns,
				     mimo_scsi_lun_event_fn event_fn, void *event_ctx,
				     struct mimo_scsi_dev **out)
{
	struct scsi_lun *luns[MIMO_SCSI_MAX_LUNS] = { 0 };
	struct mimo_scsi_dev *dev;
	int rc = 0;

	if (mimo_reactor_current() == NULL)
		return -EPERM;
	if (name == NULL || name[0] == '\0' || strlen(name) > MIMO_SCSI_DEV_NAME_MAX ||
	    num_luns < 0 || num_luns > MIMO_SCSI_MAX_LUNS || (num_luns > 0 && bdev_names == NULL))
		return -EINVAL;
	for (int i = 0; i < num_luns; i++) {
		uint32_t id = lun_ids != NULL ? lun_ids[i] : (uint32_t)i;

		if (id >= MIMO_SCSI_MAX_LUNS || bdev_names[i] == NULL)
			return -EINVAL;
		for (int j = 0; j < i; j++) {
			if ((lun_ids != NULL ? lun_ids[j] : (uint32_t)j) == id)
				return -EINVAL;
		}
	}
	dev = calloc(1, sizeof(*dev));
	if (dev == NULL)
		return -ENOMEM;
	strcpy(dev->name, name);
	dev->owner = mimo_reactor_current();
	dev->event_fn = event_fn;
	dev->event_ctx = event_ctx;
	for (int i = 0; i < num_luns && rc == 0; i++) {
		uint32_t id = lun_ids != NULL ? lun_ids[i] : (uint32_t)i;

		rc = scsi_lun_create(dev, id, bdev_names[i], &luns[id]);
	}
	pthread_mutex_lock(&g_scsi_devs_lock);
	if (rc == 0 && find_locked(name) != NULL)
		rc = -EEXIST;
	if (rc == 0) {
		dev->id = lowest_free_id_locked();
		for (uint32_t id = 0; id < MIMO_SCSI_MAX_LUNS; id++)
			atomic_store_explicit(&dev->luns[id], luns[id], memory_order_release);
		TAILQ_INSERT_TAIL(&g_scsi_devs, dev, link);
	}
	pthread_mutex_unlock(&g_scsi_devs_lock);
	if (rc != 0) {
		for (uint32_t id = 0; id < MIMO_SCSI_MAX_LUNS; id++) {
			if (luns[id] != NULL)
				lun_destroy_unused(luns[id]);
		}
		free(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

MIMO_EXPORT int mimo_scsi_dev_add_lun(struct mimo_scsi_dev *dev, const char *bdev_name,
				      int32_t lun_id)
{
	struct scsi_lun *lun;
	uint32_t id;
	int rc;

	if (mimo_reactor_current() != dev->owner)
		return -EPERM;
	if (bdev_name == NULL || dev->destroying || lun_id < -1 || lun_id >= MIMO_SCSI_MAX_LUNS)
		return -EINVAL;
	if (lun_id >= 0) {
		id = (uint32_t)lun_id;
		if (lun_at(dev, id) != NULL)
			return -EEXIST;
	} else {
		for (id = 0; id < MIMO_SCSI_MAX_LUNS && lun_at(dev, id) != NULL; id++)
			;
		if (id == MIMO_SCSI_MAX_LUNS)
			return -ENOSPC;
	}
	rc = scsi_lun_create(dev, id, bdev_name, &lun);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&g_scsi_devs_lock);
	atomic_store_explicit(&dev->luns[id], lun, memory_order_release);
	pthread_mutex_unlock(&g_scsi_devs_lock);
	luns_changed(dev, id);
	return (int)id;
}

static void unpublish(struct mimo_scsi_dev *dev, struct scsi_lun *lun)
{
	pthread_mutex_lock(&g_scsi_devs_lock);
	atomic_store_explicit(&dev->luns[lun->id], NULL, memory_order_release);
	pthread_mutex_unlock(&g_scsi_devs_lock);
}

static void dev_lun_gone(struct mimo_scsi_dev *dev);

/* Every removal ends here, on the owner, before the LUN's memory goes. */
static void removal_done(void *arg)
{
	struct scsi_lun *lun = arg;
	struct mimo_scsi_dev *dev = lun->dev;

	if (lun->hot) {
		MIMO_INFO(SCSI_COMP, "%s: LUN %u removed with its bdev %s", dev->name, lun->id,
			  lun->bdev_name);
		if (dev->event_fn != NULL && !dev->destroying)
			dev->event_fn(dev->event_ctx, dev, lun->id, MIMO_SCSI_LUN_EVENT_REMOVED);
	} else if (lun->user_cb != NULL) {
		lun->user_cb(lun->user_arg);
	}
	dev->removals--;
	if (dev->destroying)
		dev_lun_gone(dev);
}

static void start_removal(struct mimo_scsi_dev *dev, struct scsi_lun *lun)
{
	dev->removals++;
	scsi_lun_remove(lun, removal_done, lun);
}

MIMO_EXPORT int mimo_scsi_dev_remove_lun(struct mimo_scsi_dev *dev, uint32_t id,
					 void (*cb)(void *arg), void *arg)
{
	struct scsi_lun *lun = lun_at(dev, id);

	if (mimo_reactor_current() != dev->owner)
		return -EPERM;
	if (lun == NULL)
		return -ENODEV;
	unpublish(dev, lun);
	luns_changed(dev, id);
	lun->user_cb = cb;
	lun->user_arg = arg;
	start_removal(dev, lun);
	return 0;
}

/* The bdev is going (on the owner, from the bdev's REMOVE event). */
void scsi_dev_lun_hot_removed(struct scsi_lun *lun)
{
	struct mimo_scsi_dev *dev = lun->dev;

	if (lun_at(dev, lun->id) != lun)
		return; /* already on its way out */
	unpublish(dev, lun);
	luns_changed(dev, lun->id);
	lun->hot = true;
	start_removal(dev, lun);
}

static void dev_free(void *arg)
{
	struct mimo_scsi_dev *dev = arg;
	void (*cb)(void *arg) = dev->destroy_cb;
	void *cb_arg = dev->destroy_arg;

	free(dev);
	if (cb != NULL)
		cb(cb_arg);
}

static void dev_lun_gone(struct mimo_scsi_dev *dev)
{
	/* Always by message, so that cb never runs inside mimo_scsi_dev_destroy. */
	if (--dev->destroy_pending == 0)
		scsi_post(dev->owner, dev_free, dev);
}

MIMO_EXPORT void mimo_scsi_dev_destroy(struct mimo_scsi_dev *dev, void (*cb)(void *arg), void *arg)
{
	struct scsi_lun *luns[MIMO_SCSI_MAX_LUNS];
	int n = 0;

	dev->destroying = true;
	dev->destroy_cb = cb;
	dev->destroy_arg = arg;
	pthread_mutex_lock(&g_scsi_devs_lock);
	TAILQ_REMOVE(&g_scsi_devs, dev, link);
	for (uint32_t id = 0; id < MIMO_SCSI_MAX_LUNS; id++) {
		struct scsi_lun *lun = lun_at(dev, id);

		if (lun == NULL)
			continue;
		atomic_store_explicit(&dev->luns[id], NULL, memory_order_release);
		luns[n++] = lun;
	}
	pthread_mutex_unlock(&g_scsi_devs_lock);
	for (int i = 0; i < n; i++)
		start_removal(dev, luns[i]);
	/* Removals started earlier (hot removals) are waited for too: they use the device. */
	dev->destroy_pending = dev->removals + 1;
	dev_lun_gone(dev);
}

MIMO_EXPORT const char *mimo_scsi_dev_get_name(const struct mimo_scsi_dev *dev)
{
	return dev->name;
}

MIMO_EXPORT int mimo_scsi_dev_get_id(const struct mimo_scsi_dev *dev)
{
	return dev->id;
}

MIMO_EXPORT const char *mimo_scsi_dev_get_lun_bdev(const struct mimo_scsi_dev *dev, uint32_t id)
{
	struct scsi_lun *lun = lun_at(dev, id);

	return lun != NULL ? lun->bdev_name : NULL;
}

json_t *scsi_dev_luns_json_locked(struct mimo_scsi_dev *dev);
json_t *scsi_dev_luns_json_locked(struct mimo_scsi_dev *dev)
{
	json_t *a = json_array();

	for (uint32_t id = 0; id < MIMO_SCSI_MAX_LUNS; id++) {
		struct scsi_lun *lun = lun_at(dev, id);

		if (lun != NULL)
			json_array_append_new(a, json_pack("{s:i, s:s}", "id", (int)id, "bdev_name",
							   lun->bdev_name));
	}
	return a;
}

MIMO_EXPORT json_t *mimo_scsi_dev_luns_json(struct mimo_scsi_dev *dev)
{
	json_t *a;

	pthread_mutex_lock(&g_scsi_devs_lock);
	a = scsi_dev_luns_json_locked(dev);
	pthread_mutex_unlock(&g_scsi_devs_lock);
	return a;
}

MIMO_EXPORT struct mimo_scsi_dev *mimo_scsi_dev_find(const char *name)
{
	struct mimo_scsi_dev *d;

	pthread_mutex_lock(&g_scsi_devs_lock);
	d = find_locked(name);
	pthread_mutex_unlock(&g_scsi_devs_lock);
	return d;
}
