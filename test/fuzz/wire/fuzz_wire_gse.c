/*
 * Fuzz GSE's IPC frames: a byte stream cut into frames by mimo_gse_frame_check; dispatch and
 * respond bodies split into meta and content with the SDK's checks. Properties: the split
 * never points outside the body; a frame that splits re-encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct mimo_gse_hdr h;
		long n = mimo_gse_frame_check(data + off, size - off, 1 << 20, &h);
		const char *meta;
		const void *content;
		size_t ml, cl;
		uint8_t *f, *again;

		if (n <= 0)
			break;
		f = malloc((size_t)n);
		memcpy(f, data + off, (size_t)n);
		if (mimo_gse_split(&h, f + MIMO_GSE_HDR_LEN, (size_t)n - MIMO_GSE_HDR_LEN, &meta,
				   &ml, &content, &cl) == 0) {
			if ((const uint8_t *)meta != f + MIMO_GSE_HDR_LEN ||
			    (const uint8_t *)content + cl != f + n)
				abort();
			again = malloc((size_t)n);
			if (h.version == MIMO_GSE_VERSION && h.magic == MIMO_GSE_MAGIC &&
			    mimo_gse_encode(again, h.type, h.seq, meta, ml, content, cl, true) !=
				    (size_t)n)
				abort();
			if (h.version == MIMO_GSE_VERSION && memcmp(again, f, (size_t)n) != 0)
				abort();
			free(again);
		}
		free(f);
		off += (size_t)n;
	}
	return 0;
}
