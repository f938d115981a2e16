/* The NVMe/TCP sockets' options (sock_opts.h) on real TCP sockets: sizes raised to what was
 * asked, never lowered below the kernel's default, per kind of socket. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sock_opts.h"

static int bufsize(int fd, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, opt, &v, &len), 0);
	return v;
}

static void reset(void)
{
	struct mimo_sock_opts none = { 0 };

	mimo_sock_set_opts(MIMO_SOCK_IMPL_POSIX, &none);
	mimo_sock_set_opts(MIMO_SOCK_IMPL_SSL, &none);
}

static void test_names(void **state)
{
	enum mimo_sock_impl impl;

	(void)state;
	assert_int_equal(mimo_sock_impl_from_name("posix", &impl), 0);
	assert_int_equal(impl, MIMO_SOCK_IMPL_POSIX);
	assert_int_equal(mimo_sock_impl_from_name("SSL", &impl), 0);
	assert_int_equal(impl, MIMO_SOCK_IMPL_SSL);
	assert_int_equal(mimo_sock_impl_from_name("uring", &impl), 0);
	assert_int_equal(impl, MIMO_SOCK_IMPL_URING);
	assert_int_equal(mimo_sock_impl_from_name("vpp", &impl), -ENOENT);
	assert_int_equal(mimo_sock_impl_from_name(NULL, &impl), -ENOENT);
	assert_string_equal(mimo_sock_impl_name(MIMO_SOCK_IMPL_SSL), "ssl");
	/* The default plain listeners take: posix until sock_set_default_impl says uring. */
	assert_int_equal(mimo_sock_get_default_impl(), MIMO_SOCK_IMPL_POSIX);
	mimo_sock_set_default_impl(MIMO_SOCK_IMPL_URING);
	assert_int_equal(mimo_sock_get_default_impl(), MIMO_SOCK_IMPL_URING);
	mimo_sock_set_default_impl(MIMO_SOCK_IMPL_POSIX);
}

static void test_buffers_raised_for_their_kind_only(void **state)
{
	struct mimo_sock_opts o = { .recv_buf_size = 0, .send_buf_size = 0 };
	int plain = socket(AF_INET, SOCK_STREAM, 0), tls = socket(AF_INET, SOCK_STREAM, 0);
	int rcv_default = bufsize(plain, SO_RCVBUF), snd_default = bufsize(plain, SO_SNDBUF);

	(void)state;
	reset();
	assert_false(mimo_sock_opts_changed(MIMO_SOCK_IMPL_POSIX));
	/* The kernel's default sizes, asked for explicitly: Linux doubles what it is asked for
	 * (its bookkeeping), so the sockets end up larger than by default - within
	 * net.core.rmem_max / wmem_max, 212992 unless lowered. */
	o.recv_buf_size = (uint32_t)rcv_default;
	o.send_buf_size = (uint32_t)snd_default;
	mimo_sock_set_opts(MIMO_SOCK_IMPL_POSIX, &o);
	assert_true(mimo_sock_opts_changed(MIMO_SOCK_IMPL_POSIX));
	assert_false(mimo_sock_opts_changed(MIMO_SOCK_IMPL_SSL));
	mimo_sock_apply_buffers(plain, MIMO_SOCK_IMPL_POSIX);
	mimo_sock_apply_buffers(tls, MIMO_SOCK_IMPL_SSL);
	assert_true(bufsize(plain, SO_RCVBUF) > rcv_default);
	assert_true(bufsize(plain, SO_SNDBUF) > snd_default);
	assert_int_equal(bufsize(tls, SO_RCVBUF), rcv_default);
	assert_int_equal(bufsize(tls, SO_SNDBUF), snd_default);
	close(plain);
	close(tls);
	reset();
}

static void test_a_smaller_size_leaves_the_default(void **state)
{
	struct mimo_sock_opts o = { .recv_buf_size = 4096, .send_buf_size = 4096 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rcv_default = bufsize(fd, SO_RCVBUF), snd_default = bufsize(fd, SO_SNDBUF);

	(void)state;
	mimo_sock_set_opts(MIMO_SOCK_IMPL_SSL, &o);
	mimo_sock_apply_buffers(fd, MIMO_SOCK_IMPL_SSL);
	assert_int_equal(bufsize(fd, SO_RCVBUF), rcv_default);
	assert_int_equal(bufsize(fd, SO_SNDBUF), snd_default);
	close(fd);
	reset();
}

static void test_quickack_is_a_change(void **state)
{
	struct mimo_sock_opts o = { .enable_quickack = true };

	(void)state;
	mimo_sock_set_opts(MIMO_SOCK_IMPL_SSL, &o);
	assert_true(mimo_sock_opts_changed(MIMO_SOCK_IMPL_SSL));
	assert_false(mimo_sock_opts_changed(MIMO_SOCK_IMPL_POSIX));
	reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_buffers_raised_for_their_kind_only),
		cmocka_unit_test(test_a_smaller_size_leaves_the_default),
		cmocka_unit_test(test_quickack_is_a_change),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
