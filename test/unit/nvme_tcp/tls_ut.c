/*
 * lib/nvme_tcp's TLS: the specification's key derivations against values computed separately
 * (Python's hmac, test/integration/test_tls.py's hkdf_expand_label), identities accepted and
 * refused, and the PDU layer over a real TLS connection (a socketpair, both ends non-blocking):
 * a send queue larger than the socket takes, and a receiver that must read what OpenSSL holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

#include "nvme_tcp.h"
#include "tls.h"

#define HOST "nqn.2014-08.io.mimo:host"
#define SUB  "nqn.2016-06.io.mimo:sub"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t)b;
	}
}

static void test_derivations(void **state)
{
	uint8_t conf[48], r[48], t[48], want[48];
	struct mimo_tls_identity id;
	char text[MIMO_TLS_IDENTITY_MAX], digest[65];

	(void)state;
	for (int i = 0; i < 48; i++)
		conf[i] = (uint8_t)i;
	/* hh 01: retained PSK, then the TLS PSK of the version 0 identity. */
	assert_int_equal(mimo_tls_retained_psk(conf, 32, 1, HOST, r), 0);
	unhex("656fefea8a68f70b39001ad44d2fec991835fc0317e032aaf9f8bdbd3a061622", want, 32);
	assert_memory_equal(r, want, 32);
	assert_int_equal(mimo_tls_identity_format(text, sizeof(text), 1, HOST, SUB),
			 (int)strlen("NVMe0R01 " HOST " " SUB));
	assert_string_equal(text, "NVMe0R01 " HOST " " SUB);
	assert_int_equal(mimo_tls_identity_parse(text, strlen(text), &id), 0);
	assert_int_equal(mimo_tls_derive_psk(r, 32, &id, text, t), 0);
	unhex("29849e4403a4c94fbd1b7c8989a73e6185b7d64ecc7cf6926bfcd6918532bc39", want, 32);
	assert_memory_equal(t, want, 32);
	/* hh 02, 48 bytes: SHA-384 throughout. */
	assert_int_equal(mimo_tls_retained_psk(conf, 48, 2, HOST, r), 0);
	assert_int_equal(mimo_tls_identity_format(text, sizeof(text), 2, HOST, SUB),
			 (int)strlen("NVMe0R02 " HOST " " SUB));
	assert_int_equal(mimo_tls_identity_parse(text, strlen(text), &id), 0);
	assert_int_equal(mimo_tls_derive_psk(r, 48, &id, text, t), 0);
	unhex("4ce6bb30ccdbf5b38aade77ccad884f9c152801fee2e544fc993bf20109e64a23e7c93bb6e8d0a77b130"
	      "42e4168eb838",
	      want, 48);
	assert_memory_equal(t, want, 48);
	/* hh 00: the configured PSK is the retained one. */
	assert_int_equal(mimo_tls_retained_psk(conf, 32, 0, HOST, r), 0);
	assert_memory_equal(r, conf, 32);
	/* Version 1: the digest in the identity, and the context "01 <digest>". */
	assert_int_equal(mimo_tls_retained_psk(conf, 32, 1, HOST, r), 0);
	assert_int_equal(mimo_tls_psk_digest(r, 32, 1, HOST, SUB, digest), 0);
	assert_string_equal(digest, "9eEo8fncxohLFGPXt6umZOaV/G9klVQjO21nLsJzLCw=");
	snprintf(text, sizeof(text), "NVMe1R01 %s %s %s", HOST, SUB, digest);
	assert_int_equal(mimo_tls_identity_parse(text, strlen(text), &id), 0);
	assert_int_equal(id.version, 1);
	assert_int_equal(mimo_tls_derive_psk(r, 32, &id, text, t), 0);
	unhex("2306f41a931e98bedeeb0856bfc1446aafdc053d4a2b851934526a4e3b9373ec", want, 32);
	assert_memory_equal(t, want, 32);
	/* Another PSK's digest is refused. */
	id.digest[0] = id.digest[0] == 'A' ? 'B' : 'A';
	assert_int_equal(mimo_tls_derive_psk(r, 32, &id, text, t), -EKEYREJECTED);
	assert_int_equal(mimo_tls_retained_psk(conf, 40, 1, HOST, r), -EINVAL);
}

