/*
 * passwd_file: the credentials file (DESIGN 5.3, doc/passwd.5.md), in
 * memory. One credential per line, Dovecot's positional layout:
 *
 *   user:{SCHEME}data:uid:gid:gecos:home:shell:extra fields
 *
 * Positional fields after the password are optional and kept verbatim. Any
 * field after the password that contains '=' (and every field from the 8th
 * on) holds space-separated extra fields "key=value" (or a bare "key"); they
 * keep their order, and unknown keys survive a rewrite; so do comments and
 * blank lines (entries with raw set, skipped by lookups). A user may have
 * several lines (app passwords). Lookups compare the user name byte for
 * byte with the stored one: no case folding, no domain handling.
 *
 * A struct passwd_file owns all its strings; pointers into it stay valid
 * until the entry is removed or the file freed. It is not locked: a shared
 * instance must be treated as read-only (authdb keeps immutable snapshots).
 */
#ifndef SG_AUTH_PASSWD_FILE_H
#define SG_AUTH_PASSWD_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/pwscheme.h"
#include "lib/buf.h"

#define PASSWD_USER_MAX 320 /* RFC 5321 4.5.3.1: 64 local part + @ + 255 domain */
#define PASSWD_FILE_MAX (64 * 1024 * 1024)
#define PASSWD_NPOSITIONAL 5 /* uid gid gecos home shell */
#define PASSWD_LABEL_MAX 64

struct passwd_field {
	char *key;
	char *value; /* NULL for a bare key */
};

struct passwd_entry {
	char *raw; /* a comment or blank line kept verbatim; then nothing else is set */
	char *user;
	char *password; /* "{SCHEME}data" as written */
	enum pwscheme scheme;
	const char *data; /* into password, after the '}' */
	char *positional[PASSWD_NPOSITIONAL]; /* verbatim; "" when empty */
	struct passwd_field *extra;
	size_t nextra;
	int line; /* 0 for entries not read from the file */
};

struct passwd_file {
	char *path;
	struct passwd_entry *entries;
	size_t nentries;
	bool exists; /* the file was there when loaded */
	mode_t mode; /* its permission bits; 0600 for a new file */
};

/* Loads path. On error NULL and "file:line: message" (or "file: strerror")
 * in err. With missing_ok, a missing file gives an empty passwd_file. */
struct passwd_file *passwd_file_load(const char *path, bool missing_ok, char *err, size_t errlen);
/* Parses text of len bytes as if read from file (tests, fuzzing). */
struct passwd_file *passwd_file_parse_text(
    const char *file, const char *text, size_t len, char *err, size_t errlen);
void passwd_file_free(struct passwd_file *pf);
/* Serialises all entries (canonical form) to out. */
int passwd_file_format(const struct passwd_file *pf, struct buf *out)
    __attribute__((warn_unused_result));
/* Replaces pf->path atomically and durably (fs_write_atomic), keeping the
 * file's mode, 0600 for a new file. -1 with errno set and err filled. */
int passwd_file_save(const struct passwd_file *pf, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Iterates over the lines of user (exact byte match). Start with *pos = 0;
 * returns NULL when there are no more. The entry stays valid until pf is
 * changed or freed.
 */
struct passwd_entry *passwd_file_next(
    const struct passwd_file *pf, const char *user, size_t userlen, size_t *pos);
bool passwd_file_has_user(const struct passwd_file *pf, const char *user);
/* Appends a copy of password ("{SCHEME}data", checked) for user; the new
 * entry is returned for setting extra fields. NULL with *errstr_r. */
struct passwd_entry *passwd_file_add(
    struct passwd_file *pf, const char *user, const char *password, const char **errstr_r);
/* Replaces the credential of e with password (checked). -1 with *errstr_r. */
int passwd_entry_set_password(struct passwd_entry *e, const char *password, const char **errstr_r)
    __attribute__((warn_unused_result));
/* Removes the entry at index i (pointers to later entries move). */
void passwd_file_remove(struct passwd_file *pf, size_t i);

/* Extra fields. get returns the value ("" for a bare key) or NULL. */
const char *passwd_entry_get(const struct passwd_entry *e, const char *key);
/* Sets key (appending it when new); value NULL makes a bare key. Keys and
 * values must not contain ':', '=' (keys), white space or control bytes.
 * -1 with *errstr_r when they do. */
int passwd_entry_set(struct passwd_entry *e, const char *key, const char *value,
    const char **errstr_r) __attribute__((warn_unused_result));
void passwd_entry_unset(struct passwd_entry *e, const char *key);

/* locked=yes */
bool passwd_entry_is_locked(const struct passwd_entry *e);
/* expires=UNIXTIME at or before now */
bool passwd_entry_is_expired(const struct passwd_entry *e, int64_t now);
/* Neither locked nor expired: may authenticate. */
bool passwd_entry_is_active(const struct passwd_entry *e, int64_t now);
/* The SCRAM keys of e for SCRAM scheme s: from the password when it has
 * that scheme, else from the scram1= field (SCRAM-SHA-1). -1 if none. */
int passwd_entry_scram_keys(const struct passwd_entry *e, enum pwscheme s,
    struct pwscheme_scram *k_r) __attribute__((warn_unused_result));

/* 1..320 bytes, no ':', white space or control bytes, not starting with '#'. */
bool passwd_user_is_valid(const char *user, size_t len);

#endif
