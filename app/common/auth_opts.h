/*
 * The initiator tools' DH-HMAC-CHAP options (mimo_perf, mimo_identify), named as
 * spdk_nvme_perf's: --dhchap-key and --dhchap-ctrlr-key take a key file (as SPDK's, checked
 * as its keyring checks them: owned by the user, mode 0600) or the secret itself, as
 * nvme-cli's --dhchap-secret takes it ("DHHC-1:..."); mimo's --dhchap-digests and
 * --dhchap-dhgroups choose what the host offers (default: everything).
 */
#ifndef MIMO_APP_AUTH_OPTS_H
#define MIMO_APP_AUTH_OPTS_H

#include <getopt.h>

#include "mimo/nvme.h"

enum {
	AUTH_OPT_KEY = 0x400,
	AUTH_OPT_CTRLR_KEY,
	AUTH_OPT_DIGESTS,
	AUTH_OPT_DHGROUPS,
};

#define AUTH_LONG_OPTIONS                                                            \
	{ "dhchap-key", required_argument, NULL, AUTH_OPT_KEY },                     \
		{ "dhchap-ctrlr-key", required_argument, NULL, AUTH_OPT_CTRLR_KEY }, \
		{ "dhchap-digests", required_argument, NULL, AUTH_OPT_DIGESTS },     \
	{                                                                            \
		"dhchap-dhgroups", required_argument, NULL, AUTH_OPT_DHGROUPS        \
	}

#define AUTH_USAGE                                                                         \
	"      --dhchap-key KEY      DH-HMAC-CHAP: the host's secret, a key file or the\n" \
	"                            secret itself (DHHC-1:..., as nvme gen-dhchap-key)\n" \
	"      --dhchap-ctrlr-key KEY  the controller's secret (bidirectional)\n"          \
	"      --dhchap-digests L    offered hashes, e.g. sha256,sha512 (default all)\n"   \
	"      --dhchap-dhgroups L   offered groups, e.g. null,ffdhe2048 (default all)\n"

/* An option of these for o: 0 taken, -1 refused (said on stderr), 1 not one of them. */
int auth_opt(int opt, const char *arg, struct mimo_nvme_ctrlr_opts *o, const char *prog);

#endif
