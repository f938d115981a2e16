/*
 * bdev_nvme_attach_controller, bdev_nvme_detach_controller, bdev_nvme_get_controllers, and
 * the legacy construct_nvme_bdev / delete_nvme_controller. Parameters as SPDK's schema has
 * them, so rpc.py (which sends its false flags too) works unchanged; those mimo has no use
 * for are accepted at their defaults and refused otherwise.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bdev_nvme_internal.h"
#include "keyring.h"
#include "compiler.h"
#include "mimo/jsonrpc.h"

struct attach_params {
	char *name;
	char *trtype;
	char *traddr;
	char *adrfam;
	char *trsvcid;
	char *priority;
	char *subnqn;
	char *hostnqn;
	char *hostaddr;
	char *hostsvcid;
	bool prchk_reftag;
	bool prchk_guard;
	bool hdgst;
	bool ddgst;
	uint64_t fabrics_connect_timeout_us;
	char *multipath;
	uint32_t num_io_queues;
	int32_t ctrlr_loss_timeout_sec;
	uint32_t reconnect_delay_sec;
	uint32_t fast_io_fail_timeout_sec;
	char *psk;
	uint32_t max_bdevs;
	char *dhchap_key;
	char *dhchap_ctrlr_key;
	bool allow_unrecognized_csi;
	const json_t *multipath_opts;
	bool disable_sq_flow_control;
};

#define P(field, fn, opt)                                              \
	{                                                              \
#field, offsetof(struct attach_params, field), fn, opt \
	}

static const struct mimo_json_decoder attach_decoders[] = {
	P(name, mimo_json_decode_string, false),
	P(trtype, mimo_json_decode_string, false),
	P(traddr, mimo_json_decode_string, false),
	P(adrfam, mimo_json_decode_string, true),
	P(trsvcid, mimo_json_decode_string, true),
	P(priority, mimo_json_decode_string, true),
	P(subnqn, mimo_json_decode_string, true),
	P(hostnqn, mimo_json_decode_string, true),
	P(hostaddr, mimo_json_decode_string, true),
	P(hostsvcid, mimo_json_decode_string, true),
	P(prchk_reftag, mimo_json_decode_bool, true),
	P(prchk_guard, mimo_json_decode_bool, true),
	P(hdgst, mimo_json_decode_bool, true),
	P(ddgst, mimo_json_decode_bool, true),
	P(fabrics_connect_timeout_us, mimo_json_decode_uint64, true),
	P(multipath, mimo_json_decode_string, true),
	P(num_io_queues, mimo_json_decode_uint32, true),
	P(ctrlr_loss_timeout_sec, mimo_json_decode_int32, true),
	P(reconnect_delay_sec, mimo_json_decode_uint32, true),
	P(fast_io_fail_timeout_sec, mimo_json_decode_uint32, true),
	P(psk, mimo_json_decode_string, true),
	P(max_bdevs, mimo_json_decode_uint32, true),
	P(dhchap_key, mimo_json_decode_string, true),
	P(dhchap_ctrlr_key, mimo_json_decode_string, true),
	P(allow_unrecognized_csi, mimo_json_decode_bool, true),
	P(multipath_opts, mimo_json_decode_json, true),
	P(disable_sq_flow_control, mimo_json_decode_bool, true),
};

/* What SPDK 19.x's construct_nvme_bdev took. */
static const struct mimo_json_decoder construct_decoders[] = {
	P(name, mimo_json_decode_string, false),     P(trtype, mimo_json_decode_string, false),
	P(traddr, mimo_json_decode_string, false),   P(adrfam, mimo_json_decode_string, true),
	P(trsvcid, mimo_json_decode_string, true),   P(subnqn, mimo_json_decode_string, true),
	P(hostnqn, mimo_json_decode_string, true),   P(hostaddr, mimo_json_decode_string, true),
	P(hostsvcid, mimo_json_decode_string, true), P(prchk_reftag, mimo_json_decode_bool, true),
	P(prchk_guard, mimo_json_decode_bool, true),
};

