/* Test steps on reactors (reactor_steps.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "mimo/jsonrpc.h"
#include "reactor_steps.h"

sem_t g_sem;
char g_fail[256];

void wait_sem(int seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	while (sem_timedwait(&g_sem, &ts) != 0)
		assert_int_equal(errno, EINTR);
}

void run_on(uint32_t reactor, mimo_msg_fn fn, void *arg, int seconds)
{
	g_fail[0] = '\0';
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(reactor), fn, arg), 0);
	wait_sem(seconds);
	if (g_fail[0] != '\0')
		fail_msg("%s", g_fail);
}

void post(void *arg)
{
	(void)arg;
	sem_post(&g_sem);
}

static void rpc_done(void *arg, json_t *resp)
{
	(void)arg;
	CHECK(json_object_get(resp, "error") == NULL);
	json_decref(resp);
	sem_post(&g_sem);
}

static void rpc_msg(void *arg)
{
	json_t *req = arg;

	CHECK(mimo_jsonrpc_call_local(req, rpc_done, NULL) == 0);
	json_decref(req);
}

void rpc(const char *method, json_t *params)
{
	run_on(0, rpc_msg,
	       json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
			 "params", params),
	       10);
}