static void test_identities_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"NVMe0R01",
		"NVMe0R01 " HOST,
		"NVMe0R01 " HOST " " SUB " extra",
		"NVMe0G01 " HOST " " SUB, /* generated: secure channel concatenation */
		"NVMe0R03 " HOST " " SUB,
		"NVMe0R00 " HOST " " SUB,
		"NVMe2R01 " HOST " " SUB,
		"NVMe1R01 " HOST " " SUB, /* version 1 without its digest */
		"NVMe0R01  " HOST " " SUB,
		"NVMe0R01 " HOST "  " SUB,
		"NVMe0R01 " HOST " " SUB " ",
		"nvme0R01 " HOST " " SUB,
		"psk.spdk.io",
	};
	struct mimo_tls_identity id;
	char text[MIMO_TLS_IDENTITY_MAX];
	char nqn[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mimo_tls_identity_parse(bad[i], strlen(bad[i]), &id), -EINVAL);
	/* A NUL inside, or an NQN of 224 bytes. */
	assert_int_equal(mimo_tls_identity_parse("NVMe0R01 a\0b c", 14, &id), -EINVAL);
	/* A version-1 digest is base64: a NUL (or any other byte) there would let a second
	 * spelling of the same identity pass the string compare of the digest (found by
	 * fuzz_tls_identity). */
	assert_int_equal(mimo_tls_identity_parse("NVMe1R01 a b QUJD\0x", 18, &id), -EINVAL);
	assert_int_equal(mimo_tls_identity_parse("NVMe1R01 a b QU JD", 18, &id), -EINVAL);
	assert_int_equal(mimo_tls_identity_parse("NVMe1R01 a b QUJD", 17, &id), 0);
	memset(nqn, 'a', 224);
	nqn[224] = '\0';
	snprintf(text, sizeof(text), "NVMe0R01 %s %s", nqn, SUB);
	assert_int_equal(mimo_tls_identity_parse(text, strlen(text), &id), -EINVAL);
	assert_int_equal(mimo_tls_identity_format(text, sizeof(text), 1, nqn, SUB), -EINVAL);
	assert_int_equal(mimo_tls_identity_format(text, sizeof(text), 3, HOST, SUB), -EINVAL);
}

/* --- a TLS connection over a socketpair --------------------------------------------------- */

static uint8_t g_psk[32];

static int lookup(void *arg, const struct mimo_tls_identity *id, uint8_t *retained, size_t *len)
{
	(void)arg;
	if (strcmp(id->hostnqn, HOST) != 0 || strcmp(id->subnqn, SUB) != 0)
		return -ENOKEY;
	memcpy(retained, g_psk, 32);
	*len = 32;
	return 0;
}

/* Client and server over a socketpair; both handshakes stepped until done. Returns the
 * server's result (the client's in *client_rc). */
static int handshake(const uint8_t *client_key, const char *host, struct mimo_tls **c,
		     struct mimo_tls **s, struct mimo_tls_ctx **cctx, struct mimo_tls_ctx *sctx,
		     int sv[2], int *client_rc)
{
	struct mimo_tls_identity id = { .version = 0, .hash = 1 };
	char text[MIMO_TLS_IDENTITY_MAX];
	uint8_t psk[32];
	int rs = -EAGAIN, rc = -EAGAIN;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	assert_true(mimo_tls_identity_format(text, sizeof(text), 1, host, SUB) > 0);
	assert_int_equal(mimo_tls_derive_psk(client_key, 32, &id, text, psk), 0);
	*cctx = mimo_tls_client_ctx_new(text, psk, 32, 1);
	assert_non_null(*cctx);
	*c = mimo_tls_new(*cctx, sv[0], NULL, NULL);
	*s = mimo_tls_new(sctx, sv[1], lookup, NULL);
	assert_non_null(*c);
	assert_non_null(*s);
	for (int i = 0; i < 100 && (rs == -EAGAIN || rc == -EAGAIN); i++) {
		bool w;

		if (rc == -EAGAIN)
			rc = mimo_tls_handshake(*c, &w);
		if (rs == -EAGAIN)
			rs = mimo_tls_handshake(*s, &w);
	}
	*client_rc = rc;
	return rs;
}

