/*
 * vhost-user messages as a front-end may send them: a stream of headers and payloads, each
 * checked as the session does (header first, then the whole message with a descriptor count
 * taken from the input); memory tables that pass are built, and ring addresses translated
 * against them, as SET_MEM_TABLE and SET_VRING_ADDR do.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "memory.h"
#include "msg.h"
#include "vring.h"

static uint8_t g_buf[8][64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhost_mem *mem = NULL;

	while (size >= VHOST_USER_HDR_SIZE + 1) {
		struct vhost_user_hdr h;
		uint32_t nfds = data[0] % 10;
		const char *why;

		memcpy(&h, data + 1, sizeof(h));
		data += 1 + VHOST_USER_HDR_SIZE;
		size -= 1 + VHOST_USER_HDR_SIZE;
		if (vhost_msg_check_hdr(&h, &why) != 0 || h.size > size)
			break;
		(void)vhost_msg_name(h.request);
		(void)vhost_msg_has_reply(h.request);
		if (vhost_msg_check(&h, data, nfds, &why) == 0) {
			if (h.request == VHOST_USER_SET_MEM_TABLE) {
				struct vhost_user_memory t;
				uint8_t *bufs[VHOST_USER_MAX_REGIONS];

				memset(&t, 0, sizeof(t));
				memcpy(&t, data, h.size);
				for (int i = 0; i < 8; i++)
					bufs[i] = g_buf[i];
				vhost_mem_unmap(mem);
				mem = NULL;
				(void)vhost_mem_from_buffers(&t, bufs, &mem);
			} else if (h.request == VHOST_USER_SET_VRING_ADDR && mem != NULL) {
				struct vhost_vring_addr a;

				memcpy(&a, data, sizeof(a));
				(void)vhost_uva_to_host(mem, a.desc_user_addr,
							vring_desc_bytes(256));
				(void)vhost_uva_to_host(mem, a.used_user_addr,
							vring_used_bytes(256));
			}
		}
		data += h.size;
		size -= h.size;
	}
	vhost_mem_unmap(mem); /* built over buffers: only the table is freed */
	return 0;
}
