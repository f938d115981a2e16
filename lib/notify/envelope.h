/* What an event looks like on the wire, and which names are acceptable. */
#ifndef MIMO_NOTIFY_ENVELOPE_H
#define MIMO_NOTIFY_ENVELOPE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Longest name in strict mode, and in the default (Go-compatible) mode. */
#define NOTIFY_NAME_MAX	    128
#define NOTIFY_NAME_MAX_ANY 65535
/* Deepest payload nesting in strict mode; the default mode takes Go's 10,000. */
#define NOTIFY_STRICT_DEPTH 64

/* How an event's name and payload must be treated when the envelope is built. */
enum {
	NOTIFY_F_PAYLOAD = 1 << 0,	/* there is a payload */
	NOTIFY_F_NAME_ESCAPE = 1 << 1,	/* the name has bytes to escape or repair */
	NOTIFY_F_PAYLOAD_UTF8 = 1 << 2, /* the payload's strings hold bytes that are not UTF-8 */
	NOTIFY_F_TICKS = 1 << 3		/* the timestamp is TSC ticks (tstamp.h), not seconds */
};

/*
 * Check an event name. strict: 1..128 bytes of [A-Za-z0-9_.:-]. Otherwise (what the Go
 * bridge took) any non-empty string of at most NOTIFY_NAME_MAX_ANY bytes; *escape is set when
 * it holds a byte that must be escaped in JSON or is not UTF-8. Returns 0, -EINVAL (NULL,
 * empty, or outside the strict set) or -ENAMETOOLONG; *len receives the length on success.
 */
/* 1: allowed in a strict name ([A-Za-z0-9_.:-]). 2: must be escaped or checked in JSON
 * (control characters, quote, backslash, bytes >= 0x80). 0: anything else. Computed rather
 * than looked up in a table: no cache line to miss on the producer's path. */
static inline unsigned notify_name_class(unsigned char c)
{
	if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
		return 2;
	if ((unsigned char)((c | 0x20) - 'a') < 26 || (unsigned char)(c - '0') < 10 || c == '_' ||
	    c == '.' || c == ':' || c == '-')
		return 1;
	return 0;
}

static inline int notify_check_name(const char *name, bool strict, size_t *len, bool *escape)
{
	unsigned char seen = 1, all = 1;
	size_t i, max = strict ? NOTIFY_NAME_MAX : NOTIFY_NAME_MAX_ANY;

	if (name == NULL || name[0] == '\0')
		return -EINVAL;
	for (i = 0; name[i] != '\0'; i++) {
		unsigned char c = (unsigned char)notify_name_class((unsigned char)name[i]);

		if (i == max)
			return -ENAMETOOLONG;
		seen |= c;
		all &= c;
	}
	if (strict && all == 0)
		return -EINVAL;
	*len = i;
	*escape = (seen & 2) != 0;
	return 0;
}

/*
 * Append {"event":"<name>","payload":<payload>,"timestamp":<ts>} to out. flags say whether
 * there is a payload (else the key is omitted), whether the name must be escaped (quote,
 * backslash and control characters escaped, bytes that are not UTF-8 become U+FFFD), and
 * whether the payload's strings must be repaired the same way. The payload must have passed
 * mimo_json_check. Whitespace around the payload is dropped. Returns 0 or -ENOMEM.
 */
int notify_envelope_build(struct mimo_buf *out, const char *name, size_t name_len,
			  const char *payload, size_t payload_len, unsigned flags,
			  int64_t timestamp);

#endif
