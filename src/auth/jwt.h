/*
 * jwt: verification of OAuth access tokens that are JWTs (RFC 7519) in JWS
 * compact serialisation (RFC 7515 7.1), against a JWKS. Pure apart from
 * the crypto: the time is a parameter, nothing is logged, nothing fetched.
 *
 * Accepted algorithms (RFC 7518 3.1, RFC 8037 3.1): RS256 with an RSA key,
 * ES256 with a P-256 key (signature R||S, 64 bytes), EdDSA with an Ed25519
 * key. Refused: "none", every HMAC algorithm (a public key used as an HMAC
 * secret is the classic algorithm confusion), any algorithm that does not
 * match the type of the key chosen, and a "crit" header (RFC 7515 4.1.11:
 * smtpgate understands no extension).
 *
 * Key choice: the key whose "kid" matches the header's kid (and whose type
 * fits alg); without a kid in the header, the only key of the set, and
 * JWT_KID_REQUIRED when the set has several.
 *
 * Claims (RFC 7519 4.1), checked only after the signature:
 *   iss  must equal policy->issuer exactly;
 *   aud  a string equal to policy->audience, or an array of strings
 *        containing it;
 *   exp  required; the token is refused from exp + JWT_LEEWAY on;
 *   nbf  if present, refused before nbf - JWT_LEEWAY;
 *   iat  if present, refused when later than now + JWT_LEEWAY;
 *   policy->user_claim (e.g. "email") must be a string naming the
 *        authenticating user: the local part byte for byte (RFC 5321 2.4:
 *        local parts may be case-sensitive), the domain after the last "@"
 *        without regard to ASCII case (domains are case-insensitive). A name
 *        without "@" must match exactly;
 *   email_verified, when the user claim is "email" and the token carries
 *        it, must not be false (an unverified address proves nothing).
 * Header and payload must be JSON objects without duplicate member names;
 * every segment is strict base64url without padding; the whole token is at
 * most JWT_TOKEN_MAX bytes, checked before anything is decoded.
 */
#ifndef SG_AUTH_JWT_H
#define SG_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jwks;

#define JWT_TOKEN_MAX 8192 /* = SASL_OAUTH_TOKEN_MAX */
#define JWT_LEEWAY 60 /* seconds of clock skew allowed for exp, nbf, iat */

enum jwt_result {
	JWT_OK,
	JWT_TOO_LARGE, /* over JWT_TOKEN_MAX */
	JWT_MALFORMED, /* not three base64url segments */
	JWT_BAD_JSON, /* header or payload not a JSON object */
	JWT_DUPLICATE_KEY, /* a member name repeated in header or payload */
	JWT_ALG_NONE, /* unsigned token */
	JWT_ALG_HMAC, /* HS256/384/512: refused (algorithm confusion) */
	JWT_ALG_UNSUPPORTED, /* missing or unknown alg */
	JWT_CRIT, /* "crit" header present */
	JWT_KID_REQUIRED, /* no kid and several keys */
	JWT_KID_UNKNOWN, /* no key has that kid (refresh the JWKS and retry) */
	JWT_ALG_KEY_MISMATCH, /* the key's type does not fit alg */
	JWT_BAD_SIGNATURE,
	JWT_BAD_CLAIM, /* exp, nbf, iat not numbers, aud not strings, ... */
	JWT_NO_EXP,
	JWT_EXPIRED,
	JWT_NOT_YET_VALID, /* nbf in the future */
	JWT_IAT_FUTURE,
	JWT_WRONG_ISSUER,
	JWT_WRONG_AUDIENCE,
	JWT_NO_USER_CLAIM,
	JWT_WRONG_USER,
	JWT_EMAIL_UNVERIFIED,
};

struct jwt_policy {
	const char *issuer;
	const char *audience;
	const char *user_claim;
};

/*
 * Verifies token (len bytes, not NUL-terminated necessarily) for user at
 * time now (seconds since the epoch) against keys. Never reads past len.
 */
enum jwt_result jwt_verify(const char *token, size_t len, const struct jwks *keys,
    const struct jwt_policy *policy, const char *user, size_t userlen, int64_t now);

/* A short fixed text for logs ("expired", "bad signature", ...). */
const char *jwt_result_name(enum jwt_result r);

/* Whether token has the shape of a JWS compact JWT (three base64url
 * segments, the first decoding to a JSON object start): decides between
 * local verification and introspection of an opaque token. */
bool jwt_is_compact(const char *token, size_t len);

/* The user claim rule above: local part exact, domain ASCII
 * case-insensitive. */
bool jwt_user_matches(const char *claim, size_t claimlen, const char *user, size_t userlen);

#endif
