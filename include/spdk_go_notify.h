/*
 * spdk_go_notify.h - drop-in header for programs written against the original Go
 * notification bridge. Link with -lspdk_go_notify; the implementation is mimo's C bridge
 * (libmimo_notify). See include/mimo/notify.h for the full API and docs/notify.md.
 */
#ifndef SPDK_GO_NOTIFY_H
#define SPDK_GO_NOTIFY_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Queue an event for delivery as an HTTP POST of
 * {"event":"<event>","payload":<payload>,"timestamp":<unix seconds>}.
 * event: any non-empty string (escaped into the body). payload: a JSON value as a string, or
 * NULL/empty for no payload. Never blocks.
 * Returns 0 when queued, a negative errno when refused (include/mimo/notify.h lists them).
 */
int NotifyEvent(const char *event, const char *payload);

#ifdef __cplusplus
}
#endif

#endif /* SPDK_GO_NOTIFY_H */
