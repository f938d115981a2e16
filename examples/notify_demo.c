/*
 * notify_demo: the Go bridge's README examples, unchanged in spirit: include spdk_go_notify.h,
 * call NotifyEvent, link -lspdk_go_notify. `make run` runs it against the seed's receiver, and
 * the integration tests compile it with exactly `cc -Iinclude -Lbuild/lib -lspdk_go_notify`
 * to prove that programs written for the Go bridge work unchanged.
 */
#include <stdio.h>

#include "spdk_go_notify.h"

static void bdev_create_callback(const char *name, unsigned long size)
{
	char payload[256];

	snprintf(payload, sizeof(payload), "{\"name\":\"%s\",\"size\":%lu}", name, size);
	printf("bdev_created %d\n", NotifyEvent("bdev_created", payload));
}

int main(void)
{
	printf("bdev_ready %d\n",
	       NotifyEvent("bdev_ready", "{\"name\":\"nvme0n1\",\"size\":1073741824}"));
	printf("error_occurred %d\n", NotifyEvent("error_occurred", NULL));
	bdev_create_callback("Malloc0", 67108864UL);
	printf("system_ready %d\n", NotifyEvent("system_ready", NULL));
	return 0;
}
