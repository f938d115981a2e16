/*
 * mimo_agent: one per host. Plugins connect over a Unix socket (mimo's frames, and GSE's IPC
 * on --gse-socket); servers dispatch messages down through the HTTP API; messages up are made
 * durable, acknowledged, and posted to each slot's callback - or, with --nats, forwarded to
 * the gateways through JetStream. docs/agent.md has the whole story.
 */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "bodies.h"
#include "file.h"
#include "log.h"
#include "random.h"
#include "server.h"

#define COMP "agent"

static void usage(const char *prog)
{
	printf("usage: %s [options]\n\n"
	       "  --agent-id ID            this host's id (default: /etc/machine-id, else the "
	       "hostname)\n"
	       "  --socket PATH            plugins' socket, mimo frames (default "
	       "/var/run/mimo/agent.sock)\n"
	       "  --gse-socket PATH        also accept plugins built with bk-gse-sdk here\n"
	       "  --socket-mode MODE       the sockets' permission bits, octal (default 0660)\n"
	       "  --socket-group NAME      the sockets' group (default: the agent's)\n"
	       "  --http ADDR              the HTTP API (default 127.0.0.1:8089)\n"
	       "  --state-dir DIR          slots and the durable up-queue (default "
	       "/var/lib/mimo/agent)\n"
	       "  --admin-token-file PATH  created 0600 with a random token if missing\n"
	       "                           (default STATE_DIR/admin.token)\n"
	       "  --nats URL               join a NATS deployment: gateways serve the API\n"
	       "  --up-ttl-ms MS           how long a message up is retried (default 86400000)\n"
	       "  --up-max-mb MB           bound of the durable up-queue (default 1024)\n"
	       "  --down-queue N           messages queued per plugin (default 1024)\n"
	       "  --down-queue-mb MB       their bytes (default 64)\n"
	       "  --inflight N             DISPATCHes a plugin may leave unacknowledged (256)\n"
	       "  --callback-timeout-ms MS per callback attempt (default 5000)\n"
	       "  --callback-backoff-ms MS first pause after a failed callback (default 100)\n"
	       "  --check-process-name     GSE's rule: a plugin's process must bear its name\n"
	       "  --allow-link-local-callbacks  accept callback URLs at link-local and cloud\n"
	       "                           metadata addresses (169.254.0.0/16, fe80::/10, ...)\n"
	       "%s"
	       "  --metrics ADDR:PORT      serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	       "                           (IPv4, [IPv6] or :PORT for every address; off by "
	       "default)\n"
	       "  --no-sync                acknowledge without fdatasync (benchmarks only)\n"
	       "  -h, --help, --version\n\n"
	       "Logs go to stderr; MIMO_LOG=debug|info|warn|error sets the level.\n",
	       prog, fab_http_usage);
}

static int default_agent_id(char *out, size_t len)
{
	char *text = NULL;
	size_t n;

	if (mimo_file_read_all("/etc/machine-id", 256, &text, &n) == 0) {
		while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
			n--;
		text[n] = '\0';
		if (n > 0 && fab_agent_id_valid(text)) {
			snprintf(out, len, "%s", text);
			free(text);
			return 0;
		}
	}
	free(text);
	if (gethostname(out, len) != 0)
		return -errno;
	out[len - 1] = '\0';
	return fab_agent_id_valid(out) ? 0 : -EINVAL;
}

static bool parse_num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v > max)
		return false;
	*out = v;
	return true;
}

enum {
	OPT_ID = 256,
	OPT_SOCKET,
	OPT_GSE,
	OPT_MODE,
	OPT_GROUP,
	OPT_HTTP,
	OPT_STATE,
	OPT_ADMIN,
	OPT_NATS,
	OPT_UPTTL,
	OPT_UPMAX,
	OPT_DQ,
	OPT_DQMB,
	OPT_INFLIGHT,
	OPT_CBT,
	OPT_CBB,
	OPT_CHECK,
	OPT_NOSYNC,
	OPT_VERSION,
	OPT_ALLOW_LL,
	OPT_HTTP_FRONT, /* the HTTP front's options: fab_http_parse_opt */
	OPT_METRICS,
};

