/*
 * The target's core through the loop transport: no socket, no TCP, only what a host sees of
 * the controller. A target on reactor 0 serves EE_M0 (an error bdev over a malloc bdev, so
 * bdev failures can be injected) as namespace 1; mimo's initiator connects over loop from
 * reactor 1, and a raw loop queue (lib/nvme_loop) sends what the initiator never would.
 *
 * Each test asserts what a host relies on: Identify (controller, namespace, active namespace
 * list, identification descriptors), log pages (error, SMART / health, changed namespace
 * list, discovery), features (number of queues, keep alive, asynchronous event configuration),
 * how bdev outcomes map to NVMe status, how admin, Fabrics and I/O dispatch answer
 * commands in the wrong state or with unknown opcodes, and that the secure channel's options
 * and host policy hold over a transport that has none.
 */
#include <errno.h>
#include <poll.h>
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

#include "bdev_error.h"
#include "bdev_malloc.h"
#include "keyring.h"
#include "mimo/bdev.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvme.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"
#include "reactor_steps.h"
#include "nvme_loop.h"

#define NQN	   "nqn.2016-06.io.mimo:core"
#define LISTENER   "core-ut"
#define NUM_BLOCKS 2048
#define MAX_NS	   32

static struct mimo_nvmf_tgt *g_tgt;
static struct mimo_nvmf_subsystem *g_subsys;
static struct mimo_nvme_ctrlr *g_ctrlr;

/* --- the target, on reactor 0 ---------------------------------------------------------- */

static void inject(const char *io_type, const char *error_type)
{
	rpc("bdev_error_inject_error", json_pack("{s:s, s:s, s:s, s:i}", "name", "EE_M0", "io_type",
						 io_type, "error_type", error_type, "num", 1));
}

static void tgt_create_msg(void *arg)
{
	struct mimo_nvmf_tgt_opts to;
	struct mimo_nvmf_subsystem_opts so;
	struct mimo_nvmf_listen_addr a = { .trtype = "loop", .traddr = LISTENER };

	(void)arg;
	mimo_nvmf_tgt_opts_init(&to);
	to.reactor_mask = 0x1;
	CHECK(mimo_nvmf_tgt_create("core", &to, &g_tgt) == 0);
	CHECK(mimo_nvmf_tgt_add_transport(g_tgt, "loop", NULL) == 0);
	mimo_nvmf_subsystem_opts_init(&so);
	so.allow_any_host = true;
	so.serial_number = "CORE0001";
	so.model_number = "core unit test";
	so.max_namespaces = MAX_NS;
	CHECK(mimo_nvmf_subsystem_create(g_tgt, NQN, &so, &g_subsys) == 0);
	CHECK(mimo_nvmf_subsystem_add_ns(g_subsys, "EE_M0", NULL) == 1);
	mimo_nvmf_subsystem_add_listener(g_subsys, &a, NULL, NULL);
	mimo_nvmf_subsystem_start(g_subsys, NULL, NULL);
	sem_post(&g_sem);
}

static void tgt_destroy_msg(void *arg)
{
	(void)arg;
	mimo_nvmf_tgt_destroy(g_tgt, post, NULL);
}

/* --- the host, on reactor 1 ------------------------------------------------------------ */

static int g_aers;
static uint32_t g_aer_cdw0;

static void aer_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	(void)arg;
	g_aers++;
	g_aer_cdw0 = cpl->cdw0;
}

static void connect_msg(void *arg)
{
	const char *subnqn = arg;
	struct mimo_nvme_trid t;
	char s[300];

	snprintf(s, sizeof(s), "trtype:loop traddr:%s subnqn:%s", LISTENER, subnqn);
	CHECK(mimo_nvme_trid_parse(&t, s) == 0);
	CHECK(mimo_nvme_connect(&t, NULL, &g_ctrlr) == 0);
	if (g_ctrlr != NULL)
		mimo_nvme_ctrlr_register_aer_callback(g_ctrlr, aer_cb, NULL);
	sem_post(&g_sem);
}

static void detach_msg(void *arg)
{
	(void)arg;
	CHECK(mimo_nvme_detach(g_ctrlr) == 0);
	g_ctrlr = NULL;
	sem_post(&g_sem);
}

struct admin {
	struct mimo_nvme_cmd cmd;
	void *buf;
	uint32_t len;
	struct mimo_nvme_cpl cpl;
};

static void admin_msg(void *arg)
{
	struct admin *a = arg;

	CHECK(mimo_nvme_ctrlr_cmd_admin_sync(g_ctrlr, &a->cmd, a->buf, a->len, &a->cpl) == 0);
	sem_post(&g_sem);
}

