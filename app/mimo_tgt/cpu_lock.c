/*
 * SPDK's CPU core locks: a daemon that claims its cores holds a write lock (fcntl) on
 * /var/tmp/spdk_cpu_lock_NNN for each, with its pid in the file's first bytes (an int, as
 * SPDK writes it). mimo uses SPDK's files, so a mimo_tgt and an SPDK application that claim
 * the same core find each other, whichever started first.
 *
 * Off by default in mimo (SPDK's are on): a mimo reactor sleeps when idle, so daemons sharing
 * a core only share its time - and the tests run many daemons on core 0. --cpumask-locks or
 * framework_enable_cpumask_locks claims them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"

#define COMP "app"

static int g_lock_fd[64] = { [0 ... 63] = -1 };

static void lock_path(uint32_t core, char *buf, size_t len)
{
	snprintf(buf, len, "/var/tmp/spdk_cpu_lock_%03u", core);
}

int app_cpu_locks_release(uint32_t *failed_core)
{
	char path[64];

	for (uint32_t core = 0; core < 64; core++) {
		if (g_lock_fd[core] < 0)
			continue;
		lock_path(core, path, sizeof(path));
		close(g_lock_fd[core]);
		g_lock_fd[core] = -1;
		/* Removed while still ours: a claimant that opens it later makes a new one. */
		if (unlink(path) != 0 && errno != ENOENT) {
			MIMO_ERR(COMP, "cannot remove %s: %s", path, strerror(errno));
			if (failed_core != NULL)
				*failed_core = core;
			return -errno;
		}
	}
	return 0;
}

static int claim(uint32_t core)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[64];
	int pid = (int)getpid(), fd;

	lock_path(core, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		MIMO_ERR(COMP, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		int holder = 0;

		if (pread(fd, &holder, sizeof(holder), 0) != (ssize_t)sizeof(holder))
			holder = 0;
		MIMO_ERR(COMP, "cannot lock core %u: process %d has claimed it (%s)", core, holder,
			 path);
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, sizeof(pid)) != 0 ||
	    pwrite(fd, &pid, sizeof(pid), 0) != (ssize_t)sizeof(pid)) {
		int rc = -errno;

		MIMO_ERR(COMP, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	g_lock_fd[core] = fd;
	return 0;
}

int app_cpu_locks_claim(uint64_t core_mask, uint32_t *failed_core)
{
	for (uint32_t core = 0; core < 64; core++) {
		int rc;

		if (!(core_mask & (1ULL << core)) || g_lock_fd[core] >= 0)
			continue;
		rc = claim(core);
		if (rc != 0) {
			/* All or none, as SPDK's. */
			app_cpu_locks_release(NULL);
			if (failed_core != NULL)
				*failed_core = core;
			return rc;
		}
	}
	return 0;
}

static void rpc_framework_enable_cpumask_locks(struct mimo_jsonrpc_request *req,
					       const json_t *params)
{
	uint32_t core = 0;

	if (!mimo_rpc_no_params(req, params))
		return;
	if (app_cpu_locks_claim(g_app_opts.core_mask, &core) != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Failed to claim CPU core: %u", core);
	else
		mimo_jsonrpc_send_bool(req, true);
}

static void rpc_framework_disable_cpumask_locks(struct mimo_jsonrpc_request *req,
						const json_t *params)
{
	uint32_t core = 0;

	if (!mimo_rpc_no_params(req, params))
		return;
	if (app_cpu_locks_release(&core) != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Failed to unclaim CPU core: %u", core);
	else
		mimo_jsonrpc_send_bool(req, true);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "framework_enable_cpumask_locks", rpc_framework_enable_cpumask_locks,
	  MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "framework_disable_cpumask_locks", rpc_framework_disable_cpumask_locks,
	  MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
};

void app_cpu_lock_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
