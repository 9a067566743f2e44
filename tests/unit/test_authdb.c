/*
 * Unit tests for auth/authdb on a real loop: OK, FAIL (wrong password,
 * unknown, locked, expired), app passwords, TEMPFAIL when the queue is
 * full, answers never inline, reload, free with requests pending, SCRAM
 * key lookup with fakes for unknown users; what tells an unknown name from
 * a user made with the defaults: the SCRAM salts and iterations (per hash,
 * across attempts and restarts) and the cost of a wrong password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "auth/authdb.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "net/loop.h"

/* "pencil" (RFC 7677 3 salt) */
#define S256                                                                                       \
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
/* "U*U" (crypt_blowfish test vector) */
#define BLF "{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
/* "password" (Argon2 reference test vector) */
#define ARGON                                                                                      \
	"{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"

#define MAXREQ 64

struct fixture {
	char dir[64];
	char path[128];
	struct conf *conf;
	struct loop *loop;
	struct authdb *db;
	size_t expected, answered;
	enum authdb_result result[MAXREQ];
	char *user[MAXREQ];
	bool inline_answer;
	bool in_request;
};

static void
write_passwd(struct fixture *f, const char *text)
{
	assert_int_equal(fs_write_atomic(f->path, text, strlen(text), 0600), 0);
}

static void
done_cb(void *ctx, uint64_t session_id, enum authdb_result result, const char *user)
{
	struct fixture *f = ctx;

	if (f->in_request)
		f->inline_answer = true;
	assert_true(session_id < MAXREQ);
	assert_non_null(user);
	f->result[session_id] = result;
	free(f->user[session_id]);
	f->user[session_id] = xstrdup(user);
	if (++f->answered == f->expected)
		loop_stop(f->loop);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	loop_stop(f->loop);
}

/* Runs the loop until expected answers came (or 60 s passed). */
static void
run_until(struct fixture *f, size_t expected)
{
	struct timeval tv = {60, 0};

	f->expected = expected;
	if (f->answered < expected) {
		assert_int_equal(
		    event_base_once(loop_base(f->loop), -1, EV_TIMEOUT, timeout_cb, f, &tv), 0);
		loop_run(f->loop);
	}
	assert_int_equal(f->answered, expected);
}

static void
request(struct fixture *f, uint64_t sid, const char *user, size_t ulen, const char *pw)
{
	f->in_request = true;
	authdb_verify_plain_from(
	    f->db, loop_mailbox(f->loop), sid, user, ulen, pw, strlen(pw), NULL, done_cb, f);
	f->in_request = false;
}

static struct fixture *
fixture_new(int workers, int queue, const char *text)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char err[512];
	size_t n;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_authdb.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/passwd", f->dir);
	write_passwd(f, text);
	f->conf = xcalloc(1, sizeof(*f->conf));
	f->conf->path = xstrdup("test.conf");
	n = strlen(f->path) + 6;
	f->conf->backend = xmalloc(n);
	snprintf(f->conf->backend, n, "file:%s", f->path);
	f->conf->auth_workers = workers;
	f->conf->auth_queue = queue;
	loop_global_init();
	f->loop = loop_new();
	f->db = authdb_open(f->conf, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("authdb_open: %s", err);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	authdb_free(f->db);
	/* answers posted by authdb_free still run (and free their replies) */
	if (f->answered < f->expected)
		run_until(f, f->expected);
	loop_free(f->loop);
	for (size_t i = 0; i < MAXREQ; i++)
		free(f->user[i]);
	free(f->conf->backend);
	free(f->conf->path);
	free(f->conf);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
}

static const char users[] = "# test users\n"
                            "alice:" S256 "\n"
                            "alice:" BLF "::::::label=phone\n"
                            "bob:" S256 "::::::locked=yes\n"
                            "carol:" S256 "::::::expires=1000\n"
                            "dave:" ARGON "\n";

