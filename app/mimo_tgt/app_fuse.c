/*
 * The "fuse" subsystem of mimo_tgt: exports made by fuse_export_create or --fuse-mount DIR.
 * Mounting and unmounting block and wait for reactors, so they run on a thread of their own;
 * at exit every export is unmounted before the bdevs go.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "mimo/fuse.h"
#include "mimo/reactor.h"

#define COMP "app"

struct fini_ctx {
	void (*done)(void *arg);
	void *arg;
	struct mimo_reactor *reactor;
};

static void fini_done(void *arg)
{
	struct fini_ctx *c = arg;

	c->done(c->arg);
	free(c);
}

static void *fini_thread(void *arg)
{
	struct fini_ctx *c = arg;

	mimo_fuse_export_delete_all();
	while (mimo_reactor_send_msg(c->reactor, fini_done, c) == -EAGAIN)
		;
	return NULL;
}

void app_fuse_fini(void (*done)(void *arg), void *arg)
{
	struct fini_ctx *c = calloc(1, sizeof(*c));
	pthread_t t;

	if (c == NULL) {
		done(arg);
		return;
	}
	c->done = done;
	c->arg = arg;
	c->reactor = mimo_reactor_current();
	if (pthread_create(&t, NULL, fini_thread, c) != 0) {
		MIMO_ERR(COMP, "cannot start a thread to unmount FUSE exports");
		free(c);
		done(arg);
		return;
	}
	pthread_detach(t);
}

json_t *app_fuse_config(void)
{
	return mimo_fuse_config_json();
}

int app_fuse_mount(const char *dir)
{
	struct mimo_fuse_export_opts o = {
		.mountpoint = dir,
		.writable = true,
		.coherence = MIMO_FUSE_COHERENCE_STORE,
	};
	char err[512] = "";
	int rc = mimo_fuse_export_create(&o, err, sizeof(err));

	/* stderr whatever the log level: the start fails because of it. */
	if (rc != 0)
		fprintf(stderr, "mimo_tgt: --fuse-mount %s: %s\n", dir,
			err[0] ? err : strerror(-rc));
	return rc;
}

int app_fuse_check(const char *dir)
{
	char err[512] = "";
	int rc = mimo_fuse_mountpoint_check(dir, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "mimo_tgt: --fuse-mount %s: %s\n", dir,
			err[0] ? err : strerror(-rc));
	return rc;
}
