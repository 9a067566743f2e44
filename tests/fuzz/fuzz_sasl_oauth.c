/*
 * libFuzzer target: the XOAUTH2 and OAUTHBEARER response decoders
 * (sasl/sasl_oauth) and the error-challenge formatter. Neither decoder may
 * crash or read past the input; what one accepts must respect the limits,
 * point into the input, and survive a round trip: re-encoding the decoded
 * user and token (escaping the authzid) must decode to the same fields.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sasl/sasl_oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check(const struct sasl_oauth_cred *c, const char *msg, size_t len, bool need_user)
{
	if (c->tokenlen == 0 || c->tokenlen > SASL_OAUTH_TOKEN_MAX ||
	    c->userlen > SASL_OAUTH_USER_MAX || (need_user && c->userlen == 0))
		abort();
	if (c->token < msg || c->token + c->tokenlen > msg + len)
		abort();
	if (c->user[c->userlen] != '\0' || memchr(c->user, '\0', c->userlen) != NULL)
		abort();
	if (c->host != NULL && (c->host < msg || c->host + c->hostlen > msg + len))
		abort();
}

static void
fuzz_same(const struct sasl_oauth_cred *a, const struct sasl_oauth_cred *b)
{
	if (a->userlen != b->userlen || memcmp(a->user, b->user, a->userlen) != 0 ||
	    a->tokenlen != b->tokenlen || memcmp(a->token, b->token, a->tokenlen) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct sasl_oauth_cred c, again;
	const char *errstr;
	struct buf b;
	char *copy;

	buf_init(&b, 4 * SASL_OAUTH_TOKEN_MAX);
	if (sasl_xoauth2_parse(msg, size, &c, &errstr) == 0) {
		fuzz_check(&c, msg, size, true);
		if (buf_append_str(&b, "user=") == -1 || buf_append(&b, c.user, c.userlen) == -1 ||
		    buf_append_str(&b,
		        "\x01"
		        "auth=Bearer ") == -1 ||
		    buf_append(&b, c.token, c.tokenlen) == -1 ||
		    buf_append(&b, "\x01\x01", 2) == -1)
			abort();
		if (sasl_xoauth2_parse(b.data, b.len, &again, &errstr) == -1)
			abort();
		fuzz_same(&c, &again);
	} else if (errstr == NULL) {
		abort();
	}
	buf_reset(&b);
	if (sasl_oauthbearer_parse(msg, size, &c, &errstr) == 0) {
		fuzz_check(&c, msg, size, false);
		if (buf_append_str(&b, c.userlen > 0 ? "n,a=" : "n,") == -1)
			abort();
		for (size_t i = 0; i < c.userlen; i++) {
			const char *e = c.user[i] == ',' ? "=2C" : c.user[i] == '=' ? "=3D" : NULL;

			if ((e != NULL ? buf_append_str(&b, e) : buf_append(&b, &c.user[i], 1)) ==
			    -1)
				abort();
		}
		if (buf_append_str(&b,
		        ",\x01"
		        "auth=Bearer ") == -1 ||
		    buf_append(&b, c.token, c.tokenlen) == -1 ||
		    buf_append(&b, "\x01\x01", 2) == -1)
			abort();
		if (sasl_oauthbearer_parse(b.data, b.len, &again, &errstr) == -1)
			abort();
		fuzz_same(&c, &again);
	} else if (errstr == NULL) {
		abort();
	}
	(void)sasl_oauth_is_error_ack(SASL_OAUTH_OAUTHBEARER, msg, size);
	/* the error challenge with arbitrary (NUL-terminated) scope text */
	copy = malloc(size + 1);
	if (copy == NULL)
		abort();
	memcpy(copy, msg, size);
	copy[size] = '\0';
	buf_reset(&b);
	(void)sasl_oauth_error_json(SASL_OAUTH_XOAUTH2, copy, NULL, &b);
	free(copy);
	buf_free(&b);
	return 0;
}
