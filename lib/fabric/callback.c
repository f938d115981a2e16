/*
 * The body of a callback, written directly into a buffer: at 20,000 and more messages a
 * second per slot, building it through jansson cost a third of the delivery thread's time.
 * The fuzz target checks it against jansson's reading of the same bytes.
 */
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "callback.h"

/* Bytes of a valid UTF-8 sequence starting at p (at most n available), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	uint32_t cp;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

int fab_json_append_string(struct mimo_buf *b, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = data, *end = p + len;
	int rc;

	/* Worst case: every byte becomes \u00XX (6) or U+FFFD (3). */
	rc = mimo_buf_reserve(b, len * 6 + 2);
	if (rc != 0)
		return rc;
	b->data[b->len++] = '"';
	while (p < end) {
		const uint8_t *run = p;
		size_t n;

		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		memcpy(b->data + b->len, run, (size_t)(p - run));
		b->len += (size_t)(p - run);
		if (p == end)
			break;
		if (*p == '"' || *p == '\\') {
			b->data[b->len++] = '\\';
			b->data[b->len++] = (char)*p++;
		} else if (*p < 0x20) {
			memcpy(b->data + b->len, "\\u00", 4);
			b->data[b->len + 4] = hex[*p >> 4];
			b->data[b->len + 5] = hex[*p & 0xf];
			b->len += 6;
			p++;
		} else if ((n = utf8_len(p, (size_t)(end - p))) > 0) {
			memcpy(b->data + b->len, p, n);
			b->len += n;
			p += n;
		} else {
			/* As Go's encoding/json writes string(bytes): U+FFFD per bad byte. */
			memcpy(b->data + b->len, "\xef\xbf\xbd", 3);
			b->len += 3;
			p++;
		}
	}
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
	return 0;
}

int fab_callback_json(struct mimo_buf *b, const struct fab_callback *m)
{
	int rc;

	mimo_buf_reset(b);
	rc = mimo_buf_reserve(b, m->content_len * 3 + m->msg_id_len * 6 + 512);
	if (rc != 0)
		return rc;
	/* GSE's shape first, then what GSE lacked: exact bytes and where it came from. */
	mimo_buf_append_str(b, "{\"message_id\":");
	fab_json_append_string(b, m->msg_id, m->msg_id_len);
	mimo_buf_append_str(b, ",\"bk_agent_id\":");
	fab_json_append_string(b, m->agent_id, strlen(m->agent_id));
	mimo_buf_append_str(b, ",\"content\":");
	fab_json_append_string(b, m->content, m->content_len);
	mimo_buf_append_str(b, ",\"content_base64\":\"");
	rc = mimo_buf_reserve(b, mimo_base64_encoded_size(m->content_len) + 128);
	if (rc != 0)
		return rc;
	b->len += mimo_base64_encode(m->content, m->content_len, b->data + b->len);
	mimo_buf_append_str(b, "\",\"plugin\":");
	fab_json_append_string(b, m->plugin, m->plugin_len);
	return mimo_buf_printf(b, ",\"slot_id\":%llu,\"timestamp\":%lld}",
			       (unsigned long long)m->slot_id, (long long)m->timestamp);
}
