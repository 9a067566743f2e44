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
 * Passwords are checked here (authdb_pf.c, over the snapshot), one
 * authdb_check per active line of the user tried, stopping at the first
 * match; authdb pads a failure to the cost of a default user's wrong
 * password (pads). The SCRAM and CRAM-MD5 keys come from the lines
 * themselves; the last-use record is kept beside
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

static enum authdb_result
authdb_file_verify(void *be, const struct authdb_verify *v, struct authdb_match *m_r)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap = authdb_file_snap_get(af);
	enum authdb_result r = authdb_pf_verify(snap->pf, v, m_r);

	authdb_file_snap_put(af, snap);
	return r;
}

static int
authdb_file_scram_keys(void *be, const char *user, size_t userlen, enum pwscheme scheme,
    struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r,
    struct pwscheme_scram *salt_r, bool *has_salt_r)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap = authdb_file_snap_get(af);
	int r = authdb_pf_scram_keys(
	    snap->pf, user, userlen, scheme, c_r, max, n_r, user_r, salt_r, has_salt_r);

	authdb_file_snap_put(af, snap);
	return r;
}

static int
authdb_file_cram_key(
    void *be, const char *user, size_t userlen, unsigned char *key, size_t *keylen_r, char **user_r)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap = authdb_file_snap_get(af);
	int r = authdb_pf_cram_key(snap->pf, user, userlen, key, keylen_r, user_r);

	authdb_file_snap_put(af, snap);
	return r;
}

static char *
authdb_file_user_senders(void *be, const char *user)
{
	struct authdb_file *af = be;
	struct authdb_file_snap *snap = authdb_file_snap_get(af);
	char *out = authdb_pf_user_senders(snap->pf, user);

	authdb_file_snap_put(af, snap);
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
	bool found = authdb_pf_has_credential(snap->pf, user, label, created);

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
