/*
 * bdev_nvme: NVMe-oF/TCP controllers attached as block devices (one bdev per namespace,
 * "<name>n<nsid>"), managed with SPDK's bdev_nvme_* RPCs. For the daemon that hosts it.
 */
#ifndef MIMO_BDEV_NVME_H
#define MIMO_BDEV_NVME_H

#include <jansson.h>

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"): before the first
 * controller is attached. */
void mimo_register_bdev_nvme(void);

/*
 * Detach every controller (their bdevs are deleted first), on reactor 0, at shutdown; cb(arg)
 * runs on reactor 0 when all are gone, or after 10 s if some bdev stays claimed.
 */
void mimo_bdev_nvme_fini(void (*cb)(void *arg), void *arg);

/* For save_config's bdev subsystem, before the bdevs: the module's bdev_nvme_set_options when
 * not at its defaults (a new JSON array, maybe empty). The attached controllers are in
 * mimo_bdev_config_json, as their bdevs write them. */
json_t *mimo_bdev_nvme_config_json(void);

#endif