static bool copy_checked(struct mimo_jsonrpc_request *req, const char *what, char *dst, size_t cap,
			 const char *src)
{
	if (strlen(src) >= cap || src[0] == '\0') {
		mimo_jsonrpc_send_error(req, -EINVAL, "%s invalid or too long: %s", what, src);
		return false;
	}
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

/* Turn the parameters into a transport ID and options; answers the error and returns false
 * when they do not make one. */
static bool build(struct mimo_jsonrpc_request *req, const struct attach_params *p,
		  struct mimo_nvme_trid *trid, struct mimo_nvme_ctrlr_opts *opts,
		  struct bdev_nvme_reconnect_opts *reconnect)
{
	const char *why;

	memset(trid, 0, sizeof(*trid));
	bdev_nvme_ctrlr_opts_init(opts); /* with bdev_nvme_set_options' */
	if (strcasecmp(p->trtype, "loop") == 0) {
		/* A loop listener is another library's object in the same process: reachable
		 * from C (mimo/nvme.h), not something a daemon's configuration can name. */
		mimo_jsonrpc_send_error(
			req, -EINVAL,
			"trtype loop is not attachable over RPC: it reaches a target "
			"in the same process through the C API (mimo/nvme.h) only");
		return false;
	}
	if (strcasecmp(p->trtype, "tcp") != 0) {
		mimo_jsonrpc_send_error(req, -EINVAL,
					"Failed to parse trtype: %s (mimo speaks TCP)", p->trtype);
		return false;
	}
	trid->trtype = MIMO_NVMF_TRTYPE_TCP;
	if (!copy_checked(req, "traddr", trid->traddr, sizeof(trid->traddr), p->traddr))
		return false;
	if (p->adrfam == NULL)
		trid->adrfam = strchr(p->traddr, ':') != NULL ? MIMO_NVMF_ADRFAM_IPV6
							      : MIMO_NVMF_ADRFAM_IPV4;
	else if (strcasecmp(p->adrfam, "ipv4") == 0)
		trid->adrfam = MIMO_NVMF_ADRFAM_IPV4;
	else if (strcasecmp(p->adrfam, "ipv6") == 0)
		trid->adrfam = MIMO_NVMF_ADRFAM_IPV6;
	else {
		mimo_jsonrpc_send_error(req, -EINVAL, "Failed to parse adrfam: %s", p->adrfam);
		return false;
	}
	if (!copy_checked(req, "trsvcid", trid->trsvcid, sizeof(trid->trsvcid),
			  p->trsvcid != NULL ? p->trsvcid : "4420") ||
	    !copy_checked(req, "subnqn", trid->subnqn, sizeof(trid->subnqn),
			  p->subnqn != NULL ? p->subnqn : MIMO_NVMF_DISCOVERY_NQN))
		return false;
	if (p->hostnqn != NULL &&
	    !copy_checked(req, "hostnqn", opts->hostnqn, sizeof(opts->hostnqn), p->hostnqn))
		return false;
	if (p->prchk_reftag || p->prchk_guard) {
		mimo_jsonrpc_send_error(req, -EINVAL, "protection information is not supported");
		return false;
	}
	if (p->hostaddr != NULL &&
	    !copy_checked(req, "hostaddr", trid->hostaddr, sizeof(trid->hostaddr), p->hostaddr))
		return false;
	if (p->hostsvcid != NULL && p->hostsvcid[0] != '\0' && strcmp(p->hostsvcid, "0") != 0) {
		mimo_jsonrpc_send_error(req, -EINVAL,
					"hostsvcid %s: a controller's connections cannot share one "
					"local port (leave it out)",
					p->hostsvcid);
		return false;
	}
	if (p->priority != NULL) {
		char *end;
		unsigned long v = strtoul(p->priority, &end, 10);

		if (*p->priority == '\0' || *end != '\0' || v > 6) {
			mimo_jsonrpc_send_error(req, -EINVAL, "priority %s: a socket priority 0-6",
						p->priority);
			return false;
		}
		trid->priority = (uint32_t)v;
	}
	/* Left out, they are bdev_nvme_set_options' (attach() starts from those). */
	reconnect->ctrlr_loss_timeout_sec = p->ctrlr_loss_timeout_sec;
	reconnect->reconnect_delay_sec = p->reconnect_delay_sec;
	reconnect->fast_io_fail_timeout_sec = p->fast_io_fail_timeout_sec;
	why = bdev_nvme_reconnect_opts_check(reconnect);
	if (why != NULL) {
		mimo_jsonrpc_send_error(req, -EINVAL, "%s", why);
		return false;
	}
	/* SPDK's modes; what a second path under a name does is attach()'s. */
	if (p->multipath != NULL && strcasecmp(p->multipath, "disable") != 0 &&
	    strcasecmp(p->multipath, "failover") != 0 &&
	    strcasecmp(p->multipath, "multipath") != 0) {
		mimo_jsonrpc_send_error(
			req, -EINVAL, "multipath %s: disable, failover or multipath", p->multipath);
		return false;
	}
	if (p->multipath_opts != NULL && !json_is_null(p->multipath_opts)) {
		mimo_jsonrpc_send_error(req, -ENOTSUP,
					"multipath_opts is not supported: a multipath bdev starts "
					"active_passive; bdev_nvme_set_multipath_policy sets its "
					"policy");
		return false;
	}
	/* psk: a TLS PSK of the keyring, by name (SPDK's form; a file path, its old one, is
	 * not a name and is refused as an unknown key). */
	if (p->psk != NULL && p->psk[0] != '\0') {
		struct mimo_key *k = mimo_keyring_get(p->psk);
		bool tls = k != NULL && mimo_key_kind(k) == MIMO_KEY_TLS_PSK;

		mimo_key_put(k);
		if (!tls) {
			mimo_jsonrpc_send_error(
				req, k == NULL ? -ENOKEY : -EKEYREJECTED,
				k == NULL ? "psk '%s': no key of that name in the "
					    "keyring (keyring_file_add_key)"
					  : "psk '%s': not a TLS PSK (NVMeTLSkey-1:...)",
				p->psk);
			return false;
		}
	}
	if (p->dhchap_ctrlr_key != NULL && p->dhchap_key == NULL) {
		mimo_jsonrpc_send_error(req, -EINVAL,
					"dhchap_ctrlr_key needs dhchap_key: the controller proves "
					"itself only to a host that does");
		return false;
	}
	if (p->num_io_queues != 0) {
		if (p->num_io_queues > 65535) {
			mimo_jsonrpc_send_error(req, -EINVAL,
						"num_io_queues out of bounds, min: 1 max: 65535");
			return false;
		}
		opts->num_io_queues = p->num_io_queues;
	}
	if (p->fabrics_connect_timeout_us != 0)
		opts->connect_timeout_ms = (uint32_t)MIMO_MIN(
			(p->fabrics_connect_timeout_us + 999) / 1000, UINT32_MAX);
	opts->header_digest = p->hdgst;
	opts->data_digest = p->ddgst;
	opts->disable_sq_flow_control = p->disable_sq_flow_control;
	return true;
}

static void attach_done(void *arg, int rc, json_t *names)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_result(req, json_incref(names));
}

