#include "crc32c.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t g_table[8][256];
static bool g_have_hw;

/*
 * mimo's one constructor (docs/ARCHITECTURE.md, "Registration"): it registers nothing, only
 * fills the tables and checks the CPU. It is linked exactly when CRC32C is (same object), and
 * spares the digest path a once-check per call.
 */
static void __attribute__((constructor)) crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		g_table[0][i] = c;
	}
	/* Slicing by 8: eight bytes per step without the instruction. */
	for (uint32_t i = 0; i < 256; i++) {
		for (int t = 1; t < 8; t++)
			g_table[t][i] =
				(g_table[t - 1][i] >> 8) ^ g_table[0][g_table[t - 1][i] & 0xff];
	}
#if defined(__x86_64__)
	g_have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= crc;
		crc = g_table[7][lo & 0xff] ^ g_table[6][(lo >> 8) & 0xff] ^
		      g_table[5][(lo >> 16) & 0xff] ^ g_table[4][lo >> 24] ^ g_table[3][hi & 0xff] ^
		      g_table[2][(hi >> 8) & 0xff] ^ g_table[1][(hi >> 16) & 0xff] ^
		      g_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ g_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

uint32_t mimo_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (g_have_hw)
		return crc_hw(crc, buf, len);
#endif
	return crc_table(crc, buf, len);
}

/* For tests: the table path regardless of the CPU. */
uint32_t mimo_crc32c_update_sw(uint32_t crc, const void *buf, size_t len);
uint32_t mimo_crc32c_update_sw(uint32_t crc, const void *buf, size_t len)
{
	return crc_table(crc, buf, len);
}
