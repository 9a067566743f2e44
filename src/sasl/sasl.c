/*
 * sasl: an exchange, whatever its mechanism: it dispatches each step
 * through the mechanism's vtable (sasl_priv.h) and holds what the session
 * hands over (context, keys, verdicts) and what the mechanisms found (user,
 * password, token), wiping the secrets when freed. The mechanisms are
 * sasl_plain.c (PLAIN, LOGIN), sasl_scram.c, sasl_cram.c and sasl_bearer.c;
 * sasl_mech.c finds them by name.
 */
#include "sasl/sasl.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "sasl/sasl_priv.h"

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
	if (x->mech->free != NULL)
		x->mech->free(x);
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

void
sasl_set_password(struct sasl_exchange *x, const char *p, size_t n)
{
	xfree_secret(x->password, x->passlen);
	x->password = xmalloc(n + 1);
	memcpy(x->password, p, n);
	x->password[n] = '\0';
	x->passlen = n;
}

bool
sasl_user_ok(const char *p, size_t n)
{
	return n > 0 && n <= SASL_USER_MAX && memchr(p, '\0', n) == NULL;
}

enum sasl_status
sasl_step(struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	x->errstr = NULL;
	return x->mech->step(x, in, inlen, has_input, out);
}

enum sasl_status
sasl_resume(struct sasl_exchange *x, struct buf *out)
{
	x->errstr = NULL;
	if (x->mech->resume == NULL) {
		x->errstr = "resume without a pending request";
		return SASL_MALFORMED;
	}
	return x->mech->resume(x, out);
}
