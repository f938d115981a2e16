/*
 * Fuzz mimo's native frames. The input is a byte stream as a peer would send it: frames are
 * cut with mimo_wire_frame_check and each body goes through the decoder of its code (the
 * agent's view for requests, the plugin's for notifies and replies). Properties: no decoder
 * reads outside its body; whatever decodes re-encodes to the very same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/wire.h"

static void same(const uint8_t *frame, size_t len, const uint8_t *again, size_t n)
{
	if (n != len || memcmp(frame, again, len) != 0)
		abort();
}

static void one(const struct mimo_wire_hdr *h, const uint8_t *f, size_t len)
{
	const uint8_t *b = f + MIMO_WIRE_HDR_LEN;
	size_t bl = len - MIMO_WIRE_HDR_LEN;
	uint8_t *out = malloc(len + 64);
	struct mimo_wire_hello hello;
	struct mimo_wire_welcome w;
	struct mimo_wire_send s;
	struct mimo_wire_dispatch d;
	struct mimo_wire_cache c;
	struct mimo_wire_notify_reply r;
	uint64_t seq;

	if (out == NULL)
		return;
	if (h->unique == 0) {
		if (h->code == MIMO_WIRE_NOTIFY_DISPATCH &&
		    mimo_wire_decode_dispatch(b, bl, &d) == 0)
			same(f, len, out, mimo_wire_encode_dispatch(out, &d));
		else if (mimo_wire_decode_cache(h->code, b, bl, &c) == 0)
			same(f, len, out, mimo_wire_encode_cache(out, &c));
	} else {
		switch (h->code) {
		case MIMO_WIRE_HELLO:
			if (mimo_wire_decode_hello(b, bl, &hello) == 0)
				same(f, len, out, mimo_wire_encode_hello(out, h->unique, &hello));
			break;
		case MIMO_WIRE_SEND:
			if (mimo_wire_decode_send(b, bl, &s) == 0)
				same(f, len, out, mimo_wire_encode_send(out, h->unique, &s));
			break;
		case MIMO_WIRE_ACK:
			if (mimo_wire_decode_ack(b, bl, &seq) == 0)
				same(f, len, out, mimo_wire_encode_ack(out, h->unique, seq));
			break;
		case MIMO_WIRE_NOTIFY_REPLY:
			if (mimo_wire_decode_notify_reply(b, bl, &r) == 0) {
				r.notify_unique = h->unique;
				same(f, len, out, mimo_wire_encode_notify_reply(out, &r));
			}
			break;
		case 0:
			/* A reply: the plugin decodes a welcome from any successful reply body. */
			if (bl > 0 && mimo_wire_decode_welcome(b, bl, &w) == 0)
				same(f, len, out, mimo_wire_encode_welcome(out, h->unique, &w));
			break;
		}
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct mimo_wire_hdr h;
		long n = mimo_wire_frame_check(data + off, size - off, 1 << 20, &h);

		if (n <= 0)
			break;
		/* A private copy: decoders must never read past the frame. */
		{
			uint8_t *f = malloc((size_t)n);

			memcpy(f, data + off, (size_t)n);
			one(&h, f, (size_t)n);
			free(f);
		}
		off += (size_t)n;
	}
	return 0;
}
