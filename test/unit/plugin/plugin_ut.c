/*
 * libmimo_plugin: the cache's ranges, option checks, the send queue's bounds, and the
 * connection protocol against a scripted peer on a real Unix socket (resends keep their
 * idempotency key; a DISPATCH sent again after a reconnect reaches the callback once).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin_internal.h"
#include "mimo/plugin.h"
#include "mimo/wire.h"

static void test_cache_ranges(void **state)
{
	struct plugin_cache *c = plugin_cache_new(1 << 20);
	char buf[64];
	uint64_t total;

	(void)state;
	assert_int_equal(plugin_cache_read(c, "k", 1, 0, buf, sizeof(buf), NULL), -ENOENT);
	assert_int_equal(plugin_cache_store(c, "k", 1, 0, "0123456789", 10), 0);
	assert_int_equal(plugin_cache_store(c, "k", 1, 20, "abc", 3), 0);
	assert_int_equal(plugin_cache_read(c, "k", 1, 0, buf, sizeof(buf), &total), 10);
	assert_int_equal(total, 23);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(plugin_cache_read(c, "k", 1, 12, buf, sizeof(buf), NULL), -ENODATA);
	assert_int_equal(plugin_cache_read(c, "k", 1, 21, buf, sizeof(buf), NULL), 2);
	/* Filling the hole joins the ranges. */
	assert_int_equal(plugin_cache_store(c, "k", 1, 10, "..........", 10), 0);
	assert_int_equal(plugin_cache_read(c, "k", 1, 0, buf, sizeof(buf), NULL), 23);
	plugin_cache_inval(c, "k", 1, 5, 3);
	assert_int_equal(plugin_cache_read(c, "k", 1, 0, buf, sizeof(buf), NULL), 5);
	assert_int_equal(plugin_cache_read(c, "k", 1, 6, buf, sizeof(buf), NULL), -ENODATA);
	assert_int_equal(plugin_cache_read(c, "k", 1, 8, buf, sizeof(buf), NULL), 15);
	plugin_cache_inval(c, "k", 1, 10, 0); /* to the end */
	assert_int_equal(plugin_cache_read(c, "k", 1, 8, buf, sizeof(buf), NULL), 2);
	assert_int_equal(plugin_cache_read(c, "k", 1, 23, buf, sizeof(buf), NULL), 0);
	plugin_cache_delete(c, "k", 1);
	assert_int_equal(plugin_cache_read(c, "k", 1, 0, buf, sizeof(buf), NULL), -ENOENT);
	/* The size bound. */
	assert_int_equal(plugin_cache_store(c, "big", 3, (1 << 20) - 1, "ab", 2), -ENOSPC);
	plugin_cache_free(c);
}

static void test_options_and_queue_bounds(void **state)
{
	struct mimo_plugin_opts o;
	struct mimo_plugin *p;
	struct mimo_plugin_agent_info info;

	(void)state;
	mimo_plugin_opts_init(&o);
	assert_int_equal(mimo_plugin_create(&o, &p), -EINVAL); /* no name */
	assert_null(p);
	o.name = "bad name";
	o.version = "1";
	assert_int_equal(mimo_plugin_create(&o, &p), -EINVAL);
	o.name = "ok";
	o.send_queue_max = 3;
	o.max_message_bytes = 10;
	o.socket_path = "/nonexistent/agent.sock";
	assert_int_equal(mimo_plugin_create(&o, &p), 0);
	assert_non_null(p);
	/* Queued while disconnected, up to the bound; checked before queueing. */
	assert_int_equal(mimo_plugin_send(p, "a", "x", 1), 0);
	assert_int_equal(mimo_plugin_send(p, "b", "x", 1), 0);
	assert_int_equal(mimo_plugin_send(p, "c", "x", 1), 0);
	assert_int_equal(mimo_plugin_send(p, "d", "x", 1), -ENOBUFS);
	assert_int_equal(mimo_plugin_send(p, "", "x", 1), -EINVAL);
	assert_int_equal(mimo_plugin_send(p, "e", "01234567890", 11), -EMSGSIZE);
	assert_int_equal(mimo_plugin_agent_info(p, &info), -ENOTCONN);
	/* No agent: launch gives up waiting, the SDK keeps trying in the background. */
	assert_int_equal(mimo_plugin_launch(p, 150), -ETIMEDOUT);
	assert_int_equal(mimo_plugin_launch(p, 150), -EALREADY);
	assert_int_equal(mimo_plugin_send_timeout(p, "f", "x", 1, 50), -ENOBUFS);
	assert_int_equal(mimo_plugin_flush(p, 50), -ETIMEDOUT);
	mimo_plugin_destroy(p);
}

/* --- a scripted peer ------------------------------------------------------------------------ */

struct peer {
	char path[108];
	int lfd;
	uint64_t keys_first[4], keys_second[4];
	int n_first, n_second;
	int acks_seen;
};

