/*
 * Unit tests for auth/jwt and auth/jwks. Keys (RSA-2048, P-256, Ed25519)
 * are generated here, the JWKS is built from them and every token is
 * minted and signed here with OpenSSL, so each rule of jwt.h has a token
 * that breaks exactly that rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#define ISS "https://issuer.example.test"
#define AUD "smtpgate"
#define USER "alice@example.test"

enum key_id {
	K_RSA,
	K_EC,
	K_ED,
	K_RSA_OTHER, /* not in the JWKS */
	K_EC_OTHER, /* not in the JWKS */
	K_MAX,
};

enum sign_mode {
	SIGN_OK, /* the right algorithm for the key */
	SIGN_ES_DER, /* ES256 but the signature left in DER */
	SIGN_HMAC_PEM, /* HS256 keyed with the RSA public key PEM */
	SIGN_EMPTY, /* no signature (alg none) */
};

static EVP_PKEY *keys[K_MAX];
static struct jwks *set; /* rsa1, ec1, ed1 (+ skipped junk) */
static int64_t now;
static const struct jwt_policy policy = {ISS, AUD, "email"};

static void
b64url(struct buf *out, const void *p, size_t n)
{
	assert_int_equal(base64url_encode(p, n, out), 0);
}

static char *
bn_b64url(const BIGNUM *bn, int pad)
{
	unsigned char bin[1024];
	struct buf b;
	int n = pad > 0 ? BN_bn2binpad(bn, bin, pad) : BN_bn2bin(bn, bin);
	char *s;

	assert_true(n > 0);
	buf_init(&b, 4096);
	b64url(&b, bin, (size_t)n);
	s = buf_strdup(&b);
	buf_free(&b);
	return s;
}

/* The public JWK of key k. */
static json_t *
jwk_of(enum key_id k, const char *kid)
{
	EVP_PKEY *p = keys[k];
	json_t *o;
	char *a, *b;

	if (EVP_PKEY_is_a(p, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;

		assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_N, &n), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_E, &e), 1);
		a = bn_b64url(n, 0);
		b = bn_b64url(e, 0);
		o = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", a, "e", b);
		BN_free(n);
		BN_free(e);
	} else if (EVP_PKEY_is_a(p, "EC")) {
		BIGNUM *x = NULL, *y = NULL;

		assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
		a = bn_b64url(x, 32);
		b = bn_b64url(y, 32);
		o = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", a, "y", b);
		BN_free(x);
		BN_free(y);
	} else {
		unsigned char raw[32];
		size_t rawlen = sizeof(raw);
		struct buf bb;

		assert_int_equal(EVP_PKEY_get_raw_public_key(p, raw, &rawlen), 1);
		buf_init(&bb, 256);
		b64url(&bb, raw, rawlen);
		a = buf_strdup(&bb);
		b = NULL;
		buf_free(&bb);
		o = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", a);
	}
	free(a);
	free(b);
	assert_non_null(o);
	if (kid != NULL)
		json_object_set_new(o, "kid", json_string(kid));
	return o;
}

static char *
rsa_pem(enum key_id k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	assert_int_equal(PEM_write_bio_PUBKEY(bio, keys[k]), 1);
	n = BIO_get_mem_data(bio, &p);
	s = xstrndup(p, (size_t)n);
	BIO_free(bio);
	return s;
}

static struct jwks *
jwks_of(json_t *keyarr)
{
	json_t *doc = json_pack("{s:o}", "keys", keyarr);
	char *s = json_dumps(doc, JSON_COMPACT);
	char err[256];
	struct jwks *k = jwks_parse(s, strlen(s), err, sizeof(err));

	if (k == NULL)
		fail_msg("jwks_parse: %s", err);
	free(s);
	json_decref(doc);
	return k;
}

/* Replaces $NOW, $EXP (now + 300), $PAST (now - 3600), $SOON (now + 30),
 * $LATE (now - 30), $FUTURE (now + 3600) in tmpl. */
