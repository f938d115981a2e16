/*
 * Target and initiator in one process (the seed's NVMf target API), without its deadlocks.
 *
 * The target lives on reactor 0 with its I/O queues there too; the initiator runs on reactor 1
 * with the blocking calls (connect, *_sync), which is safe because nothing the target needs
 * runs on reactor 1. Then the other way round: the initiator runs as a non-blocking poller on
 * reactor 0, the target's own reactor, with the target's I/O queues spread over both reactors,
 * and still nothing waits on anything.
 *
 * Both over NVMe/TCP on loopback and over the loop transport (no socket at all: the
 * initiator's loop queue pairs call into the target's core, inline when on its reactor).
 *
 * Covered: connect, identify, write patterns and read them back across four I/O queues,
 * compare (equal and not), write zeroes, deallocate; a namespace hot-added (and removed) raises
 * an asynchronous event the initiator sees, with its namespace list already refreshed; a host
 * that stops sending keep-alives is disconnected after its KATO.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_malloc.h"
#include "mimo/bdev.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvme.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"
#include "reactor_steps.h"

#define NQN	   "nqn.2016-06.io.mimo:inproc"
#define NUM_QPAIRS 4
#define DEPTH	   8
#define BLOCKS	   8 /* per I/O: 4 KiB */

static struct mimo_nvmf_tgt *g_tgt;
static struct mimo_nvmf_subsystem *g_subsys;
static char g_port[33];
static bool g_loop; /* connect over the loop transport instead of TCP */

/* --- the target, on reactor 0 ---------------------------------------------------------- */

static void listened(void *arg, int rc)
{
	(void)arg;
	CHECK(rc == 0);
}

static void tgt_create_msg(void *arg)
{
	struct mimo_nvmf_tgt_opts to;
	struct mimo_nvmf_subsystem_opts so;
	struct mimo_nvmf_listen_addr a = { "TCP", "IPv4", "127.0.0.1", "0" };
	struct mimo_nvmf_listen_addr l = { .trtype = "loop", .traddr = "inproc" };
	uint64_t mask = *(uint64_t *)arg;

	mimo_nvmf_tgt_opts_init(&to);
	to.reactor_mask = mask;
	CHECK(mimo_nvmf_tgt_create("inproc", &to, &g_tgt) == 0);
	CHECK(mimo_nvmf_tgt_add_transport(g_tgt, "TCP", NULL) == 0);
	CHECK(mimo_nvmf_tgt_add_transport(g_tgt, "loop", NULL) == 0);
	mimo_nvmf_subsystem_opts_init(&so);
	so.allow_any_host = true;
	so.serial_number = "INPROC0001";
	CHECK(mimo_nvmf_subsystem_create(g_tgt, NQN, &so, &g_subsys) == 0);
	CHECK(mimo_nvmf_subsystem_add_ns(g_subsys, "M0", NULL) == 1);
	mimo_nvmf_subsystem_add_listener(g_subsys, &a, listened, NULL);
	mimo_nvmf_subsystem_add_listener(g_subsys, &l, listened, NULL);
	mimo_nvmf_subsystem_start(g_subsys, NULL, NULL);
	snprintf(g_port, sizeof(g_port), "%s", a.trsvcid);
	sem_post(&g_sem);
}

static void tgt_destroy_msg(void *arg)
{
	(void)arg;
	mimo_nvmf_tgt_destroy(g_tgt, post, NULL);
}

static void start_target(uint64_t reactor_mask)
{
	rpc("bdev_malloc_create",
	    json_pack("{s:s, s:i, s:i}", "name", "M0", "num_blocks", 16384, "block_size", 512));
	run_on(0, tgt_create_msg, &reactor_mask, 10);
}

static void stop_target(void)
{
	run_on(0, tgt_destroy_msg, NULL, 20);
	rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "M0"));
}

static void trid(struct mimo_nvme_trid *t)
{
	char s[256];

	if (g_loop)
		snprintf(s, sizeof(s), "trtype:loop traddr:inproc subnqn:%s", NQN);
	else
		snprintf(s, sizeof(s),
			 "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%s subnqn:%s", g_port,
			 NQN);
	assert_int_equal(mimo_nvme_trid_parse(t, s), 0);
}

