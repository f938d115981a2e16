/*
 * mimo's native frames (see mimo/wire.h and docs/protocol.md). Every length read from the
 * wire is checked against the bytes actually present before anything points into them.
 */
#include <errno.h>
#include <string.h>

#include "le.h"
#include "mimo/wire.h"

long mimo_wire_frame_check(const void *buf, size_t len, uint32_t max_frame,
			   struct mimo_wire_hdr *hdr)
{
	const uint8_t *p = buf;

	if (len < MIMO_WIRE_HDR_LEN)
		return 0;
	hdr->len = ld_le32(p);
	hdr->code = (int32_t)ld_le32(p + 4);
	hdr->unique = ld_le64(p + 8);
	if (hdr->len < MIMO_WIRE_HDR_LEN)
		return -EBADMSG;
	if (hdr->len > max_frame)
		return -EMSGSIZE;
	return len >= hdr->len ? (long)hdr->len : 0;
}

void mimo_wire_put_hdr(void *out, uint32_t len, int32_t code, uint64_t unique)
{
	uint8_t *p = out;

	st_le32(p, len);
	st_le32(p + 4, (uint32_t)code);
	st_le64(p + 8, unique);
}

bool mimo_wire_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > MIMO_WIRE_MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	/* "." and ".." would read as paths in URLs and file names. */
	return !(s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')));
}

/* UTF-8 without overlong forms or surrogates, and no control characters: message ids travel
 * in JSON bodies, headers of logs and NATS payloads. */
bool mimo_wire_msg_id_valid(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;

	if (len == 0 || len > MIMO_WIRE_MAX_MSG_ID)
		return false;
	while (p < end) {
		uint8_t c = *p;
		uint32_t cp;
		int n;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (end - p <= n)
			return false;
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
			return false;
		p += n + 1;
	}
	return true;
}

/* Keys name cache entries, as FUSE's nodeids name inodes: any bytes but NUL (the SDK hands
 * them to the application as C strings); a '/' travels escaped in URLs. */
bool mimo_wire_key_valid(const char *s, size_t len)
{
	if (len == 0 || len > MIMO_WIRE_MAX_KEY)
		return false;
	return memchr(s, '\0', len) == NULL;
}

/* --- HELLO and its reply ------------------------------------------------------------------ */

#define HELLO_FIXED   16
#define WELCOME_FIXED 32

int mimo_wire_decode_hello(const void *body, size_t len, struct mimo_wire_hello *out)
{
	const uint8_t *p = body;

	if (len < HELLO_FIXED)
		return -EBADMSG;
	out->proto = ld_le32(p);
	out->pid = ld_le32(p + 4);
	out->name_len = ld_le16(p + 8);
	out->version_len = ld_le16(p + 10);
	out->flags = ld_le32(p + 12);
	if (len != HELLO_FIXED + out->name_len + out->version_len)
		return -EBADMSG;
	out->name = (const char *)p + HELLO_FIXED;
	out->version = out->name + out->name_len;
	if (!mimo_wire_name_valid(out->name, out->name_len) ||
	    out->version_len > MIMO_WIRE_MAX_VERSION ||
	    (out->version_len > 0 && !mimo_wire_msg_id_valid(out->version, out->version_len)))
		return -EBADMSG;
	return 0;
}

size_t mimo_wire_hello_size(size_t name_len, size_t version_len)
{
	return MIMO_WIRE_HDR_LEN + HELLO_FIXED + name_len + version_len;
}

size_t mimo_wire_encode_hello(void *out, uint64_t unique, const struct mimo_wire_hello *h)
{
	uint8_t *p = out;
	size_t n = mimo_wire_hello_size(h->name_len, h->version_len);

	mimo_wire_put_hdr(p, (uint32_t)n, MIMO_WIRE_HELLO, unique);
	p += MIMO_WIRE_HDR_LEN;
	st_le32(p, h->proto);
	st_le32(p + 4, h->pid);
	st_le16(p + 8, (uint16_t)h->name_len);
	st_le16(p + 10, (uint16_t)h->version_len);
	st_le32(p + 12, h->flags);
	memcpy(p + HELLO_FIXED, h->name, h->name_len);
	memcpy(p + HELLO_FIXED + h->name_len, h->version, h->version_len);
	return n;
}

