/* libspdk_go_notify.so: the Go bridge's entry point, forwarding to libmimo_notify. */
#include "compiler.h"
#include "mimo/notify.h"
#include "spdk_go_notify.h"

MIMO_EXPORT int NotifyEvent(const char *event, const char *payload)
{
	return mimo_notify_event(event, payload);
}