static int parse_args(int argc, char **argv, struct agent_opts *o, const char **metrics_addr)
{
	static const struct option opts[] = {
		{ "agent-id", required_argument, NULL, OPT_ID },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "gse-socket", required_argument, NULL, OPT_GSE },
		{ "socket-mode", required_argument, NULL, OPT_MODE },
		{ "socket-group", required_argument, NULL, OPT_GROUP },
		{ "http", required_argument, NULL, OPT_HTTP },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "admin-token-file", required_argument, NULL, OPT_ADMIN },
		{ "nats", required_argument, NULL, OPT_NATS },
		{ "up-ttl-ms", required_argument, NULL, OPT_UPTTL },
		{ "up-max-mb", required_argument, NULL, OPT_UPMAX },
		{ "down-queue", required_argument, NULL, OPT_DQ },
		{ "down-queue-mb", required_argument, NULL, OPT_DQMB },
		{ "inflight", required_argument, NULL, OPT_INFLIGHT },
		{ "callback-timeout-ms", required_argument, NULL, OPT_CBT },
		{ "callback-backoff-ms", required_argument, NULL, OPT_CBB },
		{ "check-process-name", no_argument, NULL, OPT_CHECK },
		{ "no-sync", no_argument, NULL, OPT_NOSYNC },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "allow-link-local-callbacks", no_argument, NULL, OPT_ALLOW_LL },
		{ "http-max-conns", required_argument, NULL, OPT_HTTP_FRONT },
		{ "http-max-conns-per-ip", required_argument, NULL, OPT_HTTP_FRONT },
		{ "http-header-timeout", required_argument, NULL, OPT_HTTP_FRONT },
		{ "http-idle-timeout", required_argument, NULL, OPT_HTTP_FRONT },
		{ "http-workers", required_argument, NULL, OPT_HTTP_FRONT },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ 0 },
	};
	uint64_t v;
	int c, idx;

	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		bool ok = true;

		switch (c) {
		case OPT_METRICS: {
			struct sockaddr_storage ss;
			char err[160];

			if (mimo_metrics_parse_addr(optarg, &ss, err, sizeof(err)) != 0) {
				fprintf(stderr, "mimo_agent: --metrics %s: %s\n", optarg, err);
				return -1;
			}
			*metrics_addr = optarg;
			break;
		}
		case OPT_HTTP_FRONT:
			if (fab_http_parse_opt(&o->http, opts[idx].name, optarg) != 0) {
				fprintf(stderr, "mimo_agent: invalid value '%s' for --%s\n", optarg,
					opts[idx].name);
				return -1;
			}
			break;
		case OPT_ALLOW_LL:
			o->allow_link_local_callbacks = true;
			break;
		case OPT_ID:
			o->agent_id = optarg;
			ok = fab_agent_id_valid(optarg);
			break;
		case OPT_SOCKET:
			o->socket_path = optarg;
			break;
		case OPT_GSE:
			o->gse_socket = optarg;
			break;
		case OPT_MODE: {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);

			ok = *end == '\0' && end != optarg && m <= 0777;
			o->socket_mode = (mode_t)m;
			break;
		}
		case OPT_GROUP:
			o->socket_group = optarg;
			break;
		case OPT_HTTP:
			o->http_addr = optarg;
			break;
		case OPT_STATE:
			o->state_dir = optarg;
			break;
		case OPT_ADMIN:
			o->admin_token_file = optarg;
			break;
		case OPT_NATS:
			o->nats_url = optarg;
			break;
		case OPT_UPTTL:
			ok = parse_num(optarg, FAB_MAX_TTL_MS, &v) && v > 0;
			o->up_ttl_ms = (uint32_t)v;
			break;
		case OPT_UPMAX:
			ok = parse_num(optarg, 1u << 20, &v) && v > 0;
			o->up_max_bytes = v << 20;
			break;
		case OPT_DQ:
			ok = parse_num(optarg, 1u << 24, &v) && v > 0;
			o->down_queue_max = (uint32_t)v;
			break;
		case OPT_DQMB:
			ok = parse_num(optarg, 1u << 16, &v) && v > 0;
			o->down_queue_max_bytes = v << 20;
			break;
		case OPT_INFLIGHT:
			ok = parse_num(optarg, 1u << 20, &v) && v > 0;
			o->inflight_max = (uint32_t)v;
			break;
		case OPT_CBT:
			ok = parse_num(optarg, 600000, &v) && v > 0;
			o->callback_timeout_ms = (uint32_t)v;
			break;
		case OPT_CBB:
			ok = parse_num(optarg, 600000, &v) && v > 0;
			o->callback_backoff_ms = (uint32_t)v;
			break;
		case OPT_CHECK:
			o->check_process_name = true;
			break;
		case OPT_NOSYNC:
			o->no_sync = true;
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
		case OPT_VERSION:
			printf("mimo_agent %s\n", MIMO_VERSION);
			exit(0);
		default:
			fprintf(stderr, "mimo_agent: see --help\n");
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "mimo_agent: invalid value '%s' for --%s\n", optarg,
				opts[c - OPT_ID].name);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mimo_agent: unexpected argument '%s'; see --help\n", argv[optind]);
		return -1;
	}
	return 0;
}

