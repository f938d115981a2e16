/*
 * The subprocess helper of the NVMe-oF tests, in C (the seed's NvmfTarget): start mimo_tgt as
 * an NVMe/TCP target on a port, configure it by JSON-RPC, wait until it takes connections, and
 * stop only that process. A PID file per port lets a later run clean up what a crashed one
 * left, without touching anything else. Python tests have the same in nvmf_target.py.
 */
#ifndef MIMO_TEST_TGT_PROCESS_H
#define MIMO_TEST_TGT_PROCESS_H

#include <stdint.h>
#include <sys/types.h>

#define TEST_TGT_NQN "nqn.2016-06.io.mimo:cnode1"

struct test_tgt {
	pid_t pid;
	uint16_t port;
	char sock[108];
	char pid_file[256];
	char trid[512]; /* "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:PORT subnqn:NQN" */
};

/* Kill the mimo_tgt a previous run started for port (only if it is still mimo_tgt). Returns
 * 1 when one was killed, 0 when there was none, -errno on failure. */
int test_tgt_cleanup_stale(uint16_t port);

/* Start binary (NULL: $MIMO_TGT_BIN) with core mask cores, serving a malloc bdev of mib MiB
 * as namespace 1 of TEST_TGT_NQN on 127.0.0.1:port (0: a free port). Returns 0 or -errno. */
int test_tgt_start(const char *binary, const char *cores, uint16_t port, uint32_t mib,
		   struct test_tgt *t);

/* Send one JSON-RPC request (params: JSON text or NULL) and wait for its answer; 0 when it
 * succeeded. result (may be NULL) gets the result as JSON text (free it). */
int test_tgt_rpc(const struct test_tgt *t, const char *method, const char *params, char **result);

/* SIGTERM, wait (SIGKILL after 10 s), remove the PID file. Returns the exit status. */
int test_tgt_stop(struct test_tgt *t);

#endif