int mimo_wire_decode_welcome(const void *body, size_t len, struct mimo_wire_welcome *out)
{
	const uint8_t *p = body;

	if (len < WELCOME_FIXED)
		return -EBADMSG;
	out->proto = ld_le32(p);
	out->max_frame = ld_le32(p + 4);
	out->epoch = ld_le64(p + 8);
	out->slot_id = ld_le64(p + 16);
	out->keepalive_ms = ld_le32(p + 24);
	out->agent_id_len = ld_le16(p + 28);
	out->version_len = ld_le16(p + 30);
	if (len != WELCOME_FIXED + out->agent_id_len + out->version_len)
		return -EBADMSG;
	out->agent_id = (const char *)p + WELCOME_FIXED;
	out->version = out->agent_id + out->agent_id_len;
	if (out->agent_id_len == 0 || out->agent_id_len > MIMO_WIRE_MAX_AGENT_ID ||
	    !mimo_wire_msg_id_valid(out->agent_id, out->agent_id_len) ||
	    out->version_len > MIMO_WIRE_MAX_VERSION ||
	    (out->version_len > 0 && !mimo_wire_msg_id_valid(out->version, out->version_len)))
		return -EBADMSG;
	return 0;
}

size_t mimo_wire_welcome_size(size_t agent_id_len, size_t version_len)
{
	return MIMO_WIRE_HDR_LEN + WELCOME_FIXED + agent_id_len + version_len;
}

size_t mimo_wire_encode_welcome(void *out, uint64_t unique, const struct mimo_wire_welcome *w)
{
	uint8_t *p = out;
	size_t n = mimo_wire_welcome_size(w->agent_id_len, w->version_len);

	mimo_wire_put_hdr(p, (uint32_t)n, 0, unique);
	p += MIMO_WIRE_HDR_LEN;
	st_le32(p, w->proto);
	st_le32(p + 4, w->max_frame);
	st_le64(p + 8, w->epoch);
	st_le64(p + 16, w->slot_id);
	st_le32(p + 24, w->keepalive_ms);
	st_le16(p + 28, (uint16_t)w->agent_id_len);
	st_le16(p + 30, (uint16_t)w->version_len);
	memcpy(p + WELCOME_FIXED, w->agent_id, w->agent_id_len);
	memcpy(p + WELCOME_FIXED + w->agent_id_len, w->version, w->version_len);
	return n;
}

size_t mimo_wire_encode_reply(void *out, uint64_t unique, int32_t error)
{
	mimo_wire_put_hdr(out, MIMO_WIRE_HDR_LEN, error, unique);
	return MIMO_WIRE_HDR_LEN;
}

/* --- SEND, ACK, PING ---------------------------------------------------------------------- */

int mimo_wire_decode_send(const void *body, size_t len, struct mimo_wire_send *out)
{
	const uint8_t *p = body;

	if (len < MIMO_WIRE_SEND_FIXED)
		return -EBADMSG;
	out->key_hi = ld_le64(p);
	out->key_lo = ld_le64(p + 8);
	out->ttl_ms = ld_le32(p + 16);
	out->id_len = ld_le16(p + 20);
	out->flags = ld_le16(p + 22);
	if (out->id_len > len - MIMO_WIRE_SEND_FIXED)
		return -EBADMSG;
	out->id = (const char *)p + MIMO_WIRE_SEND_FIXED;
	out->content = out->id + out->id_len;
	out->content_len = len - MIMO_WIRE_SEND_FIXED - out->id_len;
	if (!mimo_wire_msg_id_valid(out->id, out->id_len) || out->flags != 0)
		return -EBADMSG;
	return 0;
}

size_t mimo_wire_send_size(size_t id_len, size_t content_len)
{
	return MIMO_WIRE_HDR_LEN + MIMO_WIRE_SEND_FIXED + id_len + content_len;
}

size_t mimo_wire_encode_send(void *out, uint64_t unique, const struct mimo_wire_send *s)
{
	uint8_t *p = out;
	size_t n = mimo_wire_send_size(s->id_len, s->content_len);

	mimo_wire_put_hdr(p, (uint32_t)n, MIMO_WIRE_SEND, unique);
	p += MIMO_WIRE_HDR_LEN;
	st_le64(p, s->key_hi);
	st_le64(p + 8, s->key_lo);
	st_le32(p + 16, s->ttl_ms);
	st_le16(p + 20, (uint16_t)s->id_len);
	st_le16(p + 22, s->flags);
	memcpy(p + MIMO_WIRE_SEND_FIXED, s->id, s->id_len);
	if (s->content_len > 0)
		memcpy(p + MIMO_WIRE_SEND_FIXED + s->id_len, s->content, s->content_len);
	return n;
}

int mimo_wire_decode_ack(const void *body, size_t len, uint64_t *seq)
{
	if (len != 8)
		return -EBADMSG;
	*seq = ld_le64(body);
	return 0;
}

