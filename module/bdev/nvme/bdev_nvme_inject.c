/*
 * Error injection into a controller's I/O commands (bdev_nvme_add_error_injection,
 * bdev_nvme_remove_error_injection), SPDK's semantics: an injection per opcode replaces an
 * earlier one of the same opcode; err_count commands of that opcode fail with the given
 * status, either without reaching the controller (do_not_submit, completed after
 * timeout_in_us) or when they complete successfully. mimo keeps the injections per
 * controller (all its I/O queues, across reconnects) where SPDK keeps them per queue pair, so
 * err_count counts commands of the whole controller.
 */
#include <errno.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"
#include "mimo/nvme_spec.h"

static struct nvme_bdev_ctrlr *find(const char *name)
{
	struct nvme_bdev_ctrlr *nbc;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		if (nbc->mp_primary == NULL && strcmp(nbc->name, name) == 0 &&
		    nbc->state != NBC_CONNECTING)
			return nbc;
	}
	return NULL;
}

static void count_active(struct nvme_bdev_ctrlr *nbc)
{
	int n = 0;

	for (int i = 0; i < NVME_MAX_INJECT; i++)
		n += __atomic_load_n(&nbc->inject[i].active, __ATOMIC_RELAXED) != 0;
	__atomic_store_n(&nbc->num_inject, n, __ATOMIC_RELEASE);
}

int bdev_nvme_inject_add(const char *name, uint8_t opc, bool do_not_submit, uint64_t timeout_us,
			 uint32_t err_count, uint8_t sct, uint8_t sc)
{
	struct nvme_bdev_ctrlr *nbc = find(name);
	struct nvme_inject *slot = NULL;

	if (nbc == NULL)
		return -ENODEV;
	for (int i = 0; i < NVME_MAX_INJECT && slot == NULL; i++)
		if (nbc->inject[i].active && nbc->inject[i].opc == opc)
			slot = &nbc->inject[i];
	for (int i = 0; i < NVME_MAX_INJECT && slot == NULL; i++)
		if (!nbc->inject[i].active)
			slot = &nbc->inject[i];
	if (slot == NULL)
		return -ENOMEM;
	/* Off while it changes: a reactor reading it meanwhile skips it. */
	__atomic_store_n(&slot->active, 0, __ATOMIC_RELEASE);
	slot->opc = opc;
	slot->do_not_submit = do_not_submit;
	/* Not sent: SPDK completes it by hand, with DNR set (its queue's abort_dnr). */
	slot->status = mimo_nvme_status(sct, sc, do_not_submit ? 1 : 0);
	slot->delay_ns = timeout_us * 1000;
	__atomic_store_n(&slot->err_count, err_count, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->active, 1, __ATOMIC_RELEASE);
	count_active(nbc);
	return 0;
}

int bdev_nvme_inject_remove(const char *name, uint8_t opc)
{
	struct nvme_bdev_ctrlr *nbc = find(name);

	if (nbc == NULL)
		return -ENODEV;
	for (int i = 0; i < NVME_MAX_INJECT; i++)
		if (nbc->inject[i].active && nbc->inject[i].opc == opc)
			__atomic_store_n(&nbc->inject[i].active, 0, __ATOMIC_RELEASE);
	count_active(nbc);
	return 0; /* none of that opcode: nothing to remove, as SPDK */
}

bool nvme_inject_match(struct nvme_bdev_ctrlr *nbc, uint8_t opc, struct nvme_inject_hit *hit)
{
	if (__atomic_load_n(&nbc->num_inject, __ATOMIC_ACQUIRE) == 0)
		return false;
	for (int i = 0; i < NVME_MAX_INJECT; i++) {
		struct nvme_inject *in = &nbc->inject[i];
		uint32_t n;

		if (!__atomic_load_n(&in->active, __ATOMIC_ACQUIRE) || in->opc != opc)
			continue;
		n = __atomic_load_n(&in->err_count, __ATOMIC_RELAXED);
		while (n > 0 && !__atomic_compare_exchange_n(&in->err_count, &n, n - 1, false,
							     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		if (n == 0)
			return false; /* used up: it stays listed, as SPDK's */
		hit->slot = i;
		hit->do_not_submit = in->do_not_submit;
		hit->status = in->status;
		hit->delay_ns = in->delay_ns;
		return true;
	}
	return false;
}

void nvme_inject_undo(struct nvme_bdev_ctrlr *nbc, const struct nvme_inject_hit *hit)
{
	__atomic_fetch_add(&nbc->inject[hit->slot].err_count, 1, __ATOMIC_RELAXED);
}
