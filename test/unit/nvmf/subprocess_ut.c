/*
 * The C subprocess helper (test/common/tgt_process.c) as a test of its own and an example:
 * mimo_tgt started on a free port, configured by RPC, reached with the initiator, stopped;
 * and a target a crashed run left behind, found through its PID file and cleaned up.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mimo/nvme.h"
#include "tgt_process.h"

static void cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	*(int *)arg = mimo_nvme_cpl_is_error(cpl) ? -EIO : 1;
}

static void test_start_use_stop(void **state)
{
	static uint8_t out[8192], in[8192];
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_qpair *qp;
	struct mimo_nvme_trid trid;
	struct mimo_nvme_ns *ns;
	struct test_tgt t;
	int done = 0;
	char *res = NULL;

	(void)state;
	assert_int_equal(test_tgt_start(NULL, "0x1", 0, 16, &t), 0);
	assert_int_equal(test_tgt_rpc(&t, "nvmf_get_subsystems", NULL, &res), 0);
	assert_non_null(strstr(res, TEST_TGT_NQN));
	free(res);
	assert_int_equal(mimo_nvme_trid_parse(&trid, t.trid), 0);
	assert_int_equal(mimo_nvme_connect(&trid, NULL, &ctrlr), 0);
	ns = mimo_nvme_ctrlr_get_ns(ctrlr, 1);
	assert_non_null(ns);
	assert_int_equal(mimo_nvme_ns_get_num_sectors(ns), 16 * 2048);
	assert_int_equal(mimo_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &qp), 0);
	assert_int_equal(mimo_nvme_qpair_wait_connected(qp, 5000), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13 + 5);
	assert_int_equal(mimo_nvme_ns_cmd_write(ns, qp, out, 64, 16, cb, &done, 0), 0);
	while (done == 0)
		assert_true(mimo_nvme_qpair_process_completions(qp, 0) >= 0);
	assert_int_equal(done, 1);
	done = 0;
	assert_int_equal(mimo_nvme_ns_cmd_read(ns, qp, in, 64, 16, cb, &done, 0), 0);
	while (done == 0)
		assert_true(mimo_nvme_qpair_process_completions(qp, 0) >= 0);
	assert_memory_equal(in, out, sizeof(in));
	mimo_nvme_ctrlr_free_io_qpair(qp);
	assert_int_equal(mimo_nvme_detach(ctrlr), 0);
	/* A clean exit, and nothing left behind. */
	assert_int_equal(test_tgt_stop(&t), 0);
	assert_int_equal(access(t.pid_file, F_OK), -1);
}

static void test_stale_target_is_cleaned_up(void **state)
{
	struct test_tgt t, again;
	uint16_t port;

	(void)state;
	assert_int_equal(test_tgt_start(NULL, "0x1", 0, 4, &t), 0);
	port = t.port;
	/* The run that started it "crashed": the process and its PID file are still there. */
	assert_int_equal(access(t.pid_file, F_OK), 0);
	assert_int_equal(test_tgt_cleanup_stale(port), 1);
	assert_int_equal(kill(t.pid, 0), 0); /* a zombie until we reap it */
	t.pid = 0;
	/* The port is free again for the next run, and a dead one's file is just removed. */
	assert_int_equal(test_tgt_start(NULL, "0x1", port, 4, &again), 0);
	assert_int_equal(test_tgt_stop(&again), 0);
	assert_int_equal(test_tgt_cleanup_stale(port), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_use_stop),
		cmocka_unit_test(test_stale_target_is_cleaned_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