static void
test_ok_and_fail(void **state)
{
	struct fixture *f = fixture_new(2, 64, users);

	request(f, 1, "alice", 5, "pencil");
	request(f, 2, "alice", 5, "U*U"); /* app password on the second line */
	request(f, 3, "alice", 5, "pencil2");
	request(f, 4, "nobody", 6, "pencil");
	request(f, 5, "bob", 3, "pencil"); /* locked */
	request(f, 6, "carol", 5, "pencil"); /* expired */
	request(f, 7, "dave", 4, "password"); /* Argon2id */
	request(f, 8, "alice\0x", 7, "pencil"); /* NUL in the name */
	request(f, 9, "Alice", 5, "pencil"); /* exact match only */
	request(f, 10, "alice", 5, "");
	/* never answered inline, even for quick failures */
	assert_int_equal(f->answered, 0);
	run_until(f, 10);
	assert_false(f->inline_answer);
	assert_int_equal(f->result[1], AUTHDB_OK);
	assert_string_equal(f->user[1], "alice");
	assert_int_equal(f->result[2], AUTHDB_OK);
	assert_int_equal(f->result[3], AUTHDB_FAIL);
	assert_int_equal(f->result[4], AUTHDB_FAIL);
	assert_string_equal(f->user[4], "nobody");
	assert_int_equal(f->result[5], AUTHDB_FAIL);
	assert_int_equal(f->result[6], AUTHDB_FAIL);
	assert_int_equal(f->result[7], AUTHDB_OK);
	assert_string_equal(f->user[7], "dave");
	assert_int_equal(f->result[8], AUTHDB_FAIL);
	assert_int_equal(f->result[9], AUTHDB_FAIL);
	assert_int_equal(f->result[10], AUTHDB_FAIL);
	fixture_free(f);
}

static void
test_tempfail_when_queue_full(void **state)
{
	struct fixture *f = fixture_new(1, 1, users);
	size_t ok = 0, tempfail = 0;

	for (uint64_t i = 0; i < 20; i++)
		request(f, i, "alice", 5, "pencil");
	assert_int_equal(f->answered, 0);
	run_until(f, 20);
	assert_false(f->inline_answer);
	for (size_t i = 0; i < 20; i++) {
		assert_true(f->result[i] == AUTHDB_OK || f->result[i] == AUTHDB_TEMPFAIL);
		ok += f->result[i] == AUTHDB_OK;
		tempfail += f->result[i] == AUTHDB_TEMPFAIL;
	}
	/* one worker plus one queued slot: most are refused at once */
	assert_true(ok >= 1);
	assert_true(tempfail >= 10);
	assert_int_equal(ok + tempfail, 20);
	/* the pool recovers once the queue drains */
	request(f, 30, "alice", 5, "pencil");
	run_until(f, 21);
	assert_int_equal(f->result[30], AUTHDB_OK);
	fixture_free(f);
}

