/*
 * The key interchange formats (lib/util/keyfmt.c) and CRC-32. The vectors were made with
 * Python's zlib.crc32 and base64, independently of the C code: secret || CRC-32 (LE) in base64.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crc32.h"
#include "keyfmt.h"

static const char k32[] = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
static const char k48[] =
	"DHHC-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:";
static const char k64[] = "DHHC-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyg"
			  "pKissLS4vMDEyMzQ1Njc4OTo7PD0+P4zODhA=:";
static const char psk32[] = "NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
static const char psk48[] = "NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJC"
			    "UmJygpKissLS4vcSEgBQ==:";

static void test_crc32_check_value(void **state)
{
	(void)state;
	assert_int_equal(mimo_crc32("123456789", 9), 0xcbf43926u);
	assert_int_equal(mimo_crc32("", 0), 0);
}

static void expect_key(const char *text, enum mimo_key_kind kind, uint8_t hash, uint8_t len,
		       uint8_t first)
{
	struct mimo_key_material m;
	char err[256] = "";

	assert_int_equal(mimo_key_parse(text, strlen(text), &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, kind);
	assert_int_equal(m.hash, hash);
	assert_int_equal(m.len, len);
	for (uint8_t i = 0; i < len; i++)
		assert_int_equal(m.key[i], (uint8_t)(first + i));
	mimo_key_material_wipe(&m);
	assert_int_equal(m.len, 0);
}

static void test_parses_what_nvme_cli_prints(void **state)
{
	char with_newline[128];

	(void)state;
	expect_key(k32, MIMO_KEY_DHCHAP, 0, 32, 0);
	expect_key(k48, MIMO_KEY_DHCHAP, 1, 48, 100);
	expect_key(k64, MIMO_KEY_DHCHAP, 3, 64, 0);
	expect_key(psk32, MIMO_KEY_TLS_PSK, 1, 32, 0);
	expect_key(psk48, MIMO_KEY_TLS_PSK, 2, 48, 0);
	/* A key file ends with a newline. */
	snprintf(with_newline, sizeof(with_newline), "%s\n", k32);
	expect_key(with_newline, MIMO_KEY_DHCHAP, 0, 32, 0);
}

static void expect_refused(const char *text, int rc, const char *says)
{
	struct mimo_key_material m;
	char err[256] = "";

	assert_int_equal(mimo_key_parse(text, strlen(text), &m, err, sizeof(err)), rc);
	if (strstr(err, says) == NULL)
		fail_msg("'%s': error '%s' does not say '%s'", text, err, says);
	assert_int_equal(m.len, 0);
}

static void test_refusals_say_why(void **state)
{
	char t[160];

	(void)state;
	/* One character of the secret changed: the CRC catches it. */
	snprintf(t, sizeof(t), "%s", k32);
	t[12] = t[12] == 'A' ? 'B' : 'A';
	expect_refused(t, -EBADMSG, "bad CRC-32");
	expect_refused("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR", -EINVAL,
		       "must end with ':'");
	expect_refused("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:x", -EINVAL,
		       "must end with ':'");
	expect_refused("DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", -EINVAL,
		       "hash 04");
	expect_refused("DHHC-1:0:AAAA:", -EINVAL, "two hex digits");
	expect_refused("DHHC-1:00:AAECAwQF:", -EINVAL, "bytes decoded");
	expect_refused("DHHC-1:00:AA*CAwQF:", -EINVAL, "base64");
	expect_refused("DHHC-1:00::", -EINVAL, "base64 characters");
	expect_refused("NVMeTLSkey-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", -EINVAL,
		       "hash 03");
	/* A 48-byte PSK labelled SHA-256. */
	snprintf(t, sizeof(t), "%s", psk48);
	memcpy(t + 13, "01", 2);
	expect_refused(t, -EINVAL, "01 takes a 32-byte PSK");
	expect_refused("secret", -EINVAL, "not a key");
	expect_refused("", -EINVAL, "not a key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_check_value),
		cmocka_unit_test(test_parses_what_nvme_cli_prints),
		cmocka_unit_test(test_refusals_say_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
