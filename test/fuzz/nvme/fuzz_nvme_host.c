/*
 * Fuzz the initiator's receive path: a queue pair that has sent ICReq gets a valid ICResp
 * (digests and MAXH2CDATA chosen by the first input byte), optionally the response to its
 * Fabrics Connect, has reads, writes (in-capsule and R2T) and a flush outstanding, and is
 * then fed the rest of the input as what the controller sent.
 *
 * Properties: nothing crashes, overruns a buffer or leaks; every command submitted completes
 * exactly once (by the controller or, when the queue dies, aborted); a read's data lands only
 * in its own buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "nvme_internal.h"

#define GUARD 64

struct cmd {
	int calls;
	uint8_t *buf; /* GUARD bytes of 0xee either side of len */
	uint32_t len;
};

static struct mimo_nvme_ctrlr *g_ctrlr;
static struct mimo_nvme_ns g_ns;

static void done_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct cmd *c = arg;

	(void)cpl;
	c->calls++;
}

static void drain(int fd)
{
	uint8_t sink[65536];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static size_t build(uint8_t *out, const void *hdr, uint8_t type, bool hd)
{
	uint8_t h[MIMO_TCP_HDR_BUF] = { 0 };
	uint32_t n;

	memcpy(h, hdr, mimo_tcp_pdu_hlen(type));
	n = mimo_tcp_hdr_build(h, type, 0, 0, hd, false, 0);
	memcpy(out, h, n);
	return n;
}

static int init(void)
{
	struct mimo_nvme_trid t;
	struct mimo_nvme_ctrlr_opts o;

	/* Every bad input fails a queue: warnings about it are noise here. */
	setenv("MIMO_LOG", "error", 0);
	mimo_log_reload_level();
	if (mimo_nvme_trid_parse(&t, "traddr:127.0.0.1 subnqn:nqn.2016-06.io.fuzz:c1") != 0)
		return -1;
	mimo_nvme_ctrlr_opts_init(&o);
	if (nvme_ctrlr_alloc(&t, &o, &g_ctrlr) != 0)
		return -1;
	g_ctrlr->cntlid = 1;
	g_ctrlr->io_icd = 4096;
	g_ctrlr->max_xfer = 1u << 20;
	g_ns.ctrlr = g_ctrlr;
	g_ns.id = 1;
	g_ns.sector_size = 512;
	g_ns.num_sectors = 1 << 20;
	g_ns.active = true;
	return 0;
}

static uint8_t *guarded(uint32_t len)
{
	uint8_t *b = malloc(len + 2 * GUARD);

	memset(b, 0xee, len + 2 * GUARD);
	return b;
}

static void check_guards(const struct cmd *c)
{
	for (uint32_t i = 0; i < GUARD; i++)
		if (c->buf[i] != 0xee || c->buf[GUARD + c->len + i] != 0xee)
			abort(); /* data landed outside its command's buffer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t maxh2c[4] = { 4096, 8192, 65536, 131072 };
	struct cmd cmds[6] = { 0 };
	struct mimo_nvme_tcp_ic ic = { 0 };
	struct mimo_nvme_tcp_rsp rsp = { 0 };
	struct mimo_nvme_qpair *qp;
	uint8_t out[256];
	uint8_t flags;
	bool hd, dd;
	int sv[2];
	size_t n;

	if (size < 1)
		return 0;
	if (g_ctrlr == NULL && init() != 0)
		abort();
	flags = data[0];
	hd = flags & 1;
	dd = (flags >> 1) & 1;
	g_ctrlr->opts.header_digest = hd;
	g_ctrlr->opts.data_digest = dd;
	if (nvme_qpair_create(g_ctrlr, 1, 16, &qp) != 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	/* Room for everything the queue sends, so no send ever waits. */
	{
		int big = 4 << 20;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	nvme_qpair_start_fd(qp, sv[0]);

	/* A valid ICResp: the connection is past initialization. */
	ic.dgst = (uint8_t)((hd ? 1 : 0) | (dd ? 2 : 0));
	ic.pda = (flags >> 4) & 1 ? 3 : 0;
	ic.maxr2t_or_maxh2cdata = maxh2c[(flags >> 2) & 3];
	memcpy(out, &ic, sizeof(ic));
	mimo_tcp_hdr_build(out, MIMO_NVME_TCP_IC_RESP, 0, 0, false, false, 0);
	(void)nvme_qpair_feed(qp, out, sizeof(ic));
	/* Usually the Connect's response too (slot 0); else the input must bring it. */
	if (!(flags & 0x80)) {
		rsp.cqe.cid = 0;
		n = build(out, &rsp, MIMO_NVME_TCP_CAPSULE_RESP, hd);
		(void)nvme_qpair_feed(qp, out, n);
	}

	/* Outstanding: two reads, an in-capsule write, an R2T write, a flush, a DSM. */
	{
		static const uint32_t lens[6] = { 4096, 65536, 2048, 32768, 0, 16 };

		for (int i = 0; i < 6; i++) {
			cmds[i].len = lens[i];
			cmds[i].buf = guarded(lens[i]);
		}
	}
	mimo_nvme_ns_cmd_read(&g_ns, qp, cmds[0].buf + GUARD, 0, 8, done_cb, &cmds[0], 0);
	mimo_nvme_ns_cmd_read(&g_ns, qp, cmds[1].buf + GUARD, 8, 128, done_cb, &cmds[1], 0);
	mimo_nvme_ns_cmd_write(&g_ns, qp, cmds[2].buf + GUARD, 0, 4, done_cb, &cmds[2], 0);
	mimo_nvme_ns_cmd_write(&g_ns, qp, cmds[3].buf + GUARD, 0, 64, done_cb, &cmds[3], 0);
	mimo_nvme_ns_cmd_flush(&g_ns, qp, done_cb, &cmds[4]);
	mimo_nvme_ns_cmd_deallocate(&g_ns, qp,
				    (const struct mimo_nvme_dsm_range *)(cmds[5].buf + GUARD), 1,
				    done_cb, &cmds[5]);
	drain(sv[1]);

	(void)nvme_qpair_feed(qp, data + 1, size - 1);
	drain(sv[1]);
	(void)nvme_qpair_process(qp, 0);
	drain(sv[1]);

	nvme_qpair_destroy(qp);
	close(sv[1]);
	for (int i = 0; i < 6; i++) {
		if (cmds[i].calls != 1) {
			fprintf(stderr, "command %d completed %d times\n", i, cmds[i].calls);
			abort(); /* every command completes exactly once */
		}
		check_guards(&cmds[i]);
		free(cmds[i].buf);
	}
	return 0;
}
