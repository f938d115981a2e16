/*
 * Fuzz the NVMe/TCP target through its front door: a real target (reactors, a malloc bdev as
 * namespace 1 of a subsystem, a TCP listener on loopback) gets each input as the byte stream
 * of one connection. The first byte picks how far the harness takes the connection first, so
 * the fuzzer reaches every state: 0 raw bytes, 1 after ICReq, 2 after ICReq with digests,
 * 3 on a connected admin queue, 4 on a connected I/O queue of an enabled controller.
 *
 * FUZZ_SOCK_IMPL=uring serves the connection through the reactors' io_uring instead of epoll
 * (lib/nvmf/tcp_uring.c: the bytes reach the parser through mimo_tcp_rx_feed, from the
 * kernel's receive buffers).
 *
 * Properties: nothing crashes, leaks or trips a sanitizer; every connection ends (the target
 * answers or closes, never hangs); and once the connection is gone, every queue pair the
 * target had for it is freed, so nothing accumulates across inputs.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bdev_malloc.h"
#include "mimo/bdev.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvme_spec.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"
#include "nvme_tcp.h"

#define NQN  "nqn.2016-06.io.mimo:fuzz"
#define HOST "nqn.2014-08.org.nvmexpress:uuid:00000000-1111-2222-3333-444444444444"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mimo_nvmf_tgt *g_tgt;
static uint16_t g_port;
static sem_t g_done;
static int g_rc;

/* libFuzzer's timeout alarm interrupts waits: wait again. */
static void wait_done(void)
{
	while (sem_wait(&g_done) != 0 && errno == EINTR)
		;
}

/* --- running things on reactor 0 ----------------------------------------------------------- */

static void rpc_done(void *arg, json_t *response)
{
	(void)arg;
	g_rc = json_object_get(response, "error") != NULL ? -1 : 0;
	if (g_rc != 0) {
		char *s = json_dumps(response, 0);

		fprintf(stderr, "fuzz set-up: %s\n", s);
		free(s);
	}
	json_decref(response);
	sem_post(&g_done);
}

static void rpc_on_reactor(void *arg)
{
	json_t *req = arg;
	int rc = mimo_jsonrpc_call_local(req, rpc_done, NULL);

	json_decref(req); /* the call borrows it */
	if (rc != 0) {
		g_rc = -1;
		sem_post(&g_done);
	}
}

static void rpc(const char *method, json_t *params)
{
	json_t *req = json_pack("{s:s, s:s, s:i, s:o}", "jsonrpc", "2.0", "method", method, "id", 1,
				"params", params);

	mimo_reactor_send_msg(mimo_reactor_get(0), rpc_on_reactor, req);
	wait_done();
	if (g_rc != 0)
		abort();
}

static void create_tgt(void *arg)
{
	(void)arg;
	g_rc = mimo_nvmf_tgt_create("nvmf_tgt", NULL, &g_tgt);
	sem_post(&g_done);
}

static void count_qpairs(void *arg)
{
	json_t *t = mimo_nvmf_tgt_transports_json(g_tgt);

	*(int *)arg = (int)json_integer_value(json_object_get(json_array_get(t, 0), "num_qpairs"));
	json_decref(t);
	sem_post(&g_done);
}

static int qpairs(void)
{
	int n = -1;

	mimo_reactor_send_msg(mimo_reactor_get(0), count_qpairs, &n);
	wait_done();
	return n;
}

static void torn_down(void *arg)
{
	(void)arg;
	sem_post(&g_done);
}

static void tgt_destroyed(void *arg)
{
	(void)arg;
	mimo_bdev_delete_all(torn_down, NULL);
}

static void teardown_on_reactor(void *arg)
{
	(void)arg;
	mimo_nvmf_tgt_destroy(g_tgt, tgt_destroyed, NULL);
}

/* At exit, everything goes, so the leak check at exit sees only what an input leaked. */
static void teardown(void)
{
	mimo_reactor_send_msg(mimo_reactor_get(0), teardown_on_reactor, NULL);
	wait_done();
	mimo_reactors_stop();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mimo_reactor_opts o;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char port[8];
	int s;

	(void)argc;
	(void)argv;
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	if (getenv("MIMO_LOG") == NULL)
		setenv("MIMO_LOG", "error", 1);
	mimo_register_nvmf();
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_done, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	if (mimo_reactors_start(&o) != 0) {
		o.core_mask = 0x1;
		if (mimo_reactors_start(&o) != 0)
			abort();
	}
	mimo_reactor_send_msg(mimo_reactor_get(0), create_tgt, NULL);
	wait_done();
	if (g_rc != 0)
		abort();
	/* A free port: bind to 0, read it back, let go. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	bind(s, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(s, (struct sockaddr *)&sa, &len);
	g_port = ntohs(sa.sin_port);
	close(s);
	snprintf(port, sizeof(port), "%u", g_port);
	rpc("bdev_malloc_create",
	    json_pack("{s:s, s:i, s:i}", "name", "Fuzz0", "num_blocks", 2048, "block_size", 512));
	rpc("nvmf_create_transport", json_pack("{s:s}", "trtype", "TCP"));
	/* With ANA reporting, so that its Identify fields, log page and path checks are fuzzed. */
	rpc("nvmf_create_subsystem",
	    json_pack("{s:s, s:b, s:b}", "nqn", NQN, "allow_any_host", 1, "ana_reporting", 1));
	rpc("nvmf_subsystem_add_ns",
	    json_pack("{s:s, s:{s:s}}", "nqn", NQN, "namespace", "bdev_name", "Fuzz0"));
	rpc("nvmf_subsystem_add_listener",
	    json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "nqn", NQN, "sock_impl",
		      getenv("FUZZ_SOCK_IMPL") != NULL ? getenv("FUZZ_SOCK_IMPL") : "posix",
		      "listen_address", "trtype", "TCP", "traddr", "127.0.0.1", "trsvcid", port));
	atexit(teardown);
	return 0;
}

