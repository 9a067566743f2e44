/*
 * authdb: the passwd-file backend behind a bounded worker pool.
 *
 * State: an immutable, refcounted snapshot of the passwd file (swapped under
 * snap_lock by authdb_reload; a worker holds a reference while it verifies,
 * so a reload never frees data in use); a lib/workpool of requests bounded
 * by [auth] queue (full: TEMPFAIL at once) with [auth] workers threads.
 * Argon2id checks are further capped (AUTHDB_ARGON2_MAX) because each takes
 * tens of MiB.
 *
 * Ownership: a request owns copies of the user and password (wiped when it
 * is freed); its answer is a heap reply posted to the asker's mailbox and freed by
 * authdb_reply_run on the loop thread after the callback. No reply refers to
 * the authdb, so answers may still run after authdb_free.
 *
 * Timing: a failed verification costs at least AUTHDB_CHECKS_MIN checks,
 * what a wrong password costs a user made with the defaults who has one app
 * password (two lines of SCRAM-SHA-256, 4096 iterations). An unknown name,
 * a user whose lines are all locked or expired, an over-long name and a
 * user with a single line make up the difference with checks of a dummy
 * credential of that scheme, made at open with a random password. A user
 * with more active lines costs one check per line tried, stopping at the
 * first match, and a line of a slower scheme ({ARGON2ID}, the crypt
 * schemes) costs what that scheme costs: response time still reveals such
 * users (smtpgate(8), "Which accounts exist"). Hiding that would mean
 * padding every answer to the slowest case.
 *
 * SCRAM: the salt and iteration count announced for a name without usable
 * keys are those of its locked or expired keys, else look like those of a
 * user made with the defaults (authdb_scram_fake).
 */
#include "auth/authdb.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/dovecot_auth.h"
#include "auth/lastuse.h"
#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/workpool.h"
#include "lib/xalloc.h"
#include "lib/mailbox.h"

#define AUTHDB_ARGON2_MAX 2 /* concurrent Argon2id checks (64 MiB each by default) */
#define AUTHDB_WORKERS_MIN 2
#define AUTHDB_WORKERS_MAX 8
#define AUTHDB_DOVECOT_WORKERS 16 /* they wait on Dovecot (auth_failure_delay), not hash */
#define AUTHDB_QUEUE_DEFAULT 256
#define AUTHDB_FAKE_SECRET_LEN 32
#define AUTHDB_FAKE_SECRET_FILE "auth-fake-salt.key" /* in the spool */
/* checks a failed verification costs at least: a user made by `smtpgate user
 * add` (one default line) with one app password (a second one) */
#define AUTHDB_CHECKS_MIN 2

/* What identifies a version of the passwd file: it is replaced by rename
 * (a new inode), or edited in place (size, mtime in nanoseconds). */
struct authdb_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct authdb_snap {
	unsigned refs; /* under authdb.snap_lock */
	struct passwd_file *pf;
	struct authdb_stamp stamp; /* of the file, taken before reading it */
};

struct authdb_req {
	struct mailbox *mb;
	uint64_t session_id;
	char *user; /* NUL-terminated copy, may contain NUL before userlen */
	size_t userlen;
	char *password;
	size_t passlen;
	char *client; /* the client's IP address, or NULL */
	authdb_done_cb *cb;
	void *ctx;
	authdb_task_fn *task; /* set: a task (authdb_run_task), not a verification */
	void *task_arg;
};

struct authdb_reply {
	authdb_done_cb *cb;
	void *ctx;
	uint64_t session_id;
	enum authdb_result result;
	char *user;
};

struct authdb {
	char *path;
	struct workpool *pool; /* of struct authdb_req */

	pthread_mutex_t snap_lock;
	struct authdb_snap *snap;

	pthread_mutex_t argon_lock;
	pthread_cond_t argon_done;
	unsigned argon_active;

