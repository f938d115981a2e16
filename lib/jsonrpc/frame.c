#include "frame.h"

#include <errno.h>
#include <stdbool.h>

static bool is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Characters that can continue a bare number or literal (true, false, null, -1.5e+3). */
static bool is_scalar_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '+' || c == '.';
}

ssize_t jsonrpc_frame(const char *buf, size_t len, size_t *start)
{
	size_t i = 0, depth = 0;
	bool in_string = false, escape = false;

	while (i < len && is_ws(buf[i]))
		i++;
	*start = i;
	if (i == len)
		return 0;

	switch (buf[i]) {
	case '{':
	case '[':
		break;
	case '"':
		/* A bare string: complete at its closing quote. */
		for (i++; i < len; i++) {
			if (escape)
				escape = false;
			else if (buf[i] == '\\')
				escape = true;
			else if (buf[i] == '"')
				return (ssize_t)(i + 1);
		}
		return 0;
	default:
		if (!is_scalar_char(buf[i]))
			return -EBADMSG;
		/* A bare number or literal ends at the first byte that cannot continue it;
		 * at the end of the buffer more digits may still come. */
		while (i < len && is_scalar_char(buf[i]))
			i++;
		return i < len ? (ssize_t)i : 0;
	}

	for (; i < len; i++) {
		char c = buf[i];

		if (in_string) {
			if (escape)
				escape = false;
			else if (c == '\\')
				escape = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			break;
		case '{':
		case '[':
			if (++depth > JSONRPC_FRAME_MAX_DEPTH) {
				*start = i;
				return -EBADMSG;
			}
			break;
		case '}':
		case ']':
			if (depth == 0) {
				*start = i;
				return -EBADMSG;
			}
			if (--depth == 0)
				return (ssize_t)(i + 1);
			break;
		default:
			break;
		}
	}
	return 0;
}
