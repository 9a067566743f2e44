/*
 * sasl: mechanism registry, the generic parts of an exchange (keys,
 * verdicts, resume) and the PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login) cores. Both end in SASL_VERIFY_PLAIN with a
 * user and password the session hands to the authdb. SCRAM lives in
 * sasl_scram.c, CRAM-MD5 in sasl_cram.c.
 *
 * LOGIN states: 0 = send "Username:", 1 = got user, send "Password:",
 * 2 = got password. An initial response to AUTH LOGIN is the user name.
 */
#include "sasl/sasl.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "sasl/sasl_priv.h"

static const struct sasl_mech sasl_mechs[] = {
    {"PLAIN", SASL_MECH_PLAIN, SASL_F_PLAINTEXT},
    {"LOGIN", SASL_MECH_LOGIN, SASL_F_PLAINTEXT},
    {"SCRAM-SHA-1", SASL_MECH_SCRAM_SHA1, 0},
    {"SCRAM-SHA-1-PLUS", SASL_MECH_SCRAM_SHA1_PLUS, SASL_F_PLUS},
    {"SCRAM-SHA-256", SASL_MECH_SCRAM_SHA256, 0},
    {"SCRAM-SHA-256-PLUS", SASL_MECH_SCRAM_SHA256_PLUS, SASL_F_PLUS},
    /* weak: offered only when listed in [auth] mechanisms */
    {"CRAM-MD5", SASL_MECH_CRAM_MD5, SASL_F_WEAK},
    /* bearer tokens are as good as passwords on the wire: TLS only */
    {"OAUTHBEARER", SASL_MECH_OAUTHBEARER, SASL_F_PLAINTEXT},
    {"XOAUTH2", SASL_MECH_XOAUTH2, SASL_F_PLAINTEXT},
};

/* Mechanisms smtpgate refuses as too weak (534 5.7.9) instead of unknown. */
static const char *const sasl_weak_names[] = {"CRAM-MD5", "DIGEST-MD5", "NTLM", "ANONYMOUS"};

const struct sasl_mech *
sasl_mech_find(const char *name)
{
	for (size_t i = 0; i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]); i++) {
		if (strcmp(sasl_mechs[i].name, name) == 0)
			return &sasl_mechs[i];
	}
	return NULL;
}

const char *
sasl_mech_name(const struct sasl_mech *m)
{
	return m->name;
}

unsigned
sasl_mech_flags(const struct sasl_mech *m)
{
	return m->flags;
}

bool
sasl_mech_is_known_weak(const char *name)
{
	for (size_t i = 0; i < sizeof(sasl_weak_names) / sizeof(sasl_weak_names[0]); i++) {
		if (strcmp(sasl_weak_names[i], name) == 0)
			return true;
	}
	return false;
}

struct sasl_exchange *
sasl_new(const struct sasl_mech *m)
{
	struct sasl_exchange *x = xcalloc(1, sizeof(*x));

	x->mech = m;
	return x;
}

void
sasl_free(struct sasl_exchange *x)
{
	if (x == NULL)
		return;
	sasl_scram_free(x);
	free(x->cram_challenge);
	free(x->hostname);
	xfree_secret(x->password, x->passlen);
	xfree_secret(x->token, x->tokenlen);
	free(x->verdict_error);
	explicit_bzero(x, sizeof(*x));
	free(x);
}

const char *
sasl_user(const struct sasl_exchange *x)
{
	return x->user;
}

void
sasl_set_user(struct sasl_exchange *x, const char *p, size_t n)
{
	if (n > SASL_USER_MAX)
		n = SASL_USER_MAX;
	memcpy(x->user, p, n);
	x->user[n] = '\0';
}

void
sasl_set_context(struct sasl_exchange *x, const struct sasl_context *ctx)
{
	free(x->hostname);
	x->ctx = *ctx;
	x->hostname = xstrdup(ctx->hostname != NULL ? ctx->hostname : "localhost");
	x->ctx.hostname = x->hostname;
}

enum sasl_keys_kind
sasl_keys_kind(const struct sasl_exchange *x)
{
	return x->keys_kind;
}

