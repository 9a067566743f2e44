/*
 * jwks: key set parsing (RFC 7517, RFC 7518 6) and the refreshing cache.
 *
 * Keys become EVP_PKEYs through EVP_PKEY_fromdata (RSA n/e, EC P-256 x/y)
 * or EVP_PKEY_new_raw_public_key (Ed25519 x); EC points are checked to be
 * on the curve. Member values are base64url without padding (RFC 7518
 * 6.2.1.2, 6.3.1.1), decoded strictly.
 *
 * Cache state (under jwks_cache.lock): the current set (one reference held
 * by the cache), when it was fetched and when it is due, when the last
 * fetch was attempted, whether a fetch is running. One thread fetches at a
 * time and outside the lock; others use the old set meanwhile, or wait for
 * the fetch when there is none yet.
 */
#include "auth/jwks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "auth/https.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define JWKS_MEMBER_MAX 1024 /* decoded bytes of n, x, y (RSA 8192 bits) */
#define JWKS_KID_MAX 256

struct jwks {
	atomic_uint refs;
	struct jwk *keys;
	size_t nkeys;
};

struct jwks_cache {
	char *source;
	char *cafile;
	pthread_mutex_t lock;
	pthread_cond_t fetched;
	struct jwks *keys; /* NULL until loaded */
	int64_t fetched_at; /* when keys were fetched */
	int64_t due; /* refresh keys at or after this */
	int64_t attempted; /* last fetch attempt (0 = never) */
	int64_t retry_after; /* no keys: fail fast until then */
	bool fetching;
};

/* A base64url member of o decoded into out. -1 when absent or malformed. */
static int
jwks_member(json_t *o, const char *name, struct buf *out)
{
	json_t *v = json_object_get(o, name);

	buf_reset(out);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return -1;
	return base64url_decode(json_string_value(v), json_string_length(v), out);
}

static EVP_PKEY *
jwks_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *
jwks_rsa(json_t *o, const char **why)
{
	struct buf n, e;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	buf_init(&n, JWKS_MEMBER_MAX);
	buf_init(&e, 16);
	if (jwks_member(o, "n", &n) == -1 || jwks_member(o, "e", &e) == -1) {
		*why = "bad n or e";
		goto fail;
	}
	bn = BN_bin2bn((const unsigned char *)n.data, (int)n.len, NULL);
	be = BN_bin2bn((const unsigned char *)e.data, (int)e.len, NULL);
	if (bn == NULL || be == NULL)
		goto fail;
	if (BN_num_bits(bn) < JWKS_RSA_BITS_MIN) {
		*why = "RSA key shorter than 2048 bits";
		goto fail;
	}
	if (!BN_is_odd(be) || BN_is_one(be) || BN_num_bits(be) > 64) {
		*why = "bad RSA exponent";
		goto fail;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
		goto fail;
	if ((pkey = jwks_fromdata("RSA", bld)) == NULL)
		*why = "RSA key rejected by OpenSSL";
fail:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	buf_free(&n);
	buf_free(&e);
	return pkey;
}

static EVP_PKEY *
jwks_ec(json_t *o, const char **why)
{
	unsigned char pub[65];
	struct buf x, y;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;

	buf_init(&x, JWKS_MEMBER_MAX);
	buf_init(&y, JWKS_MEMBER_MAX);
	/* RFC 7518 6.2.1.2: x and y are the full coordinate size, 32 bytes */
	if (jwks_member(o, "x", &x) == -1 || jwks_member(o, "y", &y) == -1 || x.len != 32 ||
	    y.len != 32) {
		*why = "bad x or y";
		goto fail;
	}
	pub[0] = 0x04; /* SEC 1 2.3.3 uncompressed point */
	memcpy(pub + 1, x.data, 32);
	memcpy(pub + 33, y.data, 32);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
	        1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) != 1)
		goto fail;
	if ((pkey = jwks_fromdata("EC", bld)) == NULL) {
		*why = "EC point rejected by OpenSSL";
		goto fail;
	}
	/* a point off the curve (invalid-curve attacks) */
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
		*why = "EC point not on P-256";
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
fail:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_BLD_free(bld);
	buf_free(&x);
	buf_free(&y);
	return pkey;
}