/* --- helpers for the initiator ------------------------------------------------------------- */

struct io_wait {
	int pending;
	int errors;
	uint16_t last_status;
};

static void io_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct io_wait *w = arg;

	w->pending--;
	w->last_status = cpl->status;
	if (mimo_nvme_cpl_is_error(cpl))
		w->errors++;
}

/* Process the queues (submissions leave only then) until w has nothing pending. */
static void drain_all(struct mimo_nvme_qpair **qp, int n, struct io_wait *w)
{
	for (int i = 0; w->pending > 0 && i < 10000000; i++)
		CHECK(mimo_nvme_qpair_process_completions(qp[i % n], 0) >= 0);
	CHECK(w->pending == 0);
}

static void drain(struct mimo_nvme_qpair *qp, struct io_wait *w)
{
	drain_all(&qp, 1, w);
}

static void pattern(uint8_t *b, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + i / 4096);
}

/* --- 1: blocking initiator on reactor 1 ---------------------------------------------------- */

static void io_on_reactor_1(void *arg)
{
	struct mimo_nvme_qpair *qp[NUM_QPAIRS] = { NULL };
	struct mimo_nvme_ctrlr *ctrlr = NULL;
	static uint8_t wbuf[NUM_QPAIRS][DEPTH][BLOCKS * 512], rbuf[NUM_QPAIRS][DEPTH][BLOCKS * 512];
	const struct mimo_nvme_ctrlr_data *cd;
	struct mimo_nvme_trid t;
	struct mimo_nvme_ns *ns;
	struct io_wait w = { 0 };
	uint8_t other[BLOCKS * 512];

	(void)arg;
	trid(&t);
	CHECK(mimo_nvme_connect(&t, NULL, &ctrlr) == 0);
	if (ctrlr == NULL)
		goto out;
	cd = mimo_nvme_ctrlr_get_data(ctrlr);
	CHECK(memcmp(cd->sn, "INPROC0001", 10) == 0);
	CHECK(memcmp(cd->subnqn, NQN, sizeof(NQN)) == 0);
	CHECK(mimo_nvme_ctrlr_get_first_active_ns(ctrlr) == 1);
	ns = mimo_nvme_ctrlr_get_ns(ctrlr, 1);
	CHECK(ns != NULL && mimo_nvme_ns_get_sector_size(ns) == 512 &&
	      mimo_nvme_ns_get_num_sectors(ns) == 16384);
	CHECK(mimo_nvme_ns_get_uuid(ns) != NULL && mimo_nvme_ns_get_nguid(ns) != NULL);
	for (int q = 0; q < NUM_QPAIRS; q++) {
		CHECK(mimo_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &qp[q]) == 0);
		CHECK(qp[q] != NULL && mimo_nvme_qpair_wait_connected(qp[q], 5000) == 0);
	}
	if (g_fail[0] != '\0')
		goto out;
	/* Every queue writes its own range with several commands outstanding at once. */
	for (int q = 0; q < NUM_QPAIRS; q++) {
		for (int d = 0; d < DEPTH; d++) {
			pattern(wbuf[q][d], sizeof(wbuf[q][d]), (uint32_t)(q * DEPTH + d));
			w.pending++;
			CHECK(mimo_nvme_ns_cmd_write(ns, qp[q], wbuf[q][d],
						     (uint64_t)(q * DEPTH + d) * BLOCKS, BLOCKS,
						     io_cb, &w, 0) == 0);
		}
	}
	drain_all(qp, NUM_QPAIRS, &w);
	CHECK(w.errors == 0);
	/* Read back through a different queue than the one that wrote. */
	for (int q = 0; q < NUM_QPAIRS; q++) {
		for (int d = 0; d < DEPTH; d++) {
			w.pending++;
			CHECK(mimo_nvme_ns_cmd_read(ns, qp[(q + 1) % NUM_QPAIRS], rbuf[q][d],
						    (uint64_t)(q * DEPTH + d) * BLOCKS, BLOCKS,
						    io_cb, &w, 0) == 0);
		}
	}
	drain_all(qp, NUM_QPAIRS, &w);
	CHECK(w.errors == 0);
	CHECK(memcmp(wbuf, rbuf, sizeof(wbuf)) == 0);
	/* Compare: equal, then not (Compare Failure, media error status). */
	w.pending++;
	CHECK(mimo_nvme_ns_cmd_compare(ns, qp[0], wbuf[1][2], (1 * DEPTH + 2) * BLOCKS, BLOCKS,
				       io_cb, &w, 0) == 0);
	drain(qp[0], &w);
	CHECK(w.errors == 0);
	pattern(other, sizeof(other), 999);
	w.pending++;
	CHECK(mimo_nvme_ns_cmd_compare(ns, qp[0], other, 0, BLOCKS, io_cb, &w, 0) == 0);
	drain(qp[0], &w);
	CHECK(w.errors == 1 && mimo_nvme_status_sct(w.last_status) == MIMO_NVME_SCT_MEDIA &&
	      mimo_nvme_status_sc(w.last_status) == MIMO_NVME_SC_COMPARE_FAILURE);
	/* Write zeroes and deallocate, then read the zeroes. */
	w.errors = 0;
	w.pending++;
	CHECK(mimo_nvme_ns_cmd_write_zeroes(ns, qp[2], 0, BLOCKS, io_cb, &w, 0) == 0);
	drain(qp[2], &w);
	w.pending++;
	CHECK(mimo_nvme_ns_cmd_read(ns, qp[2], rbuf[0][0], 0, BLOCKS, io_cb, &w, 0) == 0);
	drain(qp[2], &w);
	memset(other, 0, sizeof(other));
	CHECK(w.errors == 0 && memcmp(rbuf[0][0], other, sizeof(other)) == 0);
	{
		struct mimo_nvme_dsm_range r = { .length = BLOCKS, .starting_lba = BLOCKS };

		w.pending++;
		CHECK(mimo_nvme_ns_cmd_deallocate(ns, qp[3], &r, 1, io_cb, &w) == 0);
		drain(qp[3], &w);
		CHECK(w.errors == 0);
	}
