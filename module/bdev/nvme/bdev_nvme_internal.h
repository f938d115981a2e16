/* Between the bdev_nvme module (bdev_nvme.c) and its RPCs (bdev_nvme_rpc.c). */
#ifndef MIMO_BDEV_NVME_INTERNAL_H
#define MIMO_BDEV_NVME_INTERNAL_H

#include <jansson.h>

#include "mimo/nvme.h"

/* names: a JSON array of the bdevs created (the callee keeps ownership), NULL on failure. */
typedef void (*bdev_nvme_attach_cb)(void *arg, int rc, json_t *names);

/*
 * What a controller does when its connection is lost (SPDK's names and meaning):
 * ctrlr_loss_timeout_sec: -1 reconnect forever, 0 never (the controller stays failed and its
 * I/O fails at once), n: delete the controller (and its bdevs) n seconds after the loss;
 * reconnect_delay_sec between attempts; fast_io_fail_timeout_sec: I/O queued while
 * reconnecting fails with -EIO from this many seconds after the loss on (0: queued until the
 * controller is back or deleted).
 */
struct bdev_nvme_reconnect_opts {
	int32_t ctrlr_loss_timeout_sec;
	uint32_t reconnect_delay_sec;
	uint32_t fast_io_fail_timeout_sec;
};

/* SPDK's rules for the three together; NULL when they hold, else why not. */
const char *bdev_nvme_reconnect_opts_check(const struct bdev_nvme_reconnect_opts *o);

/*
 * Connect to trid as controller name, in the background on the calling reactor (reactor 0),
 * then create a bdev per active namespace. reconnect: NULL for the module's defaults (checked
 * by the caller). dhchap_key, dhchap_ctrlr_key: keyring names of the
 * DH-HMAC-CHAP secrets, psk of a TLS PSK (NULL: none), read now into the options. Returns 0
 * (cb follows), -EALREADY (the name is taken), -ENOKEY (no such key), -EKEYREJECTED (a key of
 * the other kind), -EINVAL, -ENOMEM, or the connection's immediate error.
 */
int bdev_nvme_attach(const char *name, const struct mimo_nvme_trid *trid,
		     const struct mimo_nvme_ctrlr_opts *opts,
		     const struct bdev_nvme_reconnect_opts *reconnect, const char *dhchap_key,
		     const char *dhchap_ctrlr_key, const char *psk, bdev_nvme_attach_cb cb,
		     void *arg);
/* Delete the controller's bdevs, then shut it down; cb(arg, 0) when gone. Returns 0, -ENODEV,
 * -EBUSY (a bdev of it is claimed, or it is already being detached). */
int bdev_nvme_detach(const char *name, void (*cb)(void *arg, int rc), void *arg);
/*
 * Reset the controller (drop the connection, connect again; I/O waits meanwhile), disable it
 * (disconnect; I/O fails until enabled) or enable it again. cb(arg, rc) follows a 0 return:
 * for reset and enable, once the first attempt to connect succeeded (0) or failed (-EIO; the
 * controller then goes on as its reconnect options say). Returns -ENODEV (no such
 * controller), -ENXIO (being deleted), -EBUSY (a reset under way), -EALREADY (nothing to do:
 * disabled already, enabled already, a reset of a disabled one), as SPDK.
 */
int bdev_nvme_reset(const char *name, void (*cb)(void *arg, int rc), void *arg);
int bdev_nvme_disable(const char *name, void (*cb)(void *arg, int rc), void *arg);
int bdev_nvme_enable(const char *name, void (*cb)(void *arg, int rc), void *arg);
/* New DH-HMAC-CHAP keys (keyring names; NULL: none) for controller name, proved at once by
 * reconnecting (as bdev_nvme_reset; -EIO when that fails). Also -ENOKEY, -EKEYREJECTED,
 * -EINVAL (a controller key without a host key), and bdev_nvme_reset's. */
int bdev_nvme_set_keys(const char *name, const char *dhchap_key, const char *dhchap_ctrlr_key,
		       void (*cb)(void *arg, int rc), void *arg);
