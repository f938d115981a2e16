/*
 * mimo_perf: spdk_nvme_perf's load generator for NVMe-oF/TCP, with its flags and its report
 * (plus p50/p99/p99.9), JSON output (--json) and data verification (--verify).
 *
 * The main thread connects the controllers, hands namespaces to one pinned worker per core
 * (as spdk_nvme_perf does), keeps the admin queues alive while they run, and reports.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth_opts.h"
#include "mimo/reactor.h"
#include "perf.h"
#include "random.h"

struct perf_opts g_opts = {
	.queue_depth = 0,
	.io_size = 0,
	.rw_mix_read = -1,
	.time_s = 0,
	.core_mask = 0x1,
	.qpairs_per_ns = 1,
	.keep_alive_ms = 10000,
};
_Atomic bool g_stop;
struct worker_list g_workers = TAILQ_HEAD_INITIALIZER(g_workers);

static struct perf_ctrlr g_ctrlrs[MAX_TRIDS];
/* --dhchap-*: what the controllers' options take for authentication. */
static struct mimo_nvme_ctrlr_opts g_auth;
static uint32_t g_num_ctrlrs;
static struct ns_list g_namespaces = TAILQ_HEAD_INITIALIZER(g_namespaces);
static uint32_t g_num_namespaces;

static void usage(const char *prog)
{
	printf("usage: %s -r TRID -q depth -o io_size -w workload -t seconds [options]\n\n"
	       "  -r, --transport-id TRID   NVMe-oF/TCP target, e.g. 'trtype:tcp adrfam:IPv4\n"
	       "                            traddr:127.0.0.1 trsvcid:4420 subnqn:nqn...'\n"
	       "                            ('ns:N' limits it to one namespace; repeatable)\n"
	       "  -q, --io-depth N          I/Os outstanding per namespace (per core)\n"
	       "  -o, --io-size BYTES       size of each I/O\n"
	       "  -w, --io-pattern P        read, write, randread, randwrite, rw, randrw\n"
	       "  -M, --rwmixread PCT       reads in rw/randrw, percent (default 50)\n"
	       "  -t, --time SECONDS        run time\n"
	       "  -c, --core-mask MASK      worker cores, e.g. 0x3 or [0,2] (default 0x1)\n"
	       "  -P, --num-qpairs N        I/O queue pairs per namespace (default 1)\n"
	       "  -H, --enable-tcp-hdgst    header digest\n"
	       "  -I, --enable-tcp-ddgst    data digest\n"
	       "  -k, --keepalive MS        keep alive timeout (default 10000; 0: none)\n"
	       "  -L, --enable-sw-latency-tracking  percentiles; -LL adds the histogram\n"
	       "      --disable-sq-flow-control     no SQ head updates (C2HData SUCCESS)\n"
	       "      --json                one JSON object instead of the text report\n"
	       "      --verify              write a pattern, read it back, compare\n"
	       "      --seed N              the pattern's seed (default: random)\n" AUTH_USAGE
	       "  -h, --help                this text\n",
	       prog);
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = true;
}

