/*
 * agent_bench: the plugin side of bench/agent.py. Prints one JSON object.
 *
 *   agent_bench up SOCK NAME COUNT SIZE
 *	one plugin sends COUNT messages of SIZE bytes as fast as the SDK takes them; the figure
 *	is messages acknowledged by the agent per second (each ACK means durable).
 *   agent_bench latency URL SLOT TOKEN AGENT SOCK NAME COUNT
 *	dispatch one message at a time with libcurl (keep-alive) to URL/v1/dispatch and time
 *	from just before the POST to the plugin's receive callback: p50, p99, max in us.
 *   agent_bench plugins SOCK PREFIX COUNT SECONDS
 *	connect COUNT plugins named PREFIX0.. and hold them (prints once all are connected).
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mimo/plugin.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct mimo_plugin *make(const char *sock, const char *name, mimo_plugin_recv_fn cb)
{
	struct mimo_plugin_opts o;
	struct mimo_plugin *p;

	mimo_plugin_opts_init(&o);
	o.name = name;
	o.version = "bench";
	o.socket_path = sock;
	o.recv_cb = cb;
	o.send_queue_max = 1 << 18;
	o.send_queue_max_bytes = 1ull << 30;
	if (mimo_plugin_create(&o, &p) != 0 || mimo_plugin_launch(p, 10000) != 0) {
		fprintf(stderr, "agent_bench: cannot connect %s to %s\n", name, sock);
		exit(1);
	}
	return p;
}

static int up(char **argv)
{
	unsigned count = (unsigned)atoi(argv[3]), size = (unsigned)atoi(argv[4]);
	struct mimo_plugin *p = make(argv[1], argv[2], NULL);
	char *data = malloc(size), id[32];
	struct mimo_plugin_stats st;
	int64_t t0, t1;

	memset(data, 'x', size);
	t0 = now_ns();
	for (unsigned i = 0; i < count; i++) {
		snprintf(id, sizeof(id), "b-%u", i);
		if (mimo_plugin_send_timeout(p, id, data, size, 60000) != 0) {
			fprintf(stderr, "agent_bench: send %u failed\n", i);
			return 1;
		}
	}
	if (mimo_plugin_flush(p, 300000) != 0) {
		fprintf(stderr, "agent_bench: not all acknowledged\n");
		return 1;
	}
	t1 = now_ns();
	mimo_plugin_get_stats(p, &st);
	printf("{\"messages\":%u,\"bytes\":%u,\"seconds\":%.3f,\"acked_per_s\":%.0f,"
	       "\"acked\":%" PRIu64 "}\n",
	       count, size, (t1 - t0) / 1e9, count / ((t1 - t0) / 1e9), st.sent);
	mimo_plugin_destroy(p);
	free(data);
	return 0;
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int64_t g_recv_ns;
static unsigned g_recv_n;

static void on_recv(void *arg, const char *id, const void *content, size_t len)
{
	int64_t t = now_ns();

	(void)arg;
	(void)id;
	(void)content;
	(void)len;
	pthread_mutex_lock(&g_mu);
	g_recv_ns = t;
	g_recv_n++;
	pthread_cond_signal(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int latency(char **argv)
{
	const char *url = argv[1], *slot = argv[2], *token = argv[3], *agent = argv[4];
	unsigned count = (unsigned)atoi(argv[7]);
	struct mimo_plugin *p = make(argv[5], argv[6], on_recv);
	int64_t *lat = calloc(count, sizeof(int64_t));
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char full[512], body[1024];
	CURL *c;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	snprintf(full, sizeof(full), "%s/v1/dispatch", url);
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	for (unsigned i = 0; i < count + 100; i++) {
		struct timespec ts;
		int64_t t0;
		unsigned want;

		snprintf(body, sizeof(body),
			 "{\"slot_id\":%s,\"token\":\"%s\",\"message_id\":\"l-%u\",\"agent_ids\":["
			 "\"%s\"],"
			 "\"content_base64\":\"aGVsbG8=\"}",
			 slot, token, i, agent);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		pthread_mutex_lock(&g_mu);
		want = g_recv_n + 1;
		pthread_mutex_unlock(&g_mu);
		t0 = now_ns();
		if (curl_easy_perform(c) != CURLE_OK) {
			fprintf(stderr, "agent_bench: POST failed\n");
			return 1;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		pthread_mutex_lock(&g_mu);
		while (g_recv_n < want)
			if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) != 0)
				break;
		/* The first 100 warm the connections and caches. */
		if (i >= 100)
			lat[i - 100] = g_recv_ns - t0;
		pthread_mutex_unlock(&g_mu);
	}
	qsort(lat, count, sizeof(int64_t), cmp64);
	printf("{\"dispatches\":%u,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n", count,
	       lat[count / 2] / 1e3, lat[count * 99 / 100] / 1e3, lat[count - 1] / 1e3);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	mimo_plugin_destroy(p);
	free(lat);
	return 0;
}

static int plugins(char **argv)
{
	unsigned count = (unsigned)atoi(argv[3]), secs = (unsigned)atoi(argv[4]);
	struct mimo_plugin **v = calloc(count, sizeof(*v));
	char name[64];

	for (unsigned i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "%s%u", argv[2], i);
		v[i] = make(argv[1], name, NULL);
	}
	printf("{\"connected\":%u}\n", count);
	fflush(stdout);
	sleep(secs);
	for (unsigned i = 0; i < count; i++)
		mimo_plugin_destroy(v[i]);
	free(v);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "up") == 0)
		return up(argv + 1);
	if (argc == 9 && strcmp(argv[1], "latency") == 0)
		return latency(argv + 1);
	if (argc == 6 && strcmp(argv[1], "plugins") == 0)
		return plugins(argv + 1);
	fprintf(stderr, "usage: see the top of bench/agent_bench.c\n");
	return 2;
}