/* An answer made of JSON: result is the callee's to keep (NULL when rc != 0). */
typedef void (*bdev_nvme_json_cb)(void *arg, int rc, json_t *result);
/* bdev_nvme_info.c. The health log page of controller name, SPDK's JSON; returns 0 (cb
 * follows), -ENODEV (no such controller), -ENXIO (not connected), -ENOMEM. */
int bdev_nvme_health_info(const char *name, bdev_nvme_json_cb cb, void *arg);
/* {"poll_groups": [...]} of bdev_nvme_get_transport_statistics, of bdev_nvme_get_io_paths
 * (name: one bdev's paths, NULL: all), after a walk over the reactors. 0 or -ENOMEM. */
int bdev_nvme_transport_stats(bdev_nvme_json_cb cb, void *arg);
int bdev_nvme_io_paths(const char *name, bdev_nvme_json_cb cb, void *arg);
/* bdev_nvme_rpc.c's methods alone (mimo_register_bdev_nvme registers them). */
void bdev_nvme_rpc_register(void);
void bdev_nvme_opts_rpc_register(void);	    /* bdev_nvme_opts_rpc.c */
void bdev_nvme_ctrlr_rpc_register(void);    /* bdev_nvme_ctrlr_rpc.c */
void bdev_nvme_passthru_rpc_register(void); /* bdev_nvme_passthru.c */
void bdev_nvme_refused_rpc_register(void);  /* bdev_nvme_refused_rpc.c */
/* bdev_nvme_get_controllers' result; NULL when name is given and unknown. */
json_t *bdev_nvme_controllers_json(const char *name);
/*
 * Failover paths (bdev_nvme_failover.c): add trid as another path of controller name, after
 * proving it leads to the same subsystem and namespaces; cb(arg, 0, []) once added. hostnqn:
 * the attach's, NULL if none. Returns 0 (cb follows), -ENODEV, or SPDK's refusals with *why
 * (the rest of "A controller named <name> ..."): -EALREADY (that path exists), -EINVAL
 * (another subsystem or host), -EBUSY.
 */
int bdev_nvme_add_path(const char *name, const struct mimo_nvme_trid *trid, const char *hostnqn,
		       bdev_nvme_attach_cb cb, void *arg, const char **why);
/* Multipath mode (attach -x multipath with an attached name): a further controller of the
 * name, its namespaces further paths of the name's bdevs; cb(arg, 0, the bdevs' names). 0
 * (cb follows; -EINVAL there when its namespaces are others), -ENODEV, or SPDK's refusals
 * with *why (the rest of "A controller named <name> ..."): -EALREADY, -EINVAL, -EBUSY,
 * -ENOSPC (4 controllers per name at most). */
int bdev_nvme_attach_multipath(const char *name, const struct mimo_nvme_trid *trid,
			       const struct mimo_nvme_ctrlr_opts *opts,
			       const struct bdev_nvme_reconnect_opts *reconnect,
			       const char *dhchap_key, const char *dhchap_ctrlr_key,
			       const char *psk, bdev_nvme_attach_cb cb, void *arg,
			       const char **why);
/* Detach the further controller (multipath) of name whose transport ID match says; -ENOENT
 * when none does, else as bdev_nvme_detach. */
int bdev_nvme_detach_secondary(const char *name,
			       bool (*match)(const struct mimo_nvme_trid *t, const void *arg),
			       const void *match_arg, void (*cb)(void *arg, int rc), void *arg);
/* Multipath: bdev_name's policy (active_passive, or active_active round robin over the usable
 * controllers, min_io I/Os each) and, for active_passive, its preferred controller by cntlid.
 * 0, -ENODEV (no such bdev, or no controller of that cntlid), -EINVAL (min_io 0). */
int bdev_nvme_set_multipath_policy(const char *bdev_name, bool active_active, uint32_t min_io);
int bdev_nvme_set_preferred_path(const char *bdev_name, uint16_t cntlid);
/* The paths of controller name (*num of them; NULL, 0 when unknown): valid until the next
 * change, on reactor 0. */
const struct mimo_nvme_trid *bdev_nvme_get_paths(const char *name, uint32_t *num);
/* Remove path idx of several; the connected one fails over to the next. 0, -ENODEV, -EINVAL
 * (the last path), -EBUSY (a reconnect under way). */