static void
test_reload(void **state)
{
	struct fixture *f = fixture_new(2, 8, users);
	char err[512];

	write_passwd(f, "alice:" BLF "\n");
	assert_int_equal(authdb_reload(f->db, err, sizeof(err)), 0);
	request(f, 1, "alice", 5, "pencil");
	request(f, 2, "alice", 5, "U*U");
	run_until(f, 2);
	assert_int_equal(f->result[1], AUTHDB_FAIL);
	assert_int_equal(f->result[2], AUTHDB_OK);
	/* a bad file keeps the old data and names file:line */
	write_passwd(f, "alice:" BLF "\nbroken\n");
	assert_int_equal(authdb_reload(f->db, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: "));
	request(f, 3, "alice", 5, "U*U");
	run_until(f, 3);
	assert_int_equal(f->result[3], AUTHDB_OK);
	fixture_free(f);
}

static void
test_free_answers_pending(void **state)
{
	struct fixture *f = fixture_new(1, 32, users);

	for (uint64_t i = 0; i < 10; i++)
		request(f, i, "alice", 5, "pencil");
	f->expected = 10;
	/* fixture_free: authdb_free answers what is queued (TEMPFAIL), then
	 * the loop delivers all ten */
	fixture_free(f);
}

static void
test_open_errors(void **state)
{
	/* no backend, or none whose name prefixes it: the known forms */
	static const char *const bad[] = {NULL, "sql:x", "filex:/p", "file", "dovecot/x"};
	struct conf c;
	char err[512];

	memset(&c, 0, sizeof(c));
	c.path = (char *)"x.conf";
	c.backend = (char *)"file:/nonexistent/passwd";
	assert_null(authdb_open(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/passwd"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.backend = (char *)bad[i];
		assert_null(authdb_open(&c, err, sizeof(err)));
		assert_string_equal(err,
		    "x.conf: [auth] backend: expected file:PATH or dovecot:SOCKET or pgsql:CONNINFO");
	}
}

static void
test_scram_keys(void **state)
{
	struct fixture *f = fixture_new(1, 8, users);
	struct pwscheme_scram k, k2;
	char *user;

	assert_int_equal(authdb_scram_keys(f->db, "alice", 5, PWSCHEME_SCRAM_SHA256, &k, &user), 0);
	assert_string_equal(user, "alice");
	free(user);
	assert_int_equal(k.iter, 4096);
	assert_int_equal(k.keylen, 32);
	/* no SCRAM-SHA-1 keys for alice, and bob is locked: fakes */
	assert_int_equal(authdb_scram_keys(f->db, "alice", 5, PWSCHEME_SCRAM_SHA1, &k, &user), 0);
	assert_null(user);
	assert_int_equal(k.keylen, 20);
	assert_int_equal(authdb_scram_keys(f->db, "bob", 3, PWSCHEME_SCRAM_SHA256, &k, &user), 0);
	assert_null(user);
	/* an unknown user's fake salt is stable, and differs between names */
	assert_int_equal(authdb_scram_keys(f->db, "zed", 3, PWSCHEME_SCRAM_SHA256, &k, &user), 0);
	assert_null(user);
	assert_int_equal(authdb_scram_keys(f->db, "zed", 3, PWSCHEME_SCRAM_SHA256, &k2, &user), 0);
	assert_int_equal(k.saltlen, 16);
	assert_memory_equal(k.salt, k2.salt, k.saltlen);
	assert_int_equal(authdb_scram_keys(f->db, "zee", 3, PWSCHEME_SCRAM_SHA256, &k2, &user), 0);
	assert_memory_not_equal(k.salt, k2.salt, k.saltlen);
	fixture_free(f);
}

/* dovecot:SOCKET with Dovecot not there: it starts anyway, verifications
 * answer TEMPFAIL, and there are no stored keys (fakes) and no senders. */
static void
test_dovecot_unreachable(void **state)
{
	struct fixture *f = fixture_new(1, 8, users);
	struct pwscheme_scram k;
	unsigned char key[PWSCHEME_CRAM_KEY_MAX];
	size_t keylen = 0, n;
	char err[512], *user;

	authdb_free(f->db);
	free(f->conf->backend);
	n = strlen(f->dir) + sizeof("dovecot:/auth-client");
	f->conf->backend = xmalloc(n);
	snprintf(f->conf->backend, n, "dovecot:%s/auth-client", f->dir);
	f->db = authdb_open(f->conf, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("authdb_open: %s", err);
	request(f, 1, "alice", 5, "pencil");
	run_until(f, 1);
	assert_int_equal(f->result[1], AUTHDB_TEMPFAIL);
	assert_string_equal(f->user[1], "alice");
	assert_int_equal(authdb_scram_keys(f->db, "alice", 5, PWSCHEME_SCRAM_SHA256, &k, &user), 0);
	assert_null(user);
	assert_int_equal(k.iter, 4096);
	assert_int_equal(k.saltlen, 16);
	assert_int_equal(authdb_cram_key(f->db, "alice", 5, key, &keylen, &user), 0);
	assert_null(user);
	assert_int_equal(keylen, 16);
	assert_null(authdb_user_senders(f->db, "alice"));
	assert_int_equal(authdb_reload(f->db, err, sizeof(err)), 0);
	fixture_free(f);
}

/* App passwords: the main line's salt is announced and every active line
 * with that salt and iteration count is a candidate, main first. */
static void
test_scram_candidates(void **state)
{
	struct fixture *f = fixture_new(1, 8,
	    "carl:{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:label=phone created=123\n"
	    "carl:{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:created=100\n"
	    "carl:{SCRAM-SHA-256}4096,AAAAAAAAAAAAAAAAAAAAAA==,CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:label=old\n"
	    "carl:{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,DAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,DAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:label=gone locked=yes\n"
	    "carl:{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:label=exp expires=1000\n"
	    "carl:{SCRAM-SHA-256}8192,W22ZaJ0SNY7soEsUEjb6gQ==,FAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,FAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:label=iter\n"
	    "carl:{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:label=tab\n");
	struct authdb_scram_cand c[16];
	size_t n;
	char *user;

	assert_int_equal(
	    authdb_scram_candidates(f->db, "carl", 4, PWSCHEME_SCRAM_SHA256, c, 16, &n, &user), 0);
	assert_string_equal(user, "carl");
	free(user);
	/* main (unlabelled, though second in the file), then phone and tab;
	 * not old (another salt), gone (locked), exp (expired), iter */
	assert_int_equal(n, 3);
	assert_string_equal(c[0].label, "");
	assert_string_equal(c[0].created, "100");
	assert_int_equal(c[0].keys.stored_key[0], 0);
	assert_string_equal(c[1].label, "phone");
	assert_string_equal(c[1].created, "123");
	assert_string_equal(c[2].label, "tab");
	assert_string_equal(c[2].created, "");
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(c[i].keys.iter, 4096);
		assert_memory_equal(c[i].keys.salt, c[0].keys.salt, c[0].keys.saltlen);
	}
	/* bounded */
	assert_int_equal(
	    authdb_scram_candidates(f->db, "carl", 4, PWSCHEME_SCRAM_SHA256, c, 2, &n, &user), 0);
	free(user);
	assert_int_equal(n, 2);
	/* an unknown user: one fake candidate */
	assert_int_equal(
	    authdb_scram_candidates(f->db, "cora", 4, PWSCHEME_SCRAM_SHA256, c, 16, &n, &user), 0);
	assert_null(user);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].keys.saltlen, 16);
	fixture_free(f);
}

/*
 * Appends the lines `smtpgate user add` and `app-password add` write with
 * the defaults: {SCRAM-SHA-256} and scram1= keys with two independent random
 * salts and 4096 iterations, app passwords (napp of them) derived with the
 * same salts; extra (e.g. "locked=yes") goes on every line.
 */
static void
default_user(struct buf *b, const char *user, const char *pw, size_t napp, const char *extra)
{
	struct pwscheme_scram k256, k1, k;
	const char *errstr;
	struct buf d256, d1;
	char app[32];

	buf_init(&d256, 1024);
	buf_init(&d1, 1024);
	assert_int_equal(pwscheme_generate_data(PWSCHEME_SCRAM_SHA256, pw, strlen(pw), &d256), 0);
	assert_int_equal(pwscheme_generate_data(PWSCHEME_SCRAM_SHA1, pw, strlen(pw), &d1), 0);
	assert_int_equal(buf_printf(b, "%s:{SCRAM-SHA-256}%s:scram1=%s%s%s\n", user, d256.data,
	                     d1.data, extra[0] != '\0' ? " " : "", extra),
	    0);
	assert_int_equal(pwscheme_scram_parse(PWSCHEME_SCRAM_SHA256, d256.data, &k256, &errstr), 0);
	assert_int_equal(pwscheme_scram_parse(PWSCHEME_SCRAM_SHA1, d1.data, &k1, &errstr), 0);
	for (size_t i = 0; i < napp; i++) {
		snprintf(app, sizeof(app), "%s-app%zu", pw, i);
		buf_reset(&d256);
		buf_reset(&d1);
		assert_int_equal(pwscheme_scram_derive(PWSCHEME_SCRAM_SHA256, app, strlen(app),
		                     k256.salt, k256.saltlen, k256.iter, &k, NULL),
		    0);
		assert_int_equal(pwscheme_scram_format(&k, &d256), 0);
		assert_int_equal(pwscheme_scram_derive(PWSCHEME_SCRAM_SHA1, app, strlen(app),
		                     k1.salt, k1.saltlen, k1.iter, &k, NULL),
		    0);
		assert_int_equal(pwscheme_scram_format(&k, &d1), 0);
		assert_int_equal(
		    buf_printf(b, "%s:{SCRAM-SHA-256}%s:scram1=%s label=app%zu%s%s\n", user,
		        d256.data, d1.data, i, extra[0] != '\0' ? " " : "", extra),
		    0);
	}
	buf_free(&d256);
	buf_free(&d1);
}

/* Made like `smtpgate user add` (one app password for pat, none for sol). */
static struct fixture *
fixture_defaults(void)
{
	struct fixture *f;
	struct buf b;

	buf_init(&b, 1 << 16);
	default_user(&b, "pat", "pat's password", 1, "");
	default_user(&b, "sol", "sol's password", 0, "");
	default_user(&b, "lou", "lou's password", 1, "locked=yes");
	default_user(&b, "eve", "eve's password", 1, "expires=1000");
	default_user(&b, "tri", "tri's password", 2, "");
	f = fixture_new(1, 64, b.data);
	buf_free(&b);
	return f;
}

static char long_name[AUTHDB_USER_MAX + 2];

/* Names whose SCRAM salts and costs must look like pat's. */
static const struct {
	const char *name;
	size_t len; /* 0: strlen(name) */
	bool known; /* the lookup names the stored user */
} look_alike[] = {
    {"pat", 0, true}, /* the reference: a user made with the defaults, one app password */
    {"sol", 0, true}, /* no app password */
    {"lou", 0, false}, /* locked */
    {"eve", 0, false}, /* expired */
    {"nobody", 0, false}, {"Pat", 0, false}, /* names match exactly */
    {"pat\0x", 5, false}, /* NUL in the name */
    {"a:b", 0, false}, /* not a valid name */
    {long_name, 0, false}, /* over AUTHDB_USER_MAX */
};

#define NLOOK (sizeof(look_alike) / sizeof(look_alike[0]))

static size_t
look_alike_len(size_t i)
{
	return look_alike[i].len != 0 ? look_alike[i].len : strlen(look_alike[i].name);
}

/* The salt and iterations in the passwd file of user's main line. */
static void
file_keys(struct fixture *f, const char *user, enum pwscheme s, struct pwscheme_scram *k_r)
{
	char *text = fs_read_file(f->path, 1 << 20, NULL), *line, *save = NULL, *data;
	const char *errstr;
	size_t ulen = strlen(user);

	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, user, ulen) == 0 && line[ulen] == ':')
			break;
	}
	assert_non_null(line);
	if (s == PWSCHEME_SCRAM_SHA256) {
		data = strchr(line, '}') + 1;
		*strchr(data, ':') = '\0';
	} else {
		data = strstr(line, "scram1=") + strlen("scram1=");
		data[strcspn(data, " ")] = '\0';
	}
	assert_int_equal(pwscheme_scram_parse(s, data, k_r, &errstr), 0);
	free(text);
}

