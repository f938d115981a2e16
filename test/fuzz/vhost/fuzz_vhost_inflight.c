/*
 * The inflight region as a front-end hands it back after a restart (SET_INFLIGHT_FD): any
 * bytes, a ring size and a used index from the input. Recovery must stay inside the queue's
 * part (an exact-size allocation ASan watches), list each head once and below the ring's size,
 * oldest first; then taking, giving back and publishing on the result must stay inside too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflight.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t heads[1024], qsize, used;
	uint8_t seen[1024] = { 0 };
	struct vhost_inflight_queue *r;
	uint64_t counter;
	size_t bytes;
	int n;

	if (size < 4)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 11)); /* 1..1024 */
	used = (uint16_t)(data[1] | data[2] << 8);
	bytes = vhost_inflight_queue_bytes(qsize);
	r = calloc(1, bytes);
	if (r == NULL)
		return 0;
	memcpy(r, data + 3, size - 3 < bytes ? size - 3 : bytes);
	if (data[3] & 1) { /* often a region of the right shape, so recovery goes further */
		r->version = VHOST_INFLIGHT_VERSION;
		r->desc_num = qsize;
	}
	n = vhost_inflight_recover(r, qsize, used, heads, &counter);
	if (n > qsize)
		abort();
	for (int i = 0; i < n; i++) {
		if (heads[i] >= qsize || seen[heads[i]]++)
			abort();
		if (i > 0 && r->desc[heads[i - 1]].counter > r->desc[heads[i]].counter)
			abort();
	}
	if (n >= 0) {
		for (int i = 0; i < n; i++) {
			vhost_inflight_take(r, heads[i], counter++);
			vhost_inflight_push(r, heads[i]);
		}
		vhost_inflight_published(r, qsize, (uint16_t)(used + n));
		for (int i = 0; i < n; i++)
			if (r->desc[heads[i]].inflight)
				abort();
	}
	free(r);
	return 0;
}
