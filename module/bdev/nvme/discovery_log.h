/*
 * A discovery log page (from a target, so untrusted) into the transport IDs it lists. Alone
 * in its file so the fuzz target (test/fuzz/nvme/fuzz_discovery_log.c) links it alone.
 */
#ifndef MIMO_BDEV_NVME_DISCOVERY_LOG_H
#define MIMO_BDEV_NVME_DISCOVERY_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/nvme.h"

struct discovery_record {
	uint8_t subtype; /* MIMO_NVMF_SUBTYPE_NVME, or _DISCOVERY (a referral) */
	struct mimo_nvme_trid trid;
};

/*
 * The records of a whole log page of len bytes (header and numrec entries): those over TCP
 * (IPv4 or IPv6) with well-formed strings, the others left out. *out (free it) holds *num of
 * them. Returns 0, -EPROTO (numrec does not fit in len), -ENOMEM.
 */
int discovery_log_parse(const void *page, size_t len, struct discovery_record **out, size_t *num);

#endif
