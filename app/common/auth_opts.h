/*
 * The initiator tools' DH-HMAC-CHAP and TLS options (mimo_perf, mimo_identify), named as
 * spdk_nvme_perf's. TLS: --psk-path takes a key file (SPDK's), --psk the key or a file;
 * --tls-version 13 (or 0) and --disable-ktls say what mimo does anyway; --tls-version 12,
 * --enable-ktls and --psk-identity (the identity is the specification's, from the NQNs) are
 * refused. DH-HMAC-CHAP: --dhchap-key and --dhchap-ctrlr-key take a key file (as SPDK's, checked
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
	AUTH_OPT_PSK,
	AUTH_OPT_PSK_PATH,
	AUTH_OPT_PSK_IDENTITY,
	AUTH_OPT_TLS_VERSION,
	AUTH_OPT_ENABLE_KTLS,
	AUTH_OPT_DISABLE_KTLS,
};

#define AUTH_LONG_OPTIONS                                                            \
	{ "dhchap-key", required_argument, NULL, AUTH_OPT_KEY },                     \
		{ "dhchap-ctrlr-key", required_argument, NULL, AUTH_OPT_CTRLR_KEY }, \
		{ "dhchap-digests", required_argument, NULL, AUTH_OPT_DIGESTS },     \
		{ "dhchap-dhgroups", required_argument, NULL, AUTH_OPT_DHGROUPS },   \
		{ "psk", required_argument, NULL, AUTH_OPT_PSK },                    \
		{ "psk-path", required_argument, NULL, AUTH_OPT_PSK_PATH },          \
		{ "psk-identity", required_argument, NULL, AUTH_OPT_PSK_IDENTITY },  \
		{ "tls-version", required_argument, NULL, AUTH_OPT_TLS_VERSION },    \
		{ "enable-ktls", no_argument, NULL, AUTH_OPT_ENABLE_KTLS },          \
	{                                                                            \
		"disable-ktls", no_argument, NULL, AUTH_OPT_DISABLE_KTLS             \
	}

#define AUTH_USAGE                                                                         \
	"      --dhchap-key KEY      DH-HMAC-CHAP: the host's secret, a key file or the\n" \
	"                            secret itself (DHHC-1:..., as nvme gen-dhchap-key)\n" \
	"      --dhchap-ctrlr-key KEY  the controller's secret (bidirectional)\n"          \
	"      --dhchap-digests L    offered hashes, e.g. sha256,sha512 (default all)\n"   \
	"      --dhchap-dhgroups L   offered groups, e.g. null,ffdhe2048 (default all)\n"  \
	"      --psk KEY             TLS 1.3 with this PSK (NVMeTLSkey-1:..., as nvme\n"   \
	"                            gen-tls-key, or a key file); no plain TCP then\n"     \
	"      --psk-path FILE       the same from a key file (spdk_nvme_perf's option)\n" \
	"      --tls-version N       13 (or 0): TLS 1.3, the only version NVMe/TCP uses\n"

/* An option of these for o: 0 taken, -1 refused (said on stderr), 1 not one of them. */
int auth_opt(int opt, const char *arg, struct mimo_nvme_ctrlr_opts *o, const char *prog);

#endif
