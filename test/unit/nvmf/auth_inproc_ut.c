/*
 * DH-HMAC-CHAP between mimo's initiator and mimo's target in one process: the target on
 * reactor 0 configured by RPC (keys in the keyring, hosts with keys), the initiator on the test
 * thread with its blocking calls. Every hash function with every group, both directions, on
 * the admin queue and on I/O queues; and every refusal with the errno the initiator reports.
 * (The Python host of the integration tests checks the target independently of this code.)
 */
#include <errno.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_malloc.h"
#include "keyring.h"
#include "mimo/bdev.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvme.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"

#define NQN	 "nqn.2016-06.io.mimo:auth"
#define HOST	 "nqn.2014-08.io.mimo:authhost"
#define HOST_BI	 "nqn.2014-08.io.mimo:bidirectional"
#define HOST_OFF "nqn.2014-08.io.mimo:nokey"

/* Made with Python's zlib.crc32 and base64 (nvme gen-dhchap-key's format). */
static const char KEY[] = "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
static const char CKEY[] = "DHHC-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyg"
			   "pKissLS4vMDEyMzQ1Njc4OTo7PD0+P4zODhA=:";
static const char OTHER[] =
	"DHHC-1:00:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:";

static sem_t g_sem;
static json_t *g_resp;
static struct mimo_nvmf_tgt *g_tgt;
static char g_port[33];
static char g_dir[64];

static void wait_sem(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	while (sem_timedwait(&g_sem, &ts) != 0)
		assert_int_equal(errno, EINTR);
}

static void on_reactor(mimo_msg_fn fn, void *arg)
{
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), fn, arg), 0);
	wait_sem();
}

static void rpc_cb(void *arg, json_t *resp)
{
	(void)arg;
	g_resp = resp;
	sem_post(&g_sem);
}

static void rpc_msg(void *arg)
{
	json_t *req = arg;

	assert_int_equal(mimo_jsonrpc_call_local(req, rpc_cb, NULL), 0);
	json_decref(req);
}

/* The result (the caller frees it); a failure fails the test. */
static json_t *rpc(const char *method, json_t *params)
{
	json_t *res;

	on_reactor(rpc_msg, json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method",
				      method, "params", params));
	if (json_object_get(g_resp, "error") != NULL) {
		char *s = json_dumps(g_resp, 0);

		fail_msg("%s: %s", method, s);
	}
	res = json_incref(json_object_get(g_resp, "result"));
	json_decref(g_resp);
	return res;
}

static void rpc_ok(const char *method, json_t *params)
{
	json_decref(rpc(method, params));
}

static void post(void *arg)
{
	(void)arg;
	sem_post(&g_sem);
}

static void listened(void *arg, int rc)
{
	(void)arg;
	assert_int_equal(rc, 0);
}

static void tgt_create_msg(void *arg)
{
	struct mimo_nvmf_listen_addr a = { "TCP", "IPv4", "127.0.0.1", "0" };
	struct mimo_nvmf_subsystem *s;

	(void)arg;
	assert_int_equal(mimo_nvmf_tgt_create("nvmf_tgt", NULL, &g_tgt), 0);
	assert_int_equal(mimo_nvmf_tgt_add_transport(g_tgt, "TCP", NULL), 0);
	assert_int_equal(mimo_nvmf_subsystem_create(g_tgt, NQN, NULL, &s), 0);
	assert_int_equal(mimo_nvmf_subsystem_add_ns(s, "M0", NULL), 1);
	mimo_nvmf_subsystem_add_listener(s, &a, listened, NULL);
	mimo_nvmf_subsystem_start(s, NULL, NULL);
	snprintf(g_port, sizeof(g_port), "%s", a.trsvcid);
	sem_post(&g_sem);
}

static void tgt_destroy_msg(void *arg)
{
	(void)arg;
	mimo_nvmf_tgt_destroy(g_tgt, post, NULL);
}

static void add_key(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", text);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	rpc_ok("keyring_file_add_key", json_pack("{s:s, s:s}", "name", name, "path", path));
}