static EVP_PKEY *
jwks_ed25519(json_t *o, const char **why)
{
	struct buf x;
	EVP_PKEY *pkey = NULL;

	buf_init(&x, JWKS_MEMBER_MAX);
	if (jwks_member(o, "x", &x) == -1 || x.len != 32) {
		*why = "bad x";
		goto fail;
	}
	pkey = EVP_PKEY_new_raw_public_key(
	    EVP_PKEY_ED25519, NULL, (const unsigned char *)x.data, x.len);
	if (pkey == NULL)
		*why = "Ed25519 key rejected by OpenSSL";
fail:
	buf_free(&x);
	return pkey;
}

static bool
jwks_str_is(json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/*
 * One key of the set: 1 usable (k filled), 0 skipped (why says why), -1 on
 * a library failure.
 */
static int
jwks_key_parse(json_t *o, struct jwk *k, const char **why)
{
	json_t *kty = json_object_get(o, "kty"), *crv = json_object_get(o, "crv");
	json_t *use = json_object_get(o, "use"), *alg = json_object_get(o, "alg");
	json_t *kid = json_object_get(o, "kid"), *ops = json_object_get(o, "key_ops");
	const char *want_alg;

	memset(k, 0, sizeof(*k));
	*why = NULL;
	if (!json_is_object(o)) {
		*why = "not an object";
		return 0;
	}
	/* RFC 7517 4.2, 4.3: only keys meant for verifying signatures */
	if (use != NULL && !jwks_str_is(use, "sig")) {
		*why = "use is not sig";
		return 0;
	}
	if (ops != NULL) {
		size_t i;
		json_t *op;
		bool verify = false;

		if (!json_is_array(ops)) {
			*why = "bad key_ops";
			return 0;
		}
		json_array_foreach(ops, i, op) verify = verify || jwks_str_is(op, "verify");
		if (!verify) {
			*why = "key_ops without verify";
			return 0;
		}
	}
	if (jwks_str_is(kty, "RSA")) {
		k->type = JWK_RSA;
		want_alg = "RS256";
	} else if (jwks_str_is(kty, "EC") && jwks_str_is(crv, "P-256")) {
		k->type = JWK_EC_P256;
		want_alg = "ES256";
	} else if (jwks_str_is(kty, "OKP") && jwks_str_is(crv, "Ed25519")) {
		k->type = JWK_ED25519;
		want_alg = "EdDSA";
	} else {
		/* "oct" (HMAC secrets) and everything else */
		*why = "unsupported kty or crv";
		return 0;
	}
	/* RFC 7517 4.4: a key bound to another algorithm is not for us */
	if (alg != NULL && !jwks_str_is(alg, want_alg)) {
		*why = "alg not supported for this key";
		return 0;
	}
	if (kid != NULL) {
		if (!json_is_string(kid) || json_string_length(kid) == 0 ||
		    json_string_length(kid) > JWKS_KID_MAX ||
		    strlen(json_string_value(kid)) != json_string_length(kid)) {
			*why = "bad kid";
			return 0;
		}
	}
	switch (k->type) {
	case JWK_RSA:
		k->pkey = jwks_rsa(o, why);
		break;
	case JWK_EC_P256:
		k->pkey = jwks_ec(o, why);
		break;
	case JWK_ED25519:
		k->pkey = jwks_ed25519(o, why);
		break;
	}
	ERR_clear_error();
	if (k->pkey == NULL) {
		if (*why == NULL)
			*why = "key rejected";
		return 0;
	}
	if (kid != NULL)
		k->kid = xstrdup(json_string_value(kid));
	return 1;
}

static void
jwks_destroy(struct jwks *k)
{
	for (size_t i = 0; i < k->nkeys; i++) {
		free(k->keys[i].kid);
		EVP_PKEY_free(k->keys[i].pkey);
	}
	free(k->keys);
	free(k);
}

struct jwks *
jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL, *arr, *o;
	struct jwks *k = NULL;
	size_t i, skipped = 0;
	const char *why = NULL;

	if (len > JWKS_MAX) {
		snprintf(err, errlen, "JWKS larger than %d bytes", JWKS_MAX);
		return NULL;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "JWKS is not JSON: line %d: %s", jerr.line, jerr.text);
		return NULL;
	}
	arr = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(arr)) {
		snprintf(err, errlen, "JWKS has no \"keys\" array");
		goto fail;
	}
	k = xcalloc(1, sizeof(*k));
	atomic_init(&k->refs, 1);
	k->keys = xcalloc(JWKS_KEYS_MAX, sizeof(*k->keys));
	json_array_foreach(arr, i, o)
	{
		if (k->nkeys == JWKS_KEYS_MAX)
			break;
		if (jwks_key_parse(o, &k->keys[k->nkeys], &why) == 1)
			k->nkeys++;
		else
			skipped++;
	}
	if (k->nkeys == 0) {
		snprintf(err, errlen, "JWKS has no usable key (%zu skipped%s%s)", skipped,
		    why != NULL ? ", last: " : "", why != NULL ? why : "");
		goto fail;
	}
	json_decref(root);
	return k;