/* An admin command on the initiator's admin queue; returns its completion. */
static struct mimo_nvme_cpl admin(uint8_t opc, uint32_t nsid, uint32_t cdw10, uint32_t cdw11,
				  void *buf, uint32_t len)
{
	struct admin a = { .buf = buf, .len = len };

	a.cmd.opc = opc;
	a.cmd.nsid = nsid;
	a.cmd.cdw10 = cdw10;
	a.cmd.cdw11 = cdw11;
	run_on(1, admin_msg, &a, 30);
	return a.cpl;
}

static struct mimo_nvme_cpl get_log(uint8_t lid, uint32_t nsid, void *buf, uint32_t len)
{
	return admin(MIMO_NVME_OPC_GET_LOG_PAGE, nsid, lid | (len / 4 - 1) << 16, 0, buf, len);
}

static void assert_status(const struct mimo_nvme_cpl *cpl, uint8_t sct, uint8_t sc, bool dnr)
{
	assert_int_equal(mimo_nvme_status_sct(cpl->status), sct);
	assert_int_equal(mimo_nvme_status_sc(cpl->status) & 0xff, sc);
	assert_int_equal((cpl->status & 0x8000) != 0, dnr);
}

struct io {
	struct mimo_nvme_cmd cmd;
	void *buf;
	uint32_t len;
	struct mimo_nvme_cpl cpl;
	bool done;
};

static void io_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct io *io = arg;

	io->cpl = *cpl;
	io->done = true;
}

static void io_msg(void *arg)
{
	struct io *io = arg;
	struct mimo_nvme_qpair *qp = NULL;

	CHECK(mimo_nvme_ctrlr_alloc_io_qpair(g_ctrlr, NULL, &qp) == 0);
	CHECK(qp != NULL && mimo_nvme_qpair_wait_connected(qp, 5000) == 0);
	if (g_fail[0] == '\0') {
		CHECK(mimo_nvme_ctrlr_cmd_io_raw(g_ctrlr, qp, &io->cmd, io->buf, io->len, io_cb,
						 io) == 0);
		for (int i = 0; !io->done && i < 10000000; i++)
			CHECK(mimo_nvme_qpair_process_completions(qp, 0) >= 0);
		CHECK(io->done);
	}
	mimo_nvme_ctrlr_free_io_qpair(qp);
	sem_post(&g_sem);
}

/* One I/O command on a fresh I/O queue; returns its completion. */
static struct mimo_nvme_cpl io(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf,
			       uint32_t len)
{
	struct io io = { .buf = buf, .len = len };

	io.cmd.opc = opc;
	io.cmd.nsid = nsid;
	io.cmd.cdw10 = (uint32_t)slba;
	io.cmd.cdw11 = (uint32_t)(slba >> 32);
	io.cmd.cdw12 = nlb - 1;
	run_on(1, io_msg, &io, 30);
	return io.cpl;
}

/* --- a raw loop queue, from the test's thread ------------------------------------------- */

struct raw {
	struct nvme_loop_queue *q;
	struct mimo_nvme_cpl cpl;
	uint8_t data[4096];
	bool got;
};

static void raw_reaped(void *arg, uint16_t slot, const struct mimo_nvme_cpl *cpl, const void *data,
		       uint32_t len)
{
	struct raw *r = arg;

	(void)slot;
	r->cpl = *cpl;
	r->got = true;
	if (data != NULL)
		memcpy(r->data, data, len < sizeof(r->data) ? len : sizeof(r->data));
}

static struct mimo_nvme_cpl raw_cmd(struct raw *r, const struct mimo_nvme_cmd *cmd,
				    const void *data, uint32_t len)
{
	struct pollfd p = { .fd = r->q->ops->fd(r->q), .events = POLLIN };

	r->got = false;
	assert_int_equal(r->q->ops->submit(r->q, 0, cmd, data, len), 0);
	for (int i = 0; !r->got && i < 1000; i++) {
		int rc;

		(void)poll(&p, 1, 20);
		rc = r->q->ops->reap(r->q, raw_reaped, r);
		/* Closed right after its answer (Disconnect): the answer still comes first. */
		assert_true(rc >= 0 || (rc == -ECONNRESET && r->got));
	}
	assert_true(r->got);
	return r->cpl;
}

static struct mimo_nvme_cpl raw_connect(struct raw *r, uint16_t qid, const char *subnqn)
{
	struct mimo_nvme_cmd cmd = { 0 };
	struct mimo_nvmf_connect_cmd *c = (void *)&cmd;
	struct mimo_nvmf_connect_data d = { .cntlid = 0xffff };