static int group_setup(void **state)
{
	struct mimo_reactor_opts ro;

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/mimo-auth-ut-XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	mimo_register_keyring();
	mimo_register_nvmf();
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&ro);
	ro.core_mask = 0x3;
	assert_int_equal(mimo_reactors_start(&ro), 0);
	mimo_rpc_set_state(MIMO_RPC_RUNTIME);
	rpc_ok("bdev_malloc_create",
	       json_pack("{s:s, s:i, s:i}", "name", "M0", "num_blocks", 8192, "block_size", 512));
	on_reactor(tgt_create_msg, NULL);
	add_key("key", KEY);
	add_key("ckey", CKEY);
	rpc_ok("nvmf_subsystem_add_host",
	       json_pack("{s:s, s:s, s:s}", "nqn", NQN, "host", HOST, "dhchap_key", "key"));
	rpc_ok("nvmf_subsystem_add_host",
	       json_pack("{s:s, s:s, s:s, s:s}", "nqn", NQN, "host", HOST_BI, "dhchap_key", "key",
			 "dhchap_ctrlr_key", "ckey"));
	rpc_ok("nvmf_subsystem_add_host", json_pack("{s:s, s:s}", "nqn", NQN, "host", HOST_OFF));
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	on_reactor(tgt_destroy_msg, NULL);
	rpc_ok("bdev_malloc_delete", json_pack("{s:s}", "name", "M0"));
	rpc_ok("keyring_file_remove_key", json_pack("{s:s}", "name", "key"));
	rpc_ok("keyring_file_remove_key", json_pack("{s:s}", "name", "ckey"));
	mimo_reactors_stop();
	sem_destroy(&g_sem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Options for host with its secrets (NULL: none), offering digests and groups. */
static void opts(struct mimo_nvme_ctrlr_opts *o, const char *host, const char *key,
		 const char *ckey, uint32_t digests, uint32_t groups)
{
	mimo_nvme_ctrlr_opts_init(o);
	snprintf(o->hostnqn, sizeof(o->hostnqn), "%s", host);
	if (key != NULL)
		assert_int_equal(mimo_nvme_dhchap_key_parse(key, &o->dhchap_key), 0);
	if (ckey != NULL)
		assert_int_equal(mimo_nvme_dhchap_key_parse(ckey, &o->dhchap_ctrlr_key), 0);
	o->dhchap_digests = digests;
	o->dhchap_dhgroups = groups;
	o->num_io_queues = 4;
	o->connect_timeout_ms = 20000;
}

static int connect(const struct mimo_nvme_ctrlr_opts *o, struct mimo_nvme_ctrlr **c)
{
	struct mimo_nvme_trid t;
	char s[256];

	snprintf(s, sizeof(s), "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%s subnqn:%s",
		 g_port, NQN);
	assert_int_equal(mimo_nvme_trid_parse(&t, s), 0);
	return mimo_nvme_connect(&t, o, c);
}

struct io_wait {
	int pending;
	uint16_t status;
};

static void io_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct io_wait *w = arg;

	w->pending--;
	w->status = cpl->status & 0x7ffe;
}

static void io(struct mimo_nvme_qpair *qp, struct mimo_nvme_ns *ns, bool write, void *buf,
	       uint64_t lba)
{
	struct io_wait w = { 1, 0 };

	assert_int_equal(write ? mimo_nvme_ns_cmd_write(ns, qp, buf, lba, 1, io_cb, &w, 0)
			       : mimo_nvme_ns_cmd_read(ns, qp, buf, lba, 1, io_cb, &w, 0),
			 0);
	for (int i = 0; w.pending > 0 && i < 100000000; i++)
		assert_true(mimo_nvme_qpair_process_completions(qp, 0) >= 0);
	assert_int_equal(w.pending, 0);
	assert_int_equal(w.status, 0);
}

/* What the target says of its controller's admin queue: digest and group, or NULL. */
static bool target_agreed(const char *digest, const char *group)
{
	json_t *q = rpc("nvmf_subsystem_get_qpairs", json_pack("{s:s}", "nqn", NQN));
	size_t i;
	json_t *v;
	bool ok = json_array_size(q) > 0;

	json_array_foreach(q, i, v)
	{
		json_t *a = json_object_get(v, "auth");

		ok = ok && a != NULL &&
		     strcmp(json_string_value(json_object_get(a, "digest")), digest) == 0 &&
		     strcmp(json_string_value(json_object_get(a, "dhgroup")), group) == 0 &&
		     strcmp(json_string_value(json_object_get(v, "state")), "enabled") == 0;
	}
	json_decref(q);
	return ok;
}

