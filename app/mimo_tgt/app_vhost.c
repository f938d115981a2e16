/* The "vhost_blk" and "vhost_scsi" subsystems of mimo_tgt (SPDK's names): vhost-user
 * controllers on reactor 0, saved as vhost_create_blk_controller calls, and
 * vhost_create_scsi_controller with vhost_scsi_controller_add_target calls; at exit their
 * connections close (after their requests complete) before the bdevs go. */
#include "app.h"
#include "mimo/vhost.h"

void app_vhost_fini(void (*done)(void *arg), void *arg)
{
	mimo_vhost_fini(done, arg);
}

json_t *app_vhost_config(void)
{
	return mimo_vhost_blk_config_json();
}

json_t *app_vhost_scsi_config(void)
{
	return mimo_vhost_scsi_config_json();
}