size_t mimo_wire_encode_ack(void *out, uint64_t unique, uint64_t seq)
{
	mimo_wire_put_hdr(out, MIMO_WIRE_ACK_SIZE, MIMO_WIRE_ACK, unique);
	st_le64((uint8_t *)out + MIMO_WIRE_HDR_LEN, seq);
	return MIMO_WIRE_ACK_SIZE;
}

size_t mimo_wire_encode_ping(void *out, uint64_t unique)
{
	mimo_wire_put_hdr(out, MIMO_WIRE_PING_SIZE, MIMO_WIRE_PING, unique);
	return MIMO_WIRE_PING_SIZE;
}

/* --- DISPATCH ------------------------------------------------------------------------------ */

int mimo_wire_decode_dispatch(const void *body, size_t len, struct mimo_wire_dispatch *out)
{
	const uint8_t *p = body;

	if (len < MIMO_WIRE_DISPATCH_FIXED)
		return -EBADMSG;
	out->seq = ld_le64(p);
	out->id_len = ld_le16(p + 8);
	out->flags = ld_le16(p + 10);
	if (out->id_len > len - MIMO_WIRE_DISPATCH_FIXED || ld_le32(p + 12) != 0)
		return -EBADMSG;
	out->id = (const char *)p + MIMO_WIRE_DISPATCH_FIXED;
	out->content = out->id + out->id_len;
	out->content_len = len - MIMO_WIRE_DISPATCH_FIXED - out->id_len;
	if (!mimo_wire_msg_id_valid(out->id, out->id_len))
		return -EBADMSG;
	return 0;
}

size_t mimo_wire_dispatch_size(size_t id_len, size_t content_len)
{
	return MIMO_WIRE_HDR_LEN + MIMO_WIRE_DISPATCH_FIXED + id_len + content_len;
}

size_t mimo_wire_encode_dispatch(void *out, const struct mimo_wire_dispatch *d)
{
	uint8_t *p = out;
	size_t n = mimo_wire_dispatch_size(d->id_len, d->content_len);

	mimo_wire_put_hdr(p, (uint32_t)n, MIMO_WIRE_NOTIFY_DISPATCH, 0);
	p += MIMO_WIRE_HDR_LEN;
	st_le64(p, d->seq);
	st_le16(p + 8, (uint16_t)d->id_len);
	st_le16(p + 10, d->flags);
	st_le32(p + 12, 0);
	memcpy(p + MIMO_WIRE_DISPATCH_FIXED, d->id, d->id_len);
	if (d->content_len > 0)
		memcpy(p + MIMO_WIRE_DISPATCH_FIXED + d->id_len, d->content, d->content_len);
	return n;
}

/* --- cache notifications ------------------------------------------------------------------ */

/* Fixed part of each cache notification (before the key). */
static long cache_fixed(int32_t code)
{
	switch (code) {
	case MIMO_WIRE_NOTIFY_STORE:
		return 16;
	case MIMO_WIRE_NOTIFY_RETRIEVE:
		return 24;
	case MIMO_WIRE_NOTIFY_INVAL:
		return 24;
	case MIMO_WIRE_NOTIFY_DELETE:
		return 8;
	case MIMO_WIRE_NOTIFY_POLL:
		return 8;
	default:
		return -EINVAL;
	}
}