	char *dummy; /* "{SCRAM-SHA-256}..." of a random password */
	enum pwscheme dummy_scheme;
	const char *dummy_data; /* into dummy */
	unsigned char fake_secret[AUTHDB_FAKE_SECRET_LEN]; /* fake SCRAM-SHA-256 salts */
	unsigned char fake_secret_sha1[AUTHDB_FAKE_SECRET_LEN]; /* fake SCRAM-SHA-1 salts */
	struct dovecot_auth *dovecot; /* backend dovecot:SOCKET (then snap is NULL) */

	/* passwd file changes are noticed before each verification */
	pthread_mutex_t refresh_lock;
	struct authdb_stamp seen; /* the last version loaded or tried */
	struct lastuse *lastuse; /* last use per credential (file backend) */
};

static void
authdb_snap_put(struct authdb *db, struct authdb_snap *s)
{
	bool last;

	if (s == NULL)
		return;
	pthread_mutex_lock(&db->snap_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&db->snap_lock);
	if (last) {
		passwd_file_free(s->pf);
		free(s);
	}
}

static struct authdb_snap *
authdb_snap_get(struct authdb *db)
{
	struct authdb_snap *s;

	pthread_mutex_lock(&db->snap_lock);
	s = db->snap;
	s->refs++;
	pthread_mutex_unlock(&db->snap_lock);
	return s;
}

static void
authdb_req_free(struct authdb_req *r)
{
	if (r == NULL)
		return;
	xfree_secret(r->user, r->userlen + 1);
	xfree_secret(r->password, r->passlen + 1);
	free(r->client);
	free(r);
}

static void
authdb_reply_run(void *arg)
{
	struct authdb_reply *rep = arg;

	rep->cb(rep->ctx, rep->session_id, rep->result, rep->user);
	free(rep->user);
	free(rep);
}

/* Answers r (user: the canonical name, or NULL for the name as given) and
 * frees it. */
static void
authdb_answer(struct authdb_req *r, enum authdb_result result, const char *user)
{
	struct authdb_reply *rep = xcalloc(1, sizeof(*rep));

	rep->cb = r->cb;
	rep->ctx = r->ctx;
	rep->session_id = r->session_id;
	rep->result = result;
	rep->user = xstrdup(user != NULL ? user : r->user);
	mailbox_post(r->mb, authdb_reply_run, rep);
	authdb_req_free(r);
}

/* One verification, under the Argon2 cap when the scheme needs it. */
static bool
authdb_check(struct authdb *db, enum pwscheme s, const char *data, const char *user,
    const char *password, size_t passlen)
{
	bool match = false;
	int r;

	if (s == PWSCHEME_ARGON2ID) {
		pthread_mutex_lock(&db->argon_lock);
		while (db->argon_active >= AUTHDB_ARGON2_MAX)
			pthread_cond_wait(&db->argon_done, &db->argon_lock);
		db->argon_active++;
		pthread_mutex_unlock(&db->argon_lock);
	}
	r = pwscheme_verify(s, data, password, passlen, &match);
	if (s == PWSCHEME_ARGON2ID) {
		pthread_mutex_lock(&db->argon_lock);
		db->argon_active--;
		pthread_cond_signal(&db->argon_done);
		pthread_mutex_unlock(&db->argon_lock);
	}
	if (r == -1) {
		/* the file was checked when loaded: a library failure */
		log_event(LOG_ERR, "authdb_verify_error", 0, "{s:s, s:s}", "user",
		    user != NULL ? user : "", "scheme", pwscheme_name(s));
		return false;
	}
	return match;
}

/* The dovecot backend: Dovecot decides (and keeps its own timing). */
static void
authdb_process_dovecot(struct authdb *db, struct authdb_req *r)
{
	char user[AUTHDB_USER_MAX + 1];
	enum authdb_result result = AUTHDB_TEMPFAIL;

	/* rip: the client's address, for Dovecot's logs and auth policy */
	switch (dovecot_auth_verify(db->dovecot, r->session_id, r->client, r->user, r->userlen,
	    r->password, r->passlen, user, sizeof(user))) {
	case DOVECOT_AUTH_OK:
		result = AUTHDB_OK;
		break;
	case DOVECOT_AUTH_FAIL:
		result = AUTHDB_FAIL;
		break;
	case DOVECOT_AUTH_TEMPFAIL:
		result = AUTHDB_TEMPFAIL;
		break;
	}
	authdb_answer(r, result, result == AUTHDB_OK ? user : NULL);
}

