/*
 * The host's queue pair against a scripted controller: what it sends is read off a socket
 * pair and checked field by field; what the controller "sends" is fed to the receive path.
 * Covers the handshake, reads (split C2HData, SUCCESS), writes (in-capsule, R2T with several
 * H2CData PDUs), digests, queue limits, and the protocol errors that end a connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvme_internal.h"

#define CNTLID 5

struct env {
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_qpair *qp;
	struct mimo_nvme_ns ns;
	int peer;
	bool hd, dd;
	uint32_t maxh2c;
};

struct pdu {
	uint8_t hdr[256];
	uint8_t data[65536];
	uint32_t hlen, dlen;
};

/* --- the controller's side ------------------------------------------------------------------ */

static void read_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_true(poll(&pf, 1, 2000) == 1);
		n = read(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static bool peer_empty(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	return poll(&pf, 1, 0) == 0;
}

/* One PDU the host sent: header (with digest and padding) and its data, digests checked. */
static void next_pdu(struct env *e, struct pdu *p)
{
	struct mimo_nvme_tcp_ch *ch = (struct mimo_nvme_tcp_ch *)p->hdr;
	uint32_t front;

	read_exact(e->peer, p->hdr, sizeof(*ch));
	front = ch->plen;
	if (ch->pdo != 0)
		front = ch->pdo;
	else if (ch->flags & MIMO_NVME_TCP_FLAG_HDGST)
		front = ch->hlen + 4u;
	if (front > ch->plen)
		front = ch->plen;
	read_exact(e->peer, p->hdr + sizeof(*ch), front - sizeof(*ch));
	p->hlen = ch->hlen;
	if (ch->flags & MIMO_NVME_TCP_FLAG_HDGST) {
		uint32_t d;

		memcpy(&d, p->hdr + ch->hlen, 4);
		assert_int_equal(d, mimo_tcp_digest(p->hdr, ch->hlen));
	}
	p->dlen = ch->plen - front;
	if (ch->flags & MIMO_NVME_TCP_FLAG_DDGST)
		p->dlen -= 4;
	assert_true(p->dlen <= sizeof(p->data));
	read_exact(e->peer, p->data, p->dlen);
	if (ch->flags & MIMO_NVME_TCP_FLAG_DDGST) {
		uint32_t d;

		read_exact(e->peer, &d, 4);
		assert_int_equal(d, mimo_tcp_digest(p->data, p->dlen));
	}
}

static void feed(struct env *e, const void *buf, size_t len)
{
	(void)nvme_qpair_feed(e->qp, buf, len);
}

/* Feed one byte at a time: every partial-header and partial-data path. */
static void feed_bytewise(struct env *e, const void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		(void)nvme_qpair_feed(e->qp, (const uint8_t *)buf + i, 1);
}

static size_t make_pdu(struct env *e, uint8_t *out, const void *hdr, uint8_t type, uint8_t flags,
		       const void *data, uint32_t dlen)
{
	uint8_t h[MIMO_TCP_HDR_BUF] = { 0 };
	uint8_t hlen = mimo_tcp_pdu_hlen(type);
	uint32_t front;
	size_t n;

	memcpy(h, hdr, hlen);
	front = mimo_tcp_hdr_build(h, type, flags, dlen, e->hd, e->dd, 0);
	memcpy(out, h, front);
	n = front;
	if (dlen != 0) {
		memcpy(out + n, data, dlen);
		n += dlen;
		if (e->dd) {
			uint32_t d = mimo_tcp_digest(data, dlen);

			memcpy(out + n, &d, 4);
			n += 4;
		}
	}
	return n;
}

static void send_resp(struct env *e, uint16_t cid, uint16_t status, uint32_t cdw0)
{
	struct mimo_nvme_tcp_rsp r = { 0 };
	uint8_t out[64];

	r.cqe.cid = cid;
	r.cqe.status = status;
	r.cqe.cdw0 = cdw0;
	r.cqe.sqhd = 1;
	feed(e, out, make_pdu(e, out, &r, MIMO_NVME_TCP_CAPSULE_RESP, 0, NULL, 0));
}

static void send_c2h(struct env *e, uint16_t cid, uint32_t off, const void *data, uint32_t len,
		     uint8_t flags, bool bytewise)
{
	struct mimo_nvme_tcp_data d = { 0 };
	static uint8_t out[70000];
	size_t n;

	d.cccid = cid;
	d.datao = off;
	d.datal = len;
	n = make_pdu(e, out, &d, MIMO_NVME_TCP_C2H_DATA, flags, data, len);
	if (bytewise)
		feed_bytewise(e, out, n);
	else
		feed(e, out, n);
}

static void send_r2t(struct env *e, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len)
{
	struct mimo_nvme_tcp_r2t r = { 0 };
	uint8_t out[64];

	r.cccid = cid;
	r.ttag = ttag;
	r.r2to = off;
	r.r2tl = len;
	feed(e, out, make_pdu(e, out, &r, MIMO_NVME_TCP_R2T, 0, NULL, 0));
}

/* --- set-up ------------------------------------------------------------------------------------
 */

static void connect_env(struct env *e, bool hd, bool dd, uint32_t maxh2c, uint32_t entries)
{
	struct mimo_nvme_ctrlr_opts o;
	struct mimo_nvme_trid t;
	struct mimo_nvme_tcp_ic ic = { 0 };
	struct pdu *p = malloc(sizeof(*p));
	const struct mimo_nvmf_connect_cmd *c;
	const struct mimo_nvmf_connect_data *cd;
	uint8_t out[256];
	int sv[2];

	memset(e, 0, sizeof(*e));
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:127.0.0.1 subnqn:nqn.2016-06.io.t:c1"),
			 0);
	mimo_nvme_ctrlr_opts_init(&o);
	o.header_digest = hd;
	o.data_digest = dd;
	snprintf(o.hostnqn, sizeof(o.hostnqn), "nqn.2014-08.test:host");
	assert_int_equal(nvme_ctrlr_alloc(&t, &o, &e->ctrlr), 0);
	e->ctrlr->cntlid = CNTLID;
	e->ctrlr->io_icd = 4096;
	e->ctrlr->max_xfer = 1u << 20;
	e->ns.ctrlr = e->ctrlr;
	e->ns.id = 1;
	e->ns.sector_size = 512;
	e->ns.num_sectors = 1 << 20;
	e->ns.active = true;
	e->hd = hd;
	e->dd = dd;
	e->maxh2c = maxh2c;
	assert_int_equal(nvme_qpair_create(e->ctrlr, 1, entries, &e->qp), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	e->peer = sv[1];
	assert_int_equal(nvme_qpair_start_fd(e->qp, sv[0]), 0);
	assert_int_equal(nvme_qpair_process(e->qp, 0), 0); /* sends ICReq */

	/* ICReq: PFV 0, HPDA 0, the digests asked for, MAXR2T 0 (one R2T per command). */
	next_pdu(e, p);
	memcpy(&ic, p->hdr, sizeof(ic));
	assert_int_equal(ic.ch.pdu_type, MIMO_NVME_TCP_IC_REQ);
	assert_int_equal(ic.ch.hlen, 128);
	assert_int_equal(ic.ch.plen, 128);
	assert_int_equal(ic.pfv, 0);
	assert_int_equal(ic.pda, 0);
	assert_int_equal(ic.dgst, (hd ? 1 : 0) | (dd ? 2 : 0));
	assert_int_equal(ic.maxr2t_or_maxh2cdata, 0);

	/* ICResp (no digests of its own), then the Connect capsule must follow. */
	memset(&ic, 0, sizeof(ic));
	ic.dgst = (uint8_t)((hd ? 1 : 0) | (dd ? 2 : 0));
	ic.maxr2t_or_maxh2cdata = maxh2c;
	memcpy(out, &ic, sizeof(ic));
	mimo_tcp_hdr_build(out, MIMO_NVME_TCP_IC_RESP, 0, 0, false, false, 0);
	feed(e, out, sizeof(ic));
	next_pdu(e, p);
	c = (const struct mimo_nvmf_connect_cmd *)(p->hdr + 8);
	assert_int_equal(p->hdr[0], MIMO_NVME_TCP_CAPSULE_CMD);
	assert_int_equal(c->opc, MIMO_NVME_OPC_FABRIC);
	assert_int_equal(c->fctype, MIMO_NVMF_FCTYPE_CONNECT);
	assert_int_equal(c->qid, 1);
	assert_int_equal(c->sqsize, entries - 1);
	assert_int_equal(c->sgl1.id, MIMO_NVME_SGL_DATA_BLOCK_OFFSET);
	assert_int_equal(c->sgl1.length, 1024);
	assert_int_equal(p->dlen, 1024);
	cd = (const struct mimo_nvmf_connect_data *)p->data;
	assert_int_equal(cd->cntlid, CNTLID);
	assert_string_equal(cd->subnqn, "nqn.2016-06.io.t:c1");
	assert_string_equal(cd->hostnqn, "nqn.2014-08.test:host");
	assert_false(mimo_nvme_qpair_is_connected(e->qp));
	send_resp(e, c->cid, 0, 0);
	assert_true(mimo_nvme_qpair_is_connected(e->qp));
	assert_int_equal(mimo_nvme_qpair_outstanding(e->qp), 0);
	free(p);
}

static void destroy_env(struct env *e)
{
	nvme_qpair_destroy(e->qp);
	nvme_ctrlr_free(e->ctrlr);
	close(e->peer);
}

struct done {
	int calls;
	struct mimo_nvme_cpl cpl;
};

static void done_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct done *d = arg;

	d->calls++;
	d->cpl = *cpl;
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + seed);
}

