/* Copies whose destination will not be read back soon. */
#ifndef MIMO_UTIL_COPY_H
#define MIMO_UTIL_COPY_H

#include <stddef.h>

/*
 * memcpy with non-temporal stores for the bulk: data received for a bdev's memory (a write
 * landing in a malloc bdev) is not read again by this thread, so its lines are written
 * without reading them first and without pushing the connection's working set (requests,
 * socket buffers) out of the cache. Short copies, and architectures without streaming
 * stores, are a plain memcpy. The copy is complete and visible to other threads on return.
 */
void mimo_copy_cold(void *dst, const void *src, size_t n);

#endif
