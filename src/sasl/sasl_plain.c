/*
 * sasl_plain: the PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login)
 * mechanisms. Both end in SASL_VERIFY_PLAIN with a user and password that
 * the session hands to the authdb; both reveal the password, so they are
 * offered inside TLS only (SASL_F_PLAINTEXT).
 *
 * LOGIN states: 0 = send "Username:", 1 = got user, send "Password:",
 * 2 = got password. An initial response to AUTH LOGIN is the user name.
 */
#include "sasl/sasl_plain.h"

#include <string.h>

#include "sasl/sasl_priv.h"

static bool
sasl_plain_has_nul(const char *p, size_t n)
{
	return memchr(p, '\0', n) != NULL;
}

int
sasl_plain_decode(const char *msg, size_t len, const char **user_r, size_t *userlen_r,
    const char **pass_r, size_t *passlen_r)
{
	const char *nul1, *nul2, *authzid = msg, *user, *pass;
	size_t zlen, ulen, plen;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return -1;
	zlen = (size_t)(nul1 - msg);
	user = nul1 + 1;
	nul2 = memchr(user, '\0', len - zlen - 1);
	if (nul2 == NULL)
		return -1;
	ulen = (size_t)(nul2 - user);
	pass = nul2 + 1;
	plen = len - zlen - ulen - 2;
	if (ulen == 0 || ulen > SASL_USER_MAX || plen == 0 || plen > SASL_SECRET_MAX)
		return -1;
	if (sasl_plain_has_nul(pass, plen))
		return -1;
	/* RFC 4616 2: an authzid equal to the authcid is the same as none */
	if (zlen != 0 && (zlen != ulen || memcmp(authzid, user, ulen) != 0))
		return -1;
	*user_r = user;
	*userlen_r = ulen;
	*pass_r = pass;
	*passlen_r = plen;
	return 0;
}

static enum sasl_status
sasl_plain_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	const char *user, *pass;
	size_t ulen, plen;

	if (!has_input) {
		/* RFC 4954 4: empty challenge, the client then sends its response */
		if (x->state != 0)
			return SASL_MALFORMED;
		x->state = 1;
		return SASL_CONTINUE;
	}
	if (sasl_plain_decode(in, inlen, &user, &ulen, &pass, &plen) == -1)
		return SASL_MALFORMED;
	memcpy(x->user, user, ulen);
	x->user[ulen] = '\0';
	sasl_set_password(x, pass, plen);
	x->state = 2;
	return SASL_VERIFY_PLAIN;
}

static enum sasl_status
sasl_plain_login_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	switch (x->state) {
	case 0:
		if (!has_input) {
			x->state = 1;
			return buf_append_str(out, "Username:") == 0 ? SASL_CONTINUE
			                                             : SASL_MALFORMED;
		}
		/* initial response carries the user name */
		/* FALLTHROUGH */
	case 1:
		if (!has_input || !sasl_user_ok(in, inlen))
			return SASL_MALFORMED;
		memcpy(x->user, in, inlen);
		x->user[inlen] = '\0';
		x->state = 2;
		return buf_append_str(out, "Password:") == 0 ? SASL_CONTINUE : SASL_MALFORMED;
	case 2:
		if (!has_input || inlen == 0 || inlen > SASL_SECRET_MAX ||
		    sasl_plain_has_nul(in, inlen))
			return SASL_MALFORMED;
		sasl_set_password(x, in, inlen);
		x->state = 3;
		return SASL_VERIFY_PLAIN;
	default:
		return SASL_MALFORMED;
	}
}

const struct sasl_mech sasl_plain_mech_plain = {
    .name = "PLAIN",
    .flags = SASL_F_PLAINTEXT,
    .step = sasl_plain_step,
};

const struct sasl_mech sasl_plain_mech_login = {
    .name = "LOGIN",
    .flags = SASL_F_PLAINTEXT,
    .step = sasl_plain_login_step,
};