/* --- tests ----------------------------------------------------------------------------------- */

static void test_read(void **state)
{
	static uint8_t buf[8192], want[8192];
	struct pdu *p = malloc(sizeof(*p));
	struct done d = { 0 };
	struct env e;
	uint16_t cid;

	(void)state;
	for (int digests = 0; digests < 2; digests++) {
		connect_env(&e, digests, digests, 65536, 32);
		fill(want, sizeof(want), 3);
		memset(buf, 0, sizeof(buf));
		memset(&d, 0, sizeof(d));
		assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 100, 16, done_cb, &d, 0),
				 0);
		assert_int_equal(mimo_nvme_qpair_outstanding(e.qp), 1);
		assert_int_equal(nvme_qpair_process(e.qp, 0), 0); /* sends it */
		next_pdu(&e, p);
		{
			const struct mimo_nvme_cmd *c = (const struct mimo_nvme_cmd *)(p->hdr + 8);

			assert_int_equal(c->opc, MIMO_NVME_OPC_READ);
			assert_int_equal(c->nsid, 1);
			assert_int_equal(c->cdw10, 100);
			assert_int_equal(c->cdw12, 15);
			assert_int_equal(c->dptr.id, MIMO_NVME_SGL_TRANSPORT_DATA);
			assert_int_equal(c->dptr.length, 8192);
			assert_int_equal(c->fuse_psdt >> 6, 1);
			assert_int_equal(p->dlen, 0);
			cid = c->cid;
		}
		/* Two C2HData PDUs, one of them fed a byte at a time; then the response. */
		send_c2h(&e, cid, 0, want, 3000, 0, true);
		send_c2h(&e, cid, 3000, want + 3000, 8192 - 3000, MIMO_NVME_TCP_FLAG_LAST_PDU,
			 false);
		assert_int_equal(d.calls, 0);
		send_resp(&e, cid, 0, 0);
		assert_int_equal(d.calls, 1);
		assert_false(mimo_nvme_cpl_is_error(&d.cpl));
		assert_memory_equal(buf, want, sizeof(want));
		assert_int_equal(mimo_nvme_qpair_outstanding(e.qp), 0);

		/* SUCCESS on the last C2HData completes it: no response follows. */
		memset(&d, 0, sizeof(d));
		assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
		assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
		next_pdu(&e, p);
		cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
		send_c2h(&e, cid, 0, want, 4096,
			 MIMO_NVME_TCP_FLAG_LAST_PDU | MIMO_NVME_TCP_FLAG_SUCCESS, false);
		assert_int_equal(d.calls, 1);
		assert_false(mimo_nvme_cpl_is_error(&d.cpl));
		assert_true(mimo_nvme_qpair_is_connected(e.qp));
		destroy_env(&e);
	}
	free(p);
}

