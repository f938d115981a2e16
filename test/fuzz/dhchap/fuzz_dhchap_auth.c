/*
 * Fuzz DH-HMAC-CHAP's messages in both directions: the controller's state machine
 * (lib/nvmf/auth.c) with what a host sends, and the host's (lib/nvme/auth.c) with what a
 * controller sends.
 *
 * The first byte picks the mode (bits 0-1) and the configuration: the hash functions both
 * sides allow (bits 2-4, none meaning all), the group (bit 5: ffdhe2048, else null - two
 * groups only, so that an input costs little), no host key at the controller (bit 6), a
 * controller key on both sides (bit 7):
 *  - mode 0, raw controller: the rest is a sequence of [op][len lo][len hi][len bytes] - op
 *    even: an AUTH_Send of those bytes; odd: an AUTH_Receive of len bytes.
 *  - mode 1, raw host: after an AUTH_Negotiate, the rest is [len lo][len hi][challenge] then
 *    what remains as the Success1 (or Failure1, or anything).
 *  - mode 2, conversation: the host and the controller talk for real, and the rest of the
 *    input is a list of [message 0-4][offset][xor] flipping bytes of the messages on the way
 *    (negotiate, challenge, reply, success1, success2) - the paths past the responses' checks.
 *
 * Properties: nothing crashes, reads or writes out of bounds or leaks; a Receive never says
 * more than its buffer; a controller that says DONE has authenticated; in a conversation
 * nobody tampered with, both sides succeed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nvme_auth.h"
#include "nvmf_auth.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define SUBNQN	"nqn.2016-06.io.mimo:cnode1"

static const char KEY[] = "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
static const char CKEY[] = "DHHC-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyg"
			   "pKissLS4vMDEyMzQ1Njc4OTo7PD0+P4zODhA=:";

static struct mimo_key_material g_key, g_ckey;
static bool g_have_key, g_have_ckey;
static uint32_t g_seqnum;

static int get_key(void *arg, bool ctrlr, struct mimo_key_material *out)
{
	(void)arg;
	if (ctrlr ? !g_have_ckey : !g_have_key)
		return -2; /* -ENOKEY's value does not matter to the machine beyond "not 0" */
	*out = ctrlr ? g_ckey : g_key;
	return 0;
}

static void setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	setenv("MIMO_LOG", "error", 1);
	mimo_log_reload_level();
	if (mimo_key_parse(KEY, strlen(KEY), &g_key, NULL, 0) != 0 ||
	    mimo_key_parse(CKEY, strlen(CKEY), &g_ckey, NULL, 0) != 0)
		abort();
}

static void params(uint8_t cfg, struct nvmf_auth_params *tp, struct nvme_auth_params *hp)
{
	uint32_t digests = (cfg >> 2) & 7;

	g_have_key = !(cfg & 0x40);
	g_have_ckey = (cfg & 0x80) != 0;
	memset(tp, 0, sizeof(*tp));
	tp->hostnqn = HOSTNQN;
	tp->subnqn = SUBNQN;
	tp->digests = digests != 0 ? digests << 1 : DHCHAP_ALL_DIGESTS;
	tp->dhgroups = (cfg & 0x20) ? 1u << MIMO_NVMF_DHCHAP_DHGROUP_2048
				    : 1u << MIMO_NVMF_DHCHAP_DHGROUP_NULL;
	tp->get_key = get_key;
	tp->seqnum = &g_seqnum;
	memset(hp, 0, sizeof(*hp));
	hp->hostnqn = HOSTNQN;
	hp->subnqn = SUBNQN;
	hp->key = &g_key;
	hp->ctrl_key = g_have_ckey ? &g_ckey : NULL;
	hp->digests = tp->digests;
	hp->dhgroups = tp->dhgroups;
	hp->seqnum = 7;
}

static void raw_controller(const struct nvmf_auth_params *p, const uint8_t *d, size_t n)
{
	struct nvmf_auth a;

	nvmf_auth_init(&a);
	while (n >= 3) {
		uint8_t op = d[0];
		size_t len = (size_t)d[1] | (size_t)d[2] << 8;
		enum nvmf_auth_event ev;

		d += 3;
		n -= 3;
		if (op & 1) {
			uint8_t *buf = calloc(1, len + 1);
			uint32_t out = 0;

			ev = nvmf_auth_recv(&a, p, buf, (uint32_t)len, &out);
			if (out > len)
				abort();
			free(buf);
		} else {
			uint8_t *msg;

			if (len > n)
				len = n;
			/* Exactly len bytes: the sanitizer sees any read past them. */
			msg = malloc(len + 1);
			memcpy(msg, d, len);
			ev = nvmf_auth_send(&a, p, msg, (uint32_t)len);
			free(msg);
			d += len;
			n -= len;
		}
		if (ev == NVMF_AUTH_EV_DONE && !a.authenticated)
			abort();
	}
	nvmf_auth_fini(&a);
}