	c->opc = MIMO_NVME_OPC_FABRIC;
	c->fctype = MIMO_NVMF_FCTYPE_CONNECT;
	c->qid = qid;
	c->sqsize = 15;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", subnqn);
	snprintf(d.hostnqn, sizeof(d.hostnqn),
		 "nqn.2014-08.org.nvmexpress:uuid:"
		 "00000000-0000-0000-0000-00000000c0de");
	return raw_cmd(r, &cmd, &d, sizeof(d));
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_identify_controller(void **state)
{
	struct mimo_nvme_ctrlr_data cd;
	struct mimo_nvme_cpl cpl;

	(void)state;
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 0, MIMO_NVME_CNS_CTRLR, 0, &cd, sizeof(cd));
	assert_status(&cpl, 0, 0, false);
	assert_memory_equal(cd.sn, "CORE0001            ", 20);
	assert_memory_equal(cd.mn, "core unit test", 14);
	assert_string_equal(cd.subnqn, NQN);
	assert_int_equal(cd.cntrltype, 1);
	assert_int_equal(cd.ver, 0x00010300);
	assert_int_equal(cd.nn, MAX_NS);
	assert_int_equal(cd.mdts, 5); /* 128 KiB in 4 KiB pages */
	assert_int_equal(cd.oncs, (1u << 0) | (1u << 2) | (1u << 3));
	assert_int_equal(cd.aerl, 3);
	assert_int_equal(cd.maxcmd, 128);
	assert_int_equal(cd.cntlid, mimo_nvme_ctrlr_get_data(g_ctrlr)->cntlid);
	/* A host sizes its transfers by it. */
	assert_int_equal(mimo_nvme_ctrlr_get_max_xfer_size(g_ctrlr), 131072);
}

static void test_identify_namespace(void **state)
{
	struct mimo_nvme_ns_data nd, zero = { 0 };
	struct mimo_nvme_cpl cpl;

	(void)state;
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 1, MIMO_NVME_CNS_NS, 0, &nd, sizeof(nd));
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(nd.nsze, NUM_BLOCKS);
	assert_int_equal(nd.ncap, NUM_BLOCKS);
	assert_int_equal(nd.lbaf[0].lbads, 9);
	/* An inactive nsid within NN reads as zeroes; 0 and one beyond NN are invalid. */
	memset(&nd, 0xa5, sizeof(nd));
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 2, MIMO_NVME_CNS_NS, 0, &nd, sizeof(nd));
	assert_status(&cpl, 0, 0, false);
	assert_memory_equal(&nd, &zero, sizeof(nd));
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 0, MIMO_NVME_CNS_NS, 0, &nd, sizeof(nd));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE, true);
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, MAX_NS + 1, MIMO_NVME_CNS_NS, 0, &nd, sizeof(nd));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE, true);
	/* An unknown CNS. */
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 0, 0x7e, 0, &nd, sizeof(nd));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD, true);
}

static void add_ns_msg(void *arg)
{
	struct mimo_nvmf_ns_opts o;

	mimo_nvmf_ns_opts_init(&o);
	o.nsid = *(uint32_t *)arg;
	CHECK(mimo_nvmf_subsystem_add_ns(g_subsys, "M1", &o) == (int)o.nsid);
	sem_post(&g_sem);
}

static void remove_ns_msg(void *arg)
{
	CHECK(mimo_nvmf_subsystem_remove_ns(g_subsys, *(uint32_t *)arg) == 0);
	sem_post(&g_sem);
}

static void admin_poll_msg(void *arg)
{
	int want = *(int *)arg;

	for (int i = 0; g_aers < want && i < 2000000; i++)
		CHECK(mimo_nvme_ctrlr_process_admin_completions(g_ctrlr) >= 0);
	CHECK(g_aers >= want);
	sem_post(&g_sem);
}

