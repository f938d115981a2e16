/*
 * go_inputs: what a program written for the Go bridge passes to NotifyEvent and the Go bridge
 * accepted (it checked only that the name is non-empty and json.Valid(payload)). The tests
 * compile it against the library under test, as such a program is built (-lspdk_go_notify),
 * and print each return code, one a line.
 */
#include <stdio.h>

#include "spdk_go_notify.h"

int main(void)
{
	/* "payload: JSON string, or NULL/empty for no payload" */
	printf("%d\n", NotifyEvent("go.empty", ""));
	/* Any JSON value, not only objects. */
	printf("%d\n", NotifyEvent("go.array", "[1,\"two\",{\"3\":null}]"));
	printf("%d\n", NotifyEvent("go.scalar", " 42 "));
	printf("%d\n", NotifyEvent("go.string", "\"disk gone\""));
	/* Any non-empty name: JSON-escaped into the body. */
	printf("%d\n", NotifyEvent("bdev \"ready\"/\\\n\t\xc3\xa9", "{\"a\":1}"));
	/* json.Valid does not look at UTF-8 inside strings. */
	printf("%d\n", NotifyEvent("go.utf8", "{\"s\":\"a\xff"
					      "b\"}"));
	/* Still refused: not JSON at all (the Go bridge returned 0 and dropped it). */
	printf("%d\n", NotifyEvent("go.broken", "{\"a\":"));
	return 0;
}