static void test_write_in_capsule(void **state)
{
	static uint8_t data[4096];
	struct pdu *p = malloc(sizeof(*p));
	struct done d = { 0 };
	struct env e;
	const struct mimo_nvme_cmd *c;

	(void)state;
	connect_env(&e, true, true, 65536, 32);
	fill(data, sizeof(data), 9);
	assert_int_equal(mimo_nvme_ns_cmd_write(&e.ns, e.qp, data, 8, 8, done_cb, &d,
						MIMO_NVME_IO_FLAGS_FUA),
			 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	c = (const struct mimo_nvme_cmd *)(p->hdr + 8);
	assert_int_equal(c->opc, MIMO_NVME_OPC_WRITE);
	assert_int_equal(c->cdw12, 7u | MIMO_NVME_IO_FLAGS_FUA);
	assert_int_equal(c->dptr.id, MIMO_NVME_SGL_DATA_BLOCK_OFFSET);
	assert_int_equal(c->dptr.address, 0);
	assert_int_equal(p->dlen, sizeof(data));
	assert_memory_equal(p->data, data, sizeof(data));
	send_resp(&e, c->cid, 0, 0);
	assert_int_equal(d.calls, 1);
	destroy_env(&e);
	free(p);
}

static void test_write_r2t(void **state)
{
	static uint8_t data[16384];
	struct pdu *p = malloc(sizeof(*p));
	struct done d = { 0 };
	struct env e;
	uint16_t cid;

	(void)state;
	/* MAXH2CDATA 4096: each R2T's range goes out in 4 KiB PDUs, LAST_PDU on its final one. */
	connect_env(&e, false, true, 4096, 32);
	fill(data, sizeof(data), 1);
	assert_int_equal(mimo_nvme_ns_cmd_write(&e.ns, e.qp, data, 0, 32, done_cb, &d, 0), 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
	assert_int_equal(((const struct mimo_nvme_cmd *)(p->hdr + 8))->dptr.id,
			 MIMO_NVME_SGL_TRANSPORT_DATA);
	assert_int_equal(p->dlen, 0);
	for (int r = 0; r < 2; r++) {
		send_r2t(&e, cid, (uint16_t)(0x40 + r), (uint32_t)r * 8192, 8192);
		for (int i = 0; i < 2; i++) {
			const struct mimo_nvme_tcp_data *h;
			uint32_t off = (uint32_t)r * 8192 + (uint32_t)i * 4096;

			next_pdu(&e, p);
			h = (const struct mimo_nvme_tcp_data *)p->hdr;
			assert_int_equal(h->ch.pdu_type, MIMO_NVME_TCP_H2C_DATA);
			assert_int_equal(h->cccid, cid);
			assert_int_equal(h->ttag, 0x40 + r);
			assert_int_equal(h->datao, off);
			assert_int_equal(h->datal, 4096);
			assert_int_equal(!!(h->ch.flags & MIMO_NVME_TCP_FLAG_LAST_PDU), i == 1);
			assert_memory_equal(p->data, data + off, 4096);
		}
		assert_true(peer_empty(e.peer));
	}
	send_resp(&e, cid, 0, 0);
	assert_int_equal(d.calls, 1);
	assert_false(mimo_nvme_cpl_is_error(&d.cpl));
	destroy_env(&e);
	free(p);
}

static void test_queue_limits(void **state)
{
	static uint8_t buf[512];
	struct done d = { 0 };
	struct env e;

	(void)state;
	connect_env(&e, false, false, 65536, 8);
	/* 8 entries: 7 commands at most, the 8th finds the queue full. */
	for (int i = 0; i < 7; i++)
		assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 1, done_cb, &d, 0), 0);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 1, done_cb, &d, 0), -ENOMEM);
	/* What no command may carry. */
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 0, done_cb, &d, 0), -EINVAL);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 65537, done_cb, &d, 0),
			 -EINVAL);
	assert_int_equal(mimo_nvme_qpair_outstanding(e.qp), 7);
	/* Freeing the queue completes all of them, aborted. */
	nvme_qpair_destroy(e.qp);
	e.qp = NULL;
	assert_int_equal(d.calls, 7);
	assert_int_equal(mimo_nvme_status_sc(d.cpl.status), MIMO_NVME_SC_ABORTED_SQ_DELETION);
	nvme_ctrlr_free(e.ctrlr);
	close(e.peer);
}

