/*
 * The up-queue's record format (docs/protocol.md): pure encoding and decoding, fuzzed.
 */
#include "upq_internal.h"

#include <string.h>
#include <errno.h>

#include "crc32c.h"
#include "le.h"

size_t upq_rec_size(const struct up_rec *r)
{
	return UPQ_REC_HDR + r->plugin_len + r->msg_id_len + r->content_len;
}

void upq_rec_encode(void *out, const struct up_rec *r)
{
	uint8_t *p = out;
	size_t n = upq_rec_size(r);

	st_le32(p, UPQ_REC_MAGIC);
	st_le32(p + 4, (uint32_t)n);
	st_le32(p + 12, 0);
	st_le64(p + 16, r->key_hi);
	st_le64(p + 24, r->key_lo);
	st_le64(p + 32, r->slot_id);
	st_le64(p + 40, (uint64_t)r->accepted_ms);
	st_le64(p + 48, (uint64_t)r->expires_ms);
	st_le16(p + 56, (uint16_t)r->plugin_len);
	st_le16(p + 58, (uint16_t)r->msg_id_len);
	st_le32(p + 60, (uint32_t)r->content_len);
	memcpy(p + UPQ_REC_HDR, r->plugin, r->plugin_len);
	memcpy(p + UPQ_REC_HDR + r->plugin_len, r->msg_id, r->msg_id_len);
	if (r->content_len > 0)
		memcpy(p + UPQ_REC_HDR + r->plugin_len + r->msg_id_len, r->content, r->content_len);
	st_le32(p + 8, mimo_crc32c(p + 12, n - 12));
}

long upq_rec_decode(const void *buf, size_t len, struct up_rec *r)
{
	const uint8_t *p = buf;
	uint32_t n;

	if (len < UPQ_REC_HDR)
		return 0;
	n = ld_le32(p + 4);
	if (ld_le32(p) != UPQ_REC_MAGIC || n < UPQ_REC_HDR || n > UPQ_REC_MAX)
		return -EBADMSG;
	if (len < n)
		return 0;
	r->plugin_len = ld_le16(p + 56);
	r->msg_id_len = ld_le16(p + 58);
	r->content_len = ld_le32(p + 60);
	if ((uint64_t)UPQ_REC_HDR + r->plugin_len + r->msg_id_len + r->content_len != n ||
	    ld_le32(p + 12) != 0 || mimo_crc32c(p + 12, n - 12) != ld_le32(p + 8))
		return -EBADMSG;
	r->key_hi = ld_le64(p + 16);
	r->key_lo = ld_le64(p + 24);
	r->slot_id = ld_le64(p + 32);
	r->accepted_ms = (int64_t)ld_le64(p + 40);
	r->expires_ms = (int64_t)ld_le64(p + 48);
	r->plugin = (const char *)p + UPQ_REC_HDR;
	r->msg_id = r->plugin + r->plugin_len;
	r->content = r->msg_id + r->msg_id_len;
	return (long)n;
}