enum {
	OPT_JSON = 256,
	OPT_VERIFY,
	OPT_SEED,
	OPT_NO_SQFC,
};

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || end == s || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "transport-id", required_argument, NULL, 'r' },
		{ "io-depth", required_argument, NULL, 'q' },
		{ "io-size", required_argument, NULL, 'o' },
		{ "io-pattern", required_argument, NULL, 'w' },
		{ "rwmixread", required_argument, NULL, 'M' },
		{ "time", required_argument, NULL, 't' },
		{ "core-mask", required_argument, NULL, 'c' },
		{ "num-qpairs", required_argument, NULL, 'P' },
		{ "enable-tcp-hdgst", no_argument, NULL, 'H' },
		{ "enable-tcp-ddgst", no_argument, NULL, 'I' },
		{ "keepalive", required_argument, NULL, 'k' },
		{ "enable-sw-latency-tracking", no_argument, NULL, 'L' },
		{ "disable-sq-flow-control", no_argument, NULL, OPT_NO_SQFC },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "help", no_argument, NULL, 'h' },
		AUTH_LONG_OPTIONS,
		{ 0 },
	};
	uint32_t v;
	int c;

	while ((c = getopt_long(argc, argv, "r:q:o:w:M:t:c:P:k:HILh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (g_num_ctrlrs == MAX_TRIDS ||
			    mimo_nvme_trid_parse(&g_ctrlrs[g_num_ctrlrs].trid, optarg) != 0) {
				fprintf(stderr, "mimo_perf: invalid transport ID '%s'\n", optarg);
				return -1;
			}
			g_num_ctrlrs++;
			break;
		case 'q':
		case 'o':
		case 't':
		case 'P':
		case 'M':
		case 'k':
			if (parse_u32(optarg, &v) != 0) {
				fprintf(stderr, "mimo_perf: invalid -%c value '%s'\n", c, optarg);
				return -1;
			}
			if (c == 'q')
				g_opts.queue_depth = v;
			else if (c == 'o')
				g_opts.io_size = v;
			else if (c == 't')
				g_opts.time_s = v;
			else if (c == 'P')
				g_opts.qpairs_per_ns = v;
			else if (c == 'k')
				g_opts.keep_alive_ms = v;
			else
				g_opts.rw_mix_read = (int)v;
			break;
		case 'w':
			g_opts.workload = optarg;
			break;
		case 'c':
			if (mimo_reactor_parse_cpumask(optarg, &g_opts.core_mask) != 0 ||
			    g_opts.core_mask == 0) {
				fprintf(stderr, "mimo_perf: invalid core mask '%s'\n", optarg);
				return -1;
			}
			break;
		case 'H':
			g_opts.hdgst = true;
			break;
		case 'I':
			g_opts.ddgst = true;
			break;
		case 'L':
			g_opts.latency_level++;
			break;
		case OPT_NO_SQFC:
			g_opts.disable_sqfc = true;
			break;
		case OPT_JSON:
			g_opts.json = true;
			break;
		case OPT_VERIFY:
			g_opts.verify = true;
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			g_opts.seed = strtoull(optarg, &end, 0);
			if (errno != 0 || *end != '\0' || end == optarg) {
				fprintf(stderr, "mimo_perf: invalid seed '%s'\n", optarg);
				return -1;
			}
			break;
		}
		case 'h':
			usage(argv[0]);
			exit(0);
		default: {
			int rc = auth_opt(c, optarg, &g_auth, "mimo_perf");

			if (rc < 0)
				return -1;
			if (rc == 0)
				break;
			fprintf(stderr, "mimo_perf: see --help\n");
			return -1;
		}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mimo_perf: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (g_num_ctrlrs == 0 || g_opts.queue_depth == 0 || g_opts.io_size == 0 ||
	    g_opts.workload == NULL || g_opts.time_s == 0) {
		fprintf(stderr, "mimo_perf: -r, -q, -o, -w and -t are required; see --help\n");
		return -1;
	}
	if (g_opts.qpairs_per_ns == 0 || g_opts.qpairs_per_ns > g_opts.queue_depth) {
		fprintf(stderr, "mimo_perf: -P must be between 1 and the queue depth\n");
		return -1;
	}
	if (g_opts.rw_mix_read > 100) {
		fprintf(stderr, "mimo_perf: -M must be 0..100\n");
		return -1;
	}
	if (strcmp(g_opts.workload, "read") == 0 || strcmp(g_opts.workload, "randread") == 0) {
		g_opts.rw_mix_read = 100;
	} else if (strcmp(g_opts.workload, "write") == 0 ||
		   strcmp(g_opts.workload, "randwrite") == 0) {
		g_opts.rw_mix_read = 0;
	} else if (strcmp(g_opts.workload, "rw") == 0 || strcmp(g_opts.workload, "randrw") == 0) {
		if (g_opts.rw_mix_read < 0)
			g_opts.rw_mix_read = 50;
	} else {
		fprintf(stderr, "mimo_perf: unknown workload '%s'\n", g_opts.workload);
		return -1;
	}
	g_opts.is_random = strncmp(g_opts.workload, "rand", 4) == 0;
	if (g_opts.verify && g_opts.rw_mix_read == 100) {
		/* --verify writes the pattern it reads back: a read-only run must stay read-only,
		 * so it runs unverified and says so (the JSON report has "verify": false). */
		fprintf(stderr,
			"mimo_perf: --verify needs writes; -w %s is read-only: "
			"running without verification\n",
			g_opts.workload);
		g_opts.verify = false;
	}
	if (g_opts.seed == 0)
		(void)mimo_random_bytes(&g_opts.seed, sizeof(g_opts.seed));
	return 0;
}

static bool same_id(const uint8_t *a, const uint8_t *b)
{
	static const uint8_t zero[16];

	return a != NULL && b != NULL && memcmp(a, zero, 16) != 0 && memcmp(a, b, 16) == 0;
}

