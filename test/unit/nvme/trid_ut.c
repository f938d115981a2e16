/* Transport ID strings: both separators, key case, defaults, the canonical form, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mimo/nvme.h"

static void test_full(void **state)
{
	struct mimo_nvme_trid t;

	(void)state;
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:tcp adrfam:IPv4 traddr:10.0.0.5 "
						  "trsvcid:4421 subnqn:nqn.2016-06.io.spdk:cnode1"),
			 0);
	assert_int_equal(t.trtype, MIMO_NVMF_TRTYPE_TCP);
	assert_int_equal(t.adrfam, MIMO_NVMF_ADRFAM_IPV4);
	assert_string_equal(t.traddr, "10.0.0.5");
	assert_string_equal(t.trsvcid, "4421");
	assert_string_equal(t.subnqn, "nqn.2016-06.io.spdk:cnode1");
	assert_string_equal(t.hostnqn, "");
	assert_int_equal(t.nsid, 0);
}

static void test_separators_and_case(void **state)
{
	struct mimo_nvme_trid t;

	(void)state;
	/* '=' like ':', keys in any case, tabs and runs of spaces between pairs. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "  TRTYPE=TCP\tADRFAM=ipv4  TrAddr=127.0.0.1 "
						  "TRSVCID=4420 SubNQN=nqn.2014-08.org.x:Cnode  "),
			 0);
	assert_string_equal(t.traddr, "127.0.0.1");
	/* Values keep their case: NQNs are case-sensitive. */
	assert_string_equal(t.subnqn, "nqn.2014-08.org.x:Cnode");
	/* A value may hold the other separator. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr=a:b subnqn:nqn.x=y"), 0);
	assert_string_equal(t.traddr, "a:b");
	assert_string_equal(t.subnqn, "nqn.x=y");
}

static void test_defaults(void **state)
{
	struct mimo_nvme_trid t;

	(void)state;
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:192.168.1.1"), 0);
	assert_int_equal(t.trtype, MIMO_NVMF_TRTYPE_TCP);
	assert_int_equal(t.adrfam, MIMO_NVMF_ADRFAM_IPV4);
	assert_string_equal(t.trsvcid, "4420");
	assert_string_equal(t.subnqn, MIMO_NVMF_DISCOVERY_NQN);
	/* IPv6 addresses make IPv6 the default family; the first ':' ends the key. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:fe80::1"), 0);
	assert_int_equal(t.adrfam, MIMO_NVMF_ADRFAM_IPV6);
	assert_string_equal(t.traddr, "fe80::1");
	assert_int_equal(mimo_nvme_trid_parse(&t, "adrfam:IPv6 traddr:::1 trsvcid:4430"), 0);
	assert_string_equal(t.traddr, "::1");
	assert_string_equal(t.trsvcid, "4430");
}

static void test_optional_keys(void **state)
{
	struct mimo_nvme_trid t;

	(void)state;
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1.2.3.4 ns:7 hostnqn:nqn.2014-08.h:a"),
			 0);
	assert_int_equal(t.nsid, 7);
	assert_string_equal(t.hostnqn, "nqn.2014-08.h:a");
	/* spdk_nvme_perf's other keys: the local address and the socket priority are used;
	 * a fixed local port (several connections cannot share it) and a failover address (no
	 * failover here) are refused, never accepted and ignored. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1.2.3.4 hostaddr:1.2.3.5 hostsvcid:0 "
						  "priority:1"),
			 0);
	assert_string_equal(t.traddr, "1.2.3.4");
	assert_string_equal(t.hostaddr, "1.2.3.5");
	assert_int_equal(t.priority, 1);
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1.2.3.4 hostsvcid:9"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1.2.3.4 alt_traddr:1.2.3.6"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1.2.3.4 priority:7"), -EINVAL);
	/* The last of a repeated key wins. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1.1.1.1 traddr:2.2.2.2"), 0);
	assert_string_equal(t.traddr, "2.2.2.2");
}

static void test_errors(void **state)
{
	struct mimo_nvme_trid t;
	char big[600];

	(void)state;
	memset(&t, 0x5a, sizeof(t));
	assert_int_equal(mimo_nvme_trid_parse(&t, ""), -EINVAL); /* no traddr */
	assert_int_equal((uint8_t)t.traddr[0], 0x5a);		 /* untouched on failure */
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:tcp trsvcid:4420"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:rdma traddr:1.2.3.4"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:pcie traddr:0000:01:00.0"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "adrfam:ib traddr:1.2.3.4"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "bogus:1 traddr:1.2.3.4"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr"), -EINVAL);	      /* no separator */
	assert_int_equal(mimo_nvme_trid_parse(&t, ":1.2.3.4"), -EINVAL);      /* empty key */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:"), -EINVAL);	      /* empty value */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1 ns:x"), -EINVAL); /* not a number */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:1 ns:99999999999"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(NULL, "traddr:1"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, NULL), -EINVAL);
	/* Too long for its field: traddr 256, trsvcid 32, NQNs 223 bytes. */
	memcpy(big, "traddr:", 7);
	memset(big + 7, 'a', 257);
	big[7 + 257] = '\0';
	assert_int_equal(mimo_nvme_trid_parse(&t, big), -EINVAL);
	big[7 + 256] = '\0';
	assert_int_equal(mimo_nvme_trid_parse(&t, big), 0);
	memcpy(big, "subnqn:", 7);
	memset(big + 7, 'n', 224);
	strcpy(big + 7 + 224, " traddr:1");
	assert_int_equal(mimo_nvme_trid_parse(&t, big), -EINVAL);
	strcpy(big + 7 + 223, " traddr:1");
	assert_int_equal(mimo_nvme_trid_parse(&t, big), 0);
	assert_int_equal(strlen(t.subnqn), 223);
	assert_int_equal(
		mimo_nvme_trid_parse(&t, "traddr:1 trsvcid:123456789012345678901234567890123"),
		-EINVAL);
}