static char *
subst(const char *tmpl)
{
	static const struct {
		const char *name;
		int64_t delta;
	} vars[] = {
	    {"$NOW", 0},
	    {"$EXP", 300},
	    {"$PAST", -3600},
	    {"$SOON", 30},
	    {"$LATE", -30},
	    {"$FUTURE", 3600},
	};
	struct buf b;
	const char *p = tmpl;
	char *s;

	buf_init(&b, 65536);
	while (*p != '\0') {
		size_t i;

		for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
			size_t n = strlen(vars[i].name);

			if (strncmp(p, vars[i].name, n) == 0) {
				assert_int_equal(
				    buf_printf(&b, "%lld", (long long)(now + vars[i].delta)), 0);
				p += n;
				break;
			}
		}
		if (i == sizeof(vars) / sizeof(vars[0])) {
			assert_int_equal(buf_append(&b, p, 1), 0);
			p++;
		}
	}
	s = buf_strdup(&b);
	buf_free(&b);
	return s;
}

/* header.payload.signature with the given header and payload JSON text. */
static char *
mint(const char *header, const char *payload, enum key_id k, enum sign_mode mode)
{
	struct buf t;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	char *pl = subst(payload), *s;
	EVP_MD_CTX *md;

	buf_init(&t, 1 << 20);
	b64url(&t, header, strlen(header));
	assert_int_equal(buf_append(&t, ".", 1), 0);
	b64url(&t, pl, strlen(pl));
	free(pl);
	switch (mode) {
	case SIGN_EMPTY:
		siglen = 0;
		break;
	case SIGN_HMAC_PEM: {
		char *pem = rsa_pem(K_RSA);
		unsigned int n = 0;

		assert_non_null(HMAC(EVP_sha256(), pem, (int)strlen(pem),
		    (const unsigned char *)t.data, t.len, sig, &n));
		siglen = n;
		free(pem);
		break;
	}
	case SIGN_OK:
	case SIGN_ES_DER:
		md = EVP_MD_CTX_new();
		assert_int_equal(
		    EVP_DigestSignInit(md, NULL,
		        EVP_PKEY_is_a(keys[k], "ED25519") ? NULL : EVP_sha256(), NULL, keys[k]),
		    1);
		assert_int_equal(
		    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)t.data, t.len), 1);
		EVP_MD_CTX_free(md);
		if (EVP_PKEY_is_a(keys[k], "EC") && mode == SIGN_OK) {
			/* DER -> R || S (RFC 7518 3.4) */
			const unsigned char *q = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
			unsigned char raw[64];

			assert_non_null(es);
			assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
			assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
			ECDSA_SIG_free(es);
			memcpy(sig, raw, 64);
			siglen = 64;
		}
		break;
	}
	assert_int_equal(buf_append(&t, ".", 1), 0);
	b64url(&t, sig, siglen);
	s = buf_strdup(&t);
	buf_free(&t);
	return s;
}

static enum jwt_result
verify(const char *tok, const char *user)
{
	return jwt_verify(tok, strlen(tok), set, &policy, user, strlen(user), now);
}

static int
setup(void **state)
{
	json_t *arr;

	now = (int64_t)time(NULL);
	keys[K_RSA] = EVP_RSA_gen(2048);
	keys[K_RSA_OTHER] = EVP_RSA_gen(2048);
	keys[K_EC] = EVP_EC_gen("P-256");
	keys[K_EC_OTHER] = EVP_EC_gen("P-256");
	keys[K_ED] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	for (int i = 0; i < K_MAX; i++)
		assert_non_null(keys[i]);
	arr = json_array();
	json_array_append_new(arr, jwk_of(K_RSA, "rsa1"));
	json_array_append_new(arr, jwk_of(K_EC, "ec1"));
	json_array_append_new(arr, jwk_of(K_ED, "ed1"));
	/* an HMAC secret in the set must never be used (and is skipped) */
	json_array_append_new(
	    arr, json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "hmac1", "k", "c2VjcmV0"));
	set = jwks_of(arr);
	assert_int_equal(jwks_count(set), 3);
	return 0;
}

