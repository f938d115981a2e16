/*
 * A message up as its callback receives it (callback.c): GSE's {"message_id", "bk_agent_id",
 * "content"} plus "content_base64", "plugin", "slot_id", "timestamp" (Unix seconds), written by
 * hand rather than through jansson (the agent's delivery rate depends on it: PERFORMANCE.md).
 *
 * Threading: pure functions, any thread. Memory: the caller's buffer, appended to (grown with
 * malloc). Errors: 0 or -ENOMEM.
 */
#ifndef MIMO_FAB_CALLBACK_H
#define MIMO_FAB_CALLBACK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct fab_callback {
	const char *msg_id;
	size_t msg_id_len;
	const char *agent_id;
	const void *content;
	size_t content_len;
	const char *plugin;
	size_t plugin_len;
	uint64_t slot_id;
	int64_t timestamp;
};
/* b receives the JSON body (reset first). */
int fab_callback_json(struct mimo_buf *b, const struct fab_callback *m);
/* Append data as a JSON string (invalid UTF-8 replaced by U+FFFD, controls escaped). */
int fab_json_append_string(struct mimo_buf *b, const void *data, size_t len);

#endif