static void test_active_ns_list_and_changed_ns_log(void **state)
{
	uint32_t list[1024], nsid = 5;
	struct mimo_nvme_cpl cpl;
	int want = g_aers + 1;

	(void)state;
	run_on(0, add_ns_msg, &nsid, 30);
	/* The host hears of it (a notice pointing at the changed namespace list)... */
	run_on(1, admin_poll_msg, &want, 30);
	assert_int_equal(g_aer_cdw0, 0x040002);
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 0, MIMO_NVME_CNS_ACTIVE_NS_LIST, 0, list, sizeof(list));
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 5);
	assert_int_equal(list[2], 0);
	/* ...the list starts above the nsid given... */
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 1, MIMO_NVME_CNS_ACTIVE_NS_LIST, 0, list, sizeof(list));
	assert_int_equal(list[0], 5);
	assert_int_equal(list[1], 0);
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 0xfffffffe, MIMO_NVME_CNS_ACTIVE_NS_LIST, 0, list,
		    sizeof(list));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE, true);
	/* ...and the initiator read the changed list to re-arm the event: empty now. */
	memset(list, 0xff, sizeof(list));
	cpl = get_log(MIMO_NVME_LOG_CHANGED_NS_LIST, 0, list, 4096);
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(list[0], 0);
	run_on(0, remove_ns_msg, &nsid, 30);
	want = g_aers + 1;
	run_on(1, admin_poll_msg, &want, 30);
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 0, MIMO_NVME_CNS_ACTIVE_NS_LIST, 0, list, sizeof(list));
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 0);
}

static void test_ns_id_descriptors(void **state)
{
	uint8_t d[4096];
	struct mimo_nvme_cpl cpl;
	const uint8_t *uuid = mimo_nvme_ns_get_uuid(mimo_nvme_ctrlr_get_ns(g_ctrlr, 1));

	(void)state;
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 1, MIMO_NVME_CNS_NS_ID_DESC, 0, d, sizeof(d));
	assert_status(&cpl, 0, 0, false);
	/* NGUID (defaulting to the bdev's UUID), then the UUID, then the end (type 0). */
	assert_int_equal(d[0], MIMO_NVME_NIDT_NGUID);
	assert_int_equal(d[1], 16);
	assert_int_equal(d[20], MIMO_NVME_NIDT_UUID);
	assert_int_equal(d[21], 16);
	assert_non_null(uuid);
	assert_memory_equal(d + 24, uuid, 16);
	assert_memory_equal(d + 4, uuid, 16);
	assert_int_equal(d[40], 0);
	cpl = admin(MIMO_NVME_OPC_IDENTIFY, 9, MIMO_NVME_CNS_NS_ID_DESC, 0, d, sizeof(d));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE, true);
}

static void test_error_and_health_logs(void **state)
{
	struct mimo_nvme_error_log_entry e[16];
	struct mimo_nvme_health_log h0, h1;
	struct mimo_nvme_cpl cpl, bad;
	static uint8_t buf[4096];

	(void)state;
	cpl = get_log(MIMO_NVME_LOG_HEALTH, 0xffffffff, &h0, sizeof(h0));
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(h0.temperature, 298);
	assert_int_equal(h0.available_spare, 100);
	memset(buf, 0x5a, sizeof(buf));
	cpl = io(MIMO_NVME_OPC_WRITE, 1, 0, 8, buf, sizeof(buf));
	assert_status(&cpl, 0, 0, false);
	cpl = get_log(MIMO_NVME_LOG_HEALTH, 0xffffffff, &h1, sizeof(h1));
	/* A write of 4 KiB is one command and (rounded up) one data unit more. */
	assert_int_equal(h1.host_write_commands[0], h0.host_write_commands[0] + 1);
	assert_int_equal(h1.data_units_written[0], h0.data_units_written[0] + 1);
	/* A failed admin command lands in the error log, newest first. */
	bad = admin(MIMO_NVME_OPC_GET_FEATURES, 0, 0x7f, 0, NULL, 0);
	assert_status(&bad, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD, true);
	cpl = get_log(MIMO_NVME_LOG_ERROR, 0, e, sizeof(e));
	assert_status(&cpl, 0, 0, false);
	assert_true(e[0].error_count >= 1);
	assert_int_equal(e[0].sqid, 0);
	assert_int_equal(e[0].status, bad.status & ~1u);
	assert_int_equal(e[0].trtype, MIMO_NVMF_TRTYPE_LOOP);
	cpl = get_log(MIMO_NVME_LOG_HEALTH, 0xffffffff, &h1, sizeof(h1));
	assert_true(h1.num_error_info_log_entries[0] >= e[0].error_count);
	/* An unknown page, and a discovery page on an I/O controller. */
	cpl = get_log(0x7e, 0, buf, 512);
	assert_status(&cpl, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVME_SC_INVALID_LOG_PAGE, true);
	cpl = get_log(MIMO_NVME_LOG_DISCOVERY, 0, buf, 1024);
	assert_status(&cpl, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVME_SC_INVALID_LOG_PAGE, true);
}

