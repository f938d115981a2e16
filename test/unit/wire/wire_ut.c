/* The frame codecs: every frame round-trips, and every malformed body is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mimo/wire.h"

static void test_header_is_fuse_out_header(void **state)
{
	uint8_t f[16];
	struct mimo_wire_hdr h;

	(void)state;
	mimo_wire_put_hdr(f, 16, -2, 0x0102030405060708ull);
	/* Little-endian {len u32, error i32, unique u64}, as struct fuse_out_header. */
	assert_memory_equal(f, "\x10\0\0\0\xfe\xff\xff\xff\x08\x07\x06\x05\x04\x03\x02\x01", 16);
	assert_int_equal(mimo_wire_frame_check(f, 16, 1024, &h), 16);
	assert_int_equal(h.code, -2);
	assert_int_equal(mimo_wire_frame_check(f, 15, 1024, &h), 0);
	mimo_wire_put_hdr(f, 15, 0, 1);
	assert_int_equal(mimo_wire_frame_check(f, 16, 1024, &h), -EBADMSG);
	mimo_wire_put_hdr(f, 2000, 0, 1);
	assert_int_equal(mimo_wire_frame_check(f, 16, 1024, &h), -EMSGSIZE);
	mimo_wire_put_hdr(f, 900, 0, 1);
	assert_int_equal(mimo_wire_frame_check(f, 16, 1024, &h), 0); /* incomplete */
}

static void test_hello_and_welcome(void **state)
{
	struct mimo_wire_hello h = { .proto = 1,
				     .pid = 42,
				     .name = "my-plugin",
				     .name_len = 9,
				     .version = "1.2",
				     .version_len = 3 },
			       d;
	struct mimo_wire_welcome w = { .proto = 1,
				       .max_frame = 99,
				       .epoch = 7,
				       .slot_id = 3,
				       .keepalive_ms = 3000,
				       .agent_id = "host-1",
				       .agent_id_len = 6,
				       .version = "0.1.0",
				       .version_len = 5 },
				 dw;
	uint8_t f[256];
	size_t n = mimo_wire_encode_hello(f, 5, &h);
	struct mimo_wire_hdr hdr;

	(void)state;
	assert_int_equal(mimo_wire_frame_check(f, n, 4096, &hdr), (long)n);
	assert_int_equal(hdr.code, MIMO_WIRE_HELLO);
	assert_int_equal(hdr.unique, 5);
	assert_int_equal(mimo_wire_decode_hello(f + 16, n - 16, &d), 0);
	assert_int_equal(d.pid, 42);
	assert_memory_equal(d.name, "my-plugin", 9);
	/* Length fields that disagree with the body, bad names. */
	assert_int_equal(mimo_wire_decode_hello(f + 16, n - 17, &d), -EBADMSG);
	f[16 + 16] = '/';
	assert_int_equal(mimo_wire_decode_hello(f + 16, n - 16, &d), -EBADMSG);
	n = mimo_wire_encode_welcome(f, 5, &w);
	assert_int_equal(mimo_wire_decode_welcome(f + 16, n - 16, &dw), 0);
	assert_int_equal(dw.epoch, 7);
	assert_int_equal(dw.slot_id, 3);
	assert_memory_equal(dw.agent_id, "host-1", 6);
	assert_int_equal(mimo_wire_decode_welcome(f + 16, 10, &dw), -EBADMSG);
}

