/* A growable byte buffer for building request and response bodies. */
#ifndef MIMO_UTIL_BUF_H
#define MIMO_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct mimo_buf {
	char *data; /* NUL-terminated whenever len < cap */
	size_t len;
	size_t cap;
};

/* Make room for extra more bytes (plus a NUL). Returns 0 or -ENOMEM. */
int mimo_buf_reserve(struct mimo_buf *b, size_t extra);
int mimo_buf_append(struct mimo_buf *b, const void *data, size_t len);
int mimo_buf_append_str(struct mimo_buf *b, const char *s);
int mimo_buf_printf(struct mimo_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes, keeping the rest (consumed input). */
void mimo_buf_consume(struct mimo_buf *b, size_t n);

static inline void mimo_buf_reset(struct mimo_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void mimo_buf_free(struct mimo_buf *b);

#endif