static void discovery_log_msg(void *arg)
{
	struct mimo_nvmf_discovery_log **log = arg;

	CHECK(mimo_nvme_ctrlr_get_discovery_log_sync(g_ctrlr, log) == 0);
	sem_post(&g_sem);
}

static void test_discovery_log_over_loop(void **state)
{
	struct mimo_nvme_ctrlr *io_ctrlr = g_ctrlr;
	struct mimo_nvmf_discovery_log *log = NULL;
	const struct mimo_nvmf_discovery_entry *e;

	(void)state;
	g_ctrlr = NULL;
	run_on(1, connect_msg, MIMO_NVMF_DISCOVERY_NQN, 30);
	assert_non_null(g_ctrlr);
	assert_true(mimo_nvme_ctrlr_is_discovery(g_ctrlr));
	run_on(1, discovery_log_msg, &log, 30);
	run_on(1, detach_msg, NULL, 30);
	g_ctrlr = io_ctrlr;
	assert_non_null(log);
	assert_int_equal(log->numrec, 1);
	e = &log->entries[0];
	assert_int_equal(e->trtype, MIMO_NVMF_TRTYPE_LOOP);
	assert_int_equal(e->adrfam, MIMO_NVMF_ADRFAM_LOOP);
	assert_int_equal(e->subtype, MIMO_NVMF_SUBTYPE_NVME);
	assert_memory_equal(e->traddr, LISTENER " ", sizeof(LISTENER));
	assert_string_equal(e->subnqn, NQN);
	free(log);
}

static void test_features(void **state)
{
	uint32_t n = mimo_nvme_ctrlr_get_num_io_queues(g_ctrlr) - 1;
	struct mimo_nvme_cpl cpl;

	(void)state;
	cpl = admin(MIMO_NVME_OPC_GET_FEATURES, 0, MIMO_NVME_FEAT_NUMBER_OF_QUEUES, 0, NULL, 0);
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(cpl.cdw0, n | n << 16);
	/* Asking for fewer while no I/O queue exists: granted. */
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, MIMO_NVME_FEAT_NUMBER_OF_QUEUES, 3 | 3 << 16,
		    NULL, 0);
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(cpl.cdw0, 3 | 3 << 16);
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, MIMO_NVME_FEAT_NUMBER_OF_QUEUES, n | n << 16,
		    NULL, 0);
	assert_int_equal(cpl.cdw0, n | n << 16);
	/* Keep alive: in the 100 ms granularity reported (KAS 1). */
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, MIMO_NVME_FEAT_KEEP_ALIVE_TIMER, 4950, NULL, 0);
	assert_status(&cpl, 0, 0, false);
	cpl = admin(MIMO_NVME_OPC_GET_FEATURES, 0, MIMO_NVME_FEAT_KEEP_ALIVE_TIMER, 0, NULL, 0);
	assert_int_equal(cpl.cdw0, 5000);
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, MIMO_NVME_FEAT_KEEP_ALIVE_TIMER, 10000, NULL, 0);
	assert_status(&cpl, 0, 0, false);
	/* Asynchronous event configuration: what the controller supports reads back. */
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG,
		    (1u << 8) | (1u << 12), NULL, 0);
	assert_status(&cpl, 0, 0, false);
	cpl = admin(MIMO_NVME_OPC_GET_FEATURES, 0, MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG, 0, NULL, 0);
	assert_int_equal(cpl.cdw0, 1u << 8);
	/* Supported capabilities (SEL 3), saving (SV), and a feature that does not exist. */
	cpl = admin(MIMO_NVME_OPC_GET_FEATURES, 0, MIMO_NVME_FEAT_KEEP_ALIVE_TIMER | 3u << 8, 0,
		    NULL, 0);
	assert_int_equal(cpl.cdw0, 1u << 2);
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, MIMO_NVME_FEAT_KEEP_ALIVE_TIMER | 1u << 31,
		    10000, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVME_SC_FEATURE_NOT_SAVEABLE,
		      true);
	cpl = admin(MIMO_NVME_OPC_SET_FEATURES, 0, 0x7f, 0, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD, true);
}

