/*
 * authdb_file: the file:PATH backend of authdb (authdb_priv.h), the
 * passwd-file (DESIGN 5.3, doc/passwd.5.md).
 *
 * State: an immutable, refcounted snapshot of the file (swapped under
 * snap_lock by a reload; a worker holds a reference while it verifies or
 * looks up, so a reload never frees data in use). Before each request
 * (refresh) the file is stat(2)ed and re-read when it changed, so
 * `smtpgate user` edits take effect at once, without SIGHUP.
 *
 * Passwords are checked here, one authdb_check per active line of the
 * user tried, stopping at the first match; authdb pads a failure to the
 * cost of a default user's wrong password (pads). The SCRAM and CRAM-MD5
 * keys come from the lines themselves; the last-use record is kept beside
 * the file (`<file>.lastuse`, lastuse.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/authdb_priv.h"
#include "auth/lastuse.h"
#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* What identifies a version of the passwd file: it is replaced by rename
 * (a new inode), or edited in place (size, mtime in nanoseconds). */
struct authdb_file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct authdb_file_snap {
	unsigned refs; /* under authdb_file.snap_lock */
	struct passwd_file *pf;
	struct authdb_file_stamp stamp; /* of the file, taken before reading it */
};

struct authdb_file {
	char *path;

	pthread_mutex_t snap_lock;
	struct authdb_file_snap *snap;

	/* passwd file changes are noticed before each request */
	pthread_mutex_t refresh_lock;
	struct authdb_file_stamp seen; /* the last version loaded or tried */
};

static void
authdb_file_snap_put(struct authdb_file *af, struct authdb_file_snap *s)
{
	bool last;

	if (s == NULL)
		return;
	pthread_mutex_lock(&af->snap_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&af->snap_lock);
	if (last) {
		passwd_file_free(s->pf);
		free(s);
	}
}

static struct authdb_file_snap *
authdb_file_snap_get(struct authdb_file *af)
{
	struct authdb_file_snap *s;

	pthread_mutex_lock(&af->snap_lock);
	s = af->snap;
	s->refs++;
	pthread_mutex_unlock(&af->snap_lock);
	return s;
}

static void
authdb_file_stamp_of(const struct stat *st, struct authdb_file_stamp *t)
{
	memset(t, 0, sizeof(*t));
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	t->size = st->st_size;
	t->mtime = st->st_mtim;
}

