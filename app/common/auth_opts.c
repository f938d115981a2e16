#include "auth_opts.h"

#include <stdio.h>
#include <string.h>

#include "dhchap.h"
#include "keyring.h"

static int key_opt(const char *arg, struct mimo_nvme_dhchap_key *k, const char *what,
		   const char *prog)
{
	struct mimo_key_material m;
	char err[512];
	int rc = mimo_key_load_arg(arg, &m, err, sizeof(err));

	if (rc == 0 && m.kind != MIMO_KEY_DHCHAP) {
		snprintf(err, sizeof(err), "a TLS PSK, not a DH-HMAC-CHAP secret (DHHC-1:...)");
		rc = -1;
	}
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, what, err);
		mimo_key_material_wipe(&m);
		return -1;
	}
	memset(k, 0, sizeof(*k));
	k->hash = m.hash;
	k->len = m.len;
	memcpy(k->key, m.key, m.len);
	mimo_key_material_wipe(&m);
	return 0;
}

static int psk_opt(const char *arg, struct mimo_nvme_tls_psk *k, const char *what, const char *prog)
{
	struct mimo_key_material m;
	char err[512];
	int rc = mimo_key_load_arg(arg, &m, err, sizeof(err));

	if (rc == 0 && m.kind != MIMO_KEY_TLS_PSK) {
		snprintf(err, sizeof(err),
			 "a DH-HMAC-CHAP secret, not a TLS PSK (NVMeTLSkey-1:...)");
		rc = -1;
	}
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, what, err);
		mimo_key_material_wipe(&m);
		return -1;
	}
	memset(k, 0, sizeof(*k));
	k->hash = m.hash;
	k->len = m.len;
	memcpy(k->key, m.key, m.len);
	mimo_key_material_wipe(&m);
	return 0;
}

int auth_opt(int opt, const char *arg, struct mimo_nvme_ctrlr_opts *o, const char *prog)
{
	char bad[64] = "";

	switch (opt) {
	case AUTH_OPT_PSK:
		return psk_opt(arg, &o->tls_psk, "--psk", prog);
	case AUTH_OPT_PSK_PATH:
		return psk_opt(arg, &o->tls_psk, "--psk-path", prog);
	case AUTH_OPT_PSK_IDENTITY:
		fprintf(stderr,
			"%s: --psk-identity: the PSK identity is the NVMe/TCP specification's "
			"(NVMe0R0<hash> <hostnqn> <subnqn>), made from the NQNs; it cannot be "
			"chosen\n",
			prog);
		return -1;
	case AUTH_OPT_TLS_VERSION:
		if (strcmp(arg, "13") == 0 || strcmp(arg, "0") == 0)
			return 0;
		fprintf(stderr, "%s: --tls-version %s: only 13 (TLS 1.3, what NVMe/TCP uses)\n",
			prog, arg);
		return -1;
	case AUTH_OPT_DISABLE_KTLS:
		return 0; /* TLS runs in this process (OpenSSL) anyway */
	case AUTH_OPT_ENABLE_KTLS:
		fprintf(stderr,
			"%s: --enable-ktls: kernel TLS is not used; TLS runs in this "
			"process (OpenSSL)\n",
			prog);
		return -1;
	case AUTH_OPT_KEY:
		return key_opt(arg, &o->dhchap_key, "--dhchap-key", prog);
	case AUTH_OPT_CTRLR_KEY:
		return key_opt(arg, &o->dhchap_ctrlr_key, "--dhchap-ctrlr-key", prog);
	case AUTH_OPT_DIGESTS:
		if (dhchap_parse_digests(arg, &o->dhchap_digests, bad, sizeof(bad)) == 0)
			return 0;
		fprintf(stderr, "%s: --dhchap-digests: unknown '%s' (sha256, sha384, sha512)\n",
			prog, bad);
		return -1;
	case AUTH_OPT_DHGROUPS:
		if (dhchap_parse_dhgroups(arg, &o->dhchap_dhgroups, bad, sizeof(bad)) == 0)
			return 0;
		fprintf(stderr,
			"%s: --dhchap-dhgroups: unknown '%s' (null, ffdhe2048, ffdhe3072, "
			"ffdhe4096, ffdhe6144, ffdhe8192)\n",
			prog, bad);
		return -1;
	default:
		return 1;
	}
}