static ssize_t read_frame(int fd, uint8_t *buf, size_t cap, struct mimo_wire_hdr *h)
{
	size_t have = 0;

	for (;;) {
		long n = mimo_wire_frame_check(buf, have, (uint32_t)cap, h);
		ssize_t r;

		if (n > 0)
			return n;
		if (n < 0)
			return -1;
		r = read(fd, buf + have, have < 16 ? 16 - have : h->len - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
}

static void welcome(int fd, uint64_t unique)
{
	struct mimo_wire_welcome w = { .proto = 1,
				       .max_frame = MIMO_WIRE_MAX_FRAME,
				       .epoch = 42,
				       .slot_id = 1,
				       .keepalive_ms = 3000,
				       .agent_id = "peer",
				       .agent_id_len = 4,
				       .version = "t",
				       .version_len = 1 };
	uint8_t f[128];

	assert_true(write(fd, f, mimo_wire_encode_welcome(f, unique, &w)) > 0);
}

static void dispatch(int fd, uint64_t seq)
{
	struct mimo_wire_dispatch d = {
		.seq = seq, .id = "d", .id_len = 1, .content = "x", .content_len = 1
	};
	uint8_t f[64];

	assert_true(write(fd, f, mimo_wire_encode_dispatch(f, &d)) > 0);
}

/* First connection: take three SENDs, answer only the first, send DISPATCH seq 1 and close.
 * Second: take the SENDs again (the two unanswered), answer them, send DISPATCH seq 1 again
 * and seq 2, wait for the ACK of 2. */
static void *peer_main(void *arg)
{
	struct peer *pe = arg;
	uint8_t buf[4096];

	for (int conn = 0; conn < 2; conn++) {
		int fd = accept(pe->lfd, NULL, NULL);
		struct mimo_wire_hdr h;
		int sends = 0, want = conn == 0 ? 3 : 2;

		assert_true(fd >= 0);
		while (sends < want || (conn == 1 && pe->acks_seen == 0)) {
			ssize_t n = read_frame(fd, buf, sizeof(buf), &h);
			struct mimo_wire_send s;
			uint8_t r[16];

			if (n < 0)
				break;
			if (h.code == MIMO_WIRE_HELLO) {
				welcome(fd, h.unique);
				if (conn == 1) {
					dispatch(fd, 1);
					dispatch(fd, 2);
				}
			} else if (h.code == MIMO_WIRE_SEND) {
				assert_int_equal(
					mimo_wire_decode_send(buf + 16, (size_t)n - 16, &s), 0);
				if (conn == 0)
					pe->keys_first[pe->n_first++] = s.key_lo;
				else
					pe->keys_second[pe->n_second++] = s.key_lo;
				sends++;
				if (conn == 1 || sends == 1)
					assert_true(write(fd, r,
							  mimo_wire_encode_reply(r, h.unique, 0)) >
						    0);
				if (conn == 0 && sends == 3)
					dispatch(fd, 1);
			} else if (h.code == MIMO_WIRE_ACK) {
				uint64_t seq;

				assert_int_equal(
					mimo_wire_decode_ack(buf + 16, (size_t)n - 16, &seq), 0);
				if (conn == 1 && seq == 2)
					pe->acks_seen++;
				assert_true(write(fd, buf,
						  mimo_wire_encode_reply(buf, h.unique, 0)) > 0);
			} else if (h.code == MIMO_WIRE_PING) {
				assert_true(write(fd, buf,
						  mimo_wire_encode_reply(buf, h.unique, 0)) > 0);
			}
		}
		/* The DISPATCH was read before the hang-up: its ACK says so. */
		while (conn == 0) {
			ssize_t n = read_frame(fd, buf, sizeof(buf), &h);
			uint64_t seq = 0;

			if (n < 0 ||
			    (h.code == MIMO_WIRE_ACK &&
			     mimo_wire_decode_ack(buf + 16, (size_t)n - 16, &seq) == 0 && seq == 1))
				break;
		}
		close(fd);
	}
	return NULL;
}

static int g_received;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_recv(void *arg, const char *id, const void *content, size_t len)
{
	(void)arg;
	(void)id;
	(void)content;
	(void)len;
	pthread_mutex_lock(&g_mu);
	g_received++;
	pthread_mutex_unlock(&g_mu);
}

static void test_resend_and_redelivery(void **state)
{
	struct peer pe = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mimo_plugin_opts o;
	struct mimo_plugin_stats st;
	struct mimo_plugin *p;
	pthread_t t;

	(void)state;
	snprintf(pe.path, sizeof(pe.path), "/tmp/mimo-plugin-ut-%d.sock", (int)getpid());
	unlink(pe.path);
	strcpy(sa.sun_path, pe.path);
	pe.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(pe.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(pe.lfd, 4), 0);
	assert_int_equal(pthread_create(&t, NULL, peer_main, &pe), 0);

	mimo_plugin_opts_init(&o);
	o.name = "ut";
	o.version = "1";
	o.socket_path = pe.path;
	o.recv_cb = on_recv;
	o.reconnect_min_ms = 10;
	o.reconnect_max_ms = 20;
	assert_int_equal(mimo_plugin_create(&o, &p), 0);
	assert_non_null(p);
	assert_int_equal(mimo_plugin_send(p, "m1", "a", 1), 0);
	assert_int_equal(mimo_plugin_send(p, "m2", "b", 1), 0);
	assert_int_equal(mimo_plugin_send(p, "m3", "c", 1), 0);
	assert_int_equal(mimo_plugin_launch(p, 5000), 0);
	assert_int_equal(mimo_plugin_flush(p, 10000), 0);
	pthread_join(t, NULL);
	mimo_plugin_get_stats(p, &st);
	mimo_plugin_destroy(p);
	close(pe.lfd);
	unlink(pe.path);

	/* The two unanswered messages went again, with the keys they had. */
	assert_int_equal(pe.n_first, 3);
	assert_int_equal(pe.n_second, 2);
	assert_int_equal(pe.keys_second[0], pe.keys_first[1]);
	assert_int_equal(pe.keys_second[1], pe.keys_first[2]);
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.resent, 2);
	assert_int_equal(st.connects, 2);
	/* DISPATCH 1 came twice (its ACK was lost with the connection): one callback. */
	assert_int_equal(g_received, 2);
	assert_int_equal(st.duplicates, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_ranges),
		cmocka_unit_test(test_options_and_queue_bounds),
		cmocka_unit_test(test_resend_and_redelivery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
