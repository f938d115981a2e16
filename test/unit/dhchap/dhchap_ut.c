/*
 * DH-HMAC-CHAP's shared parts (lib/dhchap). The expected values were computed by the Python
 * host in test/integration/nvme_tcp_host.py (hashlib and hmac, written from the
 * specification), not by this code: the key transformation and both roles' responses, with
 * and without a Diffie-Hellman value. Then the FFDHE exchange: both sides agree, and values a
 * peer must not send are refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dhchap.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define SUBNQN	"nqn.2016-06.io.mimo:cnode1"

static const char k1[] = "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
static const char k3[] = "DHHC-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyg"
			 "pKissLS4vMDEyMzQ1Njc4OTo7PD0+P4zODhA=:";
static const char k0[] =
	"DHHC-1:00:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:";

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

static void key(const char *text, struct mimo_key_material *m)
{
	assert_int_equal(mimo_key_parse(text, strlen(text), m, NULL, 0), 0);
}

static void seq_bytes(uint8_t *b, size_t n, unsigned mul)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * mul);
}

static void test_names_and_lengths(void **state)
{
	uint32_t mask = 0;
	char bad[32];

	(void)state;
	assert_int_equal(dhchap_hash_len(MIMO_NVMF_DHCHAP_HASH_SHA384), 48);
	assert_int_equal(dhchap_hash_len(0), 0);
	assert_int_equal(dhchap_hash_len(4), 0);
	assert_int_equal(dhchap_hash_id("sha512"), 3);
	assert_int_equal(dhchap_dhgroup_id("ffdhe6144"), 4);
	assert_int_equal(dhchap_dhgroup_len(MIMO_NVMF_DHCHAP_DHGROUP_3072), 384);
	assert_int_equal(dhchap_dhgroup_len(MIMO_NVMF_DHCHAP_DHGROUP_NULL), 0);
	assert_int_equal(dhchap_parse_digests("sha256,sha512", &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, (1u << 1) | (1u << 3));
	assert_int_equal(dhchap_parse_dhgroups("null,ffdhe8192", &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, 1u | (1u << 5));
	assert_int_equal(dhchap_parse_dhgroups("null,ffdhe1024", &mask, bad, sizeof(bad)), -EINVAL);
	assert_string_equal(bad, "ffdhe1024");
	assert_int_equal(dhchap_parse_digests("sha256,,sha384", &mask, bad, sizeof(bad)), -EINVAL);
	assert_int_equal(dhchap_parse_digests("md5", &mask, bad, sizeof(bad)), -EINVAL);
}

static void test_key_transformation(void **state)
{
	struct mimo_key_material m;
	uint8_t out[64], want[32];

	(void)state;
	key(k1, &m);
	assert_int_equal(dhchap_transform_key(&m, HOSTNQN, out), 32);
	unhex("6ce1e4ea31e8331a4fe5826bfde17a5cd386b8f0338748919e279ba6c55bf727", want, 32);
	assert_memory_equal(out, want, 32);
	/* hh 00: the secret as it is. */
	key(k0, &m);
	assert_int_equal(dhchap_transform_key(&m, HOSTNQN, out), 48);
	assert_int_equal(out[0], 100);
	m.kind = MIMO_KEY_TLS_PSK;
	assert_int_equal(dhchap_transform_key(&m, HOSTNQN, out), -EINVAL);
}

