/*
 * Adding a failover path to an attached controller (bdev_nvme_attach_controller -x failover
 * with the name of one): SPDK's checks, then a connection to the new path to prove it leads
 * to the same subsystem and namespaces, which is closed again; the path joins the
 * controller's list, tried when the connected one is lost (bdev_nvme.c, reconnecting).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"
#include "log.h"
#include "nvme_internal.h"

#define COMP "bdev_nvme"

struct probe {
	char *name;
	struct mimo_nvme_trid trid;
	struct mimo_nvme_connect_ctx *connect;
	struct mimo_nvme_detach_ctx *detach;
	struct mimo_poller *poller;
	int rc;
	bdev_nvme_attach_cb cb;
	void *arg;
};

static struct nvme_bdev_ctrlr *find(const char *name)
{
	struct nvme_bdev_ctrlr *nbc;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		if (nbc->mp_primary == NULL && strcmp(nbc->name, name) == 0)
			return nbc;
	}
	return NULL;
}

static bool same_place(const struct mimo_nvme_trid *a, const struct mimo_nvme_trid *b)
{
	return strcmp(a->traddr, b->traddr) == 0 && strcmp(a->trsvcid, b->trsvcid) == 0 &&
	       strcmp(a->hostaddr, b->hostaddr) == 0;
}

/* The new path's namespaces must be the controller's: each of its bdevs' by ID, with the
 * same UUID or NGUID where both have one (SPDK compares the identities alike). */
int bdev_nvme_same_namespaces(const struct nvme_bdev_ctrlr *nbc, struct mimo_nvme_ctrlr *ctrlr)
{
	const struct nvme_disk *d;

	TAILQ_FOREACH(d, &nbc->disks, link)
	{
		struct mimo_nvme_ns *ns = mimo_nvme_ctrlr_get_ns(ctrlr, d->nsid);
		const uint8_t *u;

		if (d->removing || d->ns == NULL)
			continue;
		if (ns == NULL)
			return -EINVAL;
		u = mimo_nvme_ns_get_uuid(ns);
		if (u != NULL && mimo_nvme_ns_get_uuid(d->ns) != NULL &&
		    memcmp(u, mimo_nvme_ns_get_uuid(d->ns), 16) != 0)
			return -EINVAL;
		u = mimo_nvme_ns_get_nguid(ns);
		if (u != NULL && mimo_nvme_ns_get_nguid(d->ns) != NULL &&
		    memcmp(u, mimo_nvme_ns_get_nguid(d->ns), 16) != 0)
			return -EINVAL;
	}
	return 0;
}

static int add(struct nvme_bdev_ctrlr *nbc, const struct mimo_nvme_trid *trid)
{
	struct mimo_nvme_trid *p;

	for (uint32_t i = 0; i < nbc->num_paths; i++)
		if (same_place(&nbc->paths[i], trid))
			return -EALREADY; /* added meanwhile */
	p = realloc(nbc->paths, (nbc->num_paths + 1) * sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p[nbc->num_paths] = *trid;
	nbc->paths = p;
	__atomic_store_n(&nbc->num_paths, nbc->num_paths + 1, __ATOMIC_RELAXED);
	return 0;
}

static void finish(struct probe *pr)
{
	json_t *none = json_array(); /* SPDK reports no bdevs for an added path */

	mimo_poller_unregister(&pr->poller);
	pr->cb(pr->arg, pr->rc, pr->rc == 0 ? none : NULL);
	json_decref(none);
	free(pr->name);
	free(pr);
}

static int probe_poll(void *arg)
{
	struct probe *pr = arg;
	struct mimo_nvme_ctrlr *ctrlr = NULL;
	struct nvme_bdev_ctrlr *nbc;
	int rc;

	if (pr->detach != NULL) {
		if (mimo_nvme_detach_poll(pr->detach) == -EAGAIN)
			return 1;
		pr->detach = NULL;
		finish(pr);
		return 1;
	}
	rc = mimo_nvme_connect_poll(pr->connect, &ctrlr);
	if (rc == -EAGAIN)
		return 1;
	pr->connect = NULL;
	if (rc != 0) {
		MIMO_ERR(COMP, "%s: cannot add path %s:%s: %s", pr->name, pr->trid.traddr,
			 pr->trid.trsvcid, strerror(-rc));
		pr->rc = rc;
		finish(pr);
		return 1;
	}
	nbc = find(pr->name);
	if (nbc == NULL || nbc->state == NBC_DELETING)
		pr->rc = -ENODEV;
	else
		pr->rc = bdev_nvme_same_namespaces(nbc, ctrlr);
	if (pr->rc == 0)
		pr->rc = add(nbc, &pr->trid);
	if (pr->rc == 0)
		MIMO_INFO(COMP, "%s: path %s:%s added (failover)", pr->name, pr->trid.traddr,
			  pr->trid.trsvcid);
	else if (pr->rc == -EINVAL)
		MIMO_ERR(COMP, "%s: path %s:%s leads to other namespaces: not added", pr->name,
			 pr->trid.traddr, pr->trid.trsvcid);
	/* The proving connection goes; the path is connected when failed over to. */
	if (mimo_nvme_detach_async(ctrlr, &pr->detach) != 0) {
		pr->detach = NULL;
		finish(pr);
	}
	return 1;
}

int bdev_nvme_add_path(const char *name, const struct mimo_nvme_trid *trid, const char *hostnqn,
		       bdev_nvme_attach_cb cb, void *arg, const char **why)
{
	struct nvme_bdev_ctrlr *nbc = find(name);
	struct probe *pr;
	int rc;

	*why = NULL;
	if (nbc == NULL)
		return -ENODEV;
	if (nbc->state == NBC_CONNECTING || nbc->state == NBC_DELETING) {
		*why = "the controller is being attached or detached";
		return -EBUSY;
	}
	for (uint32_t i = 0; i < nbc->num_paths; i++) {
		if (same_place(&nbc->paths[i], trid)) {
			*why = "already exists with the specified network path";
			return -EALREADY;
		}
	}
	if (strcmp(trid->subnqn, nbc->trid.subnqn) != 0) {
		*why = "already exists, but uses a different subnqn";
		return -EINVAL;
	}
	if (hostnqn != NULL && hostnqn[0] != '\0' && strcmp(hostnqn, nbc->ctrlr->hostnqn) != 0) {
		*why = "already exists, but uses a different hostnqn";
		return -EINVAL;
	}
	pr = calloc(1, sizeof(*pr));
	if (pr == NULL || (pr->name = strdup(name)) == NULL) {
		free(pr);
		return -ENOMEM;
	}
	pr->trid = *trid;
	pr->cb = cb;
	pr->arg = arg;
	/* The controller's own options: its host identity and keys. */
	rc = mimo_nvme_connect_async(trid, &nbc->opts, &pr->connect);
	if (rc == 0) {
		pr->poller = mimo_poller_register(probe_poll, pr, 0);
		if (pr->poller == NULL) {
			mimo_nvme_connect_abort(pr->connect);
			rc = -ENOMEM;
		}
	}
	if (rc != 0) {
		free(pr->name);
		free(pr);
	}
	return rc;
}
