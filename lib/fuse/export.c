/*
 * Exports: mount, serve, unmount. Each export is a libfuse session served on a reactor (as
 * qemu-storage-daemon serves it from its event loop): the /dev/fuse fd is non-blocking and
 * watched there; when it is readable the reactor receives and processes a bounded batch of
 * requests per turn, and handlers answer at once or from their I/O's completion - no thread
 * handoff per request. Mounting blocks, so it stays on the caller's thread. Plus a notifier
 * thread.
 *
 * Unmounting: abort the connection through fusectl first, so a file some process still holds
 * open cannot keep the loop - and so the daemon - alive: that process gets ENOTCONN, and the
 * loop sees ENODEV and ends. Then umount2(MNT_DETACH), if /proc/self/mountinfo still shows our
 * mount on the path. Threads are joined with a bound; an export one of them may still use is
 * leaked, never freed.
 *
 * A stale mimo mount (type fuse.mimo, source mimo_tgt, found in mountinfo before anything
 * touches the path; its daemon died, every access fails with ENOTCONN) is detached before
 * mounting on the same directory. Other mounts are never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuse_internal.h"
#include "compiler.h"
#include "log.h"
#include "mimo/events.h"

#define FUSECTL "/sys/fs/fuse/connections"
#define FSNAME	"mimo_tgt"
#define FSTYPE	"fuse.mimo"

struct fuse_export_list g_fuse_exports = TAILQ_HEAD_INITIALIZER(g_fuse_exports);
pthread_rwlock_t g_fuse_exports_lock = PTHREAD_RWLOCK_INITIALIZER;
/* Serialises create and delete (they mount, unmount and register the write hook). */
static pthread_mutex_t g_admin_lock = PTHREAD_MUTEX_INITIALIZER;

MIMO_EXPORT void mimo_register_fuse(void)
{
	mimo_event_register_type("fuse_export_created");
	mimo_event_register_type("fuse_export_deleted");
	fuse_rpc_register();
}

MIMO_EXPORT const char *mimo_fuse_coherence_name(enum mimo_fuse_coherence c)
{
	switch (c) {
	case MIMO_FUSE_COHERENCE_STORE:
		return "store";
	case MIMO_FUSE_COHERENCE_INVAL:
		return "inval";
	default:
		return "none";
	}
}

MIMO_EXPORT int mimo_fuse_coherence_parse(const char *s, enum mimo_fuse_coherence *c)
{
	if (strcmp(s, "store") == 0)
		*c = MIMO_FUSE_COHERENCE_STORE;
	else if (strcmp(s, "inval") == 0)
		*c = MIMO_FUSE_COHERENCE_INVAL;
	else if (strcmp(s, "none") == 0)
		*c = MIMO_FUSE_COHERENCE_NONE;
	else
		return -EINVAL;
	return 0;
}

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* --- mounts ------------------------------------------------------------------------------ */

/* mountinfo escapes space, tab, newline and backslash as \ooo: undo it in place. */
static void unescape_octal(char *s)
{
	char *d = s;

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

struct mount_info {
	char fstype[64];
	char source[256];
	unsigned long dev; /* the kernel's MKDEV(maj, min): fusectl's name for a FUSE mount */
};

/* The last (topmost) mount on path in /proc/self/mountinfo. Reads no file under path: a hung
 * FUSE mount there cannot block it, so it comes before any stat() of the path. */
static bool find_mount(const char *path, struct mount_info *mi)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (f == NULL)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok, *fields[5] = { 0 };
		char *type = NULL, *source = NULL;
		unsigned maj, min;
		int i = 0;
		bool after_sep = false;

		line[strcspn(line, "\n")] = '\0';
		for (tok = strtok_r(line, " ", &save); tok != NULL;
		     tok = strtok_r(NULL, " ", &save)) {
			if (i < 5)
				fields[i++] = tok;
			else if (!after_sep && strcmp(tok, "-") == 0)
				after_sep = true;
			else if (after_sep && type == NULL)
				type = tok;
			else if (after_sep && source == NULL)
				source = tok;
		}
		if (fields[4] == NULL || type == NULL || source == NULL ||
		    sscanf(fields[2], "%u:%u", &maj, &min) != 2)
			continue;
		unescape_octal(fields[4]);
		if (strcmp(fields[4], path) != 0)
			continue;
		unescape_octal(source);
		found = true;
		snprintf(mi->fstype, sizeof(mi->fstype), "%s", type);
		snprintf(mi->source, sizeof(mi->source), "%s", source);
		mi->dev = ((unsigned long)maj << 20) | min;
	}
	free(line);
	fclose(f);
	return found;
}

