/*
 * sasl_bearer: the XOAUTH2 and OAUTHBEARER (RFC 7628) mechanism cores on top
 * of the pure parsers of sasl_oauth.c. The token check itself is the
 * session's (an async verifier); this file only sequences the exchange:
 *
 *   state 0  AUTH without initial response: empty challenge
 *   state 1  client response parsed: SASL_VERIFY_TOKEN (token copied)
 *   state 2  verdict given: ok -> SASL_DONE; refused -> the JSON error
 *            challenge (RFC 7628 3.2.2), SASL_CONTINUE
 *   state 3  the client's answer to the error challenge (\x01 or empty):
 *            SASL_FAILED, so 535 5.7.8
 */
#include <stdlib.h>
#include <string.h>

#include "sasl/sasl_bearer.h"

#include "lib/xalloc.h"
#include "sasl/sasl_oauth.h"
#include "sasl/sasl_priv.h"

static enum sasl_status
sasl_bearer_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	struct sasl_oauth_cred cred;
	const char *why = NULL;
	int r;

	switch (x->state) {
	case 0:
		if (!has_input) {
			/* RFC 4954 4: empty challenge, the client sends its response */
			x->state = 1;
			return SASL_CONTINUE;
		}
		/* FALLTHROUGH */
	case 1:
		if (!has_input) {
			x->errstr = "missing client response";
			return SASL_MALFORMED;
		}
		if (x->mech->variant == SASL_OAUTH_XOAUTH2)
			r = sasl_xoauth2_parse(in, inlen, &cred, &why);
		else
			r = sasl_oauthbearer_parse(in, inlen, &cred, &why);
		if (r == -1) {
			x->errstr = why != NULL ? why : "malformed bearer response";
			return SASL_MALFORMED;
		}
		if (cred.userlen == 0) {
			x->errstr = "no user name (authzid) in the response";
			return SASL_MALFORMED;
		}
		sasl_set_user(x, cred.user, cred.userlen);
		xfree_secret(x->token, x->tokenlen);
		x->token = xmalloc(cred.tokenlen + 1);
		memcpy(x->token, cred.token, cred.tokenlen);
		x->token[cred.tokenlen] = '\0';
		x->tokenlen = cred.tokenlen;
		explicit_bzero(&cred, sizeof(cred));
		x->state = 2;
		return SASL_VERIFY_TOKEN;
	case 3:
		/* the answer to the error challenge ends the exchange */
		x->errstr = "token refused";
		return SASL_FAILED;
	default:
		x->errstr = "unexpected response";
		return SASL_MALFORMED;
	}
}

static enum sasl_status
sasl_bearer_resume(struct sasl_exchange *x, struct buf *out)
{
	if (x->state != 2 || !x->has_verdict) {
		x->errstr = "resume without a verdict";
		return SASL_MALFORMED;
	}
	xfree_secret(x->token, x->tokenlen);
	x->token = NULL;
	x->tokenlen = 0;
	if (x->verdict_ok) {
		x->state = 4;
		return SASL_DONE;
	}
	x->state = 3;
	if (x->verdict_error == NULL || buf_append_str(out, x->verdict_error) == -1) {
		x->errstr = "token refused";
		return SASL_FAILED;
	}
	return SASL_CONTINUE;
}

const struct sasl_mech sasl_bearer_mech_xoauth2 = {
    .name = "XOAUTH2",
    .flags = SASL_F_PLAINTEXT,
    .variant = SASL_OAUTH_XOAUTH2,
    .step = sasl_bearer_step,
    .resume = sasl_bearer_resume,
};

const struct sasl_mech sasl_bearer_mech_oauthbearer = {
    .name = "OAUTHBEARER",
    .flags = SASL_F_PLAINTEXT,
    .variant = SASL_OAUTH_OAUTHBEARER,
    .step = sasl_bearer_step,
    .resume = sasl_bearer_resume,
};