/*
 * glibc raises its mmap threshold each time a large mapping is freed (up to 32 MiB), and every
 * HTTP worker thread gets an arena of its own: after a burst of 1 MiB dispatches, their
 * bodies, parsed copies and queued contents stay resident in 32 arenas long after the plugin
 * received them. A fixed threshold keeps buffers of 256 KiB and more in mappings that go back
 * to the system at free(), so the memory of a drained queue comes back (as mimo_tgt does).
 */
static void fix_malloc_thresholds(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* Setting the one fixes the other at its default (128 KiB); keep 1 MiB at the top. */
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

int main(int argc, char **argv)
{
	static char id_buf[256], token_path[4096], up_dir[4096];
	struct agent a;
	struct upq_hooks hooks;
	struct upq_opts uo = { 0 };
	struct mimo_metrics_server *metrics = NULL;
	const char *metrics_addr = NULL;
	sigset_t sigs;
	int rc, sig;

	fix_malloc_thresholds();
	memset(&a, 0, sizeof(a));
	a.o = (struct agent_opts){
		.socket_path = "/var/run/mimo/agent.sock",
		.http_addr = "127.0.0.1:8089",
		.state_dir = "/var/lib/mimo/agent",
		.socket_mode = 0660,
		.up_ttl_ms = 24u * 3600 * 1000,
		.down_queue_max = 1024,
		.down_queue_max_bytes = 64ull << 20,
		.inflight_max = 256,
		.keepalive_ms = 3000,
		.callback_timeout_ms = 5000,
		.callback_backoff_ms = 100,
		.up_max_bytes = 1ull << 30,
	};
	if (parse_args(argc, argv, &a.o, &metrics_addr) != 0)
		return 2;
	if (a.o.agent_id == NULL) {
		if (default_agent_id(id_buf, sizeof(id_buf)) != 0) {
			fprintf(stderr, "mimo_agent: no usable agent id; give --agent-id\n");
			return 2;
		}
		a.o.agent_id = id_buf;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGQUIT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&a.lock, NULL);

	rc = mimo_mkdir_p(a.o.state_dir, 0700);
	if (rc != 0) {
		fprintf(stderr, "mimo_agent: cannot create %s: %s\n", a.o.state_dir, strerror(-rc));
		return 1;
	}
	if (a.o.admin_token_file == NULL) {
		snprintf(token_path, sizeof(token_path), "%s/admin.token", a.o.state_dir);
		a.o.admin_token_file = token_path;
	}
	rc = fab_admin_token_load(a.o.admin_token_file, a.api.admin_token);
	if (rc == 0) {
		if (a.o.nats_url != NULL) {
			a.slots = slots_new(NULL, NULL);
			rc = a.slots != NULL ? 0 : -ENOMEM;
		} else {
			rc = slots_open_file(&a.slots, a.o.state_dir);
		}
	}
	if (rc != 0) {
		fprintf(stderr, "mimo_agent: %s\n", strerror(-rc));
		return 1;
	}
	if (mimo_random_bytes(&a.epoch, sizeof(a.epoch)) != 0 || a.epoch == 0)
		a.epoch = (uint64_t)getpid() << 32 | (uint64_t)time(NULL);

	snprintf(up_dir, sizeof(up_dir), "%s/up", a.o.state_dir);
	uo.dir = up_dir;
	uo.max_bytes = a.o.up_max_bytes;
	uo.single_consumer = a.o.nats_url != NULL;
	uo.no_sync = a.o.no_sync;
	agent_upq_hooks(&a, &hooks);
	rc = upq_open(&a.upq, &uo, &hooks);
	if (rc != 0) {
		fprintf(stderr, "mimo_agent: cannot open the up-queue in %s: %s\n", up_dir,
			strerror(-rc));
		return 1;
	}
	a.api.slots = a.slots;
	a.api.agent_id = a.o.agent_id;
	a.api.slots_read_only = a.o.nats_url != NULL;
	a.api.allow_link_local_callbacks = a.o.allow_link_local_callbacks;
	agent_backend_init(&a, &a.api.be);

	rc = agent_io_start(&a);
	if (rc == 0 && a.o.nats_url != NULL) {
		rc = nats_agent_start(&a);
	} else if (rc == 0) {
		size_t n;
		uint64_t *pending = upq_pending_slots(a.upq, &n);

		pthread_mutex_lock(&a.lock);
		for (size_t i = 0; pending != NULL && i < n; i++)
			deliver_ensure_locked(&a, pending[i]);
		pthread_mutex_unlock(&a.lock);
		free(pending);
	}
	if (rc == 0)
		rc = fab_http_start(&a.http, a.o.http_addr, &a.o.http, &a.api);
	/* After the front: its counters are among the metrics. */
	if (rc == 0 && metrics_addr != NULL)
		rc = mimo_metrics_start(metrics_addr, agent_metrics_collect, &a, &metrics);
	if (rc != 0) {
		fprintf(stderr, "mimo_agent: start-up failed: %s\n", strerror(-rc));
		return 1;
	}
	MIMO_INFO(COMP, "mimo_agent %s ready: id %s, plugins on %s%s%s, HTTP on %s (port %u)%s%s",
		  MIMO_VERSION, a.o.agent_id, a.o.socket_path, a.o.gse_socket ? " and GSE on " : "",
		  a.o.gse_socket ? a.o.gse_socket : "", a.o.http_addr, fab_http_port(a.http),
		  a.o.nats_url ? ", NATS " : "", a.o.nats_url ? a.o.nats_url : "");

	for (;;) {
		sig = sigwaitinfo(&sigs, NULL);
		if (sig == SIGHUP)
			continue;
		if (sig > 0)
			break;
	}
	MIMO_INFO(COMP, "signal %d: shutting down", sig);
	mimo_metrics_stop(metrics);
	/* HTTP and NATS threads may be waiting for plugins: release them first. */
	agent_cancel_waiters(&a);
	fab_http_stop(a.http);
	nats_agent_stop(&a);
	agent_io_stop(&a);
	deliver_stop_all(&a);
	upq_close(a.upq);
	while (a.plugins != NULL) {
		struct plugin *p = a.plugins;

		a.plugins = p->next;
		while (p->q_head != NULL) {
			struct down_item *it = p->q_head;

			p->q_head = it->next;
			free(it->id);
			free(it->content);
			free(it);
		}
		while (p->in_head != NULL) {
			struct down_item *it = p->in_head;

			p->in_head = it->next;
			free(it->id);
			free(it->content);
			free(it);
		}
		free(p);
	}
	slots_free(a.slots);
	pthread_mutex_destroy(&a.lock);
	return 0;
}