static void test_ddgst_error(void **state)
{
	static uint8_t buf[4096], want[4096];
	struct pdu *p = malloc(sizeof(*p));
	struct mimo_nvme_tcp_data h = { 0 };
	struct done d = { 0 };
	static uint8_t out[8192];
	struct env e;
	size_t n;
	uint16_t cid;

	(void)state;
	connect_env(&e, false, true, 65536, 32);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
	h.cccid = cid;
	h.datal = sizeof(want);
	n = make_pdu(&e, out, &h, MIMO_NVME_TCP_C2H_DATA, MIMO_NVME_TCP_FLAG_LAST_PDU, want,
		     sizeof(want));
	out[n - 1] ^= 1; /* the data digest */
	feed(&e, out, n);
	send_resp(&e, cid, 0, 0);
	/* The target said success; the data did not arrive intact: a transfer error. */
	assert_int_equal(d.calls, 1);
	assert_int_equal(mimo_nvme_status_sc(d.cpl.status), MIMO_NVME_SC_DATA_TRANSFER_ERROR);
	assert_true(mimo_nvme_qpair_is_connected(e.qp));
	destroy_env(&e);
	free(p);
}

static void test_protocol_errors(void **state)
{
	static uint8_t buf[4096];
	struct pdu *p = malloc(sizeof(*p));
	struct done d = { 0 };
	struct env e;
	uint16_t cid;

	(void)state;
	/* C2HData for a command never sent: H2CTermReq, connection closed, all aborted. */
	connect_env(&e, false, false, 65536, 32);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
	send_c2h(&e, (uint16_t)(cid + 5), 0, buf, 512, MIMO_NVME_TCP_FLAG_LAST_PDU, false);
	next_pdu(&e, p);
	{
		const struct mimo_nvme_tcp_term_req *t =
			(const struct mimo_nvme_tcp_term_req *)p->hdr;

		assert_int_equal(t->ch.pdu_type, MIMO_NVME_TCP_H2C_TERM_REQ);
		assert_int_equal(t->fes, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD);
		assert_int_equal(t->fei, offsetof(struct mimo_nvme_tcp_data, cccid));
		assert_int_equal(p->dlen, 24); /* the offending header */
	}
	assert_int_equal(d.calls, 1);
	assert_int_equal(mimo_nvme_status_sc(d.cpl.status), MIMO_NVME_SC_ABORTED_SQ_DELETION);
	assert_false(mimo_nvme_qpair_is_connected(e.qp));
	assert_int_equal(nvme_qpair_process(e.qp, 0), -ENXIO);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), -ENXIO);
	destroy_env(&e);

	/* Data beyond the command's buffer. */
	memset(&d, 0, sizeof(d));
	connect_env(&e, false, false, 65536, 32);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 1, done_cb, &d, 0), 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
	send_c2h(&e, cid, 0, buf, 1024, 0, false);
	next_pdu(&e, p);
	assert_int_equal(p->hdr[0], MIMO_NVME_TCP_H2C_TERM_REQ);
	assert_int_equal(((const struct mimo_nvme_tcp_term_req *)p->hdr)->fes,
			 MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE);
	assert_int_equal(d.calls, 1);
	destroy_env(&e);

	/* An R2T for a read, for an in-capsule write, beyond a write's data. */
	for (int i = 0; i < 3; i++) {
		static uint8_t big[8192];

		memset(&d, 0, sizeof(d));
		connect_env(&e, false, false, 65536, 32);
		if (i == 0)
			assert_int_equal(
				mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
		else
			assert_int_equal(mimo_nvme_ns_cmd_write(&e.ns, e.qp, big, 0,
								i == 1 ? 8 : 16, done_cb, &d, 0),
					 0);
		assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
		next_pdu(&e, p);
		cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
		send_r2t(&e, cid, 1, 0, i == 2 ? 16384 : 4096);
		next_pdu(&e, p);
		assert_int_equal(p->hdr[0], MIMO_NVME_TCP_H2C_TERM_REQ);
		assert_int_equal(d.calls, 1);
		destroy_env(&e);
	}

	/* A second R2T before the first one's data left the host (found by fuzzing: both in one
	 * read, the H2CData PDU still queued). */
	{
		static uint8_t big[16384];
		struct mimo_nvme_tcp_r2t r = { 0 };
		uint8_t out[128];
		size_t n;

		memset(&d, 0, sizeof(d));
		connect_env(&e, false, false, 65536, 32);
		assert_int_equal(mimo_nvme_ns_cmd_write(&e.ns, e.qp, big, 0, 32, done_cb, &d, 0),
				 0);
		assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
		next_pdu(&e, p);
		cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
		r.cccid = cid;
		r.r2tl = 100;
		n = make_pdu(&e, out, &r, MIMO_NVME_TCP_R2T, 0, NULL, 0);
		r.r2to = 100;
		r.r2tl = 1;
		n += make_pdu(&e, out + n, &r, MIMO_NVME_TCP_R2T, 0, NULL, 0);
		feed(&e, out, n);
		next_pdu(&e, p); /* the first R2T's data */
		assert_int_equal(p->hdr[0], MIMO_NVME_TCP_H2C_DATA);
		assert_int_equal(p->dlen, 100);
		next_pdu(&e, p);
		assert_int_equal(p->hdr[0], MIMO_NVME_TCP_H2C_TERM_REQ);
		assert_int_equal(((const struct mimo_nvme_tcp_term_req *)p->hdr)->fes,
				 MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR);
		assert_int_equal(d.calls, 1);
		destroy_env(&e);
	}

	/* The controller ends it: C2HTermReq. Everything outstanding completes aborted. */
	memset(&d, 0, sizeof(d));
	connect_env(&e, false, false, 65536, 32);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
	{
		uint8_t out[64];
		uint32_t n =
			mimo_tcp_term_req_build(out, MIMO_NVME_TCP_C2H_TERM_REQ,
						MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, NULL, 0);

		feed(&e, out, n);
	}
	assert_int_equal(d.calls, 2);
	assert_false(mimo_nvme_qpair_is_connected(e.qp));
	destroy_env(&e);

	/* A C2HTermReq with data (the offending header) and PDO 0, as SPDK and Linux send it:
	 * the data follows the header. Accepted as a termination, not answered with an
	 * H2CTermReq as a malformed PDU would be. */
	memset(&d, 0, sizeof(d));
	connect_env(&e, false, false, 65536, 32);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 8, done_cb, &d, 0), 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	{
		uint8_t out[64], bad[8] = { 0x7f };
		uint32_t n = mimo_tcp_term_req_build(out, MIMO_NVME_TCP_C2H_TERM_REQ,
						     MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD, 0, bad,
						     sizeof(bad));

		assert_int_equal(((struct mimo_nvme_tcp_ch *)out)->pdo, 24);
		((struct mimo_nvme_tcp_ch *)out)->pdo = 0;
		feed(&e, out, n);
	}
	assert_int_equal(d.calls, 1);
	assert_int_equal(mimo_nvme_status_sc(d.cpl.status), MIMO_NVME_SC_ABORTED_SQ_DELETION);
	assert_false(mimo_nvme_qpair_is_connected(e.qp));
	{
		uint8_t c;

		assert_int_equal(read(e.peer, &c, 1), 0); /* closed, nothing sent back */
	}
	destroy_env(&e);
	free(p);
}

