/*
 * authdb: what is common to the credential backends (authdb_priv.h) behind
 * the asynchronous API of authdb.h: the bounded worker pool, requests and
 * answers through the asker's mailbox, the equal-cost padding of failures,
 * the fake SCRAM keys of unknown users, the last-use record, and picking
 * the backend ([auth] backend) by its prefix from authdb_backends.
 *
 * State: the backend's own (opaque here); a lib/workpool of requests
 * bounded by [auth] queue (full: TEMPFAIL at once) with [auth] workers
 * threads. Argon2id checks are further capped (AUTHDB_ARGON2_MAX) because
 * each takes tens of MiB.
 *
 * Ownership: a request owns copies of the user and password (wiped when it
 * is freed); its answer is a heap reply posted to the asker's mailbox and freed by
 * authdb_reply_run on the loop thread after the callback. No reply refers to
 * the authdb, so answers may still run after authdb_free.
 *
 * Timing (a backend that checks passwords here, pads): a failed
 * verification costs at least AUTHDB_CHECKS_MIN checks, what a wrong
 * password costs a user made with the defaults who has one app password
 * (two lines of SCRAM-SHA-256, 4096 iterations). An unknown name, a user
 * whose lines are all locked or expired, an over-long name and a user with
 * a single line make up the difference with checks of a dummy credential
 * of that scheme, made at open with a random password. A user with more
 * active lines costs one check per line tried, stopping at the first
 * match, and a line of a slower scheme ({ARGON2ID}, the crypt schemes)
 * costs what that scheme costs: response time still reveals such users
 * (smtpgate(8), "Which accounts exist"). Hiding that would mean padding
 * every answer to the slowest case.
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

#include "auth/authdb_priv.h"
#include "auth/lastuse.h"
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
#define AUTHDB_QUEUE_DEFAULT 256
#define AUTHDB_FAKE_SECRET_LEN 32
#define AUTHDB_FAKE_SECRET_FILE "auth-fake-salt.key" /* in the spool */
/* checks a failed verification costs at least: a user made by `smtpgate user
 * add` (one default line) with one app password (a second one) */
#define AUTHDB_CHECKS_MIN 2

/* The backends, by the prefix of [auth] backend ("file:PATH"). */
static const struct authdb_backend *const authdb_backends[] = {
    &authdb_file_backend,
    &authdb_dovecot_backend,
    &authdb_pgsql_backend,
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
	const struct authdb_backend *backend;
	void *be; /* the backend's state */
	struct workpool *pool; /* of struct authdb_req */

	pthread_mutex_t argon_lock;
	pthread_cond_t argon_done;
	unsigned argon_active;

	char *dummy; /* "{SCRAM-SHA-256}..." of a random password */
	enum pwscheme dummy_scheme;
	const char *dummy_data; /* into dummy */
	unsigned char fake_secret[AUTHDB_FAKE_SECRET_LEN]; /* fake SCRAM-SHA-256 salts */
	unsigned char fake_secret_sha1[AUTHDB_FAKE_SECRET_LEN]; /* fake SCRAM-SHA-1 salts */

	struct lastuse *lastuse; /* last use per credential, or NULL (backend.lastuse_path) */

	authdb_idle_cb *idle; /* authdb_set_idle */
	void *idle_ctx;
};

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
bool
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

/* The backend's change check (authdb_priv.h refresh), before each request. */
static void
authdb_refresh(struct authdb *db)
{
	if (db->backend->refresh != NULL)
		db->backend->refresh(db->be);
}

/* Does a credential (user, label, created) still exist? Prunes the last-use
 * file (lastuse flusher thread). */
static bool
authdb_lastuse_keep_cb(void *arg, const char *user, const char *label, const char *created)
{
	struct authdb *db = arg;

	return db->backend->has_credential(db->be, user, label, created);
}