/* A mount this program makes: type fuse.mimo, source mimo_tgt. */
static bool is_mimo_mount(const struct mount_info *mi)
{
	return strcmp(mi->fstype, FSTYPE) == 0 && strcmp(mi->source, FSNAME) == 0;
}

static bool abort_connection(unsigned long dev)
{
	char path[128];
	bool mounted = false, ok = false;
	int fd;

	snprintf(path, sizeof(path), FUSECTL "/%lu/abort", dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* fusectl is not mounted on many machines; it is ours to mount as root. */
		mounted = mount("fusectl", FUSECTL, "fusectl", 0, NULL) == 0;
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		int e = errno;

		if (mounted)
			umount2(FUSECTL, MNT_DETACH);
		if (e != ENOENT) /* ENOENT: the connection is already gone */
			MIMO_WARN(COMP, "cannot abort FUSE connection %lu: %s", dev, strerror(e));
		return e == ENOENT;
	}
	ok = write(fd, "1", 1) == 1;
	if (!ok)
		MIMO_WARN(COMP, "abort FUSE connection %lu: %s", dev, strerror(errno));
	close(fd);
	if (mounted) /* leave the machine as we found it */
		umount2(FUSECTL, MNT_DETACH);
	return ok;
}

/* The absolute path of mountpoint without touching the mountpoint itself (only its parent):
 * stat() or realpath() of a hung FUSE mount blocks. 0 or -errno. */
static int lexical_path(const char *mountpoint, char *out)
{
	char buf[PATH_MAX], parent[PATH_MAX];
	char *slash, *base;
	size_t len = strlen(mountpoint);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, mountpoint, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	slash = strrchr(buf, '/');
	base = slash != NULL ? slash + 1 : buf;
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(buf, "/") == 0)
		return realpath(mountpoint, out) != NULL ? 0 : -errno;
	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == buf)
		snprintf(parent, sizeof(parent), "/");
	else {
		*slash = '\0';
		snprintf(parent, sizeof(parent), "%s", buf);
	}
	if (realpath(parent, out) == NULL)
		return -errno;
	if (strlen(out) + 1 + strlen(base) + 1 > PATH_MAX)
		return -ENAMETOOLONG;
	if (strcmp(out, "/") != 0)
		strcat(out, "/");
	strcat(out, base);
	return 0;
}

/* Why mountpoint cannot be used, as a sentence that names it: the errno's meaning alone
 * ("No such file or directory") does not say which path, nor what to do. */
static int bad_mountpoint(char *err, size_t err_len, int rc, const char *mountpoint)
{
	switch (rc) {
	case -ENOENT:
		return fail(
			err, err_len, rc,
			"mountpoint %s does not exist: create the directory first (mkdir -p %s); "
			"mimo_tgt does not create mountpoints",
			mountpoint, mountpoint);
	case -ENOTDIR:
		return fail(err, err_len, rc,
			    "mountpoint %s is not a directory (or a component of its path is not)",
			    mountpoint);
	case -EACCES:
		return fail(err, err_len, rc, "mountpoint %s: permission denied (to this daemon)",
			    mountpoint);
	default:
		return fail(err, err_len, rc, "mountpoint %s: %s", mountpoint, strerror(-rc));
	}
}

/*
 * Resolve mountpoint without touching anything mounted on it: 0 with real filled (and *mi,
 * *mounted: the topmost mount there, if any), or -errno with err filled. A path with nothing
 * mounted on it must be an existing directory (resolved through symlinks).
 */
