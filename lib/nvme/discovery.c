/*
 * The discovery log (page 0x70): header first for the record count, then the whole log in
 * transfers the controller accepts, then the header again; the copy is consistent only if
 * the generation counter held still throughout, else it is read again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "log.h"
#include "nvme_internal.h"

/* Far more than any target lists; guards the allocation against a nonsense count. */
#define MAX_RECORDS 65536u

static int read_log(struct mimo_nvme_ctrlr *ctrlr, void *buf, uint32_t len, uint64_t offset)
{
	struct mimo_nvme_cmd cmd = { 0 };
	struct mimo_nvme_cpl cpl;
	uint32_t numd = len / 4 - 1;
	int rc;

	cmd.opc = MIMO_NVME_OPC_GET_LOG_PAGE;
	cmd.cdw10 = MIMO_NVME_LOG_DISCOVERY | (numd & 0xffff) << 16;
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)offset;
	cmd.cdw13 = (uint32_t)(offset >> 32);
	rc = mimo_nvme_ctrlr_cmd_admin_sync(ctrlr, &cmd, buf, len, &cpl);
	if (rc != 0)
		return rc;
	if (mimo_nvme_cpl_is_error(&cpl)) {
		MIMO_ERR(NVME_COMP, "%s: Get Log Page (discovery) failed: sct %u sc 0x%02x",
			 ctrlr->trid.subnqn, mimo_nvme_status_sct(cpl.status),
			 mimo_nvme_status_sc(cpl.status));
		return -EIO;
	}
	return 0;
}

MIMO_EXPORT int mimo_nvme_ctrlr_get_discovery_log_sync(struct mimo_nvme_ctrlr *ctrlr,
						       struct mimo_nvmf_discovery_log **out)
{
	struct mimo_nvmf_discovery_log hdr, *log = NULL;
	/* A multiple of the record size, within what one command may carry. */
	uint32_t chunk = MIMO_MIN(ctrlr->max_xfer, 256u * 1024) / 1024 * 1024;
	int rc;

	if (chunk == 0)
		chunk = 1024;
	for (int attempt = 0; attempt < NVME_DISCOVERY_RETRIES; attempt++) {
		uint64_t gen, numrec, size;

		rc = read_log(ctrlr, &hdr, sizeof(hdr), 0);
		if (rc != 0)
			return rc;
		gen = hdr.genctr;
		numrec = hdr.numrec;
		if (numrec > MAX_RECORDS)
			return -EPROTO;
		size = sizeof(hdr) + numrec * sizeof(struct mimo_nvmf_discovery_entry);
		free(log);
		log = malloc(size);
		if (log == NULL)
			return -ENOMEM;
		for (uint64_t off = 0; off < size && rc == 0; off += chunk)
			rc = read_log(ctrlr, (uint8_t *)log + off,
				      (uint32_t)MIMO_MIN(size - off, chunk), off);
		if (rc == 0 && size > chunk)
			rc = read_log(ctrlr, &hdr, sizeof(hdr), 0);
		else
			hdr = *log;
		if (rc != 0) {
			free(log);
			return rc;
		}
		if (log->genctr == gen && hdr.genctr == gen && log->numrec == numrec) {
			*out = log;
			return 0;
		}
		MIMO_DEBUG(NVME_COMP,
			   "%s: discovery log changed while read (%" PRIu64 " -> %" PRIu64
			   "), again",
			   ctrlr->trid.subnqn, gen, hdr.genctr);
	}
	free(log);
	return -EAGAIN;
}
