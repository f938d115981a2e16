/*
 * mimo_tgt: the target daemon. Reactors run everything (reactor 0 serves JSON-RPC and owns
 * configuration); the main thread only waits for signals and runs start-up and shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent_plugin.h"
#include "app.h"
#include "bdev_aio.h"
#include "bdev_delay.h"
#include "bdev_error.h"
#include "bdev_malloc.h"
#include "bdev_null.h"
#include "bdev_passthru.h"
#include "bdev_raid.h"
#include "bdev_split.h"
#include "bdev_nvme.h"
#include "keyring.h"
#include "log.h"
#include "net_interface.h"
#include "server.h"
#include "mimo/bdev.h"
#include "mimo/events.h"
#include "mimo/fuse.h"
#include "mimo/jsonrpc.h"
#include "mimo/notify.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"
#include "mimo/scsi.h"
#include "mimo/vhost.h"

#define COMP "app"

struct app_opts g_app_opts = {
	.core_mask = 0x1,
	.rpc_socket = "/var/tmp/mimo.sock",
	.rpc_socket_mode = 0600,
};

struct bdev_fini_ctx {
	void (*done)(void *arg);
	void *arg;
};

static void nvme_detached(void *arg)
{
	struct bdev_fini_ctx *c = arg;

	mimo_bdev_delete_all(c->done, c->arg);
	free(c);
}

/* Remote controllers first (their bdevs go with them), then every local bdev. */
static void bdev_fini(void (*done)(void *arg), void *arg)
{
	struct bdev_fini_ctx *c = malloc(sizeof(*c));

	if (c == NULL) {
		mimo_bdev_delete_all(done, arg);
		return;
	}
	c->done = done;
	c->arg = arg;
	mimo_bdev_nvme_fini(nvme_detached, c);
}

/* bdev_nvme's module options first (its controllers are attached with them), then the bdevs
 * in the order they were made. */
static json_t *bdev_config(void)
{
	json_t *arr = mimo_bdev_nvme_config_json(), *bdevs = mimo_bdev_config_json();

	json_array_extend(arr, bdevs);
	json_decref(bdevs);
	return arr;
}

/* Keys go last at exit, once nothing uses them. */
static void keyring_fini(void (*done)(void *arg), void *arg)
{
	mimo_keyring_clear();
	done(arg);
}

/* In dependency order: started first to last, stopped last to first. The keyring comes first
 * (as in SPDK): bdev_nvme controllers and nvmf hosts name its keys. */
static const struct app_subsystem g_subsystems[] = {
	{ "keyring", { NULL }, mimo_keyring_config_json, NULL, keyring_fini },
	{ "bdev", { NULL }, bdev_config, NULL, bdev_fini },
	/* SPDK's sock subsystem: the options of the NVMe/TCP sockets (before nvmf, whose
	 * listeners take them). */
	{ "sock", { NULL }, app_sock_config, NULL, NULL },
	{ "nvmf", { "bdev", "sock", NULL }, app_nvmf_config, app_nvmf_init, app_nvmf_fini },
	{ "fuse", { "bdev", NULL }, app_fuse_config, NULL, app_fuse_fini },
	{ "vhost_blk", { "bdev", NULL }, app_vhost_config, NULL, app_vhost_fini },
	/* Shut down with vhost_blk: mimo_vhost_fini ends every controller, of both types. */
	{ "vhost_scsi", { "bdev", NULL }, app_vhost_scsi_config, NULL, NULL },
	/* SPDK's: framework_set_scheduler, once a period was given (the static scheduler). */
	{ "scheduler", { NULL }, app_scheduler_config, NULL, NULL },
};

const struct app_subsystem *app_subsystems(size_t *count)
{
	*count = sizeof(g_subsystems) / sizeof(g_subsystems[0]);
	return g_subsystems;
}