out:
	for (int q = 0; q < NUM_QPAIRS; q++) {
		if (qp[q] != NULL)
			mimo_nvme_ctrlr_free_io_qpair(qp[q]);
	}
	if (ctrlr != NULL)
		CHECK(mimo_nvme_detach(ctrlr) == 0);
	sem_post(&g_sem);
}

static void test_blocking_initiator_on_another_reactor(void **state)
{
	(void)state;
	start_target(0x1);
	run_on(1, io_on_reactor_1, NULL, 60);
	stop_target();
}

/* --- 2: a hot-added namespace raises an event ---------------------------------------------- */

static struct mimo_nvme_ctrlr *g_ctrlr;
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
	struct mimo_nvme_ctrlr_opts *o = arg;
	struct mimo_nvme_trid t;

	trid(&t);
	CHECK(mimo_nvme_connect(&t, o, &g_ctrlr) == 0);
	if (g_ctrlr != NULL)
		mimo_nvme_ctrlr_register_aer_callback(g_ctrlr, aer_cb, NULL);
	sem_post(&g_sem);
}

/* On reactor 1: process the admin queue until an event arrived (or 10 s passed). */
static void wait_aer_msg(void *arg)
{
	int want = *(int *)arg;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		CHECK(mimo_nvme_ctrlr_process_admin_completions(g_ctrlr) >= 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (g_aers < want && t1.tv_sec - t0.tv_sec < 10);
	CHECK(g_aers == want);
	sem_post(&g_sem);
}

static void add_ns_msg(void *arg)
{
	(void)arg;
	CHECK(mimo_nvmf_subsystem_add_ns(g_subsys, "Hot", NULL) == 2);
	sem_post(&g_sem);
}

static void remove_ns_msg(void *arg)
{
	(void)arg;
	CHECK(mimo_nvmf_subsystem_remove_ns(g_subsys, 2) == 0);
	sem_post(&g_sem);
}

static void detach_msg(void *arg)
{
	(void)arg;
	CHECK(mimo_nvme_detach(g_ctrlr) == 0);
	g_ctrlr = NULL;
	sem_post(&g_sem);
}

static void test_hot_added_namespace_raises_an_event(void **state)
{
	struct mimo_nvme_ns *ns;
	int want = 1;

	(void)state;
	start_target(0x1);
	rpc("bdev_malloc_create",
	    json_pack("{s:s, s:i, s:i}", "name", "Hot", "num_blocks", 1024, "block_size", 4096));
	g_aers = 0;
	run_on(1, connect_msg, NULL, 20);
	assert_non_null(g_ctrlr);
	assert_null(mimo_nvme_ctrlr_get_ns(g_ctrlr, 2));
	run_on(0, add_ns_msg, NULL, 10);
	run_on(1, wait_aer_msg, &want, 20);
	/* A notice (type 2), namespace attribute changed (0), changed namespace list (4). */
	assert_int_equal(g_aer_cdw0, 0x040002);
	ns = mimo_nvme_ctrlr_get_ns(g_ctrlr, 2);
	assert_non_null(ns);
	assert_int_equal(mimo_nvme_ns_get_sector_size(ns), 4096);
	assert_int_equal(mimo_nvme_ns_get_num_sectors(ns), 1024);
	assert_int_equal(mimo_nvme_ctrlr_get_next_active_ns(g_ctrlr, 1), 2);
	run_on(0, remove_ns_msg, NULL, 10);
	want = 2;
	run_on(1, wait_aer_msg, &want, 20);
	assert_null(mimo_nvme_ctrlr_get_ns(g_ctrlr, 2));
	run_on(1, detach_msg, NULL, 20);
	rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "Hot"));
	stop_target();
}

