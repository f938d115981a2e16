/* CRC32C (Castagnoli), as NVMe/TCP's header and data digests use it: initial value and final
 * XOR 0xffffffff. The SSE4.2 instruction when the CPU has it, a table otherwise. */
#ifndef MIMO_UTIL_CRC32C_H
#define MIMO_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a running CRC (start with 0xffffffff; the digest is the result ^ 0xffffffff). */
uint32_t mimo_crc32c_update(uint32_t crc, const void *buf, size_t len);

static inline uint32_t mimo_crc32c(const void *buf, size_t len)
{
	return mimo_crc32c_update(0xffffffffu, buf, len) ^ 0xffffffffu;
}

#endif
