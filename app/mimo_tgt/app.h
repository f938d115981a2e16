/* mimo_tgt's shared state: options, subsystems, start-up and shutdown. */
#ifndef MIMO_TGT_APP_H
#define MIMO_TGT_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct app_opts {
	uint64_t core_mask;
	const char *rpc_socket;
	mode_t rpc_socket_mode;
	const char *json_config;
	const char *pid_file;
	bool wait_for_rpc;
	bool poll_mode;
};

extern struct app_opts g_app_opts;

/* Subsystems as SPDK's framework_get_subsystems and framework_get_config show them. */
struct app_subsystem {
	const char *name;
	const char *depends_on[4];
	json_t *(*config)(void); /* the {method, params} array that re-creates its state */
	int (*init)(void);	 /* on reactor 0 at start-up (may be NULL) */
	void (*fini)(void (*done)(void *arg), void *arg); /* at exit, last subsystem first */
};
const struct app_subsystem *app_subsystems(size_t *count);

/* The nvmf subsystem (app_nvmf.c). */
int app_nvmf_init(void);
void app_nvmf_fini(void (*done)(void *arg), void *arg);
json_t *app_nvmf_config(void);

/* The sock subsystem (app_sock.c): sock_impl_set_options calls that re-create the options. */
json_t *app_sock_config(void);

/* The fuse subsystem (app_fuse.c). fini unmounts every export; mount is --fuse-mount DIR
 * (from the main thread, never a reactor). */
void app_fuse_fini(void (*done)(void *arg), void *arg);
json_t *app_fuse_config(void);
int app_fuse_mount(const char *dir);
/* Before start-up: 0, or a message on stderr and -errno (no such directory...). */
int app_fuse_check(const char *dir);

/* The vhost_blk subsystem (app_vhost.c): vhost-user-blk controllers, closed at exit before
 * the bdevs go. */
void app_vhost_fini(void (*done)(void *arg), void *arg);
json_t *app_vhost_config(void);
json_t *app_vhost_scsi_config(void); /* the vhost_scsi subsystem */

/* The Prometheus endpoint (app_metrics.c), --metrics ADDR:PORT: started once the reactors
 * run, stopped before they stop. start: 0 or a negative errno (logged). */
int app_metrics_start(const char *addr);
void app_metrics_stop(void);

/* On reactor 0. Replay one pass of a saved configuration file, then call done(arg, rc):
 * phase MIMO_RPC_STARTUP runs the methods allowed before framework_start_init (in the startup
 * state), MIMO_RPC_RUNTIME the others (config_replay.c). */
void app_replay_config(const char *path, uint32_t phase, void (*done)(void *arg, int rc),
		       void *arg);

/* On reactor 0: leave the startup state (framework_start_init, or at start without
 * --wait-for-rpc): replay -c, answer framework_wait_init waiters, then done(arg, rc). */
void app_start_init(void (*done)(void *arg, int rc), void *arg);
bool app_init_done(void);
/* Hold a framework_wait_init request until init is done. */
struct mimo_jsonrpc_request;
void app_wait_init(struct mimo_jsonrpc_request *req);
/* app_rpc.c: register the framework's methods (spdk_get_version, framework_*...). */
void app_rpc_register(void);
void app_spdk_opts_register(void); /* app_spdk_opts.c: iobuf, accel, scheduler */
/* The scheduler subsystem: framework_set_scheduler with the period set, or nothing. */
json_t *app_scheduler_config(void);
void app_sock_register(void);	    /* app_sock.c: the sock_* methods */
void app_thread_rpc_register(void); /* app_thread_rpc.c: framework_get_reactors, thread_* */
void app_log_rpc_register(void);    /* app_log_rpc.c: log_* */
void app_cpu_lock_register(void);   /* cpu_lock.c: framework_*_cpumask_locks */

/* cpu_lock.c: SPDK's per-core lock files. claim: every core of mask or none (0, or -EBUSY
 * and the others with *failed_core set); release: every core claimed. */
int app_cpu_locks_claim(uint64_t core_mask, uint32_t *failed_core);
int app_cpu_locks_release(uint32_t *failed_core);

/* proc_stat.c: a core's usr, sys and irq time (clock ticks) since init, from /proc/stat.
 * init before the reactors start; get returns 0 or -1 (not known). */
void app_proc_stat_init(uint64_t core_mask);
int app_proc_stat_get(uint32_t core, uint64_t *usr, uint64_t *sys, uint64_t *irq);
/* The NUMA node of a core, or -1 when not known. */
int app_core_numa_id(uint32_t core);

/* Ask the process to stop, as a signal would (from any thread). */
void app_request_stop(void);

#endif
