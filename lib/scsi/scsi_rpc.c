/*
 * scsi_get_devices (SPDK's: [{"id", "device_name"}], here with each device's "luns" too) and
 * py-spdk's legacy names: get_scsi_devices, and get_luns ([{"name", "claimed"}], the LUNs of
 * every device, as SPDK 17 listed them).
 */
#include "mimo/jsonrpc.h"
#include "scsi_internal.h"

json_t *scsi_dev_luns_json_locked(struct mimo_scsi_dev *dev);

static void rpc_scsi_get_devices(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct mimo_scsi_dev *dev;
	json_t *a;

	if (!mimo_rpc_no_params(req, params))
		return;
	a = json_array();
	pthread_mutex_lock(&g_scsi_devs_lock);
	TAILQ_FOREACH(dev, &g_scsi_devs, link)
	{
		json_array_append_new(a,
				      json_pack("{s:i, s:s, s:o}", "id", dev->id, "device_name",
						dev->name, "luns", scsi_dev_luns_json_locked(dev)));
	}
	pthread_mutex_unlock(&g_scsi_devs_lock);
	mimo_jsonrpc_send_result(req, a);
}

static void rpc_get_luns(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct mimo_scsi_dev *dev;
	json_t *a;

	if (!mimo_rpc_no_params(req, params))
		return;
	a = json_array();
	pthread_mutex_lock(&g_scsi_devs_lock);
	TAILQ_FOREACH(dev, &g_scsi_devs, link)
	{
		json_t *luns = scsi_dev_luns_json_locked(dev), *l;
		size_t i;

		json_array_foreach(luns, i, l)
		{
			json_array_append_new(a, json_pack("{s:O, s:b}", "name",
							   json_object_get(l, "bdev_name"),
							   "claimed", 1));
		}
		json_decref(luns);
	}
	pthread_mutex_unlock(&g_scsi_devs_lock);
	mimo_jsonrpc_send_result(req, a);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "scsi_get_devices", rpc_scsi_get_devices, MIMO_RPC_RUNTIME },
	{ "get_scsi_devices", rpc_scsi_get_devices, MIMO_RPC_RUNTIME, "scsi_get_devices" },
	{ "get_luns", rpc_get_luns, MIMO_RPC_RUNTIME, "scsi_get_devices" },
};

void scsi_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