/*
 * SCRAM: every name gets, for each hash, the salt length and iteration
 * count of a user made with the defaults, the same salt at every attempt,
 * and unrelated salts for SCRAM-SHA-1 and SCRAM-SHA-256 (`user add` draws
 * them separately); a locked or expired user keeps the salt it had.
 */
static void
test_scram_fake_looks_real(void **state)
{
	struct fixture *f;
	static const enum pwscheme schemes[] = {PWSCHEME_SCRAM_SHA256, PWSCHEME_SCRAM_SHA1};
	struct pwscheme_scram k[2], again, stored;
	char *user;

	memset(long_name, 'x', sizeof(long_name) - 1);
	f = fixture_defaults();
	for (size_t i = 0; i < NLOOK; i++) {
		const char *name = look_alike[i].name;
		size_t len = look_alike_len(i);

		for (size_t j = 0; j < 2; j++) {
			assert_int_equal(
			    authdb_scram_keys(f->db, name, len, schemes[j], &k[j], &user), 0);
			if (look_alike[i].known)
				assert_string_equal(user, name);
			else
				assert_null(user);
			free(user);
			assert_int_equal(k[j].iter, 4096);
			assert_int_equal(k[j].saltlen, 16);
			assert_int_equal(k[j].keylen, schemes[j] == PWSCHEME_SCRAM_SHA1 ? 20 : 32);
			assert_int_equal(
			    authdb_scram_keys(f->db, name, len, schemes[j], &again, &user), 0);
			free(user);
			assert_memory_equal(again.salt, k[j].salt, 16);
			if (strcmp(name, "lou") == 0 || strcmp(name, "eve") == 0) {
				/* the salt of the file, keys that match nothing */
				file_keys(f, name, schemes[j], &stored);
				assert_memory_equal(k[j].salt, stored.salt, 16);
				assert_memory_not_equal(k[j].stored_key, stored.stored_key, 20);
			}
		}
		assert_memory_not_equal(k[0].salt, k[1].salt, 16);
	}
	fixture_free(f);
}

