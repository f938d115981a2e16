/*
 * notify_errors: call NotifyEvent with bad and with tricky-but-valid input and print each
 * return code as a JSON object, so a test can check the codes and what reached the receiver
 * (run it with MIMO_NOTIFY_STRICT=1 and without: the codes differ, see docs/notify.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/notify.h"

static int first = 1;

static void report(const char *label, int rc)
{
	printf("%s\"%s\":%d", first ? "{" : ",", label, rc);
	first = 0;
}

int main(void)
{
	char big[70000], name[140];

	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[65536] = '}';
	big[65537] = '\0';
	memset(name, 'n', sizeof(name));
	name[129] = '\0';

	report("null_name", mimo_notify_event(NULL, "{}"));
	report("empty_name", mimo_notify_event("", "{}"));
	report("long_name", mimo_notify_event(name, NULL));
	report("bad_char", mimo_notify_event("bdev ready", NULL));
	report("array", mimo_notify_event("bad_payload", "[1,2,3]"));
	report("truncated", mimo_notify_event("bad_payload", "{\"name\":\"nvme0n1\""));
	report("two_objects", mimo_notify_event("bad_payload", "{}{}"));
	report("unescaped", mimo_notify_event("bad_payload", "{\"error\":\"a \"quoted\" word\"}"));
	report("bad_utf8", mimo_notify_event("bad_payload", "{\"s\":\"\xff\"}"));
	report("too_big", mimo_notify_event("bad_payload", big));
	/* Valid, and must arrive exactly as given. */
	report("unicode", mimo_notify_event("valid.unicode",
					    "{\"s\":\"h\xc3\xa9llo \\u00e9 \xf0\x9f\x98\x80\"}"));
	report("nested", mimo_notify_event("valid:nested",
					   "{\"a\":[1,{\"b\":null}],\"c\":-1.5e3,\"d\":true}"));
	report("no_payload", mimo_notify_event("valid-none", NULL));
	/* What the Go bridge accepted and strict mode refuses. */
	report("empty_payload", mimo_notify_event("go.empty", ""));
	report("go_array", mimo_notify_event("go.array", "[1,\"two\",{\"3\":null}]"));
	report("go_scalar", mimo_notify_event("go.scalar", "42"));
	report("go_name", mimo_notify_event("bdev \"ready\"/\\\n\t\xc3\xa9", "{\"a\":1}"));
	report("go_bad_utf8", mimo_notify_event("go.utf8", "{\"s\":\"a\xff"
							   "b\"}"));
	printf("}\n");
	fflush(stdout);
	return 0;
}