static void test_format(void **state)
{
	struct mimo_nvme_trid t, u;
	char buf[1024], small[16];
	int n;

	(void)state;
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr=127.0.0.1 subnqn=nqn.2016-06.io.spdk:c1"),
			 0);
	n = mimo_nvme_trid_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 "
				 "subnqn:nqn.2016-06.io.spdk:c1");
	assert_int_equal(n, (int)strlen(buf));
	/* The canonical form parses back to the same ID. */
	assert_int_equal(mimo_nvme_trid_parse(&u, buf), 0);
	assert_memory_equal(&t, &u, sizeof(t));
	/* Optional parts appear only when set. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "traddr:::1 ns:3 hostnqn:nqn.h:1"), 0);
	mimo_nvme_trid_format(&t, buf, sizeof(buf));
	assert_string_equal(buf,
			    "trtype:TCP adrfam:IPv6 traddr:::1 trsvcid:4420 "
			    "subnqn:nqn.2014-08.org.nvmexpress.discovery hostnqn:nqn.h:1 ns:3");
	/* snprintf's contract: the full length, a truncated and terminated string. */
	n = mimo_nvme_trid_format(&t, small, sizeof(small));
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(mimo_nvme_trid_format(&t, NULL, 0), (int)strlen(buf));
}

/* The loop transport: a listener's name in this process and a subsystem, nothing of a network. */
static void test_loop(void **state)
{
	struct mimo_nvme_trid t;
	char buf[512];

	(void)state;
	assert_int_equal(
		mimo_nvme_trid_parse(&t, "trtype:loop traddr:tgt1 subnqn:nqn.2016-06.io.x:a"), 0);
	assert_int_equal(t.trtype, MIMO_NVMF_TRTYPE_LOOP);
	assert_string_equal(t.traddr, "tgt1");
	assert_string_equal(t.trsvcid, "");
	mimo_nvme_trid_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "trtype:loop traddr:tgt1 subnqn:nqn.2016-06.io.x:a");
	/* The unnamed listener, and the discovery subsystem by default. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:LOOP"), 0);
	assert_string_equal(t.traddr, "");
	assert_string_equal(t.subnqn, MIMO_NVMF_DISCOVERY_NQN);
	mimo_nvme_trid_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "trtype:loop subnqn:" MIMO_NVMF_DISCOVERY_NQN);
	/* What only a network has is refused, not ignored. */
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:loop trsvcid:4420"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:loop adrfam:ipv4"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:loop hostaddr:127.0.0.1"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:loop priority:1"), -EINVAL);
	assert_int_equal(mimo_nvme_trid_parse(&t, "trtype:rdma traddr:1.2.3.4"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),	 cmocka_unit_test(test_separators_and_case),
		cmocka_unit_test(test_defaults), cmocka_unit_test(test_optional_keys),
		cmocka_unit_test(test_errors),	 cmocka_unit_test(test_format),
		cmocka_unit_test(test_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
