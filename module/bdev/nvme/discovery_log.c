/* The discovery log page's entries into transport IDs (discovery_log.h). */
#include "discovery_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/nvme_spec.h"

/* A field of the entry as a C string: space- or NUL-padded ASCII, no control characters;
 * false when it is empty, does not fit, or holds anything else. */
static bool field(char *out, size_t cap, const char *in, size_t in_len)
{
	size_t n = strnlen(in, in_len);

	while (n > 0 && in[n - 1] == ' ')
		n--;
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)in[i] < 0x21 || (unsigned char)in[i] > 0x7e)
			return false;
	memcpy(out, in, n);
	out[n] = '\0';
	return true;
}

int discovery_log_parse(const void *page, size_t len, struct discovery_record **out, size_t *num)
{
	const struct mimo_nvmf_discovery_log *log = page;
	struct discovery_record *r;
	uint64_t numrec;
	size_t n = 0;

	*out = NULL;
	*num = 0;
	if (len < sizeof(*log))
		return -EPROTO;
	numrec = log->numrec;
	if (numrec > (len - sizeof(*log)) / sizeof(log->entries[0]))
		return -EPROTO;
	if (numrec == 0)
		return 0;
	r = calloc(numrec, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < numrec; i++) {
		const struct mimo_nvmf_discovery_entry *e = &log->entries[i];
		struct discovery_record *d = &r[n];

		if (e->trtype != MIMO_NVMF_TRTYPE_TCP ||
		    (e->adrfam != MIMO_NVMF_ADRFAM_IPV4 && e->adrfam != MIMO_NVMF_ADRFAM_IPV6) ||
		    (e->subtype != MIMO_NVMF_SUBTYPE_NVME &&
		     e->subtype != MIMO_NVMF_SUBTYPE_DISCOVERY &&
		     e->subtype != 3 /* current discovery subsystem */))
			continue;
		memset(d, 0, sizeof(*d));
		d->subtype = e->subtype == MIMO_NVMF_SUBTYPE_NVME ? MIMO_NVMF_SUBTYPE_NVME
								  : MIMO_NVMF_SUBTYPE_DISCOVERY;
		d->trid.trtype = MIMO_NVMF_TRTYPE_TCP;
		d->trid.adrfam = e->adrfam;
		if (!field(d->trid.traddr, sizeof(d->trid.traddr), e->traddr, sizeof(e->traddr)) ||
		    !field(d->trid.trsvcid, sizeof(d->trid.trsvcid), e->trsvcid,
			   sizeof(e->trsvcid)) ||
		    !field(d->trid.subnqn, sizeof(d->trid.subnqn), e->subnqn, sizeof(e->subnqn)))
			continue;
		n++;
	}
	*out = r;
	*num = n;
	return 0;
}
