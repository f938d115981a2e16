#include "envelope.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const bool name_ok[256] = {
	['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true, ['_'] = true,
	['.'] = true,	      [':'] = true,	    ['-'] = true,
};

int notify_check_name(const char *name, size_t *len)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return -EINVAL;
	for (i = 0; name[i] != '\0'; i++) {
		if (i == NOTIFY_NAME_MAX)
			return -ENAMETOOLONG;
		if (!name_ok[(unsigned char)name[i]])
			return -EINVAL;
	}
	*len = i;
	return 0;
}

static inline bool is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int notify_envelope_build(struct mimo_buf *out, const char *name, size_t name_len,
			  const char *payload, size_t payload_len, int64_t timestamp)
{
	char ts[32];
	int tn = snprintf(ts, sizeof(ts), "%lld}", (long long)timestamp);
	char *p;

	if (payload != NULL) {
		while (payload_len > 0 && is_ws(payload[0])) {
			payload++;
			payload_len--;
		}
		while (payload_len > 0 && is_ws(payload[payload_len - 1]))
			payload_len--;
	}
	/* {"event":"  "  ,"payload":  ,"timestamp":  */
	if (mimo_buf_reserve(out, 10 + name_len + 1 + (payload ? 11 + payload_len : 0) + 13 +
					  (size_t)tn) != 0)
		return -ENOMEM;
	p = out->data + out->len;
	memcpy(p, "{\"event\":\"", 10);
	p += 10;
	memcpy(p, name, name_len);
	p += name_len;
	*p++ = '"';
	if (payload != NULL) {
		memcpy(p, ",\"payload\":", 11);
		p += 11;
		memcpy(p, payload, payload_len);
		p += payload_len;
	}
	memcpy(p, ",\"timestamp\":", 13);
	p += 13;
	memcpy(p, ts, (size_t)tn);
	p += tn;
	*p = '\0';
	out->len = (size_t)(p - out->data);
	return 0;
}
