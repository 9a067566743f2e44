/*
 * oauth: the asynchronous front of bearer-token verification (oauth.h).
 *
 * State: the settings (copied strings), the JWKS cache (auth/jwks), the
 * introspection client secret; a lib/workpool of requests bounded by
 * queue (full: TEMPFAIL, posted) with workers threads.
 *
 * Ownership: a request owns copies of the user and the token (the token in
 * memory wiped before it is freed); its answer is a heap reply handed to
 * loop_post and freed by oauth_reply_run on the loop thread after the
 * callback. No reply refers to the struct oauth, so answers may still run
 * after oauth_free. A request with no callback is the background JWKS
 * prefetch made at open.
 */
#include "auth/oauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/https.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/workpool.h"
#include "lib/xalloc.h"
#include "lib/mailbox.h"

struct oauth_req {
	struct mailbox *mb;
	uint64_t session_id;
	char *user;
	size_t userlen;
	char *token;
	size_t tokenlen;
	oauth_done_cb *cb; /* NULL: JWKS prefetch */
	void *ctx;
};

struct oauth_reply {
	oauth_done_cb *cb;
	void *ctx;
	uint64_t session_id;
	enum oauth_result result;
	const char *reason;
};

struct oauth {
	char *issuer;
	char *audience;
	char *user_claim;
	char *openid_config;
	char *introspection;
	char *introspection_ca;
	char *client_id;
	char *client_secret;
	struct jwks_cache *jwks; /* NULL: no JWKS configured */
	struct workpool *pool; /* of struct oauth_req */
};

static void
oauth_req_free(struct oauth_req *r)
{
	if (r == NULL)
		return;
	free(r->user);
	xfree_secret(r->token, r->tokenlen + 1);
	free(r);
}

static void
oauth_reply_run(void *arg)
{
	struct oauth_reply *rep = arg;

	rep->cb(rep->ctx, rep->session_id, rep->result, rep->reason);
	free(rep);
}

/* Posts the answer to r and frees r. */
static void
oauth_answer(struct oauth_req *r, enum oauth_result result, const char *reason)
{
	struct oauth_reply *rep;

	if (r->cb != NULL) {
		rep = xcalloc(1, sizeof(*rep));
		rep->cb = r->cb;
		rep->ctx = r->ctx;
		rep->session_id = r->session_id;
		rep->result = result;
		rep->reason = reason;
		mailbox_post(r->mb, oauth_reply_run, rep);
	}
	oauth_req_free(r);
}

static enum oauth_result
oauth_check_jwt(struct oauth *o, struct oauth_req *r, int64_t now, const char **reason)
{
	struct jwt_policy pol = {o->issuer, o->audience, o->user_claim};
	struct jwks *keys, *fresh;
	enum jwt_result jr;

	keys = jwks_cache_get(o->jwks, now);
	if (keys == NULL) {
		*reason = "jwks unavailable";
		return OAUTH_TEMPFAIL;
	}
	jr = jwt_verify(r->token, r->tokenlen, keys, &pol, r->user, r->userlen, now);
	if (jr == JWT_KID_UNKNOWN && (fresh = jwks_cache_refresh(o->jwks, now)) != NULL) {
		/* the issuer may have rotated its keys since we fetched them */
		jwks_unref(keys);
		keys = fresh;
		jr = jwt_verify(r->token, r->tokenlen, keys, &pol, r->user, r->userlen, now);
	}
	jwks_unref(keys);
	*reason = jwt_result_name(jr);
	return jr == JWT_OK ? OAUTH_OK : OAUTH_INVALID;
}

/* application/x-www-form-urlencoded (HTML 5 / RFC 7662 2.1 body) */
static int
oauth_form_append(struct buf *b, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			if (buf_append(b, p + i, 1) == -1)
				return -1;
		} else if (buf_append(b, e, 3) == -1)
			return -1;
	}
	return 0;
}

