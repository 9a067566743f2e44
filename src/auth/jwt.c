/*
 * jwt: JWS compact JWT verification with OpenSSL EVP and jansson; the rules
 * are in jwt.h. The order of checks matters: size first (nothing decoded
 * from an oversized token), then the header (alg, crit, kid) and the
 * signature, and only then the payload is parsed, so claims are read only
 * from signed bytes.
 *
 * Decoded header and payload live in buffers capped at JWT_TOKEN_MAX;
 * jansson's parser stops at JSON_PARSER_MAX_DEPTH (2048) nested levels, and
 * an 8 KiB token holds at most ~6,000 brackets, so a nesting bomb fails to
 * parse and costs a bounded recursion. The payload buffer is wiped: a token
 * is a bearer credential even after it expires.
 */
#include "auth/jwt.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "auth/jwks.h"
#include "lib/base64.h"
#include "lib/buf.h"

#define JWT_ES256_SIG_LEN 64 /* RFC 7518 3.4: R || S, 32 bytes each */

struct jwt_parts {
	const char *header; /* base64url */
	size_t headerlen;
	const char *payload;
	size_t payloadlen;
	const char *sig;
	size_t siglen;
	size_t signedlen; /* header "." payload */
};

static int
jwt_split(const char *token, size_t len, struct jwt_parts *p)
{
	const char *d1, *d2;

	d1 = memchr(token, '.', len);
	if (d1 == NULL)
		return -1;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
		return -1;
	p->header = token;
	p->headerlen = (size_t)(d1 - token);
	p->payload = d1 + 1;
	p->payloadlen = (size_t)(d2 - p->payload);
	p->sig = d2 + 1;
	p->siglen = len - (size_t)(p->sig - token);
	p->signedlen = (size_t)(d2 - token);
	if (p->headerlen == 0 || p->payloadlen == 0)
		return -1;
	return 0;
}

/* Parses decoded bytes as a JSON object. */
static enum jwt_result
jwt_parse_object(const struct buf *b, json_t **out)
{
	json_error_t jerr;

	/* RFC 7515 5.2 step 4 / RFC 7519 7.2 step 9: duplicate member names
	 * are refused, not resolved (a validator and a consumer could pick
	 * different ones); no JSON_ALLOW_NUL, so "\u0000" in a string fails */
	*out = json_loadb(b->data != NULL ? b->data : "", b->len, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL)
		return json_error_code(&jerr) == json_error_duplicate_key ? JWT_DUPLICATE_KEY
		                                                          : JWT_BAD_JSON;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return JWT_BAD_JSON;
	}
	return JWT_OK;
}

static bool
jwt_str_is(json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* The key type alg needs, or the reason alg is refused. */
static enum jwt_result
jwt_alg(json_t *alg, enum jwk_type *type_r)
{
	const char *a;

	if (!json_is_string(alg))
		return JWT_ALG_UNSUPPORTED;
	a = json_string_value(alg);
	if (strcasecmp(a, "none") == 0)
		return JWT_ALG_NONE;
	if (strncmp(a, "HS", 2) == 0)
		return JWT_ALG_HMAC;
	if (strcmp(a, "RS256") == 0)
		*type_r = JWK_RSA;
	else if (strcmp(a, "ES256") == 0)
		*type_r = JWK_EC_P256;
	else if (strcmp(a, "EdDSA") == 0)
		*type_r = JWK_ED25519;
	else
		return JWT_ALG_UNSUPPORTED;
	return JWT_OK;
}

static enum jwt_result
jwt_pick_key(json_t *header, const struct jwks *keys, enum jwk_type type, const struct jwk **k_r)
{
	json_t *kid = json_object_get(header, "kid");
	bool kid_seen = false;

	*k_r = NULL;
	if (kid == NULL) {
		if (jwks_count(keys) != 1)
			return JWT_KID_REQUIRED;
		*k_r = jwks_key(keys, 0);
		return (*k_r)->type == type ? JWT_OK : JWT_ALG_KEY_MISMATCH;
	}
	if (!json_is_string(kid))
		return JWT_MALFORMED;
	for (size_t i = 0; i < jwks_count(keys); i++) {
		const struct jwk *k = jwks_key(keys, i);

		if (k->kid == NULL || strcmp(k->kid, json_string_value(kid)) != 0)
			continue;
		kid_seen = true;
		if (k->type == type) {
			*k_r = k;
			return JWT_OK;
		}
	}
	return kid_seen ? JWT_ALG_KEY_MISMATCH : JWT_KID_UNKNOWN;
}

/* RFC 7518 3.4: the JWS ES256 signature is R || S; EVP wants DER. */
static int
jwt_es256_der(const unsigned char *sig, size_t siglen, unsigned char **der_r, int *derlen_r)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int rc = -1;

	*der_r = NULL;
	if (siglen != JWT_ES256_SIG_LEN)
		return -1;
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	es = ECDSA_SIG_new();
	if (r == NULL || s == NULL || es == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		goto fail;
	r = s = NULL; /* owned by es */
	*derlen_r = i2d_ECDSA_SIG(es, der_r);
	if (*derlen_r <= 0)
		goto fail;
	rc = 0;
fail:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return rc;
}

static bool
jwt_sig_ok(const struct jwk *k, const char *data, size_t datalen, const struct buf *sig)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const unsigned char *s = (const unsigned char *)sig->data;
	size_t slen = sig->len;
	unsigned char *der = NULL;
	int derlen = 0;
	bool ok = false;

	if (md == NULL || sig->len == 0)
		goto fail;
	if (k->type == JWK_EC_P256) {
		if (jwt_es256_der(s, slen, &der, &derlen) == -1)
			goto fail;
		s = der;
		slen = (size_t)derlen;
	}
	/* RFC 8037 3.1: Ed25519 is one-shot, without a separate digest */
	if (EVP_DigestVerifyInit(
	        md, NULL, k->type == JWK_ED25519 ? NULL : EVP_sha256(), NULL, k->pkey) != 1)
		goto fail;
	ok = EVP_DigestVerify(md, s, slen, (const unsigned char *)data, datalen) == 1;
fail:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok;
}