/* A second path under an attached controller's name (SPDK's rules and words). */
static void add_path(struct mimo_jsonrpc_request *req, const struct attach_params *p,
		     const struct mimo_nvme_trid *trid, const struct mimo_nvme_ctrlr_opts *opts,
		     const struct bdev_nvme_reconnect_opts *reconnect)
{
	const char *why;
	int rc;

	if (p->multipath == NULL || strcasecmp(p->multipath, "disable") == 0) {
		mimo_jsonrpc_send_error(req, -EALREADY,
					"A controller named %s already exists and multipath is "
					"disabled",
					p->name);
		return;
	}
	/* multipath: a further controller of the name's bdevs; failover: another address of
	 * its controller, connected when the one in use is lost. */
	if (strcasecmp(p->multipath, "multipath") == 0)
		rc = bdev_nvme_attach_multipath(p->name, trid, opts, reconnect, p->dhchap_key,
						p->dhchap_ctrlr_key,
						p->psk != NULL && p->psk[0] != '\0' ? p->psk : NULL,
						attach_done, req, &why);
	else
		rc = bdev_nvme_add_path(p->name, trid, p->hostnqn, attach_done, req, &why);
	if (rc != 0 && why != NULL)
		mimo_jsonrpc_send_error(req, rc, "A controller named %s %s", p->name, why);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
}

