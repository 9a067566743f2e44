/*
 * hex: see hex.h.
 */
#include <stdbool.h>

#include "lib/hex.h"

int
hex_digit(char c, bool upper)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (upper && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