static void test_send_dispatch_ack(void **state)
{
	struct mimo_wire_send s = { .key_hi = 1,
				    .key_lo = 2,
				    .ttl_ms = 500,
				    .id = "m-1",
				    .id_len = 3,
				    .content = "\0bin",
				    .content_len = 4 },
			      ds;
	struct mimo_wire_dispatch d = { .seq = 9,
					.id = "m-2",
					.id_len = 3,
					.content = "xyz",
					.content_len = 3 },
				  dd;
	uint8_t f[128];
	uint64_t seq;
	size_t n = mimo_wire_encode_send(f, 77, &s);

	(void)state;
	assert_int_equal(n, mimo_wire_send_size(3, 4));
	assert_int_equal(mimo_wire_decode_send(f + 16, n - 16, &ds), 0);
	assert_int_equal(ds.key_lo, 2);
	assert_int_equal(ds.ttl_ms, 500);
	assert_int_equal(ds.content_len, 4);
	assert_memory_equal(ds.content, "\0bin", 4);
	/* An id longer than the body, an empty id, a control character in the id. */
	f[16 + 20] = 200;
	assert_int_equal(mimo_wire_decode_send(f + 16, n - 16, &ds), -EBADMSG);
	f[16 + 20] = 0;
	assert_int_equal(mimo_wire_decode_send(f + 16, n - 16, &ds), -EBADMSG);
	f[16 + 20] = 3;
	f[16 + 24] = '\n';
	assert_int_equal(mimo_wire_decode_send(f + 16, n - 16, &ds), -EBADMSG);
	n = mimo_wire_encode_dispatch(f, &d);
	assert_int_equal(mimo_wire_decode_dispatch(f + 16, n - 16, &dd), 0);
	assert_int_equal(dd.seq, 9);
	assert_memory_equal(dd.content, "xyz", 3);
	n = mimo_wire_encode_ack(f, 3, 1234);
	assert_int_equal(mimo_wire_decode_ack(f + 16, n - 16, &seq), 0);
	assert_int_equal(seq, 1234);
	assert_int_equal(mimo_wire_decode_ack(f + 16, 7, &seq), -EBADMSG);
}

static void test_cache_notifies(void **state)
{
	struct mimo_wire_cache c = { .code = MIMO_WIRE_NOTIFY_STORE,
				     .offset = 10,
				     .size = 4,
				     .key = "k/1",
				     .key_len = 3,
				     .data = "DATA" },
			       d;
	struct mimo_wire_notify_reply r = { .notify_unique = 5,
					    .offset = 1,
					    .data = "ab",
					    .size = 2 },
				      dr;
	uint8_t f[128];
	size_t n = mimo_wire_encode_cache(f, &c);
	struct mimo_wire_hdr h;

	(void)state;
	assert_int_equal(mimo_wire_frame_check(f, n, 4096, &h), (long)n);
	assert_int_equal(h.unique, 0); /* a notify, as FUSE's */
	assert_int_equal(mimo_wire_decode_cache(h.code, f + 16, n - 16, &d), 0);
	assert_int_equal(d.size, 4);
	assert_memory_equal(d.data, "DATA", 4);
	assert_int_equal(mimo_wire_decode_cache(h.code, f + 16, n - 17, &d), -EBADMSG);
	c = (struct mimo_wire_cache){ .code = MIMO_WIRE_NOTIFY_RETRIEVE,
				      .notify_unique = 8,
				      .offset = 2,
				      .size = 100,
				      .key = "k",
				      .key_len = 1 };
	n = mimo_wire_encode_cache(f, &c);
	assert_int_equal(mimo_wire_decode_cache(MIMO_WIRE_NOTIFY_RETRIEVE, f + 16, n - 16, &d), 0);
	assert_int_equal(d.notify_unique, 8);
	c.notify_unique = 0; /* must be non-zero */
	n = mimo_wire_encode_cache(f, &c);
	assert_int_equal(mimo_wire_decode_cache(MIMO_WIRE_NOTIFY_RETRIEVE, f + 16, n - 16, &d),
			 -EBADMSG);
	c = (struct mimo_wire_cache){ .code = MIMO_WIRE_NOTIFY_INVAL,
				      .offset = UINT64_MAX,
				      .size = 2,
				      .key = "k",
				      .key_len = 1 };
	n = mimo_wire_encode_cache(f, &c);
	assert_int_equal(mimo_wire_decode_cache(MIMO_WIRE_NOTIFY_INVAL, f + 16, n - 16, &d),
			 -EBADMSG); /* wraps */
	c = (struct mimo_wire_cache){ .code = MIMO_WIRE_NOTIFY_POLL, .kh = 99 };
	n = mimo_wire_encode_cache(f, &c);
	assert_int_equal(mimo_wire_decode_cache(MIMO_WIRE_NOTIFY_POLL, f + 16, n - 16, &d), 0);
	assert_int_equal(d.kh, 99);
	assert_int_equal(mimo_wire_decode_cache(77, f + 16, n - 16, &d), -EINVAL);
	n = mimo_wire_encode_notify_reply(f, &r);
	assert_int_equal(mimo_wire_frame_check(f, n, 4096, &h), (long)n);
	assert_int_equal(h.unique, 5);
	assert_int_equal(h.code, MIMO_WIRE_NOTIFY_REPLY);
	assert_int_equal(mimo_wire_decode_notify_reply(f + 16, n - 16, &dr), 0);
	assert_memory_equal(dr.data, "ab", 2);
	/* An error with data is malformed. */
	r.error = -ENOENT;
	n = mimo_wire_encode_notify_reply(f, &r);
	assert_int_equal(mimo_wire_decode_notify_reply(f + 16, n - 16, &dr), -EBADMSG);
}

