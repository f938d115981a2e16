#include "frame.h"

#include <errno.h>
#include <string.h>

enum {
	KIND_NONE,	/* leading whitespace so far */
	KIND_CONTAINER, /* { or [ */
	KIND_STRING,	/* a bare string */
	KIND_SCALAR,	/* a bare number or literal */
};

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

static ssize_t bad(struct jsonrpc_framer *f, size_t at)
{
	f->start = at;
	f->pos = at;
	return -EBADMSG;
}

/*
 * Inside a string: the offset just past its closing quote, or len when it goes on. memchr
 * finds the next quote (long strings are most of a large request); the quote is escaped when
 * an odd number of backslashes runs up to it.
 */
static size_t string_end(struct jsonrpc_framer *f, const char *buf, size_t i, size_t len)
{
	while (i < len) {
		const char *q;
		size_t stop, k;

		if (f->escape) {
			f->escape = false; /* the byte after a backslash ends nothing */
			i++;
			continue;
		}
		q = memchr(buf + i, '"', len - i);
		stop = q != NULL ? (size_t)(q - buf) : len;
		for (k = stop; k > i && buf[k - 1] == '\\';)
			k--;
		if (q == NULL) {
			f->escape = ((stop - k) & 1) != 0;
			return len;
		}
		i = stop + 1;
		if (((stop - k) & 1) == 0) {
			f->in_string = false;
			return i;
		}
	}
	return len;
}

ssize_t jsonrpc_framer_scan(struct jsonrpc_framer *f, const char *buf, size_t len)
{
	size_t i = f->pos;

	if (f->kind == KIND_NONE) {
		while (i < len && is_ws(buf[i]))
			i++;
		f->start = i;
		f->pos = i;
		if (i == len)
			return 0;
		switch (buf[i]) {
		case '{':
		case '[':
			f->kind = KIND_CONTAINER;
			break;
		case '"':
			f->kind = KIND_STRING;
			f->in_string = true;
			i++;
			break;
		default:
			if (!is_scalar_char(buf[i]))
				return bad(f, i);
			f->kind = KIND_SCALAR;
			break;
		}
	}
	switch (f->kind) {
	case KIND_STRING:
		i = string_end(f, buf, i, len);
		f->pos = i;
		return f->in_string ? 0 : (ssize_t)i;
	case KIND_SCALAR:
		/* It ends at the first byte that cannot continue it; at the end of the buffer
		 * more digits may still come. */
		while (i < len && is_scalar_char(buf[i]))
			i++;
		f->pos = i;
		return i < len ? (ssize_t)i : 0;
	default:
		break;
	}
	while (i < len) {
		char c;

		if (f->in_string) {
			i = string_end(f, buf, i, len);
			continue;
		}
		c = buf[i];
		if (c == '"') {
			f->in_string = true;
		} else if (c == '{' || c == '[') {
			if (++f->depth > JSONRPC_FRAME_MAX_DEPTH)
				return bad(f, i);
		} else if (c == '}' || c == ']') {
			if (f->depth == 0)
				return bad(f, i);
			if (--f->depth == 0) {
				f->pos = i + 1;
				return (ssize_t)(i + 1);
			}
		}
		i++;
	}
	f->pos = i;
	return 0;
}

ssize_t jsonrpc_frame(const char *buf, size_t len, size_t *start)
{
	struct jsonrpc_framer f = { 0 };
	ssize_t rc = jsonrpc_framer_scan(&f, buf, len);

	*start = f.start;
	return rc;
}
