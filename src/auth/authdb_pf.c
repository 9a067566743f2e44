/*
 * authdb_pf: the backend operations over credentials held as a struct
 * passwd_file, shared by the backends whose credentials take that form:
 * authdb_file.c (a snapshot of the passwd file) and authdb_pgsql.c (the
 * rows of one query, made into the lines they stand for), so that a row
 * means exactly what the same line of the file means: which lines are
 * active, which SCRAM keys are announced and which are candidates, the
 * union of senders=.
 *
 * Pure apart from authdb_check (the hashing, on the caller's worker) and
 * time(NULL); pf is only read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/authdb_priv.h"
#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

static char *
authdb_pf_strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

enum authdb_result
authdb_pf_verify(
    const struct passwd_file *pf, const struct authdb_verify *v, struct authdb_match *m_r)
{
	struct passwd_entry *e;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0;

	if (!passwd_user_is_valid(v->user, v->userlen))
		return AUTHDB_FAIL;
	while ((e = passwd_file_next(pf, v->user, v->userlen, &pos)) != NULL) {
		if (!passwd_entry_is_active(e, now))
			continue;
		m_r->checks++;
		if (authdb_check(v->db, e->scheme, e->data, e->user, v->password, v->passlen)) {
			m_r->user = xstrdup(e->user);
			m_r->label = authdb_pf_strdup_or_null(passwd_entry_get(e, "label"));
			m_r->created = authdb_pf_strdup_or_null(passwd_entry_get(e, "created"));
			return AUTHDB_OK;
		}
	}
	return AUTHDB_FAIL;
}

/* Copies the label and created= value of e into c (cut to fit). */
static void
authdb_pf_cand_name(struct authdb_scram_cand *c, const struct passwd_entry *e)
{
	const char *l = passwd_entry_get(e, "label"), *t = passwd_entry_get(e, "created");

	snprintf(c->label, sizeof(c->label), "%s", l != NULL ? l : "");
	snprintf(c->created, sizeof(c->created), "%s", t != NULL ? t : "");
}

/*
 * The line of user whose SCRAM keys of scheme are announced, with its keys
 * in k_r: the main (first unlabelled) line with such keys, else the first
 * line with them; among the active lines, or (active false) among all.
 * NULL when there is none.
 */
static struct passwd_entry *
authdb_pf_scram_main(const struct passwd_file *pf, const char *user, size_t userlen,
    enum pwscheme scheme, bool active, int64_t now, struct pwscheme_scram *k_r)
{
	struct passwd_entry *e;
	size_t pos;

	for (int pass = 0; pass < 2; pass++) {
		pos = 0;
		while ((e = passwd_file_next(pf, user, userlen, &pos)) != NULL) {
			if ((!active || passwd_entry_is_active(e, now)) &&
			    (pass == 1 || passwd_entry_get(e, "label") == NULL) &&
			    passwd_entry_scram_keys(e, scheme, k_r) == 0)
				return e;
		}
	}
	return NULL;
}

/* The main line's keys first, then every other active line with that very
 * salt and iteration count (an app password with another salt serves
 * PLAIN/LOGIN only). */
int
authdb_pf_scram_keys(const struct passwd_file *pf, const char *user, size_t userlen,
    enum pwscheme scheme, struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r,
    struct pwscheme_scram *salt_r, bool *has_salt_r)
{
	struct passwd_entry *e, *main_e;
	struct pwscheme_scram scratch, *main_k = &c_r[0].keys;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0, n = 0;

	if (!passwd_user_is_valid(user, userlen))
		return 0;
	memset(&scratch, 0, sizeof(scratch));
	main_e = authdb_pf_scram_main(pf, user, userlen, scheme, true, now, main_k);
	if (main_e != NULL) {
		authdb_pf_cand_name(&c_r[0], main_e);
		*user_r = xstrdup(main_e->user);
		n = 1;
	} else if (authdb_pf_scram_main(pf, user, userlen, scheme, false, now, salt_r) != NULL) {
		/* all locked or expired: the salt the user had, and has again
		 * at an unlock, so that neither shows */
		*has_salt_r = true;
	}
	while (n > 0 && n < max && (e = passwd_file_next(pf, user, userlen, &pos)) != NULL) {
		if (e == main_e || !passwd_entry_is_active(e, now) ||
		    passwd_entry_scram_keys(e, scheme, &scratch) == -1)
			continue;
		if (scratch.iter != main_k->iter || scratch.saltlen != main_k->saltlen ||
		    scratch.keylen != main_k->keylen ||
		    memcmp(scratch.salt, main_k->salt, scratch.saltlen) != 0)
			continue; /* another salt: PLAIN/LOGIN only */
		c_r[n].keys = scratch;
		authdb_pf_cand_name(&c_r[n], e);
		n++;
	}
	explicit_bzero(&scratch, sizeof(scratch));
	*n_r = n;
	return 0;
}

/* The first active {CRAM-MD5} line. */
int
authdb_pf_cram_key(const struct passwd_file *pf, const char *user, size_t userlen,
    unsigned char *key, size_t *keylen_r, char **user_r)
{
	struct passwd_entry *e;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0;

	if (!passwd_user_is_valid(user, userlen))
		return 0;
	while ((e = passwd_file_next(pf, user, userlen, &pos)) != NULL) {
		if (e->scheme == PWSCHEME_CRAM_MD5 && passwd_entry_is_active(e, now) &&
		    pwscheme_cram_key(e->data, key, keylen_r) == 0) {
			*user_r = xstrdup(e->user);
			break;
		}
	}
	return 0;
}

char *
authdb_pf_user_senders(const struct passwd_file *pf, const char *user)
{
	struct passwd_entry *e;
	struct buf b;
	size_t pos = 0;
	char *out = NULL;

	buf_init(&b, AUTHDB_SENDERS_MAX);
	while ((e = passwd_file_next(pf, user, strlen(user), &pos)) != NULL) {
		const char *v = passwd_entry_get(e, "senders");

		/* the union over all lines: senders= is a property of the user */
		if (v == NULL || v[0] == '\0')
			continue;
		if ((b.len > 0 && buf_append(&b, ",", 1) == -1) || buf_append_str(&b, v) == -1)
			break; /* over the limit: what fitted */
	}
	if (b.len > 0)
		out = buf_strdup(&b);
	buf_free(&b);
	return out;
}

bool
authdb_pf_has_credential(
    const struct passwd_file *pf, const char *user, const char *label, const char *created)
{
	struct passwd_entry *e;
	size_t pos = 0;

	while ((e = passwd_file_next(pf, user, strlen(user), &pos)) != NULL) {
		const char *l = passwd_entry_get(e, "label"), *c = passwd_entry_get(e, "created");

		if (strcmp(l != NULL ? l : "", label) == 0 &&
		    strcmp(c != NULL ? c : "", created) == 0)
			return true;
	}
	return false;
}