static void test_gse_frames(void **state)
{
	static const char meta[] = "{\"message_id\":\"m\",\"session_id\":\"\"}";
	uint8_t f[256];
	struct mimo_gse_hdr h;
	const char *m;
	const void *c;
	size_t ml, cl;
	size_t n = mimo_gse_encode(f, MIMO_GSE_DISPATCH, 7, meta, strlen(meta), "hi", 2, true);

	(void)state;
	/* Big-endian magic, type, version 6. */
	assert_memory_equal(f, "\xde\xad\xbe\xef\x90\x08\x00\x06", 8);
	assert_int_equal(mimo_gse_frame_check(f, n, 4096, &h), (long)n);
	assert_int_equal(h.seq, 7);
	assert_int_equal(h.reserved0, strlen(meta));
	assert_int_equal(mimo_gse_split(&h, f + 28, n - 28, &m, &ml, &c, &cl), 0);
	assert_int_equal(cl, 2);
	assert_memory_equal(c, "hi", 2);
	/* The SDK's checks: meta_len != 0 and meta + content = body. */
	h.reserved0 = 0;
	assert_int_equal(mimo_gse_split(&h, f + 28, n - 28, &m, &ml, &c, &cl), -EBADMSG);
	h.reserved0 = (uint32_t)strlen(meta) + 1;
	assert_int_equal(mimo_gse_split(&h, f + 28, n - 28, &m, &ml, &c, &cl), -EBADMSG);
	f[0] = 0;
	assert_int_equal(mimo_gse_frame_check(f, n, 4096, &h), -EPROTO);
	/* Keepalives: the JSON is the whole body, reserved fields 0. */
	n = mimo_gse_encode(f, MIMO_GSE_KEEPALIVE_RESP, 1, "{}", 2, NULL, 0, false);
	assert_int_equal(mimo_gse_frame_check(f, n, 4096, &h), 30);
	assert_int_equal(h.reserved0, 0);
	assert_int_equal(h.reserved1, 0);
}

static void test_validators(void **state)
{
	(void)state;
	assert_true(mimo_wire_name_valid("a.b-c_1", 7));
	assert_false(mimo_wire_name_valid("..", 2));
	assert_false(mimo_wire_name_valid("a b", 3));
	assert_false(mimo_wire_name_valid("", 0));
	assert_true(mimo_wire_msg_id_valid("\xe4\xbd\xa0\xe5\xa5\xbd", 6)); /* UTF-8 */
	assert_false(mimo_wire_msg_id_valid("\xc0\xaf", 2));		    /* overlong */
	assert_false(mimo_wire_msg_id_valid("\xed\xa0\x80", 3));	    /* surrogate */
	assert_false(mimo_wire_msg_id_valid("a\x7f", 2));
	assert_false(mimo_wire_msg_id_valid("\xe4\xbd", 2)); /* truncated */
	assert_true(mimo_wire_key_valid("a/b", 3));
	assert_false(mimo_wire_key_valid("a\0b", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_is_fuse_out_header),
		cmocka_unit_test(test_hello_and_welcome),
		cmocka_unit_test(test_send_dispatch_ack),
		cmocka_unit_test(test_cache_notifies),
		cmocka_unit_test(test_gse_frames),
		cmocka_unit_test(test_validators),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