/* A request, on a worker (workpool_run_cb). */
static void
authdb_process(void *arg, void *item)
{
	struct authdb *db = arg;
	struct authdb_req *r = item;
	struct authdb_verify v;
	struct authdb_match m;
	enum authdb_result result;
	char *client;

	if (r->task != NULL) {
		authdb_refresh(db);
		r->task(db, r->task_arg, false);
		free(r);
		return;
	}
	authdb_refresh(db);
	memset(&m, 0, sizeof(m));
	v = (struct authdb_verify){.db = db,
	    .session_id = r->session_id,
	    .user = r->user,
	    .userlen = r->userlen,
	    .password = r->password,
	    .passlen = r->passlen,
	    .client = r->client};
	result = db->backend->verify(db->be, &v, &m);
	/* unknown, locked or expired, or fewer lines than a default user with
	 * one app password: the same cost as that user's wrong password */
	for (; db->backend->pads && result == AUTHDB_FAIL && m.checks < AUTHDB_CHECKS_MIN;
	     m.checks++)
		(void)authdb_check(
		    db, db->dummy_scheme, db->dummy_data, NULL, r->password, r->passlen);
	client = r->client;
	r->client = NULL;
	authdb_answer(r, result, result == AUTHDB_OK ? m.user : NULL);
	/* the last use of the credential, for `smtpgate user list`: after the
	 * answer (with a direct mailbox it is sent by now), off its way */
	if (result == AUTHDB_OK)
		lastuse_note(db->lastuse, m.user, m.label, m.created, client, (int64_t)time(NULL));
	free(client);
	free(m.user);
	free(m.label);
	free(m.created);
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

static struct authdb_req *
authdb_plain_req(struct mailbox *mb, uint64_t session_id, const char *user, size_t userlen,
    const char *password, size_t passlen, const char *client, authdb_done_cb *cb, void *ctx)
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
	return r;
}

void
authdb_verify_plain_from(struct authdb *db, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authdb_done_cb *cb, void *ctx)
{
	struct authdb_req *r =
	    authdb_plain_req(mb, session_id, user, userlen, password, passlen, client, cb, ctx);

	if (!workpool_submit(db->pool, r)) {
		/* RFC 4954 6: 454 4.7.0 temporary authentication failure */
		authdb_answer(r, AUTHDB_TEMPFAIL, NULL);
	}
}

void
authdb_verify_plain_now(struct authdb *db, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authdb_done_cb *cb, void *ctx)
{
	authdb_process(db,
	    authdb_plain_req(mb, session_id, user, userlen, password, passlen, client, cb, ctx));
}

static enum workpool_idle
authdb_idle_run(void *arg, struct workpool *pool)
{
	struct authdb *db = arg;

	(void)pool;
	return db->idle(db->idle_ctx, db);
}

int
authdb_kick_fd(struct authdb *db)
{
	return workpool_kick_fd(db->pool);
}

int
authdb_set_idle(struct authdb *db, authdb_idle_cb *idle, void *ctx)
{
	db->idle = idle;
	db->idle_ctx = ctx;
	return workpool_set_idle(db->pool, authdb_idle_run, db);
}

size_t
authdb_busy(struct authdb *db)
{
	return workpool_busy(db->pool);
}

size_t
authdb_idle_workers(struct authdb *db)
{
	return workpool_idle_count(db->pool);
}

static size_t
authdb_worker_count(const struct conf *c, const struct authdb_backend *b)
{
	long n;

	if (c->auth_workers > 0)
		return (size_t)c->auth_workers;
	if (b->workers > 0)
		return b->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < AUTHDB_WORKERS_MIN)
		n = AUTHDB_WORKERS_MIN;
	if (n > AUTHDB_WORKERS_MAX)
		n = AUTHDB_WORKERS_MAX;
	return (size_t)n;
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
	lastuse_close(db->lastuse); /* first: its last write reads the backend */
	if (db->be != NULL)
		db->backend->free(db->be);
	pthread_mutex_destroy(&db->argon_lock);
	pthread_cond_destroy(&db->argon_done);
	free(db->dummy);
	explicit_bzero(db->fake_secret, sizeof(db->fake_secret));
	explicit_bzero(db->fake_secret_sha1, sizeof(db->fake_secret_sha1));
	free(db);
}

/* The backend named by the prefix of spec ("file:PATH"), and *arg_r what
 * follows its ':'; NULL with the expected forms in err. */
static const struct authdb_backend *
authdb_find_backend(const struct conf *c, const char **arg_r, char *err, size_t errlen)
{
	const size_t nb = sizeof(authdb_backends) / sizeof(authdb_backends[0]);
	const char *spec = c->backend;
	struct buf b;

	for (size_t i = 0; i < nb && spec != NULL; i++) {
		size_t n = strlen(authdb_backends[i]->name);

		if (strncmp(spec, authdb_backends[i]->name, n) == 0 && spec[n] == ':') {
			*arg_r = spec + n + 1;
			return authdb_backends[i];
		}
	}
	buf_init(&b, errlen);
	for (size_t i = 0; i < nb; i++) {
		if (buf_printf(&b, "%s%s", i > 0 ? " or " : "", authdb_backends[i]->usage) == -1)
			break;
	}
	snprintf(err, errlen, "%s: [auth] backend: expected %.*s", c->path, (int)b.len,
	    b.len > 0 ? b.data : "");
	buf_free(&b);
	return NULL;
}