/* --- a host, as far as the mode asks -------------------------------------------------------- */

static int dial(void)
{
	/* Inputs come faster than TIME_WAIT lets ports go: spread the source over 127/8 and
	 * reset on close. */
	static uint32_t next_src;
	struct sockaddr_in src = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(0x7f000002 + next_src++ % 250) };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(g_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
		abort();
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		socklen_t len = sizeof(int);
		int err = 0;

		if (errno != EINTR)
			abort();
		/* Interrupted by libFuzzer's alarm: the connection goes on; wait for it. */
		while (poll(&p, 1, 5000) < 0 && errno == EINTR)
			;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0)
			abort();
		break;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	/* A target that never answers shows up as a read timeout: a hang, reported as such. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	while (n != 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue; /* libFuzzer's timeout alarm */
		if (k <= 0)
			return; /* the target may close first: that is its right */
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
}

static bool recv_all(int fd, void *p, size_t n)
{
	while (n != 0) {
		ssize_t k = recv(fd, p, n, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p = (uint8_t *)p + k;
		n -= (size_t)k;
	}
	return true;
}

/* One PDU of the target's: its header and whatever follows, into buf. */
static bool recv_pdu(int fd, uint8_t *buf, size_t cap)
{
	struct mimo_nvme_tcp_ch *ch = (void *)buf;

	if (!recv_all(fd, buf, sizeof(*ch)) || ch->plen < sizeof(*ch) || ch->plen > cap)
		return false;
	return recv_all(fd, buf + sizeof(*ch), ch->plen - sizeof(*ch));
}

static void icreq(int fd, uint8_t dgst)
{
	struct mimo_nvme_tcp_ic ic = { 0 };
	uint8_t resp[128];

	ic.ch.pdu_type = MIMO_NVME_TCP_IC_REQ;
	ic.ch.hlen = ic.ch.plen = sizeof(ic);
	ic.dgst = dgst;
	send_all(fd, &ic, sizeof(ic));
	if (!recv_pdu(fd, resp, sizeof(resp)))
		abort();
}

/* A capsule (no digests) and its response: returns CQE DW0, aborts on failure. */
static uint32_t command(int fd, struct mimo_nvme_cmd *sqe, const void *icd, uint32_t len)
{
	uint8_t hdr[MIMO_TCP_HDR_BUF] = { 0 }, resp[8192];
	struct mimo_nvme_tcp_cmd *c = (void *)hdr;
	struct mimo_nvme_tcp_rsp *r = (void *)resp;
	uint32_t front;

	c->sqe = *sqe;
	front = mimo_tcp_hdr_build(hdr, MIMO_NVME_TCP_CAPSULE_CMD, 0, len, false, false, 0);
	send_all(fd, hdr, front);
	send_all(fd, icd, len);
	if (!recv_pdu(fd, resp, sizeof(resp)) || r->ch.pdu_type != MIMO_NVME_TCP_CAPSULE_RESP ||
	    (r->cqe.status >> 1) != 0)
		abort();
	return r->cqe.cdw0;
}

static uint16_t connect_queue(int fd, uint16_t qid, uint16_t cntlid)
{
	struct mimo_nvmf_connect_data d = { .cntlid = cntlid };
	struct mimo_nvme_cmd sqe = { 0 };
	struct mimo_nvmf_connect_cmd *c = (void *)&sqe;

	memset(d.hostid, 0x5a, sizeof(d.hostid));
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", HOST);
	c->opc = MIMO_NVME_OPC_FABRIC;
	c->fctype = MIMO_NVMF_FCTYPE_CONNECT;
	c->cid = 1;
	c->qid = qid;
	c->sqsize = 31;
	c->sgl1.length = sizeof(d);
	c->sgl1.id = MIMO_NVME_SGL_DATA_BLOCK_OFFSET;
	return (uint16_t)command(fd, &sqe, &d, sizeof(d));
}

static void enable(int fd)
{
	struct mimo_nvme_cmd sqe = { 0 };
	struct mimo_nvmf_prop_cmd *p = (void *)&sqe;

	p->opc = MIMO_NVME_OPC_FABRIC;
	p->fctype = MIMO_NVMF_FCTYPE_PROPERTY_SET;
	p->cid = 2;
	p->ofst = MIMO_NVME_REG_CC;
	p->value = MIMO_NVME_CC_EN;
	command(fd, &sqe, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode, sink[65536];
	int fd, admin = -1;
	struct timespec t0, t1;
	ssize_t got;

	if (size == 0)
		return 0;
	mode = data[0] % 5;
	data++;
	size--;
	fd = dial();
	if (mode >= 1)
		icreq(fd, mode == 2 ? 3 : 0);
	if (mode >= 3) {
		uint16_t cntlid = connect_queue(fd, 0, 0xffff);

		if (mode == 4) {
			enable(fd);
			admin = fd;
			fd = dial();
			icreq(fd, 0);
			connect_queue(fd, 1, cntlid);
		}
	}
	send_all(fd, data, size);
	shutdown(fd, SHUT_WR);
	/* Whatever it answers, the target must end the connection once the input ended. */
	while ((got = recv(fd, sink, sizeof(sink), 0)) > 0 || (got < 0 && errno == EINTR))
		;
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		abort(); /* hung: no close within 5 s */
	close(fd);
	if (admin >= 0)
		close(admin);
	/* Every queue pair of this input must be freed before the next one. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (qpairs() != 0) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 5)
			abort();
		usleep(100);
	}
	return 0;
}
