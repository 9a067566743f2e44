/*
 * authdb_priv: the credential backend vtable (struct authdb_backend) and
 * what authdb gives its backends, shared by authdb.c (what is common: the
 * worker pool, answers through the mailbox, the equal-cost padding, fake
 * SCRAM keys, the last-use record) and one file per backend:
 * authdb_file.c (file:PATH, the passwd-file) and authdb_dovecot.c
 * (dovecot:SOCKET). Not for use outside those files.
 *
 * authdb_open picks the backend whose name prefixes [auth] backend
 * ("file:PATH" -> "file") from authdb.c's table of backends; another
 * backend (pgsql:CONNINFO) is a row there, an extern below and a file of
 * its own. authdb.c never looks inside a backend's state.
 *
 * Threads: verify and refresh run on authdb's workers, the lookups on any
 * thread (the inline API: authdb_scram_candidates, authdb_cram_key,
 * authdb_user_senders) and has_credential on the last-use flusher; all may
 * run at once, so a backend locks what it shares. open, reload and free
 * follow authdb_open, authdb_reload and authdb_free.
 */
#ifndef SG_AUTH_AUTHDB_PRIV_H
#define SG_AUTH_AUTHDB_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/authdb.h"
#include "auth/pwscheme.h"

struct conf;

/* A plaintext verification as authdb hands it to a backend (all valid
 * during the call only). */
struct authdb_verify {
	struct authdb *db; /* for authdb_check */
	uint64_t session_id;
	const char *user; /* NUL-terminated; may hold a NUL before userlen */
	size_t userlen;
	const char *password; /* secret */
	size_t passlen;
	const char *client; /* the client's IP address, or NULL */
};

/* What a verification found (authdb frees the strings). */
struct authdb_match {
	size_t checks; /* password hashes checked, matched or not (the padding) */
	char *user; /* AUTHDB_OK: the canonical name */
	char *label; /* AUTHDB_OK: the matched credential's label=, or NULL */
	char *created; /* AUTHDB_OK: its created=, or NULL */
};

struct authdb_backend {
	const char *name; /* the prefix of [auth] backend, without its ':' */
	const char *usage; /* "file:PATH": what the error says is expected */
	size_t workers; /* [auth] workers when unset; 0: one per core */
	/* true: the passwords are checked here (authdb_check), so a failure
	 * is padded to the cost of a default user's wrong password; false:
	 * the backend keeps its own timing (Dovecot) */
	bool pads;

	/* arg: [auth] backend after the prefix. NULL with a message in err. */
	void *(*open)(const char *arg, const struct conf *c, char *err, size_t errlen);
	void (*free)(void *be);
	/* SIGHUP: on error the old data stays; -1 and err */
	int (*reload)(void *be, char *err, size_t errlen);
	/* before each request on a worker (passwd-file edits count at once);
	 * NULL: nothing to do */
	void (*refresh)(void *be);

	/* AUTHDB_OK fills m_r's strings; m_r->checks counts in every case. */
	enum authdb_result (*verify)(
	    void *be, const struct authdb_verify *v, struct authdb_match *m_r);

	/*
	 * The SCRAM candidates of user for scheme (authdb_scram_candidates'
	 * rules): c_r[0..*n_r-1], at most max, and *user_r the stored name
	 * (malloc'd). *n_r 0 says "none" (authdb then makes the fake); if the
	 * user has only locked or expired keys, *has_salt_r is then true and
	 * salt_r holds them (their salt and iteration count are announced).
	 * -1 on failure (*user_r NULL). NULL: the backend stores no keys.
	 */
	int (*scram_keys)(void *be, const char *user, size_t userlen, enum pwscheme scheme,
	    struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r,
	    struct pwscheme_scram *salt_r, bool *has_salt_r);
	/* The CRAM-MD5 key of user into key (PWSCHEME_CRAM_KEY_MAX bytes) and
	 * *user_r (malloc'd), or *user_r NULL for none (authdb then makes a
	 * random key). -1 on failure. NULL: the backend has no such keys. */
	int (*cram_key)(void *be, const char *user, size_t userlen, unsigned char *key,
	    size_t *keylen_r, char **user_r);
	/* authdb_user_senders; NULL: none */
	char *(*user_senders)(void *be, const char *user);

	/* The last-use file (malloc'd), or NULL when none is kept (so is a
	 * NULL entry). */
	char *(*lastuse_path)(void *be);
	/* Does credential (user, label, created: "" for none) still exist? For
	 * pruning the last-use file; needed with lastuse_path. */
	bool (*has_credential)(void *be, const char *user, const char *label, const char *created);
};

extern const struct authdb_backend authdb_file_backend; /* authdb_file.c */
extern const struct authdb_backend authdb_dovecot_backend; /* authdb_dovecot.c */
extern const struct authdb_backend authdb_pgsql_backend; /* authdb_pgsql.c */

struct passwd_file;

/*
 * authdb_pf.c: verify, scram_keys, cram_key, user_senders and
 * has_credential (the vtable's rules) over credentials held as a passwd
 * file (read only), for the backends whose credentials are lines of one.
 */
enum authdb_result authdb_pf_verify(
    const struct passwd_file *pf, const struct authdb_verify *v, struct authdb_match *m_r);
int authdb_pf_scram_keys(const struct passwd_file *pf, const char *user, size_t userlen,
    enum pwscheme scheme, struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r,
    struct pwscheme_scram *salt_r, bool *has_salt_r);
int authdb_pf_cram_key(const struct passwd_file *pf, const char *user, size_t userlen,
    unsigned char *key, size_t *keylen_r, char **user_r);
char *authdb_pf_user_senders(const struct passwd_file *pf, const char *user);
bool authdb_pf_has_credential(
    const struct passwd_file *pf, const char *user, const char *label, const char *created);

/*
 * Checks password against one stored credential ({scheme}data) on the
 * calling worker, under authdb's cap on concurrent Argon2id checks. A
 * library failure is logged (with user, may be NULL) and is a mismatch.
 */
bool authdb_check(struct authdb *db, enum pwscheme s, const char *data, const char *user,
    const char *password, size_t passlen);

#endif