static int resolve_mountpoint(const char *mountpoint, char *real, struct mount_info *mi,
			      bool *mounted, char *err, size_t err_len)
{
	struct stat st;
	int rc;

	if ((rc = lexical_path(mountpoint, real)) != 0)
		return bad_mountpoint(err, err_len, rc, mountpoint);
	if ((*mounted = find_mount(real, mi)))
		return 0;
	/* Nothing mounted on it: resolving it (symlinks too) cannot block. */
	if (realpath(mountpoint, real) == NULL)
		return bad_mountpoint(err, err_len, -errno, mountpoint);
	if (stat(real, &st) != 0)
		return bad_mountpoint(err, err_len, -errno, mountpoint);
	if (!S_ISDIR(st.st_mode))
		return bad_mountpoint(err, err_len, -ENOTDIR, mountpoint);
	return 0;
}

MIMO_EXPORT int mimo_fuse_mountpoint_check(const char *mountpoint, char *err, size_t err_len)
{
	char real[PATH_MAX];
	struct mount_info mi;
	bool mounted;

	if (mountpoint == NULL || mountpoint[0] == '\0')
		return fail(err, err_len, -EINVAL, "mountpoint is required");
	/* Something mounted there (a stale mount of ours...) is for the create to judge. */
	return resolve_mountpoint(mountpoint, real, &mi, &mounted, err, err_len);
}

/*
 * Resolve mountpoint; detach a stale mimo mount found there. 0 with real filled, or -errno.
 * /proc/self/mountinfo is read first: only a mount of our type and source (fuse.mimo,
 * mimo_tgt) is ever probed with stat() or detached - never somebody else's.
 */
