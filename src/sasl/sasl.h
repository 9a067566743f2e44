/*
 * sasl: the mechanism interface (RFC 4422) and the registry of mechanisms.
 * Mechanism cores are pure: they take decoded client responses and say what
 * to do next: send a challenge, verify a plaintext credential, look up
 * stored keys, or fail. The session does base64, the wire, TLS channel
 * binding data, the clock and every authdb call (DESIGN 1).
 *
 * Asynchronous steps. A step may end in a status that asks the session for
 * something only the authdb (or a token verifier) can answer:
 *
 *   SASL_VERIFY_PLAIN  user + password to verify (PLAIN, LOGIN); the
 *                      session's authdb answer ends the exchange.
 *   SASL_NEED_KEYS     stored keys of sasl_user() of kind sasl_keys_kind()
 *                      (SCRAM-*, CRAM-MD5); the session looks them up
 *                      (authdb_lookup_keys), hands them over with
 *                      sasl_set_keys() and calls sasl_resume(), which
 *                      continues the same step (a challenge, or the end).
 *   SASL_VERIFY_TOKEN  a bearer token (XOAUTH2, OAUTHBEARER: sasl_token()
 *                      for sasl_user()); the session has it checked, gives
 *                      the verdict with sasl_set_verdict() and calls
 *                      sasl_resume(): SASL_DONE, or SASL_CONTINUE with an
 *                      error challenge (RFC 7628 3.2.2) whose answer then
 *                      ends in SASL_FAILED.
 *
 * Ends: SASL_DONE (authenticated as sasl_user(), the canonical name the
 * session gave with the keys or verdict), SASL_FAILED (a well-formed
 * exchange whose proof did not match: 535 like a wrong password),
 * SASL_MALFORMED (the client did not follow the mechanism: 535 too, logged
 * apart), SASL_TOO_LONG (a value longer than the mechanism needs, e.g. a
 * SCRAM nonce: 501 5.5.2; every challenge a mechanism makes is then bounded
 * by what it accepted). sasl_errstr() names the reason of the last FAILED/MALFORMED for the
 * log (a static string, never secret data).
 *
 * Secrets: an exchange holds the password it decoded, the stored keys and
 * the token until sasl_free(), which wipes them. Nothing here logs.
 */
#ifndef SG_SASL_SASL_H
#define SG_SASL_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define SASL_USER_MAX 320 /* longest accepted authentication identity */
#define SASL_SECRET_MAX 1024 /* longest accepted password */
#define SASL_SCRAM_SALT_MAX 128 /* decoded salt, as PWSCHEME_SCRAM_SALT_MAX */
#define SASL_KEY_MAX 64 /* SCRAM keys (32 for SHA-256) and the CRAM-MD5 HMAC key */
#define SASL_CB_DATA_MAX 64 /* tls-unique: a Finished (12..48); tls-exporter: 32 */
#define SASL_TLS_EXPORTER_LEN 32 /* RFC 9266 2 */
#define SASL_TOKEN_MAX 8192 /* longest accepted bearer token */

enum sasl_flags {
	SASL_F_PLAINTEXT = 1 << 0, /* reveals the password: only inside TLS (RFC 4954 4) */
	SASL_F_WEAK = 1 << 1, /* legacy; only when explicitly enabled (534 otherwise) */
	SASL_F_PLUS = 1 << 2, /* needs TLS channel binding (-PLUS): only offered inside TLS */
};

enum sasl_status {
	SASL_CONTINUE, /* send the challenge in out (may be empty) as 334 */
	SASL_VERIFY_PLAIN, /* user and password are ready for the authdb */
	SASL_NEED_KEYS, /* look up stored keys for sasl_user(), then sasl_resume() */
	SASL_VERIFY_TOKEN, /* check sasl_token() for sasl_user(), then sasl_resume() */
	SASL_DONE, /* authenticated as sasl_user(): 235 */
	SASL_FAILED, /* proof or verdict did not match: 535 5.7.8 */
	SASL_MALFORMED, /* the response does not follow the mechanism: 535 5.7.8 */
	SASL_TOO_LONG, /* a value longer than the mechanism accepts: 501 5.5.2 */
};

/* Which stored keys SASL_NEED_KEYS wants. */
enum sasl_keys_kind {
	SASL_KEYS_NONE,
	SASL_KEYS_SCRAM_SHA1,
	SASL_KEYS_SCRAM_SHA256,
	SASL_KEYS_CRAM_MD5,
};

#define SASL_SCRAM_CAND_MAX 16 /* SCRAM credentials of one user tried per proof */
#define SASL_CRED_ID_MAX 64 /* a candidate's label or created= value */

/* One SCRAM credential of a user (the main password or an app password):
 * its keys, and the label and created= value that name it for the
 * last-use record ("" when absent). */
struct sasl_scram_cand {
	unsigned char stored_key[SASL_KEY_MAX];
	unsigned char server_key[SASL_KEY_MAX];
	char label[SASL_CRED_ID_MAX + 1];
	char created[SASL_CRED_ID_MAX + 1];
};

