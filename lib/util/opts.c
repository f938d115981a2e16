#include "opts.h"

#include <errno.h>
#include <string.h>

int mimo_opts_copy(void *dst, size_t dst_size, const void *src)
{
	size_t n;

	if (src != NULL) {
		memcpy(&n, src, sizeof(n));
		if (n < sizeof(size_t))
			return -EINVAL;
		for (size_t i = dst_size; i < n; i++) {
			if (((const unsigned char *)src)[i] != 0)
				return -EINVAL;
		}
		memcpy(dst, src, n < dst_size ? n : dst_size);
	}
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}
