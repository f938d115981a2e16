/* CRC-32 as IEEE 802.3, zlib and the NVMe key interchange formats compute it (reflected
 * polynomial 0xedb88320, initial value and final XOR 0xffffffff). A checksum against typing
 * errors, not a cryptographic check. */
#ifndef MIMO_UTIL_CRC32_H
#define MIMO_UTIL_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t mimo_crc32(const void *buf, size_t len);

#endif
