/*
 * mimo_tgt as a plugin of mimo_agent (--agent-socket PATH): a message down whose content is a
 * JSON-RPC request runs on reactor 0 exactly as if it had come on the RPC socket
 * (mimo_jsonrpc_call_local), and the response goes back up with the same message id - so
 * POST /v1/request on the agent or a gateway manages every target on every host.
 *
 * The SDK's callback thread only hands the message to reactor 0; the answer is queued to the
 * SDK from the reactor (mimo_plugin_send never blocks). A notification (no "id") runs and
 * sends nothing back, as on the socket. Content that is not JSON gets JSON-RPC's parse error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent_plugin.h"
#include "app.h"
#include "log.h"
#include "mimo/jsonrpc.h"
#include "mimo/plugin.h"
#include "mimo/reactor.h"

#define COMP "app"

/* Answers are queued from reactor 0 while the main thread may be stopping the plugin: the
 * lock makes "still there?" and the send one step (mimo_plugin_send never blocks). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mimo_plugin *g_plugin;

struct agent_call {
	char *message_id;
	size_t len;
	char content[];
};

static void send_up(const char *message_id, const char *text)
{
	int rc = -ESHUTDOWN;

	pthread_mutex_lock(&g_lock);
	if (g_plugin != NULL)
		rc = mimo_plugin_send(g_plugin, message_id, text, strlen(text));
	pthread_mutex_unlock(&g_lock);
	if (rc != 0)
		MIMO_WARN(COMP, "agent: cannot send the answer to %s up: %s", message_id,
			  strerror(-rc));
}

static void on_response(void *arg, json_t *response)
{
	struct agent_call *c = arg;

	if (response != NULL) {
		char *text = json_dumps(response, JSON_COMPACT);

		if (text != NULL)
			send_up(c->message_id, text);
		free(text);
		json_decref(response);
	}
	free(c->message_id);
	free(c);
}

static void run_on_reactor(void *arg)
{
	struct agent_call *c = arg;
	json_error_t jerr;
	json_t *req = json_loadb(c->content, c->len, 0, &jerr);
	int rc;

	if (req == NULL) {
		send_up(c->message_id,
			"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
			"\"message\":\"Parse error\"}}");
		on_response(c, NULL);
		return;
	}
	rc = mimo_jsonrpc_call_local(req, on_response, c);
	json_decref(req);
	if (rc != 0) {
		MIMO_WARN(COMP, "agent: request %s not run: %s", c->message_id, strerror(-rc));
		on_response(c, NULL);
	}
}

static void on_message(void *arg, const char *message_id, const void *content, size_t len)
{
	struct agent_call *c = malloc(sizeof(*c) + len + 1);

	(void)arg;
	if (c == NULL || (c->message_id = strdup(message_id)) == NULL) {
		free(c);
		MIMO_ERR(COMP, "agent: out of memory; request %s dropped", message_id);
		return;
	}
	c->len = len;
	memcpy(c->content, content, len);
	c->content[len] = '\0';
	/* Reactor 0 owns RPC and configuration. */
	if (mimo_reactor_send_msg(mimo_reactor_get(0), run_on_reactor, c) != 0) {
		send_up(message_id, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
				    "\"message\":\"target busy\"}}");
		free(c->message_id);
		free(c);
	}
}

int app_agent_start(const char *socket_path)
{
	struct mimo_plugin_opts o;
	struct mimo_plugin *p;
	int rc;

	mimo_plugin_opts_init(&o);
	o.name = "mimo_tgt";
	o.version = MIMO_VERSION;
	o.socket_path = socket_path;
	o.recv_cb = on_message;
	rc = mimo_plugin_create(&o, &p);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&g_lock);
	g_plugin = p;
	pthread_mutex_unlock(&g_lock);
	/* Do not hold the start-up for the agent: the SDK connects (and reconnects) by itself. */
	rc = mimo_plugin_launch(p, 0);
	if (rc != 0) {
		app_agent_stop();
		return rc;
	}
	MIMO_INFO(COMP, "agent: plugin mimo_tgt connecting to %s", socket_path);
	return 0;
}

void app_agent_stop(void)
{
	struct mimo_plugin *p;

	pthread_mutex_lock(&g_lock);
	p = g_plugin;
	g_plugin = NULL;
	pthread_mutex_unlock(&g_lock);
	if (p == NULL)
		return;
	/* Answers already queued get a moment to leave. */
	mimo_plugin_flush(p, 1000);
	mimo_plugin_destroy(p);
}