/* The RFC 7662 2.2 answer for the token of r. */
static enum oauth_result
oauth_introspect_answer(
    struct oauth *o, struct oauth_req *r, json_t *a, int64_t now, const char **reason)
{
	json_t *v;
	double t = (double)now;
	size_t i;
	bool found;

	if (!json_is_true(json_object_get(a, "active"))) {
		*reason = "inactive token";
		return OAUTH_INVALID;
	}
	v = json_object_get(a, "exp");
	if (v != NULL && (!json_is_number(v) || t >= json_number_value(v) + JWT_LEEWAY)) {
		*reason = "expired";
		return OAUTH_INVALID;
	}
	v = json_object_get(a, "nbf");
	if (v != NULL && (!json_is_number(v) || t + JWT_LEEWAY < json_number_value(v))) {
		*reason = "not yet valid (nbf)";
		return OAUTH_INVALID;
	}
	v = json_object_get(a, "iss");
	if (v != NULL && !(json_is_string(v) && strcmp(json_string_value(v), o->issuer) == 0)) {
		*reason = "wrong issuer";
		return OAUTH_INVALID;
	}
	v = json_object_get(a, "aud");
	if (v != NULL) {
		found = json_is_string(v) && strcmp(json_string_value(v), o->audience) == 0;
		if (json_is_array(v)) {
			json_t *e;

			json_array_foreach(v, i, e) found = found ||
			    (json_is_string(e) && strcmp(json_string_value(e), o->audience) == 0);
		}
		if (!found) {
			*reason = "wrong audience";
			return OAUTH_INVALID;
		}
	}
	v = json_object_get(a, o->user_claim);
	if (v == NULL)
		v = json_object_get(a, "username");
	if (!json_is_string(v)) {
		*reason = "no user claim";
		return OAUTH_INVALID;
	}
	if (!jwt_user_matches(json_string_value(v), json_string_length(v), r->user, r->userlen)) {
		*reason = "user claim does not match";
		return OAUTH_INVALID;
	}
	*reason = "ok";
	return OAUTH_OK;
}

static enum oauth_result
oauth_introspect(struct oauth *o, struct oauth_req *r, int64_t now, const char **reason)
{
	struct https_req req = {
	    .url = o->introspection,
	    .cafile = o->introspection_ca,
	    .user = o->client_id,
	    .password = o->client_secret,
	};
	struct buf form, body;
	enum oauth_result result = OAUTH_TEMPFAIL;
	json_error_t jerr;
	json_t *a = NULL;
	char err[512];
	long status = 0;

	buf_init(&form, 3 * JWT_TOKEN_MAX + 64);
	buf_set_secret(&form);
	buf_init(&body, OAUTH_INTROSPECTION_MAX);
	*reason = "introspection unavailable";
	/* RFC 7662 2.1 */
	if (buf_append_str(&form, "token=") == -1 ||
	    oauth_form_append(&form, r->token, r->tokenlen) == -1 ||
	    buf_append_str(&form, "&token_type_hint=access_token") == -1)
		goto done;
	req.post = form.data;
	req.postlen = form.len;
	if (https_request(&req, &body, &status, NULL, err, sizeof(err)) == -1) {
		log_event(LOG_WARNING, "oauth_introspection_failed", r->session_id, "{s:s, s:s}",
		    "url", o->introspection, "error", err);
		goto done;
	}
	if (status != 200) {
		/* 401/403: our client credentials are wrong; either way not the
		 * user's fault */
		log_event(LOG_WARNING, "oauth_introspection_failed", r->session_id, "{s:s, s:I}",
		    "url", o->introspection, "status", (json_int_t)status);
		goto done;
	}
	a = json_loadb(body.data != NULL ? body.data : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(a)) {
		log_event(LOG_WARNING, "oauth_introspection_failed", r->session_id, "{s:s, s:s}",
		    "url", o->introspection, "error", "answer is not a JSON object");
		goto done;
	}
	result = oauth_introspect_answer(o, r, a, now, reason);
done:
	json_decref(a);
	buf_free(&form);
	buf_free(&body);
	return result;
}

