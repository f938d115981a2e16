/* Between the bdev_nvme module (bdev_nvme.c) and its RPCs (bdev_nvme_rpc.c). */
#ifndef MIMO_BDEV_NVME_INTERNAL_H
#define MIMO_BDEV_NVME_INTERNAL_H

#include <jansson.h>

#include "mimo/nvme.h"

/* names: a JSON array of the bdevs created (the callee keeps ownership), NULL on failure. */
typedef void (*bdev_nvme_attach_cb)(void *arg, int rc, json_t *names);

/*
 * Connect to trid as controller name, in the background on the calling reactor (reactor 0),
 * then create a bdev per active namespace. dhchap_key, dhchap_ctrlr_key: keyring names of the
 * DH-HMAC-CHAP secrets, psk of a TLS PSK (NULL: none), read now into the options. Returns 0
 * (cb follows), -EALREADY (the name is taken), -ENOKEY (no such key), -EKEYREJECTED (a key of
 * the other kind), -EINVAL, -ENOMEM, or the connection's immediate error.
 */
int bdev_nvme_attach(const char *name, const struct mimo_nvme_trid *trid,
		     const struct mimo_nvme_ctrlr_opts *opts, const char *dhchap_key,
		     const char *dhchap_ctrlr_key, const char *psk, bdev_nvme_attach_cb cb,
		     void *arg);
/* Delete the controller's bdevs, then shut it down; cb(arg, 0) when gone. Returns 0, -ENODEV,
 * -EBUSY (a bdev of it is claimed, or it is already being detached). */
int bdev_nvme_detach(const char *name, void (*cb)(void *arg, int rc), void *arg);
/* bdev_nvme_rpc.c's methods alone (mimo_register_bdev_nvme registers them). */
void bdev_nvme_rpc_register(void);
/* bdev_nvme_get_controllers' result; NULL when name is given and unknown. */
json_t *bdev_nvme_controllers_json(const char *name);
/* The trid and options a controller was attached with, for checks. NULL when unknown. */
const struct mimo_nvme_trid *bdev_nvme_get_trid(const char *name);

#endif