static void test_io_status_mapping(void **state)
{
	static uint8_t w[4096], r[4096];
	struct mimo_nvme_cpl cpl;

	(void)state;
	for (size_t i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i * 7 + 3);
	assert_status((cpl = io(MIMO_NVME_OPC_WRITE, 1, 64, 8, w, sizeof(w)), &cpl), 0, 0, false);
	/* Beyond the namespace's end, and a namespace that does not exist: the host must not
	 * retry either. */
	cpl = io(MIMO_NVME_OPC_READ, 1, NUM_BLOCKS - 4, 8, r, sizeof(r));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_LBA_OUT_OF_RANGE, true);
	cpl = io(MIMO_NVME_OPC_READ, 7, 0, 8, r, sizeof(r));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_NAMESPACE, true);
	/* Less data than the blocks need. */
	cpl = io(MIMO_NVME_OPC_READ, 1, 0, 16, r, sizeof(r));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID, true);
	/* The bdev fails the read: an internal error the host may retry... */
	inject("read", "failure");
	cpl = io(MIMO_NVME_OPC_READ, 1, 64, 8, r, sizeof(r));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR, false);
	/* ...and when it runs out of memory the target retries by itself: the host sees none. */
	inject("read", "nomem");
	memset(r, 0, sizeof(r));
	cpl = io(MIMO_NVME_OPC_READ, 1, 64, 8, r, sizeof(r));
	assert_status(&cpl, 0, 0, false);
	assert_memory_equal(r, w, sizeof(w));
	inject("write", "nomem");
	assert_status((cpl = io(MIMO_NVME_OPC_WRITE, 1, 64, 8, w, sizeof(w)), &cpl), 0, 0, false);
	/* Compare: data that differs is a media error (Compare Failure). */
	assert_status((cpl = io(MIMO_NVME_OPC_COMPARE, 1, 64, 8, w, sizeof(w)), &cpl), 0, 0, false);
	w[100] ^= 1;
	cpl = io(MIMO_NVME_OPC_COMPARE, 1, 64, 8, w, sizeof(w));
	assert_status(&cpl, MIMO_NVME_SCT_MEDIA, MIMO_NVME_SC_COMPARE_FAILURE, true);
	w[100] ^= 1;
	/* A failed compare read is the device's error, not the data's. */
	inject("read", "failure");
	cpl = io(MIMO_NVME_OPC_COMPARE, 1, 64, 8, w, sizeof(w));
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR, false);
}

static void test_dispatch_by_opcode(void **state)
{
	struct mimo_nvme_cpl cpl;
	uint8_t buf[4096];

	(void)state;
	/* Unknown admin and I/O opcodes. */
	cpl = admin(0xc1, 0, 0, 0, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE, true);
	cpl = io(0x7c, 1, 0, 1, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE, true);
	/* An I/O opcode on the admin queue is an admin opcode: Write (1) is Create I/O SQ,
	 * which NVMe over Fabrics has none of. */
	cpl = admin(MIMO_NVME_OPC_WRITE, 1, 0, 0, buf, 512);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE, true);
	/* Keep Alive is the admin queue's. */
	cpl = admin(MIMO_NVME_OPC_KEEP_ALIVE, 0, 0, 0, NULL, 0);
	assert_status(&cpl, 0, 0, false);
}

static void test_raw_queue_state_and_fabrics(void **state)
{
	struct mimo_nvme_cmd cmd = { 0 };
	struct mimo_nvmf_prop_cmd *prop = (void *)&cmd;
	struct mimo_nvme_cpl cpl;
	struct raw r = { 0 };

	(void)state;
	assert_int_equal(nvme_loop_queue_open("no-such-listener", 16, &r.q), -ECONNREFUSED);
	assert_int_equal(nvme_loop_queue_open(LISTENER, 16, &r.q), 0);
	/* Before Connect: nothing else. */
	cmd.opc = MIMO_NVME_OPC_READ;
	cmd.nsid = 1;
	cpl = raw_cmd(&r, &cmd, NULL, 512);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR, true);
	memset(&cmd, 0, sizeof(cmd));
	prop->opc = MIMO_NVME_OPC_FABRIC;
	prop->fctype = MIMO_NVMF_FCTYPE_PROPERTY_GET;
	prop->ofst = MIMO_NVME_REG_VS;
	cpl = raw_cmd(&r, &cmd, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR, true);
	/* A subsystem that does not exist: Invalid Parameters, pointing at SUBNQN in the data. */
	cpl = raw_connect(&r, 0, "nqn.2016-06.io.mimo:nothing");
	assert_status(&cpl, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVMF_SC_CONNECT_INVALID_PARAMS,
		      true);
	assert_int_equal(cpl.cdw0, 1u << 16 | 256);
	/* The right one: a controller ID comes back; a second Connect is out of sequence. */
	cpl = raw_connect(&r, 0, NQN);
	assert_status(&cpl, 0, 0, false);
	assert_int_not_equal(cpl.cdw0 & 0xffff, 0);
	cpl = raw_connect(&r, 0, NQN);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR, true);
	/* Properties on the admin queue now; an unknown Fabrics command type; fused. */
	cpl = raw_cmd(&r, &cmd, NULL, 0);
	assert_status(&cpl, 0, 0, false);
	assert_int_equal(cpl.cdw0, 0x00010300);
	prop->fctype = 0x7e;
	cpl = raw_cmd(&r, &cmd, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE, true);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = MIMO_NVME_OPC_KEEP_ALIVE;
	cmd.fuse_psdt = 1;
	cpl = raw_cmd(&r, &cmd, NULL, 0);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD, true);
	/* More data than a command may move (max_io_size). */
	cmd.opc = MIMO_NVME_OPC_IDENTIFY;
	cmd.fuse_psdt = 0;
	cmd.cdw10 = MIMO_NVME_CNS_CTRLR;
	cpl = raw_cmd(&r, &cmd, NULL, 131072 + 4096);
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID, true);
	/* Disconnect: answered, then the queue is closed. */
	memset(&cmd, 0, sizeof(cmd));
	prop->opc = MIMO_NVME_OPC_FABRIC;
	prop->fctype = MIMO_NVMF_FCTYPE_DISCONNECT;
	cpl = raw_cmd(&r, &cmd, NULL, 0);
	assert_status(&cpl, 0, 0, false);
	for (int i = 0; i < 1000 && r.q->ops->reap(r.q, raw_reaped, &r) != -ECONNRESET; i++)
		(void)poll(&(struct pollfd){ .fd = r.q->ops->fd(r.q), .events = POLLIN }, 1, 20);
	assert_int_equal(r.q->ops->reap(r.q, raw_reaped, &r), -ECONNRESET);
	r.q->ops->release(r.q);
}