/* A request, on a worker (workpool_run_cb). */
static void
oauth_process(void *arg, void *item)
{
	struct oauth *o = arg;
	struct oauth_req *r = item;
	int64_t now = (int64_t)time(NULL);
	enum oauth_result result = OAUTH_INVALID;
	const char *reason = "not a JWT and no introspection";

	if (r->cb == NULL) {
		/* background prefetch at open */
		jwks_unref(jwks_cache_get(o->jwks, now));
		oauth_req_free(r);
		return;
	}
	if (r->userlen == 0)
		reason = "no user";
	else if (r->tokenlen > JWT_TOKEN_MAX)
		reason = jwt_result_name(JWT_TOO_LARGE);
	else if (o->jwks != NULL && jwt_is_compact(r->token, r->tokenlen))
		result = oauth_check_jwt(o, r, now, &reason);
	else if (o->introspection != NULL)
		result = oauth_introspect(o, r, now, &reason);
	oauth_answer(r, result, reason);
}

/* A request still queued at oauth_free (workpool_drop_cb). */
static void
oauth_drop(void *arg, void *item)
{
	oauth_answer(item, OAUTH_TEMPFAIL, "shutting down");
}

static void
oauth_enqueue(struct oauth *o, struct oauth_req *r)
{
	if (!workpool_submit(o->pool, r)) {
		/* full or stopping; RFC 4954 6: 454 4.7.0 temporary authentication failure */
		oauth_answer(r, OAUTH_TEMPFAIL, "verifier busy");
	}
}

void
oauth_verify(struct oauth *o, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *token, size_t tokenlen, oauth_done_cb *cb, void *ctx)
{
	struct oauth_req *r = xcalloc(1, sizeof(*r));

	r->mb = mb;
	r->session_id = session_id;
	r->cb = cb;
	r->ctx = ctx;
	r->userlen = userlen;
	r->user = xmalloc(userlen + 1);
	memcpy(r->user, user, userlen);
	r->user[userlen] = '\0';
	r->tokenlen = tokenlen;
	r->token = xmalloc(tokenlen + 1);
	memcpy(r->token, token, tokenlen);
	r->token[tokenlen] = '\0';
	oauth_enqueue(o, r);
}

bool
oauth_is_configured(const struct conf *c)
{
	return c->oauth_jwks != NULL || c->oauth_introspection != NULL;
}

struct oauth *
oauth_open(const struct conf *c, char *err, size_t errlen)
{
	struct oauth_params p = {
	    .jwks = c->oauth_jwks,
	    .jwks_ca = c->oauth_jwks_ca,
	    .introspection_ca = c->oauth_introspection_ca,
	    .introspection_client = c->oauth_introspection_client,
	    .introspection_secret_file = c->oauth_introspection_secret_file,
	    .issuer = c->oauth_issuer,
	    .audience = c->oauth_audience,
	    .user_claim = c->oauth_user_claim,
	    .introspection = c->oauth_introspection,
	};

	if (!oauth_is_configured(c)) {
		if (errlen > 0)
			err[0] = '\0';
		return NULL;
	}
	return oauth_open_params(&p, err, errlen);
}

static int
oauth_read_secret(const char *path, char **secret_r, char *err, size_t errlen)
{
	struct buf b;
	unsigned max_age;
	char e[512];
	int r = -1;

	buf_init(&b, OAUTH_SECRET_MAX);
	buf_set_secret(&b);
	/* jwks_fetch of a path is a capped file read */
	if (jwks_fetch(path, NULL, &b, &max_age, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "[oauth] introspection_secret_file: %s", e);
		goto fail;
	}
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	if (b.len == 0 || memchr(b.data, '\0', b.len) != NULL) {
		snprintf(
		    err, errlen, "[oauth] introspection_secret_file %s: empty or binary", path);
		goto fail;
	}
	*secret_r = buf_strdup(&b);
	r = 0;
fail:
	buf_free(&b);
	return r;
}

