/*
 * dovecot_auth: a client of Dovecot's authentication protocol ("auth client"
 * side, protocol version 1.x, as spoken on Dovecot's auth-client UNIX
 * socket) for authdb's dovecot:SOCKET backend (doc/dovecot.md).
 *
 * Two parts:
 *   - pure helpers (no I/O): tab-escaping and the parser of one server line,
 *     unit-tested and fuzzed;
 *   - struct dovecot_auth, a small pool of blocking connections used from
 *     authdb's worker threads: each verification takes an idle connection
 *     (or opens one: connect, handshake), sends one AUTH PLAIN request, waits
 *     for its answer under a deadline (poll), and gives the connection back.
 *     Any error closes that connection; the next request opens a new one.
 *     So there are at most as many connections as authdb workers.
 *
 * Only plaintext verification exists here: SCRAM and CRAM-MD5 need stored
 * credentials, which the auth-client protocol never hands out.
 */
#ifndef SG_AUTH_DOVECOT_AUTH_H
#define SG_AUTH_DOVECOT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define DOVECOT_AUTH_LINE_MAX 16384 /* AUTH_CLIENT_MAX_LINE_LENGTH in Dovecot */
#define DOVECOT_AUTH_USER_MAX 320 /* as AUTHDB_USER_MAX */
#define DOVECOT_AUTH_MECH_MAX 64
#define DOVECOT_AUTH_REASON_MAX 200
#define DOVECOT_AUTH_TIMEOUT_MS 10000 /* one request, connect to answer */

/* --- pure helpers ---------------------------------------------------------- */

/* Appends p[0..len) to out with Dovecot's tab-escaping (\001 is the escape:
 * \001 -> \0011, TAB -> \001t, CR -> \001r, LF -> \001n, NUL -> \0010). */
int dovecot_auth_escape(const char *p, size_t len, struct buf *out)
    __attribute__((warn_unused_result));

/* Unescapes p[0..len) into out (NUL-terminated, at most outmax bytes with the
 * NUL); *outlen_r excludes the NUL (the text may contain NUL from \0010).
 * -1 if it does not fit or ends in a lone \001. */
int dovecot_auth_unescape(const char *p, size_t len, char *out, size_t outmax, size_t *outlen_r)
    __attribute__((warn_unused_result));

enum dovecot_auth_kind {
	DOVECOT_AUTH_R_VERSION, /* VERSION major minor */
	DOVECOT_AUTH_R_MECH, /* MECH name [params] */
	DOVECOT_AUTH_R_SPID,
	DOVECOT_AUTH_R_CUID,
	DOVECOT_AUTH_R_COOKIE,
	DOVECOT_AUTH_R_DONE,
	DOVECOT_AUTH_R_OK, /* OK id [params] */
	DOVECOT_AUTH_R_FAIL, /* FAIL id [params] */
	DOVECOT_AUTH_R_CONT, /* CONT id base64 */
	DOVECOT_AUTH_R_OTHER, /* a command we do not know: ignored */
};

/* One server line, parsed. Strings are unescaped and NUL-terminated. */
struct dovecot_auth_reply {
	enum dovecot_auth_kind kind;
	unsigned major, minor; /* VERSION */
	uint32_t id; /* OK, FAIL, CONT */
	char mech[DOVECOT_AUTH_MECH_MAX + 1]; /* MECH, upper case as sent */
	bool has_user; /* OK/FAIL user= */
	char user[DOVECOT_AUTH_USER_MAX + 1];
	bool temp; /* FAIL code=temp_fail (2.2+), or the older "temp" flag */
	bool nologin; /* OK nologin: verified, but must not be let in */
	bool proxy; /* OK proxy: to be proxied elsewhere (password maybe unchecked) */
	char code[32]; /* FAIL code=..., truncated; "" if none */
	char reason[DOVECOT_AUTH_REASON_MAX + 1]; /* reason=, truncated; for logs */
};

/*
 * Parses one line (without its LF; a trailing CR is not allowed). Unknown
 * commands give DOVECOT_AUTH_R_OTHER; unknown parameters are ignored (the
 * protocol says so). -1 with *errstr_r for a malformed line: a NUL byte, a
 * bad number, a user= that does not fit or holds control characters (it
 * would go into logs and Received: headers), bad escaping.
 */
int dovecot_auth_parse_reply(const char *line, size_t len, struct dovecot_auth_reply *r,
    const char **errstr_r) __attribute__((warn_unused_result));

/* --- the client ------------------------------------------------------------ */

enum dovecot_auth_result {
	DOVECOT_AUTH_OK,
	DOVECOT_AUTH_FAIL,
	DOVECOT_AUTH_TEMPFAIL, /* Dovecot down, timeout, protocol error, temp_fail */
};

struct dovecot_auth;

/* A client for the socket at path. Nothing is connected yet. */
struct dovecot_auth *dovecot_auth_new(const char *path);
void dovecot_auth_free(struct dovecot_auth *da);
/* Closes every idle connection and makes busy ones close when given back
 * (SIGHUP: the next request connects afresh). Thread-safe. */
void dovecot_auth_reset(struct dovecot_auth *da);
/* Connects once and does the handshake, to tell at startup whether Dovecot is
 * there. 0, or -1 with err. The connection is kept for later requests. */
int dovecot_auth_probe(struct dovecot_auth *da, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Verifies user/password with AUTH PLAIN (service=smtp, secured, no-penalty). Blocking,
 * at most DOVECOT_AUTH_TIMEOUT_MS (Dovecot's own auth_failure_delay, 2 s by
 * default, is part of that for a failure). Thread-safe. On DOVECOT_AUTH_OK
 * user_r holds the name Dovecot returned (user=) or else the name given.
 * session_id goes into the request (session=) for Dovecot's logs, and rip
 * (the client's IP address, or NULL) as rip= for its logs and passdb rules
 * (allow_nets and the like). The
 * password and the encoded request are wiped after use and never logged.
 */
enum dovecot_auth_result dovecot_auth_verify(struct dovecot_auth *da, uint64_t session_id,
    const char *rip, const char *user, size_t userlen, const char *password, size_t passlen,
    char *user_r, size_t user_rlen);

#endif