fail:
	if (k != NULL)
		jwks_destroy(k);
	json_decref(root);
	return NULL;
}

struct jwks *
jwks_ref(struct jwks *k)
{
	atomic_fetch_add(&k->refs, 1);
	return k;
}

void
jwks_unref(struct jwks *k)
{
	if (k != NULL && atomic_fetch_sub(&k->refs, 1) == 1)
		jwks_destroy(k);
}

size_t
jwks_count(const struct jwks *k)
{
	return k->nkeys;
}

const struct jwk *
jwks_key(const struct jwks *k, size_t i)
{
	return i < k->nkeys ? &k->keys[i] : NULL;
}

static int
jwks_read_file(const char *path, struct buf *out, char *err, size_t errlen)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = -1;

	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (buf_append(out, chunk, (size_t)n) == -1) {
			snprintf(err, errlen, "%s: larger than %zu bytes", path, out->max);
			goto fail;
		}
	}
	r = 0;
fail:
	close(fd);
	return r;
}

static bool
jwks_is_url(const char *source)
{
	return strncmp(source, "https://", 8) == 0;
}

int
jwks_fetch(const char *source, const char *cafile, struct buf *out, unsigned *max_age_r, char *err,
    size_t errlen)
{
	struct https_req req = {.url = source, .cafile = cafile};
	char e[256];
	long status;

	*max_age_r = 0;
	if (!jwks_is_url(source))
		return jwks_read_file(source, out, err, errlen);
	if (https_request(&req, out, &status, max_age_r, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "%s: %s", source, e);
		return -1;
	}
	if (status != 200) {
		snprintf(err, errlen, "%s: HTTP status %ld", source, status);
		return -1;
	}
	return 0;
}

/* Fetches and parses; NULL and err on failure. */
static struct jwks *
jwks_cache_load(struct jwks_cache *c, unsigned *max_age_r, char *err, size_t errlen)
{
	struct buf b;
	struct jwks *k = NULL;

	buf_init(&b, JWKS_MAX);
	if (jwks_fetch(c->source, c->cafile, &b, max_age_r, err, errlen) == 0)
		k = jwks_parse(b.data != NULL ? b.data : "", b.len, err, errlen);
	buf_free(&b);
	return k;
}

struct jwks_cache *
jwks_cache_new(const char *source, const char *cafile)
{
	struct jwks_cache *c = xcalloc(1, sizeof(*c));

	c->source = xstrdup(source);
	c->cafile = cafile != NULL ? xstrdup(cafile) : NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->fetched, NULL);
	return c;
}

void
jwks_cache_free(struct jwks_cache *c)
{
	if (c == NULL)
		return;
	jwks_unref(c->keys);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->fetched);
	free(c->source);
	free(c->cafile);
	free(c);
}

