/*
 * sasl_oauth: the pure parts of the bearer-token mechanisms, XOAUTH2
 * (Google's "SASL XOAUTH2" format) and OAUTHBEARER (RFC 7628): decoding a
 * client response into user and token, recognising the client's answer to
 * an error challenge, and formatting that error challenge. No I/O, no
 * clocks, no token verification (that is auth/oauth).
 *
 * The exchange, for both mechanisms (the session does base64 and the wire):
 *   C: AUTH OAUTHBEARER <b64 client response>   (or AUTH X + 334 "" + response)
 *   S: token good           -> 235 2.7.0
 *      token bad            -> 334 <b64 of sasl_oauth_error_json()>
 *                              C: <b64 "\x01"> (OAUTHBEARER) or "" (XOAUTH2)
 *                              S: 535 5.7.8   (whatever the client answered,
 *                                              except "*": 501 5.7.0)
 *      verifier unavailable -> 454 4.7.0 (no challenge)
 *      malformed response   -> 535 5.7.8 (no challenge: nothing to explain)
 */
#ifndef SG_SASL_SASL_OAUTH_H
#define SG_SASL_SASL_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Longest accepted bearer token. RFC 6750 sets none; real JWT access tokens
 * are 1-2 KiB, and 8 KiB decoded still fits an AUTH line (RFC 4954 4:
 * 12288 octets of base64). */
#define SASL_OAUTH_TOKEN_MAX 8192
/* Longest accepted user (RFC 5321 4.5.3.1: 64 + 1 + 255, rounded as
 * SASL_USER_MAX). */
#define SASL_OAUTH_USER_MAX 320
/* Longest host= value kept from an OAUTHBEARER response (RFC 1035: 255). */
#define SASL_OAUTH_HOST_MAX 255

enum sasl_oauth_mech {
	SASL_OAUTH_XOAUTH2,
	SASL_OAUTH_OAUTHBEARER,
};

/*
 * A decoded client response. user is a NUL-terminated copy (OAUTHBEARER
 * unescapes "=2C" and "=3D" from the gs2 authzid); userlen is 0 when an
 * OAUTHBEARER response carried no "a=" authzid (RFC 7628 3.1 leaves it
 * optional; the identity must then come from the token, which smtpgate
 * does not do: the caller fails it). token and host point into the
 * message given to the parser and stay valid as long as it does; host is
 * NULL and port 0 when absent (both are informational: RFC 7628 3.1).
 */
struct sasl_oauth_cred {
	char user[SASL_OAUTH_USER_MAX + 1];
	size_t userlen;
	const char *token;
	size_t tokenlen;
	const char *host;
	size_t hostlen;
	unsigned port;
};

/*
 * Decodes an XOAUTH2 client response:
 *   "user=" USER %x01 "auth=Bearer " TOKEN %x01 %x01
 * "Bearer" is matched without regard to case (RFC 7235 2.1); other key=value
 * pairs are refused (the format has none). 0 / -1 with a static reason in
 * *errstr_r (for the log, never containing input bytes).
 */
int sasl_xoauth2_parse(const char *msg, size_t len, struct sasl_oauth_cred *cred_r,
    const char **errstr_r) __attribute__((warn_unused_result));

/*
 * Decodes an OAUTHBEARER client response (RFC 7628 3.1):
 *   gs2-header %x01 *(key "=" value %x01) %x01
 * with gs2-header "n,a=USER," or "y,a=USER," or "n,," (RFC 5801 4; "p="
 * (channel binding) is refused: the mechanism has none), an "auth" pair
 * "Bearer" 1*SP b64token (RFC 6750 2.1), optional "host" and "port";
 * unknown keys are ignored, a repeated key is refused. 0 / -1 and a static
 * *errstr_r.
 */
int sasl_oauthbearer_parse(const char *msg, size_t len, struct sasl_oauth_cred *cred_r,
    const char **errstr_r) __attribute__((warn_unused_result));

/*
 * Whether in is the response a client sends to the error challenge: %x01
 * for OAUTHBEARER (RFC 7628 3.2.3), empty for XOAUTH2. The server answers
 * 535 5.7.8 either way; this is for the log (a client that answers
 * something else is misbehaving).
 */
bool sasl_oauth_is_error_ack(enum sasl_oauth_mech mech, const char *in, size_t len);

/*
 * Appends the JSON error to send (base64'd by the caller) in a 334 after a
 * token was refused: RFC 7628 3.2.2
 *   {"status":"invalid_token","schemes":"bearer","scope":SCOPE,
 *    "openid-configuration":URL}
 * and for XOAUTH2 Google's form with "status":"401". scope and
 * openid_config may be NULL to leave the member out. 0 / -1 (out full).
 */
int sasl_oauth_error_json(enum sasl_oauth_mech mech, const char *scope, const char *openid_config,
    struct buf *out) __attribute__((warn_unused_result));

#endif
