/*
 * vhost-user messages as they arrive: the header's checks (version, direction, size) and each
 * request's payload size and descriptor count. Pure functions, fuzzed (test/fuzz/vhost).
 */
#ifndef MIMO_VHOST_MSG_H
#define MIMO_VHOST_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "vhost_user.h"

/* 0 if a header announcing this message may be read further; -EPROTO (why set) if not. */
int vhost_msg_check_hdr(const struct vhost_user_hdr *h, const char **why);
/*
 * 0 if a whole message (header, size bytes of payload, nfds descriptors) has the shape its
 * request needs; -EPROTO (why set) if not. Requests mimo does not serve pass if their shape
 * is harmless (they are then refused, not dropped).
 */
int vhost_msg_check(const struct vhost_user_hdr *h, const uint8_t *payload, uint32_t nfds,
		    const char **why);
/* Whether a request has a reply of its own (so REPLY_ACK does not add one). */
bool vhost_msg_has_reply(uint32_t request);
const char *vhost_msg_name(uint32_t request);

#endif
