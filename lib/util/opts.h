/*
 * Versioned options structures, one rule for every library. Each public `struct mimo_*_opts`
 * begins with `size_t opts_size`, which its `_opts_init` sets to the caller's sizeof. A library
 * takes the caller's first min(opts_size, its own size) bytes over its defaults, so a program
 * built against an older header keeps the defaults of the fields it did not know. Refused with
 * -EINVAL: opts_size 0 (the struct was never initialised), and a larger struct from a newer
 * header that sets anything past what this library knows (an option it would otherwise ignore).
 * So a field added to such a struct must go past the old struct's sizeof, not into its tail
 * padding (which an older caller's _opts_init zeroed, and which would be copied as 0).
 */
#ifndef MIMO_UTIL_OPTS_H
#define MIMO_UTIL_OPTS_H

#include <stddef.h>

/* dst holds the defaults (dst_size bytes, opts_size first); src may be NULL (defaults).
 * Returns 0 with dst->opts_size set to dst_size, or -EINVAL. */
int mimo_opts_copy(void *dst, size_t dst_size, const void *src);

#endif
