/*
 * Parsing virtio-scsi request chains (scsi_req.h). Everything here reads memory the guest
 * writes at any time, so each field is copied out once and only the copy is looked at.
 */
#include <string.h>

#include "scsi_req.h"

size_t vscsi_iov_copy_out(const struct iovec *iov, uint32_t cnt, size_t off, void *dst, size_t len)
{
	size_t done = 0;

	for (uint32_t i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off < len - done ? iov[i].iov_len - off : len - done;
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t vscsi_iov_copy_in(const struct iovec *iov, uint32_t cnt, size_t off, const void *src,
			 size_t len)
{
	size_t done = 0;

	for (uint32_t i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off < len - done ? iov[i].iov_len - off : len - done;
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)src + done, n);
		done += n;
		off = 0;
	}
	return done;
}

bool vscsi_decode_lun(const uint8_t lun[8], uint8_t *target, uint32_t *lun_id)
{
	*target = lun[1];
	/* Linux puts 0x40 (flat addressing) in lun[2]: the mask takes it off. */
	*lun_id = ((uint32_t)lun[2] << 8 | lun[3]) & 0x3fff;
	/* A second level of addressing names no LUN of ours: past the range, the SCSI layer
	 * answers LOGICAL UNIT NOT SUPPORTED (and INQUIRY with "no LUN here"). */
	if (lun[4] | lun[5] | lun[6] | lun[7])
		*lun_id = 0x4000;
	return lun[0] == 1 && lun[1] < VSCSI_MAX_TARGETS;
}

/* Copy iov[0..cnt) into data without its first skip bytes (and empty entries). */
static uint16_t cut(const struct iovec *iov, uint16_t cnt, size_t skip, struct iovec *data)
{
	uint16_t n = 0;

	for (uint16_t i = 0; i < cnt; i++) {
		size_t len = iov[i].iov_len;
		uint8_t *base = iov[i].iov_base;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		base += skip;
		len -= skip;
		skip = 0;
		data[n].iov_base = base;
		data[n].iov_len = len;
		n++;
	}
	return n;
}

enum vscsi_parse vscsi_parse_cmd(const struct iovec *iov, uint16_t iovcnt, uint16_t out_cnt,
				 uint32_t out_len, uint32_t in_len, struct iovec *data,
				 struct vscsi_cmd *cmd)
{
	const uint32_t hdr = sizeof(struct virtio_scsi_cmd_req);
	const uint32_t resp = sizeof(struct virtio_scsi_cmd_resp);
	uint32_t data_out, data_in;

	memset(cmd, 0, sizeof(*cmd));
	cmd->data = data;
	if (in_len < resp || out_cnt > iovcnt)
		return VSCSI_PARSE_NO_RESP;
	if (out_len < hdr ||
	    vscsi_iov_copy_out(iov, out_cnt, 0, &cmd->hdr, sizeof(cmd->hdr)) != sizeof(cmd->hdr))
		return VSCSI_PARSE_BAD_HDR;
	cmd->addr_ok = vscsi_decode_lun(cmd->hdr.lun, &cmd->target, &cmd->lun);
	data_out = out_len - hdr;
	data_in = in_len - resp;
	if (data_out != 0 && data_in != 0)
		return VSCSI_PARSE_BIDI;
	if (data_out != 0) {
		cmd->dir = VSCSI_DIR_TO_DEV;
		cmd->datacnt = cut(iov, out_cnt, hdr, data);
		cmd->data_len = data_out;
	} else if (data_in != 0) {
		cmd->dir = VSCSI_DIR_FROM_DEV;
		cmd->datacnt = cut(iov + out_cnt, iovcnt - out_cnt, resp, data);
		cmd->data_len = data_in;
	}
	return VSCSI_PARSE_OK;
}
