/*
 * The TLS PSK identity a client offers in its ClientHello reaches mimo_tls_identity_parse
 * before any key is looked up: anyone who can reach a secure listener chooses these bytes.
 * Checks that parsing never reads or writes out of bounds, and that what it accepts is exactly
 * what the formatter would write for the same fields (a version 0 identity) or that plus one
 * digest field (version 1): no second spelling of the same identity gets through.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mimo_tls_identity id;
	char text[MIMO_TLS_IDENTITY_MAX + 80];
	int n;

	if (mimo_tls_identity_parse(data, size, &id) != 0)
		return 0;
	if (id.version > 1 || (id.hash != 1 && id.hash != 2))
		abort();
	n = mimo_tls_identity_format(text, sizeof(text), id.hash, id.hostnqn, id.subnqn);
	if (n < 0)
		abort(); /* accepted fields the formatter refuses */
	if (id.version == 1) {
		text[4] = '1';
		n += snprintf(text + n, sizeof(text) - (size_t)n, " %s", id.digest);
	}
	if ((size_t)n != size || memcmp(text, data, size) != 0)
		abort();
	return 0;
}