static struct mimo_jsonrpc_server *g_server;
static bool g_pid_written;	   /* ours to remove at exit */
static int g_main_core = -1;	   /* -p, checked against the mask */
static const char *g_agent_socket; /* --agent-socket: be a plugin of mimo_agent */
static const char *g_fuse_mount;   /* --fuse-mount: export every bdev on this directory */
static long g_idle_spin_us = -1;   /* --idle-spin-us: the reactors' default when < 0 */
static const char *g_metrics_addr; /* --metrics: serve Prometheus' /metrics there */
static bool g_cpumask_locks;	   /* --cpumask-locks: claim SPDK's per-core lock files */
static sem_t g_step_done;
static int g_step_rc;
static bool g_init_done;
static json_t *g_init_waiters; /* framework_wait_init requests, as pointers in integers */

static void usage(const char *prog)
{
	printf("usage: %s [options]\n\n"
	       "  -m, --cpumask MASK       reactor cores, e.g. 0x3 or [0,2-3] (default 0x1)\n"
	       "  -r, --rpc-socket PATH    JSON-RPC Unix socket (default /var/tmp/mimo.sock)\n"
	       "      --rpc-socket-mode M  the socket's permission bits, octal (default 0600)\n"
	       "  -c, --json FILE          replay a configuration saved with save_config\n"
	       "      --wait-for-rpc       wait for framework_start_init before initialising\n"
	       "  -f, --pid-file FILE      write the process id to FILE\n"
	       "  -L, --logflag FLAG       debug logs of one component (bdev, nvmf, rpc, "
	       "reactor...;\n"
	       "                           all; log_get_flags lists them)\n"
	       "      --cpumask-locks      claim SPDK's lock file of each core of -m\n"
	       "                           (/var/tmp/spdk_cpu_lock_NNN): a second daemon that\n"
	       "                           claims one of them is refused\n"
	       "      --disable-cpumask-locks  do not claim them (mimo's default)\n"
	       "      --poll               reactors poll without ever sleeping (SPDK's mode)\n"
	       "      --idle-spin-us US    reactors keep spinning US microseconds after their "
	       "last\n"
	       "                           work before they sleep (default 200; 0: sleep at once)\n"
	       "      --agent-socket PATH  be plugin mimo_tgt of the mimo_agent on PATH: JSON-RPC\n"
	       "                           requests arrive as messages, answers go back up\n"
	       "      --fuse-mount DIR     export every bdev as a file under DIR/bdevs (FUSE; DIR "
	       "must\n"
	       "                           exist: it is not created)\n"
	       "  -S, --vhost-socket-path DIR  where vhost-user controllers' sockets go (default:\n"
	       "                           the working directory)\n"
	       "      --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	       "                           (IPv4, [IPv6] or :PORT for every address; off by "
	       "default)\n"
	       "  -h, --help               this text\n"
	       "      --version            print the version\n\n"
	       "  -p, --main-core N        SPDK's main core: must be the first core of -m\n\n"
	       "SPDK options that size what mimo does not use (hugepages, DPDK shared memory,\n"
	       "PCI), accepted so SPDK's scripts start mimo_tgt unchanged:\n"
	       "  --no-huge, -s/--mem-size, -i/--shm-id, -n/--mem-channels, -u/--no-pci,\n"
	       "  --iova-mode; -e/--tpoint-group is accepted with a notice (no tracepoints)\n\n"
	       "Logs go to stderr; MIMO_LOG=debug|info|notice|warn|error sets the level.\n",
	       prog);
}

enum {
	OPT_WAIT_FOR_RPC = 256,
	OPT_SOCKET_MODE,
	OPT_POLL,
	OPT_VERSION,
	OPT_IGNORED_FLAG,
	OPT_IGNORED_ARG,
	OPT_AGENT_SOCKET,
	OPT_FUSE_MOUNT,
	OPT_IDLE_SPIN,
	OPT_METRICS,
	OPT_CPUMASK_LOCKS,
	OPT_NO_CPUMASK_LOCKS,
};

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cpumask", required_argument, NULL, 'm' },
		{ "rpc-socket", required_argument, NULL, 'r' },
		{ "rpc-socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
		{ "json", required_argument, NULL, 'c' },
		{ "config", required_argument, NULL, 'c' },
		{ "wait-for-rpc", no_argument, NULL, OPT_WAIT_FOR_RPC },
		{ "pid-file", required_argument, NULL, 'f' },
		{ "pidfile", required_argument, NULL, 'f' },
		{ "logflag", required_argument, NULL, 'L' },
		{ "poll", no_argument, NULL, OPT_POLL },
		{ "agent-socket", required_argument, NULL, OPT_AGENT_SOCKET },
		{ "fuse-mount", required_argument, NULL, OPT_FUSE_MOUNT },
		{ "vhost-socket-path", required_argument, NULL, 'S' },
		{ "idle-spin-us", required_argument, NULL, OPT_IDLE_SPIN },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "cpumask-locks", no_argument, NULL, OPT_CPUMASK_LOCKS },
		{ "disable-cpumask-locks", no_argument, NULL, OPT_NO_CPUMASK_LOCKS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "no-huge", no_argument, NULL, OPT_IGNORED_FLAG },
		{ "no-pci", no_argument, NULL, 'u' },
		{ "mem-size", required_argument, NULL, 's' },
		{ "shm-id", required_argument, NULL, 'i' },
		{ "mem-channels", required_argument, NULL, 'n' },
		{ "tpoint-group", required_argument, NULL, 'e' },
		{ "main-core", required_argument, NULL, 'p' },
		{ "iova-mode", required_argument, NULL, OPT_IGNORED_ARG },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "m:r:c:f:L:hs:i:n:e:p:uS:", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (mimo_reactor_parse_cpumask(optarg, &g_app_opts.core_mask) != 0) {
				fprintf(stderr, "mimo_tgt: invalid core mask '%s'\n", optarg);
				return -1;
			}
			break;
		case 'r':
			g_app_opts.rpc_socket = optarg;
			break;
		case OPT_SOCKET_MODE: {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);

			if (*end != '\0' || end == optarg || m > 0777) {
				fprintf(stderr, "mimo_tgt: invalid socket mode '%s' (octal)\n",
					optarg);
				return -1;
			}
			g_app_opts.rpc_socket_mode = (mode_t)m;
			break;
		}
		case 'c':
			g_app_opts.json_config = optarg;
			break;
		case OPT_WAIT_FOR_RPC:
			g_app_opts.wait_for_rpc = true;
			break;
		case 'f':
			g_app_opts.pid_file = optarg;
			break;
		case 'L':
			if (mimo_log_enable_flag(optarg) != 0) {
				fprintf(stderr,
					"mimo_tgt: -L %s: no such log flag (log_get_flags lists "
					"them; 'all' sets every one)\n",
					optarg);
				return -1;
			}
			break;
		case OPT_CPUMASK_LOCKS:
			g_cpumask_locks = true;
			break;
		case OPT_NO_CPUMASK_LOCKS:
			g_cpumask_locks = false;
			break;
		case OPT_POLL:
			g_app_opts.poll_mode = true;
			break;
		case OPT_AGENT_SOCKET:
			g_agent_socket = optarg;
			break;
		case OPT_FUSE_MOUNT:
			g_fuse_mount = optarg;
			break;
		case OPT_IDLE_SPIN: {
			char *end;
			long us = strtol(optarg, &end, 10);

			if (*end != '\0' || end == optarg || us < 0 || us > 1000000) {
				fprintf(stderr, "mimo_tgt: --idle-spin-us %s: 0 to 1000000\n",
					optarg);
				return -1;
			}
			g_idle_spin_us = us;
			break;
		}
		case OPT_METRICS: {
			struct sockaddr_storage ss;
			char err[160];

			if (mimo_metrics_parse_addr(optarg, &ss, err, sizeof(err)) != 0) {
				fprintf(stderr, "mimo_tgt: --metrics %s: %s\n", optarg, err);
				return -1;
			}
			g_metrics_addr = optarg;
			break;
		}
		case 'S': {
			int rc = mimo_vhost_set_socket_dir(optarg);

			if (rc != 0) {
				fprintf(stderr, "mimo_tgt: -S %s: %s\n", optarg, strerror(-rc));
				return -1;
			}
			break;
		}
		case 'h':
			usage(argv[0]);
			exit(0);
		case OPT_VERSION:
			printf("mimo_tgt %s\n", MIMO_VERSION);
			exit(0);
		case 'p': {
			/* SPDK's main core runs the RPC server: in mimo the first core of the mask
			 * always does, so only that one can be asked for. */
			char *end;
			long core = strtol(optarg, &end, 0);

			if (*end != '\0' || end == optarg || core < 0 || core > 63) {
				fprintf(stderr, "mimo_tgt: invalid main core '%s'\n", optarg);
				return -1;
			}
			g_main_core = (int)core;
			break;
		}
		case 'e':
			/* Tracepoints are SPDK's trace buffer in shared memory: mimo has none. A
			 * debugging aid, not a behaviour: said once, then the start goes on. */
			fprintf(stderr,
				"mimo_tgt: -e %s: SPDK tracepoints are not supported (use -L for "
				"debug logs); going on without them\n",
				optarg);
			break;
		case OPT_IGNORED_FLAG:
		case OPT_IGNORED_ARG:
		case 's':
		case 'i':
		case 'n':
		case 'u':
			/* Hugepages, DPDK shared memory and memory channels, PCI: resources mimo
			 * does not use (docs/mimo_tgt.md). */
			break;
		default:
			fprintf(stderr, "mimo_tgt: see --help\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mimo_tgt: unexpected argument '%s'; see --help\n", argv[optind]);
		return -1;
	}
	if (g_main_core >= 0 && !(g_app_opts.core_mask & (1ULL << g_main_core) &&
				  (g_app_opts.core_mask & ((1ULL << g_main_core) - 1)) == 0)) {
		fprintf(stderr,
			"mimo_tgt: main core %d: mimo's main reactor is the first core of the "
			"mask (-m); leave -p out or give that core\n",
			g_main_core);
		return -1;
	}
	return 0;
}