void
sasl_set_keys(struct sasl_exchange *x, const struct sasl_keys *k, const char *user)
{
	x->keys = *k;
	x->has_keys = true;
	x->user_known = user != NULL;
	if (user != NULL)
		sasl_set_user(x, user, strlen(user));
}

void
sasl_set_verdict(struct sasl_exchange *x, bool ok, const char *user, const char *error_json)
{
	x->has_verdict = true;
	x->verdict_ok = ok && user != NULL;
	if (user != NULL)
		sasl_set_user(x, user, strlen(user));
	free(x->verdict_error);
	x->verdict_error = error_json != NULL ? xstrdup(error_json) : NULL;
}

const char *
sasl_token(const struct sasl_exchange *x)
{
	return x->token != NULL ? x->token : "";
}

size_t
sasl_token_len(const struct sasl_exchange *x)
{
	return x->tokenlen;
}

const char *
sasl_errstr(const struct sasl_exchange *x)
{
	return x->errstr != NULL ? x->errstr : "";
}

const char *
sasl_password(const struct sasl_exchange *x)
{
	return x->password != NULL ? x->password : "";
}

size_t
sasl_password_len(const struct sasl_exchange *x)
{
	return x->passlen;
}

static bool
sasl_has_nul(const char *p, size_t n)
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
	if (sasl_has_nul(pass, plen))
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

static void
sasl_set_password(struct sasl_exchange *x, const char *p, size_t n)
{
	xfree_secret(x->password, x->passlen);
	x->password = xmalloc(n + 1);
	memcpy(x->password, p, n);
	x->password[n] = '\0';
	x->passlen = n;
}

static bool
sasl_user_ok(const char *p, size_t n)
{
	if (n == 0 || n > SASL_USER_MAX || sasl_has_nul(p, n))
		return false;
	return true;
}

static enum sasl_status
sasl_plain_step(struct sasl_exchange *x, const char *in, size_t inlen, bool has_input)
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
sasl_login_step(
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
		if (!has_input || inlen == 0 || inlen > SASL_SECRET_MAX || sasl_has_nul(in, inlen))
			return SASL_MALFORMED;
		sasl_set_password(x, in, inlen);
		x->state = 3;
		return SASL_VERIFY_PLAIN;
	default:
		return SASL_MALFORMED;
	}
}

enum sasl_status
sasl_step(struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	x->errstr = NULL;
	switch (x->mech->id) {
	case SASL_MECH_PLAIN:
		return sasl_plain_step(x, in, inlen, has_input);
	case SASL_MECH_LOGIN:
		return sasl_login_step(x, in, inlen, has_input, out);
	case SASL_MECH_SCRAM_SHA1:
	case SASL_MECH_SCRAM_SHA1_PLUS:
	case SASL_MECH_SCRAM_SHA256:
	case SASL_MECH_SCRAM_SHA256_PLUS:
		return sasl_scram_step(x, in, inlen, has_input, out);
	case SASL_MECH_CRAM_MD5:
		return sasl_cram_step(x, in, inlen, has_input, out);
	case SASL_MECH_XOAUTH2:
	case SASL_MECH_OAUTHBEARER:
		return sasl_bearer_step(x, in, inlen, has_input, out);
	}
	return SASL_MALFORMED;
}

enum sasl_status
sasl_resume(struct sasl_exchange *x, struct buf *out)
{
	x->errstr = NULL;
	switch (x->mech->id) {
	case SASL_MECH_SCRAM_SHA1:
	case SASL_MECH_SCRAM_SHA1_PLUS:
	case SASL_MECH_SCRAM_SHA256:
	case SASL_MECH_SCRAM_SHA256_PLUS:
		return sasl_scram_resume(x, out);
	case SASL_MECH_CRAM_MD5:
		return sasl_cram_resume(x, out);
	case SASL_MECH_XOAUTH2:
	case SASL_MECH_OAUTHBEARER:
		return sasl_bearer_resume(x, out);
	default:
		x->errstr = "resume without a pending request";
		return SASL_MALFORMED;
	}
}
