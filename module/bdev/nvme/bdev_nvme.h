/*
 * bdev_nvme: NVMe-oF/TCP controllers attached as block devices (one bdev per namespace,
 * "<name>n<nsid>"), managed with SPDK's bdev_nvme_* RPCs. For the daemon that hosts it.
 */
#ifndef MIMO_BDEV_NVME_H
#define MIMO_BDEV_NVME_H

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"): before the first
 * controller is attached. */
void mimo_register_bdev_nvme(void);

/*
 * Detach every controller (their bdevs are deleted first), on reactor 0, at shutdown; cb(arg)
 * runs on reactor 0 when all are gone, or after 10 s if some bdev stays claimed.
 */
void mimo_bdev_nvme_fini(void (*cb)(void *arg), void *arg);

#endif