/* Fake salts stay the same across a restart (the secret is kept in the
 * spool) and differ between names and between hashes. */
static void
test_scram_fake_survives_restart(void **state)
{
	struct fixture *f = fixture_defaults();
	struct pwscheme_scram before[2], after[2], other;
	char err[512], key[160];
	char *user;

	f->conf->spool = xstrdup(f->dir);
	authdb_free(f->db);
	f->db = authdb_open(f->conf, err, sizeof(err));
	assert_non_null(f->db);
	for (int j = 0; j < 2; j++)
		assert_int_equal(
		    authdb_scram_keys(f->db, "nobody", 6,
		        j == 0 ? PWSCHEME_SCRAM_SHA256 : PWSCHEME_SCRAM_SHA1, &before[j], &user),
		    0);
	assert_int_equal(
	    authdb_scram_keys(f->db, "nobody2", 7, PWSCHEME_SCRAM_SHA256, &other, &user), 0);
	assert_memory_not_equal(other.salt, before[0].salt, 16);
	authdb_free(f->db);
	f->db = authdb_open(f->conf, err, sizeof(err));
	assert_non_null(f->db);
	for (int j = 0; j < 2; j++)
		assert_int_equal(
		    authdb_scram_keys(f->db, "nobody", 6,
		        j == 0 ? PWSCHEME_SCRAM_SHA256 : PWSCHEME_SCRAM_SHA1, &after[j], &user),
		    0);
	assert_memory_equal(before[0].salt, after[0].salt, 16);
	assert_memory_equal(before[1].salt, after[1].salt, 16);
	assert_memory_not_equal(after[0].salt, after[1].salt, 16);
	snprintf(key, sizeof(key), "%s/auth-fake-salt.key", f->dir);
	assert_int_equal(unlink(key), 0);
	free(f->conf->spool);
	f->conf->spool = NULL;
	fixture_free(f);
}

