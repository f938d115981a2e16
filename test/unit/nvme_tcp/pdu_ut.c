/* The shared NVMe/TCP PDU layer: headers, the receiver (in place and byte by byte), the send
 * queue over a real socket pair. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "compiler.h"
#include "nvme_tcp.h"

/* What the receiver handed over. */
struct seen {
	int headers, pdus;
	uint8_t types[64];
	uint8_t data[3][70000];
	uint32_t data_len[64];
	bool ddgst_ok[64];
	int next_buf;
};

static int on_header(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct seen *s = ctx;

	(void)fei;
	s->headers++;
	if (pdu->data_len != 0 && pdu->hdr.ch.pdu_type != MIMO_NVME_TCP_H2C_TERM_REQ) {
		pdu->data = s->data[s->next_buf];
		s->next_buf = (s->next_buf + 1) % 3;
	}
	return 0;
}

static int on_pdu(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct seen *s = ctx;

	(void)fei;
	s->types[s->pdus] = pdu->hdr.ch.pdu_type;
	s->data_len[s->pdus] = pdu->data_len;
	s->ddgst_ok[s->pdus] = pdu->ddgst_ok;
	s->pdus++;
	return 0;
}

static const struct mimo_tcp_rx_ops g_ops = { on_header, on_pdu };

/* Append a CapsuleCmd with len bytes of in-capsule data to out. */
static size_t put_cmd(uint8_t *out, uint16_t cid, const uint8_t *data, uint32_t len, bool hd,
		      bool dd, uint8_t pda)
{
	uint8_t hdr[MIMO_TCP_HDR_BUF] = { 0 };
	struct mimo_nvme_tcp_cmd *c = (void *)hdr;
	uint32_t front;
	size_t n;

	c->sqe.opc = MIMO_NVME_OPC_WRITE;
	c->sqe.cid = cid;
	front = mimo_tcp_hdr_build(hdr, MIMO_NVME_TCP_CAPSULE_CMD, 0, len, hd, dd, pda);
	memcpy(out, hdr, front);
	n = front;
	if (len != 0) {
		memcpy(out + n, data, len);
		n += len;
		if (dd) {
			uint32_t d = mimo_tcp_digest(data, len);

			memcpy(out + n, &d, 4);
			n += 4;
		}
	}
	assert_int_equal(n, c->ch.plen);
	return n;
}

static void test_header_build(void **state)
{
	uint8_t hdr[MIMO_TCP_HDR_BUF];
	struct mimo_nvme_tcp_data *d = (void *)hdr;
	uint32_t front;

	(void)state;
	memset(hdr, 0xee, sizeof(hdr));
	memset(hdr, 0, 24);
	front = mimo_tcp_hdr_build(hdr, MIMO_NVME_TCP_C2H_DATA, MIMO_NVME_TCP_FLAG_LAST_PDU, 4096,
				   true, true, 3);
	/* 24 + 4 rounded up to 16 bytes. */
	assert_int_equal(front, 32);
	assert_int_equal(d->ch.pdo, 32);
	assert_int_equal(d->ch.hlen, 24);
	assert_int_equal(d->ch.plen, 32 + 4096 + 4);
	assert_int_equal(d->ch.flags, MIMO_NVME_TCP_FLAG_LAST_PDU | MIMO_NVME_TCP_FLAG_HDGST |
					      MIMO_NVME_TCP_FLAG_DDGST);
	for (int i = 28; i < 32; i++)
		assert_int_equal(hdr[i], 0);
	/* No data: no PDO, no data digest flag. */
	memset(hdr, 0, 24);
	front = mimo_tcp_hdr_build(hdr, MIMO_NVME_TCP_CAPSULE_RESP, 0, 0, false, true, 0);
	assert_int_equal(front, 24);
	assert_int_equal(hdr[3], 0);
	assert_int_equal(hdr[1], 0);
	assert_int_equal(mimo_tcp_pdu_hlen(MIMO_NVME_TCP_CAPSULE_CMD), 72);
	assert_int_equal(mimo_tcp_pdu_hlen(8), 0);
	assert_string_equal(mimo_tcp_pdu_name(MIMO_NVME_TCP_R2T), "R2T");
}

/* The same stream fed in every split gives the same PDUs. */
static void test_feed_any_split(void **state)
{
	static uint8_t stream[3 * 8300], payload[8192];
	struct seen *s = calloc(1, sizeof(*s));
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	len += put_cmd(stream + len, 1, NULL, 0, true, true, 0);
	len += put_cmd(stream + len, 2, payload, 4096, true, true, 0);
	len += put_cmd(stream + len, 3, payload, 8192, true, true, 7);
	for (size_t step = 1; step < 300; step += 37) {
		struct mimo_tcp_rx rx;

		memset(s, 0, sizeof(*s));
		assert_int_equal(mimo_tcp_rx_init(&rx, false, 65536), 0);
		rx.hdgst = rx.ddgst = true;
		for (size_t off = 0; off < len; off += step)
			assert_int_equal(mimo_tcp_rx_feed(&rx, stream + off,
							  MIMO_MIN(step, len - off), &g_ops, s),
					 0);
		assert_int_equal(s->pdus, 3);
		assert_int_equal(s->data_len[0], 0);
		assert_int_equal(s->data_len[1], 4096);
		assert_int_equal(s->data_len[2], 8192);
		assert_true(s->ddgst_ok[1] && s->ddgst_ok[2]);
		assert_memory_equal(s->data[0], payload, 4096);
		assert_memory_equal(s->data[1], payload, 8192);
		mimo_tcp_rx_fini(&rx);
	}
	free(s);
}

