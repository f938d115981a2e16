/*
 * rpc.py's bdev_nvme commands that only mean something for what mimo does not have - local
 * PCIe controllers (CUSE devices, Opal, firmware) and an mDNS browser - registered so that a
 * script calling one hears why it cannot be done here instead of "Method not found".
 */
#include <errno.h>
#include <string.h>

#include "bdev_nvme_internal.h"
#include "mimo/jsonrpc.h"

static const struct {
	const char *method;
	const char *why;
} g_refused[] = {
	{ "bdev_nvme_cuse_register",
	  "CUSE character devices are made for SPDK's local PCIe controllers; mimo's are NVMe-oF "
	  "ones (a kernel's own nvme device node: nvme connect to a mimo_tgt listener)" },
	{ "bdev_nvme_cuse_unregister", "mimo makes no CUSE devices (see bdev_nvme_cuse_register)" },
	{ "bdev_nvme_opal_init",
	  "TCG Opal is a local drive's security subsystem, reached through SPDK's PCIe driver; "
	  "mimo has no PCIe driver" },
	{ "bdev_nvme_opal_revert", "mimo has no Opal support (see bdev_nvme_opal_init)" },
	{ "bdev_nvme_apply_firmware",
	  "firmware download and commit are for local PCIe controllers; mimo's controllers are "
	  "NVMe-oF ones, whose firmware is the target's business" },
	{ "bdev_nvme_start_mdns_discovery",
	  "mimo has no mDNS (Avahi) browser: start a discovery at a known address with "
	  "bdev_nvme_start_discovery" },
	{ "bdev_nvme_stop_mdns_discovery", "mimo has no mDNS discovery to stop" },
	{ "bdev_nvme_get_mdns_discovery_info", "mimo has no mDNS discovery (see "
					       "bdev_nvme_get_discovery_info)" },
};

static void rpc_refused(struct mimo_jsonrpc_request *req, const json_t *params)
{
	const char *m = mimo_jsonrpc_request_method(req);

	(void)params; /* refused whatever they say */
	for (size_t i = 0; i < MIMO_COUNTOF(g_refused); i++) {
		if (strcmp(m, g_refused[i].method) == 0) {
			mimo_jsonrpc_send_error(req, -EOPNOTSUPP, "%s: not supported: %s", m,
						g_refused[i].why);
			return;
		}
	}
	mimo_jsonrpc_send_error(req, -EOPNOTSUPP, "%s: not supported", m);
}

void bdev_nvme_refused_rpc_register(void)
{
	static struct mimo_rpc_method methods[MIMO_COUNTOF(g_refused)];

	for (size_t i = 0; i < MIMO_COUNTOF(g_refused); i++)
		methods[i] = (struct mimo_rpc_method){ .name = g_refused[i].method,
						       .fn = rpc_refused,
						       .state_mask = MIMO_RPC_RUNTIME };
	mimo_rpc_register_methods(methods, MIMO_COUNTOF(methods));
}
