/*
 * mimo/fuse.h - export bdevs as files through FUSE, kept coherent with FUSE notify.
 *
 * Under the mountpoint: bdevs/<name> (one regular file per bdev, size = bdev size) and
 * events (the daemon's events as JSON lines; poll() wakes when one arrives). Files open with
 * keep_cache; when a bdev changes by another path the export pushes the new bytes into the
 * page cache (STORE) or drops the range (INVAL), from a dedicated thread, and that write
 * completes to its writer only once the kernel has applied it (docs/fuse.md, Coherence).
 *
 * Every function here blocks (mounting, unmounting, waiting for bdev I/O on a reactor): call
 * them from a thread that is not a reactor.
 *
 * Errors: 0 or a negative errno, with a sentence in err where the call has one. JSON: a
 * returned json_t * is a new reference the caller releases with json_decref.
 */
#ifndef MIMO_FUSE_H
#define MIMO_FUSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Register the fuse_* RPC methods and the fuse_export_* event types (mimo/jsonrpc.h,
 * "Registration"). */
void mimo_register_fuse(void);

enum mimo_fuse_coherence {
	MIMO_FUSE_COHERENCE_STORE, /* push the new bytes (NOTIFY_STORE) */
	MIMO_FUSE_COHERENCE_INVAL, /* drop the cached range (NOTIFY_INVAL_INODE) */
	MIMO_FUSE_COHERENCE_NONE,  /* nothing: readers may see stale data */
};

/* "store", "inval", "none"; parse returns -EINVAL for anything else. */
const char *mimo_fuse_coherence_name(enum mimo_fuse_coherence c);
int mimo_fuse_coherence_parse(const char *s, enum mimo_fuse_coherence *c);

struct mimo_fuse_export_opts {
	const char *mountpoint;	  /* an existing directory: it is not created */
	const char *const *bdevs; /* names to show; NULL = every bdev, now and later */
	size_t num_bdevs;
	bool writable;
	enum mimo_fuse_coherence coherence;
	/* Mount with -o allow_other: other users may reach the mount at all. The files stay
	 * 0600 (0400 read-only), directories 0700, owned by the daemon's uid/gid, and the kernel
	 * checks those modes (default_permissions), so only root gains from it. */
	bool allow_other;
};

/*
 * Mount an export. A stale mount left on mountpoint by a crashed run is unmounted first.
 * Returns 0, or -EEXIST (already exported here), -EBUSY (another live mount there),
 * -ENOENT/-ENOTDIR (mountpoint), -EACCES (cannot open /dev/fuse), or another errno; err
 * gets a sentence for the user.
 */
int mimo_fuse_export_create(const struct mimo_fuse_export_opts *opts, char *err, size_t err_len);
/*
 * Whether mountpoint can be mounted on, without mounting, creating, or touching anything
 * mounted there (a mount found there is left to mimo_fuse_export_create to judge): 0, or
 * -ENOENT (it does not exist: the caller creates mountpoints, as with mount(8)), -ENOTDIR,
 * -EACCES... with a sentence naming it in err.
 */
int mimo_fuse_mountpoint_check(const char *mountpoint, char *err, size_t err_len);
/* Unmount (lazily: open files then fail with ENOTCONN) and free. 0 or -ENOENT. */
int mimo_fuse_export_delete(const char *mountpoint);
void mimo_fuse_export_delete_all(void);
/* [{mountpoint, bdevs, writable, coherence, notifications...}] */
json_t *mimo_fuse_exports_json(void);
/* save_config's entries: [{method: fuse_export_create, params}] */
json_t *mimo_fuse_config_json(void);

/*
 * Read back the kernel's cached pages of bdevs/<bdev> (NOTIFY_RETRIEVE) and compare them
 * with the bdev. Returns 0 with the counts of 4 KiB pages, or -ENOENT (no such export or
 * file), -ETIMEDOUT (the kernel did not answer).
 */
int mimo_fuse_export_verify_cache(const char *mountpoint, const char *bdev, uint64_t *checked,
				  uint64_t *mismatched);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_FUSE_H */