/* --- start-up -------------------------------------------------------------------------- */

bool app_init_done(void)
{
	return g_init_done;
}

void app_wait_init(struct mimo_jsonrpc_request *req)
{
	if (g_init_waiters == NULL)
		g_init_waiters = json_array();
	json_array_append_new(g_init_waiters, json_integer((json_int_t)(intptr_t)req));
}

struct start_init_ctx {
	void (*done)(void *arg, int rc);
	void *arg;
};

static void start_init_finish(void *arg, int rc)
{
	struct start_init_ctx *c = arg;
	size_t i;
	json_t *w;

	if (rc == 0) {
		g_init_done = true;
		json_array_foreach(g_init_waiters, i, w)
			mimo_jsonrpc_send_bool((void *)(intptr_t)json_integer_value(w), true);
		json_decref(g_init_waiters);
		g_init_waiters = NULL;
	}
	c->done(c->arg, rc);
	free(c);
}

void app_start_init(void (*done)(void *arg, int rc), void *arg)
{
	struct start_init_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		done(arg, -ENOMEM);
		return;
	}
	c->done = done;
	c->arg = arg;
	mimo_rpc_set_state(MIMO_RPC_RUNTIME);
	if (g_app_opts.json_config != NULL)
		app_replay_config(g_app_opts.json_config, MIMO_RPC_RUNTIME, start_init_finish, c);
	else
		start_init_finish(c, 0);
}

