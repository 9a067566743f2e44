/*
 * oauth: bearer-token verification for XOAUTH2 and OAUTHBEARER behind an
 * asynchronous request/response API, like authdb (DESIGN 1). A request is
 * made on a loop thread, keyed by the session id; the answer always comes
 * back later through the mailbox given (the asking loop's), never inline. The work
 * (signature checks, JWKS downloads, introspection requests) runs on a
 * small bounded worker pool of its own; when its queue is full the answer
 * is OAUTH_TEMPFAIL (454 4.7.0), posted like any other.
 *
 * A token that looks like a JWT (jwt_is_compact) is verified locally
 * against the JWKS ([oauth] jwks) with the rules of auth/jwt.h. Any other
 * token, or every token when there is no JWKS, goes to the RFC 7662
 * introspection endpoint ([oauth] introspection) when one is configured:
 * the answer must say "active": true, its exp/nbf are honoured, iss and aud
 * must match when present, and the user claim (or else "username") must
 * name the user (same rule as the JWT user claim).
 *
 * Results: OAUTH_OK; OAUTH_INVALID for every refusal of the token (the
 * session sends the RFC 7628 error challenge, then 535 5.7.8);
 * OAUTH_TEMPFAIL when keys cannot be had, the introspection endpoint is
 * down or the pool is full (454 4.7.0). reason is a short fixed text for
 * the log ("expired", "bad signature", "jwks unavailable", ...), never
 * containing the token.
 */
#ifndef SG_AUTH_OAUTH_H
#define SG_AUTH_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct mailbox;
struct oauth;

#define OAUTH_WORKERS_DEFAULT 4
#define OAUTH_QUEUE_DEFAULT 128
#define OAUTH_INTROSPECTION_MAX (64 * 1024) /* bytes of introspection answer */
#define OAUTH_SECRET_MAX 1024 /* bytes of introspection client secret */

enum oauth_result {
	OAUTH_OK,
	OAUTH_INVALID,
	OAUTH_TEMPFAIL,
};

/*
 * The answer, on the loop thread of the request. ctx is the loop-level
 * context given with the request (it must outlive the loop); the session is
 * found from session_id, and an answer for a session that has gone is
 * simply dropped. reason is static.
 */
typedef void oauth_done_cb(
    void *ctx, uint64_t session_id, enum oauth_result result, const char *reason);

/* Everything oauth needs, for oauth_open_params (tests; conf keys not yet in
 * struct conf). NULL strings are absent; 0 numbers are defaults. */
struct oauth_params {
	const char *jwks; /* file path or https:// URL */
	const char *jwks_ca; /* PEM bundle trusted for the JWKS URL; NULL = system store */
	const char *issuer;
	const char *audience;
	const char *user_claim; /* NULL = "email" */
	const char *introspection; /* https:// URL */
	const char *introspection_ca; /* as jwks_ca, for the introspection URL */
	const char *introspection_client; /* client_id for HTTP Basic (RFC 7662 2.1) */
	const char *introspection_secret_file; /* file holding the client secret */
	int workers;
	int queue;
};

/* Whether c has an [oauth] section (jwks or introspection set). */
bool oauth_is_configured(const struct conf *c);

/*
 * Starts the verifier for c's [oauth] section. A JWKS file is loaded now
 * (an invalid one is a configuration error); a JWKS URL is fetched in the
 * background (a failure there is not fatal: requests get TEMPFAIL until it
 * works). NULL with err set on error; NULL with err "" when c has no
 * [oauth] section (see oauth_is_configured).
 */
struct oauth *oauth_open(const struct conf *c, char *err, size_t errlen);
struct oauth *oauth_open_params(const struct oauth_params *p, char *err, size_t errlen);
/* SIGHUP: re-reads a JWKS file now (keeps the old keys and returns -1 with
 * err if it is invalid) or marks URL keys for refetch. 0 / -1. */
int oauth_reload(struct oauth *o, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Stops the workers; requests still queued are answered TEMPFAIL first. o
 * may be NULL. Answers already posted still run on their loops. */
void oauth_free(struct oauth *o);

/*
 * Verifies token for user. Both are copied (the token copy is wiped after
 * use); the caller wipes its own. userlen 0 (an OAUTHBEARER response without
 * authzid) is answered OAUTH_INVALID. The answer is posted to mb.
 */
void oauth_verify(struct oauth *o, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *token, size_t tokenlen, oauth_done_cb *cb, void *ctx);

/* The "openid-configuration" URL to put in the error challenge (RFC 7628
 * 3.2.2): the issuer + "/.well-known/openid-configuration" when the issuer
 * is an https:// URL, else NULL. Valid until oauth_free. */
const char *oauth_openid_configuration(const struct oauth *o);

#endif
