/* UUIDs in the canonical 8-4-4-4-12 text form, random (version 4) generation. */
#ifndef MIMO_UTIL_UUID_H
#define MIMO_UTIL_UUID_H

#include <stdbool.h>
#include <stdint.h>

#define MIMO_UUID_STR_LEN 37

void mimo_uuid_generate(uint8_t uuid[16]);
void mimo_uuid_format(const uint8_t uuid[16], char out[MIMO_UUID_STR_LEN]);
/* Returns 0, or -EINVAL when text is not a canonical UUID (either case accepted). */
int mimo_uuid_parse(const char *text, uint8_t uuid[16]);
bool mimo_uuid_is_null(const uint8_t uuid[16]);
/* The value of one hexadecimal digit (either case), or -1. */
int mimo_hexval(char c);

#endif