static void raw_host(const struct nvme_auth_params *p, const uint8_t *d, size_t n)
{
	static uint8_t out[NVME_AUTH_BUF_LEN];
	uint8_t *msg;
	struct nvme_auth a;
	uint32_t len, out_len = 0;

	nvme_auth_negotiate(&a, p, 1, out);
	if (n < 2)
		return;
	len = (uint32_t)d[0] | (uint32_t)d[1] << 8;
	d += 2;
	n -= 2;
	if (len > n)
		len = (uint32_t)n;
	/* The host's receive buffer is NVME_AUTH_BUF_LEN bytes, zero past what arrived. */
	msg = calloc(1, NVME_AUTH_BUF_LEN);
	memcpy(msg, d, len < NVME_AUTH_BUF_LEN ? len : NVME_AUTH_BUF_LEN);
	if (nvme_auth_challenge(&a, p, msg, NVME_AUTH_BUF_LEN, out, &out_len) == NVME_AUTH_NEXT) {
		if (out_len > NVME_AUTH_BUF_LEN)
			abort();
		memset(msg, 0, NVME_AUTH_BUF_LEN);
		n -= len;
		memcpy(msg, d + len, n < NVME_AUTH_BUF_LEN ? n : NVME_AUTH_BUF_LEN);
		(void)nvme_auth_success1(&a, p, msg, NVME_AUTH_BUF_LEN, out, &out_len);
	}
	nvme_auth_wipe(&a);
	free(msg);
}

/* Flip the bytes the input says in message m (len bytes) on its way. */
static void tamper(uint8_t m, uint8_t *msg, uint32_t len, const uint8_t *d, size_t n, bool *touched)
{
	for (size_t i = 0; i + 3 <= n; i += 3) {
		if (d[i] % 5 == m && len != 0 && d[i + 2] != 0) {
			msg[d[i + 1] % len] ^= d[i + 2];
			*touched = true;
		}
	}
}

static void conversation(const struct nvmf_auth_params *tp, const struct nvme_auth_params *hp,
			 const uint8_t *d, size_t n)
{
	static uint8_t h2c[NVME_AUTH_BUF_LEN], c2h[NVME_AUTH_BUF_LEN];
	enum nvme_auth_result hr;
	enum nvmf_auth_event ev;
	struct nvme_auth ha;
	struct nvmf_auth ta;
	uint32_t len = 0;
	bool touched = false, ok = false;

	nvmf_auth_init(&ta);
	len = nvme_auth_negotiate(&ha, hp, 3, h2c);
	tamper(0, h2c, len, d, n, &touched);
	nvmf_auth_send(&ta, tp, h2c, len);
	memset(c2h, 0, sizeof(c2h));
	ev = nvmf_auth_recv(&ta, tp, c2h, sizeof(c2h), &len);
	tamper(1, c2h, len, d, n, &touched);
	hr = nvme_auth_challenge(&ha, hp, c2h, sizeof(c2h), h2c, &len);
	if (ev != NVMF_AUTH_EV_NONE || hr != NVME_AUTH_NEXT)
		goto out;
	tamper(2, h2c, len, d, n, &touched);
	nvmf_auth_send(&ta, tp, h2c, len);
	memset(c2h, 0, sizeof(c2h));
	ev = nvmf_auth_recv(&ta, tp, c2h, sizeof(c2h), &len);
	tamper(3, c2h, len, d, n, &touched);
	hr = nvme_auth_success1(&ha, hp, c2h, sizeof(c2h), h2c, &len);
	if (hr != NVME_AUTH_DONE)
		goto out;
	if (len == 0) {
		ok = ev == NVMF_AUTH_EV_DONE;
		goto out;
	}
	tamper(4, h2c, len, d, n, &touched);
	ok = nvmf_auth_send(&ta, tp, h2c, len) == NVMF_AUTH_EV_DONE;
out:
	/* Untouched, with the keys both sides need and a hash and group both allow, both
	 * succeed: the host's and the controller's computations agree. */
	if (!touched && g_have_key && !ok)
		abort();
	nvme_auth_wipe(&ha);
	nvmf_auth_fini(&ta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmf_auth_params tp;
	struct nvme_auth_params hp;

	setup();
	if (size < 1)
		return 0;
	params(data[0], &tp, &hp);
	switch (data[0] & 3) {
	case 0:
		raw_controller(&tp, data + 1, size - 1);
		break;
	case 1:
		raw_host(&hp, data + 1, size - 1);
		break;
	default:
		conversation(&tp, &hp, data + 1, size - 1);
		break;
	}
	return 0;
}