static void teardown_pair(struct mimo_tls *c, struct mimo_tls *s, struct mimo_tls_ctx *cctx,
			  int sv[2])
{
	mimo_tls_free(c);
	mimo_tls_free(s);
	mimo_tls_ctx_free(cctx);
	close(sv[0]);
	close(sv[1]);
}

static void test_handshakes(void **state)
{
	struct mimo_tls_ctx *sctx = mimo_tls_server_ctx_new(), *cctx;
	struct mimo_tls *c, *s;
	uint8_t other[32];
	int sv[2], crc;

	(void)state;
	for (int i = 0; i < 32; i++) {
		g_psk[i] = (uint8_t)(i * 7);
		other[i] = (uint8_t)(i * 7 + 1);
	}
	/* The right PSK. */
	assert_int_equal(handshake(g_psk, HOST, &c, &s, &cctx, sctx, sv, &crc), 0);
	assert_int_equal(crc, 0);
	assert_string_equal(mimo_tls_cipher(s), "TLS_AES_128_GCM_SHA256");
	assert_string_equal(mimo_tls_peer_identity(s)->hostnqn, HOST);
	teardown_pair(c, s, cctx, sv);
	/* A wrong PSK: the server refuses the binder, the client hears of it. */
	assert_int_equal(handshake(other, HOST, &c, &s, &cctx, sctx, sv, &crc), -EACCES);
	assert_true(crc == -EACCES || crc == -ECONNRESET);
	teardown_pair(c, s, cctx, sv);
	/* An identity with no PSK: refused by the lookup, said so. */
	assert_int_equal(
		handshake(g_psk, "nqn.2014-08.io.mimo:other", &c, &s, &cctx, sctx, sv, &crc),
		-EACCES);
	assert_non_null(strstr(mimo_tls_error(s), "no PSK for host nqn.2014-08.io.mimo:other"));
	assert_int_not_equal(crc, 0);
	teardown_pair(c, s, cctx, sv);
	mimo_tls_ctx_free(sctx);
}

struct seen {
	uint32_t pdus;
	uint32_t bytes;
	uint8_t *data;
};

static int on_header(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct seen *s = ctx;

	(void)fei;
	pdu->data = s->data + s->bytes;
	return 0;
}

static int on_pdu(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct seen *s = ctx;

	(void)fei;
	s->pdus++;
	s->bytes += pdu->data_len;
	return 0;
}

static const struct mimo_tcp_rx_ops g_ops = { on_header, on_pdu };

/* 64 C2HData PDUs of 16 KiB each, data[] in order, queued on sq. */
static void queue_c2h(struct mimo_tcp_sendq *sq, struct mimo_tcp_send sends[64],
		      uint8_t hdrs[64][MIMO_TCP_HDR_BUF], uint8_t *data)
{
	mimo_tcp_sendq_init(sq);
	for (int i = 0; i < 64; i++) {
		struct mimo_nvme_tcp_data *d = (struct mimo_nvme_tcp_data *)hdrs[i];
		uint32_t n;

		memset(d, 0, sizeof(*d));
		d->datao = (uint32_t)i * 16384;
		d->datal = 16384;
		n = mimo_tcp_hdr_build(d, MIMO_NVME_TCP_C2H_DATA, 0, 16384, false, false, 0);
		mimo_tcp_send_reset(&sends[i]);
		mimo_tcp_send_add(&sends[i], d, n);
		mimo_tcp_send_add(&sends[i], data + (size_t)i * 16384, 16384);
		sends[i].done = NULL;
		mimo_tcp_sendq_push(sq, &sends[i]);
	}
}
/* 64 C2HData PDUs of 16 KiB (1 MiB) through a 64 KiB socket buffer: the send queue stops
 * when the socket is full and resumes; the receiver reads everything OpenSSL holds. */
