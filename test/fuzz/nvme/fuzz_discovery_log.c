/*
 * Fuzz bdev_nvme's reading of a discovery log page (module/bdev/nvme/discovery_log.c): the
 * input is the page a target sent. Properties: nothing crashes or overruns; every record
 * returned is over TCP with NUL-terminated, non-empty, printable strings.
 */
#include <stdlib.h>
#include <string.h>

#include "discovery_log.h"
#include "mimo/nvme_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: the sanitizer sees any read beyond. */
	uint8_t *page = malloc(size > 0 ? size : 1);
	struct discovery_record *r;
	size_t n;

	if (page == NULL)
		return 0;
	memcpy(page, data, size);
	if (discovery_log_parse(page, size, &r, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (r[i].trid.trtype != MIMO_NVMF_TRTYPE_TCP ||
			    strlen(r[i].trid.traddr) == 0 || strlen(r[i].trid.subnqn) == 0 ||
			    strlen(r[i].trid.trsvcid) == 0)
				abort();
		}
		free(r);
	}
	free(page);
	return 0;
}
