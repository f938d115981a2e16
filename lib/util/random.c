#include "random.h"

#include <errno.h>
#include <sys/random.h>

#include "clock.h"

int mimo_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static __thread uint64_t t_state;

uint64_t mimo_random_below(uint64_t bound)
{
	uint64_t x;

	if (bound == 0)
		return 0;
	if (t_state == 0) {
		if (mimo_random_bytes(&t_state, sizeof(t_state)) != 0 || t_state == 0)
			t_state = (uint64_t)mimo_now_ns() | 1;
	}
	/* xorshift64* */
	x = t_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t_state = x;
	return (x * 0x2545F4914F6CDD1DULL) % bound;
}

void mimo_hex_encode(const void *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = bytes;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * len] = '\0';
}
