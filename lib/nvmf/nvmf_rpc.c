/*
 * SPDK's nvmf_* RPCs, and py-spdk's legacy construct_nvmf_subsystem, delete_nvmf_subsystem and
 * get_nvmf_subsystems. They run on the RPC reactor, which is the target's reactor in mimo_tgt.
 * Parameters SPDK's rpc.py sends are implemented, refused unless off, or - when they size
 * what mimo does not have (RDMA's queues, SPDK's buffer caches) - type-checked and accepted;
 * docs/nvmf.md lists each.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dhchap.h"
#include "keyring.h"
#include "mimo/jsonrpc.h"
#include "nvmf_rpc_internal.h"
#include "sock_opts.h"
#include "transport.h"
#include "uuid.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS
/* SPDK's parameters that mean nothing in mimo, and those that ask for what mimo does not do
 * (mimo/jsonrpc.h); docs/nvmf.md lists each with its reason. */
#define NO_MEANING(s, name)                                                   \
	{                                                                     \
		name, offsetof(s, ignored), mimo_json_decode_no_meaning, true \
	}
#define UNSUPPORTED(s, name)                                                   \
	{                                                                      \
		name, offsetof(s, ignored), mimo_json_decode_unsupported, true \
	}

struct mimo_nvmf_tgt *nvmf_rpc_get_tgt(struct mimo_jsonrpc_request *req, const char *name)
{
	struct mimo_nvmf_tgt *tgt = mimo_nvmf_tgt_find(name);

	if (tgt == NULL) {
		if (name != NULL)
			mimo_jsonrpc_send_error(req, INVALID, "NVMf target '%s' not found", name);
		else
			mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
						"No default NVMf target found; specify tgt_name");
	}
	return tgt;
}

struct mimo_nvmf_subsystem *nvmf_rpc_get_subsys(struct mimo_jsonrpc_request *req,
						const char *tgt_name, const char *nqn)
{
	struct mimo_nvmf_tgt *tgt = nvmf_rpc_get_tgt(req, tgt_name);
	struct mimo_nvmf_subsystem *s;

	if (tgt == NULL)
		return NULL;
	s = mimo_nvmf_tgt_find_subsystem(tgt, nqn);
	if (s == NULL || (s)->state == NVMF_SUBSYS_DELETING) {
		mimo_jsonrpc_send_error(req, INVALID, "Subsystem with NQN '%s' not found", nqn);
		return NULL;
	}
	return s;
}

/* --- transports ---------------------------------------------------------------------------- */

struct create_transport {
	char *trtype;
	char *tgt_name;
	uint32_t max_queue_depth, max_io_qpairs_per_ctrlr, in_capsule_data_size, max_io_size;
	uint32_t io_unit_size, max_aq_depth, num_shared_buffers;
	uint32_t connect_timeout_ms, max_connections_per_listener;
	uint32_t kas, min_kato, sock_priority, acceptor_backlog, buf_cache_size;
	uint16_t masked_oncs;
	bool c2h_success, zcopy;
	const json_t *ignored;
};

#define CT struct create_transport
static const struct mimo_json_decoder create_transport_decoders[] = {
	{ "trtype", offsetof(CT, trtype), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(CT, tgt_name), mimo_json_decode_string, true },
	{ "max_queue_depth", offsetof(CT, max_queue_depth), mimo_json_decode_uint32, true },
	{ "max_io_qpairs_per_ctrlr", offsetof(CT, max_io_qpairs_per_ctrlr), mimo_json_decode_uint32,
	  true },
	{ "in_capsule_data_size", offsetof(CT, in_capsule_data_size), mimo_json_decode_uint32,
	  true },
	{ "max_io_size", offsetof(CT, max_io_size), mimo_json_decode_uint32, true },
	{ "io_unit_size", offsetof(CT, io_unit_size), mimo_json_decode_uint32, true },
	{ "max_aq_depth", offsetof(CT, max_aq_depth), mimo_json_decode_uint32, true },
	{ "num_shared_buffers", offsetof(CT, num_shared_buffers), mimo_json_decode_uint32, true },
	{ "c2h_success", offsetof(CT, c2h_success), mimo_json_decode_bool, true },
	{ "zcopy", offsetof(CT, zcopy), mimo_json_decode_bool, true },
	{ "connect_timeout_ms", offsetof(CT, connect_timeout_ms), mimo_json_decode_uint32, true },
	{ "max_connections_per_listener", offsetof(CT, max_connections_per_listener),
	  mimo_json_decode_uint32, true },
	{ "buf_cache_size", offsetof(CT, buf_cache_size), mimo_json_decode_uint32, true },
	{ "sock_priority", offsetof(CT, sock_priority), mimo_json_decode_uint32, true },
	{ "acceptor_backlog", offsetof(CT, acceptor_backlog), mimo_json_decode_uint32, true },
	{ "kas", offsetof(CT, kas), mimo_json_decode_uint32, true },
	{ "min_kato", offsetof(CT, min_kato), mimo_json_decode_uint32, true },
	{ "masked_oncs", offsetof(CT, masked_oncs), mimo_json_decode_uint16, true },
	UNSUPPORTED(CT, "dif_insert_or_strip"),
	NO_MEANING(CT, "iobuf_small_cache_size"),
	NO_MEANING(CT, "iobuf_large_cache_size"),
	NO_MEANING(CT, "num_cqe"),
	NO_MEANING(CT, "max_srq_depth"),
	NO_MEANING(CT, "no_srq"),
	NO_MEANING(CT, "abort_timeout_sec"),
	NO_MEANING(CT, "no_wr_batching"),
	NO_MEANING(CT, "control_msg_num"),
	NO_MEANING(CT, "disable_mappable_bar0"),
	NO_MEANING(CT, "disable_adaptive_irq"),
	NO_MEANING(CT, "disable_shadow_doorbells"),
	NO_MEANING(CT, "acceptor_poll_rate"),
	NO_MEANING(CT, "ack_timeout"),
	NO_MEANING(CT, "data_wr_pool_size"),
	NO_MEANING(CT, "disable_command_passthru"),
	NO_MEANING(CT, "masked_fuses"),
};
#undef CT

/* Create the TCP transport of tgt from decoded options; -EEXIST if it exists. */
static int create_transport(struct mimo_nvmf_tgt *tgt, const struct create_transport *p)
{
	struct mimo_nvmf_transport_opts o;

	mimo_nvmf_transport_opts_init(&o);
	if (p->max_queue_depth != 0)
		o.max_queue_depth = p->max_queue_depth;
	if (p->max_io_qpairs_per_ctrlr != 0)
		o.max_qpairs_per_ctrlr = p->max_io_qpairs_per_ctrlr + 1;
	if (p->in_capsule_data_size != 0)
		o.in_capsule_data_size = p->in_capsule_data_size;
	if (p->max_io_size != 0)
		o.max_io_size = p->max_io_size;
	if (p->io_unit_size != 0)
		o.io_unit_size = p->io_unit_size;
	if (p->max_aq_depth != 0)
		o.max_aq_depth = p->max_aq_depth;
	if (p->num_shared_buffers != 0)
		o.num_shared_buffers = p->num_shared_buffers;
	if (p->connect_timeout_ms != 0)
		o.connect_timeout_ms = p->connect_timeout_ms;
	o.max_connections_per_listener = p->max_connections_per_listener;
	if (p->kas != 0)
		o.kas = p->kas;
	o.min_kato_ms = p->min_kato;
	o.masked_oncs = p->masked_oncs;
	o.sock_priority = p->sock_priority;
	if (p->acceptor_backlog != 0)
		o.acceptor_backlog = p->acceptor_backlog;
	if (p->buf_cache_size != 0)
		o.buf_cache_size = p->buf_cache_size;
	o.c2h_success = p->c2h_success;
	o.zcopy = p->zcopy;
	return mimo_nvmf_tgt_add_transport(tgt, p->trtype, &o);
}