static void test_io_queue_property_get_refused(void **state)
{
	struct mimo_nvme_cmd cmd = { 0 };
	struct mimo_nvmf_prop_cmd *prop = (void *)&cmd;
	struct mimo_nvme_cpl cpl;

	(void)state;
	/* Properties belong to the admin queue: on an I/O queue, Invalid Field. */
	prop->opc = MIMO_NVME_OPC_FABRIC;
	prop->fctype = MIMO_NVMF_FCTYPE_PROPERTY_GET;
	prop->ofst = MIMO_NVME_REG_VS;
	{
		struct io x = { .cmd = cmd };

		run_on(1, io_msg, &x, 30);
		cpl = x.cpl;
	}
	assert_status(&cpl, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD, true);
}

/* --- the secure channel over a transport without one -------------------------------------- */

#define HOST_C0DE "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000c0de"
/* A 32-byte TLS PSK (keyfmt_ut's). */
#define PSK32 "NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"

static void listened(void *arg, int rc)
{
	*(int *)arg = rc;
	sem_post(&g_sem);
}

static void secure_loop_listener_msg(void *arg)
{
	struct mimo_nvmf_listen_addr a = { .trtype = "loop", .traddr = "core-ut-secure" };
	struct mimo_nvmf_listener_opts o;

	mimo_nvmf_listener_opts_init(&o);
	o.secure_channel = true;
	mimo_nvmf_subsystem_add_listener_ext(g_subsys, &a, &o, listened, arg);
}

static void tls_connect_msg(void *arg)
{
	struct mimo_nvme_ctrlr_opts o;
	struct mimo_nvme_ctrlr *c = NULL;
	struct mimo_nvme_trid t;

	mimo_nvme_ctrlr_opts_init(&o);
	CHECK(mimo_nvme_tls_psk_parse(PSK32, &o.tls_psk) == 0);
	CHECK(mimo_nvme_trid_parse(&t, "trtype:loop traddr:" LISTENER " subnqn:" NQN) == 0);
	*(int *)arg = mimo_nvme_connect(&t, &o, &c);
	CHECK(c == NULL);
	sem_post(&g_sem);
}

static void psk_host_msg(void *arg)
{
	struct mimo_nvmf_host_opts o;

	mimo_nvmf_host_opts_init(&o);
	o.psk = "core-ut-psk";
	*(int *)arg = mimo_nvmf_subsystem_add_host_ext(g_subsys, HOST_C0DE, &o);
	sem_post(&g_sem);
}

static void remove_host_msg(void *arg)
{
	*(int *)arg = mimo_nvmf_subsystem_remove_host(g_subsys, HOST_C0DE);
	sem_post(&g_sem);
}

