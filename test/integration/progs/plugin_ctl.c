/*
 * A plugin built on libmimo_plugin that the integration tests drive: it reports what happens
 * as JSON lines on stdout and takes commands, one per line, on stdin.
 *
 *   plugin_ctl --socket PATH --name NAME [--echo] [--launch-ms MS] [--retrieve-cb]
 *
 * Events:   {"event":"launched","rc":0,"agent_id":...,"slot_id":...}
 *           {"event":"message","id":...,"content_b64":...}
 *           {"event":"notify","code":N,"key":...,"offset":N,"size":N}
 *           {"event":"flushed","rc":0,"sent":N} ...
 * Commands: send ID TEXT | sendn PREFIX COUNT SIZE | flush MS | cache KEY | stats | info | quit
 * With --echo every message is sent back up with the same id (request-reply's other half).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimo/plugin.h"

static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;
static struct mimo_plugin *g_p;
static bool g_echo;

static void b64(const uint8_t *in, size_t len, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);

		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

/* Message ids in tests are plain ASCII without quotes or backslashes. */
static void on_message(void *arg, const char *id, const void *content, size_t len)
{
	char *enc = malloc(len / 3 * 4 + 8);

	(void)arg;
	b64(content, len, enc);
	pthread_mutex_lock(&g_out);
	printf("{\"event\":\"message\",\"id\":\"%s\",\"content_b64\":\"%s\"}\n", id, enc);
	fflush(stdout);
	pthread_mutex_unlock(&g_out);
	free(enc);
	if (g_echo)
		mimo_plugin_send(g_p, id, content, len);
}

static void on_notify(void *arg, int code, const char *key, uint64_t offset, uint64_t size)
{
	(void)arg;
	pthread_mutex_lock(&g_out);
	printf("{\"event\":\"notify\",\"code\":%d,\"key\":\"%s\",\"offset\":%" PRIu64
	       ",\"size\":%" PRIu64 "}\n",
	       code, key != NULL ? key : "", offset, size);
	fflush(stdout);
	pthread_mutex_unlock(&g_out);
}

/* With --retrieve-cb: entries are the key repeated, 'size' bytes from offset. */
static long on_retrieve(void *arg, const char *key, uint64_t offset, void *buf, uint32_t size)
{
	size_t klen = strlen(key);

	(void)arg;
	if (strcmp(key, "missing") == 0)
		return -ENOENT;
	for (uint32_t i = 0; i < size; i++)
		((char *)buf)[i] = key[(offset + i) % klen];
	return size;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&g_out);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&g_out);
}

int main(int argc, char **argv)
{
	struct mimo_plugin_opts o;
	struct mimo_plugin_agent_info info;
	const char *sock = NULL, *name = NULL;
	uint32_t launch_ms = 10000;
	bool retrieve_cb = false;
	char line[70000];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--launch-ms") == 0 && i + 1 < argc)
			launch_ms = (uint32_t)atoi(argv[++i]);
		else if (strcmp(argv[i], "--echo") == 0)
			g_echo = true;
		else if (strcmp(argv[i], "--retrieve-cb") == 0)
			retrieve_cb = true;
		else {
			fprintf(stderr, "usage: %s --socket PATH --name NAME [--echo]\n", argv[0]);
			return 2;
		}
	}
	mimo_plugin_opts_init(&o);
	o.name = name;
	o.version = "1.0";
	o.socket_path = sock;
	o.recv_cb = on_message;
	o.notify_cb = on_notify;
	o.retrieve_cb = retrieve_cb ? on_retrieve : NULL;
	o.reconnect_min_ms = 50;
	o.reconnect_max_ms = 500;
	rc = mimo_plugin_create(&o, &g_p);
	if (rc != 0) {
		fprintf(stderr, "mimo_plugin_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = mimo_plugin_launch(g_p, launch_ms);
	if (mimo_plugin_agent_info(g_p, &info) == 0)
		say("{\"event\":\"launched\",\"rc\":%d,\"agent_id\":\"%s\",\"slot_id\":%" PRIu64
		    "}",
		    rc, info.agent_id, info.slot_id);
	else
		say("{\"event\":\"launched\",\"rc\":%d}", rc);

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char cmd[16] = "", a1[512] = "", a2[65536] = "";
		int n;

		line[strcspn(line, "\n")] = '\0';
		n = sscanf(line, "%15s %511s %65535[^\n]", cmd, a1, a2);
		if (n < 1)
			continue;
		if (strcmp(cmd, "send") == 0) {
			rc = mimo_plugin_send(g_p, a1, a2, strlen(a2));
			say("{\"event\":\"send\",\"rc\":%d}", rc);
		} else if (strcmp(cmd, "sendn") == 0) {
			/* sendn PREFIX "COUNT SIZE": ids PREFIX-0.. with SIZE bytes each */
			unsigned count = 0, size = 0, ok = 0;
			char id[600], *data;

			sscanf(a2, "%u %u", &count, &size);
			data = malloc(size + 1);
			for (unsigned i = 0; i < count; i++) {
				snprintf(id, sizeof(id), "%s-%u", a1, i);
				memset(data, 'a' + (int)(i % 26), size);
				if (mimo_plugin_send_timeout(g_p, id, data, size, 30000) == 0)
					ok++;
			}
			free(data);
			say("{\"event\":\"sendn\",\"queued\":%u}", ok);
		} else if (strcmp(cmd, "flush") == 0) {
			struct mimo_plugin_stats st;

			rc = mimo_plugin_flush(g_p, (uint32_t)atoi(a1));
			mimo_plugin_get_stats(g_p, &st);
			say("{\"event\":\"flushed\",\"rc\":%d,\"sent\":%" PRIu64
			    ",\"queued\":%" PRIu64 "}",
			    rc, st.sent, st.queued);
		} else if (strcmp(cmd, "cache") == 0) {
			static char buf[1 << 20];
			char *enc = malloc(sizeof(buf) / 3 * 4 + 8);
			uint64_t total = 0;
			long r = mimo_plugin_cache_read(g_p, a1, 0, buf, sizeof(buf), &total);

			b64((uint8_t *)buf, r > 0 ? (size_t)r : 0, enc);
			say("{\"event\":\"cache\",\"rc\":%ld,\"total\":%" PRIu64
			    ",\"content_b64\":\"%s\"}",
			    r < 0 ? r : 0, total, enc);
			free(enc);
		} else if (strcmp(cmd, "stats") == 0) {
			struct mimo_plugin_stats st;

			mimo_plugin_get_stats(g_p, &st);
			say("{\"event\":\"stats\",\"sent\":%" PRIu64 ",\"resent\":%" PRIu64
			    ",\"received\":%" PRIu64 ",\"duplicates\":%" PRIu64
			    ",\"connects\":%" PRIu64 ",\"queued\":%" PRIu64 ",\"rejected\":%" PRIu64
			    "}",
			    st.sent, st.resent, st.received, st.duplicates, st.connects, st.queued,
			    st.rejected);
		} else if (strcmp(cmd, "info") == 0) {
			rc = mimo_plugin_agent_info(g_p, &info);
			say("{\"event\":\"info\",\"rc\":%d,\"agent_id\":\"%s\",\"connected\":%s,"
			    "\"epoch\":\"%" PRIx64 "\"}",
			    rc, rc == 0 ? info.agent_id : "",
			    rc == 0 && info.connected ? "true" : "false", rc == 0 ? info.epoch : 0);
		} else if (strcmp(cmd, "quit") == 0) {
			break;
		}
	}
	mimo_plugin_destroy(g_p);
	say("{\"event\":\"bye\"}");
	return 0;
}
