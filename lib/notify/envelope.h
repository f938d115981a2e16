/* What an event looks like on the wire, and which names are acceptable. */
#ifndef MIMO_NOTIFY_ENVELOPE_H
#define MIMO_NOTIFY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define NOTIFY_NAME_MAX 128

/* 0 if name is 1..128 bytes of [A-Za-z0-9_.:-]; -EINVAL or -ENAMETOOLONG otherwise.
 * *len receives the name's length on success. name may be NULL. */
int notify_check_name(const char *name, size_t *len);

/*
 * Append {"event":"<name>","payload":<payload>,"timestamp":<ts>} to out. The name must have
 * passed notify_check_name (it needs no escaping) and the payload mimo_json_check_object;
 * payload NULL omits the key. Whitespace around the payload is dropped. Returns 0 or -ENOMEM.
 */
int notify_envelope_build(struct mimo_buf *out, const char *name, size_t name_len,
			  const char *payload, size_t payload_len, int64_t timestamp);

#endif