static void test_pdus_over_tls(void **state)
{
	static uint8_t data[64 * 16384], got[sizeof(data)];
	static uint8_t hdrs[64][MIMO_TCP_HDR_BUF];
	struct mimo_tls_ctx *sctx = mimo_tls_server_ctx_new(), *cctx;
	struct mimo_tcp_send sends[64];
	struct mimo_tcp_sendq sq;
	struct mimo_tcp_rx rx;
	struct mimo_tls *c, *s;
	struct seen seen = { 0, 0, got };
	int sv[2], crc, size = 64 * 1024, rc = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + (i >> 12));
	assert_int_equal(handshake(g_psk, HOST, &c, &s, &cctx, sctx, sv, &crc), 0);
	assert_int_equal(crc, 0);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	queue_c2h(&sq, sends, hdrs, data);
	assert_int_equal(mimo_tcp_rx_init(&rx, true, 65536), 0);
	for (int i = 0; i < 100000 && (rc != 0 || seen.pdus < 64); i++) {
		struct mimo_tcp_sock ss = { sv[1], s }, cs = { sv[0], c };

		if (rc != 0)
			rc = mimo_tcp_sendq_flush(&sq, &ss);
		assert_true(rc == 0 || rc == 1);
		assert_true(mimo_tcp_rx_read(&rx, &cs, &g_ops, &seen) >= 0);
	}
	assert_int_equal(rc, 0);
	assert_true(mimo_tcp_sendq_empty(&sq));
	assert_int_equal(seen.pdus, 64);
	assert_memory_equal(got, data, sizeof(data));
	/* The peer goes: the receiver says so. */
	mimo_tls_free(s);
	close(sv[1]);
	assert_int_equal(mimo_tcp_rx_read(&rx, &(struct mimo_tcp_sock){ sv[0], c }, &g_ops, &seen),
			 -ECONNRESET);
	mimo_tcp_rx_fini(&rx);
	mimo_tls_free(c);
	mimo_tls_ctx_free(cctx);
	close(sv[0]);
	mimo_tls_ctx_free(sctx);
}

/* one_read (the target's): one read of the buffers per call over TLS, as over plain TCP. A
 * read that filled them with more left in OpenSSL says so (tls_held), and the next call goes
 * on from there; nothing is lost, nothing is read twice. */
static void test_one_read_over_tls(void **state)
{
	static uint8_t data[64 * 16384], got[sizeof(data)];
	static uint8_t hdrs[64][MIMO_TCP_HDR_BUF];
	struct mimo_tls_ctx *sctx = mimo_tls_server_ctx_new(), *cctx;
	struct mimo_tcp_send sends[64];
	struct mimo_tcp_sendq sq;
	struct mimo_tcp_rx rx;
	struct mimo_tls *c, *s;
	struct seen seen = { 0, 0, got };
	int sv[2], crc, size = 1024 * 1024, rc = 1, held = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 10));
	assert_int_equal(handshake(g_psk, HOST, &c, &s, &cctx, sctx, sv, &crc), 0);
	assert_int_equal(crc, 0);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	queue_c2h(&sq, sends, hdrs, data);
	assert_int_equal(mimo_tcp_rx_init(&rx, true, 65536), 0);
	rx.one_read = true;
	for (int i = 0; i < 100000 && (rc != 0 || seen.pdus < 64); i++) {
		struct mimo_tcp_sock ss = { sv[1], s }, cs = { sv[0], c };
		int n;

		if (rc != 0)
			rc = mimo_tcp_sendq_flush(&sq, &ss);
		assert_true(rc == 0 || rc == 1);
		n = mimo_tcp_rx_read(&rx, &cs, &g_ops, &seen);
		/* At most the rest of a PDU's data (in place) and the staging buffer. */
		assert_true(n >= 0 && n <= 16384 + MIMO_TCP_RX_STAGING);
		held += rx.tls_held;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(seen.pdus, 64);
	assert_memory_equal(got, data, sizeof(data));
	/* The socket's megabyte came in more than one read, some cut with bytes still held. */
	assert_true(held > 0);
	mimo_tcp_rx_fini(&rx);
	mimo_tls_free(s);
	mimo_tls_free(c);
	mimo_tls_ctx_free(cctx);
	close(sv[0]);
	close(sv[1]);
	mimo_tls_ctx_free(sctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derivations),	  cmocka_unit_test(test_identities_refused),
		cmocka_unit_test(test_handshakes),	  cmocka_unit_test(test_pdus_over_tls),
		cmocka_unit_test(test_one_read_over_tls),
	};

	/* As mimo's programs: OpenSSL writes to sockets with write(2). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