static void
authdb_stamp_of(const struct stat *st, struct authdb_stamp *t)
{
	memset(t, 0, sizeof(*t));
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	t->size = st->st_size;
	t->mtime = st->st_mtim;
}

static bool
authdb_stamp_equal(const struct authdb_stamp *a, const struct authdb_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Reloads the passwd file when it changed since it was last loaded (or
 * tried), so that `smtpgate user del/lock/passwd/app-password del` take
 * effect at the next verification without SIGHUP. Runs on a worker thread
 * before each verification: one stat(2), a reload only after a change. A
 * bad new file keeps the old data (logged once per version).
 */
static void
authdb_refresh(struct authdb *db)
{
	struct authdb_stamp now;
	struct stat st;
	char err[1024];

	if (db->dovecot != NULL || stat(db->path, &st) == -1)
		return;
	authdb_stamp_of(&st, &now);
	pthread_mutex_lock(&db->refresh_lock);
	if (!authdb_stamp_equal(&now, &db->seen)) {
		db->seen = now;
		if (authdb_reload(db, err, sizeof(err)) == -1)
			log_event(LOG_ERR, "authdb_reload_error", 0, "{s:s, s:s}", "error", err,
			    "effect", "the previous contents stay in use");
		else
			log_event(LOG_INFO, "authdb_reload", 0, "{s:s, s:s}", "path", db->path,
			    "reason", "file changed");
	}
	pthread_mutex_unlock(&db->refresh_lock);
}

/* The last use of e, for `smtpgate user list`. */
static void
authdb_note_use(struct authdb *db, const struct passwd_entry *e, const struct authdb_req *r)
{
	lastuse_note(db->lastuse, e->user, passwd_entry_get(e, "label"),
	    passwd_entry_get(e, "created"), r->client, (int64_t)time(NULL));
}

/* Does a credential (user, label, created) still exist? Prunes the last-use
 * file (lastuse flusher thread). */
static bool
authdb_lastuse_keep_cb(void *arg, const char *user, const char *label, const char *created)
{
	struct authdb *db = arg;
	struct authdb_snap *snap = authdb_snap_get(db);
	struct passwd_entry *e;
	size_t pos = 0;
	bool found = false;

	while (!found && (e = passwd_file_next(snap->pf, user, strlen(user), &pos)) != NULL) {
		const char *l = passwd_entry_get(e, "label"), *c = passwd_entry_get(e, "created");

		found = strcmp(l != NULL ? l : "", label) == 0 &&
		    strcmp(c != NULL ? c : "", created) == 0;
	}
	authdb_snap_put(db, snap);
	return found;
}

/* A request, on a worker (workpool_run_cb). */
static void
authdb_process(void *arg, void *item)
{
	struct authdb *db = arg;
	struct authdb_req *r = item;
	struct authdb_snap *snap;
	enum authdb_result result = AUTHDB_FAIL;
	struct passwd_entry *e;
	char *canonical = NULL;
	size_t pos = 0, tried = 0;
	int64_t now = (int64_t)time(NULL);

	if (r->task != NULL) {
		authdb_refresh(db);
		r->task(db, r->task_arg, false);
		free(r);
		return;
	}
	if (db->dovecot != NULL) {
		authdb_process_dovecot(db, r);
		return;
	}
	authdb_refresh(db);
	snap = authdb_snap_get(db);
	if (passwd_user_is_valid(r->user, r->userlen)) {
		while ((e = passwd_file_next(snap->pf, r->user, r->userlen, &pos)) != NULL) {
			if (!passwd_entry_is_active(e, now))
				continue;
			tried++;
			if (authdb_check(
			        db, e->scheme, e->data, e->user, r->password, r->passlen)) {
				result = AUTHDB_OK;
				canonical = xstrdup(e->user);
				authdb_note_use(db, e, r);
				break;
			}
		}
	}
	/* unknown, locked or expired, or fewer lines than a default user with
	 * one app password: the same cost as that user's wrong password */
	for (; result != AUTHDB_OK && tried < AUTHDB_CHECKS_MIN; tried++)
		(void)authdb_check(
		    db, db->dummy_scheme, db->dummy_data, NULL, r->password, r->passlen);
	authdb_snap_put(db, snap);
	authdb_answer(r, result, canonical);
	free(canonical);
}

/* A request still queued at authdb_free (workpool_drop_cb): TEMPFAIL. */
static void
authdb_drop(void *arg, void *item)
{
	struct authdb *db = arg;
	struct authdb_req *r = item;

	if (r->task != NULL) {
		r->task(db, r->task_arg, true);
		free(r);
	} else {
		authdb_answer(r, AUTHDB_TEMPFAIL, NULL);
	}
}

void
authdb_run_task(struct authdb *db, authdb_task_fn *fn, void *arg)
{
	struct authdb_req *r = xcalloc(1, sizeof(*r));

	r->task = fn;
	r->task_arg = arg;
	/* full or stopping: the task answers its requester TEMPFAIL */
	if (!workpool_submit(db->pool, r)) {
		fn(db, arg, true);
		free(r);
	}
}

void
authdb_verify_plain_from(struct authdb *db, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authdb_done_cb *cb, void *ctx)
{
	struct authdb_req *r = xcalloc(1, sizeof(*r));

	r->client = client != NULL ? xstrdup(client) : NULL;
	r->mb = mb;
	r->session_id = session_id;
	r->cb = cb;
	r->ctx = ctx;
	r->userlen = userlen;
	r->user = xmalloc(userlen + 1);
	memcpy(r->user, user, userlen);
	r->user[userlen] = '\0';
	r->passlen = passlen;
	r->password = xmalloc(passlen + 1);
	memcpy(r->password, password, passlen);
	r->password[passlen] = '\0';
	if (!workpool_submit(db->pool, r)) {
		/* RFC 4954 6: 454 4.7.0 temporary authentication failure */
		authdb_answer(r, AUTHDB_TEMPFAIL, NULL);
	}
}

static size_t
authdb_worker_count(const struct conf *c)
{
	long n;

	if (c->auth_workers > 0)
		return (size_t)c->auth_workers;
	if (conf_backend_dovecot(c) != NULL)
		return AUTHDB_DOVECOT_WORKERS;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < AUTHDB_WORKERS_MIN)
		n = AUTHDB_WORKERS_MIN;
	if (n > AUTHDB_WORKERS_MAX)
		n = AUTHDB_WORKERS_MAX;
	return (size_t)n;
}

