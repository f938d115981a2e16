/* mimo_copy_cold: every byte lands, none beside it, whatever the sizes and alignments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "copy.h"

static void test_sizes_and_alignments(void **state)
{
	static uint8_t src[9000], dst[9100], want[9100];
	static const size_t sizes[] = { 0, 1, 15, 63, 64, 1023, 1024, 1025, 4096, 4097, 8191 };

	(void)state;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 7);
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		for (size_t doff = 0; doff < 32; doff += 3) {
			for (size_t soff = 0; soff < 32; soff += 5) {
				size_t n = sizes[si];

				memset(dst, 0xee, sizeof(dst));
				memset(want, 0xee, sizeof(want));
				memcpy(want + doff, src + soff, n);
				mimo_copy_cold(dst + doff, src + soff, n);
				assert_memory_equal(dst, want, sizeof(dst));
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_and_alignments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