int mimo_wire_decode_cache(int32_t code, const void *body, size_t len, struct mimo_wire_cache *out)
{
	const uint8_t *p = body;
	long fixed = cache_fixed(code);
	size_t key_off;

	if (fixed < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->code = code;
	if (len < (size_t)fixed)
		return -EBADMSG;
	switch (code) {
	case MIMO_WIRE_NOTIFY_POLL:
		out->kh = ld_le64(p);
		return len == 8 ? 0 : -EBADMSG;
	case MIMO_WIRE_NOTIFY_STORE:
		out->offset = ld_le64(p);
		out->size = ld_le32(p + 8);
		out->key_len = ld_le16(p + 12);
		if (ld_le16(p + 14) != 0)
			return -EBADMSG;
		break;
	case MIMO_WIRE_NOTIFY_RETRIEVE:
		out->notify_unique = ld_le64(p);
		out->offset = ld_le64(p + 8);
		out->size = ld_le32(p + 16);
		out->key_len = ld_le16(p + 20);
		if (ld_le16(p + 22) != 0 || out->notify_unique == 0)
			return -EBADMSG;
		break;
	case MIMO_WIRE_NOTIFY_INVAL:
		out->offset = ld_le64(p);
		out->size = ld_le64(p + 8);
		out->key_len = ld_le16(p + 16);
		if (ld_le16(p + 18) != 0 || ld_le32(p + 20) != 0)
			return -EBADMSG;
		break;
	case MIMO_WIRE_NOTIFY_DELETE:
		out->key_len = ld_le16(p);
		if (ld_le16(p + 2) != 0 || ld_le32(p + 4) != 0)
			return -EBADMSG;
		break;
	}
	key_off = (size_t)fixed;
	if (out->key_len > len - key_off)
		return -EBADMSG;
	out->key = (const char *)p + key_off;
	if (!mimo_wire_key_valid(out->key, out->key_len))
		return -EBADMSG;
	if (code == MIMO_WIRE_NOTIFY_STORE) {
		if (len - key_off - out->key_len != out->size)
			return -EBADMSG;
		out->data = out->key + out->key_len;
	} else if (len != key_off + out->key_len) {
		return -EBADMSG;
	}
	/* Ranges must not wrap: offset + size is used to size buffers. */
	if (out->offset > UINT64_MAX - out->size)
		return -EBADMSG;
	return 0;
}

size_t mimo_wire_cache_size(const struct mimo_wire_cache *c)
{
	long fixed = cache_fixed(c->code);

	if (fixed < 0)
		return 0;
	return MIMO_WIRE_HDR_LEN + (size_t)fixed + c->key_len +
	       (c->code == MIMO_WIRE_NOTIFY_STORE ? c->size : 0);
}

size_t mimo_wire_encode_cache(void *out, const struct mimo_wire_cache *c)
{
	uint8_t *p = out;
	size_t n = mimo_wire_cache_size(c);
	long fixed = cache_fixed(c->code);

	if (n == 0)
		return 0;
	mimo_wire_put_hdr(p, (uint32_t)n, c->code, 0);
	p += MIMO_WIRE_HDR_LEN;
	memset(p, 0, (size_t)fixed);
	switch (c->code) {
	case MIMO_WIRE_NOTIFY_POLL:
		st_le64(p, c->kh);
		return n;
	case MIMO_WIRE_NOTIFY_STORE:
		st_le64(p, c->offset);
		st_le32(p + 8, (uint32_t)c->size);
		st_le16(p + 12, (uint16_t)c->key_len);
		break;
	case MIMO_WIRE_NOTIFY_RETRIEVE:
		st_le64(p, c->notify_unique);
		st_le64(p + 8, c->offset);
		st_le32(p + 16, (uint32_t)c->size);
		st_le16(p + 20, (uint16_t)c->key_len);
		break;
	case MIMO_WIRE_NOTIFY_INVAL:
		st_le64(p, c->offset);
		st_le64(p + 8, c->size);
		st_le16(p + 16, (uint16_t)c->key_len);
		break;
	case MIMO_WIRE_NOTIFY_DELETE:
		st_le16(p, (uint16_t)c->key_len);
		break;
	}
	memcpy(p + fixed, c->key, c->key_len);
	if (c->code == MIMO_WIRE_NOTIFY_STORE && c->size > 0)
		memcpy(p + fixed + c->key_len, c->data, c->size);
	return n;
}

/* --- NOTIFY_REPLY --------------------------------------------------------------------------- */

int mimo_wire_decode_notify_reply(const void *body, size_t len, struct mimo_wire_notify_reply *out)
{
	const uint8_t *p = body;
	uint32_t size;

	if (len < MIMO_WIRE_NOTIFY_REPLY_FIXED)
		return -EBADMSG;
	out->offset = ld_le64(p);
	size = ld_le32(p + 8);
	out->error = (int32_t)ld_le32(p + 12);
	if (size != len - MIMO_WIRE_NOTIFY_REPLY_FIXED || out->error > 0 ||
	    (out->error != 0 && size != 0))
		return -EBADMSG;
	out->size = size;
	out->data = p + MIMO_WIRE_NOTIFY_REPLY_FIXED;
	return 0;
}

size_t mimo_wire_notify_reply_size(size_t data_len)
{
	return MIMO_WIRE_HDR_LEN + MIMO_WIRE_NOTIFY_REPLY_FIXED + data_len;
}

size_t mimo_wire_encode_notify_reply(void *out, const struct mimo_wire_notify_reply *r)
{
	uint8_t *p = out;
	size_t n = mimo_wire_notify_reply_size(r->size);

	mimo_wire_put_hdr(p, (uint32_t)n, MIMO_WIRE_NOTIFY_REPLY, r->notify_unique);
	p += MIMO_WIRE_HDR_LEN;
	st_le64(p, r->offset);
	st_le32(p + 8, (uint32_t)r->size);
	st_le32(p + 12, (uint32_t)r->error);
	if (r->size > 0)
		memcpy(p + MIMO_WIRE_NOTIFY_REPLY_FIXED, r->data, r->size);
	return n;
}