static int
teardown(void **state)
{
	jwks_unref(set);
	for (int i = 0; i < K_MAX; i++)
		EVP_PKEY_free(keys[i]);
	return 0;
}

#define PL_OK                                                                                      \
	"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"iat\":$NOW,\"email\":\"" USER "\"}"
#define PL_CLAIMS(extra) "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"email\":\"" USER "\"" extra "}"

static const struct tcase {
	const char *name;
	const char *header;
	const char *payload;
	enum key_id key;
	enum sign_mode mode;
	const char *user;
	enum jwt_result want;
} cases[] = {
    /* positive, one per algorithm */
    {"RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\"}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_OK},
    {"ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PL_OK, K_EC, SIGN_OK, USER, JWT_OK},
    {"EdDSA", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", PL_OK, K_ED, SIGN_OK, USER, JWT_OK},
    {"aud array containing ours", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"exp\":$EXP,\"email\":\"" USER "\"}",
        K_RSA, SIGN_OK, USER, JWT_OK},
    {"expired within leeway", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PL_CLAIMS(",\"exp\":$LATE"),
        K_EC, SIGN_OK, USER, JWT_OK},
    {"nbf within leeway", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
        PL_CLAIMS(",\"exp\":$EXP,\"nbf\":$SOON"), K_EC, SIGN_OK, USER, JWT_OK},
    {"domain case differs", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", PL_OK, K_ED, SIGN_OK,
        "alice@EXAMPLE.Test", JWT_OK},
    {"email_verified true", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        PL_CLAIMS(",\"exp\":$EXP,\"email_verified\":true"), K_ED, SIGN_OK, USER, JWT_OK},
    {"unknown header and claims ignored",
        "{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"x5u\":\"https://evil.test/\",\"jku\":\"https://evil.test/\"}",
        PL_CLAIMS(",\"exp\":$EXP,\"scope\":\"mail\",\"nested\":{\"a\":[1,2,{\"b\":null}]}"), K_ED,
        SIGN_OK, USER, JWT_OK},

    /* algorithm rules */
    {"alg none", "{\"alg\":\"none\"}", PL_OK, K_RSA, SIGN_EMPTY, USER, JWT_ALG_NONE},
    {"alg None", "{\"alg\":\"None\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_EMPTY, USER,
        JWT_ALG_NONE},
    {"alg none signed anyway", "{\"alg\":\"none\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_ALG_NONE},
    {"HS256 keyed with the RSA public key", "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA,
        SIGN_HMAC_PEM, USER, JWT_ALG_HMAC},
    {"HS256 naming the oct key", "{\"alg\":\"HS256\",\"kid\":\"hmac1\"}", PL_OK, K_RSA,
        SIGN_HMAC_PEM, USER, JWT_ALG_HMAC},
    {"HS512", "{\"alg\":\"HS512\"}", PL_OK, K_RSA, SIGN_HMAC_PEM, USER, JWT_ALG_HMAC},
    {"no alg", "{\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK, USER, JWT_ALG_UNSUPPORTED},
    {"alg not a string", "{\"alg\":256,\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_ALG_UNSUPPORTED},
    {"PS256", "{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_ALG_UNSUPPORTED},
    {"rs256 lower case", "{\"alg\":\"rs256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_ALG_UNSUPPORTED},
    {"RS256 with the EC key's kid", "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", PL_OK, K_RSA, SIGN_OK,
        USER, JWT_ALG_KEY_MISMATCH},
    {"ES256 with the RSA key's kid", "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", PL_OK, K_EC, SIGN_OK,
        USER, JWT_ALG_KEY_MISMATCH},
    {"EdDSA with the EC key's kid", "{\"alg\":\"EdDSA\",\"kid\":\"ec1\"}", PL_OK, K_ED, SIGN_OK,
        USER, JWT_ALG_KEY_MISMATCH},
    {"crit header", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"],\"exp\":1}", PL_OK,
        K_RSA, SIGN_OK, USER, JWT_CRIT},
    {"crit empty", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[]}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_CRIT},

    /* keys */
    {"no kid, several keys", "{\"alg\":\"RS256\"}", PL_OK, K_RSA, SIGN_OK, USER, JWT_KID_REQUIRED},
    {"unknown kid", "{\"alg\":\"RS256\",\"kid\":\"rsa2\"}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_KID_UNKNOWN},
    {"kid not a string", "{\"alg\":\"RS256\",\"kid\":1}", PL_OK, K_RSA, SIGN_OK, USER,
        JWT_MALFORMED},
    {"RS256 signed by another key", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA_OTHER,
        SIGN_OK, USER, JWT_BAD_SIGNATURE},
    {"ES256 signed by another key", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PL_OK, K_EC_OTHER,
        SIGN_OK, USER, JWT_BAD_SIGNATURE},
    {"ES256 signature in DER", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PL_OK, K_EC, SIGN_ES_DER,
        USER, JWT_BAD_SIGNATURE},
    {"RS256 empty signature", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_EMPTY,
        USER, JWT_BAD_SIGNATURE},

    /* claims */
    {"expired", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_CLAIMS(",\"exp\":$PAST"), K_RSA, SIGN_OK,
        USER, JWT_EXPIRED},
    {"no exp", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_CLAIMS(""), K_RSA, SIGN_OK, USER,
        JWT_NO_EXP},
    {"exp a string", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_CLAIMS(",\"exp\":\"$EXP\""), K_RSA,
        SIGN_OK, USER, JWT_BAD_CLAIM},
    {"exp null", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_CLAIMS(",\"exp\":null"), K_RSA, SIGN_OK,
        USER, JWT_BAD_CLAIM},
    {"nbf in the future", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
        PL_CLAIMS(",\"exp\":$FUTURE,\"nbf\":$FUTURE"), K_EC, SIGN_OK, USER, JWT_NOT_YET_VALID},
    {"iat in the future", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
        PL_CLAIMS(",\"exp\":$FUTURE,\"iat\":$FUTURE"), K_EC, SIGN_OK, USER, JWT_IAT_FUTURE},
    {"wrong iss", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"https://evil.test\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"email\":\"" USER "\"}",
        K_ED, SIGN_OK, USER, JWT_WRONG_ISSUER},
    {"iss with trailing slash", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"" ISS "/\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED,
        SIGN_OK, USER, JWT_WRONG_ISSUER},
    {"no iss", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"aud\":\"" AUD "\",\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED, SIGN_OK, USER,
        JWT_WRONG_ISSUER},
    {"wrong aud", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"webmail\",\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED,
        SIGN_OK, USER, JWT_WRONG_AUDIENCE},
    {"aud array without ours", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED,
        SIGN_OK, USER, JWT_WRONG_AUDIENCE},
    {"aud empty array", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":[],\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED, SIGN_OK, USER,
        JWT_WRONG_AUDIENCE},
    {"aud array with a number", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",7],\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED,
        SIGN_OK, USER, JWT_BAD_CLAIM},
    {"no aud", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
        "{\"iss\":\"" ISS "\",\"exp\":$EXP,\"email\":\"" USER "\"}", K_ED, SIGN_OK, USER,
        JWT_WRONG_AUDIENCE},
    {"user claim names someone else", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK,
        "bob@example.test", JWT_WRONG_USER},
    {"local part case differs", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK,
        "Alice@example.test", JWT_WRONG_USER},
    {"user is a prefix of the claim", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK,
        "alice@example.tes", JWT_WRONG_USER},
    {"no user claim", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"sub\":\"" USER "\"}", K_RSA,
        SIGN_OK, USER, JWT_NO_USER_CLAIM},
    {"user claim not a string", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"email\":[\"" USER "\"]}", K_RSA,
        SIGN_OK, USER, JWT_BAD_CLAIM},
    {"email_verified false", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        PL_CLAIMS(",\"exp\":$EXP,\"email_verified\":false"), K_RSA, SIGN_OK, USER,
        JWT_EMAIL_UNVERIFIED},

    /* JSON */
    {"duplicate claim", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
        "\",\"exp\":$EXP,\"email\":\"mallory@example.test\",\"email\":\"" USER "\"}",
        K_RSA, SIGN_OK, USER, JWT_DUPLICATE_KEY},
    {"duplicate exp", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        PL_CLAIMS(",\"exp\":$PAST,\"exp\":$FUTURE"), K_RSA, SIGN_OK, USER, JWT_DUPLICATE_KEY},
    {"duplicate header member", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"alg\":\"none\"}", PL_OK,
        K_RSA, SIGN_OK, USER, JWT_DUPLICATE_KEY},
    {"payload not an object", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "[\"" USER "\"]", K_RSA,
        SIGN_OK, USER, JWT_BAD_JSON},
    {"header not an object", "[\"RS256\"]", PL_OK, K_RSA, SIGN_OK, USER, JWT_BAD_JSON},
    {"header not JSON", "{alg:RS256}", PL_OK, K_RSA, SIGN_OK, USER, JWT_BAD_JSON},
    {"trailing junk after payload", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK "x", K_RSA,
        SIGN_OK, USER, JWT_BAD_JSON},
    {"NUL escape in a claim", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"email\":\"" USER "\\u0000x\"}",
        K_RSA, SIGN_OK, USER, JWT_BAD_JSON},
    {"integer too big", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
        PL_CLAIMS(",\"exp\":99999999999999999999999"), K_RSA, SIGN_OK, USER, JWT_BAD_JSON},
};

static void
test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		char *tok = mint(c->header, c->payload, c->key, c->mode);
		enum jwt_result r = verify(tok, c->user);

		if (r != c->want)
			fail_msg("%s: got %s, want %s", c->name, jwt_result_name(r),
			    jwt_result_name(c->want));
		assert_true(jwt_is_compact(tok, strlen(tok)) == (c->header[0] == '{'));
		free(tok);
	}
}

static void
test_one_key_without_kid(void **state)
{
	json_t *arr = json_array();
	struct jwks *one;
	char *tok = mint("{\"alg\":\"ES256\"}", PL_OK, K_EC, SIGN_OK);

	json_array_append_new(arr, jwk_of(K_EC, NULL));
	one = jwks_of(arr);
	assert_int_equal(
	    jwt_verify(tok, strlen(tok), one, &policy, USER, strlen(USER), now), JWT_OK);
	free(tok);
	/* the one key, but of another type than alg */
	tok = mint("{\"alg\":\"RS256\"}", PL_OK, K_RSA, SIGN_OK);
	assert_int_equal(jwt_verify(tok, strlen(tok), one, &policy, USER, strlen(USER), now),
	    JWT_ALG_KEY_MISMATCH);
	free(tok);
	/* a kid in the token when the key has none */
	tok = mint("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PL_OK, K_EC, SIGN_OK);
	assert_int_equal(
	    jwt_verify(tok, strlen(tok), one, &policy, USER, strlen(USER), now), JWT_KID_UNKNOWN);
	free(tok);
	jwks_unref(one);
}

static void
test_other_user_claim(void **state)
{
	const struct jwt_policy p = {ISS, AUD, "preferred_username"};
	char *tok = mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
	    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":$EXP,\"email\":\"x@y.test\","
	    "\"email_verified\":false,\"preferred_username\":\"alice\"}",
	    K_ED, SIGN_OK);

	/* email_verified only matters when the claim used is email */
	assert_int_equal(jwt_verify(tok, strlen(tok), set, &p, "alice", 5, now), JWT_OK);
	assert_int_equal(jwt_verify(tok, strlen(tok), set, &p, "Alice", 5, now), JWT_WRONG_USER);
	assert_int_equal(
	    jwt_verify(tok, strlen(tok), set, &policy, "alice", 5, now), JWT_WRONG_USER);
	free(tok);
}

static void
test_exp_boundary(void **state)
{
	char *tok =
	    mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", PL_CLAIMS(",\"exp\":$NOW"), K_ED, SIGN_OK);
	size_t n = strlen(tok);

	assert_int_equal(
	    jwt_verify(tok, n, set, &policy, USER, strlen(USER), now + JWT_LEEWAY - 1), JWT_OK);
	assert_int_equal(
	    jwt_verify(tok, n, set, &policy, USER, strlen(USER), now + JWT_LEEWAY), JWT_EXPIRED);
	free(tok);
	tok = mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}",
	    PL_CLAIMS(",\"exp\":$FUTURE,\"nbf\":$NOW"), K_ED, SIGN_OK);
	n = strlen(tok);
	assert_int_equal(
	    jwt_verify(tok, n, set, &policy, USER, strlen(USER), now - JWT_LEEWAY), JWT_OK);
	assert_int_equal(jwt_verify(tok, n, set, &policy, USER, strlen(USER), now - JWT_LEEWAY - 1),
	    JWT_NOT_YET_VALID);
	free(tok);
}

/* Damages a good token in the ways a client or an attacker might. */
static void
test_malformed_tokens(void **state)
{
	char *good = mint("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PL_OK, K_RSA, SIGN_OK);
	size_t n = strlen(good);
	char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
	struct buf b;

	assert_int_equal(verify(good, USER), JWT_OK);
	buf_init(&b, 1 << 16);

	/* truncated: at every length, never OK, never a crash */
	for (size_t k = 0; k < n; k++) {
		enum jwt_result r = jwt_verify(good, k, set, &policy, USER, strlen(USER), now);

		assert_int_not_equal(r, JWT_OK);
	}
	assert_int_equal(
	    jwt_verify(good, (size_t)(d2 - good), set, &policy, USER, strlen(USER), now),
	    JWT_MALFORMED);
	assert_int_equal(
	    jwt_verify(good, (size_t)(d2 + 1 - good), set, &policy, USER, strlen(USER), now),
	    JWT_BAD_SIGNATURE);
	/* three bytes fewer of signature, still valid base64url */
	buf_reset(&b);
	assert_int_equal(buf_append(&b, good, (size_t)(d2 + 1 - good)), 0);
	assert_int_equal(buf_append_str(&b, d2 + 5), 0);
	assert_int_equal(verify(b.data, USER), JWT_BAD_SIGNATURE);

	/* padding on a segment */
	buf_reset(&b);
	assert_int_equal(buf_append(&b, good, (size_t)(d1 - good)), 0);
	assert_int_equal(buf_append_str(&b, "="), 0);
	assert_int_equal(buf_append_str(&b, d1), 0);
	assert_int_equal(verify(b.data, USER), JWT_MALFORMED);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s==", good), 0);
	assert_int_equal(verify(b.data, USER), JWT_MALFORMED);

	/* standard-alphabet characters, white space, a fourth segment */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s", good), 0);
	b.data[d1 - good + 3] = '+';
	assert_int_equal(verify(b.data, USER), JWT_MALFORMED);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s", good), 0);
	b.data[d1 - good + 3] = ' ';
	assert_int_equal(verify(b.data, USER), JWT_MALFORMED);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s.e30", good), 0);
	assert_int_equal(verify(b.data, USER), JWT_MALFORMED);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, " %s", good), 0);
	assert_int_equal(verify(b.data, USER), JWT_MALFORMED);

	/* a NUL inside: the length counts, not the terminator */
	buf_reset(&b);
	assert_int_equal(buf_append(&b, good, n), 0);
	b.data[n - 5] = '\0';
	assert_int_equal(
	    jwt_verify(b.data, n, set, &policy, USER, strlen(USER), now), JWT_MALFORMED);

	/* signature bit flip */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s", good), 0);
	b.data[n - 3] = b.data[n - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(b.data, USER), JWT_BAD_SIGNATURE);

	/* payload swapped for another (validly encoded) one */
	buf_reset(&b);
	assert_int_equal(buf_append(&b, good, (size_t)(d1 + 1 - good)), 0);
	assert_int_equal(base64url_encode("{\"iss\":\"x\"}", 11, &b), 0);
	assert_int_equal(buf_append_str(&b, d2), 0);
	assert_int_equal(verify(b.data, USER), JWT_BAD_SIGNATURE);

	/* empty segments */
	assert_int_equal(verify("..", USER), JWT_MALFORMED);
	assert_int_equal(verify("", USER), JWT_MALFORMED);
	assert_int_equal(verify("e30..", USER), JWT_MALFORMED);
	assert_int_equal(verify(".e30.", USER), JWT_MALFORMED);
	assert_false(jwt_is_compact("opaque-token", 12));
	assert_false(jwt_is_compact("a.b", 3));
	assert_false(jwt_is_compact("YQ.YQ.YQ", 8)); /* header is not "{" */
	buf_free(&b);
	free(good);
}

static void
test_oversized_token(void **state)
{
	struct buf pl;
	char *tok, *tmpl;

	/* a valid, signed token just over the cap: refused before decoding */
	buf_init(&pl, 1 << 16);
	assert_int_equal(buf_append_str(&pl, "{\"pad\":\""), 0);
	for (int i = 0; i < 6200; i++)
		assert_int_equal(buf_append(&pl, "x", 1), 0);
	assert_int_equal(buf_append_str(&pl, "\","), 0);
	assert_int_equal(buf_append_str(&pl, &PL_OK[1]), 0);
	tmpl = buf_strdup(&pl);
	tok = mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", tmpl, K_ED, SIGN_OK);
	assert_true(strlen(tok) > JWT_TOKEN_MAX);
	assert_int_equal(verify(tok, USER), JWT_TOO_LARGE);
	assert_false(jwt_is_compact(tok, strlen(tok)));
	free(tok);
	free(tmpl);
	/* and one just under it passes */
	buf_reset(&pl);
	assert_int_equal(buf_append_str(&pl, "{\"pad\":\""), 0);
	for (int i = 0; i < 5800; i++)
		assert_int_equal(buf_append(&pl, "x", 1), 0);
	assert_int_equal(buf_append_str(&pl, "\","), 0);
	assert_int_equal(buf_append_str(&pl, &PL_OK[1]), 0);
	tmpl = buf_strdup(&pl);
	tok = mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", tmpl, K_ED, SIGN_OK);
	assert_true(strlen(tok) <= JWT_TOKEN_MAX);
	assert_int_equal(verify(tok, USER), JWT_OK);
	free(tok);
	free(tmpl);
	buf_free(&pl);
}

static void
test_nesting_bomb(void **state)
{
	struct buf pl;
	char *tok, *tmpl;
	int depth[] = {2100, 6500};

	for (size_t k = 0; k < 2; k++) {
		buf_init(&pl, 1 << 16);
		assert_int_equal(buf_append_str(&pl, "{\"iss\":\"" ISS "\",\"x\":"), 0);
		for (int i = 0; i < depth[k]; i++)
			assert_int_equal(buf_append(&pl, "[", 1), 0);
		tmpl = buf_strdup(&pl);
		tok = mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", tmpl, K_ED, SIGN_OK);
		assert_int_equal(verify(tok, USER), k == 0 ? JWT_BAD_JSON : JWT_TOO_LARGE);
		free(tok);
		free(tmpl);
		buf_free(&pl);
	}
	/* balanced, deeper than jansson's limit (2048) and within the size cap */
	buf_init(&pl, 1 << 16);
	assert_int_equal(buf_append_str(&pl, "{\"x\":"), 0);
	for (int i = 0; i < 2049; i++)
		assert_int_equal(buf_append(&pl, "[", 1), 0);
	for (int i = 0; i < 2049; i++)
		assert_int_equal(buf_append(&pl, "]", 1), 0);
	assert_int_equal(buf_append_str(&pl, ","), 0);
	assert_int_equal(buf_append_str(&pl, &PL_OK[1]), 0);
	tmpl = buf_strdup(&pl);
	tok = mint("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", tmpl, K_ED, SIGN_OK);
	assert_true(strlen(tok) <= JWT_TOKEN_MAX);
	assert_int_equal(verify(tok, USER), JWT_BAD_JSON);
	free(tok);
	free(tmpl);
	buf_free(&pl);
}

static void
test_user_matches(void **state)
{
	static const struct {
		const char *claim, *user;
		bool match;
	} t[] = {
	    {"alice@example.test", "alice@example.test", true},
	    {"alice@example.test", "alice@EXAMPLE.TEST", true},
	    {"alice@Example.Test", "alice@example.test", true},
	    {"alice@example.test", "ALICE@example.test", false},
	    {"alice@example.test", "alice@example.tes", false},
	    {"alice@example.test", "alice@example.test.", false},
	    {"alice@example.test", "alice", false},
	    {"alice", "alice@example.test", false},
	    {"alice", "alice", true},
	    {"alice", "Alice", false},
	    {"\"a@b\"@example.test", "\"a@b\"@EXAMPLE.test", true},
	    {"a@b@example.test", "a@B@example.test", false},
	    {"", "", true},
	    {"@", "@", true},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (jwt_user_matches(
		        t[i].claim, strlen(t[i].claim), t[i].user, strlen(t[i].user)) != t[i].match)
			fail_msg("%s vs %s", t[i].claim, t[i].user);
	}
}

static void
test_jwks_parse(void **state)
{
	char err[256];
	struct jwks *k;
	json_t *arr, *o;
	char *s;
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{}",
	    "{\"keys\":{}}",
	    "{\"keys\":[]}",
	    "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}",
	    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", /* 17 bits */
	    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
	    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}",
	    "{\"keys\":[],\"keys\":[]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = jwks_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (k != NULL)
			fail_msg("accepted %s", bad[i]);
	}

	/* skipped: enc keys, key_ops without verify, alg for another algorithm,
	 * a point off the curve; kept: the good ones */
	arr = json_array();
	o = jwk_of(K_RSA, "enc");
	json_object_set_new(o, "use", json_string("enc"));
	json_array_append_new(arr, o);
	o = jwk_of(K_RSA, "ops");
	json_object_set_new(o, "key_ops", json_pack("[s]", "encrypt"));
	json_array_append_new(arr, o);
	o = jwk_of(K_RSA, "rs512");
	json_object_set_new(o, "alg", json_string("RS512"));
	json_array_append_new(arr, o);
	o = jwk_of(K_EC, "offcurve");
	s = xstrdup(json_string_value(json_object_get(o, "y")));
	s[0] = s[0] == 'A' ? 'B' : 'A';
	json_object_set_new(o, "y", json_string(s));
	free(s);
	json_array_append_new(arr, o);
	o = jwk_of(K_RSA, "good-rsa");
	json_object_set_new(o, "use", json_string("sig"));
	json_object_set_new(o, "alg", json_string("RS256"));
	json_object_set_new(o, "key_ops", json_pack("[s]", "verify"));
	json_array_append_new(arr, o);
	json_array_append_new(arr, jwk_of(K_ED, "good-ed"));
	k = jwks_of(arr);
	assert_int_equal(jwks_count(k), 2);
	assert_string_equal(jwks_key(k, 0)->kid, "good-rsa");
	assert_int_equal(jwks_key(k, 0)->type, JWK_RSA);
	assert_string_equal(jwks_key(k, 1)->kid, "good-ed");
	assert_int_equal(jwks_key(k, 1)->type, JWK_ED25519);
	assert_null(jwks_key(k, 2));
	jwks_unref(jwks_ref(k));
	jwks_unref(k);
	jwks_unref(NULL);
}

static void
test_result_names(void **state)
{
	for (int r = JWT_OK; r <= JWT_EMAIL_UNVERIFIED; r++) {
		const char *n = jwt_result_name((enum jwt_result)r);

		assert_non_null(n);
		assert_string_not_equal(n, "unknown");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_one_key_without_kid),
	    cmocka_unit_test(test_other_user_claim),
	    cmocka_unit_test(test_exp_boundary),
	    cmocka_unit_test(test_malformed_tokens),
	    cmocka_unit_test(test_oversized_token),
	    cmocka_unit_test(test_nesting_bomb),
	    cmocka_unit_test(test_user_matches),
	    cmocka_unit_test(test_jwks_parse),
	    cmocka_unit_test(test_result_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
