/*
 * --verify's data: every block carries its LBA, the run's seed and a write generation in
 * clear at its start, then words derived from all three. A block read back from the wrong
 * place, from an older write, or altered anywhere, does not match.
 */
#ifndef MIMO_PERF_PATTERN_H
#define MIMO_PERF_PATTERN_H

#include <stdint.h>

void pattern_fill(void *buf, uint32_t blocks, uint32_t block_size, uint64_t lba, uint64_t seed,
		  uint32_t gen);
/* The index of the first block that does not match, or -1 when all do. */
int64_t pattern_check(const void *buf, uint32_t blocks, uint32_t block_size, uint64_t lba,
		      uint64_t seed, uint32_t gen);

#endif