/*
 * Stored keys handed to a mechanism. For SCRAM (RFC 5802 3): iter, salt,
 * keylen, and the candidates cand[0..ncand-1]: every active credential of
 * the user for that hash with this very salt and iteration count (the one
 * salt is announced in server-first; the proof then tells which credential
 * the client used). ncand 0 means the single pair stored_key/server_key
 * (unnamed). For CRAM-MD5: the HMAC-MD5 key in secret/secretlen
 * (plaintext-equivalent).
 */
struct sasl_keys {
	unsigned iter;
	unsigned char salt[SASL_SCRAM_SALT_MAX];
	size_t saltlen;
	unsigned char stored_key[SASL_KEY_MAX];
	unsigned char server_key[SASL_KEY_MAX];
	size_t keylen;
	struct sasl_scram_cand cand[SASL_SCRAM_CAND_MAX];
	size_t ncand;
	unsigned char secret[SASL_KEY_MAX];
	size_t secretlen;
};

enum sasl_cb_type {
	SASL_CB_TLS_UNIQUE, /* RFC 5929 3.1; TLS 1.2 only */
	SASL_CB_TLS_EXPORTER, /* RFC 9266; TLS 1.3, or TLS 1.2 with extended master secret */
	SASL_CB_NTYPES,
};

/*
 * What the session knows that a mechanism may need; set with
 * sasl_set_context() before the first step. Pointers are copied from.
 */
struct sasl_context {
	const char *hostname; /* CRAM-MD5 challenge (RFC 2195 2) */
	long long now; /* seconds since the epoch, CRAM-MD5 challenge */
	/* A -PLUS variant was advertised on this session: SCRAM then refuses a
	 * client's "y" flag as a downgrade (RFC 5802 6). */
	bool plus_offered;
	/* Channel binding data of the TLS session (len 0: not available). */
	unsigned char cb[SASL_CB_NTYPES][SASL_CB_DATA_MAX];
	size_t cblen[SASL_CB_NTYPES];
};

struct sasl_mech;
struct sasl_exchange;

struct sasl_exchange *sasl_new(const struct sasl_mech *m);
/* Wipes and frees. x may be NULL. */
void sasl_free(struct sasl_exchange *x);
/*
 * One step. in/inlen is the decoded client response; has_input is false for
 * the first step of an AUTH without initial response. A challenge to send
 * is appended to out (raw bytes; the caller encodes).
 */
enum sasl_status sasl_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out);
/* Sets the session's context (copied). Call before the first step. */
void sasl_set_context(struct sasl_exchange *x, const struct sasl_context *ctx);

/* After SASL_NEED_KEYS: the kind of keys wanted for sasl_user(). */
enum sasl_keys_kind sasl_keys_kind(const struct sasl_exchange *x);
/*
 * The answer to SASL_NEED_KEYS (copied; the caller wipes its own). user is
 * the canonical stored name, or NULL when the user is unknown, locked or has
 * no such keys: k then holds a fake (stable salt, keys that match nothing)
 * and the exchange fails at the proof exactly like a wrong password.
 */
void sasl_set_keys(struct sasl_exchange *x, const struct sasl_keys *k, const char *user);
/*
 * The answer to SASL_VERIFY_TOKEN: ok with the canonical user, or not ok
 * with the JSON error challenge to send (RFC 7628 3.2.2; NULL for none).
 */
void sasl_set_verdict(struct sasl_exchange *x, bool ok, const char *user, const char *error_json);
/* Continues the step that returned SASL_NEED_KEYS or SASL_VERIFY_TOKEN. */
enum sasl_status sasl_resume(struct sasl_exchange *x, struct buf *out);
/* After SASL_VERIFY_TOKEN: the token (not NUL-terminated), valid until sasl_free. */
const char *sasl_token(const struct sasl_exchange *x);
size_t sasl_token_len(const struct sasl_exchange *x);
/* Why the last step ended in SASL_FAILED or SASL_MALFORMED: a static,
 * secret-free string for the log ("" if none). */
const char *sasl_errstr(const struct sasl_exchange *x);

/* The user the client named (SASL_VERIFY_PLAIN, SASL_NEED_KEYS,
 * SASL_VERIFY_TOKEN), or after SASL_DONE the canonical user. NUL-terminated
 * ("" if none yet), valid until sasl_free or the next step. */
const char *sasl_user(const struct sasl_exchange *x);
const char *sasl_password(const struct sasl_exchange *x);
/* After SASL_DONE of a SCRAM exchange: the label and created= value of the
 * credential whose proof matched ("" when absent; valid until sasl_free),
 * for the last-use record. false for other mechanisms. */
bool sasl_matched_cred(const struct sasl_exchange *x, const char **label_r, const char **created_r);
size_t sasl_password_len(const struct sasl_exchange *x);

#endif