static struct authdb_snap *
authdb_snap_load(const char *path, char *err, size_t errlen)
{
	struct passwd_file *pf;
	struct authdb_snap *s;
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
		authdb_stamp_of(&st, &s->stamp);
	return s;
}

static int
authdb_make_dummy(struct authdb *db)
{
	unsigned char pw[32];
	const char *errstr;
	struct buf b;
	int r = -1;

	buf_init(&b, 1024);
	if (RAND_bytes(pw, sizeof(pw)) != 1 ||
	    RAND_bytes(db->fake_secret, sizeof(db->fake_secret)) != 1)
		goto fail;
	if (pwscheme_generate(PWSCHEME_SCRAM_SHA256, (const char *)pw, sizeof(pw), &b) == -1)
		goto fail;
	db->dummy = buf_strdup(&b);
	if (pwscheme_split(db->dummy, &db->dummy_scheme, &db->dummy_data, &errstr) == -1)
		goto fail;
	r = 0;
fail:
	explicit_bzero(pw, sizeof(pw));
	buf_free(&b);
	return r;
}

/*
 * The secret behind fake SCRAM salts (authdb_scram_keys) must outlive a
 * restart: were it new at each start, an unknown name's salt would change
 * across restarts while a real user's stays, which tells them apart. It is
 * kept in <spool>/AUTHDB_FAKE_SECRET_FILE (random bytes, mode 0600), made
 * at the first start. If it can be neither read nor made, the random
 * secret of this run stays and a warning is logged.
 */