int bdev_nvme_remove_path(const char *name, uint32_t idx);
/* bdev_nvme_inject.c: add (or replace, per opcode) / remove an error injection into the I/O
 * commands of controller name. 0, -ENODEV, -ENOMEM (16 at most). */
int bdev_nvme_inject_add(const char *name, uint8_t opc, bool do_not_submit, uint64_t timeout_us,
			 uint32_t err_count, uint8_t sct, uint8_t sc);
int bdev_nvme_inject_remove(const char *name, uint8_t opc);
/*
 * Discovery (bdev_nvme_discovery.c): connect to the discovery service at trid as name and
 * attach what its log lists ("<name><i>"), following its changes. cb(arg, rc) once the first
 * log is read (and, with wait_for_attach, its subsystems attached). 0 (cb follows), -EEXIST
 * (the name is taken), -EALREADY (that service is discovered already), or the connection's
 * immediate error.
 */
int bdev_nvme_start_discovery(const char *name, const struct mimo_nvme_trid *trid,
			      const char *hostnqn, bool wait_for_attach,
			      const struct bdev_nvme_reconnect_opts *reconnect,
			      void (*cb)(void *arg, int rc), void *arg);
/* Detach what it attached and the discovery controller; cb(arg) when gone. 0, -ENOENT,
 * -EBUSY (reading its log or attaching: a moment later). */
int bdev_nvme_stop_discovery(const char *name, void (*cb)(void *arg), void *arg);
json_t *bdev_nvme_discovery_info_json(void);
/* Append each discovery's bdev_nvme_start_discovery to config. */
void bdev_nvme_discovery_config_json(json_t *config);
/* Shutdown: let go of every discovery controller; idle once all are gone. */
void bdev_nvme_discovery_fini(void);
bool bdev_nvme_discovery_idle(void);
/* The controller name was attached by a discovery: save_config leaves it to that. */
void bdev_nvme_mark_discovered(const char *name);
/* bdev_nvme_get_path_iostat's answer for a bdev of bdev_nvme into *out; -ENODEV. */
int bdev_nvme_path_iostat(const char *bdev_name, json_t **out);
/* The controller ID of controller name (connected or not), or -ENODEV. */
int bdev_nvme_get_cntlid(const char *name);
/* The trid and options a controller was attached with, for checks. NULL when unknown. */
const struct mimo_nvme_trid *bdev_nvme_get_trid(const char *name);

/*
 * The module's options (bdev_nvme_set_options): what SPDK's parameters of the same names set
 * that mimo's initiator does. They apply to controllers attached afterwards, so they may only
 * change while none is attached (as in SPDK).
 */
struct bdev_nvme_opts {
	uint32_t keep_alive_timeout_ms; /* default 10000 */
	/* A command the controller answers with a status that allows a retry (DNR clear, not
	 * Aborted by Request) fails its I/O only after this many retries of the whole I/O;
	 * -1: no limit. Default 0: mimo's behaviour before the option (SPDK's default is 3). */
	int32_t bdev_retry_count;
	uint64_t adminq_poll_period_us; /* admin queue poller (default 10000) */
	uint64_t ioq_poll_period_us;	/* I/O queue pollers (default 0: every turn) */
	/* false (SPDK's default): a Flush completes at once, without reaching the controller.
	 * Default true: mimo sends it. */
	bool enable_flush;
	uint32_t dhchap_digests; /* offered, 1 << HashID (default all) */
	uint32_t dhchap_dhgroups;
	bool io_path_stat; /* per-path I/O statistics (bdev_nvme_get_path_iostat) */
	/* The defaults of bdev_nvme_attach_controller's (all 0: no reconnect, as SPDK). */
	struct bdev_nvme_reconnect_opts reconnect;
};

void bdev_nvme_get_opts(struct bdev_nvme_opts *opts);
/* 0, or -EPERM while a controller is attached, -EINVAL for a bad value. */
int bdev_nvme_set_opts(const struct bdev_nvme_opts *opts);
/* Options for a new controller: mimo_nvme_ctrlr_opts_init, then the module's. */
void bdev_nvme_ctrlr_opts_init(struct mimo_nvme_ctrlr_opts *opts);
/* The bdev_nvme_set_options call that re-creates the options, or NULL at the defaults. */
json_t *bdev_nvme_opts_config_json(void);

#endif
