/* The fabric's HTTP bodies, GSE frame JSON, the slot registry and sealed secrets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bodies.h"
#include "seal.h"
#include "slots.h"

#define P(fn, s, r) fn(s, strlen(s), r, err, sizeof(err))

static void test_gse_dispatch(void **state)
{
	struct down_msg_req r;
	char err[256];

	(void)state;
	assert_int_equal(P(parse_gse_dispatch,
			   "{\"slot_id\":3,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_id_list\":[\"a\",\"0:10.0.0.1\"],\"content\":\"hi\","
			   "\"bk_app_code\":\"extra keys are GSE's\"}",
			   &r),
			 0);
	assert_int_equal(r.slot_id, 3);
	assert_int_equal(r.n_agents, 2);
	assert_string_equal(r.agent_ids[1], "0:10.0.0.1");
	assert_int_equal(r.content_lens[1], 2);
	assert_true(r.gse);
	assert_int_equal(r.ttl_ms, FAB_DEFAULT_DOWN_TTL);
	down_msg_req_free(&r);
	assert_int_equal(P(parse_gse_dispatch, "{\"slot_id\":0,\"token\":\"t\"}", &r), -EINVAL);
	assert_non_null(strstr(err, "slot_id"));
	assert_int_equal(P(parse_gse_dispatch,
			   "{\"slot_id\":1,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_id_list\":[\"a\",\"a\"],\"content\":\"x\"}",
			   &r),
			 -EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(P(parse_gse_dispatch, "{\"a\":1,\"a\":2}", &r), -EINVAL);
}

static void test_gse_multi(void **state)
{
	struct down_msg_req r;
	char err[256];

	(void)state;
	assert_int_equal(P(parse_gse_dispatch_multi,
			   "{\"slot_id\":3,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_message_list\":[{\"bk_agent_id\":\"a\",\"content\":\"1\"},"
			   "{\"bk_agent_id\":\"b\",\"content\":\"22\"}],"
			   "\"front_content\":\"<\",\"back_content\":\">\"}",
			   &r),
			 0);
	assert_int_equal(r.content_lens[1], 4);
	assert_memory_equal(r.contents[1], "<22>", 4);
	down_msg_req_free(&r);
	assert_int_equal(P(parse_gse_dispatch_multi,
			   "{\"slot_id\":3,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_message_list\":[{\"bk_agent_id\":\"a b\",\"content\":\"1\"}]}",
			   &r),
			 -EINVAL);
}

static void test_native_and_request(void **state)
{
	struct down_msg_req r;
	char err[256];

	(void)state;
	assert_int_equal(P(parse_native_dispatch,
			   "{\"slot_id\":1,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_ids\":[\"h\"],\"content_base64\":\"AAEC\",\"ttl_ms\":0}",
			   &r),
			 0);
	assert_int_equal(r.content_lens[0], 3);
	assert_memory_equal(r.contents[0], "\0\1\2", 3);
	assert_int_equal(r.ttl_ms, 0);
	down_msg_req_free(&r);
	assert_int_equal(P(parse_native_dispatch,
			   "{\"slot_id\":1,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_ids\":[\"h\"],\"content\":\"a\",\"content_base64\":\"YQ==\"}",
			   &r),
			 -EINVAL);
	assert_non_null(strstr(err, "exactly one"));
	assert_int_equal(P(parse_native_dispatch,
			   "{\"slot_id\":1,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_ids\":[\"h\"],\"content\":\"a\",\"ttl\":5}",
			   &r),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown key"));
	assert_int_equal(P(parse_request,
			   "{\"slot_id\":1,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_id\":\"h\",\"content\":\"ping\",\"timeout_ms\":250}",
			   &r),
			 0);
	assert_true(r.single);
	assert_int_equal(r.timeout_ms, 250);
	assert_int_equal(r.ttl_ms, 250);
	down_msg_req_free(&r);
	assert_int_equal(P(parse_request,
			   "{\"slot_id\":1,\"token\":\"t\",\"message_id\":\"m\","
			   "\"agent_id\":\"h\",\"agent_ids\":[\"h\"],\"content\":\"p\"}",
			   &r),
			 -EINVAL);
}

static void test_slot_create_and_gse_frames(void **state)
{
	char plugin[65], url[1024], err[256];
	struct gse_keepalive k;
	struct gse_meta m;
	const char *ka = "{\"plugin_name\":\"p\",\"version\":\"1\",\"pid\":12,\"status_code\":0,"
			 "\"status\":\"ok\",\"remark\":\"\"}";
	const char *meta = "{\"name\":\"p\",\"transmit_type\":0,\"topic\":\"\",\"message_id\":"
			   "\"m-1\",\"session_id\":\"\"}";

	(void)state;
	assert_int_equal(
		parse_slot_create("{\"plugin_name\":\"p\",\"callback_url\":\"http://h/c\"}", 47,
				  plugin, sizeof(plugin), url, sizeof(url), err, sizeof(err)),
		0);
	assert_string_equal(url, "http://h/c");
	assert_int_equal(parse_slot_create("{\"plugin_name\":\"p\",\"callback_url\":\"http://\"}",
					   42, plugin, sizeof(plugin), url, sizeof(url), err,
					   sizeof(err)),
			 -EINVAL);
	assert_int_equal(parse_gse_keepalive(ka, strlen(ka), &k), 0);
	assert_string_equal(k.plugin_name, "p");
	assert_int_equal(k.pid, 12);
	assert_int_equal(parse_gse_keepalive("{}", 2, &k), -EBADMSG);
	assert_int_equal(parse_gse_meta(meta, strlen(meta), &m), 0);
	assert_string_equal(m.message_id, "m-1");
	assert_int_equal(parse_gse_meta("{\"message_id\":\"\"}", 17, &m), -EBADMSG);
}

static void test_slots_registry(void **state)
{
	char dir[] = "/tmp/mimo-slots-ut-XXXXXX", token[FAB_TOKEN_HEX], t2[FAB_TOKEN_HEX];
	char path[256], *text;
	struct slot_info si, got;
	struct slots *s;
	struct stat st;
	FILE *f;
	long n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(slots_open_file(&s, dir), 0);
	assert_int_equal(slots_create(s, "p1", "http://h/c", &si, token), 0);
	assert_int_equal(strlen(token), 64);
	assert_int_equal(slots_check_token(s, si.id, token, &got), 0);
	assert_int_equal(slots_check_token(s, si.id, "nope", &got), -EACCES);
	assert_int_equal(slots_check_token(s, si.id + 1, token, &got), -ENOENT);
	assert_int_equal(slots_create(s, "p1", "http://h/c", &got, t2), -EEXIST);
	assert_int_equal(slots_rotate(s, si.id, &got, t2), 0);
	assert_int_equal(slots_check_token(s, si.id, token, NULL), -EACCES);
	assert_int_equal(slots_check_plugin_token(s, "p1", t2, NULL), 0);
	slots_free(s);
	/* On disk: 0600, hashes only; reloads. */
	snprintf(path, sizeof(path), "%s/slots.json", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	text = calloc(1, 65536);
	n = (long)fread(text, 1, 65535, f);
	fclose(f);
	assert_true(n > 0);
	assert_null(strstr(text, t2));
	free(text);
	assert_int_equal(slots_open_file(&s, dir), 0);
	assert_int_equal(slots_check_token(s, si.id, t2, NULL), 0);
	assert_int_equal(slots_delete(s, si.id), 0);
	assert_int_equal(slots_create(s, "p2", "https://h/c", &got, token), 0);
	assert_true(got.id > si.id); /* never reused */
	slots_free(s);
	unlink(path);
	rmdir(dir);
}

static void test_seal(void **state)
{
	char sealed[256], plain[64];

	(void)state;
	assert_int_equal(fab_seal("admin-token-1", "whsec_abc", sealed, sizeof(sealed)), 0);
	assert_null(strstr(sealed, "whsec"));
	assert_int_equal(fab_unseal("admin-token-1", sealed, plain, sizeof(plain)), 0);
	assert_string_equal(plain, "whsec_abc");
	assert_int_equal(fab_unseal("admin-token-2", sealed, plain, sizeof(plain)), -EACCES);
	assert_int_equal(fab_unseal("admin-token-1", "AAAA", plain, sizeof(plain)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gse_dispatch),
		cmocka_unit_test(test_gse_multi),
		cmocka_unit_test(test_native_and_request),
		cmocka_unit_test(test_slot_create_and_gse_frames),
		cmocka_unit_test(test_slots_registry),
		cmocka_unit_test(test_seal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