static void rpc_nvmf_create_transport(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct create_transport p = { .c2h_success = true, .zcopy = true };
	struct mimo_nvmf_tgt *tgt;
	int rc;

	if (!mimo_rpc_decode(req, params, create_transport_decoders,
			     MIMO_COUNTOF(create_transport_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt == NULL)
		goto out;
	if (strcasecmp(p.trtype, "TCP") != 0) {
		mimo_jsonrpc_send_error(req, INVALID, "Transport type '%s' is not supported",
					p.trtype);
		goto out;
	}
	rc = create_transport(tgt, &p);
	if (rc == -EEXIST)
		mimo_jsonrpc_send_error(req, INVALID, "Transport type 'TCP' already exists");
	else if (rc == -EMFILE)
		mimo_jsonrpc_send_error(
			req, INVALID,
			"max_connections_per_listener %u is more than the file "
			"descriptor limit allows (%u: three quarters of RLIMIT_NOFILE); "
			"raise the limit or lower the cap",
			p.max_connections_per_listener, nvmf_tcp_max_conns_allowed());
	else if (rc == -EINVAL)
		mimo_jsonrpc_send_error(req, INVALID, "Invalid transport options");
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(create_transport_decoders, MIMO_COUNTOF(create_transport_decoders),
			      &p);
}

struct get_transports {
	char *trtype;
	char *tgt_name;
};

static const struct mimo_json_decoder get_transports_decoders[] = {
	{ "trtype", offsetof(struct get_transports, trtype), mimo_json_decode_string, true },
	{ "tgt_name", offsetof(struct get_transports, tgt_name), mimo_json_decode_string, true },
};

static void rpc_nvmf_get_transports(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_transports p = { 0 };
	struct mimo_nvmf_tgt *tgt;
	json_t *a;

	if (!mimo_rpc_decode(req, params, get_transports_decoders,
			     MIMO_COUNTOF(get_transports_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt != NULL) {
		a = mimo_nvmf_tgt_transports_json(tgt);
		if (p.trtype != NULL && strcasecmp(p.trtype, "TCP") != 0) {
			json_decref(a);
			mimo_jsonrpc_send_error(req, INVALID, "Transport type '%s' not found",
						p.trtype);
		} else if (p.trtype != NULL && json_array_size(a) == 0) {
			json_decref(a);
			mimo_jsonrpc_send_error(req, INVALID, "Transport type '%s' not found",
						p.trtype);
		} else {
			mimo_jsonrpc_send_result(req, a);
		}
	}
	mimo_json_decode_free(get_transports_decoders, MIMO_COUNTOF(get_transports_decoders), &p);
}

/* --- subsystems ---------------------------------------------------------------------------- */

struct create_subsystem {
	char *nqn;
	char *tgt_name;
	char *serial_number;
	char *model_number;
	bool allow_any_host;
	uint32_t max_namespaces;
	uint16_t min_cntlid, max_cntlid;
	uint32_t dmrsl, wzsl;
	bool ana_reporting;
	const json_t *ignored;
};

static const char *decode_uint8(const json_t *val, void *out)
{
	uint32_t v;

	if (mimo_json_decode_uint32(val, &v) != NULL || v > UINT8_MAX)
		return "an unsigned 8-bit integer";
	*(uint32_t *)out = v;
	return NULL;
}

#define CS struct create_subsystem
static const struct mimo_json_decoder create_subsystem_decoders[] = {
	{ "nqn", offsetof(CS, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(CS, tgt_name), mimo_json_decode_string, true },
	{ "serial_number", offsetof(CS, serial_number), mimo_json_decode_string, true },
	{ "model_number", offsetof(CS, model_number), mimo_json_decode_string, true },
	{ "allow_any_host", offsetof(CS, allow_any_host), mimo_json_decode_bool, true },
	{ "max_namespaces", offsetof(CS, max_namespaces), mimo_json_decode_uint32, true },
	{ "min_cntlid", offsetof(CS, min_cntlid), mimo_json_decode_uint16, true },
	{ "max_cntlid", offsetof(CS, max_cntlid), mimo_json_decode_uint16, true },
	{ "ana_reporting", offsetof(CS, ana_reporting), mimo_json_decode_bool, true },
	UNSUPPORTED(CS, "passthrough"),
	UNSUPPORTED(CS, "enable_nssr"),
	{ "dmrsl", offsetof(CS, dmrsl), mimo_json_decode_uint32, true },
	{ "wzsl", offsetof(CS, wzsl), decode_uint8, true },
	UNSUPPORTED(CS, "admin_label"),
};
#undef CS

/* Create and start; on failure the error is answered and NULL returned. */
static struct mimo_nvmf_subsystem *create_subsystem(struct mimo_jsonrpc_request *req,
						    struct mimo_nvmf_tgt *tgt,
						    const struct create_subsystem *p)
{
	struct mimo_nvmf_subsystem_opts o;
	struct mimo_nvmf_subsystem *s;
	int rc;

	mimo_nvmf_subsystem_opts_init(&o);
	o.serial_number = p->serial_number;
	o.model_number = p->model_number;
	o.allow_any_host = p->allow_any_host;
	if (p->max_namespaces != 0)
		o.max_namespaces = p->max_namespaces;
	if (p->min_cntlid != 0)
		o.min_cntlid = p->min_cntlid;
	if (p->max_cntlid != 0)
		o.max_cntlid = p->max_cntlid;
	o.dmrsl = p->dmrsl;
	o.wzsl = (uint8_t)p->wzsl;
	o.ana_reporting = p->ana_reporting;
	rc = mimo_nvmf_subsystem_create(tgt, p->nqn, &o, &s);
	if (rc == -EEXIST) {
		mimo_jsonrpc_send_error(req, INVALID, "Subsystem NQN '%s' already exists", p->nqn);
		return NULL;
	}
	if (rc == -EINVAL) {
		mimo_jsonrpc_send_error(req, INVALID,
					"Invalid subsystem: NQN '%s', serial number, model number "
					"or controller ID range",
					p->nqn);
		return NULL;
	}
	if (rc == -ENOSPC) {
		mimo_jsonrpc_send_error(
			req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
			"Unable to create subsystem %s: the target holds at most %u "
			"subsystems, the discovery subsystem included "
			"(nvmf_set_max_subsystems)",
			p->nqn, mimo_nvmf_tgt_get_max_subsystems(tgt));
		return NULL;
	}
	if (rc != 0) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Unable to create subsystem %s: %s", p->nqn, strerror(-rc));
		return NULL;
	}
	mimo_nvmf_subsystem_start(s, NULL, NULL);
	return s;
}

static void rpc_nvmf_create_subsystem(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct create_subsystem p = { 0 };
	struct mimo_nvmf_tgt *tgt;

	if (!mimo_rpc_decode(req, params, create_subsystem_decoders,
			     MIMO_COUNTOF(create_subsystem_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt != NULL && create_subsystem(req, tgt, &p) != NULL)
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(create_subsystem_decoders, MIMO_COUNTOF(create_subsystem_decoders),
			      &p);
}

struct nqn_params {
	char *nqn;
	char *tgt_name;
};

static const struct mimo_json_decoder nqn_decoders[] = {
	{ "nqn", offsetof(struct nqn_params, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct nqn_params, tgt_name), mimo_json_decode_string, true },
};

static void deleted(void *arg, int rc)
{
	struct mimo_jsonrpc_request *req = arg;

	if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
}

static void rpc_nvmf_delete_subsystem(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct nqn_params p = { 0 };
	struct mimo_nvmf_subsystem *s;
	int rc;

	if (!mimo_rpc_decode(req, params, nqn_decoders, MIMO_COUNTOF(nqn_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		rc = mimo_nvmf_subsystem_destroy(s, deleted, req);
		if (rc == -EPERM)
			mimo_jsonrpc_send_error(req, INVALID,
						"The discovery subsystem cannot be deleted");
		else if (rc != 0)
			mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
						"Subsystem is already being destroyed.");
	}
	mimo_json_decode_free(nqn_decoders, MIMO_COUNTOF(nqn_decoders), &p);
}

struct get_subsystems {
	char *nqn;
	char *tgt_name;
};

static const struct mimo_json_decoder get_subsystems_decoders[] = {
	{ "nqn", offsetof(struct get_subsystems, nqn), mimo_json_decode_string, true },
	{ "tgt_name", offsetof(struct get_subsystems, tgt_name), mimo_json_decode_string, true },
};

static void rpc_nvmf_get_subsystems(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_subsystems p = { 0 };
	struct mimo_nvmf_tgt *tgt;

	if (!mimo_rpc_decode(req, params, get_subsystems_decoders,
			     MIMO_COUNTOF(get_subsystems_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt != NULL) {
		json_t *a = mimo_nvmf_tgt_subsystems_json(tgt, p.nqn);

		if (a == NULL)
			mimo_jsonrpc_send_error(req, INVALID, "Subsystem with NQN '%s' not found",
						p.nqn);
		else
			mimo_jsonrpc_send_result(req, a);
	}
	mimo_json_decode_free(get_subsystems_decoders, MIMO_COUNTOF(get_subsystems_decoders), &p);
}

static void rpc_nvmf_subsystem_get_controllers(struct mimo_jsonrpc_request *req,
					       const json_t *params)
{
	struct nqn_params p = { 0 };
	struct mimo_nvmf_subsystem *s;

	if (!mimo_rpc_decode(req, params, nqn_decoders, MIMO_COUNTOF(nqn_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL)
		mimo_jsonrpc_send_result(req, mimo_nvmf_subsystem_controllers_json(s));
	mimo_json_decode_free(nqn_decoders, MIMO_COUNTOF(nqn_decoders), &p);
}

/* --- namespaces ---------------------------------------------------------------------------- */

/* Hex digits, optionally separated by '-', into exactly n bytes. */
static int parse_hex(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;

	while (*s != '\0') {
		int hi, lo;

		if (*s == '-') {
			s++;
			continue;
		}
		if (got == n || !isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return -EINVAL;
		hi = isdigit((unsigned char)s[0]) ? s[0] - '0' : (tolower(s[0]) - 'a' + 10);
		lo = isdigit((unsigned char)s[1]) ? s[1] - '0' : (tolower(s[1]) - 'a' + 10);
		out[got++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return got == n ? 0 : -EINVAL;
}

struct ns_params {
	uint32_t nsid;
	char *bdev_name;
	char *nguid;
	char *eui64;
	char *uuid;
	uint32_t anagrpid;
	bool no_auto_visible;
	const json_t *ignored;
};

#define NP struct ns_params
static const struct mimo_json_decoder ns_decoders[] = {
	{ "nsid", offsetof(NP, nsid), mimo_json_decode_uint32, true },
	{ "bdev_name", offsetof(NP, bdev_name), mimo_json_decode_string, false },
	{ "nguid", offsetof(NP, nguid), mimo_json_decode_string, true },
	{ "eui64", offsetof(NP, eui64), mimo_json_decode_string, true },
	{ "uuid", offsetof(NP, uuid), mimo_json_decode_string, true },
	UNSUPPORTED(NP, "ptpl_file"),
	{ "anagrpid", offsetof(NP, anagrpid), mimo_json_decode_uint32, true },
	{ "no_auto_visible", offsetof(NP, no_auto_visible), mimo_json_decode_bool, true },
	NO_MEANING(NP, "hide_metadata"),
};
#undef NP

/* Add the namespace described by the JSON object ns to s; answers errors itself and returns
 * the nsid, or 0 after an error. */
static int add_ns(struct mimo_jsonrpc_request *req, struct mimo_nvmf_subsystem *s,
		  const json_t *obj)
{
	struct mimo_nvmf_ns_opts o;
	struct ns_params p = { 0 };
	char err[256];
	int rc = 0;

	if (mimo_json_decode_object(obj, ns_decoders, MIMO_COUNTOF(ns_decoders), &p, err,
				    sizeof(err)) != 0) {
		mimo_jsonrpc_send_error(req, INVALID, "namespace: %s", err);
		goto out;
	}
	if (p.anagrpid > s->max_nsid) {
		mimo_jsonrpc_send_error(req, INVALID,
					"namespace: anagrpid %u: ANA groups are 1 to %u "
					"(max_namespaces)",
					p.anagrpid, s->max_nsid);
		goto out;
	}
	mimo_nvmf_ns_opts_init(&o);
	o.nsid = p.nsid;
	if ((p.uuid != NULL && mimo_uuid_parse(p.uuid, o.uuid) != 0) ||
	    (p.nguid != NULL && parse_hex(p.nguid, o.nguid, 16) != 0) ||
	    (p.eui64 != NULL && parse_hex(p.eui64, o.eui64, 8) != 0)) {
		mimo_jsonrpc_send_error(req, INVALID, "namespace: malformed uuid, nguid or eui64");
		goto out;
	}
	o.has_uuid = p.uuid != NULL;
	o.has_nguid = p.nguid != NULL;
	o.has_eui64 = p.eui64 != NULL;
	o.no_auto_visible = p.no_auto_visible;
	o.anagrpid = p.anagrpid;
	rc = mimo_nvmf_subsystem_add_ns(s, p.bdev_name, &o);
	if (rc > 0)
		goto out;
	if (rc == -ENODEV)
		mimo_jsonrpc_send_error(req, INVALID, "Unable to find bdev %s", p.bdev_name);
	else if (rc == -EBUSY)
		mimo_jsonrpc_send_error(req, INVALID, "bdev %s is already in use by a namespace",
					p.bdev_name);
	else if (rc == -EEXIST)
		mimo_jsonrpc_send_error(req, INVALID, "Namespace ID %u is already in use", p.nsid);
	else if (rc == -EINVAL)
		mimo_jsonrpc_send_error(req, INVALID, "Namespace ID %u is out of range", p.nsid);
	else if (rc == -ENOSPC)
		mimo_jsonrpc_send_error(req, INVALID, "Subsystem has no free namespace ID");
	else if (rc == -EPERM)
		mimo_jsonrpc_send_error(req, INVALID, "This subsystem takes no namespaces");
	else
		mimo_jsonrpc_send_errno(req, rc);
	rc = 0;
out:
	mimo_json_decode_free(ns_decoders, MIMO_COUNTOF(ns_decoders), &p);
	return rc;
}

struct add_ns_params {
	char *nqn;
	char *tgt_name;
	const json_t *ns;
};

static const struct mimo_json_decoder add_ns_decoders[] = {
	{ "nqn", offsetof(struct add_ns_params, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct add_ns_params, tgt_name), mimo_json_decode_string, true },
	{ "namespace", offsetof(struct add_ns_params, ns), mimo_json_decode_json, false },
};

static void rpc_nvmf_subsystem_add_ns(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct add_ns_params p = { 0 };
	struct mimo_nvmf_subsystem *s;
	int nsid;

	if (!mimo_rpc_decode(req, params, add_ns_decoders, MIMO_COUNTOF(add_ns_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		nsid = add_ns(req, s, p.ns);
		if (nsid > 0)
			mimo_jsonrpc_send_result(req, json_integer(nsid));
	}
	mimo_json_decode_free(add_ns_decoders, MIMO_COUNTOF(add_ns_decoders), &p);
}

struct remove_ns_params {
	char *nqn;
	char *tgt_name;
	uint32_t nsid;
};

static const struct mimo_json_decoder remove_ns_decoders[] = {
	{ "nqn", offsetof(struct remove_ns_params, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct remove_ns_params, tgt_name), mimo_json_decode_string, true },
	{ "nsid", offsetof(struct remove_ns_params, nsid), mimo_json_decode_uint32, false },
};

static void rpc_nvmf_subsystem_remove_ns(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct remove_ns_params p = { 0 };
	struct mimo_nvmf_subsystem *s;

	if (!mimo_rpc_decode(req, params, remove_ns_decoders, MIMO_COUNTOF(remove_ns_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		if (mimo_nvmf_subsystem_remove_ns(s, p.nsid) != 0)
			mimo_jsonrpc_send_error(req, INVALID, "Namespace %u not found in %s",
						p.nsid, p.nqn);
		else
			mimo_jsonrpc_send_bool(req, true);
	}
	mimo_json_decode_free(remove_ns_decoders, MIMO_COUNTOF(remove_ns_decoders), &p);
}

/* --- hosts --------------------------------------------------------------------------------- */

struct host_params {
	char *nqn;
	char *host;
	char *tgt_name;
	char *dhchap_key;
	char *dhchap_ctrlr_key;
	char *psk;
	const json_t *ignored;
};

#define HP struct host_params
static const struct mimo_json_decoder host_decoders[] = {
	{ "nqn", offsetof(HP, nqn), mimo_json_decode_string, false },
	{ "host", offsetof(HP, host), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(HP, tgt_name), mimo_json_decode_string, true },
	{ "dhchap_key", offsetof(HP, dhchap_key), mimo_json_decode_string, true },
	{ "dhchap_ctrlr_key", offsetof(HP, dhchap_ctrlr_key), mimo_json_decode_string, true },
	{ "psk", offsetof(HP, psk), mimo_json_decode_string, true },
	NO_MEANING(HP, "timeout_ms"),
};
#undef HP

/* The answer to a key error of add_host_ext / set_keys; false when rc was one. */
static bool key_error(struct mimo_jsonrpc_request *req, int rc, const struct host_params *p)
{
	switch (rc) {
	case -ENOKEY:
		mimo_jsonrpc_send_error(req, INVALID,
					"dhchap_key '%s' or dhchap_ctrlr_key '%s': no key of that "
					"name in the keyring (keyring_file_add_key)",
					p->dhchap_key != NULL ? p->dhchap_key : "",
					p->dhchap_ctrlr_key != NULL ? p->dhchap_ctrlr_key : "");
		return true;
	case -EKEYREJECTED:
		mimo_jsonrpc_send_error(req, INVALID,
					"dhchap_key '%s' or dhchap_ctrlr_key '%s': not a "
					"DH-HMAC-CHAP secret (DHHC-1:...)",
					p->dhchap_key != NULL ? p->dhchap_key : "",
					p->dhchap_ctrlr_key != NULL ? p->dhchap_ctrlr_key : "");
		return true;
	default:
		if (rc == -EINVAL && p->dhchap_key == NULL && p->dhchap_ctrlr_key != NULL) {
			mimo_jsonrpc_send_error(req, INVALID,
						"dhchap_ctrlr_key needs dhchap_key: the controller "
						"authenticates itself only to a host that has");
			return true;
		}
		return false;
	}
}

/* A psk names a TLS PSK of the keyring (SPDK's form; a path, SPDK's old one, is refused). */
static bool psk_usable(struct mimo_jsonrpc_request *req, const char *name)
{
	struct mimo_key *k = mimo_keyring_get(name);
	bool tls = k != NULL && mimo_key_kind(k) == MIMO_KEY_TLS_PSK;

	if (k == NULL)
		mimo_jsonrpc_send_error(req, INVALID,
					"psk '%s': no key of that name in the keyring "
					"(keyring_file_add_key; a path is not taken)",
					name);
	else if (!tls)
		mimo_jsonrpc_send_error(req, INVALID, "psk '%s': not a TLS PSK (NVMeTLSkey-1:...)",
					name);
	mimo_key_put(k);
	return tls;
}

static void host_rpc(struct mimo_jsonrpc_request *req, const json_t *params, bool add)
{
	struct host_params p = { 0 };
	struct mimo_nvmf_subsystem *s;
	int rc;

	if (!mimo_rpc_decode(req, params, host_decoders, MIMO_COUNTOF(host_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		if (add) {
			struct mimo_nvmf_host_opts o;

			if (p.psk != NULL && !psk_usable(req, p.psk))
				goto out;
			mimo_nvmf_host_opts_init(&o);
			o.dhchap_key = p.dhchap_key;
			o.dhchap_ctrlr_key = p.dhchap_ctrlr_key;
			o.psk = p.psk;
			rc = mimo_nvmf_subsystem_add_host_ext(s, p.host, &o);
		} else if (p.dhchap_key != NULL || p.dhchap_ctrlr_key != NULL || p.psk != NULL) {
			mimo_jsonrpc_send_error(req, INVALID,
						"dhchap_key, dhchap_ctrlr_key and psk belong to "
						"nvmf_subsystem_add_host (and the first two to "
						"nvmf_subsystem_set_keys)");
			goto out;
		} else {
			rc = mimo_nvmf_subsystem_remove_host(s, p.host);
		}
		if (key_error(req, rc, &p))
			goto out;
		if (rc == -EINVAL)
			mimo_jsonrpc_send_error(req, INVALID, "Invalid host NQN '%s'", p.host);
		else if (rc == -EEXIST)
			mimo_jsonrpc_send_error(req, INVALID, "Host %s is already allowed", p.host);
		else if (rc == -ENOENT)
			mimo_jsonrpc_send_error(req, INVALID, "Host %s is not in the list", p.host);
		else if (rc != 0)
			mimo_jsonrpc_send_errno(req, rc);
		else
			mimo_jsonrpc_send_bool(req, true);
	}
out:
	mimo_json_decode_free(host_decoders, MIMO_COUNTOF(host_decoders), &p);
}

static void rpc_nvmf_subsystem_add_host(struct mimo_jsonrpc_request *req, const json_t *params)
{
	host_rpc(req, params, true);
}

static void rpc_nvmf_subsystem_remove_host(struct mimo_jsonrpc_request *req, const json_t *params)
{
	host_rpc(req, params, false);
}

/* SPDK's rotation: both keys as given, an absent one cleared (as SPDK does). */
static const struct mimo_json_decoder set_keys_decoders[] = {
	{ "nqn", offsetof(struct host_params, nqn), mimo_json_decode_string, false },
	{ "host", offsetof(struct host_params, host), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct host_params, tgt_name), mimo_json_decode_string, true },
	{ "dhchap_key", offsetof(struct host_params, dhchap_key), mimo_json_decode_string, true },
	{ "dhchap_ctrlr_key", offsetof(struct host_params, dhchap_ctrlr_key),
	  mimo_json_decode_string, true },
};

static void rpc_nvmf_subsystem_set_keys(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct host_params p = { 0 };
	struct mimo_nvmf_subsystem *s;
	int rc;

	if (!mimo_rpc_decode(req, params, set_keys_decoders, MIMO_COUNTOF(set_keys_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		rc = mimo_nvmf_subsystem_set_keys(s, p.host, p.dhchap_key, p.dhchap_ctrlr_key);
		if (key_error(req, rc, &p))
			goto out;
		if (rc == -ENOENT)
			mimo_jsonrpc_send_error(req, INVALID,
						"Host %s is not in the list of %s "
						"(nvmf_subsystem_add_host first)",
						p.host, p.nqn);
		else if (rc != 0)
			mimo_jsonrpc_send_errno(req, rc);
		else
			mimo_jsonrpc_send_bool(req, true);
	}
out:
	mimo_json_decode_free(set_keys_decoders, MIMO_COUNTOF(set_keys_decoders), &p);
}

static void rpc_nvmf_subsystem_get_qpairs(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct nqn_params p = { 0 };
	struct mimo_nvmf_subsystem *s;

	if (!mimo_rpc_decode(req, params, nqn_decoders, MIMO_COUNTOF(nqn_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL)
		mimo_jsonrpc_send_result(req, mimo_nvmf_subsystem_qpairs_json(s));
	mimo_json_decode_free(nqn_decoders, MIMO_COUNTOF(nqn_decoders), &p);
}

/* --- nvmf_set_config ----------------------------------------------------------------------- */

struct set_config_params {
	const json_t *digests;
	const json_t *dhgroups;
	const json_t *admin_cmd_passthru;
	const json_t *discovery_filter;
	const json_t *discovery_filters;
	const json_t *dup_host_policy;
	const json_t *ignored;
};

/* admin_cmd_passthru: only {..., all false}, what SPDK saves by default - mimo passes no
 * command through to a device. */
static const char *decode_passthru(const json_t *val, void *out)
{
	const char *key;
	json_t *v;

	*(const json_t **)out = val;
	if (json_is_null(val))
		return NULL;
	if (!json_is_object(val))
		return "an object";
	json_object_foreach((json_t *)val, key, v)
	{
		if (!json_is_false(v))
			return "all false: mimo passes no admin command through to a device";
	}
	return NULL;
}

/* Discovery filters: only "match_any" (or none), which is what mimo's discovery log does. */
static const char *decode_filter(const json_t *val, void *out)
{
	const char *v = json_string_value(val);

	*(const json_t **)out = val;
	if (json_is_null(val) || (v != NULL && (strcmp(v, "match_any") == 0 || *v == '\0')))
		return NULL;
	return "\"match_any\": discovery log filters are not supported";
}

static const char *decode_filters(const json_t *val, void *out)
{
	size_t i;
	json_t *v;

	*(const json_t **)out = val;
	if (json_is_null(val))
		return NULL;
	if (!json_is_array(val))
		return "an array";
	json_array_foreach(val, i, v)
	{
		if (!json_is_string(v) || strcmp(json_string_value(v), "match_any") != 0)
			return "[] or [\"match_any\"]: discovery log filters are not supported";
	}
	return NULL;
}

/* mimo lets one host NQN connect from anywhere, as SPDK's default "allow". */
static const char *decode_dup_host_policy(const json_t *val, void *out)
{
	const char *v = json_string_value(val);

	*(const json_t **)out = val;
	if (json_is_null(val) || (v != NULL && strcmp(v, "allow") == 0))
		return NULL;
	return "\"allow\": restricting a host to one listener is not supported";
}

static const char *decode_names(const json_t *val, void *out)
{
	size_t i;
	json_t *v;

	*(const json_t **)out = val;
	if (!json_is_array(val) || json_array_size(val) == 0)
		return "a non-empty array of names";
	json_array_foreach(val, i, v)
	{
		if (!json_is_string(v))
			return "a non-empty array of names";
	}
	return NULL;
}

#define SC struct set_config_params
static const struct mimo_json_decoder set_config_decoders[] = {
	{ "dhchap_digests", offsetof(SC, digests), decode_names, true },
	{ "dhchap_dhgroups", offsetof(SC, dhgroups), decode_names, true },
	{ "admin_cmd_passthru", offsetof(SC, admin_cmd_passthru), decode_passthru, true },
	{ "discovery_filter", offsetof(SC, discovery_filter), decode_filter, true },
	{ "discovery_filters", offsetof(SC, discovery_filters), decode_filters, true },
	{ "dup_host_policy", offsetof(SC, dup_host_policy), decode_dup_host_policy, true },
	UNSUPPORTED(SC, "poll_groups_mask"),
};
#undef SC

/* What DH-HMAC-CHAP's name lists may hold (dhchap.h's names). */
#define DHCHAP_CHOICES \
	"sha256, sha384, sha512; null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192"

/* SPDK's target-wide options: here, of the default target ("nvmf_tgt"), at any time (they
 * apply to authentications that start afterwards). */
static void rpc_nvmf_set_config(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct set_config_params p = { 0 };
	struct mimo_nvmf_tgt *tgt;
	uint32_t digests, dhgroups;

	if (!mimo_rpc_decode(req, params, set_config_decoders, MIMO_COUNTOF(set_config_decoders),
			     &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, NULL);
	if (tgt == NULL)
		goto out;
	mimo_nvmf_tgt_get_dhchap(tgt, &digests, &dhgroups);
	if (!mimo_rpc_names_mask(req, "dhchap_digests", p.digests, dhchap_hash_id, DHCHAP_CHOICES,
				 &digests) ||
	    !mimo_rpc_names_mask(req, "dhchap_dhgroups", p.dhgroups, dhchap_dhgroup_id,
				 DHCHAP_CHOICES, &dhgroups))
		goto out;
	if (mimo_nvmf_tgt_set_dhchap(tgt, digests, dhgroups) != 0)
		mimo_jsonrpc_send_error(req, INVALID, "Invalid DH-HMAC-CHAP digests or groups");
	else
		mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(set_config_decoders, MIMO_COUNTOF(set_config_decoders), &p);
}

/* --- namespace visibility ------------------------------------------------------------------ */

struct ns_host_params {
	char *nqn;
	uint32_t nsid;
	char *host;
	char *tgt_name;
};

static const struct mimo_json_decoder ns_host_decoders[] = {
	{ "nqn", offsetof(struct ns_host_params, nqn), mimo_json_decode_string, false },
	{ "nsid", offsetof(struct ns_host_params, nsid), mimo_json_decode_uint32, false },
	{ "host", offsetof(struct ns_host_params, host), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct ns_host_params, tgt_name), mimo_json_decode_string, true },
};

static void ns_host_rpc(struct mimo_jsonrpc_request *req, const json_t *params, bool add)
{
	struct ns_host_params p = { 0 };
	struct mimo_nvmf_subsystem *s;
	int rc;

	if (!mimo_rpc_decode(req, params, ns_host_decoders, MIMO_COUNTOF(ns_host_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s == NULL)
		goto out;
	rc = add ? mimo_nvmf_ns_add_host(s, p.nsid, p.host)
		 : mimo_nvmf_ns_remove_host(s, p.nsid, p.host);
	if (rc == -EINVAL)
		mimo_jsonrpc_send_error(req, INVALID, "Invalid nsid %u or host NQN '%s'", p.nsid,
					p.host);
	else if (rc == -ENOENT && add)
		mimo_jsonrpc_send_error(req, INVALID, "Namespace %u not found", p.nsid);
	else if (rc == -ENOENT)
		mimo_jsonrpc_send_error(req, INVALID,
					"Namespace %u not found, or %s cannot see it already",
					p.nsid, p.host);
	else if (rc == -EPERM)
		mimo_jsonrpc_send_error(req, INVALID,
					"Namespace %u is visible to every host: add it with "
					"no_auto_visible to choose its hosts",
					p.nsid);
	else if (rc == -EEXIST)
		mimo_jsonrpc_send_error(req, INVALID, "Namespace %u is already visible to %s",
					p.nsid, p.host);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(ns_host_decoders, MIMO_COUNTOF(ns_host_decoders), &p);
}

static void rpc_nvmf_ns_add_host(struct mimo_jsonrpc_request *req, const json_t *params)
{
	ns_host_rpc(req, params, true);
}

static void rpc_nvmf_ns_remove_host(struct mimo_jsonrpc_request *req, const json_t *params)
{
	ns_host_rpc(req, params, false);
}

struct allow_params {
	char *nqn;
	char *tgt_name;
	bool allow_any_host;
};

static const struct mimo_json_decoder allow_decoders[] = {
	{ "nqn", offsetof(struct allow_params, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct allow_params, tgt_name), mimo_json_decode_string, true },
	{ "allow_any_host", offsetof(struct allow_params, allow_any_host), mimo_json_decode_bool,
	  false },
};

static void rpc_nvmf_subsystem_allow_any_host(struct mimo_jsonrpc_request *req,
					      const json_t *params)
{
	struct allow_params p = { 0 };
	struct mimo_nvmf_subsystem *s;

	if (!mimo_rpc_decode(req, params, allow_decoders, MIMO_COUNTOF(allow_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		mimo_nvmf_subsystem_allow_any_host(s, p.allow_any_host);
		mimo_jsonrpc_send_bool(req, true);
	}
	mimo_json_decode_free(allow_decoders, MIMO_COUNTOF(allow_decoders), &p);
}

/* --- listeners ----------------------------------------------------------------------------- */

struct addr_params {
	char *trtype;
	char *adrfam;
	char *traddr;
	char *trsvcid;
	const json_t *ignored;
};

#define AP struct addr_params
static const struct mimo_json_decoder addr_decoders[] = {
	{ "trtype", offsetof(AP, trtype), mimo_json_decode_string, false },
	{ "adrfam", offsetof(AP, adrfam), mimo_json_decode_string, true },
	{ "traddr", offsetof(AP, traddr), mimo_json_decode_string, false },
	{ "trsvcid", offsetof(AP, trsvcid), mimo_json_decode_string, true },
	UNSUPPORTED(AP, "priority"),
};
#undef AP

/* Decode a listen_address object; answers errors itself. */
bool nvmf_rpc_decode_addr(struct mimo_jsonrpc_request *req, const json_t *obj,
			  struct mimo_nvmf_listen_addr *a)
{
	struct addr_params p = { 0 };
	char err[256];
	bool ok = false;

	memset(a, 0, sizeof(*a));
	if (mimo_json_decode_object(obj, addr_decoders, MIMO_COUNTOF(addr_decoders), &p, err,
				    sizeof(err)) != 0) {
		mimo_jsonrpc_send_error(req, INVALID, "listen_address: %s", err);
		goto out;
	}
	if (strcasecmp(p.trtype, "TCP") != 0) {
		mimo_jsonrpc_send_error(req, INVALID, "Transport type '%s' is not supported",
					p.trtype);
		goto out;
	}
	if (p.adrfam != NULL && strcasecmp(p.adrfam, "IPv4") != 0 &&
	    strcasecmp(p.adrfam, "IPv6") != 0) {
		mimo_jsonrpc_send_error(req, INVALID, "Invalid adrfam '%s'", p.adrfam);
		goto out;
	}
	if (strlen(p.traddr) >= sizeof(a->traddr) ||
	    (p.trsvcid != NULL && strlen(p.trsvcid) >= sizeof(a->trsvcid))) {
		mimo_jsonrpc_send_error(req, INVALID, "traddr or trsvcid too long");
		goto out;
	}
	snprintf(a->trtype, sizeof(a->trtype), "TCP");
	snprintf(a->adrfam, sizeof(a->adrfam), "%s",
		 p.adrfam != NULL && strcasecmp(p.adrfam, "IPv6") == 0 ? "IPv6" : "IPv4");
	snprintf(a->traddr, sizeof(a->traddr), "%s", p.traddr);
	snprintf(a->trsvcid, sizeof(a->trsvcid), "%s", p.trsvcid != NULL ? p.trsvcid : "4420");
	ok = true;
out:
	mimo_json_decode_free(addr_decoders, MIMO_COUNTOF(addr_decoders), &p);
	return ok;
}

/* The answer to a listener RPC once the listener is (or is not) in place. */
static int listener_rc_error(struct mimo_jsonrpc_request *req, int rc,
			     const struct mimo_nvmf_listen_addr *a)
{
	switch (rc) {
	case 0:
		return 0;
	case -ENOENT:
		mimo_jsonrpc_send_error(req, INVALID,
					"Unable to find TCP transport. The transport must be "
					"created first (nvmf_create_transport -t TCP)");
		break;
	case -EEXIST:
		mimo_jsonrpc_send_error(req, INVALID, "Listener %s:%s already exists", a->traddr,
					a->trsvcid);
		break;
	case -EADDRINUSE:
		mimo_jsonrpc_send_error(req, INVALID, "Address %s:%s is already in use", a->traddr,
					a->trsvcid);
		break;
	case -EINVAL:
	case -EADDRNOTAVAIL:
		mimo_jsonrpc_send_error(req, INVALID, "Cannot listen on %s:%s: %s", a->traddr,
					a->trsvcid, strerror(-rc));
		break;
	default:
		mimo_jsonrpc_send_errno(req, rc);
		break;
	}
	return rc;
}

struct listener_params {
	char *nqn;
	char *tgt_name;
	const json_t *addr;
	const json_t *ana_state;
	uint32_t anagrpid;
	const char *sock_impl;
	bool secure_channel;
	const json_t *ignored;
};

/* A listener's first ANA state (of every group, or of anagrpid's): what
 * nvmf_subsystem_listener_set_ana_state takes. */
static const char *decode_ana_state(const json_t *val, void *out)
{
	*(const json_t **)out = val;
	if (json_is_null(val) ||
	    (json_is_string(val) && nvmf_ana_state_parse(json_string_value(val)) != 0))
		return NULL;
	return "\"optimized\", \"non_optimized\" or \"inaccessible\"";
}

/* SPDK's socket layers: "posix" and "uring" are plain TCP, served by epoll or by the reactors'
 * io_uring (lib/nvmf/tcp_uring.c); "ssl" is TLS, a secure channel listener as
 * --secure-channel makes one. */
static const char *decode_sock_impl(const json_t *val, void *out)
{
	const char *v = json_string_value(val);

	*(const char **)out = v;
	if (json_is_null(val) || (v != NULL && (strcmp(v, "posix") == 0 ||
						strcmp(v, "uring") == 0 || strcmp(v, "ssl") == 0)))
		return NULL;
	return "\"posix\" or \"uring\" (plain TCP), or \"ssl\" (TLS)";
}

#define LP struct listener_params
static const struct mimo_json_decoder listener_decoders[] = {
	{ "nqn", offsetof(LP, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(LP, tgt_name), mimo_json_decode_string, true },
	{ "listen_address", offsetof(LP, addr), mimo_json_decode_json, false },
	{ "secure_channel", offsetof(LP, secure_channel), mimo_json_decode_bool, true },
	{ "ana_state", offsetof(LP, ana_state), decode_ana_state, true },
	{ "anagrpid", offsetof(LP, anagrpid), mimo_json_decode_uint32, true },
	{ "sock_impl", offsetof(LP, sock_impl), decode_sock_impl, true },
	NO_MEANING(LP, "numa_id"),
};
#undef LP

struct listener_ctx {
	struct mimo_jsonrpc_request *req;
	struct mimo_nvmf_subsystem *s;
	struct mimo_nvmf_listen_addr addr;
	bool secure;
	uint8_t ana_state; /* 0: leave every group optimized */
	uint32_t anagrpid;
};

/* The listener is in place: its first ANA state. */
static int listener_ana(struct listener_ctx *ctx)
{
	struct nvmf_transport *tt = nvmf_tgt_find_transport(ctx->s->tgt, ctx->addr.trtype);

	if (ctx->ana_state == 0)
		return 0;
	return nvmf_subsystem_set_ana_state(ctx->s,
					    tt != NULL ? nvmf_port_find(tt, &ctx->addr) : NULL,
					    ctx->ana_state, ctx->anagrpid);
}

static void listener_done(void *arg, int rc)
{
	struct listener_ctx *ctx = arg;

	if (rc == -ESOCKTNOSUPPORT)
		mimo_jsonrpc_send_error(
			ctx->req, INVALID,
			"Listener %s:%s serves its subsystems with another "
			"sock_impl; a listener there must name the same one (or none)",
			ctx->addr.traddr, ctx->addr.trsvcid);
	else if (rc == -EPROTOTYPE)
		mimo_jsonrpc_send_error(ctx->req, INVALID,
					"Listener %s:%s is %s for the subsystems on it; a listener "
					"there must be one too (or use another port)",
					ctx->addr.traddr, ctx->addr.trsvcid,
					ctx->secure ? "plain TCP" : "a secure channel (TLS only)");
	else if (listener_rc_error(ctx->req, rc, &ctx->addr) == 0 &&
		 listener_rc_error(ctx->req, listener_ana(ctx), &ctx->addr) == 0)
		mimo_jsonrpc_send_bool(ctx->req, true);
	free(ctx);
}

static void listener_rpc(struct mimo_jsonrpc_request *req, const json_t *params, bool add)
{
	struct listener_params p = { 0 };
	struct listener_ctx *ctx = NULL;
	struct mimo_nvmf_subsystem *s;
	const char *nqn;

	if (!mimo_rpc_decode(req, params, listener_decoders, MIMO_COUNTOF(listener_decoders), &p))
		return;
	/* rpc.py's shortcut for the discovery subsystem. */
	nqn = strcmp(p.nqn, "discovery") == 0 ? MIMO_NVMF_DISCOVERY_NQN : p.nqn;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, nqn);
	if (s == NULL)
		goto out;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		goto out;
	}
	ctx->req = req;
	ctx->s = s;
	if (!nvmf_rpc_decode_addr(req, p.addr, &ctx->addr)) {
		free(ctx);
		goto out;
	}
	/* A listener being removed has no state to set. */
	if (!add && ((p.ana_state != NULL && !json_is_null(p.ana_state)) || p.anagrpid != 0)) {
		mimo_jsonrpc_send_error(req, INVALID,
					"ana_state/anagrpid: only when adding a listener");
		free(ctx);
		goto out;
	}
	if (json_is_string(p.ana_state))
		ctx->ana_state = nvmf_ana_state_parse(json_string_value(p.ana_state));
	ctx->anagrpid = p.anagrpid;
	/* A state other than every group optimized needs ANA reporting, and a group of it. */
	if (add && ((ctx->ana_state != 0 && ctx->ana_state != MIMO_NVME_ANA_OPTIMIZED) ||
		    p.anagrpid != 0)) {
		if (!s->ana_reporting || p.anagrpid > s->max_nsid) {
			mimo_jsonrpc_send_error(
				req, INVALID, "ana_state/anagrpid: %s",
				!s->ana_reporting
					? "ANA reporting is disabled (nvmf_create_subsystem "
					  "--ana-reporting)"
					: "ANA groups are 1 to max_namespaces");
			free(ctx);
			goto out;
		}
		if (ctx->ana_state == 0)
			ctx->ana_state = MIMO_NVME_ANA_OPTIMIZED;
	} else {
		ctx->ana_state = 0;
	}
	if (add) {
		struct mimo_nvmf_listener_opts o;
		bool ssl = p.sock_impl != NULL && strcmp(p.sock_impl, "ssl") == 0;

		/* SPDK's two ways to ask for TLS: secure_channel, or the "ssl" socket layer. */
		if (p.secure_channel && p.sock_impl != NULL && !ssl) {
			mimo_jsonrpc_send_error(req, INVALID,
						"secure_channel with sock_impl \"%s\": a secure "
						"channel is TLS (\"ssl\")",
						p.sock_impl);
			free(ctx);
			goto out;
		}
		mimo_nvmf_listener_opts_init(&o);
		o.secure_channel = p.secure_channel || ssl;
		if (p.sock_impl != NULL && strcmp(p.sock_impl, "uring") == 0) {
			char why[160];

			if (mimo_sock_uring_probe(why, sizeof(why)) != 0) {
				mimo_jsonrpc_send_error(
					req, -EOPNOTSUPP,
					"sock_impl \"uring\": io_uring is unusable "
					"here: %s; \"posix\" (epoll) serves plain TCP",
					why);
				free(ctx);
				goto out;
			}
			o.sock_impl = MIMO_NVMF_SOCK_IMPL_URING;
		} else if (p.sock_impl != NULL && strcmp(p.sock_impl, "posix") == 0) {
			o.sock_impl = MIMO_NVMF_SOCK_IMPL_POSIX;
		}
		if (o.secure_channel && strcmp(nqn, MIMO_NVMF_DISCOVERY_NQN) == 0) {
			mimo_jsonrpc_send_error(
				req, INVALID,
				"secure_channel: the discovery subsystem has no hosts, "
				"so no PSKs to make a secure channel with");
			free(ctx);
			goto out;
		}
		ctx->secure = o.secure_channel;
		mimo_nvmf_subsystem_add_listener_ext(s, &ctx->addr, &o, listener_done, ctx);
	} else {
		mimo_nvmf_subsystem_remove_listener(s, &ctx->addr, listener_done, ctx);
	}
out:
	mimo_json_decode_free(listener_decoders, MIMO_COUNTOF(listener_decoders), &p);
}

static void rpc_nvmf_subsystem_add_listener(struct mimo_jsonrpc_request *req, const json_t *params)
{
	listener_rpc(req, params, true);
}

static void rpc_nvmf_subsystem_remove_listener(struct mimo_jsonrpc_request *req,
					       const json_t *params)
{
	listener_rpc(req, params, false);
}

/* --- py-spdk's one-call form --------------------------------------------------------------- */

struct construct_params {
	char *nqn;
	const json_t *listen_addresses;
	const json_t *hosts;
	char *serial_number;
	char *model_number;
	const json_t *namespaces;
	bool allow_any_host;
	uint32_t max_namespaces;
	char *tgt_name;
	int32_t core;	   /* SPDK 17.x: the core the subsystem ran on; -1 = any */
	char *mode;	   /* SPDK 17.x: "Virtual" (bdevs) or "Direct" (an NVMe device) */
	char *pci_address; /* SPDK 17.x, Direct mode only */
};

#define CP struct construct_params
static const struct mimo_json_decoder construct_decoders[] = {
	{ "nqn", offsetof(CP, nqn), mimo_json_decode_string, false },
	{ "listen_addresses", offsetof(CP, listen_addresses), mimo_json_decode_json, true },
	{ "hosts", offsetof(CP, hosts), mimo_json_decode_json, true },
	{ "serial_number", offsetof(CP, serial_number), mimo_json_decode_string, true },
	{ "model_number", offsetof(CP, model_number), mimo_json_decode_string, true },
	{ "namespaces", offsetof(CP, namespaces), mimo_json_decode_json, true },
	{ "allow_any_host", offsetof(CP, allow_any_host), mimo_json_decode_bool, true },
	{ "max_namespaces", offsetof(CP, max_namespaces), mimo_json_decode_uint32, true },
	{ "tgt_name", offsetof(CP, tgt_name), mimo_json_decode_string, true },
	{ "core", offsetof(CP, core), mimo_json_decode_int32, true },
	{ "mode", offsetof(CP, mode), mimo_json_decode_string, true },
	{ "pci_address", offsetof(CP, pci_address), mimo_json_decode_string, true },
};
#undef CP

/*
 * SPDK 17.x's own parameters, as its rpc.py (and py-spdk, which drives it) always sends them:
 * "core": -1 and "mode": "Virtual" mean what mimo does anyway (connections spread over every
 * reactor, namespaces on bdevs). Pinning to one core and Direct mode (an NVMe device passed
 * through by PCI address) are not what mimo can do: refused, saying so.
 */
static bool legacy_params_ok(struct mimo_jsonrpc_request *req, const struct construct_params *p)
{
	if (p->core != -1) {
		mimo_jsonrpc_send_error(req, INVALID,
					"core %d: mimo does not pin a subsystem to one core (its "
					"connections are spread over every reactor); use -1",
					p->core);
		return false;
	}
	if (p->mode != NULL && strcasecmp(p->mode, "Virtual") != 0) {
		mimo_jsonrpc_send_error(req, INVALID,
					"mode %s: only Virtual (namespaces on bdevs) is supported; "
					"attach the NVMe device as a bdev instead",
					p->mode);
		return false;
	}
	if (p->pci_address != NULL) {
		mimo_jsonrpc_send_error(
			req, INVALID,
			"pci_address: Direct mode is not supported; attach the NVMe "
			"device as a bdev instead");
		return false;
	}
	return true;
}

/* A namespace of construct_nvmf_subsystem: an object, or (SPDK 17.x) a bdev's name. */
static int add_legacy_ns(struct mimo_jsonrpc_request *req, struct mimo_nvmf_subsystem *s,
			 const json_t *v)
{
	json_t *obj;
	int rc;

	if (!json_is_string(v))
		return add_ns(req, s, v);
	obj = json_pack("{s:O}", "bdev_name", v);
	if (obj == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		return 0;
	}
	rc = add_ns(req, s, obj);
	json_decref(obj);
	return rc;
}

static void store_rc(void *arg, int rc)
{
	*(int *)arg = rc;
}

static bool array_or_null(const json_t *v)
{
	return v == NULL || json_is_array(v) || json_is_null(v);
}

/* Everything is checked and applied in order; on an error the subsystem is deleted again,
 * so the call either does all of it or nothing. Listeners open synchronously in mimo. */
static void construct(struct mimo_jsonrpc_request *req, struct mimo_nvmf_tgt *tgt,
		      struct construct_params *p)
{
	struct create_subsystem cs = { .nqn = p->nqn,
				       .serial_number = p->serial_number,
				       .model_number = p->model_number,
				       .allow_any_host = p->allow_any_host,
				       .max_namespaces = p->max_namespaces };
	struct mimo_nvmf_subsystem *s;
	const json_t *v;
	size_t i;

	if (!legacy_params_ok(req, p))
		return;
	if (!array_or_null(p->listen_addresses) || !array_or_null(p->hosts) ||
	    !array_or_null(p->namespaces)) {
		mimo_jsonrpc_send_error(req, INVALID,
					"listen_addresses, hosts and namespaces must be arrays");
		return;
	}
	/* Old SPDK created the TCP transport on demand: so do we, with defaults. */
	if (json_array_size(p->listen_addresses) != 0) {
		struct create_transport ct = { .trtype = "TCP",
					       .c2h_success = true,
					       .zcopy = true };
		int rc = create_transport(tgt, &ct);

		if (rc != 0 && rc != -EEXIST) {
			mimo_jsonrpc_send_errno(req, rc);
			return;
		}
	}
	s = create_subsystem(req, tgt, &cs);
	if (s == NULL)
		return;
	json_array_foreach(p->hosts, i, v)
	{
		int rc = json_is_string(v) ? mimo_nvmf_subsystem_add_host(s, json_string_value(v))
					   : -EINVAL;

		if (rc != 0 && rc != -EEXIST) {
			mimo_jsonrpc_send_error(req, INVALID, "Invalid host NQN in hosts[%zu]", i);
			goto undo;
		}
	}
	json_array_foreach(p->namespaces, i, v)
	{
		if (add_legacy_ns(req, s, v) == 0)
			goto undo;
	}
	json_array_foreach(p->listen_addresses, i, v)
	{
		struct mimo_nvmf_listen_addr addr;
		int rc = -EINPROGRESS;

		if (!nvmf_rpc_decode_addr(req, v, &addr))
			goto undo;
		/* mimo opens listeners at once: the callback has run when this returns. */
		mimo_nvmf_subsystem_add_listener(s, &addr, store_rc, &rc);
		if (listener_rc_error(req, rc, &addr) != 0)
			goto undo;
	}
	mimo_jsonrpc_send_bool(req, true);
	return;
undo:
	mimo_nvmf_subsystem_destroy(s, NULL, NULL);
}

static void rpc_construct_nvmf_subsystem(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct construct_params p = { .core = -1 };
	struct mimo_nvmf_tgt *tgt;

	if (!mimo_rpc_decode(req, params, construct_decoders, MIMO_COUNTOF(construct_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt != NULL)
		construct(req, tgt, &p);
	mimo_json_decode_free(construct_decoders, MIMO_COUNTOF(construct_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "nvmf_create_transport", rpc_nvmf_create_transport, MIMO_RPC_RUNTIME },
	{ "nvmf_get_transports", rpc_nvmf_get_transports, MIMO_RPC_RUNTIME },
	{ "nvmf_create_subsystem", rpc_nvmf_create_subsystem, MIMO_RPC_RUNTIME },
	{ "nvmf_delete_subsystem", rpc_nvmf_delete_subsystem, MIMO_RPC_RUNTIME },
	{ "delete_nvmf_subsystem", rpc_nvmf_delete_subsystem, MIMO_RPC_RUNTIME,
	  "nvmf_delete_subsystem" },
	{ "nvmf_get_subsystems", rpc_nvmf_get_subsystems, MIMO_RPC_RUNTIME },
	{ "get_nvmf_subsystems", rpc_nvmf_get_subsystems, MIMO_RPC_RUNTIME, "nvmf_get_subsystems" },
	{ "nvmf_subsystem_get_controllers", rpc_nvmf_subsystem_get_controllers, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_add_ns", rpc_nvmf_subsystem_add_ns, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_remove_ns", rpc_nvmf_subsystem_remove_ns, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_add_host", rpc_nvmf_subsystem_add_host, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_remove_host", rpc_nvmf_subsystem_remove_host, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_set_keys", rpc_nvmf_subsystem_set_keys, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_get_qpairs", rpc_nvmf_subsystem_get_qpairs, MIMO_RPC_RUNTIME },
	{ "nvmf_set_config", rpc_nvmf_set_config, MIMO_RPC_STARTUP | MIMO_RPC_RUNTIME },
	{ "nvmf_ns_add_host", rpc_nvmf_ns_add_host, MIMO_RPC_RUNTIME },
	{ "nvmf_ns_remove_host", rpc_nvmf_ns_remove_host, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_allow_any_host", rpc_nvmf_subsystem_allow_any_host, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_add_listener", rpc_nvmf_subsystem_add_listener, MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_remove_listener", rpc_nvmf_subsystem_remove_listener, MIMO_RPC_RUNTIME },
	{ "construct_nvmf_subsystem", rpc_construct_nvmf_subsystem, MIMO_RPC_RUNTIME,
	  "nvmf_create_subsystem" },
};

void nvmf_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
	nvmf_info_rpc_register();
	nvmf_referral_rpc_register();
	nvmf_ana_rpc_register();
}