static void
authdb_fake_secret_load(struct authdb *db, const struct conf *c)
{
	char *path, *data;
	size_t len = 0;

	if (c->spool == NULL)
		return;
	path = fs_path_join(c->spool, AUTHDB_FAKE_SECRET_FILE);
	data = fs_read_file(path, 4096, &len);
	if (data != NULL && len == sizeof(db->fake_secret)) {
		memcpy(db->fake_secret, data, len);
		goto done;
	}
	if (data == NULL && errno == ENOENT && (mkdir(c->spool, 0700) == 0 || errno == EEXIST) &&
	    fs_write_atomic(path, db->fake_secret, sizeof(db->fake_secret), 0600) == 0)
		goto done;
	log_event(LOG_WARNING, "auth_fake_secret_unusable", 0, "{s:s, s:s}", "path", path, "effect",
	    "fake SCRAM salts of unknown users change at each restart");
done:
	xfree_secret(data, len);
	free(path);
}

/*
 * `smtpgate user add` gives a user's SCRAM-SHA-256 and SCRAM-SHA-1 keys two
 * independent random salts; one fake salt for both would mark a name as
 * unknown. So each hash has its own key: SCRAM-SHA-256 the stored secret
 * itself (fake salts announced before SCRAM-SHA-1 had its own key stay the
 * same), SCRAM-SHA-1 HMAC(secret, "SCRAM-SHA-1"). A key of its own rather
 * than the hash name in the HMAC input: a name may hold any byte, so
 * "SCRAM-SHA-1" followed by one name could be another name.
 */
static int
authdb_fake_secret_derive(struct authdb *db)
{
	const char *label = pwscheme_name(PWSCHEME_SCRAM_SHA1);
	unsigned int len = 0;

	if (HMAC(EVP_sha256(), db->fake_secret, sizeof(db->fake_secret),
	        (const unsigned char *)label, strlen(label), db->fake_secret_sha1, &len) == NULL ||
	    len != sizeof(db->fake_secret_sha1))
		return -1;
	return 0;
}

static void
authdb_destroy(struct authdb *db)
{
	lastuse_close(db->lastuse); /* first: its last write reads the snapshot */
	pthread_mutex_destroy(&db->refresh_lock);
	authdb_snap_put(db, db->snap);
	dovecot_auth_free(db->dovecot);
	pthread_mutex_destroy(&db->snap_lock);
	pthread_mutex_destroy(&db->argon_lock);
	pthread_cond_destroy(&db->argon_done);
	free(db->dummy);
	free(db->path);
	explicit_bzero(db->fake_secret, sizeof(db->fake_secret));
	explicit_bzero(db->fake_secret_sha1, sizeof(db->fake_secret_sha1));
	free(db);
}

/* The last-use state file beside the passwd file (lastuse.h). */
static void
authdb_lastuse_open(struct authdb *db)
{
	struct buf b;

	buf_init(&b, strlen(db->path) + sizeof(LASTUSE_SUFFIX));
	if (buf_printf(&b, "%s%s", db->path, LASTUSE_SUFFIX) == -1)
		abort(); /* sized above */
	db->lastuse = lastuse_open(b.data, authdb_lastuse_keep_cb, db);
	buf_free(&b);
}

