/*
 * authdb: the credential database behind an asynchronous request/response
 * API (DESIGN 1). Requests are made on a loop thread and keyed by the
 * session id; the answer comes back later through the mailbox given
 * (lib/mailbox.h: the asking loop's), never inline. Verification (PBKDF2, Argon2, crypt) runs on a
 * bounded worker pool so no loop thread ever hashes a password. When the
 * pool's queue is full the answer is AUTHDB_TEMPFAIL at once (454 4.7.0),
 * not a wait.
 *
 * An unknown user, a locked user and a wrong password are indistinguishable
 * from outside: a failed verification costs at least what a wrong password
 * costs a user made with the defaults who has one app password (two
 * SCRAM-SHA-256 checks); only more lines, or a slower scheme, cost more.
 *
 * The backend is picked by the prefix of [auth] backend: file:PATH (the
 * passwd-file, DESIGN 5.3) or dovecot:SOCKET (doc/dovecot.md); see
 * authdb_priv.h. authdb_reload() re-reads it (Dovecot: reconnects).
 */
#ifndef SG_AUTH_AUTHDB_H
#define SG_AUTH_AUTHDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/pwscheme.h"
#include "lib/workpool.h"
#include "sasl/sasl.h"

struct conf;
struct mailbox;
struct authdb;

enum authdb_result {
	AUTHDB_OK,
	AUTHDB_FAIL, /* unknown user, locked, expired, or wrong password */
	AUTHDB_TEMPFAIL, /* backend unavailable or pool saturated */
};

#define AUTHDB_USER_MAX 320

/*
 * The answer. user is the canonical user name as stored (valid only during
 * the call). ctx is the loop-level context given with the request (it must
 * outlive the loop, e.g. the server thread); the session is found from
 * session_id, and an answer for a session that is gone is simply dropped.
 */
typedef void authdb_done_cb(
    void *ctx, uint64_t session_id, enum authdb_result result, const char *user);
/* (For AUTHDB_FAIL and AUTHDB_TEMPFAIL, user is the name as the client gave
 * it, cut at its first NUL byte; never NULL.) */

/* Loads the backend of c ([auth] backend, workers, queue) and starts the pool.
 * NULL with a message in err on failure (file unreadable, bad line: file:line). */