static void attach(struct mimo_jsonrpc_request *req, const json_t *params,
		   const struct mimo_json_decoder *decoders, size_t count)
{
	struct attach_params p = { 0 };
	struct bdev_nvme_reconnect_opts reconnect;
	struct mimo_nvme_ctrlr_opts opts;
	struct mimo_nvme_trid trid;
	struct bdev_nvme_opts mod;
	int rc;

	bdev_nvme_get_opts(&mod);
	p.ctrlr_loss_timeout_sec = mod.reconnect.ctrlr_loss_timeout_sec;
	p.reconnect_delay_sec = mod.reconnect.reconnect_delay_sec;
	p.fast_io_fail_timeout_sec = mod.reconnect.fast_io_fail_timeout_sec;
	if (!mimo_rpc_decode(req, params, decoders, count, &p))
		return;
	if (!build(req, &p, &trid, &opts, &reconnect)) {
		/* answered */
	} else if (bdev_nvme_get_trid(p.name) != NULL) {
		add_path(req, &p, &trid, &opts, &reconnect);
	} else {
		rc = bdev_nvme_attach(
			p.name, &trid, &opts, &reconnect, p.dhchap_key, p.dhchap_ctrlr_key,
			p.psk != NULL && p.psk[0] != '\0' ? p.psk : NULL, attach_done, req);
		explicit_bzero(&opts, sizeof(opts));
		if (rc == -EALREADY)
			mimo_jsonrpc_send_error(req, -EALREADY,
						"A controller named %s already exists", p.name);
		else if (rc == -ENOKEY)
			mimo_jsonrpc_send_error(
				req, -ENOKEY,
				"dhchap_key '%s' or dhchap_ctrlr_key '%s': no key of "
				"that name in the keyring (keyring_file_add_key)",
				p.dhchap_key != NULL ? p.dhchap_key : "",
				p.dhchap_ctrlr_key != NULL ? p.dhchap_ctrlr_key : "");
		else if (rc == -EKEYREJECTED)
			mimo_jsonrpc_send_error(req, -EKEYREJECTED,
						"dhchap_key '%s' or dhchap_ctrlr_key '%s': not a "
						"DH-HMAC-CHAP secret (DHHC-1:...)",
						p.dhchap_key != NULL ? p.dhchap_key : "",
						p.dhchap_ctrlr_key != NULL ? p.dhchap_ctrlr_key
									   : "");
		else if (rc != 0)
			mimo_jsonrpc_send_errno(req, rc);
	}
	explicit_bzero(&opts, sizeof(opts));
	mimo_json_decode_free(decoders, count, &p);
}

static void rpc_bdev_nvme_attach_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	attach(req, params, attach_decoders, MIMO_COUNTOF(attach_decoders));
}

static void rpc_construct_nvme_bdev(struct mimo_jsonrpc_request *req, const json_t *params)
{
	attach(req, params, construct_decoders, MIMO_COUNTOF(construct_decoders));
}

struct detach_params {
	char *name;
	char *trtype;
	char *traddr;
	char *adrfam;
	char *trsvcid;
	char *subnqn;
	char *hostaddr;
	char *hostsvcid;
};

#define D(field)                                                                             \
	{                                                                                    \
#field, offsetof(struct detach_params, field), mimo_json_decode_string, true \
	}

static const struct mimo_json_decoder detach_decoders[] = {
	{ "name", offsetof(struct detach_params, name), mimo_json_decode_string, false },
	D(trtype),
	D(traddr),
	D(adrfam),
	D(trsvcid),
	D(subnqn),
	D(hostaddr),
	D(hostsvcid),
};

static void detach_done(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
}

/* Whether the transport ID fields given (any, all or none) name path t. */
static bool path_matches(const struct detach_params *p, const struct mimo_nvme_trid *t)
{
	if (p->traddr != NULL && strcmp(p->traddr, t->traddr) != 0)
		return false;
	if (p->trsvcid != NULL && strcmp(p->trsvcid, t->trsvcid) != 0)
		return false;
	if (p->subnqn != NULL && strcmp(p->subnqn, t->subnqn) != 0)
		return false;
	if (p->trtype != NULL && strcasecmp(p->trtype, "tcp") != 0)
		return false;
	if (p->adrfam != NULL &&
	    strcasecmp(p->adrfam, t->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "ipv6" : "ipv4") != 0)
		return false;
	if (p->hostaddr != NULL && strcmp(p->hostaddr, t->hostaddr) != 0)
		return false;
	/* The controller's connections come from any local port: only that matches. */
	if (p->hostsvcid != NULL && p->hostsvcid[0] != '\0' && strcmp(p->hostsvcid, "0") != 0)
		return false;
	return true;
}

