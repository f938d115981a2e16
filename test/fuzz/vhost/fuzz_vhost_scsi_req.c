/*
 * virtio-scsi request chains as bytes: the input describes a chain (how many readable and
 * writable segments and their lengths, in its first bytes) over buffers holding the rest.
 * The chain is parsed as a request queue's command, the response and data written where the
 * parser says, and control-queue and event structures copied in and out - nothing may be
 * touched outside the buffers (each an exact-size allocation ASan watches), whatever the
 * lengths and the header say.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "scsi_req.h"
#include "vring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[VHOST_MAX_IOVS], out[VHOST_MAX_IOVS];
	struct virtio_scsi_cmd_resp resp = { .response = VIRTIO_SCSI_S_OK };
	struct virtio_scsi_ctrl_tmf_req tmf;
	struct vscsi_cmd cmd;
	uint32_t out_len = 0, in_len = 0;
	uint16_t cnt, out_cnt;
	size_t pos;
	uint8_t target;
	uint32_t lun;

	if (size < 2)
		return 0;
	cnt = 1 + data[0] % VHOST_MAX_IOVS;
	out_cnt = data[1] % (cnt + 1);
	pos = 2;
	for (uint16_t i = 0; i < cnt; i++) {
		/* Lengths from the input (0..1023), contents from what follows. */
		size_t len = pos + 1 < size ? ((size_t)data[pos] << 8 | data[pos + 1]) % 1024 : 0;
		uint8_t *b = malloc(len ? len : 1);

		pos += 2;
		for (size_t k = 0; k < len; k++)
			b[k] = pos + k < size ? data[pos + k] : 0;
		iov[i].iov_base = b;
		iov[i].iov_len = len;
		if (i < out_cnt)
			out_len += (uint32_t)len;
		else
			in_len += (uint32_t)len;
	}
	if (vscsi_parse_cmd(iov, cnt, out_cnt, out_len, in_len, out, &cmd) == VSCSI_PARSE_OK) {
		uint8_t sink[64];

		/* As the device does: data moved to or from the buffers, then the response. */
		for (uint16_t i = 0; i < cmd.datacnt; i++) {
			if (cmd.dir == VSCSI_DIR_FROM_DEV)
				memset(cmd.data[i].iov_base, 0xa5, cmd.data[i].iov_len);
			else if (cmd.data[i].iov_len > 0)
				sink[0] =
					((uint8_t *)cmd.data[i].iov_base)[cmd.data[i].iov_len - 1];
		}
		(void)sink;
		vscsi_iov_copy_in(iov + out_cnt, cnt - out_cnt, 0, &resp, sizeof(resp));
	}
	if (vscsi_iov_copy_out(iov, out_cnt, 0, &tmf, sizeof(tmf)) == sizeof(tmf))
		(void)vscsi_decode_lun(tmf.lun, &target, &lun);
	for (uint16_t i = 0; i < cnt; i++)
		free(iov[i].iov_base);
	return 0;
}