struct authdb *authdb_open(const struct conf *c, char *err, size_t errlen);
/* Re-reads the backend (SIGHUP). On error keeps the old data; -1 and err. */
int authdb_reload(struct authdb *db, char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * Runs fn(db, arg, false) on a worker thread, after the passwd-file change
 * check (so `smtpgate user lock/passwd/del` count at once), or calls
 * fn(db, arg, true) at once on the caller's thread when the pool's queue is
 * full or stopping: fn must then answer its requester with a temporary
 * failure. Used by the stored-key lookups (authdb_lookup_keys).
 */
typedef void authdb_task_fn(struct authdb *db, void *arg, bool refused);
void authdb_run_task(struct authdb *db, authdb_task_fn *fn, void *arg);

/* Stops the workers (pending requests are answered TEMPFAIL first). */
void authdb_free(struct authdb *db);

/*
 * Verifies a plaintext password (AUTH PLAIN/LOGIN). user and password are
 * copied (the copy is wiped after use); the caller wipes its own. The answer
 * is posted to mb. client is the client's IP address (copied; NULL for
 * unknown), which a successful verification records as the credential's last use
 * (`<passwd file>.lastuse`, shown by `smtpgate user list`). Before each
 * verification the passwd file is stat(2)ed and re-read when it changed
 * (inode, size or mtime), so edits by `smtpgate user` take effect at once.
 */
void authdb_verify_plain_from(struct authdb *db, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authdb_done_cb *cb, void *ctx);

/*
 * Idle workers that read requests themselves (the auth process,
 * server/auth_proc.c): an idle worker of db calls idle(ctx, db), lib/
 * workpool.h's idle hook, instead of only waiting for queued requests; it
 * must also wait for authdb_kick_fd (-1 with errno when it cannot be made).
 * Set once, right after authdb_open; 0, or -1 with errno.
 */
typedef enum workpool_idle authdb_idle_cb(void *ctx, struct authdb *db);
int authdb_kick_fd(struct authdb *db);
int authdb_set_idle(struct authdb *db, authdb_idle_cb *idle, void *ctx)
    __attribute__((warn_unused_result));
/* From the idle hook, as the worker's own work begins (workpool_busy):
 * returns how many workers are still idle. */
size_t authdb_busy(struct authdb *db);
/* From the idle hook, after authdb_busy: authdb_verify_plain_from, verified
 * at once on the calling worker. */
void authdb_verify_plain_now(struct authdb *db, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authdb_done_cb *cb, void *ctx);
/* How many workers are idle (in the hook) now. Any thread. */
size_t authdb_idle_workers(struct authdb *db);

#define AUTHDB_SENDERS_MAX 8192 /* all senders= patterns of one user */

/*
 * The sender patterns of user (policy/sender.h): the senders= values of all
 * the user's lines joined with ',', malloc'd (the caller frees), or NULL
 * when there are none (or the backend has none). Cheap, inline: reads the
 * current snapshot.
 */
char *authdb_user_senders(struct authdb *db, const char *user);

/* One SCRAM credential of a user (authdb_scram_candidates). */
struct authdb_scram_cand {
	struct pwscheme_scram keys;
	char label[SASL_CRED_ID_MAX + 1]; /* "" for the main password */
	char created[SASL_CRED_ID_MAX + 1]; /* its created= value, "" when absent */
};

/*
 * The SCRAM stored keys of user for scheme (PWSCHEME_SCRAM_SHA256 or
 * PWSCHEME_SCRAM_SHA1), for a SCRAM mechanism: cheap, so it runs inline on
 * the calling thread. The salt and iteration count announced are those of
 * the user's main credential (the first active unlabelled line with keys
 * for that scheme: a {SCRAM-SHA-256} password, or the scram1= field for
 * SHA-1), else of the first active line with such keys. c_r[0..*n_r-1]
 * (at most max, main first, then file order) are all the active lines with
 * keys of that very salt and iteration count: the main password and the app
 * passwords derived with it (doc/passwd.5.md); an app password with another
 * salt is not a candidate (PLAIN/LOGIN only). For an unknown, locked or
 * expired user (and a user without such keys) c_r[0] is a fake with keys
 * that match nothing, *n_r is 1 and *user_r NULL: its salt and iteration
 * count are those of the user's locked or expired keys, else 4096 and a
 * 16-byte salt stable for that name and scheme and unrelated between
 * SCRAM-SHA-1 and SCRAM-SHA-256, like the keys `smtpgate user add` makes.
 * Otherwise *user_r is the stored name (malloc'd, the caller frees it). -1
 * only for a bad scheme or a library failure. The caller wipes c_r.
 */
int authdb_scram_candidates(struct authdb *db, const char *user, size_t userlen,
    enum pwscheme scheme, struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r)
    __attribute__((warn_unused_result));
/* The same, only the first candidate (the announced salt's main keys). */
int authdb_scram_keys(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct pwscheme_scram *k_r, char **user_r) __attribute__((warn_unused_result));

/*
 * Records a use of user's credential (label, created: "" for none) from
 * client (NULL for unknown) in the last-use file, as a successful PLAIN or
 * LOGIN verification does; for SCRAM, whose proof is checked in the
 * session. Asynchronous on the worker pool (dropped when it is full); all
 * strings are copied. A no-op without a last-use file (dovecot backend).
 */
void authdb_record_use(struct authdb *db, const char *user, const char *label, const char *created,
    const char *client);

/*
 * The CRAM-MD5 HMAC key of user (the first active {CRAM-MD5} line) into key
 * (PWSCHEME_CRAM_KEY_MAX bytes), inline like authdb_scram_keys. For an
 * unknown, locked or expired user, or one without a {CRAM-MD5} line, a
 * random key and *user_r NULL; otherwise *user_r is the stored name
 * (malloc'd). -1 on a library failure. The caller wipes key.
 */
int authdb_cram_key(struct authdb *db, const char *user, size_t userlen, unsigned char *key,
    size_t *keylen_r, char **user_r) __attribute__((warn_unused_result));

/*
 * The answer to authdb_lookup_keys. AUTHDB_OK: k holds the keys and user is
 * the canonical name, or NULL for an unknown user (k is then a fake that
 * fails at the proof like a wrong password). AUTHDB_TEMPFAIL: k and user are
 * NULL. Both are valid only during the call (k is wiped after it).
 */
typedef void authdb_keys_cb(void *ctx, uint64_t session_id, enum authdb_result result,
    const struct sasl_keys *k, const char *user);

/*
 * Looks up the stored keys a SASL mechanism asked for (sasl.h
 * SASL_NEED_KEYS: SCRAM-SHA-1, SCRAM-SHA-256 or CRAM-MD5) of user
 * (userlen bytes, copied). The lookup runs on a worker, after the passwd
 * file's change check, and its answer is posted to mb from there (a
 * mailbox_new_direct one: the answer runs on that worker). A full queue
 * answers TEMPFAIL at once, on the calling thread, through mb.
 */
void authdb_lookup_keys(struct authdb *db, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, enum sasl_keys_kind kind, authdb_keys_cb *cb, void *ctx);

#endif