/* The last-use record, where the backend keeps one (lastuse.h). */
static void
authdb_lastuse_open(struct authdb *db)
{
	char *path;

	if (db->backend->lastuse_path == NULL || (path = db->backend->lastuse_path(db->be)) == NULL)
		return;
	db->lastuse = lastuse_open(path, authdb_lastuse_keep_cb, db);
	free(path);
}

struct authdb *
authdb_open(const struct conf *c, char *err, size_t errlen)
{
	const struct authdb_backend *backend;
	struct authdb *db;
	const char *arg;
	size_t max_queued;

	if ((backend = authdb_find_backend(c, &arg, err, errlen)) == NULL)
		return NULL;
	db = xcalloc(1, sizeof(*db));
	db->backend = backend;
	pthread_mutex_init(&db->argon_lock, NULL);
	pthread_cond_init(&db->argon_done, NULL);
	if ((db->be = backend->open(arg, c, err, errlen)) == NULL)
		goto fail;
	authdb_lastuse_open(db);
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
	    "authdb", authdb_worker_count(c, backend), max_queued, authdb_process, db, err, errlen);
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
	return db->backend->reload(db->be, err, errlen);
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

int
authdb_scram_candidates(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r)
{
	struct pwscheme_scram fake, scratch, salt;
	const char *errstr;
	size_t n = 0;
	bool has_salt = false;
	int r = -1;

	*user_r = NULL;
	*n_r = 0;
	if ((scheme != PWSCHEME_SCRAM_SHA256 && scheme != PWSCHEME_SCRAM_SHA1) || max == 0)
		return -1;
	memset(&scratch, 0, sizeof(scratch));
	memset(&salt, 0, sizeof(salt));
	/* made for every name, known or not, so that both take the same time
	 * (see bench/scram_timing.py); DESIGN 4: fake salt/keys for unknown
	 * users */
	if (authdb_scram_fake(db, user, userlen, scheme, &fake) == -1)
		goto fail;
	/* a backend without stored keys (dovecot): every user gets the fake */
	if (db->backend->scram_keys != NULL &&
	    db->backend->scram_keys(
	        db->be, user, userlen, scheme, c_r, max, &n, user_r, &salt, &has_salt) == -1) {
		free(*user_r);
		*user_r = NULL;
		goto fail;
	}
	if (n == 0) {
		if (has_salt) {
			/* all locked or expired: the salt the user had, and has
			 * again at an unlock, so that neither shows; fake keys */
			fake.iter = salt.iter;
			memcpy(fake.salt, salt.salt, salt.saltlen);
			fake.saltlen = salt.saltlen;
		} else if (pwscheme_scram_parse(
		               db->dummy_scheme, db->dummy_data, &scratch, &errstr) == -1) {
			/* the parse a real user's keys cost; its result does not
			 * matter */
			explicit_bzero(&scratch, sizeof(scratch));
		}
		memset(&c_r[0], 0, sizeof(c_r[0]));
		c_r[0].keys = fake;
		n = 1;
	}
	*n_r = n;
	r = 0;
fail:
	explicit_bzero(&fake, sizeof(fake));
	explicit_bzero(&scratch, sizeof(scratch));
	explicit_bzero(&salt, sizeof(salt));
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
	if (user == NULL || db->backend->user_senders == NULL)
		return NULL;
	return db->backend->user_senders(db->be, user);
}

int
authdb_cram_key(struct authdb *db, const char *user, size_t userlen, unsigned char *key,
    size_t *keylen_r, char **user_r)
{
	*user_r = NULL;
	/* a backend without them (dovecot) has no CRAM-MD5 keys */
	if (db->backend->cram_key != NULL &&
	    db->backend->cram_key(db->be, user, userlen, key, keylen_r, user_r) == -1) {
		free(*user_r);
		*user_r = NULL;
		return -1;
	}
	if (*user_r != NULL)
		return 0;
	/* a key that matches nothing: the digest check fails like a wrong password */
	*keylen_r = 16;
	return RAND_bytes(key, 16) == 1 ? 0 : -1;
}
