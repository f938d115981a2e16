/*
 * Fuzz every body the agent and the gateway parse: the first byte picks the parser (GSE's
 * dispatch_message and dispatch_multi_message, /v1/dispatch, /v1/request, POST /v1/slots,
 * GSE keepalive and respond meta JSON, URL segment decoding, durable up-queue records, the
 * callback's content string, and slot records from the NATS KV bucket). Properties: no crash or
 * leak; what a parser accepts is consistent (ids valid, lengths within bounds); content strings
 * always re-read as JSON.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bodies.h"
#include "callback.h"
#include "slots.h"
#include "natsfab.h"
#include "upq.h"

static void check_req(const struct down_msg_req *r)
{
	if (r->n_agents == 0 || r->n_agents > FAB_MAX_AGENTS || r->message_id == NULL ||
	    !mimo_wire_msg_id_valid(r->message_id, strlen(r->message_id)))
		abort();
	for (size_t i = 0; i < r->n_agents; i++) {
		if (!fab_agent_id_valid(r->agent_ids[i]) || r->content_lens[i] > FAB_MAX_CONTENT)
			abort();
		/* Touch the last byte: the sanitizer checks the length. */
		if (r->content_lens[i] > 0) {
			volatile uint8_t last = r->contents[i][r->content_lens[i] - 1];

			(void)last;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct down_msg_req r;
	char err[256], a[1024], b[1024];
	const char *body;
	size_t len, n;
	int rc;

	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	len = size - 1;
	switch (data[0] % 11) {
	case 0:
		rc = parse_gse_dispatch(body, len, &r, err, sizeof(err));
		break;
	case 1:
		rc = parse_gse_dispatch_multi(body, len, &r, err, sizeof(err));
		break;
	case 2:
		rc = parse_native_dispatch(body, len, &r, err, sizeof(err));
		break;
	case 3:
		rc = parse_request(body, len, &r, err, sizeof(err));
		break;
	case 4:
		if (parse_slot_create(body, len, a, sizeof(a), b, sizeof(b), err, sizeof(err)) ==
			    0 &&
		    (!mimo_wire_name_valid(a, strlen(a)) || !fab_url_valid(b)))
			abort();
		return 0;
	case 5: {
		struct gse_keepalive k;

		if (parse_gse_keepalive(body, len, &k) == 0 &&
		    !mimo_wire_name_valid(k.plugin_name, strlen(k.plugin_name)))
			abort();
		return 0;
	}
	case 6: {
		struct gse_meta m;

		if (parse_gse_meta(body, len, &m) == 0 &&
		    !mimo_wire_msg_id_valid(m.message_id, strlen(m.message_id)))
			abort();
		return 0;
	}
	case 7:
		if (fab_url_decode(body, len, a, sizeof(a), &n) == 0 && n >= sizeof(a))
			abort();
		return 0;
	case 10: {
		/* A slot record as gateways store it in NATS KV (and agents read it). */
		struct slot_info si;

		if (fab_slot_kv_parse("admintoken", body, (int)len, &si) == 0 &&
		    (!mimo_wire_name_valid(si.plugin, strlen(si.plugin)) || !fab_url_valid(si.url)))
			abort();
		return 0;
	}
	case 8: {
		struct up_rec u;
		long m = upq_rec_decode(body, len, &u);

		if (m > 0 && ((size_t)m > len || u.plugin + u.plugin_len > body + len ||
			      (const char *)u.content + u.content_len > body + len))
			abort();
		return 0;
	}
	default: {
		/* The callback's "content": valid JSON whatever the bytes, and the hand-written
		 * encoder (callback bodies) says exactly what the jansson one (API answers) says.
		 */
		json_t *s = fab_json_content_string(body, len), *back;
		struct mimo_buf mine = { 0 };
		char *text = json_dumps(s, JSON_ENCODE_ANY);

		if (s == NULL || text == NULL)
			abort();
		back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (back == NULL)
			abort();
		json_decref(back);
		if (fab_json_append_string(&mine, body, len) != 0)
			abort();
		back = json_loadb(mine.data, mine.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (back == NULL || !json_equal(back, s))
			abort();
		json_decref(back);
		mimo_buf_free(&mine);
		json_decref(s);
		free(text);
		return 0;
	}
	}
	if (rc == 0) {
		check_req(&r);
		down_msg_req_free(&r);
	}
	return 0;
}