struct authdb *
authdb_open(const struct conf *c, char *err, size_t errlen)
{
	struct authdb *db;
	const char *path = conf_backend_file(c), *sock = conf_backend_dovecot(c);
	char perr[512];
	size_t max_queued;

	if (path == NULL && sock == NULL) {
		snprintf(err, errlen, "%s: [auth] backend: expected file:PATH or dovecot:SOCKET",
		    c->path);
		return NULL;
	}
	db = xcalloc(1, sizeof(*db));
	pthread_mutex_init(&db->snap_lock, NULL);
	pthread_mutex_init(&db->argon_lock, NULL);
	pthread_cond_init(&db->argon_done, NULL);
	pthread_mutex_init(&db->refresh_lock, NULL);
	if (sock != NULL) {
		/* Dovecot may start after us or restart at any time: a missing
		 * socket is not fatal; AUTH answers 454 4.7.0 until it is there
		 * (doc/dovecot.md). */
		db->path = xstrdup(sock);
		db->dovecot = dovecot_auth_new(sock);
		if (dovecot_auth_probe(db->dovecot, perr, sizeof(perr)) == -1)
			log_event(LOG_WARNING, "dovecot_auth_unreachable", 0, "{s:s, s:s}", "error",
			    perr, "effect",
			    "starting anyway; AUTH answers 454 until it is reachable");
	} else {
		db->path = xstrdup(path);
		db->snap = authdb_snap_load(path, err, errlen);
		if (db->snap == NULL)
			goto fail;
		db->seen = db->snap->stamp;
		authdb_lastuse_open(db);
	}
	if (authdb_make_dummy(db) == -1) {
		snprintf(err, errlen, "authdb: cannot make the dummy credential");
		goto fail;
	}
	authdb_fake_secret_load(db, c);
	if (authdb_fake_secret_derive(db) == -1) {
		snprintf(err, errlen, "authdb: cannot derive the fake SCRAM-SHA-1 secret");
		goto fail;
	}
	/* last: no worker runs before db is complete */
	max_queued = c->auth_queue > 0 ? (size_t)c->auth_queue : AUTHDB_QUEUE_DEFAULT;
	db->pool = workpool_new(
	    "authdb", authdb_worker_count(c), max_queued, authdb_process, db, err, errlen);
	if (db->pool == NULL)
		goto fail;
	return db;
fail:
	authdb_destroy(db);
	return NULL;
}

int
authdb_reload(struct authdb *db, char *err, size_t errlen)
{
	struct authdb_snap *s, *old;

	if (db->dovecot != NULL) {
		/* reconnect: the next requests open new connections */
		dovecot_auth_reset(db->dovecot);
		return 0;
	}
	s = authdb_snap_load(db->path, err, errlen);
	if (s == NULL)
		return -1;
	pthread_mutex_lock(&db->snap_lock);
	old = db->snap;
	db->snap = s;
	pthread_mutex_unlock(&db->snap_lock);
	authdb_snap_put(db, old);
	return 0;
}

void
authdb_free(struct authdb *db)
{
	if (db == NULL)
		return;
	/* pending requests are answered TEMPFAIL, then the workers joined */
	workpool_free(db->pool, authdb_drop);
	authdb_destroy(db);
}

/* Copies the label and created= value of e into c (cut to fit). */
static void
authdb_cand_name(struct authdb_scram_cand *c, const struct passwd_entry *e)
{
	const char *l = passwd_entry_get(e, "label"), *t = passwd_entry_get(e, "created");

	snprintf(c->label, sizeof(c->label), "%s", l != NULL ? l : "");
	snprintf(c->created, sizeof(c->created), "%s", t != NULL ? t : "");
}

/*
 * A fake SCRAM credential of scheme for user into k_r: keys that match no
 * proof (random: they never leave the server), and what the server-first
 * message shows as a user made by `smtpgate user add` has it: the default
 * iteration count and a salt of PWSCHEME_SCRAM_SALT_LEN bytes, the same for
 * the name on every attempt and across restarts (the secret is kept in the
 * spool), and unrelated between the two hashes (authdb_fake_secret_derive).
 */