/* --- 3: keep-alive expiry ----------------------------------------------------------------- */

static void count_ctrlrs_msg(void *arg)
{
	json_t *c = mimo_nvmf_subsystem_controllers_json(g_subsys);

	*(size_t *)arg = json_array_size(c);
	json_decref(c);
	sem_post(&g_sem);
}

static size_t controllers(void)
{
	size_t n = 0;

	run_on(0, count_ctrlrs_msg, &n, 10);
	return n;
}

static void admin_once_msg(void *arg)
{
	*(int *)arg = mimo_nvme_ctrlr_process_admin_completions(g_ctrlr);
	sem_post(&g_sem);
}

static void test_silent_host_is_disconnected_after_kato(void **state)
{
	struct mimo_nvme_ctrlr_opts o;
	int rc = 0;

	(void)state;
	start_target(0x1);
	mimo_nvme_ctrlr_opts_init(&o);
	o.keep_alive_timeout_ms = 1000;
	run_on(1, connect_msg, &o, 20);
	assert_non_null(g_ctrlr);
	assert_int_equal(controllers(), 1);
	/* The host says nothing (its admin queue is not processed) for well over its KATO. */
	for (int i = 0; i < 40 && controllers() != 0; i++)
		usleep(100000);
	assert_int_equal(controllers(), 0);
	/* The host finds out the next time it looks. */
	for (int i = 0; i < 100 && rc >= 0; i++)
		run_on(1, admin_once_msg, &rc, 10);
	assert_int_equal(rc, -ENXIO);
	assert_false(mimo_nvme_ctrlr_is_connected(g_ctrlr));
	run_on(1, detach_msg, NULL, 20);
	stop_target();
}

/* --- 4: a non-blocking initiator on the target's own reactor ------------------------------- */

enum step {
	CONNECTING,
	QPAIR,
	WRITING,
	READING,
	DETACHING,
	DONE
};

struct machine {
	enum step step;
	struct mimo_nvme_connect_ctx *cctx;
	struct mimo_nvme_detach_ctx *dctx;
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_qpair *qp;
	struct mimo_poller *poller;
	struct io_wait w;
	uint8_t wbuf[DEPTH][BLOCKS * 512], rbuf[DEPTH][BLOCKS * 512];
};

static void submit_all(struct machine *m, bool write)
{
	struct mimo_nvme_ns *ns = mimo_nvme_ctrlr_get_ns(m->ctrlr, 1);

	for (int d = 0; d < DEPTH; d++) {
		m->w.pending++;
		if (write) {
			pattern(m->wbuf[d], sizeof(m->wbuf[d]), 7000 + (uint32_t)d);
			CHECK(mimo_nvme_ns_cmd_write(ns, m->qp, m->wbuf[d], (uint64_t)d * BLOCKS,
						     BLOCKS, io_cb, &m->w, 0) == 0);
		} else {
			CHECK(mimo_nvme_ns_cmd_read(ns, m->qp, m->rbuf[d], (uint64_t)d * BLOCKS,
						    BLOCKS, io_cb, &m->w, 0) == 0);
		}
	}
}

