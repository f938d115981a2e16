#include "envelope.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_check.h"
#include "tstamp.h"

static inline bool is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char k_fffd[3] = { (char)0xef, (char)0xbf, (char)0xbd };

/* Bytes that are not UTF-8 become U+FFFD, one for each byte (as Go's encoder does). In a
 * string, quote, backslash and control characters are escaped too. Returns the end of what
 * was written to dst (room: 6 bytes for each input byte). */
static char *copy_repaired(char *dst, const char *src, size_t len, bool escape)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)src, *end = p + len;

	while (p < end) {
		unsigned char c = *p;

		if (c >= 0x80) {
			size_t n = mimo_utf8_seq_len(p, end);

			if (n == 0) {
				memcpy(dst, k_fffd, 3);
				dst += 3;
				p++;
			} else {
				memcpy(dst, p, n);
				dst += n;
				p += n;
			}
			continue;
		}
		p++;
		if (!escape || (c >= 0x20 && c != '"' && c != '\\')) {
			*dst++ = (char)c;
			continue;
		}
		*dst++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*dst++ = (char)c;
			break;
		case '\n':
			*dst++ = 'n';
			break;
		case '\r':
			*dst++ = 'r';
			break;
		case '\t':
			*dst++ = 't';
			break;
		default:
			memcpy(dst, "u00", 3);
			dst[3] = hex[c >> 4];
			dst[4] = hex[c & 15];
			dst += 5;
			break;
		}
	}
	return dst;
}

int notify_envelope_build(struct mimo_buf *out, const char *name, size_t name_len,
			  const char *payload, size_t payload_len, unsigned flags,
			  int64_t timestamp)
{
	char ts[32];
	int tn;
	bool has_payload = (flags & NOTIFY_F_PAYLOAD) != 0;
	size_t name_room = flags & NOTIFY_F_NAME_ESCAPE ? 6 * name_len : name_len;
	size_t payload_room = flags & NOTIFY_F_PAYLOAD_UTF8 ? 3 * payload_len : payload_len;
	char *p;

	if (flags & NOTIFY_F_TICKS)
		timestamp = notify_tstamp_to_unix((uint64_t)timestamp);
	tn = snprintf(ts, sizeof(ts), "%lld}", (long long)timestamp);
	if (has_payload) {
		while (payload_len > 0 && is_ws(payload[0])) {
			payload++;
			payload_len--;
		}
		while (payload_len > 0 && is_ws(payload[payload_len - 1]))
			payload_len--;
	}
	/* {"event":"  "  ,"payload":  ,"timestamp":  */
	if (mimo_buf_reserve(out, 10 + name_room + 1 + (has_payload ? 11 + payload_room : 0) + 13 +
					  (size_t)tn) != 0)
		return -ENOMEM;
	p = out->data + out->len;
	memcpy(p, "{\"event\":\"", 10);
	p += 10;
	if (flags & NOTIFY_F_NAME_ESCAPE) {
		p = copy_repaired(p, name, name_len, true);
	} else {
		memcpy(p, name, name_len);
		p += name_len;
	}
	*p++ = '"';
	if (has_payload) {
		memcpy(p, ",\"payload\":", 11);
		p += 11;
		if (flags & NOTIFY_F_PAYLOAD_UTF8) {
			/* Only bytes >= 0x80 change: the JSON around them is untouched. */
			p = copy_repaired(p, payload, payload_len, false);
		} else {
			memcpy(p, payload, payload_len);
			p += payload_len;
		}
	}
	memcpy(p, ",\"timestamp\":", 13);
	p += 13;
	memcpy(p, ts, (size_t)tn);
	p += tn;
	*p = '\0';
	out->len = (size_t)(p - out->data);
	return 0;
}
