#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mimo_buf_reserve(struct mimo_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1, cap;
	char *p;

	if (need < extra)
		return -ENOMEM;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int mimo_buf_append(struct mimo_buf *b, const void *data, size_t len)
{
	if (mimo_buf_reserve(b, len) != 0)
		return -ENOMEM;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int mimo_buf_append_str(struct mimo_buf *b, const char *s)
{
	return mimo_buf_append(b, s, strlen(s));
}

int mimo_buf_printf(struct mimo_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || mimo_buf_reserve(b, (size_t)n) != 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void mimo_buf_consume(struct mimo_buf *b, size_t n)
{
	if (n >= b->len) {
		mimo_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void mimo_buf_free(struct mimo_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
