/* --verify's block pattern (see pattern.h). */
#include <string.h>

#include "pattern.h"

#define GOLDEN 0x9e3779b97f4a7c15ull

/* splitmix64's output function: every input bit affects every output bit. */
static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t block_key(uint64_t lba, uint64_t seed, uint32_t gen)
{
	return mix(lba * GOLDEN ^ seed) ^ ((uint64_t)gen << 32 | gen);
}

static void fill_block(uint64_t *w, uint32_t words, uint64_t lba, uint64_t seed, uint32_t gen)
{
	uint64_t key = block_key(lba, seed, gen);

	w[0] = lba;
	w[1] = seed ^ gen;
	for (uint32_t i = 2; i < words; i++)
		w[i] = mix(key + i * GOLDEN);
}

void pattern_fill(void *buf, uint32_t blocks, uint32_t block_size, uint64_t lba, uint64_t seed,
		  uint32_t gen)
{
	uint32_t words = block_size / 8;

	for (uint32_t b = 0; b < blocks; b++)
		fill_block((uint64_t *)((uint8_t *)buf + (size_t)b * block_size), words, lba + b,
			   seed, gen);
}

int64_t pattern_check(const void *buf, uint32_t blocks, uint32_t block_size, uint64_t lba,
		      uint64_t seed, uint32_t gen)
{
	uint32_t words = block_size / 8;

	for (uint32_t b = 0; b < blocks; b++) {
		const uint64_t *w =
			(const uint64_t *)((const uint8_t *)buf + (size_t)b * block_size);
		uint64_t key = block_key(lba + b, seed, gen);

		if (w[0] != lba + b || w[1] != (seed ^ gen))
			return b;
		for (uint32_t i = 2; i < words; i++)
			if (w[i] != mix(key + i * GOLDEN))
				return b;
	}
	return -1;
}