static bool
authdb_file_stamp_equal(const struct authdb_file_stamp *a, const struct authdb_file_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static struct authdb_file_snap *
authdb_file_snap_load(const char *path, char *err, size_t errlen)
{
	struct passwd_file *pf;
	struct authdb_file_snap *s;
	struct stat st;
	bool stamped;

	/* stamp first: a change while reading shows as a newer stamp later */
	stamped = stat(path, &st) == 0;
	pf = passwd_file_load(path, false, err, errlen);
	if (pf == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->refs = 1;
	s->pf = pf;
	if (stamped)
		authdb_file_stamp_of(&st, &s->stamp);
	return s;
}

static void
authdb_file_free(void *be)
{
	struct authdb_file *af = be;

	if (af == NULL)
		return;
	authdb_file_snap_put(af, af->snap);
	pthread_mutex_destroy(&af->snap_lock);
	pthread_mutex_destroy(&af->refresh_lock);
	free(af->path);
	free(af);
}

static void *
authdb_file_open(const char *path, const struct conf *c, char *err, size_t errlen)
{
	struct authdb_file *af = xcalloc(1, sizeof(*af));

	pthread_mutex_init(&af->snap_lock, NULL);
	pthread_mutex_init(&af->refresh_lock, NULL);
	af->path = xstrdup(path);
	af->snap = authdb_file_snap_load(path, err, errlen);
	if (af->snap == NULL) {
		authdb_file_free(af);
		return NULL;
	}
	af->seen = af->snap->stamp;
	return af;
}

static int
authdb_file_reload(void *be, char *err, size_t errlen)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *s, *old;

	s = authdb_file_snap_load(af->path, err, errlen);
	if (s == NULL)
		return -1;
	pthread_mutex_lock(&af->snap_lock);
	old = af->snap;
	af->snap = s;
	pthread_mutex_unlock(&af->snap_lock);
	authdb_file_snap_put(af, old);
	return 0;
}

/*
 * Reloads the passwd file when it changed since it was last loaded (or
 * tried), so that `smtpgate user del/lock/passwd/app-password del` take
 * effect at the next verification without SIGHUP. Runs on a worker thread
 * before each request: one stat(2), a reload only after a change. A bad
 * new file keeps the old data (logged once per version).
 */
static void
authdb_file_refresh(void *be)
{
	struct authdb_file *af = be;
	struct authdb_file_stamp now;
	struct stat st;
	char err[1024];

	if (stat(af->path, &st) == -1)
		return;
	authdb_file_stamp_of(&st, &now);
	pthread_mutex_lock(&af->refresh_lock);
	if (!authdb_file_stamp_equal(&now, &af->seen)) {
		af->seen = now;
		if (authdb_file_reload(af, err, sizeof(err)) == -1)
			log_event(LOG_ERR, "authdb_reload_error", 0, "{s:s, s:s}", "error", err,
			    "effect", "the previous contents stay in use");
		else
			log_event(LOG_INFO, "authdb_reload", 0, "{s:s, s:s}", "path", af->path,
			    "reason", "file changed");
	}
	pthread_mutex_unlock(&af->refresh_lock);
}

static char *
authdb_file_strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Every active line of the user, in file order, until one matches. */
static enum authdb_result
authdb_file_verify(void *be, const struct authdb_verify *v, struct authdb_match *m_r)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap = authdb_file_snap_get(af);
	struct passwd_entry *e;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0;

	if (!passwd_user_is_valid(v->user, v->userlen))
		goto fail;
	while ((e = passwd_file_next(snap->pf, v->user, v->userlen, &pos)) != NULL) {
		if (!passwd_entry_is_active(e, now))
			continue;
		m_r->checks++;
		if (authdb_check(v->db, e->scheme, e->data, e->user, v->password, v->passlen)) {
			m_r->user = xstrdup(e->user);
			m_r->label = authdb_file_strdup_or_null(passwd_entry_get(e, "label"));
			m_r->created = authdb_file_strdup_or_null(passwd_entry_get(e, "created"));
			authdb_file_snap_put(af, snap);
			return AUTHDB_OK;
		}
	}
fail:
	authdb_file_snap_put(af, snap);
	return AUTHDB_FAIL;
}

/* Copies the label and created= value of e into c (cut to fit). */
static void
authdb_file_cand_name(struct authdb_scram_cand *c, const struct passwd_entry *e)
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
authdb_file_scram_main(const struct passwd_file *pf, const char *user, size_t userlen,
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
static int
authdb_file_scram_keys(void *be, const char *user, size_t userlen, enum pwscheme scheme,
    struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r,
    struct pwscheme_scram *salt_r, bool *has_salt_r)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap;
	struct passwd_entry *e, *main_e;
	struct pwscheme_scram scratch, *main_k = &c_r[0].keys;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0, n = 0;

	if (!passwd_user_is_valid(user, userlen))
		return 0;
	memset(&scratch, 0, sizeof(scratch));
	snap = authdb_file_snap_get(af);
	main_e = authdb_file_scram_main(snap->pf, user, userlen, scheme, true, now, main_k);
	if (main_e != NULL) {
		authdb_file_cand_name(&c_r[0], main_e);
		*user_r = xstrdup(main_e->user);
		n = 1;
	} else if (authdb_file_scram_main(snap->pf, user, userlen, scheme, false, now, salt_r) !=
	    NULL) {
		/* all locked or expired: the salt the user had, and has again
		 * at an unlock, so that neither shows */
		*has_salt_r = true;
	}
	while (n > 0 && n < max && (e = passwd_file_next(snap->pf, user, userlen, &pos)) != NULL) {
		if (e == main_e || !passwd_entry_is_active(e, now) ||
		    passwd_entry_scram_keys(e, scheme, &scratch) == -1)
			continue;
		if (scratch.iter != main_k->iter || scratch.saltlen != main_k->saltlen ||
		    scratch.keylen != main_k->keylen ||
		    memcmp(scratch.salt, main_k->salt, scratch.saltlen) != 0)
			continue; /* another salt: PLAIN/LOGIN only */
		c_r[n].keys = scratch;
		authdb_file_cand_name(&c_r[n], e);
		n++;
	}
	authdb_file_snap_put(af, snap);
	explicit_bzero(&scratch, sizeof(scratch));
	*n_r = n;
	return 0;
}

