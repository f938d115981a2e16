/*
 * Controllers: the registry, each one's Unix socket in the socket directory (-S), accepting
 * front-ends, deletion while front-ends are connected, shutdown, and their JSON.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "accept_backoff.h"
#include "compiler.h"
#include "mimo/events.h"
#include "mimo/vhost.h"
#include "vhost_internal.h"

static TAILQ_HEAD(, vhost_ctrlr) g_ctrlrs = TAILQ_HEAD_INITIALIZER(g_ctrlrs);
/* Deleted, waiting for their device to let go and their last front-end to leave. */
static TAILQ_HEAD(, vhost_ctrlr) g_orphans = TAILQ_HEAD_INITIALIZER(g_orphans);
static char g_socket_dir[PATH_MAX];
static struct mimo_ratelimit g_rl;
static struct mimo_accept_backoff g_backoff;

struct mimo_ratelimit *vhost_ratelimit(void)
{
	return &g_rl;
}

void vhost_emit(const char *type, const char *ctx, json_t *payload)
{
	mimo_event_emit(type, ctx, payload);
}

MIMO_EXPORT int mimo_vhost_set_socket_dir(const char *dir)
{
	struct stat st;
	char *real;

	if (stat(dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((real = realpath(dir, NULL)) == NULL)
		return -errno;
	if (strlen(real) >= sizeof(g_socket_dir)) {
		free(real);
		return -ENAMETOOLONG;
	}
	snprintf(g_socket_dir, sizeof(g_socket_dir), "%s", real);
	free(real);
	return 0;
}

MIMO_EXPORT const char *mimo_vhost_socket_dir(void)
{
	if (g_socket_dir[0] == '\0' && getcwd(g_socket_dir, sizeof(g_socket_dir)) == NULL)
		g_socket_dir[0] = '\0';
	return g_socket_dir;
}

struct vhost_ctrlr *vhost_ctrlr_find(const char *name)
{
	struct vhost_ctrlr *c;

	TAILQ_FOREACH(c, &g_ctrlrs, link)
	if (strcmp(c->name, name) == 0)
		return c;
	return NULL;
}

static void maybe_free(struct vhost_ctrlr *c)
{
	void (*gone)(void *arg) = c->gone;
	void *arg = c->gone_arg;

	if (!c->deleted || !c->detached || c->nsessions != 0)
		return;
	TAILQ_REMOVE(&g_orphans, c, link);
	MIMO_DEBUG(COMP, "%s: controller freed", c->name);
	c->ops->free(c->dev);
	free(c->name);
	free(c->socket_path);
	free(c);
	if (gone != NULL)
		gone(arg);
}

void vhost_ctrlr_session_gone(struct vhost_ctrlr *c, struct vhost_session *s)
{
	(void)s;
	maybe_free(c);
}

static void on_accept(void *arg, uint32_t events)
{
	struct vhost_ctrlr *c = arg;

	(void)events;
	for (;;) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int rc;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    !mimo_accept_backoff_failed(&g_backoff, c->listen_watch, errno,
							c->socket_path))
				VHOST_BAD("%s: accept: %s", c->name, strerror(errno));
			return;
		}
		mimo_accept_backoff_ok(&g_backoff);
		if (c->nsessions >= VHOST_MAX_SESSIONS) {
			VHOST_BAD("%s: %u front-ends are connected already; refusing another",
				  c->name, c->nsessions);
			close(fd);
			continue;
		}
		rc = vhost_session_create(c, fd);
		if (rc != 0) {
			MIMO_ERR(COMP, "%s: cannot serve a new connection: %s", c->name,
				 strerror(-rc));
			close(fd);
		}
	}
}

/* A socket file left by a process that is gone is replaced; a live one, or anything that is
 * not a socket, is not. */