static void test_every_digest_and_group_both_ways(void **state)
{
	static const char *const digests[] = { NULL, "sha256", "sha384", "sha512" };
	static const char *const groups[] = { "null",	   "ffdhe2048", "ffdhe3072",
					      "ffdhe4096", "ffdhe6144", "ffdhe8192" };
	uint8_t w[512], r[512];

	(void)state;
	for (uint32_t d = 1; d <= 3; d++) {
		for (uint32_t g = 0; g <= 5; g++) {
			struct mimo_nvme_ctrlr_opts o;
			struct mimo_nvme_ctrlr *c;
			struct mimo_nvme_qpair *qp;
			bool bi = (d + g) % 2 == 0;

			opts(&o, bi ? HOST_BI : HOST, KEY, bi ? CKEY : NULL, 1u << d, 1u << g);
			assert_int_equal(connect(&o, &c), 0);
			assert_int_equal(mimo_nvme_ctrlr_alloc_io_qpair(c, NULL, &qp), 0);
			assert_int_equal(mimo_nvme_qpair_wait_connected(qp, 20000), 0);
			assert_true(target_agreed(digests[d], groups[g]));
			memset(w, (int)(d * 8 + g), sizeof(w));
			io(qp, mimo_nvme_ctrlr_get_ns(c, 1), true, w, d * 8 + g);
			io(qp, mimo_nvme_ctrlr_get_ns(c, 1), false, r, d * 8 + g);
			assert_memory_equal(w, r, sizeof(w));
			mimo_nvme_ctrlr_free_io_qpair(qp);
			assert_int_equal(mimo_nvme_detach(c), 0);
		}
	}
}

static void test_refusals(void **state)
{
	struct mimo_nvme_ctrlr_opts o;
	struct mimo_nvme_dhchap_key k;
	struct mimo_nvme_ctrlr *c;
	struct mimo_nvme_qpair *qp;
	char typo[sizeof(KEY)];

	(void)state;
	/* The host has no key, the target asks: refused before anything else. */
	opts(&o, HOST, NULL, NULL, 0, 0);
	assert_int_equal(connect(&o, &c), -ENOKEY);
	/* The wrong key. */
	opts(&o, HOST, OTHER, NULL, 0, 0);
	assert_int_equal(connect(&o, &c), -EACCES);
	/* The right key, the wrong controller key: the host refuses the controller. */
	opts(&o, HOST_BI, KEY, OTHER, 0, 0);
	assert_int_equal(connect(&o, &c), -EACCES);
	/* Asking the controller to prove itself when it has no controller key for us. */
	opts(&o, HOST, KEY, CKEY, 0, 0);
	assert_int_equal(connect(&o, &c), -EACCES);
	/* ... or no key for us at all (it does not ask us): still refused. */
	opts(&o, HOST_OFF, KEY, CKEY, 0, 0);
	assert_int_equal(connect(&o, &c), -EACCES);
	/* Only a hash the target does not take. */
	rpc_ok("nvmf_set_config", json_pack("{s:[s]}", "dhchap_digests", "sha512"));
	opts(&o, HOST, KEY, NULL, 1u << 1, 0);
	assert_int_equal(connect(&o, &c), -EACCES);
	rpc_ok("nvmf_set_config",
	       json_pack("{s:[s,s,s]}", "dhchap_digests", "sha256", "sha384", "sha512"));
	/* Keys the options do not take. */
	opts(&o, HOST, NULL, CKEY, 0, 0);
	assert_int_equal(connect(&o, &c), -EINVAL);
	snprintf(typo, sizeof(typo), "%s", KEY);
	typo[15] = typo[15] == 'A' ? 'B' : 'A';
	assert_int_equal(mimo_nvme_dhchap_key_parse(typo, &k), -EBADMSG);
	assert_int_equal(mimo_nvme_dhchap_key_parse("DHHC-1:00:Zm9v:", &k), -EINVAL);
	/* A host the target does not ask, with only its own key: no authentication at all. */
	opts(&o, HOST_OFF, KEY, NULL, 0, 0);
	assert_int_equal(connect(&o, &c), 0);
	assert_int_equal(mimo_nvme_detach(c), 0);
	/* The admin queue authenticated; the key changes before the I/O queue connects: that
	 * queue fails, the controller stays. */
	opts(&o, HOST, KEY, NULL, 0, 1u << 0);
	assert_int_equal(connect(&o, &c), 0);
	add_key("other", OTHER);
	rpc_ok("nvmf_subsystem_set_keys",
	       json_pack("{s:s, s:s, s:s}", "nqn", NQN, "host", HOST, "dhchap_key", "other"));
	assert_int_equal(mimo_nvme_ctrlr_alloc_io_qpair(c, NULL, &qp), 0);
	assert_int_equal(mimo_nvme_qpair_wait_connected(qp, 20000), -EACCES);
	mimo_nvme_ctrlr_free_io_qpair(qp);
	assert_true(mimo_nvme_ctrlr_is_connected(c));
	assert_int_equal(mimo_nvme_detach(c), 0);
	rpc_ok("nvmf_subsystem_set_keys",
	       json_pack("{s:s, s:s, s:s}", "nqn", NQN, "host", HOST, "dhchap_key", "key"));
	rpc_ok("keyring_file_remove_key", json_pack("{s:s}", "name", "other"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_digest_and_group_both_ways),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
