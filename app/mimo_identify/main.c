/*
 * mimo_identify: connect to an NVMe-oF/TCP controller and print what it reports - controller
 * data and every active namespace, or the discovery log for a discovery controller - in
 * spdk_nvme_identify's layout, or as one JSON object (--json).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_opts.h"
#include "mimo/nvme.h"
#include "uuid.h"

static void usage(const char *prog)
{
	printf("usage: %s -r TRID [options]\n\n"
	       "  -r, --transport-id TRID  e.g. 'trtype:tcp adrfam:IPv4 traddr:127.0.0.1\n"
	       "                           trsvcid:4420 subnqn:nqn.2016-06.io.spdk:cnode1'\n"
	       "                           (subnqn defaults to the discovery NQN)\n"
	       "  -H, --enable-tcp-hdgst   header digest\n"
	       "  -I, --enable-tcp-ddgst   data digest\n"
	       "      --json               one JSON object instead of text\n" AUTH_USAGE
	       "  -h, --help               this text\n",
	       prog);
}

/* Identify strings: space-padded ASCII, not NUL-terminated. */
static void str_field(char *out, size_t out_len, const char *in, size_t in_len)
{
	size_t n = strnlen(in, in_len);

	while (n > 0 && in[n - 1] == ' ')
		n--;
	if (n >= out_len)
		n = out_len - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '.';
	out[n] = '\0';
}