static int
authdb_scram_fake(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct pwscheme_scram *k_r)
{
	const unsigned char *key =
	    scheme == PWSCHEME_SCRAM_SHA1 ? db->fake_secret_sha1 : db->fake_secret;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int r = -1;

	memset(k_r, 0, sizeof(*k_r));
	k_r->scheme = scheme;
	k_r->iter = PWSCHEME_SCRAM_ITER_DEFAULT;
	k_r->keylen = scheme == PWSCHEME_SCRAM_SHA1 ? 20 : 32;
	if (HMAC(EVP_sha256(), key, AUTHDB_FAKE_SECRET_LEN, (const unsigned char *)user, userlen,
	        mac, &maclen) == NULL ||
	    maclen < PWSCHEME_SCRAM_SALT_LEN ||
	    RAND_bytes(k_r->stored_key, (int)k_r->keylen) != 1 ||
	    RAND_bytes(k_r->server_key, (int)k_r->keylen) != 1)
		goto fail;
	memcpy(k_r->salt, mac, PWSCHEME_SCRAM_SALT_LEN);
	k_r->saltlen = PWSCHEME_SCRAM_SALT_LEN;
	r = 0;
fail:
	explicit_bzero(mac, sizeof(mac));
	return r;
}

/*
 * The line of user whose SCRAM keys of scheme are announced, with its keys
 * in k_r: the main (first unlabelled) line with such keys, else the first
 * line with them; among the active lines, or (active false) among all.
 * NULL when there is none.
 */