static int prepare_mountpoint(const char *mountpoint, char *real, char *err, size_t err_len)
{
	struct mount_info mi;
	struct stat st;
	bool mounted;
	int rc;

	if ((rc = resolve_mountpoint(mountpoint, real, &mi, &mounted, err, err_len)) != 0)
		return rc;
	if (!mounted)
		return 0;
	if (is_mimo_mount(&mi) && stat(real, &st) != 0 && errno == ENOTCONN) {
		/* A mimo mount whose daemon is gone: a crashed run left it. */
		MIMO_WARN(COMP, "%s: stale FUSE mount from an earlier run; unmounting it", real);
		abort_connection(mi.dev);
		if (umount2(real, MNT_DETACH) != 0)
			return fail(err, err_len, -errno, "cannot unmount stale mount on %s: %s",
				    real, strerror(errno));
	}
	if (stat(real, &st) != 0)
		return fail(err, err_len, -errno, "mountpoint %s: %s", real, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(err, err_len, -ENOTDIR, "mountpoint %s is not a directory", real);
	return 0;
}

/* A live mimo mount there that is not ours: another daemon serves it. */
static int check_not_mounted(const char *real, char *err, size_t err_len)
{
	struct mount_info mi;

	if (find_mount(real, &mi) && is_mimo_mount(&mi))
		return fail(err, err_len, -EBUSY,
			    "%s is already a live mimo FUSE mount (another mimo_tgt?)", real);
	return 0;
}

/* --- serving on the reactor --------------------------------------------------------------- */

/* Requests received and processed per turn of the reactor: the rest wait for the next turn,
 * so other work on the reactor (NVMe-oF, other exports) is not starved. */
#define RX_BATCH 32

static void run_on_reactor(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	while (mimo_reactor_send_msg(r, fn, arg) == -EAGAIN)
		usleep(50);
}

/* On the reactor, from export_stop (once): the watch goes if the loop has not removed it
 * already, and `drained` is posted once nothing is in flight - never before this runs, so
 * export_stop cannot free the export under a message still queued. */
static void serve_stop_msg(void *arg)
{
	struct fuse_export *exp = arg;

	if (exp->watch != NULL)
		mimo_fd_watch_remove(&exp->watch);
	/* Replies still due go nowhere: an exited session does not report them as errors. */
	fuse_session_exit(exp->se);
	exp->draining = true;
	if (exp->inflight == 0)
		sem_post(&exp->drained);
}

void fuse_export_io_get(struct fuse_export *exp)
{
	exp->inflight++;
}

void fuse_export_io_put(struct fuse_export *exp)
{
	if (--exp->inflight == 0 && exp->draining)
		sem_post(&exp->drained);
}

void *fuse_export_buf_get(struct fuse_export *exp)
{
	if (exp->pool_size == 0)
		return NULL;
	if (exp->pool_count > 0)
		return exp->pool[--exp->pool_count];
	return aligned_alloc(4096, (exp->pool_size + 4095) / 4096 * 4096);
}

void fuse_export_buf_put(struct fuse_export *exp, void *buf)
{
	/* libfuse's own first receive buffer is malloc'd (16-byte aligned): reads into it would
	 * bounce on an O_DIRECT bdev, so only page-aligned buffers of ours are kept. */
	if (exp->pool_count < FUSE_POOL_BUFS && (uintptr_t)buf % 4096 == 0)
		exp->pool[exp->pool_count++] = buf;
	else
		free(buf);
}

static void fd_ready(void *arg, uint32_t events)
{
	struct fuse_export *exp = arg;

	(void)events;
	for (int i = 0; i < RX_BATCH; i++) {
		int res = fuse_session_receive_buf(exp->se, &exp->rx);

		if (res == -EINTR) /* an interrupted request: try the next */
			continue;
		if (res == -EAGAIN)
			return;
		if (res <= 0 || fuse_session_exited(exp->se)) {
			/* ENODEV: aborted or unmounted (libfuse exits the session); or an error
			 * that a level-triggered watch would report every turn. */
			if (res < 0 && !fuse_session_exited(exp->se)) {
				/* Nobody will read this mount again: abort it, so that its users
				 * get ENOTCONN instead of hanging until fuse_export_delete. */
				MIMO_ERR(COMP, "%s: reading /dev/fuse: %s; aborting the mount",
					 exp->mountpoint, strerror(-res));
				abort_connection(exp->conn_id);
				fuse_session_exit(exp->se);
			}
			mimo_fd_watch_remove(&exp->watch); /* export_stop does the rest */
			return;
		}
		if (exp->pool_size == 0) /* libfuse's buffer: its capacity sizes the pool's */
			exp->pool_size = malloc_usable_size(exp->rx.mem);
		fuse_session_process_buf(exp->se, &exp->rx);
		if (exp->rx_taken) { /* a write owns it now: receive into another one */
			exp->rx.mem = fuse_export_buf_get(exp); /* NULL: libfuse allocates */
			exp->rx_taken = false;
		}
	}
}

struct serve_ctx {
	struct fuse_export *exp;
	int rc;
	sem_t done;
};

static void serve_start_msg(void *arg)
{
	struct serve_ctx *c = arg;
	struct fuse_export *exp = c->exp;

	c->rc = mimo_fd_watch_add(fuse_session_fd(exp->se), EPOLLIN, fd_ready, exp, &exp->watch);
	sem_post(&c->done);
}

/* Pick the reactor an export is served on: round-robin over the reactors. */
static struct mimo_reactor *pick_reactor(void)
{
	static _Atomic uint32_t next;

	return mimo_reactor_get(atomic_fetch_add(&next, 1) % mimo_reactor_count());
}

/* --- create / delete --------------------------------------------------------------------- */

static struct fuse_export *find_locked(const char *real)
{
	struct fuse_export *exp;

	TAILQ_FOREACH(exp, &g_fuse_exports, link)
	{
		if (strcmp(exp->mountpoint, real) == 0)
			return exp;
	}
	return NULL;
}

static json_t *export_params(const struct fuse_export *exp)
{
	json_t *p = json_pack("{s:s, s:b, s:s, s:b}", "mountpoint", exp->mountpoint, "writable",
			      exp->writable, "coherence", mimo_fuse_coherence_name(exp->coherence),
			      "allow_other", exp->allow_other);

	if (exp->bdevs != NULL) {
		json_t *a = json_array();

		for (size_t i = 0; i < exp->num_bdevs; i++)
			json_array_append_new(a, json_string(exp->bdevs[i]));
		json_object_set_new(p, "bdevs", a);
	}
	return p;
}

static void export_free(struct fuse_export *exp)
{
	struct fuse_node *n;
	struct nitem *it;
	struct ev_reader *r;

	while ((n = TAILQ_FIRST(&exp->nodes)) != NULL) {
		TAILQ_REMOVE(&exp->nodes, n, link);
		fuse_node_close(n);
		fuse_node_free(n);
	}
	/* Their writes were answered when the notifier stopped. */
	while ((it = TAILQ_FIRST(&exp->queue)) != NULL) {
		TAILQ_REMOVE(&exp->queue, it, link);
		fuse_holds_release(it->holds);
		free(it->name);
		free(it);
	}
	while ((r = TAILQ_FIRST(&exp->readers)) != NULL) {
		TAILQ_REMOVE(&exp->readers, r, link);
		if (r->ph != NULL)
			fuse_pollhandle_destroy(r->ph);
		free(r);
	}
	if (exp->se != NULL) {
		/* Already detached and aborted: this only closes the fd and frees the path
		 * (the aborted fd polls POLLERR, so libfuse does not unmount again). */
		fuse_session_unmount(exp->se);
		fuse_session_destroy(exp->se);
	}
	free(exp->rx.mem);
	while (exp->pool_count > 0)
		free(exp->pool[--exp->pool_count]);
	sem_destroy(&exp->drained);
	for (size_t i = 0; i < FUSE_EVENTS_RING; i++)
		free(exp->ev_lines[i]);
	for (size_t i = 0; i < exp->num_bdevs; i++)
		free(exp->bdevs[i]);
	free(exp->bdevs);
	free(exp->mountpoint);
	pthread_mutex_destroy(&exp->lock);
	pthread_mutex_destroy(&exp->verify_lock);
	pthread_cond_destroy(&exp->cond);
	free(exp);
}

static bool join_within(pthread_t t, int seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/* Detach the mount and end the connection. fusectl's abort comes first, while mountinfo still
 * shows our connection on our path: the connection is ours whatever is mounted there now (we
 * hold its fd, so its number cannot be reused). Then the unmount, only if the mount on the
 * path is still ours - never one mounted over or instead of it. */
static void unmount_export(struct fuse_export *exp)
{
	struct mount_info mi;

	abort_connection(exp->conn_id);
	if (find_mount(exp->mountpoint, &mi) && mi.dev == exp->conn_id && is_mimo_mount(&mi) &&
	    umount2(exp->mountpoint, MNT_DETACH) != 0 && errno != EINVAL)
		MIMO_WARN(COMP, "unmount %s: %s", exp->mountpoint, strerror(errno));
}

/*
 * Stop everything an export runs; it is already off the list. Returns false when something
 * may still use it (a thread that did not end, a verify that did not return): the caller must
 * then leak it rather than free it. Never waits without a bound.
 */
static bool export_stop(struct fuse_export *exp)
{
	struct ev_reader *r;
	struct timespec ts;
	struct fuse_hold *held;
	bool notifier_done = !exp->notifier_started, loop_done = !exp->loop_started;
	int rc = 0;

	if (exp->listening)
		mimo_events_remove_listener(fuse_events_listener, exp);
	/* No write waits for a mount that goes (the hook holds no more: it is off the list).
	 * At once, not when the notifier gets there: it may be waiting in the kernel for a page
	 * that one of these writes, through another export, keeps locked - and off the list,
	 * the watchdog no longer sees it. */
	pthread_mutex_lock(&exp->lock);
	exp->stopping = true;
	held = fuse_holds_take_locked(exp, NULL, true);
	pthread_cond_broadcast(&exp->cond);
	pthread_mutex_unlock(&exp->lock);
	fuse_holds_release(held);
	if (!notifier_done)
		notifier_done = join_within(exp->notifier_thread, 5);
	/* Parked reads of `events` end: end of file. */
	pthread_mutex_lock(&exp->lock);
	TAILQ_FOREACH(r, &exp->readers, link)
	{
		if (r->pending != NULL) {
			fuse_reply_buf(r->pending, NULL, 0);
			r->pending = NULL;
		}
	}
	pthread_mutex_unlock(&exp->lock);
	if (exp->mounted)
		unmount_export(exp);
	/* The aborted connection fails whatever the notifier was sending. */
	if (!notifier_done)
		notifier_done = join_within(exp->notifier_thread, 5);
	if (!loop_done) {
		/* Off the reactor before the session goes: the watch is removed there, and the
		 * requests answered from completions are answered (to an aborted connection). */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		run_on_reactor(exp->reactor, serve_stop_msg, exp);
		while ((rc = sem_timedwait(&exp->drained, &ts)) != 0 && errno == EINTR)
			;
		loop_done = rc == 0;
		rc = 0;
	}
	/* verify_cache calls in progress see `stopping` and return. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&exp->lock);
	while (exp->users > 0 && rc == 0)
		rc = pthread_cond_timedwait(&exp->cond, &exp->lock, &ts);
	rc = exp->users > 0;
	pthread_mutex_unlock(&exp->lock);
	if (!notifier_done || !loop_done || rc) {
		struct fuse_hold *left;

		/* No write waits for a notifier that did not end. */
		pthread_mutex_lock(&exp->lock);
		left = fuse_holds_take_locked(exp, NULL, true);
		pthread_mutex_unlock(&exp->lock);
		fuse_holds_release(left);
		MIMO_ERR(COMP,
			 "%s: %s did not end within its time; leaking the export (its nodes and "
			 "FUSE session) rather than freeing what it may still use",
			 exp->mountpoint,
			 !loop_done	  ? "a FUSE request in flight"
			 : !notifier_done ? "the notifier"
					  : "a verify");
		return false;
	}
	return true;
}

static int hook_update_locked(void)
{
	static bool registered;
	bool want = !TAILQ_EMPTY(&g_fuse_exports);
	int rc = 0;

	if (want && !registered) {
		rc = mimo_bdev_add_write_hook(fuse_write_hook, NULL);
		registered = rc == 0;
	} else if (!want && registered) {
		mimo_bdev_remove_write_hook(fuse_write_hook, NULL);
		registered = false;
	}
	return rc;
}

static int export_start(struct fuse_export *exp, char *err, size_t err_len)
{
	char o[128];
	char *argv[] = { "mimo_tgt", "-o", o, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct mount_info mi;
	int fd, rc;

	/* default_permissions: the kernel checks the files' modes (0600, owned by us). */
	snprintf(o, sizeof(o), "fsname=" FSNAME ",subtype=mimo,default_permissions%s%s",
		 exp->allow_other ? ",allow_other" : "", exp->writable ? "" : ",ro");
	/* libfuse only prints why it cannot; say it in the answer. */
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(err, err_len, -errno, "cannot open /dev/fuse: %s", strerror(errno));
	close(fd);
	exp->se = fuse_session_new(&args, &g_fuse_ops, sizeof(g_fuse_ops), exp);
	fuse_opt_free_args(&args);
	if (exp->se == NULL)
		return fail(err, err_len, -ENOMEM, "cannot create a FUSE session");
	if (fuse_session_mount(exp->se, exp->mountpoint) != 0)
		return fail(err, err_len, -EIO, "cannot mount on %s (see the log)",
			    exp->mountpoint);
	if (!find_mount(exp->mountpoint, &mi) || !is_mimo_mount(&mi)) {
		/* Without the id an unmount could hang on an open file: refuse. */
		umount2(exp->mountpoint, MNT_DETACH);
		return fail(err, err_len, -EIO, "mounted %s but cannot find it in mountinfo",
			    exp->mountpoint);
	}
	exp->conn_id = mi.dev;
	exp->mounted = true; /* export_stop unmounts it from here on */
	fd = fuse_session_fd(exp->se);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		return fail(err, err_len, -errno, "cannot make /dev/fuse non-blocking: %s",
			    strerror(errno));
	rc = fuse_thread_create(&exp->notifier_thread, fuse_notifier_main, exp);
	if (rc != 0)
		return fail(err, err_len, -rc, "cannot start a thread");
	exp->notifier_started = true;
	{
		struct serve_ctx c = { .exp = exp };

		sem_init(&c.done, 0, 0);
		run_on_reactor(exp->reactor, serve_start_msg, &c);
		while (sem_wait(&c.done) != 0)
			;
		sem_destroy(&c.done);
		if (c.rc != 0)
			return fail(err, err_len, c.rc, "cannot watch /dev/fuse on a reactor: %s",
				    strerror(-c.rc));
	}
	exp->loop_started = true;
	return 0;
}

MIMO_EXPORT int mimo_fuse_export_create(const struct mimo_fuse_export_opts *opts, char *err,
					size_t err_len)
{
	char real[PATH_MAX];
	struct fuse_export *exp;
	int rc;

	if (opts == NULL || opts->mountpoint == NULL || opts->mountpoint[0] == '\0')
		return fail(err, err_len, -EINVAL, "mountpoint is required");
	if (opts->coherence > MIMO_FUSE_COHERENCE_NONE)
		return fail(err, err_len, -EINVAL, "unknown coherence");
	pthread_mutex_lock(&g_admin_lock);
	rc = prepare_mountpoint(opts->mountpoint, real, err, err_len);
	if (rc != 0)
		goto out;
	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	exp = find_locked(real);
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	if (exp != NULL) {
		rc = fail(err, err_len, -EEXIST, "%s is already exported", real);
		goto out;
	}
	if ((rc = check_not_mounted(real, err, err_len)) != 0)
		goto out;
	exp = calloc(1, sizeof(*exp));
	if (exp == NULL || (exp->mountpoint = strdup(real)) == NULL) {
		free(exp);
		rc = fail(err, err_len, -ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&exp->lock, NULL);
	pthread_mutex_init(&exp->verify_lock, NULL);
	pthread_cond_init(&exp->cond, NULL);
	sem_init(&exp->drained, 0, 0);
	exp->reactor = pick_reactor();
	TAILQ_INIT(&exp->nodes);
	TAILQ_INIT(&exp->queue);
	TAILQ_INIT(&exp->work);
	TAILQ_INIT(&exp->readers);
	exp->next_ino = INO_FIRST_BDEV;
	exp->writable = opts->writable;
	exp->allow_other = opts->allow_other;
	exp->uid = getuid();
	exp->gid = getgid();
	exp->coherence = opts->coherence;
	exp->created = time(NULL);
	if (opts->bdevs != NULL) {
		exp->bdevs = calloc(opts->num_bdevs + 1, sizeof(char *));
		for (size_t i = 0; exp->bdevs != NULL && i < opts->num_bdevs; i++) {
			if ((exp->bdevs[i] = strdup(opts->bdevs[i])) != NULL)
				exp->num_bdevs++;
		}
	}
	/* The listener before the mount: a poll right after creation misses nothing. */
	rc = mimo_events_add_listener(fuse_events_listener, exp);
	if (rc != 0)
		rc = fail(err, err_len, rc < 0 ? rc : -ENOMEM,
			  "cannot listen to the daemon's events: %s",
			  strerror(rc < 0 ? -rc : ENOMEM));
	else {
		exp->listening = true;
		rc = export_start(exp, err, err_len);
	}
	/* The watchdog of held writes runs while any export exists (hold.c). */
	if (rc == 0 && (rc = fuse_watchdog_start()) != 0)
		rc = fail(err, err_len, rc, "cannot start a thread: %s", strerror(-rc));
	if (rc == 0) {
		pthread_rwlock_wrlock(&g_fuse_exports_lock);
		TAILQ_INSERT_TAIL(&g_fuse_exports, exp, link);
		if ((rc = hook_update_locked()) != 0) {
			TAILQ_REMOVE(&g_fuse_exports, exp, link);
			rc = fail(err, err_len, rc < 0 ? rc : -ENOMEM,
				  "cannot register the bdev write hook: %s",
				  strerror(rc < 0 ? -rc : ENOMEM));
		}
		pthread_rwlock_unlock(&g_fuse_exports_lock);
	}
	if (rc != 0) {
		if (export_stop(exp))
			export_free(exp);
		if (TAILQ_EMPTY(&g_fuse_exports))
			fuse_watchdog_stop();
		goto out;
	}
	MIMO_INFO(COMP, "exported bdevs on %s (coherence %s%s)", real,
		  mimo_fuse_coherence_name(exp->coherence), exp->writable ? "" : ", read-only");
	mimo_event_emit("fuse_export_created", real, export_params(exp));
out:
	pthread_mutex_unlock(&g_admin_lock);
	return rc;
}

static void export_delete(struct fuse_export *exp)
{
	char *mp = strdup(exp->mountpoint);

	pthread_rwlock_wrlock(&g_fuse_exports_lock);
	TAILQ_REMOVE(&g_fuse_exports, exp, link);
	hook_update_locked();
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	if (export_stop(exp))
		export_free(exp);
	if (TAILQ_EMPTY(&g_fuse_exports)) /* under the admin lock: nobody adds one */
		fuse_watchdog_stop();
	MIMO_INFO(COMP, "unmounted %s", mp != NULL ? mp : "?");
	if (mp != NULL)
		mimo_event_emit("fuse_export_deleted", mp, json_pack("{s:s}", "mountpoint", mp));
	free(mp);
}

MIMO_EXPORT int mimo_fuse_export_delete(const char *mountpoint)
{
	char real[PATH_MAX];
	struct fuse_export *exp;

	pthread_mutex_lock(&g_admin_lock);
	/* By the name given or its absolute path (made without touching the mount). */
	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	exp = find_locked(mountpoint);
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	if (exp == NULL && lexical_path(mountpoint, real) == 0) {
		pthread_rwlock_rdlock(&g_fuse_exports_lock);
		exp = find_locked(real);
		pthread_rwlock_unlock(&g_fuse_exports_lock);
	}
	if (exp != NULL)
		export_delete(exp);
	pthread_mutex_unlock(&g_admin_lock);
	return exp != NULL ? 0 : -ENOENT;
}

MIMO_EXPORT void mimo_fuse_export_delete_all(void)
{
	struct fuse_export *exp;

	pthread_mutex_lock(&g_admin_lock);
	for (;;) {
		pthread_rwlock_rdlock(&g_fuse_exports_lock);
		exp = TAILQ_FIRST(&g_fuse_exports);
		pthread_rwlock_unlock(&g_fuse_exports_lock);
		if (exp == NULL)
			break;
		export_delete(exp);
	}
	pthread_mutex_unlock(&g_admin_lock);
}

MIMO_EXPORT json_t *mimo_fuse_exports_json(void)
{
	json_t *arr = json_array();
	struct fuse_export *exp;

	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	TAILQ_FOREACH(exp, &g_fuse_exports, link)
	{
		json_t *p = export_params(exp);

		json_object_set_new(
			p, "notifications",
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "store",
				  (json_int_t)atomic_load(&exp->n_store), "store_bytes",
				  (json_int_t)atomic_load(&exp->n_store_bytes), "inval_inode",
				  (json_int_t)atomic_load(&exp->n_inval), "entry",
				  (json_int_t)atomic_load(&exp->n_entry), "poll",
				  (json_int_t)atomic_load(&exp->n_poll), "store_raced",
				  (json_int_t)atomic_load(&exp->n_store_race), "held_writes",
				  (json_int_t)atomic_load(&exp->n_held), "held_answered_early",
				  (json_int_t)atomic_load(&exp->n_held_early)));
		json_array_append_new(arr, p);
	}
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	return arr;
}

MIMO_EXPORT json_t *mimo_fuse_config_json(void)
{
	json_t *arr = json_array();
	struct fuse_export *exp;

	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	TAILQ_FOREACH(exp, &g_fuse_exports, link)
	json_array_append_new(arr, json_pack("{s:s, s:o}", "method", "fuse_export_create", "params",
					     export_params(exp)));
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	return arr;
}

MIMO_EXPORT int mimo_fuse_export_verify_cache(const char *mountpoint, const char *bdev,
					      uint64_t *checked, uint64_t *mismatched)
{
	char real[PATH_MAX];
	struct fuse_export *exp;
	struct fuse_node *n = NULL;
	int rc = -ENOENT, err;
	bool resolved = lexical_path(mountpoint, real) == 0;

	/* A reference, not the admin lock: a long walk holds up no create or delete, and
	 * delete waits (bounded) for it to see `stopping` and return. */
	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	exp = find_locked(mountpoint);
	if (exp == NULL && resolved)
		exp = find_locked(real);
	if (exp != NULL) {
		pthread_mutex_lock(&exp->lock);
		exp->users++;
		pthread_mutex_unlock(&exp->lock);
	}
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	if (exp == NULL)
		return -ENOENT;
	n = fuse_node_get(exp, bdev, &err);
	if (n != NULL)
		rc = fuse_export_verify_node(exp, n, checked, mismatched);
	pthread_mutex_lock(&exp->lock);
	exp->users--;
	pthread_cond_broadcast(&exp->cond);
	pthread_mutex_unlock(&exp->lock);
	return rc;
}
