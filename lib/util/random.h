/* Randomness: kernel entropy for secrets and ids, a cheap per-thread generator for jitter. */
#ifndef MIMO_UTIL_RANDOM_H
#define MIMO_UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fill buf with len bytes from getrandom(2). Returns 0 or a negative errno. */
int mimo_random_bytes(void *buf, size_t len);

/* A uniformly distributed value in [0, bound) from a per-thread xorshift generator, seeded
 * from the kernel. Not for secrets. bound 0 returns 0. */
uint64_t mimo_random_below(uint64_t bound);

/* Write 2*len lowercase hex digits of bytes plus a NUL into out (size 2*len+1). */
void mimo_hex_encode(const void *bytes, size_t len, char *out);

#endif
