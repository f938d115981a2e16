/*
 * nats_bench: the NATS peer measured in the same run as the agent (bench/agent.py), with the
 * cnats client Debian ships. One JSON object with:
 *   pubsub      core publish -> subscriber, messages/s
 *   reqrep      sequential request-reply, default client options (the flusher batches)
 *   reqrep_asap the same with natsOptions_SetSendAsap (p50 / p99 in us)
 *   js_sync     JetStream publish, waiting for each PubAck (file storage)
 *   js_async    JetStream async publish, then waiting for all PubAcks
 *   js_pull     consumed with a pull consumer, each message acknowledged
 *
 *   nats_bench URL COUNT SIZE
 */
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void check(natsStatus s, const char *what)
{
	if (s != NATS_OK) {
		fprintf(stderr, "nats_bench: %s: %s\n", what, natsStatus_GetText(s));
		exit(1);
	}
}

static natsConnection *conn(const char *url, bool asap)
{
	natsOptions *o;
	natsConnection *nc;

	check(natsOptions_Create(&o), "options");
	natsOptions_SetURL(o, url);
	natsOptions_SetSendAsap(o, asap);
	check(natsConnection_Connect(&nc, o), "connect");
	natsOptions_Destroy(o);
	return nc;
}

static volatile int64_t g_count;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
	(void)nc;
	(void)sub;
	(void)c;
	__atomic_add_fetch(&g_count, 1, __ATOMIC_RELAXED);
	natsMsg_Destroy(m);
}

static void on_req(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
	(void)sub;
	(void)c;
	natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
			       natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static double pubsub(const char *url, int n, const char *data, int size)
{
	natsConnection *pub = conn(url, false), *subc = conn(url, false);
	natsSubscription *sub;
	int64_t t0;

	g_count = 0;
	check(natsConnection_Subscribe(&sub, subc, "bench.ps", on_msg, NULL), "subscribe");
	natsSubscription_SetPendingLimits(sub, -1, -1);
	natsConnection_Flush(subc);
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		check(natsConnection_Publish(pub, "bench.ps", data, size), "publish");
	natsConnection_Flush(pub);
	while (__atomic_load_n(&g_count, __ATOMIC_RELAXED) < n && now_ns() - t0 < 60000000000LL)
		usleep(100);
	{
		double r = n / ((now_ns() - t0) / 1e9);

		natsSubscription_Destroy(sub);
		natsConnection_Destroy(pub);
		natsConnection_Destroy(subc);
		return r;
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void reqrep(const char *url, int n, const char *data, int size, bool asap, double *rate,
		   double *p50, double *p99)
{
	natsConnection *srv = conn(url, asap), *cli = conn(url, asap);
	natsSubscription *sub;
	int64_t *lat = calloc((size_t)n, sizeof(int64_t)), t0;

	check(natsConnection_Subscribe(&sub, srv, "bench.rr", on_req, NULL), "subscribe");
	natsConnection_Flush(srv);
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		natsMsg *reply = NULL;
		int64_t t = now_ns();

		check(natsConnection_Request(&reply, cli, "bench.rr", data, size, 5000), "request");
		lat[i] = now_ns() - t;
		natsMsg_Destroy(reply);
	}
	*rate = n / ((now_ns() - t0) / 1e9);
	qsort(lat, (size_t)n, sizeof(int64_t), cmp64);
	*p50 = lat[n / 2] / 1e3;
	*p99 = lat[n * 99 / 100] / 1e3;
	free(lat);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(srv);
	natsConnection_Destroy(cli);
}

int main(int argc, char **argv)
{
	static const char *subjects[] = { "bench.js" };
	const char *url;
	int n, size, rr_n;
	char *data;
	double ps, rr, rr50, rr99, ra, ra50, ra99, jsync, jasync, jpull;
	natsConnection *nc;
	jsCtx *js;
	jsOptions jo;
	jsStreamConfig sc;
	jsErrCode jerr;
	natsSubscription *sub;
	int64_t t0;
	int got = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: nats_bench URL COUNT SIZE\n");
		return 2;
	}
	url = argv[1];
	n = atoi(argv[2]);
	size = atoi(argv[3]);
	data = malloc((size_t)size);
	memset(data, 'x', (size_t)size);
	rr_n = n / 20 > 20000 ? 20000 : n / 20;

	ps = pubsub(url, n, data, size);
	/* Default options: each request waits for the client's flusher (about 1 ms). */
	reqrep(url, rr_n / 10 > 2000 ? 2000 : rr_n / 10, data, size, false, &rr, &rr50, &rr99);
	reqrep(url, rr_n, data, size, true, &ra, &ra50, &ra99);

	nc = conn(url, false);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 4096;
	check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
	js_DeleteStream(js, "BENCH", NULL, NULL);
	jsStreamConfig_Init(&sc);
	sc.Name = "BENCH";
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	check(js_AddStream(NULL, js, &sc, NULL, &jerr), "add stream");
	t0 = now_ns();
	for (int i = 0; i < n / 10; i++)
		check(js_Publish(NULL, js, "bench.js", data, size, NULL, &jerr), "js publish");
	jsync = (n / 10) / ((now_ns() - t0) / 1e9);
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		check(js_PublishAsync(js, "bench.js", data, size, NULL), "js publish async");
	check(js_PublishAsyncComplete(js, NULL), "async complete");
	jasync = n / ((now_ns() - t0) / 1e9);
	check(js_PullSubscribe(&sub, js, "bench.js", "bench-pull", NULL, NULL, &jerr), "pull");
	t0 = now_ns();
	while (got < n + n / 10) {
		natsMsgList list = { 0 };

		if (natsSubscription_Fetch(&list, sub, 256, 5000, &jerr) != NATS_OK)
			break;
		for (int i = 0; i < list.Count; i++)
			natsMsg_Ack(list.Msgs[i], NULL);
		got += list.Count;
		natsMsgList_Destroy(&list);
	}
	jpull = got / ((now_ns() - t0) / 1e9);
	natsSubscription_Destroy(sub);
	js_DeleteStream(js, "BENCH", NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);

	printf("{\"size\":%d,\"pubsub_per_s\":%.0f,\"reqrep_default_per_s\":%.0f,"
	       "\"reqrep_default_p50_us\":%.1f,\"reqrep_asap_per_s\":%.0f,\"reqrep_asap_p50_us\":%."
	       "1f,"
	       "\"reqrep_asap_p99_us\":%.1f,\"js_sync_per_s\":%.0f,\"js_async_per_s\":%.0f,"
	       "\"js_pull_ack_per_s\":%.0f}\n",
	       size, ps, rr, rr50, ra, ra50, ra99, jsync, jasync, jpull);
	(void)rr99;
	free(data);
	nats_Close();
	return 0;
}
