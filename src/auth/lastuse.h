/*
 * lastuse: when and from where each credential was last used, kept across
 * restarts in a state file beside the passwd file (`<passwd file>.lastuse`,
 * doc/passwd.5.md). The server notes every successful verification
 * (lastuse_note, cheap: a table update under a mutex); a flusher thread
 * writes the table with fs_write_atomic at most every LASTUSE_DELAY_S
 * seconds, and once more at lastuse_close. No loop thread ever writes.
 *
 * A credential is keyed by (user, label, created): label "" for the line
 * without one, created the value of its created= field ("" when absent).
 * created tells a deleted and re-made app password of the same label from
 * the old one; readers match all three.
 *
 * File format (JSON, one document):
 *   {"version": 1, "credentials": [{"user": "...", "label": "...",
 *     "created": "...", "time": UNIXTIME, "client": "IP"}, ...]}
 */
#ifndef SG_AUTH_LASTUSE_H
#define SG_AUTH_LASTUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LASTUSE_DELAY_S 2 /* at most one write per this many seconds */
#define LASTUSE_SUFFIX ".lastuse"
#define LASTUSE_FILE_MAX (16 * 1024 * 1024)
#define LASTUSE_CLIENT_MAX 64

struct lastuse;

struct lastuse_rec {
	char *user;
	char *label; /* "" for none */
	char *created; /* "" for none */
	int64_t time;
	char client[LASTUSE_CLIENT_MAX];
};

/* Whether a record still names a credential (pruning at each write). */
typedef bool lastuse_keep_cb(void *arg, const char *user, const char *label, const char *created);

/* Loads path (missing: empty; unreadable or invalid: logged, empty) and
 * starts the flusher. keep may be NULL (keep everything). */
struct lastuse *lastuse_open(const char *path, lastuse_keep_cb *keep, void *keep_arg);
/* Writes what is pending, stops the flusher, frees. NULL is a no-op. */
void lastuse_close(struct lastuse *lu);
/* Records a successful use; client NULL for unknown. */
void lastuse_note(struct lastuse *lu, const char *user, const char *label, const char *created,
    const char *client, int64_t when);

/* Reads a state file (for `smtpgate user list`): *recs_r (malloc'd array,
 * lastuse_recs_free, sorted for lastuse_find) and *n_r. A missing file is
 * 0 records. -1 on a read or format error, with a message in err. */
int lastuse_read(const char *path, struct lastuse_rec **recs_r, size_t *n_r, char *err,
    size_t errlen) __attribute__((warn_unused_result));
void lastuse_recs_free(struct lastuse_rec *recs, size_t n);
/* The record for (user, label, created) in recs as lastuse_read gives
 * them (a binary search), or NULL; of two records of one credential (a
 * damaged file), the later use. */
const struct lastuse_rec *lastuse_find(const struct lastuse_rec *recs, size_t n, const char *user,
    const char *label, const char *created);

#endif
