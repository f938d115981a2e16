/*
 * mimo/vhost.h - block devices for virtual machines over vhost-user (QEMU's
 * vhost-user-blk-pci and vhost-user-scsi-pci): controllers, each a Unix socket in the socket
 * directory, served on the reactors; the RPCs are SPDK's (vhost_create_blk_controller,
 * vhost_create_scsi_controller, vhost_scsi_controller_add_target,
 * vhost_scsi_controller_remove_target, vhost_get_controllers, vhost_delete_controller,
 * vhost_controller_set_coalescing). docs/vhost.md.
 *
 * Errors: 0 or a negative errno. JSON: mimo_vhost_blk_config_json returns a new reference the
 * caller releases with json_decref.
 */
#ifndef MIMO_VHOST_H
#define MIMO_VHOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Register the vhost_* methods and event types (mimo/jsonrpc.h, "Registration"). */
void mimo_register_vhost(void);

/* The directory controllers' sockets go in (SPDK's -S): it must exist. Before the first
 * controller. Returns 0, -ENOENT, -ENOTDIR... The default is the working directory at start. */
int mimo_vhost_set_socket_dir(const char *dir);
const char *mimo_vhost_socket_dir(void);

/*
 * On a reactor: a vhost-user-blk controller named name (its socket: socket_dir/name) over
 * bdev, served on the reactors of cpumask (NULL: all). packed_ring: offer packed virtqueues
 * (VIRTIO_F_RING_PACKED) besides split ones; packed_recovery: track them in the inflight
 * region, so that they survive this process (SPDK's packed_ring_recovery; mimo's default is
 * true). Returns 0, or a negative errno with a message in err.
 */
int mimo_vhost_blk_create(const char *name, const char *bdev, const char *cpumask, bool readonly,
			  bool packed_ring, bool packed_recovery, char *err, size_t err_len);
/*
 * On a reactor: a vhost-user-scsi controller (QEMU's vhost-user-scsi-pci) with no targets yet.
 * Targets 0..7 are added and removed on the reactor that created the controller; each is a
 * SCSI device (mimo/scsi.h) whose LUN 0 is a bdev. Adding returns the target's number (num
 * -1: the lowest free) or a negative errno with a message in err; a guest that negotiated
 * hot-plug is told (a transport reset event). Removing closes the target to new requests and
 * tells the guest at once; cb(arg) runs on that reactor once its requests have completed and
 * its device is gone.
 */
int mimo_vhost_scsi_create(const char *name, const char *cpumask, bool delay, char *err,
			   size_t err_len);
/* Start listening on a controller created with delay (SPDK's vhost_start_scsi_controller):
 * 0 (also when it listens already), -ENODEV, -EINVAL (not a vhost-user-scsi controller). */
int mimo_vhost_scsi_start(const char *name, char *err, size_t err_len);
int mimo_vhost_scsi_add_target(const char *ctrlr, int32_t num, const char *bdev, char *err,
			       size_t err_len);
int mimo_vhost_scsi_remove_target(const char *ctrlr, uint32_t num, void (*cb)(void *arg), void *arg,
				  char *err, size_t err_len);

/* On the reactor that created it. -ENODEV if there is no such controller. */
int mimo_vhost_delete(const char *name);

/* The "vhost_blk" subsystem's saved configuration: [{method, params}...]. */
json_t *mimo_vhost_blk_config_json(void);
/* The "vhost_scsi" subsystem's: vhost_create_scsi_controller and
 * vhost_scsi_controller_add_target calls. */
json_t *mimo_vhost_scsi_config_json(void);
/* Close every connection and controller (at exit), on the reactor that created them; done(arg)
 * runs there once every request has completed and every socket is gone. */
void mimo_vhost_fini(void (*done)(void *arg), void *arg);

/* What exists now, readable from any thread (the metrics endpoint): controllers by device
 * type (deleted ones whose front-ends are still connected no longer count), and front-end
 * connections (sessions) of every controller. */
struct mimo_vhost_stats {
	uint64_t blk_controllers, scsi_controllers;
	uint64_t sessions;
};
void mimo_vhost_get_stats(struct mimo_vhost_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_VHOST_H */
