/*
 * BlueKing GSE's agent IPC frames (bk-gse-sdk go/internal/agent/protocol_message.go): a
 * 28-byte big-endian header, then either a JSON body (keepalives) or a JSON meta followed by
 * raw content (dispatch, respond), their lengths in reserved0 and reserved1.
 */
#include <errno.h>
#include <string.h>

#include "le.h"
#include "mimo/wire.h"

long mimo_gse_frame_check(const void *buf, size_t len, uint32_t max_frame, struct mimo_gse_hdr *hdr)
{
	const uint8_t *p = buf;

	if (len < MIMO_GSE_HDR_LEN)
		return 0;
	hdr->magic = ld_be32(p);
	hdr->type = ld_be16(p + 4);
	hdr->version = ld_be16(p + 6);
	hdr->seq = ld_be64(p + 8);
	hdr->len = ld_be32(p + 16);
	hdr->reserved0 = ld_be32(p + 20);
	hdr->reserved1 = ld_be32(p + 24);
	if (hdr->magic != MIMO_GSE_MAGIC)
		return -EPROTO;
	if (hdr->len < MIMO_GSE_HDR_LEN)
		return -EBADMSG;
	if (hdr->len > max_frame)
		return -EMSGSIZE;
	return len >= hdr->len ? (long)hdr->len : 0;
}

void mimo_gse_put_hdr(void *out, const struct mimo_gse_hdr *hdr)
{
	uint8_t *p = out;

	st_be32(p, hdr->magic);
	st_be16(p + 4, hdr->type);
	st_be16(p + 6, hdr->version);
	st_be64(p + 8, hdr->seq);
	st_be32(p + 16, hdr->len);
	st_be32(p + 20, hdr->reserved0);
	st_be32(p + 24, hdr->reserved1);
}

int mimo_gse_split(const struct mimo_gse_hdr *hdr, const void *body, size_t len, const char **meta,
		   size_t *meta_len, const void **content, size_t *content_len)
{
	/* The SDK's own check: infoLen != 0, infoLen + dataLen == body, + header == length. */
	if (hdr->reserved0 == 0 || (uint64_t)hdr->reserved0 + hdr->reserved1 != len ||
	    (uint64_t)len + MIMO_GSE_HDR_LEN != hdr->len)
		return -EBADMSG;
	*meta = body;
	*meta_len = hdr->reserved0;
	*content = (const uint8_t *)body + hdr->reserved0;
	*content_len = hdr->reserved1;
	return 0;
}

size_t mimo_gse_size(size_t meta_len, size_t content_len)
{
	return MIMO_GSE_HDR_LEN + meta_len + content_len;
}

size_t mimo_gse_encode(void *out, uint16_t type, uint64_t seq, const void *meta, size_t meta_len,
		       const void *content, size_t content_len, bool lengths_in_reserved)
{
	struct mimo_gse_hdr h = {
		.magic = MIMO_GSE_MAGIC,
		.type = type,
		.version = MIMO_GSE_VERSION,
		.seq = seq,
		.len = (uint32_t)mimo_gse_size(meta_len, content_len),
		.reserved0 = lengths_in_reserved ? (uint32_t)meta_len : 0,
		.reserved1 = lengths_in_reserved ? (uint32_t)content_len : 0,
	};
	uint8_t *p = out;

	mimo_gse_put_hdr(p, &h);
	if (meta_len > 0)
		memcpy(p + MIMO_GSE_HDR_LEN, meta, meta_len);
	if (content_len > 0)
		memcpy(p + MIMO_GSE_HDR_LEN + meta_len, content, content_len);
	return h.len;
}