static int feed_one(const void *p, size_t len, bool hd, bool dd, struct mimo_tcp_rx *rx)
{
	struct seen *s = calloc(1, sizeof(*s));
	int rc;

	assert_int_equal(mimo_tcp_rx_init(rx, false, 8192), 0);
	rx->hdgst = hd;
	rx->ddgst = dd;
	rc = mimo_tcp_rx_feed(rx, p, len, &g_ops, s);
	mimo_tcp_rx_fini(rx);
	free(s);
	return rc;
}

static void test_bad_headers(void **state)
{
	uint8_t buf[9000], data[8200] = { 0 };
	struct mimo_tcp_rx rx;
	size_t n;

	(void)state;
	/* A controller PDU sent to the controller. */
	n = put_cmd(buf, 1, NULL, 0, false, false, 0);
	buf[0] = MIMO_NVME_TCP_CAPSULE_RESP;
	assert_int_equal(feed_one(buf, n, false, false, &rx), -EPROTO);
	assert_int_equal(rx.fes, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD);
	assert_int_equal(rx.fei, 0);
	/* Wrong header length. */
	n = put_cmd(buf, 1, NULL, 0, false, false, 0);
	buf[2] = 24;
	assert_int_equal(feed_one(buf, n, false, false, &rx), -EPROTO);
	assert_int_equal(rx.fei, 2);
	/* Header digest flag without the digest negotiated. */
	n = put_cmd(buf, 1, NULL, 0, true, false, 0);
	assert_int_equal(feed_one(buf, n, false, false, &rx), -EPROTO);
	assert_int_equal(rx.fei, 1);
	/* A wrong header digest. */
	n = put_cmd(buf, 1, NULL, 0, true, false, 0);
	buf[20] ^= 1;
	assert_int_equal(feed_one(buf, n, true, false, &rx), -EPROTO);
	assert_int_equal(rx.fes, MIMO_NVME_TCP_FES_HDGST_ERROR);
	/* PLEN shorter than the header. */
	n = put_cmd(buf, 1, NULL, 0, false, false, 0);
	buf[4] = 10;
	assert_int_equal(feed_one(buf, n, false, false, &rx), -EPROTO);
	assert_int_equal(rx.fei, 4);
	/* PDO inside the header. */
	n = put_cmd(buf, 1, data, 512, false, false, 0);
	buf[3] = 40;
	assert_int_equal(feed_one(buf, n, false, false, &rx), -EPROTO);
	assert_int_equal(rx.fei, 3);
	/* More in-capsule data than allowed. */
	n = put_cmd(buf, 1, data, 8200, false, false, 0);
	assert_int_equal(feed_one(buf, n, false, false, &rx), -EPROTO);
	assert_int_equal(rx.fes, MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED);
	/* A wrong data digest is reported, not fatal. */
	n = put_cmd(buf, 1, data, 512, false, true, 0);
	buf[n - 1] ^= 0x80;
	{
		struct seen *s = calloc(1, sizeof(*s));

		assert_int_equal(mimo_tcp_rx_init(&rx, false, 8192), 0);
		rx.ddgst = true;
		assert_int_equal(mimo_tcp_rx_feed(&rx, buf, n, &g_ops, s), 0);
		assert_int_equal(s->pdus, 1);
		assert_false(s->ddgst_ok[0]);
		mimo_tcp_rx_fini(&rx);
		free(s);
	}
}

/* Through a socket: large data is read in place, PDUs behind it in the same pass. */
static void test_read_socket(void **state)
{
	static uint8_t stream[2 * 70000], payload[65536];
	struct seen *s = calloc(1, sizeof(*s));
	struct mimo_tcp_rx rx;
	int sv[2], rc, size = 1 << 20;
	size_t len = 0, sent = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i ^ (i >> 8));
	len += put_cmd(stream, 9, payload, 65536, false, true, 0);
	len += put_cmd(stream + len, 10, NULL, 0, false, true, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	assert_int_equal(mimo_tcp_rx_init(&rx, false, 65536), 0);
	rx.ddgst = true;
	/* In two parts, so the second read finds data owed. */
	while (sent < len) {
		size_t chunk = sent == 0 ? 100 : len - sent;

		assert_int_equal(write(sv[0], stream + sent, chunk), (ssize_t)chunk);
		sent += chunk;
		while ((rc = mimo_tcp_rx_read(&rx, &(struct mimo_tcp_sock){ .fd = sv[1] }, &g_ops,
					      s)) > 0)
			;
		assert_int_equal(rc, 0);
	}
	assert_int_equal(s->pdus, 2);
	assert_true(s->ddgst_ok[0]);
	assert_memory_equal(s->data[0], payload, 65536);
	close(sv[0]);
	assert_int_equal(mimo_tcp_rx_read(&rx, &(struct mimo_tcp_sock){ .fd = sv[1] }, &g_ops, s),
			 -ECONNRESET);
	close(sv[1]);
	mimo_tcp_rx_fini(&rx);
	free(s);
}