/* One step at a time, never waiting: the reactor goes on serving the target in between. */
static int machine_poll(void *arg)
{
	struct machine *m = arg;
	int rc;

	switch (m->step) {
	case CONNECTING:
		rc = mimo_nvme_connect_poll(m->cctx, &m->ctrlr);
		if (rc == -EAGAIN)
			return 1;
		CHECK(rc == 0);
		if (rc != 0) {
			m->step = DONE;
			break;
		}
		CHECK(mimo_nvme_ctrlr_alloc_io_qpair(m->ctrlr, NULL, &m->qp) == 0);
		m->step = QPAIR;
		return 1;
	case QPAIR:
		CHECK(mimo_nvme_qpair_process_completions(m->qp, 0) >= 0);
		if (!mimo_nvme_qpair_is_connected(m->qp))
			return 1;
		submit_all(m, true);
		m->step = WRITING;
		return 1;
	case WRITING:
	case READING:
		CHECK(mimo_nvme_qpair_process_completions(m->qp, 0) >= 0);
		mimo_nvme_ctrlr_process_admin_completions(m->ctrlr);
		if (m->w.pending != 0)
			return 1;
		CHECK(m->w.errors == 0);
		if (m->step == WRITING) {
			submit_all(m, false);
			m->step = READING;
			return 1;
		}
		CHECK(memcmp(m->wbuf, m->rbuf, sizeof(m->wbuf)) == 0);
		mimo_nvme_ctrlr_free_io_qpair(m->qp);
		CHECK(mimo_nvme_detach_async(m->ctrlr, &m->dctx) == 0);
		m->step = DETACHING;
		return 1;
	case DETACHING:
		rc = mimo_nvme_detach_poll(m->dctx);
		if (rc == -EAGAIN)
			return 1;
		CHECK(rc == 0);
		m->step = DONE;
		break;
	case DONE:
		return 0;
	}
	mimo_poller_unregister(&m->poller);
	sem_post(&g_sem);
	return 1;
}

static void machine_start(void *arg)
{
	struct machine *m = arg;
	struct mimo_nvme_trid t;

	trid(&t);
	CHECK(mimo_nvme_connect_async(&t, NULL, &m->cctx) == 0);
	m->poller = mimo_poller_register(machine_poll, m, 0);
}

static void test_nonblocking_initiator_on_the_targets_reactor(void **state)
{
	struct machine *m = calloc(1, sizeof(*m));

	(void)state;
	/* The target's I/O queues on both reactors, the initiator on reactor 0 as well. */
	start_target(0x3);
	run_on(0, machine_start, m, 60);
	assert_int_equal(m->step, DONE);
	free(m);
	stop_target();
}

/* --- 5, 6: the same over the loop transport ------------------------------------------------ */

static void test_blocking_initiator_over_loop(void **state)
{
	g_loop = true;
	test_blocking_initiator_on_another_reactor(state);
	g_loop = false;
}

static void test_nonblocking_initiator_over_loop_on_the_targets_reactor(void **state)
{
	g_loop = true;
	test_nonblocking_initiator_on_the_targets_reactor(state);
	g_loop = false;
}

/* --- set-up -------------------------------------------------------------------------------- */

static int setup(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	mimo_register_nvmf();
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	return mimo_reactors_start(&o);
}

static int teardown(void **state)
{
	(void)state;
	mimo_reactors_stop();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocking_initiator_on_another_reactor),
		cmocka_unit_test(test_hot_added_namespace_raises_an_event),
		cmocka_unit_test(test_silent_host_is_disconnected_after_kato),
		cmocka_unit_test(test_nonblocking_initiator_on_the_targets_reactor),
		cmocka_unit_test(test_blocking_initiator_over_loop),
		cmocka_unit_test(test_nonblocking_initiator_over_loop_on_the_targets_reactor),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
