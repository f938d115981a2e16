/* The virtual bdev modules' iovec cutting (module/bdev/vbdev): what raid0 and concat hand each
 * member of an I/O that crosses strips or members. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vbdev.h"

static char g_mem[4096];

/* Three buffers of 100, 50 and 200 bytes. */
static void three(struct iovec iov[3])
{
	iov[0] = (struct iovec){ g_mem, 100 };
	iov[1] = (struct iovec){ g_mem + 1000, 50 };
	iov[2] = (struct iovec){ g_mem + 2000, 200 };
}

static void test_slice_inside_one(void **state)
{
	struct iovec iov[3], out[3];

	(void)state;
	three(iov);
	assert_int_equal(vbdev_iov_count(iov, 3, 10, 20), 1);
	assert_int_equal(vbdev_iov_slice(iov, 3, 10, 20, out, 3), 1);
	assert_ptr_equal(out[0].iov_base, g_mem + 10);
	assert_int_equal(out[0].iov_len, 20);
	/* Exactly the second buffer. */
	assert_int_equal(vbdev_iov_slice(iov, 3, 100, 50, out, 3), 1);
	assert_ptr_equal(out[0].iov_base, g_mem + 1000);
	assert_int_equal(out[0].iov_len, 50);
}

static void test_slice_across(void **state)
{
	struct iovec iov[3], out[3];

	(void)state;
	three(iov);
	/* From the middle of the first to the middle of the third. */
	assert_int_equal(vbdev_iov_count(iov, 3, 90, 80), 3);
	assert_int_equal(vbdev_iov_slice(iov, 3, 90, 80, out, 3), 3);
	assert_ptr_equal(out[0].iov_base, g_mem + 90);
	assert_int_equal(out[0].iov_len, 10);
	assert_ptr_equal(out[1].iov_base, g_mem + 1000);
	assert_int_equal(out[1].iov_len, 50);
	assert_ptr_equal(out[2].iov_base, g_mem + 2000);
	assert_int_equal(out[2].iov_len, 20);
	/* The whole. */
	assert_int_equal(vbdev_iov_slice(iov, 3, 0, 350, out, 3), 3);
	assert_int_equal(out[2].iov_len, 200);
}

static void test_slice_refusals(void **state)
{
	struct iovec iov[3], out[3];

	(void)state;
	three(iov);
	/* Past the end, or more pieces than out holds. */
	assert_int_equal(vbdev_iov_slice(iov, 3, 300, 100, out, 3), -EINVAL);
	assert_int_equal(vbdev_iov_slice(iov, 3, 90, 80, out, 2), -EINVAL);
	assert_int_equal(vbdev_iov_count(iov, 3, 400, 10), 0);
	/* Nothing asked: nothing cut. */
	assert_int_equal(vbdev_iov_slice(iov, 3, 50, 0, out, 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slice_inside_one),
		cmocka_unit_test(test_slice_across),
		cmocka_unit_test(test_slice_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