static double
cpu_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define COST_ROUNDS 31
#define COST_TRIES 3

/*
 * The least CPU time (ms) of the process over COST_ROUNDS wrong passwords
 * for each name of look_alike, then tri, into least; the names are taken in
 * turn so that load hits all alike. The least, not a median or a quartile:
 * on a busy (virtual) machine up to a third of the samples come out several
 * times too high, and such noise only ever adds.
 */
static void
plain_cost(struct fixture *f, double *least)
{
	double t;

	for (size_t i = 0; i <= NLOOK; i++)
		least[i] = 1e9;
	for (size_t r = 0; r < COST_ROUNDS; r++) {
		for (size_t i = 0; i <= NLOOK; i++) {
			const char *name = i < NLOOK ? look_alike[i].name : "tri";
			size_t len = i < NLOOK ? look_alike_len(i) : 3;
			uint64_t sid = f->answered % MAXREQ;

			f->in_request = true;
			t = cpu_ms();
			authdb_verify_plain_from(f->db, loop_mailbox(f->loop), sid, name, len,
			    "wrong", 5, NULL, done_cb, f);
			f->in_request = false;
			run_until(f, f->answered + 1);
			t = cpu_ms() - t;
			if (t < least[i])
				least[i] = t;
			assert_int_equal(f->result[sid], AUTHDB_FAIL);
		}
	}
}

/*
 * PLAIN/LOGIN: a wrong password costs the same work for every name as for
 * pat, a user made with the defaults with one app password (within 15 %),
 * and tri, with two app passwords, a check more (so the measure does see
 * one check). Up to COST_TRIES measures, as a busy machine may still spoil
 * one; a real difference (one check against two) shows in every one.
 */
static void
test_plain_cost_looks_real(void **state)
{
	struct fixture *f;
	double least[NLOOK + 1];
	char why[256] = "";

	memset(long_name, 'x', sizeof(long_name) - 1);
	f = fixture_defaults();
	for (int try = 0; try < COST_TRIES; try++) {
		plain_cost(f, least);
		why[0] = '\0';
		for (size_t i = 1; i < NLOOK && why[0] == '\0'; i++) {
			if (least[i] < least[0] * 0.85 || least[i] > least[0] * 1.15)
				snprintf(why, sizeof(why), "%s: %.2f ms, pat %.2f ms",
				    look_alike[i].name, least[i], least[0]);
		}
		if (why[0] == '\0' && least[NLOOK] < least[0] * 1.3)
			snprintf(why, sizeof(why),
			    "tri: %.2f ms, pat %.2f ms: one check more does not show", least[NLOOK],
			    least[0]);
		if (why[0] == '\0')
			break;
	}
	fixture_free(f);
	if (why[0] != '\0')
		fail_msg("%s", why);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_and_fail),
	    cmocka_unit_test(test_tempfail_when_queue_full),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_free_answers_pending),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_scram_keys),
	    cmocka_unit_test(test_dovecot_unreachable),
	    cmocka_unit_test(test_scram_candidates),
	    cmocka_unit_test(test_scram_fake_looks_real),
	    cmocka_unit_test(test_scram_fake_survives_restart),
	    cmocka_unit_test(test_plain_cost_looks_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