static int64_t
jwks_refresh_interval(unsigned max_age)
{
	if (max_age == 0)
		return JWKS_REFRESH_DEFAULT;
	if (max_age < JWKS_REFRESH_MIN)
		return JWKS_REFRESH_MIN;
	if (max_age > JWKS_REFRESH_MAX)
		return JWKS_REFRESH_MAX;
	return max_age;
}

/*
 * Called with the lock held and c->fetching set by the caller; fetches with
 * the lock released, installs the result, wakes waiters. Returns with the
 * lock held. true when new keys were installed.
 */
static bool
jwks_cache_fetch_locked(struct jwks_cache *c, int64_t now)
{
	char err[512];
	unsigned max_age = 0;
	struct jwks *k, *old = NULL;

	c->attempted = now;
	pthread_mutex_unlock(&c->lock);
	k = jwks_cache_load(c, &max_age, err, sizeof(err));
	if (k == NULL)
		log_event(LOG_WARNING, "jwks_fetch_failed", 0, "{s:s, s:s}", "source", c->source,
		    "error", err);
	pthread_mutex_lock(&c->lock);
	c->fetching = false;
	if (k != NULL) {
		old = c->keys;
		c->keys = k;
		c->fetched_at = now;
		c->due = now + jwks_refresh_interval(max_age);
		c->retry_after = 0;
	} else if (c->keys != NULL && now - c->fetched_at > JWKS_STALE_MAX) {
		/* keys nobody could confirm for a day may have been revoked */
		old = c->keys;
		c->keys = NULL;
		c->retry_after = now + JWKS_RETRY_INTERVAL;
	} else if (c->keys != NULL) {
		c->due = now + JWKS_STALE_RETRY;
	} else {
		c->retry_after = now + JWKS_RETRY_INTERVAL;
	}
	pthread_cond_broadcast(&c->fetched);
	if (old != NULL) {
		pthread_mutex_unlock(&c->lock);
		jwks_unref(old);
		pthread_mutex_lock(&c->lock);
	}
	return k != NULL;
}

struct jwks *
jwks_cache_get(struct jwks_cache *c, int64_t now)
{
	struct jwks *k = NULL;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->keys != NULL && (now < c->due || c->fetching))
			break; /* fresh, or someone is refreshing: use these */
		if (c->keys == NULL && c->fetching) {
			pthread_cond_wait(&c->fetched, &c->lock);
			continue;
		}
		if (c->keys == NULL && now < c->retry_after)
			break; /* the last attempt failed moments ago */
		c->fetching = true;
		(void)jwks_cache_fetch_locked(c, now);
		break;
	}
	if (c->keys != NULL)
		k = jwks_ref(c->keys);
	pthread_mutex_unlock(&c->lock);
	return k;
}

struct jwks *
jwks_cache_refresh(struct jwks_cache *c, int64_t now)
{
	struct jwks *k = NULL;

	pthread_mutex_lock(&c->lock);
	if (!c->fetching &&
	    (c->attempted == 0 || now - c->attempted >= JWKS_UNKNOWN_KID_INTERVAL)) {
		c->fetching = true;
		if (jwks_cache_fetch_locked(c, now) && c->keys != NULL)
			k = jwks_ref(c->keys);
	}
	pthread_mutex_unlock(&c->lock);
	return k;
}

int
jwks_cache_reload(struct jwks_cache *c, int64_t now, char *err, size_t errlen)
{
	struct jwks *k, *old;
	unsigned max_age = 0;

	if (jwks_is_url(c->source)) {
		pthread_mutex_lock(&c->lock);
		c->due = 0;
		c->retry_after = 0;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if ((k = jwks_cache_load(c, &max_age, err, errlen)) == NULL)
		return -1;
	pthread_mutex_lock(&c->lock);
	old = c->keys;
	c->keys = k;
	c->fetched_at = now;
	c->due = now + JWKS_REFRESH_DEFAULT;
	c->attempted = now;
	c->retry_after = 0;
	pthread_mutex_unlock(&c->lock);
	jwks_unref(old);
	return 0;
}