static void
oauth_destroy(struct oauth *o)
{
	jwks_cache_free(o->jwks);
	free(o->issuer);
	free(o->audience);
	free(o->user_claim);
	free(o->openid_config);
	free(o->introspection);
	free(o->introspection_ca);
	free(o->client_id);
	xfree_secret_str(o->client_secret);
	free(o);
}

struct oauth *
oauth_open_params(const struct oauth_params *p, char *err, size_t errlen)
{
	struct oauth *o;
	size_t n, max_queued;
	static const char wk[] = "/.well-known/openid-configuration";

	if ((p->jwks == NULL && p->introspection == NULL) || p->issuer == NULL ||
	    p->audience == NULL) {
		snprintf(err, errlen, "[oauth] needs jwks or introspection, issuer and audience");
		return NULL;
	}
	if (p->introspection != NULL && strncmp(p->introspection, "https://", 8) != 0) {
		snprintf(err, errlen, "[oauth] introspection must be an https:// URL");
		return NULL;
	}
	https_global_init();
	o = xcalloc(1, sizeof(*o));
	o->issuer = xstrdup(p->issuer);
	o->audience = xstrdup(p->audience);
	o->user_claim = xstrdup(p->user_claim != NULL ? p->user_claim : "email");
	if (strncmp(o->issuer, "https://", 8) == 0) {
		n = strlen(o->issuer);
		if (n > 0 && o->issuer[n - 1] == '/')
			n--;
		o->openid_config = xmalloc(n + sizeof(wk));
		memcpy(o->openid_config, o->issuer, n);
		memcpy(o->openid_config + n, wk, sizeof(wk));
	}
	if (p->introspection != NULL) {
		o->introspection = xstrdup(p->introspection);
		if (p->introspection_ca != NULL)
			o->introspection_ca = xstrdup(p->introspection_ca);
		if (p->introspection_client != NULL)
			o->client_id = xstrdup(p->introspection_client);
		if (p->introspection_secret_file != NULL &&
		    oauth_read_secret(
		        p->introspection_secret_file, &o->client_secret, err, errlen) == -1)
			goto fail;
	}
	if (p->jwks != NULL) {
		o->jwks = jwks_cache_new(p->jwks, p->jwks_ca);
		/* a local file is read now: a bad one is a configuration error */
		if (strncmp(p->jwks, "https://", 8) != 0 &&
		    jwks_cache_reload(o->jwks, (int64_t)time(NULL), err, errlen) == -1)
			goto fail;
	}
	n = p->workers > 0 ? (size_t)p->workers : OAUTH_WORKERS_DEFAULT;
	max_queued = p->queue > 0 ? (size_t)p->queue : OAUTH_QUEUE_DEFAULT;
	o->pool = workpool_new("oauth", n, max_queued, oauth_process, o, err, errlen);
	if (o->pool == NULL)
		goto fail;
	if (p->jwks != NULL && strncmp(p->jwks, "https://", 8) == 0) {
		/* fetch the keys before the first login needs them */
		oauth_enqueue(o, xcalloc(1, sizeof(struct oauth_req)));
	}
	return o;
fail:
	oauth_destroy(o);
	return NULL;
}

int
oauth_reload(struct oauth *o, char *err, size_t errlen)
{
	if (o->jwks == NULL)
		return 0;
	return jwks_cache_reload(o->jwks, (int64_t)time(NULL), err, errlen);
}

void
oauth_free(struct oauth *o)
{
	if (o == NULL)
		return;
	/* pending requests are answered TEMPFAIL, then the workers joined */
	workpool_free(o->pool, oauth_drop);
	oauth_destroy(o);
}

const char *
oauth_openid_configuration(const struct oauth *o)
{
	return o->openid_config;
}
