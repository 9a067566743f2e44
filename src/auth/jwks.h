/*
 * jwks: JSON Web Key Sets (RFC 7517) holding the public keys that sign
 * OAuth access tokens, and a cache that loads them from a file or an
 * https:// URL and refreshes them.
 *
 * Only signature keys smtpgate can use are kept: RSA (at least 2048 bits),
 * EC P-256 and OKP Ed25519. Symmetric ("oct") keys, encryption keys
 * ("use":"enc"), other curves and keys whose "alg" names an algorithm
 * smtpgate does not verify are skipped, so an HMAC secret can never be
 * confused with a public key.
 *
 * A struct jwks is immutable and reference-counted: a verifier holds a
 * reference while it checks a token, so a refresh never frees keys in use.
 */
#ifndef SG_AUTH_JWKS_H
#define SG_AUTH_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "lib/buf.h"

#define JWKS_MAX (256 * 1024) /* bytes of JWKS JSON accepted */
#define JWKS_KEYS_MAX 64 /* usable keys kept from one set */
#define JWKS_RSA_BITS_MIN 2048 /* RFC 7518 3.3: 2048 or larger */
#define JWKS_REFRESH_DEFAULT 3600 /* seconds, without Cache-Control max-age */
#define JWKS_REFRESH_MIN 300 /* max-age below this is raised to it */
#define JWKS_REFRESH_MAX 86400 /* max-age above this is cut to it */
#define JWKS_UNKNOWN_KID_INTERVAL                                                                  \
	60 /* at most one refetch per this many seconds for unknown kids */
#define JWKS_RETRY_INTERVAL 10 /* after a failed first load, fail fast this long */
#define JWKS_STALE_RETRY 60 /* after a failed refresh, keep the old keys and retry after this */
#define JWKS_STALE_MAX 86400 /* old keys are dropped when refreshes failed this long */

enum jwk_type {
	JWK_RSA, /* RS256 */
	JWK_EC_P256, /* ES256 */
	JWK_ED25519, /* EdDSA */
};

struct jwk {
	char *kid; /* NULL when the key has none */
	enum jwk_type type;
	EVP_PKEY *pkey;
};

struct jwks;

/* Parses a JWKS document (an object with a "keys" array). NULL with a
 * message in err when it is not JSON, too large, or has no usable key. */
struct jwks *jwks_parse(const char *json, size_t len, char *err, size_t errlen);
/* Takes another reference. */
struct jwks *jwks_ref(struct jwks *k);
/* Drops a reference; frees on the last one. k may be NULL. */
void jwks_unref(struct jwks *k);
size_t jwks_count(const struct jwks *k);
/* The i-th usable key (i < jwks_count), valid while the reference is held. */
const struct jwk *jwks_key(const struct jwks *k, size_t i);

/*
 * Reads source (a file path or an https:// URL; cafile: a PEM bundle to
 * trust for it, NULL = system store) into out (limit JWKS_MAX), blocking:
 * worker threads only. *max_age_r is the Cache-Control max-age (0 if none).
 * -1 and err.
 */
int jwks_fetch(const char *source, const char *cafile, struct buf *out, unsigned *max_age_r,
    char *err, size_t errlen) __attribute__((warn_unused_result));

struct jwks_cache;

/* Nothing is loaded until the first jwks_cache_get. */
struct jwks_cache *jwks_cache_new(const char *source, const char *cafile);
void jwks_cache_free(struct jwks_cache *c);
/*
 * A reference to the current keys (release with jwks_unref), loading them
 * first when none are loaded or they are due for refresh. May block on a
 * fetch: worker threads only. When a refresh fails the old keys are kept
 * (and retried after JWKS_STALE_RETRY). NULL when no keys can be had (the
 * source is unreachable or invalid): a temporary failure.
 */
struct jwks *jwks_cache_get(struct jwks_cache *c, int64_t now);
/*
 * After a token named a kid not in the keys: refetches unless that was
 * done in the last JWKS_UNKNOWN_KID_INTERVAL seconds. A reference to new
 * keys, or NULL when nothing was refetched (or the refetch failed).
 */
struct jwks *jwks_cache_refresh(struct jwks_cache *c, int64_t now);
/*
 * SIGHUP: for a file source, reloads at once (blocking; the file is local)
 * and returns -1 with err if the new file is invalid, keeping the old keys;
 * for a URL, marks the keys due so the next get refetches. 0 / -1.
 */
int jwks_cache_reload(struct jwks_cache *c, int64_t now, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