/* A read whose C2HData stops short, then a successful response: the buffer is not what the
 * command promised, so it completes with DATA TRANSFER ERROR. */
static void test_short_c2h(void **state)
{
	static uint8_t buf[8192];
	struct pdu *p = malloc(sizeof(*p));
	struct done d = { 0 };
	struct env e;
	uint16_t cid;

	(void)state;
	connect_env(&e, false, false, 65536, 32);
	assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, e.qp, buf, 0, 16, done_cb, &d, 0), 0);
	assert_int_equal(nvme_qpair_process(e.qp, 0), 0);
	next_pdu(&e, p);
	cid = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
	send_c2h(&e, cid, 0, buf, 4096, MIMO_NVME_TCP_FLAG_LAST_PDU, false);
	send_resp(&e, cid, 0, 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(mimo_nvme_status_sct(d.cpl.status), MIMO_NVME_SCT_GENERIC);
	assert_int_equal(mimo_nvme_status_sc(d.cpl.status), MIMO_NVME_SC_DATA_TRANSFER_ERROR);
	/* The queue stays up: PDU boundaries were intact. */
	assert_true(mimo_nvme_qpair_is_connected(e.qp));
	destroy_env(&e);
	free(p);
}

static void test_refused_connect(void **state)
{
	struct mimo_nvme_cpl cpl = { 0 };

	(void)state;
	cpl.status = mimo_nvme_status(MIMO_NVME_SCT_COMMAND_SPECIFIC,
				      MIMO_NVMF_SC_CONNECT_INVALID_PARAMS, 1);
	cpl.cdw0 = 1u << 16 | offsetof(struct mimo_nvmf_connect_data, subnqn);
	assert_int_equal(nvme_connect_status_errno(&cpl), -ENOENT);
	cpl.cdw0 = 1u << 16 | offsetof(struct mimo_nvmf_connect_data, hostnqn);
	assert_int_equal(nvme_connect_status_errno(&cpl), -EACCES);
	cpl.status = mimo_nvme_status(MIMO_NVME_SCT_COMMAND_SPECIFIC,
				      MIMO_NVMF_SC_CONNECT_INVALID_HOST, 1);
	assert_int_equal(nvme_connect_status_errno(&cpl), -EACCES);
	cpl.status = mimo_nvme_status(MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR, 1);
	assert_int_equal(nvme_connect_status_errno(&cpl), -EPROTO);
}