/* Large PDUs queued back to back: after the first, each one's data is read in place, not read
 * ahead into staging with the header before it and copied out again. */
static void test_large_pdus_land_in_place(void **state)
{
	static uint8_t stream[3 * 70000], payload[65536];
	struct seen *s = calloc(1, sizeof(*s));
	struct mimo_tcp_rx rx;
	int sv[2], rc, size = 1 << 20;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	for (uint16_t cid = 1; cid <= 3; cid++)
		len += put_cmd(stream + len, cid, payload, sizeof(payload), false, false, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	assert_int_equal(write(sv[0], stream, len), (ssize_t)len);
	assert_int_equal(mimo_tcp_rx_init(&rx, false, 65536), 0);
	while ((rc = mimo_tcp_rx_read(&rx, &(struct mimo_tcp_sock){ .fd = sv[1] }, &g_ops, s)) > 0)
		;
	assert_int_equal(rc, 0);
	assert_int_equal(s->pdus, 3);
	for (int i = 0; i < 3; i++)
		assert_memory_equal(s->data[i], payload, sizeof(payload));
	/* The first PDU's data arrives with its header (nothing says yet that it is large); the
	 * next two bring at most a read-ahead's worth each. */
	assert_true(rx.staged_data <= sizeof(payload) + 2 * MIMO_TCP_RX_AHEAD);
	close(sv[0]);
	close(sv[1]);
	mimo_tcp_rx_fini(&rx);
	free(s);
}

static int g_done;
static void send_done(struct mimo_tcp_send *s)
{
	(void)s;
	g_done++;
}

/* A full socket keeps the rest queued; the next flush finishes it, in order. */
static void test_sendq_partial(void **state)
{
	static uint8_t big[256 * 1024], got[sizeof(big) * 4];
	struct mimo_tcp_send sends[4];
	struct mimo_tcp_sendq sq;
	int sv[2], size = 64 * 1024, rc;
	size_t have = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	mimo_tcp_sendq_init(&sq);
	g_done = 0;
	for (int i = 0; i < 4; i++) {
		mimo_tcp_send_reset(&sends[i]);
		mimo_tcp_send_add(&sends[i], big, 1000);
		mimo_tcp_send_add(&sends[i], big + 1000, sizeof(big) - 1000);
		sends[i].done = send_done;
		mimo_tcp_sendq_push(&sq, &sends[i]);
	}
	rc = mimo_tcp_sendq_flush(&sq, &(struct mimo_tcp_sock){ .fd = sv[0] });
	assert_int_equal(rc, 1);
	assert_true(g_done < 4);
	while (have < sizeof(got)) {
		ssize_t n = read(sv[1], got + have, sizeof(got) - have);

		assert_true(n > 0);
		have += (size_t)n;
		rc = mimo_tcp_sendq_flush(&sq, &(struct mimo_tcp_sock){ .fd = sv[0] });
		assert_true(rc == 0 || rc == 1);
	}
	assert_int_equal(g_done, 4);
	assert_true(mimo_tcp_sendq_empty(&sq));
	for (int i = 0; i < 4; i++)
		assert_memory_equal(got + i * sizeof(big), big, sizeof(big));
	close(sv[0]);
	close(sv[1]);
}

static void test_term_req(void **state)
{
	uint8_t hdr[MIMO_TCP_HDR_BUF], bad[72] = { 4, 0, 72, 0 };
	struct mimo_nvme_tcp_term_req *t = (void *)hdr;

	(void)state;
	assert_int_equal(mimo_tcp_term_req_build(hdr, MIMO_NVME_TCP_C2H_TERM_REQ,
						 MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD, 2, bad,
						 72),
			 96);
	assert_int_equal(t->ch.plen, 96);
	assert_int_equal(t->ch.pdo, 24);
	assert_int_equal(t->fei, 2);
	assert_memory_equal(hdr + 24, bad, 72);
	assert_int_equal(mimo_tcp_term_req_build(hdr, MIMO_NVME_TCP_C2H_TERM_REQ,
						 MIMO_NVME_TCP_FES_HDGST_ERROR, 2, bad, 72),
			 96);
	assert_int_equal(t->fei, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_build),
		cmocka_unit_test(test_feed_any_split),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_read_socket),
		cmocka_unit_test(test_sendq_partial),
		cmocka_unit_test(test_term_req),
		cmocka_unit_test(test_large_pdus_land_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