static void test_secure_channel_over_loop(void **state)
{
	char dir[] = "/tmp/mimo-core-ut-XXXXXX", path[64];
	struct raw r = { 0 };
	struct mimo_nvme_cpl cpl;
	FILE *f;
	int rc = 1;

	(void)state;
	/* TLS is TCP's: a loop listener or a loop host that asks for it is refused, as TCP's
	 * transport options are, not taken and ignored. */
	run_on(0, secure_loop_listener_msg, &rc, 30);
	assert_int_equal(rc, -EINVAL);
	rc = 1;
	run_on(1, tls_connect_msg, &rc, 30);
	assert_int_equal(rc, -EINVAL);
	/* A host given a PSK connects through a secure channel only: over loop, which has
	 * none, its Connect is refused as over plain TCP (host policy, the core's). */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/psk", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", PSK32);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	rpc("keyring_file_add_key", json_pack("{s:s, s:s}", "name", "core-ut-psk", "path", path));
	run_on(0, psk_host_msg, &rc, 30);
	assert_int_equal(rc, 0);
	assert_int_equal(nvme_loop_queue_open(LISTENER, 16, &r.q), 0);
	cpl = raw_connect(&r, 0, NQN);
	assert_status(&cpl, MIMO_NVME_SCT_COMMAND_SPECIFIC, MIMO_NVMF_SC_CONNECT_INVALID_HOST,
		      true);
	r.q->ops->release(r.q);
	run_on(0, remove_host_msg, &rc, 30);
	assert_int_equal(rc, 0);
	rpc("keyring_file_remove_key", json_pack("{s:s}", "name", "core-ut-psk"));
	unlink(path);
	rmdir(dir);
}

static void unset_host_opts_msg(void *arg)
{
	struct mimo_nvmf_host_opts o = { 0 }; /* never _opts_init'ed: opts_size 0 */

	*(int *)arg = mimo_nvmf_subsystem_add_host_ext(g_subsys, HOST_C0DE, &o);
	sem_post(&g_sem);
}

static void unset_listener_opts_msg(void *arg)
{
	struct mimo_nvmf_listen_addr a = { .trtype = "loop", .traddr = "core-ut-unset" };
	struct mimo_nvmf_listener_opts o = { 0 };

	mimo_nvmf_subsystem_add_listener_ext(g_subsys, &a, &o, listened, arg);
}

/* The one rule for versioned options (lib/util/opts.h): a struct whose opts_size is 0 was
 * never initialised, and is refused rather than read as "whatever its bytes say". */
static void test_unset_opts_refused(void **state)
{
	int rc = 1;

	(void)state;
	run_on(0, unset_host_opts_msg, &rc, 30);
	assert_int_equal(rc, -EINVAL);
	rc = 1;
	run_on(0, unset_listener_opts_msg, &rc, 30);
	assert_int_equal(rc, -EINVAL);
}

/* --- set-up -------------------------------------------------------------------------------- */

static int setup(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	/* What the test's RPCs reach: the bdevs under the namespace, and the PSK's keyring. */
	mimo_register_keyring();
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	mimo_register_bdev_error();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	if (mimo_reactors_start(&o) != 0)
		return -1;
	rpc("bdev_malloc_create", json_pack("{s:s, s:i, s:i}", "name", "M0", "num_blocks",
					    NUM_BLOCKS, "block_size", 512));
	rpc("bdev_malloc_create",
	    json_pack("{s:s, s:i, s:i}", "name", "M1", "num_blocks", 256, "block_size", 4096));
	rpc("bdev_error_create", json_pack("{s:s}", "base_name", "M0"));
	run_on(0, tgt_create_msg, NULL, 30);
	run_on(1, connect_msg, NQN, 30);
	return g_ctrlr != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	run_on(1, detach_msg, NULL, 30);
	run_on(0, tgt_destroy_msg, NULL, 30);
	rpc("bdev_error_delete", json_pack("{s:s}", "name", "EE_M0"));
	rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "M0"));
	rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "M1"));
	mimo_reactors_stop();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify_controller),
		cmocka_unit_test(test_identify_namespace),
		cmocka_unit_test(test_active_ns_list_and_changed_ns_log),
		cmocka_unit_test(test_ns_id_descriptors),
		cmocka_unit_test(test_error_and_health_logs),
		cmocka_unit_test(test_discovery_log_over_loop),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_io_status_mapping),
		cmocka_unit_test(test_dispatch_by_opcode),
		cmocka_unit_test(test_raw_queue_state_and_fabrics),
		cmocka_unit_test(test_io_queue_property_get_refused),
		cmocka_unit_test(test_secure_channel_over_loop),
		cmocka_unit_test(test_unset_opts_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
