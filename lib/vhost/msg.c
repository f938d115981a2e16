/* vhost-user message shapes (msg.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "inflight.h"
#include "msg.h"

static const char *const g_names[VHOST_USER_MAX_REQUEST] = {
	[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	[VHOST_USER_SET_OWNER] = "SET_OWNER",
	[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
	[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
	[VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
	[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
	[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VHOST_USER_SET_SLAVE_REQ_FD] = "SET_BACKEND_REQ_FD",
	[VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
	[VHOST_USER_GET_CONFIG] = "GET_CONFIG",
	[VHOST_USER_SET_CONFIG] = "SET_CONFIG",
	[VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
	[VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
	[VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
};

const char *vhost_msg_name(uint32_t request)
{
	if (request < VHOST_USER_MAX_REQUEST && g_names[request] != NULL)
		return g_names[request];
	return "unknown request";
}

bool vhost_msg_has_reply(uint32_t request)
{
	switch (request) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_GET_INFLIGHT_FD:
		return true;
	default:
		return false;
	}
}

int vhost_msg_check_hdr(const struct vhost_user_hdr *h, const char **why)
{
	if ((h->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		*why = "protocol version is not 1";
		return -EPROTO;
	}
	if (h->flags & VHOST_USER_REPLY_MASK) {
		*why = "a reply where a request was expected";
		return -EPROTO;
	}
	if (h->size > VHOST_USER_MAX_PAYLOAD) {
		*why = "payload larger than any request has";
		return -EPROTO;
	}
	return 0;
}

/* Bit 8 of a vring fd message says "no descriptor"; bits above it are reserved. */
static uint32_t vring_fd_count(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return (v & VHOST_USER_VRING_NOFD) ? 0 : 1;
}

int vhost_msg_check(const struct vhost_user_hdr *h, const uint8_t *p, uint32_t nfds,
		    const char **why)
{
	uint32_t size = h->size, want = 0, fds = 0;
	int rc = vhost_msg_check_hdr(h, why);

	if (rc != 0)
		return rc;
	switch (h->request) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_RESET_DEVICE:
		want = 0;
		break;
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		want = 8;
		break;
	case VHOST_USER_SET_SLAVE_REQ_FD:
		fds = 1;
		break;
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		want = sizeof(struct vhost_vring_state);
		break;
	case VHOST_USER_SET_VRING_ADDR:
		want = sizeof(struct vhost_vring_addr);
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		want = 8;
		if (size == 8)
			fds = vring_fd_count(p);
		break;
	case VHOST_USER_GET_INFLIGHT_FD:
		want = sizeof(struct vhost_user_inflight);
		break;
	case VHOST_USER_SET_INFLIGHT_FD:
		want = sizeof(struct vhost_user_inflight);
		fds = 1;
		break;
	case VHOST_USER_SET_MEM_TABLE: {
		uint32_t n;

		if (size < 8) {
			*why = "memory table shorter than its count";
			return -EPROTO;
		}
		memcpy(&n, p, sizeof(n));
		if (n == 0 || n > VHOST_USER_MAX_REGIONS) {
			*why = "memory table with no region or more than 8";
			return -EPROTO;
		}
		want = 8 + n * (uint32_t)sizeof(struct vhost_user_region);
		fds = n;
		break;
	}
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG: {
		uint32_t off, len;

		if (size < VHOST_USER_CONFIG_HDR) {
			*why = "configuration access shorter than its header";
			return -EPROTO;
		}
		memcpy(&off, p, 4);
		memcpy(&len, p + 4, 4);
		if (len > VHOST_USER_MAX_CONFIG || off > VHOST_USER_MAX_CONFIG ||
		    off + len > VHOST_USER_MAX_CONFIG) {
			*why = "configuration access beyond 256 bytes";
			return -EPROTO;
		}
		want = VHOST_USER_CONFIG_HDR + len;
		break;
	}
	default:
		/* Not served: refused whatever it carries (its descriptors are closed). */
		return 0;
	}
	if (size != want) {
		*why = "payload size does not match the request";
		return -EPROTO;
	}
	if (nfds != fds) {
		*why = nfds > fds ? "unexpected file descriptors" : "file descriptors missing";
		return -EPROTO;
	}
	return 0;
}