/* A NumericDate claim (RFC 7519 2): -1 if present but not a number. */
static int
jwt_date(json_t *payload, const char *name, bool *present_r, double *v_r)
{
	json_t *v = json_object_get(payload, name);

	*present_r = v != NULL;
	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return -1;
	*v_r = json_number_value(v);
	return 0;
}

static enum jwt_result
jwt_audience(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;
	bool found = false;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0 ? JWT_OK : JWT_WRONG_AUDIENCE;
	if (!json_is_array(aud))
		return aud == NULL ? JWT_WRONG_AUDIENCE : JWT_BAD_CLAIM;
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v))
			return JWT_BAD_CLAIM;
		if (strcmp(json_string_value(v), want) == 0)
			found = true;
	}
	return found ? JWT_OK : JWT_WRONG_AUDIENCE;
}

bool
jwt_user_matches(const char *claim, size_t claimlen, const char *user, size_t userlen)
{
	const char *ca = memrchr(claim, '@', claimlen), *ua = memrchr(user, '@', userlen);
	size_t cl, ul;

	if (ca == NULL || ua == NULL)
		return ca == NULL && ua == NULL && claimlen == userlen &&
		    memcmp(claim, user, claimlen) == 0;
	cl = (size_t)(ca - claim);
	ul = (size_t)(ua - user);
	if (cl != ul || memcmp(claim, user, cl) != 0)
		return false;
	if (claimlen - cl != userlen - ul)
		return false;
	for (size_t i = cl + 1; i < claimlen; i++) {
		unsigned char a = (unsigned char)claim[i], b = (unsigned char)user[i];

		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (unsigned char)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return true;
}

static enum jwt_result
jwt_claims(
    json_t *pl, const struct jwt_policy *policy, const char *user, size_t userlen, int64_t now)
{
	double exp = 0, nbf = 0, iat = 0, t = (double)now;
	bool has_exp, has_nbf, has_iat;
	json_t *v;
	enum jwt_result r;

	if (jwt_date(pl, "exp", &has_exp, &exp) == -1 ||
	    jwt_date(pl, "nbf", &has_nbf, &nbf) == -1 || jwt_date(pl, "iat", &has_iat, &iat) == -1)
		return JWT_BAD_CLAIM;
	/* RFC 7519 4.1.4: not accepted on or after exp (plus leeway) */
	if (!has_exp)
		return JWT_NO_EXP;
	if (t >= exp + JWT_LEEWAY)
		return JWT_EXPIRED;
	/* RFC 7519 4.1.5: not accepted before nbf (minus leeway) */
	if (has_nbf && t + JWT_LEEWAY < nbf)
		return JWT_NOT_YET_VALID;
	if (has_iat && iat > t + JWT_LEEWAY)
		return JWT_IAT_FUTURE;
	/* RFC 7519 4.1.1: iss, a case-sensitive string */
	v = json_object_get(pl, "iss");
	if (!jwt_str_is(v, policy->issuer))
		return JWT_WRONG_ISSUER;
	/* RFC 7519 4.1.3: the token must name us among its audiences */
	if ((r = jwt_audience(json_object_get(pl, "aud"), policy->audience)) != JWT_OK)
		return r;
	v = json_object_get(pl, policy->user_claim);
	if (v == NULL)
		return JWT_NO_USER_CLAIM;
	if (!json_is_string(v))
		return JWT_BAD_CLAIM;
	if (!jwt_user_matches(json_string_value(v), json_string_length(v), user, userlen))
		return JWT_WRONG_USER;
	/* OpenID Connect Core 5.1: an email the provider has not verified */
	if (strcmp(policy->user_claim, "email") == 0 &&
	    json_is_false(json_object_get(pl, "email_verified")))
		return JWT_EMAIL_UNVERIFIED;
	return JWT_OK;
}

enum jwt_result
jwt_verify(const char *token, size_t len, const struct jwks *keys, const struct jwt_policy *policy,
    const char *user, size_t userlen, int64_t now)
{
	struct jwt_parts p;
	struct buf hb, pb, sb;
	json_t *header = NULL, *payload = NULL;
	const struct jwk *k = NULL;
	enum jwk_type type = JWK_RSA;
	enum jwt_result r;

	if (len > JWT_TOKEN_MAX)
		return JWT_TOO_LARGE;
	if (jwt_split(token, len, &p) == -1)
		return JWT_MALFORMED;
	buf_init(&hb, JWT_TOKEN_MAX);
	buf_init(&pb, JWT_TOKEN_MAX);
	buf_set_secret(&pb);
	buf_init(&sb, JWT_TOKEN_MAX);
	buf_set_secret(&sb); /* with header and payload it is the bearer token */
	if (base64url_decode(p.header, p.headerlen, &hb) == -1) {
		r = JWT_MALFORMED;
		goto done;
	}
	if ((r = jwt_parse_object(&hb, &header)) != JWT_OK)
		goto done;
	if ((r = jwt_alg(json_object_get(header, "alg"), &type)) != JWT_OK)
		goto done;
	/* RFC 7515 4.1.11: extensions we do not understand must fail */
	if (json_object_get(header, "crit") != NULL) {
		r = JWT_CRIT;
		goto done;
	}
	if ((r = jwt_pick_key(header, keys, type, &k)) != JWT_OK)
		goto done;
	if (base64url_decode(p.sig, p.siglen, &sb) == -1) {
		r = JWT_MALFORMED;
		goto done;
	}
	/* the payload must be well-formed base64url before we spend a
	 * signature check on it */
	if (base64url_decode(p.payload, p.payloadlen, &pb) == -1) {
		r = JWT_MALFORMED;
		goto done;
	}
	if (!jwt_sig_ok(k, token, p.signedlen, &sb)) {
		r = JWT_BAD_SIGNATURE;
		goto done;
	}
	if ((r = jwt_parse_object(&pb, &payload)) != JWT_OK)
		goto done;
	r = jwt_claims(payload, policy, user, userlen, now);
done:
	json_decref(header);
	json_decref(payload);
	buf_free(&hb);
	buf_free(&pb);
	buf_free(&sb);
	return r;
}

bool
jwt_is_compact(const char *token, size_t len)
{
	struct jwt_parts p;
	struct buf b;
	bool ok;

	if (len > JWT_TOKEN_MAX || jwt_split(token, len, &p) == -1)
		return false;
	buf_init(&b, JWT_TOKEN_MAX);
	ok = base64url_decode(p.header, p.headerlen, &b) == 0 && b.len > 0 && b.data[0] == '{';
	buf_free(&b);
	return ok;
}

const char *
jwt_result_name(enum jwt_result r)
{
	switch (r) {
	case JWT_OK:
		return "ok";
	case JWT_TOO_LARGE:
		return "token too large";
	case JWT_MALFORMED:
		return "malformed token";
	case JWT_BAD_JSON:
		return "bad JSON";
	case JWT_DUPLICATE_KEY:
		return "duplicate JSON member";
	case JWT_ALG_NONE:
		return "unsigned token (alg none)";
	case JWT_ALG_HMAC:
		return "HMAC algorithm refused";
	case JWT_ALG_UNSUPPORTED:
		return "unsupported alg";
	case JWT_CRIT:
		return "crit header";
	case JWT_KID_REQUIRED:
		return "kid required";
	case JWT_KID_UNKNOWN:
		return "unknown kid";
	case JWT_ALG_KEY_MISMATCH:
		return "alg does not match the key";
	case JWT_BAD_SIGNATURE:
		return "bad signature";
	case JWT_BAD_CLAIM:
		return "malformed claim";
	case JWT_NO_EXP:
		return "no exp";
	case JWT_EXPIRED:
		return "expired";
	case JWT_NOT_YET_VALID:
		return "not yet valid (nbf)";
	case JWT_IAT_FUTURE:
		return "iat in the future";
	case JWT_WRONG_ISSUER:
		return "wrong issuer";
	case JWT_WRONG_AUDIENCE:
		return "wrong audience";
	case JWT_NO_USER_CLAIM:
		return "no user claim";
	case JWT_WRONG_USER:
		return "user claim does not match";
	case JWT_EMAIL_UNVERIFIED:
		return "email not verified";
	}
	return "unknown";
}