static struct passwd_entry *
authdb_scram_main(const struct passwd_file *pf, const char *user, size_t userlen,
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

int
authdb_scram_candidates(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r)
{
	struct authdb_snap *snap;
	struct passwd_entry *e, *main_e = NULL;
	struct pwscheme_scram fake, scratch, *main_k = &c_r[0].keys;
	int64_t now = (int64_t)time(NULL);
	const char *errstr;
	size_t pos = 0, n = 0;
	bool parsed = false;
	int r = -1;

	*user_r = NULL;
	*n_r = 0;
	if ((scheme != PWSCHEME_SCRAM_SHA256 && scheme != PWSCHEME_SCRAM_SHA1) || max == 0)
		return -1;
	memset(&scratch, 0, sizeof(scratch));
	/* made for every name, known or not, so that both take the same time
	 * (see bench/scram_timing.py); DESIGN 4: fake salt/keys for unknown
	 * users */
	if (authdb_scram_fake(db, user, userlen, scheme, &fake) == -1)
		goto fail;
	/* the dovecot backend has no stored keys: every user gets the fake */
	snap = db->dovecot == NULL ? authdb_snap_get(db) : NULL;
	if (snap != NULL && passwd_user_is_valid(user, userlen)) {
		main_e = authdb_scram_main(snap->pf, user, userlen, scheme, true, now, main_k);
		if (main_e != NULL) {
			authdb_cand_name(&c_r[0], main_e);
			*user_r = xstrdup(main_e->user);
			n = 1;
		} else if (authdb_scram_main(
		               snap->pf, user, userlen, scheme, false, now, &scratch) != NULL) {
			/* all locked or expired: the salt the user had, and has
			 * again at an unlock, so that neither shows; fake keys */
			fake.iter = scratch.iter;
			memcpy(fake.salt, scratch.salt, scratch.saltlen);
			fake.saltlen = scratch.saltlen;
			parsed = true;
		}
		/* every other active line with that salt and iteration count */
		while (n > 0 && n < max &&
		    (e = passwd_file_next(snap->pf, user, userlen, &pos)) != NULL) {
			if (e == main_e || !passwd_entry_is_active(e, now) ||
			    passwd_entry_scram_keys(e, scheme, &scratch) == -1)
				continue;
			if (scratch.iter != main_k->iter || scratch.saltlen != main_k->saltlen ||
			    scratch.keylen != main_k->keylen ||
			    memcmp(scratch.salt, main_k->salt, scratch.saltlen) != 0)
				continue; /* another salt: PLAIN/LOGIN only */
			c_r[n].keys = scratch;
			authdb_cand_name(&c_r[n], e);
			n++;
		}
	}
	authdb_snap_put(db, snap);
	if (n == 0) {
		/* the parse a real user's keys cost; its result does not matter */
		if (!parsed &&
		    pwscheme_scram_parse(db->dummy_scheme, db->dummy_data, &scratch, &errstr) == -1)
			explicit_bzero(&scratch, sizeof(scratch));
		memset(&c_r[0], 0, sizeof(c_r[0]));
		c_r[0].keys = fake;
		n = 1;
	}
	*n_r = n;
	r = 0;
fail:
	explicit_bzero(&fake, sizeof(fake));
	explicit_bzero(&scratch, sizeof(scratch));
	return r;
}

int
authdb_scram_keys(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct pwscheme_scram *k_r, char **user_r)
{
	struct authdb_scram_cand c;
	size_t n;
	int r;

	r = authdb_scram_candidates(db, user, userlen, scheme, &c, 1, &n, user_r);
	if (r == 0)
		*k_r = c.keys;
	explicit_bzero(&c, sizeof(c));
	return r;
}

struct authdb_use_task {
	char *user, *label, *created, *client;
};

static void
authdb_use_task_run(struct authdb *db, void *arg, bool refused)
{
	struct authdb_use_task *t = arg;

	if (!refused && db->lastuse != NULL)
		lastuse_note(
		    db->lastuse, t->user, t->label, t->created, t->client, (int64_t)time(NULL));
	free(t->user);
	free(t->label);
	free(t->created);
	free(t->client);
	free(t);
}

void
authdb_record_use(
    struct authdb *db, const char *user, const char *label, const char *created, const char *client)
{
	struct authdb_use_task *t;

	if (db->lastuse == NULL)
		return;
	t = xcalloc(1, sizeof(*t));
	t->user = xstrdup(user);
	t->label = xstrdup(label != NULL ? label : "");
	t->created = xstrdup(created != NULL ? created : "");
	t->client = client != NULL ? xstrdup(client) : NULL;
	authdb_run_task(db, authdb_use_task_run, t);
}

char *
authdb_user_senders(struct authdb *db, const char *user)
{
	struct authdb_snap *snap;
	struct passwd_entry *e;
	struct buf b;
	size_t pos = 0;
	char *out = NULL;

	if (db->dovecot != NULL || user == NULL)
		return NULL;
	buf_init(&b, AUTHDB_SENDERS_MAX);
	snap = authdb_snap_get(db);
	while ((e = passwd_file_next(snap->pf, user, strlen(user), &pos)) != NULL) {
		const char *v = passwd_entry_get(e, "senders");

		/* the union over all lines: senders= is a property of the user */
		if (v == NULL || v[0] == '\0')
			continue;
		if ((b.len > 0 && buf_append(&b, ",", 1) == -1) || buf_append_str(&b, v) == -1)
			break; /* over the limit: what fitted */
	}
	authdb_snap_put(db, snap);
	if (b.len > 0)
		out = buf_strdup(&b);
	buf_free(&b);
	return out;
}

int
authdb_cram_key(struct authdb *db, const char *user, size_t userlen, unsigned char *key,
    size_t *keylen_r, char **user_r)
{
	struct authdb_snap *snap = NULL;
	struct passwd_entry *e;
	int64_t now = (int64_t)time(NULL);
	size_t pos = 0;

	*user_r = NULL;
	/* a backend without a snapshot (dovecot) has no CRAM-MD5 keys */
	pthread_mutex_lock(&db->snap_lock);
	if (db->snap != NULL) {
		snap = db->snap;
		snap->refs++;
	}
	pthread_mutex_unlock(&db->snap_lock);
	if (snap != NULL && passwd_user_is_valid(user, userlen)) {
		while ((e = passwd_file_next(snap->pf, user, userlen, &pos)) != NULL) {
			if (e->scheme == PWSCHEME_CRAM_MD5 && passwd_entry_is_active(e, now) &&
			    pwscheme_cram_key(e->data, key, keylen_r) == 0) {
				*user_r = xstrdup(e->user);
				break;
			}
		}
	}
	authdb_snap_put(db, snap);
	if (*user_r != NULL)
		return 0;
	/* a key that matches nothing: the digest check fails like a wrong password */
	*keylen_r = 16;
	return RAND_bytes(key, 16) == 1 ? 0 : -1;
}