static void line(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *label, const char *fmt, ...)
{
	va_list ap;
	char key[64];

	snprintf(key, sizeof(key), "%s:", label);
	printf("%-39s", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static const char *sup(uint32_t v)
{
	return v ? "Supported" : "Not Supported";
}

static void title(const char *t)
{
	size_t n = strlen(t);

	printf("%s\n", t);
	while (n--)
		putchar('=');
	printf("\n");
}

static void hex(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static const char *trtype_name(uint8_t t)
{
	switch (t) {
	case 1:
		return "RDMA";
	case 2:
		return "FC";
	case 3:
		return "TCP";
	case 254:
		return "INTRA_HOST";
	default:
		return "Unknown";
	}
}

static const char *adrfam_name(uint8_t a)
{
	switch (a) {
	case 1:
		return "IPv4";
	case 2:
		return "IPv6";
	case 3:
		return "IB";
	case 4:
		return "FC";
	default:
		return "Unknown";
	}
}

static const char *subtype_name(uint8_t s)
{
	switch (s) {
	case 1:
		return "Referral to a discovery service";
	case 2:
		return "NVM Subsystem";
	case 3:
		return "Current Discovery Subsystem";
	default:
		return "Unknown";
	}
}

/* --- text ------------------------------------------------------------------------------------ */

static void print_ctrlr(struct mimo_nvme_ctrlr *ctrlr)
{
	const struct mimo_nvme_ctrlr_data *cd = mimo_nvme_ctrlr_get_data(ctrlr);
	const struct mimo_nvme_trid *trid = mimo_nvme_ctrlr_get_trid(ctrlr);
	uint64_t cap = mimo_nvme_ctrlr_get_cap(ctrlr);
	uint32_t vs = mimo_nvme_ctrlr_get_vs(ctrlr), mx = mimo_nvme_ctrlr_get_max_xfer_size(ctrlr);
	char sn[21], mn[41], fr[9], subnqn[257];

	str_field(sn, sizeof(sn), cd->sn, sizeof(cd->sn));
	str_field(mn, sizeof(mn), cd->mn, sizeof(cd->mn));
	str_field(fr, sizeof(fr), cd->fr, sizeof(cd->fr));
	str_field(subnqn, sizeof(subnqn), cd->subnqn, sizeof(cd->subnqn));
	printf("=====================================================\n");
	printf("NVMe over Fabrics controller at %s:%s: %s\n", trid->traddr, trid->trsvcid,
	       trid->subnqn);
	printf("=====================================================\n");
	title("Controller Capabilities/Features");
	line("Vendor ID", "%04x", cd->vid);
	line("Subsystem Vendor ID", "%04x", cd->ssvid);
	line("Serial Number", "%s", sn);
	line("Model Number", "%s", mn);
	line("Firmware Version", "%s", fr);
	line("Recommended Arb Burst", "%u", cd->rab);
	line("IEEE OUI Identifier", "%02x %02x %02x", cd->ieee[0], cd->ieee[1], cd->ieee[2]);
	printf("Multi-path I/O\n");
	line("  May have multiple subsystem ports", "%s", cd->cmic & 1 ? "Yes" : "No");
	line("  May have multiple controllers", "%s", cd->cmic & 2 ? "Yes" : "No");
	if (mx == UINT32_MAX)
		line("Max Data Transfer Size", "Unlimited");
	else
		line("Max Data Transfer Size", "%u", mx);
	line("Max Number of Namespaces", "%u", cd->nn);
	line("Max Number of I/O Queues", "%u", mimo_nvme_ctrlr_get_num_io_queues(ctrlr));
	line("NVMe Specification Version (VS)", "%u.%u.%u", vs >> 16, (vs >> 8) & 0xff, vs & 0xff);
	if (cd->ver != 0)
		line("NVMe Specification Version (Identify)", "%u.%u.%u", cd->ver >> 16,
		     (cd->ver >> 8) & 0xff, cd->ver & 0xff);
	line("Maximum Queue Entries", "%u", (unsigned)(cap & 0xffff) + 1);
	line("Contiguous Queues Required", "%s", (cap >> 16) & 1 ? "Yes" : "No");
	line("Reset Timeout", "%" PRIu64 " ms", ((cap >> 24) & 0xff) * 500);
	line("Memory Page Size Minimum", "%" PRIu64 " bytes",
	     (uint64_t)1 << (12 + ((cap >> 48) & 0xf)));
	line("Memory Page Size Maximum", "%" PRIu64 " bytes",
	     (uint64_t)1 << (12 + ((cap >> 52) & 0xf)));
	printf("Optional Asynchronous Events Supported\n");
	line("  Namespace Attribute Notices", "%s", sup(cd->oaes & (1u << 8)));
	line("  Firmware Activation Notices", "%s", sup(cd->oaes & (1u << 9)));
	line("  Discovery Log Change Notices", "%s", sup(cd->oaes & (1u << 31)));
	line("Controller ID", "0x%04x", cd->cntlid);
	line("Controller Type", "%s",
	     cd->cntrltype == 2	  ? "Discovery"
	     : cd->cntrltype == 1 ? "I/O"
				  : "Not reported");
	printf("\n");
	title("Admin Command Set Attributes");
	line("Security Send/Receive", "%s", sup(cd->oacs & 1));
	line("Format NVM", "%s", sup(cd->oacs & 2));
	line("Firmware Activate/Download", "%s", sup(cd->oacs & 4));
	line("Namespace Management", "%s", sup(cd->oacs & 8));
	line("Abort Command Limit", "%u", cd->acl + 1u);
	line("Async Event Request Limit", "%u", cd->aerl + 1u);
	line("Number of Firmware Slots", "%u", (cd->frmw >> 1) & 7);
	line("Keep Alive", "%s", sup(cd->kas));
	if (cd->kas)
		line("Keep Alive Granularity", "%u ms", cd->kas * 100u);
	printf("\n");
	title("NVM Command Set Attributes");
	line("Submission Queue Entry Size", "Max: %u Min: %u", 1u << (cd->sqes >> 4),
	     1u << (cd->sqes & 0xf));
	line("Completion Queue Entry Size", "Max: %u Min: %u", 1u << (cd->cqes >> 4),
	     1u << (cd->cqes & 0xf));
	line("Maximum Outstanding Commands", "%u", cd->maxcmd);
	line("Number of Namespaces", "%u", cd->nn);
	line("Compare Command", "%s", sup(cd->oncs & 1));
	line("Write Uncorrectable Command", "%s", sup(cd->oncs & 2));
	line("Dataset Management Command", "%s", sup(cd->oncs & 4));
	line("Write Zeroes Command", "%s", sup(cd->oncs & 8));
	line("Set Features Save Field", "%s", sup(cd->oncs & 16));
	line("Reservations", "%s", sup(cd->oncs & 32));
	line("Volatile Write Cache", "%s", cd->vwc & 1 ? "Present" : "Not Present");
	line("Atomic Write Unit (Normal)", "%u", cd->awun + 1u);
	line("Atomic Write Unit (PFail)", "%u", cd->awupf + 1u);
	line("Fused Compare & Write", "%s", sup(cd->fuses & 1));
	line("Scatter-Gather List", "%s", "");
	line("  SGL Command Set", "%s", sup(cd->sgls & 3));
	line("  SGL Keyed", "%s", sup(cd->sgls & (1u << 2)));
	line("  SGL Bit Bucket Descriptor", "%s", sup(cd->sgls & (1u << 16)));
	line("  SGL Offset", "%s", sup(cd->sgls & (1u << 20)));
	line("  Transport SGL Data Block", "%s", sup(cd->sgls & (1u << 21)));
	line("Subsystem NQN", "%s", subnqn);
	line("Secure channel", "%s",
	     mimo_nvme_ctrlr_get_tls_cipher(ctrlr) != NULL ? mimo_nvme_ctrlr_get_tls_cipher(ctrlr)
							   : "none (plain TCP)");
	printf("\n");
	title("NVMe over Fabrics Attributes");
	line("I/O Queue Command Capsule Size", "%u bytes", cd->ioccsz * 16u);
	line("I/O Queue Response Capsule Size", "%u bytes", cd->iorcsz * 16u);
	line("In Capsule Data Offset", "%u", cd->icdoff);
	line("Controller Model", "%s", cd->fcatt & 1 ? "Static" : "Dynamic");
	line("Max SGL Data Block Descriptors", "%u", cd->msdbd);
	printf("\n");
}

static void print_ns(struct mimo_nvme_ctrlr *ctrlr, struct mimo_nvme_ns *ns)
{
	const struct mimo_nvme_ctrlr_data *cd = mimo_nvme_ctrlr_get_data(ctrlr);
	const struct mimo_nvme_ns_data *d = mimo_nvme_ns_get_data(ns);
	const uint8_t *uuid = mimo_nvme_ns_get_uuid(ns), *nguid = mimo_nvme_ns_get_nguid(ns);
	uint64_t bs = mimo_nvme_ns_get_sector_size(ns);
	char buf[64];

	printf("Namespace ID:%u\n", mimo_nvme_ns_get_id(ns));
	line("Deallocate", "%s", sup(cd->oncs & 4));
	line("Deallocated/Unwritten Error", "%s", sup(d->nsfeat & 4));
	line("Deallocated Read Value", "%s",
	     (d->dlfeat & 7) == 1   ? "All 0x00"
	     : (d->dlfeat & 7) == 2 ? "All 0xFF"
				    : "Unknown");
	line("Deallocate in Write Zeroes", "%s", sup(d->dlfeat & 8));
	line("Flush", "%s", sup(cd->vwc & 1));
	line("Reservation", "%s", sup(cd->oncs & 32));
	line("Namespace Sharing Capabilities", "%s",
	     d->nmic & 1 ? "Multiple Controllers" : "Private");
	line("Size (in LBAs)", "%" PRIu64 " (%" PRIu64 "GiB)", d->nsze, d->nsze * bs >> 30);
	line("Capacity (in LBAs)", "%" PRIu64 " (%" PRIu64 "GiB)", d->ncap, d->ncap * bs >> 30);
	line("Utilization (in LBAs)", "%" PRIu64 " (%" PRIu64 "GiB)", d->nuse, d->nuse * bs >> 30);
	if (nguid != NULL) {
		hex(buf, nguid, 16);
		line("NGUID", "%s", buf);
	}
	if (uuid != NULL) {
		mimo_uuid_format(uuid, buf);
		line("UUID", "%s", buf);
	}
	line("Thin Provisioning", "%s", sup(d->nsfeat & 1));
	line("Block Size", "%" PRIu64, bs);
	line("Number of LBA Formats", "%u", d->nlbaf + 1u);
	line("Current LBA Format", "LBA Format #%02u", d->flbas & 0xf);
	for (unsigned i = 0; i <= d->nlbaf && i < 16; i++)
		printf("LBA Format #%02u: Data Size: %5u  Metadata Size: %5u\n", i,
		       d->lbaf[i].lbads >= 9 && d->lbaf[i].lbads < 32 ? 1u << d->lbaf[i].lbads : 0,
		       d->lbaf[i].ms);
	printf("\n");
}

static void entry_str(char *out, size_t out_len, const char *in, size_t in_len)
{
	size_t n = strnlen(in, in_len);

	while (n > 0 && in[n - 1] == ' ')
		n--;
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static void print_discovery(const struct mimo_nvmf_discovery_log *log)
{
	title("Discovery Log Page");
	line("Generation Counter", "%" PRIu64, log->genctr);
	line("Number of Records", "%" PRIu64, log->numrec);
	line("Record Format", "%u", log->recfmt);
	printf("\n");
	for (uint64_t i = 0; i < log->numrec; i++) {
		const struct mimo_nvmf_discovery_entry *e = &log->entries[i];
		char s[257];

		printf("Discovery Log Entry %" PRIu64 "\n----------------------\n", i);
		line("Transport Type", "%u (%s)", e->trtype, trtype_name(e->trtype));
		line("Address Family", "%u (%s)", e->adrfam, adrfam_name(e->adrfam));
		line("Subsystem Type", "%u (%s)", e->subtype, subtype_name(e->subtype));
		printf("Transport Requirements:\n");
		line("  Secure Channel", "%s",
		     (e->treq & 3) == 0	  ? "Not Specified"
		     : (e->treq & 3) == 1 ? "Required"
		     : (e->treq & 3) == 2 ? "Not Required"
					  : "Reserved");
		line("Port ID", "%u (0x%04x)", e->portid, e->portid);
		line("Controller ID", "%u (0x%04x)", e->cntlid, e->cntlid);
		line("Admin Max SQ Size", "%u", e->asqsz);
		entry_str(s, sizeof(s), e->trsvcid, sizeof(e->trsvcid));
		line("Transport Service Identifier", "%s", s);
		entry_str(s, sizeof(s), e->subnqn, sizeof(e->subnqn));
		line("NVM Subsystem Qualified Name", "%s", s);
		entry_str(s, sizeof(s), e->traddr, sizeof(e->traddr));
		line("Transport Address", "%s", s);
	}
}

/* --- JSON ------------------------------------------------------------------------------------ */

static json_t *ctrlr_json(struct mimo_nvme_ctrlr *ctrlr)
{
	const struct mimo_nvme_ctrlr_data *cd = mimo_nvme_ctrlr_get_data(ctrlr);
	const struct mimo_nvme_trid *trid = mimo_nvme_ctrlr_get_trid(ctrlr);
	uint32_t vs = mimo_nvme_ctrlr_get_vs(ctrlr), mx = mimo_nvme_ctrlr_get_max_xfer_size(ctrlr);
	uint64_t cap = mimo_nvme_ctrlr_get_cap(ctrlr);
	char sn[21], mn[41], fr[9], subnqn[257], ver[16];
	char trs[512];

	str_field(sn, sizeof(sn), cd->sn, sizeof(cd->sn));
	str_field(mn, sizeof(mn), cd->mn, sizeof(cd->mn));
	str_field(fr, sizeof(fr), cd->fr, sizeof(cd->fr));
	str_field(subnqn, sizeof(subnqn), cd->subnqn, sizeof(cd->subnqn));
	snprintf(ver, sizeof(ver), "%u.%u.%u", vs >> 16, (vs >> 8) & 0xff, vs & 0xff);
	json_t *o;

	mimo_nvme_trid_format(trid, trs, sizeof(trs));
	o = json_pack(
		"{s:s, s:i, s:i, s:s, s:s, s:s, s:i, s:s, s:I, s:i, s:I, s:i, s:i, s:i, s:i, s:i,"
		" s:i, s:I, s:I, s:I, s:s, s:I, s:i, s:i, s:i, s:i, s:b}",
		"trid", trs, "vid", (int)cd->vid, "ssvid", (int)cd->ssvid, "sn", sn, "mn", mn, "fr",
		fr, "cntlid", (int)cd->cntlid, "ver", ver, "cap", (json_int_t)cap, "mdts",
		(int)cd->mdts, "max_xfer_size", mx == UINT32_MAX ? (json_int_t)0 : (json_int_t)mx,
		"kas", (int)cd->kas, "oacs", (int)cd->oacs, "oncs", (int)cd->oncs, "aerl",
		(int)cd->aerl, "cntrltype", (int)cd->cntrltype, "oaes", (int)cd->oaes, "sgls",
		(json_int_t)cd->sgls, "ioccsz", (json_int_t)cd->ioccsz, "iorcsz",
		(json_int_t)cd->iorcsz, "subnqn", subnqn, "nn", (json_int_t)cd->nn, "maxcmd",
		(int)cd->maxcmd, "num_io_queues", (int)mimo_nvme_ctrlr_get_num_io_queues(ctrlr),
		"max_queue_entries", (int)(cap & 0xffff) + 1, "vwc", (int)cd->vwc, "discovery",
		mimo_nvme_ctrlr_is_discovery(ctrlr));
	/* Command Retry Delay Times 1-3, in 100 ms (what a CRD field in a status asks for). */
	json_object_set_new(o, "crdt",
			    json_pack("[i, i, i]", cd->crdt[0], cd->crdt[1], cd->crdt[2]));
	/* The secure channel's cipher suite; null over plain TCP. */
	json_object_set_new(o, "tls",
			    mimo_nvme_ctrlr_get_tls_cipher(ctrlr) != NULL
				    ? json_string(mimo_nvme_ctrlr_get_tls_cipher(ctrlr))
				    : json_null());
	return o;
}

static json_t *ns_json(struct mimo_nvme_ns *ns)
{
	const struct mimo_nvme_ns_data *d = mimo_nvme_ns_get_data(ns);
	const uint8_t *uuid = mimo_nvme_ns_get_uuid(ns), *nguid = mimo_nvme_ns_get_nguid(ns);
	uint64_t bs = mimo_nvme_ns_get_sector_size(ns);
	json_t *j;
	char buf[64];

	j = json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:i, s:i}", "nsid",
		      (int)mimo_nvme_ns_get_id(ns), "size", (json_int_t)(d->nsze * bs), "capacity",
		      (json_int_t)(d->ncap * bs), "nsze", (json_int_t)d->nsze, "ncap",
		      (json_int_t)d->ncap, "block_size", (json_int_t)bs, "nlbaf", d->nlbaf + 1,
		      "flbas", d->flbas & 0xf);
	if (uuid != NULL) {
		mimo_uuid_format(uuid, buf);
		json_object_set_new(j, "uuid", json_string(buf));
	}
	if (nguid != NULL) {
		hex(buf, nguid, 16);
		json_object_set_new(j, "nguid", json_string(buf));
	}
	return j;
}

static json_t *discovery_json(const struct mimo_nvmf_discovery_log *log)
{
	json_t *entries = json_array();

	for (uint64_t i = 0; i < log->numrec; i++) {
		const struct mimo_nvmf_discovery_entry *e = &log->entries[i];
		char svc[33], nqn[257], addr[257];

		entry_str(svc, sizeof(svc), e->trsvcid, sizeof(e->trsvcid));
		entry_str(nqn, sizeof(nqn), e->subnqn, sizeof(e->subnqn));
		entry_str(addr, sizeof(addr), e->traddr, sizeof(e->traddr));
		json_array_append_new(
			entries,
			json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:s, s:s, s:s}", "trtype",
				  trtype_name(e->trtype), "adrfam", adrfam_name(e->adrfam),
				  "subtype", (int)e->subtype, "subtype_name",
				  subtype_name(e->subtype), "portid", (int)e->portid, "cntlid",
				  (int)e->cntlid, "asqsz", (int)e->asqsz, "trsvcid", svc, "subnqn",
				  nqn, "traddr", addr));
	}
	return json_pack("{s:I, s:I, s:i, s:o}", "genctr", (json_int_t)log->genctr, "numrec",
			 (json_int_t)log->numrec, "recfmt", (int)log->recfmt, "entries", entries);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "transport-id", required_argument, NULL, 'r' },
		{ "enable-tcp-hdgst", no_argument, NULL, 'H' },
		{ "enable-tcp-ddgst", no_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		AUTH_LONG_OPTIONS,
		{ 0 },
	};
	struct mimo_nvme_ctrlr_opts copts;
	struct mimo_nvmf_discovery_log *log = NULL;
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_trid trid;
	bool have_trid = false, as_json = false;
	json_t *out = NULL, *nss = NULL;
	int c, rc;

	signal(SIGPIPE, SIG_IGN);
	mimo_nvme_ctrlr_opts_init(&copts);
	while ((c = getopt_long(argc, argv, "r:HIh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (mimo_nvme_trid_parse(&trid, optarg) != 0) {
				fprintf(stderr, "mimo_identify: invalid transport ID '%s'\n",
					optarg);
				return 1;
			}
			have_trid = true;
			break;
		case 'H':
			copts.header_digest = true;
			break;
		case 'I':
			copts.data_digest = true;
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			rc = auth_opt(c, optarg, &copts, "mimo_identify");
			if (rc < 0)
				return 1;
			if (rc == 0)
				break;
			fprintf(stderr, "mimo_identify: see --help\n");
			return 1;
		}
	}
	if (!have_trid || optind < argc) {
		usage(argv[0]);
		return 1;
	}
	rc = mimo_nvme_connect(&trid, &copts, &ctrlr);
	explicit_bzero(&copts, sizeof(copts)); /* the secrets */
	if (rc != 0) {
		fprintf(stderr, "mimo_identify: cannot connect to %s:%s (%s): %s\n", trid.traddr,
			trid.trsvcid, trid.subnqn, strerror(-rc));
		return 1;
	}
	if (mimo_nvme_ctrlr_is_discovery(ctrlr)) {
		rc = mimo_nvme_ctrlr_get_discovery_log_sync(ctrlr, &log);
		if (rc != 0)
			fprintf(stderr, "mimo_identify: cannot read the discovery log: %s\n",
				strerror(-rc));
	}
	if (as_json) {
		out = json_pack("{s:o}", "controller", ctrlr_json(ctrlr));
		if (log != NULL)
			json_object_set_new(out, "discovery_log", discovery_json(log));
		if (!mimo_nvme_ctrlr_is_discovery(ctrlr)) {
			nss = json_array();
			for (uint32_t id = mimo_nvme_ctrlr_get_first_active_ns(ctrlr); id != 0;
			     id = mimo_nvme_ctrlr_get_next_active_ns(ctrlr, id))
				json_array_append_new(nss,
						      ns_json(mimo_nvme_ctrlr_get_ns(ctrlr, id)));
			json_object_set_new(out, "namespaces", nss);
		}
		json_dumpf(out, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(out);
	} else {
		print_ctrlr(ctrlr);
		if (!mimo_nvme_ctrlr_is_discovery(ctrlr)) {
			title("Active Namespaces");
			for (uint32_t id = mimo_nvme_ctrlr_get_first_active_ns(ctrlr); id != 0;
			     id = mimo_nvme_ctrlr_get_next_active_ns(ctrlr, id))
				print_ns(ctrlr, mimo_nvme_ctrlr_get_ns(ctrlr, id));
		}
		if (log != NULL)
			print_discovery(log);
	}
	free(log);
	(void)mimo_nvme_detach(ctrlr);
	return rc == 0 ? 0 : 1;
}
