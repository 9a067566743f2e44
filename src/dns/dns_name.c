/*
 * dns_name: syntax of the domain names smtpgate looks up (dns_name.h).
 */
#include "dns/dns_name.h"

#include <ctype.h>
#include <string.h>

bool
dns_name_is_valid(const char *s)
{
	size_t len = strlen(s), lab = 0, labels = 1;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return false;
			lab = 0;
			labels++;
		} else if (isalnum((unsigned char)c) || c == '_' || (c == '-' && lab > 0)) {
			if (++lab > 63)
				return false;
		} else {
			return false;
		}
	}
	return lab > 0 && labels >= 2;
}