/* An entry already registered for the same namespace: same address, subsystem and nsid, or
 * the same NGUID or UUID (another path to it). */
static struct perf_ns *find_same(struct perf_ns *e)
{
	const struct mimo_nvme_trid *t = &e->pc->trid;
	struct perf_ns *o;

	TAILQ_FOREACH(o, &g_namespaces, link)
	{
		const struct mimo_nvme_trid *u = &o->pc->trid;

		if ((strcmp(t->traddr, u->traddr) == 0 && strcmp(t->trsvcid, u->trsvcid) == 0 &&
		     strcmp(t->subnqn, u->subnqn) == 0 &&
		     mimo_nvme_ns_get_id(e->ns) == mimo_nvme_ns_get_id(o->ns)) ||
		    same_id(mimo_nvme_ns_get_nguid(e->ns), mimo_nvme_ns_get_nguid(o->ns)) ||
		    same_id(mimo_nvme_ns_get_uuid(e->ns), mimo_nvme_ns_get_uuid(o->ns)))
			return o->space;
	}
	return e;
}

static int register_ns(struct perf_ctrlr *pc, uint32_t nsid)
{
	struct mimo_nvme_ns *ns = mimo_nvme_ctrlr_get_ns(pc->ctrlr, nsid);
	uint32_t bs, max = mimo_nvme_ctrlr_get_max_xfer_size(pc->ctrlr);
	struct perf_ns *e;

	if (ns == NULL) {
		fprintf(stderr, "mimo_perf: namespace %u of %s is not active\n", nsid,
			pc->trid.subnqn);
		return -ENOENT;
	}
	bs = mimo_nvme_ns_get_sector_size(ns);
	if (g_opts.io_size % bs != 0) {
		printf("WARNING: IO size %u (-o) is not a multiple of nsid %u sector size %u."
		       " Removing this ns from test\n",
		       g_opts.io_size, nsid, bs);
		return 0;
	}
	if (g_opts.io_size > max || g_opts.io_size / bs > 65536) {
		printf("WARNING: IO size %u (-o) is larger than what nsid %u takes in one command."
		       " Removing this ns from test\n",
		       g_opts.io_size, nsid);
		return 0;
	}
	if (mimo_nvme_ns_get_num_sectors(ns) * bs < g_opts.io_size) {
		printf("WARNING: nsid %u is smaller than one I/O. Removing this ns from test\n",
		       nsid);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->pc = pc;
	e->ns = ns;
	e->block_size = bs;
	e->io_blocks = g_opts.io_size / bs;
	e->size_in_ios = mimo_nvme_ns_get_num_sectors(ns) * bs / g_opts.io_size;
	snprintf(e->name, sizeof(e->name), "TCP (addr:%s subnqn:%s) NSID %u", pc->trid.traddr,
		 pc->trid.subnqn, nsid);
	e->space = find_same(e);
	TAILQ_INSERT_TAIL(&g_namespaces, e, link);
	g_num_namespaces++;
	return 0;
}

static int connect_all(void)
{
	struct mimo_nvme_ctrlr_opts o;

	mimo_nvme_ctrlr_opts_init(&o);
	o.dhchap_key = g_auth.dhchap_key;
	o.dhchap_ctrlr_key = g_auth.dhchap_ctrlr_key;
	o.dhchap_digests = g_auth.dhchap_digests;
	o.dhchap_dhgroups = g_auth.dhchap_dhgroups;
	o.tls_psk = g_auth.tls_psk;
	o.header_digest = g_opts.hdgst;
	o.data_digest = g_opts.ddgst;
	o.disable_sq_flow_control = g_opts.disable_sqfc;
	o.keep_alive_timeout_ms = g_opts.keep_alive_ms;
	/* Queue entries: the depth each queue pair carries, plus the slot never used. */
	o.io_queue_size =
		(g_opts.queue_depth + g_opts.qpairs_per_ns - 1) / g_opts.qpairs_per_ns + 1;
	if (o.io_queue_size < 128)
		o.io_queue_size = 128;
	if (!g_opts.json)
		printf("Initializing NVMe Controllers\n");
	/* Every controller connects at once; those already up are kept alive meanwhile. */
	for (uint32_t i = 0; i < g_num_ctrlrs; i++) {
		struct perf_ctrlr *pc = &g_ctrlrs[i];
		int rc = mimo_nvme_connect_async(&pc->trid, &o, &pc->connect);

		if (rc != 0) {
			fprintf(stderr, "mimo_perf: cannot connect to %s:%s (%s): %s\n",
				pc->trid.traddr, pc->trid.trsvcid, pc->trid.subnqn, strerror(-rc));
			return rc;
		}
	}
	for (uint32_t left = g_num_ctrlrs; left != 0;) {
		struct timespec ts = { 0, 100 * 1000 };

		for (uint32_t i = 0; i < g_num_ctrlrs; i++) {
			struct perf_ctrlr *pc = &g_ctrlrs[i];
			int rc;

			if (pc->connect == NULL) {
				if (pc->ctrlr != NULL)
					(void)mimo_nvme_ctrlr_process_admin_completions(pc->ctrlr);
				continue;
			}
			rc = mimo_nvme_connect_poll(pc->connect, &pc->ctrlr);
			if (rc == -EAGAIN)
				continue;
			pc->connect = NULL; /* freed by poll */
			left--;
			if (rc != 0) {
				fprintf(stderr, "mimo_perf: cannot connect to %s:%s (%s): %s\n",
					pc->trid.traddr, pc->trid.trsvcid, pc->trid.subnqn,
					strerror(-rc));
				return rc;
			}
		}
		if (left != 0)
			nanosleep(&ts, NULL);
	}
	/* The controllers keep their copies of the secrets; these go. */
	explicit_bzero(&o, sizeof(o));
	explicit_bzero(&g_auth, sizeof(g_auth));
	for (uint32_t i = 0; i < g_num_ctrlrs; i++) {
		struct perf_ctrlr *pc = &g_ctrlrs[i];
		int rc = 0;

		if (!g_opts.json)
			printf("Attached to NVMe over Fabrics controller at %s:%s: %s\n",
			       pc->trid.traddr, pc->trid.trsvcid, pc->trid.subnqn);
		if (pc->trid.nsid != 0) {
			rc = register_ns(pc, pc->trid.nsid);
		} else {
			for (uint32_t id = mimo_nvme_ctrlr_get_first_active_ns(pc->ctrlr);
			     id != 0 && rc == 0;
			     id = mimo_nvme_ctrlr_get_next_active_ns(pc->ctrlr, id))
				rc = register_ns(pc, id);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* spdk_nvme_perf's association: namespaces and workers paired round robin, as many pairs
 * as the larger of the two counts. */
static int associate(void)
{
	struct worker *w = TAILQ_FIRST(&g_workers);
	struct perf_ns *e = TAILQ_FIRST(&g_namespaces);
	uint32_t count = 0, workers = 0;

	TAILQ_FOREACH(w, &g_workers, link)
	workers++;
	w = TAILQ_FIRST(&g_workers);
	count = g_num_namespaces > workers ? g_num_namespaces : workers;
	for (uint32_t i = 0; i < count; i++) {
		struct ns_worker *nw = calloc(1, sizeof(*nw));

		if (nw == NULL)
			return -ENOMEM;
		nw->entry = e;
		nw->worker = w;
		nw->num_qpairs = g_opts.qpairs_per_ns;
		nw->num_tasks = g_opts.queue_depth;
		nw->slot_base = e->space->total_slots;
		e->space->total_slots += nw->num_tasks;
		nw->rng = g_opts.seed ^ (0x9e3779b97f4a7c15ull * (i + 1));
		if (nw->rng == 0)
			nw->rng = 1;
		nw->stats.min_ticks = UINT64_MAX;
		histogram_init(&nw->hist);
		STAILQ_INIT(&nw->pending);
		TAILQ_INSERT_TAIL(&w->ns_workers, nw, link);
		if (!g_opts.json)
			printf("Associating %s with lcore %u\n", e->name, w->core);
		w = TAILQ_NEXT(w, link) != NULL ? TAILQ_NEXT(w, link) : TAILQ_FIRST(&g_workers);
		e = TAILQ_NEXT(e, link) != NULL ? TAILQ_NEXT(e, link) : TAILQ_FIRST(&g_namespaces);
	}
	return 0;
}

/* --verify gives every slot I/O units of its own: each namespace needs one per slot. */
static int check_verify_room(void)
{
	struct perf_ns *e;

	TAILQ_FOREACH(e, &g_namespaces, link)
	{
		if (e->space == e && e->total_slots > e->size_in_ios) {
			fprintf(stderr,
				"mimo_perf: %s holds %" PRIu64
				" I/Os of %u bytes, fewer than the %u "
				"that --verify keeps in flight\n",
				e->name, e->size_in_ios, g_opts.io_size, e->total_slots);
			return -ENOSPC;
		}
	}
	return 0;
}

static void cleanup(void)
{
	struct worker *w;
	struct perf_ns *e;

	while ((w = TAILQ_FIRST(&g_workers)) != NULL) {
		struct ns_worker *nw;

		while ((nw = TAILQ_FIRST(&w->ns_workers)) != NULL) {
			TAILQ_REMOVE(&w->ns_workers, nw, link);
			free(nw);
		}
		TAILQ_REMOVE(&g_workers, w, link);
		free(w);
	}
	while ((e = TAILQ_FIRST(&g_namespaces)) != NULL) {
		TAILQ_REMOVE(&g_namespaces, e, link);
		free(e);
	}
	for (uint32_t i = 0; i < g_num_ctrlrs; i++) {
		if (g_ctrlrs[i].connect != NULL)
			mimo_nvme_connect_abort(g_ctrlrs[i].connect);
		if (g_ctrlrs[i].ctrlr != NULL)
			(void)mimo_nvme_detach(g_ctrlrs[i].ctrlr);
	}
}

/* While the workers run: keep-alive and asynchronous events on every admin queue. */
static void tend_admin_queues(void)
{
	for (uint32_t i = 0; i < g_num_ctrlrs; i++) {
		struct perf_ctrlr *pc = &g_ctrlrs[i];

		if (mimo_nvme_ctrlr_process_admin_completions(pc->ctrlr) < 0 && !pc->lost) {
			/* Its I/O queues fail with it: the workers on it stop with I/O errors. */
			pc->lost = true;
			fprintf(stderr, "mimo_perf: lost the controller at %s:%s (%s)\n",
				pc->trid.traddr, pc->trid.trsvcid, pc->trid.subnqn);
		}
	}
}

static bool workers_running(void)
{
	struct worker *w;

	TAILQ_FOREACH(w, &g_workers, link)
	{
		if (w->joined)
			continue;
		if (pthread_tryjoin_np(w->thread, NULL) == EBUSY)
			return true;
		w->joined = true;
	}
	return false;
}

int main(int argc, char **argv)
{
	struct worker *w;
	struct stats total;
	uint32_t nworkers = 0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (parse_args(argc, argv) != 0)
		return 1;
	for (uint32_t core = 0; core < 64; core++) {
		if (!(g_opts.core_mask & (1ull << core)))
			continue;
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			return 1;
		w->core = core;
		TAILQ_INIT(&w->ns_workers);
		TAILQ_INSERT_TAIL(&g_workers, w, link);
		nworkers++;
	}
	rc = connect_all();
	if (rc == 0 && g_num_namespaces == 0) {
		fprintf(stderr, "mimo_perf: no namespace to test\n");
		rc = -ENOENT;
	}
	if (rc == 0)
		rc = associate();
	if (rc == 0 && g_opts.verify)
		rc = check_verify_room();
	if (rc != 0) {
		cleanup();
		return 1;
	}
	if (!g_opts.json)
		printf("Initialization complete. Launching workers.\n");
	workers_init(nworkers);
	TAILQ_FOREACH(w, &g_workers, link)
	{
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			fprintf(stderr, "mimo_perf: cannot start a worker\n");
			exit(1); /* the barrier cannot be released: nothing to clean up safely */
		}
	}
	/* Queue pairs connect in the workers; keep-alives go on meanwhile. */
	while (!workers_all_ready()) {
		struct timespec ts = { 0, 1000 * 1000 };

		tend_admin_queues();
		nanosleep(&ts, NULL);
	}
	workers_ready_wait();
	while (workers_running()) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		tend_admin_queues();
		nanosleep(&ts, NULL);
	}
	rc = 0;
	TAILQ_FOREACH(w, &g_workers, link)
	{
		if (w->rc != 0)
			rc = w->rc;
	}
	if (rc == 0) {
		if (g_opts.json)
			report_json();
		else
			report_text();
	}
	report_totals(&total);
	cleanup();
	if (rc != 0)
		return 1;
	if (total.io_errors != 0 || total.verify_errors != 0) {
		fprintf(stderr,
			"mimo_perf: %" PRIu64 " I/O error(s), %" PRIu64 " data mismatch(es)\n",
			total.io_errors, total.verify_errors);
		return 2;
	}
	return 0;
}