static int listen_on(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_len, "socket path %s is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len, "%s exists and is not a socket", path);
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			snprintf(err, err_len, "another process listens on %s", path);
			return -EADDRINUSE;
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
		int rc = -errno;

		snprintf(err, err_len, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

static bool name_ok(const char *name)
{
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

/* Counted for the metrics endpoint, which reads them from its own thread: the registry
 * itself belongs to the reactor that created the controllers. */
static _Atomic int64_t g_blk_ctrlrs, g_scsi_ctrlrs, g_sessions;

static void count_ctrlr(const struct vhost_ctrlr *c, int delta)
{
	atomic_fetch_add_explicit(strcmp(c->ops->type, "scsi") == 0 ? &g_scsi_ctrlrs
								    : &g_blk_ctrlrs,
				  delta, memory_order_relaxed);
}

void vhost_stats_session(int delta)
{
	atomic_fetch_add_explicit(&g_sessions, delta, memory_order_relaxed);
}

static uint64_t nonneg(_Atomic int64_t *v)
{
	int64_t n = atomic_load_explicit(v, memory_order_relaxed);

	return n > 0 ? (uint64_t)n : 0;
}

MIMO_EXPORT void mimo_vhost_get_stats(struct mimo_vhost_stats *st)
{
	st->blk_controllers = nonneg(&g_blk_ctrlrs);
	st->scsi_controllers = nonneg(&g_scsi_ctrlrs);
	st->sessions = nonneg(&g_sessions);
}

int vhost_ctrlr_create(const char *name, const char *cpumask, const struct vhost_dev_ops *ops,
		       void *dev, bool delay, struct vhost_ctrlr **out, char *err, size_t err_len)
{
	uint64_t mask = 0, have = 0;
	struct vhost_ctrlr *c;
	char path[PATH_MAX];
	int rc;

	if (!name_ok(name)) {
		snprintf(err, err_len,
			 "controller name '%s': 1 to 64 printable characters, no '/' or blank",
			 name);
		return -EINVAL;
	}
	if (vhost_ctrlr_find(name) != NULL) {
		snprintf(err, err_len, "controller %s exists", name);
		return -EEXIST;
	}
	for (uint32_t i = 0; i < mimo_reactor_count(); i++)
		have |= 1ull << mimo_reactor_core(mimo_reactor_get(i));
	if (cpumask != NULL && mimo_reactor_parse_cpumask(cpumask, &mask) != 0) {
		snprintf(err, err_len, "cpumask '%s' is not a core mask", cpumask);
		return -EINVAL;
	}
	if (cpumask == NULL)
		mask = have;
	if (mask == 0 || (mask & ~have) != 0) {
		snprintf(err, err_len,
			 "cpumask 0x%llx has cores without a reactor (the target runs on 0x%llx)",
			 (unsigned long long)mask, (unsigned long long)have);
		return -EINVAL;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", mimo_vhost_socket_dir(), name) >=
	    sizeof(path)) {
		snprintf(err, err_len, "socket path too long");
		return -ENAMETOOLONG;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->name = strdup(name);
	c->socket_path = strdup(path);
	c->cpumask = mask;
	for (uint32_t i = 0; i < mimo_reactor_count(); i++)
		if (mask & (1ull << mimo_reactor_core(mimo_reactor_get(i))))
			c->reactors[c->nreactors++] = mimo_reactor_get(i);
	c->home = mimo_reactor_current();
	c->ops = ops;
	c->dev = dev;
	c->iops_threshold = 60000;
	c->listen_fd = -1;
	TAILQ_INIT(&c->sessions);
	if (c->name == NULL || c->socket_path == NULL) {
		rc = -ENOMEM;
	} else if (!delay) {
		rc = vhost_ctrlr_start(c, err, err_len);
	} else {
		/* Held back (SPDK's delay): nobody may connect before the targets are added. */
		MIMO_INFO(COMP, "%s: vhost-user-%s controller, not listening until started", name,
			  ops->type);
		rc = 0;
	}
	if (rc != 0) {
		free(c->name);
		free(c->socket_path);
		free(c);
		return rc;
	}
	TAILQ_INSERT_TAIL(&g_ctrlrs, c, link);
	count_ctrlr(c, 1);
	*out = c;
	return 0;
}

int vhost_ctrlr_start(struct vhost_ctrlr *c, char *err, size_t err_len)
{
	int fd, rc;

	if (c->listen_fd >= 0)
		return 0; /* started already: nothing to do, as SPDK */
	fd = listen_on(c->socket_path, err, err_len);
	if (fd < 0)
		return fd;
	rc = mimo_fd_watch_add(fd, EPOLLIN, on_accept, c, &c->listen_watch);
	if (rc != 0) {
		close(fd);
		unlink(c->socket_path);
		snprintf(err, err_len, "cannot watch %s", c->socket_path);
		return rc;
	}
	c->listen_fd = fd;
	MIMO_INFO(COMP, "%s: vhost-user-%s controller on %s", c->name, c->ops->type,
		  c->socket_path);
	return 0;
}

static void detached(void *arg)
{
	struct vhost_ctrlr *c = arg;

	c->detached = true;
	maybe_free(c);
}

void vhost_ctrlr_delete(struct vhost_ctrlr *c)
{
	uint32_t left = c->nsessions;

	TAILQ_REMOVE(&g_ctrlrs, c, link);
	count_ctrlr(c, -1);
	TAILQ_INSERT_TAIL(&g_orphans, c, link);
	c->deleted = true;
	if (c->listen_fd >= 0) { /* a controller held back never listened */
		mimo_fd_watch_remove(&c->listen_watch);
		close(c->listen_fd);
		unlink(c->socket_path);
	}
	if (left != 0)
		MIMO_WARN(COMP,
			  "%s: deleted with %u front-end(s) connected: their requests fail until "
			  "they disconnect",
			  c->name, left);
	vhost_emit("vhost_controller_deleted", c->name,
		   json_pack("{s:s, s:s}", "ctrlr", c->name, "socket", c->socket_path));
	c->ops->detach(c->dev, detached, c);
}

json_t *vhost_ctrlr_info_json(struct vhost_ctrlr *c)
{
	json_t *sessions = json_array();
	struct vhost_session *s;
	char mask[32];

	TAILQ_FOREACH(s, &c->sessions, link)
	json_array_append_new(sessions, vhost_session_info_json(s));
	snprintf(mask, sizeof(mask), "0x%llx", (unsigned long long)c->cpumask);
	return json_pack("{s:s, s:s, s:i, s:i, s:s, s:o, s:o}", "ctrlr", c->name, "cpumask", mask,
			 "delay_base_us", (int)c->delay_base_us, "iops_threshold",
			 (int)c->iops_threshold, "socket", c->socket_path, "sessions", sessions,
			 "backend_specific", c->ops->info_json(c->dev));
}

json_t *vhost_ctrlr_list_json(void)
{
	json_t *arr = json_array();
	struct vhost_ctrlr *c;

	TAILQ_FOREACH(c, &g_ctrlrs, link)
	json_array_append_new(arr, vhost_ctrlr_info_json(c));
	return arr;
}

json_t *vhost_ctrlr_config_json(const char *type)
{
	json_t *arr = json_array();
	struct vhost_ctrlr *c;

	TAILQ_FOREACH(c, &g_ctrlrs, link)
	{
		size_t before = json_array_size(arr);

		if (strcmp(c->ops->type, type) != 0)
			continue;
		c->ops->config_json(c->dev, c, arr);
		/* As SPDK saves it: after the controller, only when coalescing is on. */
		if (json_array_size(arr) > before && c->delay_base_us != 0)
			json_array_append_new(
				arr, json_pack("{s:s, s:{s:s, s:i, s:i}}", "method",
					       "vhost_controller_set_coalescing", "params", "ctrlr",
					       c->name, "delay_base_us", (int)c->delay_base_us,
					       "iops_threshold", (int)c->iops_threshold));
	}
	return arr;
}

MIMO_EXPORT json_t *mimo_vhost_blk_config_json(void)
{
	return vhost_ctrlr_config_json("blk");
}

struct fini_ctx {
	uint32_t left;
	void (*done)(void *arg);
	void *arg;
};

static void fini_one(void *arg)
{
	struct fini_ctx *f = arg;

	if (--f->left == 0) {
		f->done(f->arg);
		free(f);
	}
}

MIMO_EXPORT void mimo_vhost_fini(void (*done)(void *arg), void *arg)
{
	struct fini_ctx *f = calloc(1, sizeof(*f));
	struct vhost_ctrlr *c, *tmp;

	if (f == NULL) {
		done(arg);
		return;
	}
	f->done = done;
	f->arg = arg;
	f->left = 1; /* held until every controller has been asked */
	TAILQ_FOREACH_SAFE(c, &g_ctrlrs, link, tmp)
	vhost_ctrlr_delete(c);
	/* Every controller is an orphan now: end its sessions, count it until it is freed. */
	TAILQ_FOREACH_SAFE(c, &g_orphans, link, tmp)
	{
		struct vhost_session *s, *stmp;

		f->left++;
		c->gone = fini_one;
		c->gone_arg = f;
		TAILQ_FOREACH_SAFE(s, &c->sessions, link, stmp)
		vhost_session_close(s, "the target is shutting down");
	}
	fini_one(f);
}

void vhost_ctrlr_config_changed(struct vhost_ctrlr *c)
{
	struct vhost_session *s;

	TAILQ_FOREACH(s, &c->sessions, link)
	vhost_session_config_changed(s);
}
