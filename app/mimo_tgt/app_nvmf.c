/* The "nvmf" subsystem of mimo_tgt: the target "nvmf_tgt" (with its discovery subsystem)
 * exists from start-up on reactor 0, where the RPCs run, and goes before the bdevs at exit. */
#include <errno.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "mimo/nvmf.h"

#define COMP "app"

static struct mimo_nvmf_tgt *g_tgt;

int app_nvmf_init(void)
{
	int rc = mimo_nvmf_tgt_create("nvmf_tgt", NULL, &g_tgt);

	if (rc != 0)
		MIMO_ERR(COMP, "cannot create the NVMe-oF target: %s", strerror(-rc));
	return rc;
}

void app_nvmf_fini(void (*done)(void *arg), void *arg)
{
	struct mimo_nvmf_tgt *tgt = g_tgt;

	g_tgt = NULL;
	if (tgt == NULL) {
		done(arg);
		return;
	}
	mimo_nvmf_tgt_destroy(tgt, done, arg);
}

json_t *app_nvmf_config(void)
{
	return g_tgt != NULL ? mimo_nvmf_tgt_config_json(g_tgt) : json_array();
}
