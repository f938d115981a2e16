#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

uint32_t mimo_crc32c_update_sw(uint32_t crc, const void *buf, size_t len);

/* The check value every CRC32C implementation publishes, and RFC 3720's examples. */
static void test_known_vectors(void **state)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];

	(void)state;
	assert_int_equal(mimo_crc32c("123456789", 9), 0xe3069283);
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	assert_int_equal(mimo_crc32c(zeros, 32), 0x8a9136aa);
	assert_int_equal(mimo_crc32c(ones, 32), 0x62a8ab43);
	assert_int_equal(mimo_crc32c(inc, 32), 0x46dd794e);
}

static void test_hardware_and_table_agree(void **state)
{
	uint8_t buf[4099];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t len = 0; len < sizeof(buf); len += 97) {
		uint32_t a = mimo_crc32c_update(0xffffffffu, buf + 1, len);
		uint32_t b = mimo_crc32c_update_sw(0xffffffffu, buf + 1, len);

		assert_int_equal(a, b);
	}
	/* Split updates equal one update. */
	assert_int_equal(
		mimo_crc32c_update(mimo_crc32c_update(0xffffffffu, buf, 1000), buf + 1000, 3000),
		mimo_crc32c_update(0xffffffffu, buf, 4000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_hardware_and_table_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