static void test_ns_descs(void **state)
{
	struct mimo_nvme_ns ns;
	uint8_t descs[4096] = { 0 };
	size_t off = 0;

	(void)state;
	memset(&ns, 0, sizeof(ns));
	/* EUI-64, NGUID, UUID, then the terminator. */
	descs[off] = MIMO_NVME_NIDT_EUI64;
	descs[off + 1] = 8;
	off += 4 + 8;
	descs[off] = MIMO_NVME_NIDT_NGUID;
	descs[off + 1] = 16;
	memset(descs + off + 4, 0xab, 16);
	off += 4 + 16;
	descs[off] = MIMO_NVME_NIDT_UUID;
	descs[off + 1] = 16;
	memset(descs + off + 4, 0xcd, 16);
	nvme_ns_parse_descs(&ns, descs, sizeof(descs));
	assert_true(ns.has_uuid);
	assert_true(ns.has_nguid);
	assert_int_equal(ns.uuid[15], 0xcd);
	assert_int_equal(ns.nguid[0], 0xab);
	/* A descriptor running past the end is ignored. */
	memset(descs, 0, sizeof(descs));
	descs[4090] = MIMO_NVME_NIDT_UUID;
	descs[4091] = 16;
	nvme_ns_parse_descs(&ns, descs + 4090, 6);
	assert_false(ns.has_uuid);
}

