/* Small compiler helpers shared by every mimo library. */
#ifndef MIMO_UTIL_COMPILER_H
#define MIMO_UTIL_COMPILER_H

#include <stddef.h>

/* Libraries are built with -fvisibility=hidden; only what a public header declares is exported. */
#define MIMO_EXPORT __attribute__((visibility("default")))

#define mimo_likely(x)	 __builtin_expect(!!(x), 1)
#define mimo_unlikely(x) __builtin_expect(!!(x), 0)

#define MIMO_CACHELINE	   64
#define MIMO_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MIMO_MIN(a, b) ((a) < (b) ? (a) : (b))

/* A hint inside spin-wait loops: lets the sibling hyper-thread run and saves power. */
static inline void mimo_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}
#define MIMO_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The structure that embeds member, from a pointer to that member. */
#define mimo_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
