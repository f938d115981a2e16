#include "uuid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "random.h"

void mimo_uuid_generate(uint8_t uuid[16])
{
	if (mimo_random_bytes(uuid, 16) != 0) {
		for (int i = 0; i < 16; i++)
			uuid[i] = (uint8_t)mimo_random_below(256);
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void mimo_uuid_format(const uint8_t u[16], char out[MIMO_UUID_STR_LEN])
{
	snprintf(out, MIMO_UUID_STR_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
}

int mimo_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mimo_uuid_parse(const char *text, uint8_t uuid[16])
{
	int n = 0;

	if (text == NULL || strlen(text) != 36)
		return -EINVAL;
	for (int i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = mimo_hexval(text[i]);
		lo = mimo_hexval(text[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		uuid[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

bool mimo_uuid_is_null(const uint8_t uuid[16])
{
	for (int i = 0; i < 16; i++) {
		if (uuid[i] != 0)
			return false;
	}
	return true;
}