/* The first active {CRAM-MD5} line. */
static int
authdb_file_cram_key(
    void *be, const char *user, size_t userlen, unsigned char *key, size_t *keylen_r, char **user_r)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap;
	struct passwd_entry *e;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0;

	if (!passwd_user_is_valid(user, userlen))
		return 0;
	snap = authdb_file_snap_get(af);
	while ((e = passwd_file_next(snap->pf, user, userlen, &pos)) != NULL) {
		if (e->scheme == PWSCHEME_CRAM_MD5 && passwd_entry_is_active(e, now) &&
		    pwscheme_cram_key(e->data, key, keylen_r) == 0) {
			*user_r = xstrdup(e->user);
			break;
		}
	}
	authdb_file_snap_put(af, snap);
	return 0;
}

static char *
authdb_file_user_senders(void *be, const char *user)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap;
	struct passwd_entry *e;
	struct buf b;
	size_t pos = 0;
	char *out = NULL;

	buf_init(&b, AUTHDB_SENDERS_MAX);
	snap = authdb_file_snap_get(af);
	while ((e = passwd_file_next(snap->pf, user, strlen(user), &pos)) != NULL) {
		const char *v = passwd_entry_get(e, "senders");

		/* the union over all lines: senders= is a property of the user */
		if (v == NULL || v[0] == '\0')
			continue;
		if ((b.len > 0 && buf_append(&b, ",", 1) == -1) || buf_append_str(&b, v) == -1)
			break; /* over the limit: what fitted */
	}
	authdb_file_snap_put(af, snap);
	if (b.len > 0)
		out = buf_strdup(&b);
	buf_free(&b);
	return out;
}

/* The last-use state file beside the passwd file (lastuse.h). */
static char *
authdb_file_lastuse_path(void *be)
{
	struct authdb_file *af = be;
	struct buf b;
	char *path;

	buf_init(&b, strlen(af->path) + sizeof(LASTUSE_SUFFIX));
	if (buf_printf(&b, "%s%s", af->path, LASTUSE_SUFFIX) == -1)
		abort(); /* sized above */
	path = buf_strdup(&b);
	buf_free(&b);
	return path;
}

static bool
authdb_file_has_credential(void *be, const char *user, const char *label, const char *created)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap = authdb_file_snap_get(af);
	struct passwd_entry *e;
	size_t pos = 0;
	bool found = false;

	while (!found && (e = passwd_file_next(snap->pf, user, strlen(user), &pos)) != NULL) {
		const char *l = passwd_entry_get(e, "label"), *c = passwd_entry_get(e, "created");

		found = strcmp(l != NULL ? l : "", label) == 0 &&
		    strcmp(c != NULL ? c : "", created) == 0;
	}
	authdb_file_snap_put(af, snap);
	return found;
}

const struct authdb_backend authdb_file_backend = {
    .name = "file",
    .usage = "file:PATH",
    .workers = 0,
    .pads = true,
    .open = authdb_file_open,
    .free = authdb_file_free,
    .reload = authdb_file_reload,
    .refresh = authdb_file_refresh,
    .verify = authdb_file_verify,
    .scram_keys = authdb_file_scram_keys,
    .cram_key = authdb_file_cram_key,
    .user_senders = authdb_file_user_senders,
    .lastuse_path = authdb_file_lastuse_path,
    .has_credential = authdb_file_has_credential,
};