static void test_responses(void **state)
{
	uint8_t chal[64], dh[256], out[64], want[64];
	struct mimo_key_material m;

	(void)state;
	seq_bytes(chal, sizeof(chal), 1);
	seq_bytes(dh, sizeof(dh), 7);
	key(k1, &m);
	assert_int_equal(dhchap_response(MIMO_NVMF_DHCHAP_HASH_SHA256, &m, "HostHost", HOSTNQN,
					 SUBNQN, 0x12345678, 0xabcd, chal, NULL, 0, out),
			 0);
	unhex("4790869fa1f7ecb160c3e5e88fbeea7899c95e0b7d1ed982722ab0f573717f37", want, 32);
	assert_memory_equal(out, want, 32);
	/* Controller role, SHA-512 key transformation and hash, augmented by a DH value. */
	key(k3, &m);
	assert_int_equal(dhchap_response(MIMO_NVMF_DHCHAP_HASH_SHA512, &m, "Controller", SUBNQN,
					 HOSTNQN, 0x01020304, 7, chal, dh, sizeof(dh), out),
			 0);
	unhex("ff2fbf4fc768a47de7b637b01c2cd3e706629907d1a5797e7e52055b6b0779c178b2b595f9fdb32f5da5"
	      "d9521f67ba71adfbda72e993d231f7cd3c9a66b03787",
	      want, 64);
	assert_memory_equal(out, want, 64);
	/* A 48-byte secret used as is, SHA-384. */
	key(k0, &m);
	assert_int_equal(dhchap_response(MIMO_NVMF_DHCHAP_HASH_SHA384, &m, "HostHost", HOSTNQN,
					 SUBNQN, 1, 0, chal, dh, sizeof(dh), out),
			 0);
	unhex("9a5b7afadef3e2cb7f577d0c8686a00ceac0bd642018906852f6403a3c584d67ee17fae1f9f49ea66aa"
	      "a8af777cc86db",
	      want, 48);
	assert_memory_equal(out, want, 48);
	assert_int_equal(
		dhchap_response(9, &m, "HostHost", HOSTNQN, SUBNQN, 1, 0, chal, NULL, 0, out),
		-EINVAL);
}

static void test_ffdhe_exchange(void **state)
{
	uint8_t pa[256], pb[256], sa[256], sb[256], bad[256];
	struct dhchap_dh *a, *b;

	(void)state;
	assert_int_equal(dhchap_dh_generate(MIMO_NVMF_DHCHAP_DHGROUP_2048, &a), 0);
	assert_int_equal(dhchap_dh_generate(MIMO_NVMF_DHCHAP_DHGROUP_2048, &b), 0);
	assert_int_equal(dhchap_dh_public(a, pa, sizeof(pa)), 0);
	assert_int_equal(dhchap_dh_public(b, pb, sizeof(pb)), 0);
	assert_memory_not_equal(pa, pb, sizeof(pa));
	assert_int_equal(dhchap_dh_derive(a, pb, sizeof(pb), sa, sizeof(sa)), 0);
	assert_int_equal(dhchap_dh_derive(b, pa, sizeof(pa), sb, sizeof(sb)), 0);
	assert_memory_equal(sa, sb, sizeof(sa));
	/* Values a peer must not send: 0, 1, and anything above the prime (all ones). */
	memset(bad, 0, sizeof(bad));
	assert_int_equal(dhchap_dh_derive(a, bad, sizeof(bad), sa, sizeof(sa)), -EINVAL);
	bad[255] = 1;
	assert_int_equal(dhchap_dh_derive(a, bad, sizeof(bad), sa, sizeof(sa)), -EINVAL);
	memset(bad, 0xff, sizeof(bad));
	assert_int_equal(dhchap_dh_derive(a, bad, sizeof(bad), sa, sizeof(sa)), -EINVAL);
	/* Longer than the group, or the wrong output size. */
	assert_int_equal(dhchap_dh_derive(a, pb, 0, sa, sizeof(sa)), -EINVAL);
	assert_int_equal(dhchap_dh_derive(a, pb, sizeof(pb), sa, 128), -EINVAL);
	assert_int_equal(dhchap_dh_public(a, pa, 128), -EINVAL);
	dhchap_dh_free(a);
	dhchap_dh_free(b);
	assert_int_equal(dhchap_dh_generate(MIMO_NVMF_DHCHAP_DHGROUP_NULL, &a), -EINVAL);
	assert_int_equal(dhchap_dh_generate(9, &b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_lengths),
		cmocka_unit_test(test_key_transformation),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_ffdhe_exchange),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