static void step_done(void *arg, int rc)
{
	(void)arg;
	g_step_rc = rc;
	sem_post(&g_step_done);
}

/* Emitted here, on the RPC reactor, so that no RPC served after start-up can put its
 * events ahead of this one. */
static void emit_started(void)
{
	mimo_event_emit("mimo_tgt_started", "mimo_tgt",
			json_pack("{s:i, s:s, s:s, s:s}", "pid", (int)getpid(), "name", "mimo_tgt",
				  "version", MIMO_VERSION, "rpc_socket", g_app_opts.rpc_socket));
}

static void init_done(void *arg, int rc)
{
	if (rc == 0)
		emit_started();
	step_done(arg, rc);
}

static int write_pid_file(const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

/* After the start-up pass of -c (the methods SPDK allows before framework_start_init). */
static void startup_config_done(void *arg, int rc)
{
	(void)arg;
	if (rc != 0) {
		step_done(NULL, rc);
		return;
	}
	if (g_app_opts.wait_for_rpc) {
		MIMO_INFO(COMP, "waiting for framework_start_init on %s", g_app_opts.rpc_socket);
		init_done(NULL, 0);
		return;
	}
	app_start_init(init_done, NULL);
}

static void init_on_reactor(void *arg)
{
	struct mimo_jsonrpc_opts o;
	int rc;

	(void)arg;
	mimo_jsonrpc_opts_init(&o);
	o.socket_mode = g_app_opts.rpc_socket_mode;
	/* The startup state until initialised, as SPDK: with --wait-for-rpc until
	 * framework_start_init, else only while -c's start-up methods run (they answer at once,
	 * on this reactor, so no client sees that state). */
	mimo_rpc_set_state(MIMO_RPC_STARTUP);
	rc = mimo_jsonrpc_server_listen(g_app_opts.rpc_socket, &o, &g_server);
	if (rc == -EADDRINUSE) {
		MIMO_ERR(COMP,
			 "another process serves %s (it holds %s.lock); stop it or pick "
			 "another socket with -r",
			 g_app_opts.rpc_socket, g_app_opts.rpc_socket);
		step_done(NULL, rc);
		return;
	}
	if (rc != 0) {
		MIMO_ERR(COMP, "cannot listen on %s: %s", g_app_opts.rpc_socket, strerror(-rc));
		step_done(NULL, rc);
		return;
	}
	/* The socket is ours (we hold its lock) and nothing is served before this function
	 * returns: whoever sees an answer on the socket also finds the PID file. */
	if (g_app_opts.pid_file != NULL) {
		rc = write_pid_file(g_app_opts.pid_file);
		if (rc != 0)
			MIMO_ERR(COMP, "cannot write %s: %s", g_app_opts.pid_file, strerror(-rc));
		g_pid_written = rc == 0;
	}
	/* Same reactor as the RPCs: none runs before every subsystem is up. */
	for (size_t i = 0; i < MIMO_COUNTOF(g_subsystems); i++) {
		if (g_subsystems[i].init != NULL && (rc = g_subsystems[i].init()) != 0) {
			step_done(NULL, rc);
			return;
		}
	}
	if (g_app_opts.json_config != NULL)
		app_replay_config(g_app_opts.json_config, MIMO_RPC_STARTUP, startup_config_done,
				  NULL);
	else
		startup_config_done(NULL, 0);
}

/* Stop the subsystems one after the other, last first. */
static void fini_next(void *arg)
{
	size_t left = (size_t)(uintptr_t)arg;

	if (left == 0) {
		step_done(NULL, 0);
		return;
	}
	left--;
	if (g_subsystems[left].fini != NULL)
		g_subsystems[left].fini(fini_next, (void *)(uintptr_t)left);
	else
		fini_next((void *)(uintptr_t)left);
}

static void shutdown_on_reactor(void *arg)
{
	size_t i;
	json_t *w;

	(void)arg;
	mimo_jsonrpc_server_close(g_server);
	g_server = NULL;
	json_array_foreach(g_init_waiters, i, w)
		mimo_jsonrpc_send_errno((void *)(intptr_t)json_integer_value(w), -ESHUTDOWN);
	json_decref(g_init_waiters);
	g_init_waiters = NULL;
	fini_next((void *)(uintptr_t)MIMO_COUNTOF(g_subsystems));
}

/* Run fn on reactor 0 and wait for it to call step_done (up to timeout_s). */
static int run_step(mimo_msg_fn fn, int timeout_s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_s;
	if (mimo_reactor_send_msg(mimo_reactor_get(0), fn, NULL) != 0)
		return -EAGAIN;
	while (sem_timedwait(&g_step_done, &ts) != 0) {
		if (errno != EINTR)
			return -ETIMEDOUT;
	}
	return g_step_rc;
}

void app_request_stop(void)
{
	kill(getpid(), SIGTERM);
}

/*
 * Take every file descriptor the hard limit allows (as Go programs and nginx do): a target
 * serves one descriptor per host connection, the usual soft limit of 1024 is far below what a
 * storage server needs, and mimo never uses select(). The NVMe/TCP listeners leave a quarter
 * of whatever the limit is to everything else (docs/mimo_tgt.md).
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		MIMO_WARN(COMP, "cannot raise the file descriptor limit: %s", strerror(errno));
}

/*
 * glibc raises its mmap threshold each time a large mapping is freed, up to 32 MiB: after one
 * 4 MiB RPC request, the next ones land on the heap and stay resident after they are freed.
 * A fixed threshold keeps large, short-lived buffers in mappings that go back to the system
 * at free(). 256 KiB is above every buffer the data path allocates (I/O buffers of up to
 * max_io_size, 128 KiB by default, are pooled anyway). Free memory at the heap's top goes
 * back past 1 MiB; what storms of connections leave inside it goes back through malloc_trim
 * (lib/nvmf/tcp.c).
 */
static void fix_malloc_thresholds(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* Setting the one fixes the other at its default (128 KiB): a freed 64 KiB answer next
	 * to the heap's top would then be unmapped and faulted in again on the next call. */
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

/*
 * Everything mimo_tgt serves: its RPC methods, bdev modules and event types, registered
 * before anything runs (docs/ARCHITECTURE.md, "Registration"). The order is what
 * rpc_get_methods and notify_get_types list, so it is kept as it was when these parts
 * registered themselves from constructors in link order: a client that compares the lists
 * sees no change. A new part goes where its methods should be listed.
 */
static void register_parts(void)
{
	app_rpc_register();
	/* framework_get_reactors was app_rpc's last method: its file's come where it was. */
	app_thread_rpc_register();
	app_sock_register();
	app_spdk_opts_register();
	mimo_event_register_type("mimo_tgt_started");
	mimo_event_register_type("mimo_tgt_stopped");
	mimo_register_keyring();
	mimo_register_fuse();
	mimo_register_nvmf();
	mimo_register_bdev_nvme();
	mimo_register_bdev_aio();
	mimo_register_bdev_layer();
	mimo_register_bdev_error();
	mimo_register_bdev_malloc();
	mimo_register_bdev_null();
	mimo_register_vhost();
	mimo_register_jsonrpc();
	mimo_register_events();
	mimo_register_net();
	/* Newer parts after the historical order, so that the lists above stay as they were. */
	mimo_register_scsi();
	app_log_rpc_register();
	app_cpu_lock_register();
	mimo_register_bdev_split();
	mimo_register_bdev_passthru();
	mimo_register_bdev_delay();
	mimo_register_bdev_raid();
}

/*
 * MIMO_TGT_MSG_RING_SIZE: the reactors' message rings, in messages (a test knob: the default
 * holds thousands, so the tests that must see a ring full - docs/mimo_tgt.md - ask for a few).
 */
static int msg_ring_size_from_env(uint32_t *size)
{
	const char *v = getenv("MIMO_TGT_MSG_RING_SIZE");
	unsigned long n;
	char *end;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 2 || n > (1UL << 24)) {
		fprintf(stderr, "mimo_tgt: MIMO_TGT_MSG_RING_SIZE=%s: not a number from 2 to %lu\n",
			v, 1UL << 24);
		return -EINVAL;
	}
	*size = (uint32_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	struct mimo_reactor_opts ropts;
	uint32_t msg_ring_size = 0; /* 0: the reactors' default */
	sigset_t sigs;
	siginfo_t info;
	int rc, sig;

	register_parts();
	if (parse_args(argc, argv) != 0 || msg_ring_size_from_env(&msg_ring_size) != 0)
		return 1;
	/* A mountpoint that cannot be one fails the start before anything runs (the mount
	 * itself comes once the bdevs of -c exist). */
	if (g_fuse_mount != NULL && app_fuse_check(g_fuse_mount) != 0)
		return 1;
	raise_fd_limit();
	fix_malloc_thresholds();
	/* Signals are taken synchronously by this thread alone; every thread started from
	 * here on inherits the blocked mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGQUIT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sem_init(&g_step_done, 0, 0);

	if (g_cpumask_locks) {
		uint32_t core = 0;

		if (app_cpu_locks_claim(g_app_opts.core_mask, &core) != 0) {
			fprintf(stderr,
				"mimo_tgt: unable to acquire the lock of core %u of the core mask "
				"- exiting\n",
				core);
			return 1;
		}
	}
	/* SPDK's log level: what goes to syslog (NOTICE and above, until log_set_level). */
	mimo_log_open_syslog("mimo_tgt");
	app_proc_stat_init(g_app_opts.core_mask);
	mimo_reactor_opts_init(&ropts);
	ropts.core_mask = g_app_opts.core_mask;
	ropts.poll_mode = g_app_opts.poll_mode;
	if (g_idle_spin_us >= 0)
		ropts.idle_spin_us = (uint32_t)g_idle_spin_us;
	ropts.msg_ring_size = msg_ring_size;
	rc = mimo_reactors_start(&ropts);
	if (rc != 0) {
		fprintf(stderr, "mimo_tgt: cannot start reactors: %s\n", strerror(-rc));
		app_cpu_locks_release(NULL);
		return 1;
	}
	/* Before start-up, so that a replayed configuration is already counted; a port that
	 * cannot be had fails the start, as any option that cannot be honoured. */
	if (g_metrics_addr != NULL && app_metrics_start(g_metrics_addr) != 0) {
		fprintf(stderr, "mimo_tgt: --metrics %s: cannot serve there\n", g_metrics_addr);
		mimo_reactors_stop();
		app_cpu_locks_release(NULL);
		mimo_notify_shutdown(0);
		return 1;
	}
	rc = run_step(init_on_reactor, 60);
	if (rc != 0) {
		fprintf(stderr, "mimo_tgt: start-up failed: %s\n", strerror(rc < 0 ? -rc : rc));
		if (g_server != NULL)
			run_step(shutdown_on_reactor, 10);
		app_metrics_stop();
		mimo_reactors_stop();
		app_cpu_locks_release(NULL);
		if (g_pid_written)
			unlink(g_app_opts.pid_file);
		mimo_notify_shutdown(0);
		return 1;
	}
	/* After start-up (and -c): the export shows the bdevs configured. A mount that fails
	 * fails the start, as any other option that cannot be honoured. */
	if (g_fuse_mount != NULL && app_fuse_mount(g_fuse_mount) != 0) {
		run_step(shutdown_on_reactor, 30);
		app_metrics_stop();
		mimo_reactors_stop();
		app_cpu_locks_release(NULL);
		if (g_pid_written)
			unlink(g_app_opts.pid_file);
		mimo_notify_shutdown(0);
		return 1;
	}
	MIMO_INFO(COMP, "mimo_tgt %s ready: JSON-RPC on %s, %u reactor(s)", MIMO_VERSION,
		  g_app_opts.rpc_socket, mimo_reactor_count());
	if (g_agent_socket != NULL && (rc = app_agent_start(g_agent_socket)) != 0)
		MIMO_ERR(COMP, "cannot be a plugin of the agent on %s: %s", g_agent_socket,
			 strerror(-rc));

	for (;;) {
		sig = sigwaitinfo(&sigs, &info);
		if (sig < 0)
			continue;
		if (sig == SIGHUP || sig == SIGUSR1) {
			MIMO_INFO(COMP, "signal %d ignored", sig);
			continue;
		}
		break;
	}
	MIMO_INFO(COMP, "signal %d: shutting down", sig);
	app_agent_stop();
	if (run_step(shutdown_on_reactor, 30) != 0)
		MIMO_WARN(COMP, "shutdown did not finish in time; stopping anyway");
	mimo_event_emit("mimo_tgt_stopped", "mimo_tgt",
			json_pack("{s:i, s:s, s:i}", "pid", (int)getpid(), "name", "mimo_tgt",
				  "signal", sig));
	app_metrics_stop();
	mimo_reactors_stop();
	app_cpu_locks_release(NULL);
	if (g_pid_written)
		unlink(g_app_opts.pid_file);
	/* exit() flushes the event bridge for up to its grace period (grace_ms). */
	return 0;
}
