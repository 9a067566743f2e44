/*
 * libFuzzer target: the Dovecot auth-client reply parser and the tab
 * unescaper must never crash on any bytes; what they return must hold:
 * a user= without control characters and within DOVECOT_AUTH_USER_MAX,
 * and escape(unescape(x)) unescaping back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dovecot_auth.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dovecot_auth_reply r;
	const char *errstr = NULL;
	char out[DOVECOT_AUTH_LINE_MAX + 1], again[DOVECOT_AUTH_LINE_MAX + 1];
	size_t outlen, againlen;
	struct buf b;

	if (size > DOVECOT_AUTH_LINE_MAX)
		return 0;
	if (dovecot_auth_parse_reply((const char *)data, size, &r, &errstr) == 0) {
		if (r.has_user) {
			size_t n = strlen(r.user);

			if (n > DOVECOT_AUTH_USER_MAX)
				abort();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)r.user[i] < 0x20 || r.user[i] == 0x7f)
					abort();
		}
		if (strlen(r.reason) > DOVECOT_AUTH_REASON_MAX)
			abort();
	} else if (errstr == NULL) {
		abort();
	}

	if (dovecot_auth_unescape((const char *)data, size, out, sizeof(out), &outlen) == 0) {
		buf_init(&b, 2 * sizeof(out) + 1);
		if (dovecot_auth_escape(out, outlen, &b) != 0)
			abort();
		if (memchr(b.data ? b.data : "", '\t', b.len) != NULL ||
		    memchr(b.data ? b.data : "", '\n', b.len) != NULL)
			abort();
		if (dovecot_auth_unescape(
		        b.data ? b.data : "", b.len, again, sizeof(again), &againlen) != 0 ||
		    againlen != outlen || memcmp(again, out, outlen) != 0)
			abort();
		buf_free(&b);
	}
	return 0;
}