static bool match_detach(const struct mimo_nvme_trid *t, const void *arg)
{
	return path_matches(arg, t);
}

static void detach(struct mimo_jsonrpc_request *req, const json_t *params,
		   const struct mimo_json_decoder *decoders, size_t count)
{
	struct detach_params p = { 0 };
	const struct mimo_nvme_trid *paths;
	uint32_t n, i = 0;
	int rc;

	if (!mimo_rpc_decode(req, params, decoders, count, &p))
		return;
	/* As SPDK: a transport ID removes the path it names (the controller goes with its last
	 * path); none, the controller with every path. */
	paths = bdev_nvme_get_paths(p.name, &n);
	while (i < n && !path_matches(&p, &paths[i]))
		i++;
	if (p.trsvcid != NULL) {
		/* A further controller of the name (multipath) at that address goes alone. */
		rc = bdev_nvme_detach_secondary(p.name, match_detach, &p, detach_done, req);
		if (rc != -ENOENT)
			goto answered;
	}
	if (n > 0 && i == n)
		rc = -ENODEV;
	else if (n > 1 && (p.traddr != NULL || p.trsvcid != NULL || p.subnqn != NULL ||
			   p.hostaddr != NULL || p.trtype != NULL || p.adrfam != NULL)) {
		rc = bdev_nvme_remove_path(p.name, i);
		if (rc == 0)
			mimo_jsonrpc_send_bool(req, true);
	} else
		rc = bdev_nvme_detach(p.name, detach_done, req);
answered:
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	mimo_json_decode_free(decoders, count, &p);
}

static void rpc_bdev_nvme_detach_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	detach(req, params, detach_decoders, MIMO_COUNTOF(detach_decoders));
}

static void rpc_delete_nvme_controller(struct mimo_jsonrpc_request *req, const json_t *params)
{
	detach(req, params, detach_decoders, 1);
}

struct get_params {
	char *name;
};

static const struct mimo_json_decoder get_decoders[] = {
	{ "name", offsetof(struct get_params, name), mimo_json_decode_string, true },
};

static void rpc_bdev_nvme_get_controllers(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_params p = { 0 };
	json_t *result;

	if (!mimo_rpc_decode(req, params, get_decoders, MIMO_COUNTOF(get_decoders), &p))
		return;
	result = bdev_nvme_controllers_json(p.name);
	if (result == NULL)
		mimo_jsonrpc_send_error(req, -EINVAL, "Controller %s does not exist", p.name);
	else
		mimo_jsonrpc_send_result(req, result);
	mimo_json_decode_free(get_decoders, MIMO_COUNTOF(get_decoders), &p);
}

/* --- discovery ------------------------------------------------------------------------------ */

struct discovery_params {
	char *name;
	char *trtype;
	char *traddr;
	char *adrfam;
	char *trsvcid;
	char *hostnqn;
	bool wait_for_attach;
	uint64_t attach_timeout_ms;
	int32_t ctrlr_loss_timeout_sec;
	uint32_t reconnect_delay_sec;
	uint32_t fast_io_fail_timeout_sec;
};

#define DP(field, fn, opt)                                                \
	{                                                                 \
#field, offsetof(struct discovery_params, field), fn, opt \
	}

static const struct mimo_json_decoder discovery_decoders[] = {
	DP(name, mimo_json_decode_string, false),
	DP(trtype, mimo_json_decode_string, false),
	DP(traddr, mimo_json_decode_string, false),
	DP(adrfam, mimo_json_decode_string, true),
	DP(trsvcid, mimo_json_decode_string, true),
	DP(hostnqn, mimo_json_decode_string, true),
	DP(wait_for_attach, mimo_json_decode_bool, true),
	DP(attach_timeout_ms, mimo_json_decode_uint64, true),
	DP(ctrlr_loss_timeout_sec, mimo_json_decode_int32, true),
	DP(reconnect_delay_sec, mimo_json_decode_uint32, true),
	DP(fast_io_fail_timeout_sec, mimo_json_decode_uint32, true),
};