/* --- freeing from inside a completion callback ----------------------------------------------- */

struct free_in_cb {
	struct env *e;
	int calls;
	bool free_ctrlr;
	uint16_t last_sc;
};

static void free_qpair_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct free_in_cb *f = arg;

	f->last_sc = mimo_nvme_status_sc(cpl->status);
	if (f->calls++ != 0)
		return;
	/* The first completion frees its own queue (or the whole controller): the loop that
	 * runs this callback must not touch freed memory, and the other command still gets its
	 * callback (aborted). A second free is harmless. */
	if (f->free_ctrlr) {
		nvme_ctrlr_free(f->e->ctrlr);
		f->e->ctrlr = NULL;
	} else {
		mimo_nvme_ctrlr_free_io_qpair(f->e->qp);
		mimo_nvme_ctrlr_free_io_qpair(f->e->qp);
	}
	f->e->qp = NULL;
}

static void test_free_from_callback(void **state)
{
	static uint8_t buf[2][512];
	struct pdu *p = malloc(sizeof(*p));

	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct free_in_cb f = { 0 };
		struct mimo_nvme_qpair *qp;
		uint16_t cid[2];
		struct env e;

		connect_env(&e, false, false, 65536, 32);
		f.e = &e;
		f.free_ctrlr = mode == 1;
		/* As mimo_nvme_ctrlr_alloc_io_qpair would have it: on the controller's list. */
		TAILQ_INSERT_TAIL(&e.ctrlr->io_qpairs, e.qp, link);
		qp = e.qp;
		for (int i = 0; i < 2; i++)
			assert_int_equal(mimo_nvme_ns_cmd_read(&e.ns, qp, buf[i], (uint64_t)i, 1,
							       free_qpair_cb, &f, 0),
					 0);
		assert_int_equal(nvme_qpair_process(qp, 0), 0);
		for (int i = 0; i < 2; i++) {
			next_pdu(&e, p);
			cid[i] = ((const struct mimo_nvme_cmd *)(p->hdr + 8))->cid;
		}
		/* Both complete in the same receive: the first callback frees, the second one
		 * still runs (with the status it had), then the queue goes. */
		{
			uint8_t out[256];
			size_t n = 0;
			struct mimo_nvme_tcp_rsp r = { 0 };

			for (int i = 0; i < 2; i++) {
				r.cqe.cid = cid[i];
				r.cqe.sqhd = 1;
				n += make_pdu(&e, out + n, &r, MIMO_NVME_TCP_CAPSULE_RESP, 0, NULL,
					      0);
			}
			assert_int_equal(nvme_qpair_feed(qp, out, n), -ENXIO);
		}
		assert_int_equal(f.calls, 2);
		assert_null(e.qp);
		destroy_env(&e);
	}
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_write_in_capsule),
		cmocka_unit_test(test_write_r2t),
		cmocka_unit_test(test_queue_limits),
		cmocka_unit_test(test_ddgst_error),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_refused_connect),
		cmocka_unit_test(test_ns_descs),
		cmocka_unit_test(test_free_from_callback),
		cmocka_unit_test(test_short_c2h),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