static void discovery_started(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
}

static void rpc_bdev_nvme_start_discovery(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct discovery_params p = { 0 };
	struct bdev_nvme_reconnect_opts reconnect;
	struct attach_params a = { 0 };
	struct mimo_nvme_ctrlr_opts opts;
	struct mimo_nvme_trid trid;
	struct bdev_nvme_opts mod;
	int rc;

	bdev_nvme_get_opts(&mod);
	p.ctrlr_loss_timeout_sec = mod.reconnect.ctrlr_loss_timeout_sec;
	p.reconnect_delay_sec = mod.reconnect.reconnect_delay_sec;
	p.fast_io_fail_timeout_sec = mod.reconnect.fast_io_fail_timeout_sec;
	if (!mimo_rpc_decode(req, params, discovery_decoders, MIMO_COUNTOF(discovery_decoders), &p))
		return;
	if (p.attach_timeout_ms != 0) {
		mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
					"attach_timeout_ms: mimo waits for the attaches without a "
					"deadline of its own (wait_for_attach; each attach has its "
					"connect timeout)");
		goto out;
	}
	/* The attach's rules for the address; the discovery NQN; 8009, the discovery port. */
	a.trtype = p.trtype;
	a.traddr = p.traddr;
	a.adrfam = p.adrfam;
	a.trsvcid = p.trsvcid != NULL ? p.trsvcid : "8009";
	a.ctrlr_loss_timeout_sec = p.ctrlr_loss_timeout_sec; /* build checks them */
	a.reconnect_delay_sec = p.reconnect_delay_sec;
	a.fast_io_fail_timeout_sec = p.fast_io_fail_timeout_sec;
	if (!build(req, &a, &trid, &opts, &reconnect))
		goto out;
	explicit_bzero(&opts, sizeof(opts));
	rc = bdev_nvme_start_discovery(p.name, &trid, p.hostnqn, p.wait_for_attach, &reconnect,
				       discovery_started, req);
	if (rc == -EEXIST)
		mimo_jsonrpc_send_error(req, -EEXIST, "Discovery service %s already exists",
					p.name);
	else if (rc == -EALREADY)
		mimo_jsonrpc_send_error(req, -EALREADY,
					"Discovery service at %s:%s is already discovered",
					trid.traddr, trid.trsvcid);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
out:
	mimo_json_decode_free(discovery_decoders, MIMO_COUNTOF(discovery_decoders), &p);
}

static void discovery_stopped(void *arg)
{
	mimo_jsonrpc_send_bool(arg, true);
}

static void rpc_bdev_nvme_stop_discovery(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_params p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, get_decoders, MIMO_COUNTOF(get_decoders), &p))
		return;
	rc = p.name != NULL ? bdev_nvme_stop_discovery(p.name, discovery_stopped, req) : -EINVAL;
	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	mimo_json_decode_free(get_decoders, MIMO_COUNTOF(get_decoders), &p);
}

static void rpc_bdev_nvme_get_discovery_info(struct mimo_jsonrpc_request *req, const json_t *params)
{
	(void)params;
	mimo_jsonrpc_send_result(req, bdev_nvme_discovery_info_json());
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_nvme_start_discovery", rpc_bdev_nvme_start_discovery, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_stop_discovery", rpc_bdev_nvme_stop_discovery, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_get_discovery_info", rpc_bdev_nvme_get_discovery_info, MIMO_RPC_RUNTIME },
	{ "bdev_nvme_attach_controller", rpc_bdev_nvme_attach_controller, MIMO_RPC_RUNTIME },
	{ "construct_nvme_bdev", rpc_construct_nvme_bdev, MIMO_RPC_RUNTIME,
	  "bdev_nvme_attach_controller" },
	{ "bdev_nvme_detach_controller", rpc_bdev_nvme_detach_controller, MIMO_RPC_RUNTIME },
	{ "delete_nvme_controller", rpc_delete_nvme_controller, MIMO_RPC_RUNTIME,
	  "bdev_nvme_detach_controller" },
	{ "bdev_nvme_get_controllers", rpc_bdev_nvme_get_controllers, MIMO_RPC_RUNTIME },
};

void bdev_nvme_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
