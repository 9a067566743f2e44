/*
 * Unit tests for queue/: group commit from several threads on a real loop,
 * the file format (envelope + trailer + checksum), start-up recovery of
 * truncated, corrupt and incoming files, envelope escaping, rollback, ids.
 * Every test works in its own mkdtemp() spool and removes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "net/loop.h"
#include "queue/envelope.h"
#include "queue/queue.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_read.h"

#define NTHREADS 4
#define PER_THREAD 8

struct fixture {
	char dir[64]; /* the spool */
	struct conf *conf;
	struct loop *loop;
	pthread_t loop_thread;
	struct queue *q;
};

struct answers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n;
	int results[NTHREADS * PER_THREAD];
	char ids[NTHREADS * PER_THREAD][QUEUE_ID_MAX];
};

static struct answers answers = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct conf *
conf_for(const char *spool)
{
	char text[512], err[256];
	struct conf *c;

	snprintf(text, sizeof(text),
	    "[server]\nhostname = t.test\nspool = %s\n"
	    "[listen a]\naddress = 127.0.0.1:2525\ntls = none\nauth = off\nrelay = local\n",
	    spool);
	c = conf_parse_text("/nonexistent/test.conf", text, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

static void *
loop_main(void *arg)
{
	loop_run(arg);
	return NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/sg-queue-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->conf = conf_for(f->dir);
	loop_global_init();
	f->loop = loop_new();
	assert_int_equal(pthread_create(&f->loop_thread, NULL, loop_main, f->loop), 0);
	f->q = queue_open(f->conf, err, sizeof(err));
	if (f->q == NULL)
		fail_msg("%s", err);
	memset(answers.results, 0xff, sizeof(answers.results));
	answers.n = 0;
	*state = f;
	return 0;
}

/* Posts a loop_stop through the mailbox: it runs once loop_run is running. */
static void
stop_fn(void *arg)
{
	loop_stop(arg);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	queue_free(f->q);
	loop_post(f->loop, stop_fn, f->loop);
	pthread_join(f->loop_thread, NULL);
	loop_free(f->loop);
	conf_free(f->conf);
	assert_int_equal(nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

static void
commit_cb(void *ctx, uint64_t session_id, const char *queue_id, int result)
{
	struct answers *a = ctx;

	pthread_mutex_lock(&a->lock);
	a->results[session_id] = result;
	snprintf(a->ids[session_id], QUEUE_ID_MAX, "%s", queue_id);
	a->n++;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void
wait_answers(unsigned n)
{
	pthread_mutex_lock(&answers.lock);
	while (answers.n < n)
		pthread_cond_wait(&answers.cond, &answers.lock);
	pthread_mutex_unlock(&answers.lock);
}

/* The body of message k: its size varies, one is larger than the buffer. */
static size_t
body_of(unsigned k, char **p_r)
{
	size_t n = k == 5 ? 200000 : 100 + 37 * k;
	char *p = malloc(n);
	size_t hdr;

	hdr = (size_t)snprintf(p, n, "Subject: message %u\r\nFrom: a@x.test\r\n\r\n", k);
	for (size_t i = hdr; i < n; i++)
		p[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char)('a' + (i + k) % 26);
	*p_r = p;
	return n;
}

static void
fill_env(
    struct queue_envelope *env, unsigned k, const char *const *rcpts, char *sender, size_t sendlen)
{
	memset(env, 0, sizeof(*env));
	snprintf(sender, sendlen, "s%u@x.test", k);
	env->sender = sender;
	env->rcpts = rcpts;
	env->nrcpts = 2;
	env->auth_user = k % 2 ? "alice" : NULL;
	env->client_addr = "203.0.113.5";
	env->helo = "client.test";
	env->smtputf8 = k % 3 == 0;
	env->body_8bit = k % 2 == 0;
	env->arrival = 1700000000 + k;
}

static struct queue *thread_q;
static struct loop *thread_loop;

static void *
writer_main(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	static const char *const rcpts[] = {"r1@y.test", "r2@y.test"};

	for (unsigned i = 0; i < PER_THREAD; i++) {
		unsigned k = t * PER_THREAD + i;
		char id[QUEUE_ID_MAX], sender[64], *body;
		size_t n = body_of(k, &body), off = 0;
		struct queue_envelope env;
		struct queue_msg *m = queue_msg_new(thread_q, id);

		assert_non_null(m);
		/* in pieces, as DATA arrives */
		while (off < n) {
			size_t c = n - off < 1000 ? n - off : 1000;

			assert_int_equal(queue_msg_write(m, body + off, c), 0);
			off += c;
		}
		fill_env(&env, k, rcpts, sender, sizeof(sender));
		queue_msg_commit(m, &env, loop_mailbox(thread_loop), k, commit_cb, &answers);
		free(body);
	}
	return NULL;
}

static void
check_file(const char *spool, const char *id, unsigned k)
{
	char path[256], *want, *got;
	size_t n = body_of(k, &want), len;
	struct spool_read_msg m;
	const char *errstr = NULL, *folder;
	int spool_fd = spool_open(spool), fd;

	assert_true(spool_fd >= 0);
	fd = spool_msg_find(spool_fd, id, &folder);
	close(spool_fd);
	assert_true(fd >= 0);
	assert_string_equal(folder, SPOOL_QUEUE);
	if (spool_read_verify(fd, id, &errstr) != 0)
		fail_msg("%s: %s", id, errstr);
	assert_int_equal(spool_read_envelope(fd, &m, &errstr), 0);
	assert_int_equal(m.body_len, n);
	assert_string_equal(m.id, id);
	assert_string_equal(m.env->sender, (snprintf(path, sizeof(path), "s%u@x.test", k), path));
	assert_int_equal(m.env->nrcpts, 2);
	assert_string_equal(m.env->rcpts[0], "r1@y.test");
	assert_string_equal(m.env->rcpts[1], "r2@y.test");
	if (k % 2)
		assert_string_equal(m.env->auth_user, "alice");
	else
		assert_null(m.env->auth_user);
	assert_string_equal(m.env->client_addr, "203.0.113.5");
	assert_string_equal(m.env->helo, "client.test");
	assert_int_equal(m.env->smtputf8, k % 3 == 0);
	assert_int_equal(m.env->body_8bit, k % 2 == 0);
	assert_int_equal(m.env->arrival, 1700000000 + k);
	spool_read_clear(&m);
	close(fd);

	snprintf(path, sizeof(path), "%s/queue/%s", spool, id);
	got = fs_read_file(path, 1 << 20, &len);
	assert_non_null(got);
	assert_memory_equal(got, want, n);
	free(got);
	free(want);
}

static void
test_commit_from_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t th[NTHREADS];
	struct queue_stats st;
	char **ids;
	size_t nids;
	int spool_fd;

	thread_q = f->q;
	thread_loop = f->loop;
	for (unsigned t = 0; t < NTHREADS; t++)
		assert_int_equal(
		    pthread_create(&th[t], NULL, writer_main, (void *)(uintptr_t)t), 0);
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	wait_answers(NTHREADS * PER_THREAD);
	for (unsigned k = 0; k < NTHREADS * PER_THREAD; k++) {
		assert_int_equal(answers.results[k], 0);
		check_file(f->dir, answers.ids[k], k);
	}
	spool_fd = spool_open(f->dir);
	assert_true(spool_fd >= 0);
	assert_int_equal(spool_list(spool_fd, SPOOL_QUEUE, &ids, &nids), 0);
	assert_int_equal(nids, NTHREADS * PER_THREAD);
	spool_list_free(ids, nids);
	assert_int_equal(spool_list(spool_fd, SPOOL_INCOMING, &ids, &nids), 0);
	assert_int_equal(nids, 0);
	close(spool_fd);
	queue_get_stats(f->q, &st);
	assert_int_equal(st.commits, NTHREADS * PER_THREAD);
	assert_true(st.syncs >= 1 && st.syncs <= NTHREADS * PER_THREAD);
}

/* Commits one message with body "hello" and waits for its answer. */
static void
commit_one(struct fixture *f, unsigned k, char id_r[QUEUE_ID_MAX])
{
	static const char *const rcpts[] = {"r1@y.test", "r2@y.test"};
	struct queue_envelope env;
	char sender[64];
	struct queue_msg *m = queue_msg_new(f->q, id_r);
	unsigned before = answers.n;

	assert_non_null(m);
	assert_int_equal(queue_msg_write(m, "Subject: x\r\n\r\nhello\r\n", 21), 0);
	fill_env(&env, k, rcpts, sender, sizeof(sender));
	queue_msg_commit(m, &env, loop_mailbox(f->loop), k, commit_cb, &answers);
	wait_answers(before + 1);
	assert_int_equal(answers.results[k], 0);
}

static void
write_file(const char *path, const char *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, p, n), 0);
	close(fd);
}

static bool
exists(const char *spool, const char *folder, const char *id)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/%s", spool, folder, id);
	return access(path, F_OK) == 0;
}

static void
test_recovery(void **state)
{
	struct fixture *f = *state;
	char good[QUEUE_ID_MAX], held[QUEUE_ID_MAX], trunc[QUEUE_ID_MAX], flipped[QUEUE_ID_MAX],
	    zeros[QUEUE_ID_MAX], wrongname[QUEUE_ID_MAX], partial[QUEUE_ID_MAX], path[256],
	    err[256];
	char *whole, *z;
	size_t len;

	commit_one(f, 0, good);
	commit_one(f, 1, held);
	queue_free(f->q);
	f->q = NULL;
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, held);
	whole = fs_read_file(path, 1 << 20, &len);
	assert_non_null(whole);
	{
		char to[256];

		snprintf(to, sizeof(to), "%s/hold/%s", f->dir, held);
		assert_int_equal(rename(path, to), 0);
	}

	/* a crash between rename and sync: every prefix of a whole file */
	queue_id_new(trunc);
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, trunc);
	write_file(path, whole, len - 1);
	/* a flipped body byte */
	queue_id_new(flipped);
	whole[3] ^= 1;
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, flipped);
	write_file(path, whole, len);
	whole[3] ^= 1;
	/* right size, data never written (zeros) */
	queue_id_new(zeros);
	z = calloc(1, len);
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, zeros);
	write_file(path, z, len);
	free(z);
	/* a whole file under another name: the envelope id must match */
	queue_id_new(wrongname);
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, wrongname);
	write_file(path, whole, len);
	/* a message being received */
	queue_id_new(partial);
	snprintf(path, sizeof(path), "%s/incoming/%s", f->dir, partial);
	write_file(path, whole, 10);

	f->q = queue_open(f->conf, err, sizeof(err));
	if (f->q == NULL)
		fail_msg("%s", err);
	assert_true(exists(f->dir, SPOOL_QUEUE, good));
	assert_true(exists(f->dir, SPOOL_HOLD, held));
	assert_false(exists(f->dir, SPOOL_INCOMING, partial));
	assert_false(exists(f->dir, SPOOL_QUEUE, trunc));
	assert_true(exists(f->dir, SPOOL_CORRUPT, trunc));
	assert_false(exists(f->dir, SPOOL_QUEUE, flipped));
	assert_true(exists(f->dir, SPOOL_CORRUPT, flipped));
	assert_true(exists(f->dir, SPOOL_CORRUPT, zeros));
	assert_true(exists(f->dir, SPOOL_CORRUPT, wrongname));
	free(whole);

	/* every truncation of a whole file is rejected */
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, good);
	whole = fs_read_file(path, 1 << 20, &len);
	for (size_t cut = 0; cut < len; cut++) {
		char tmp[256];
		const char *errstr;
		int fd;

		snprintf(tmp, sizeof(tmp), "%s/t", f->dir);
		write_file(tmp, whole, cut);
		fd = open(tmp, O_RDONLY);
		assert_int_equal(spool_read_verify(fd, good, &errstr), -1);
		close(fd);
		unlink(tmp);
	}
	free(whole);
}

static void
test_second_open_is_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_null(queue_open(f->conf, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));
}

static void
test_rollback_and_abort(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], id2[QUEUE_ID_MAX];
	struct queue_msg *m;

	commit_one(f, 0, id);
	assert_true(exists(f->dir, SPOOL_QUEUE, id));
	queue_rollback(f->q, id);
	assert_false(exists(f->dir, SPOOL_QUEUE, id));
	queue_rollback(f->q, id); /* twice: harmless */
	queue_rollback(f->q, "../lock"); /* not an id: ignored */
	assert_true(exists(f->dir, "", SPOOL_LOCK));

	m = queue_msg_new(f->q, id2);
	assert_non_null(m);
	assert_true(exists(f->dir, SPOOL_INCOMING, id2));
	assert_int_equal(queue_msg_write(m, "x", 1), 0);
	queue_msg_abort(m);
	assert_false(exists(f->dir, SPOOL_INCOMING, id2));
}

static void
test_envelope_escaping(void **state)
{
	static const char *const rcpts[] = {"a@b\r\nrcpt: injected@evil", "%41@x\n"};
	struct queue_envelope env = {
	    .sender = "s\r\nauth-user: mallory",
	    .rcpts = rcpts,
	    .nrcpts = 2,
	    .auth_user = NULL,
	    .client_addr = "1.2.3.4\rhelo: x",
	    .helo = "evil\r\nsmtputf8: yes\n\x7f\x01",
	    .smtputf8 = false,
	    .arrival = 42,
	};
	struct envelope *e;
	const char *errstr = NULL;
	struct buf b;
	size_t lines = 0;

	buf_init(&b, 4096);
	assert_int_equal(envelope_encode("0123456789abcdefgh", &env, &b), 0);
	for (size_t i = 0; i < b.len; i++) {
		lines += b.data[i] == '\n';
		assert_true(b.data[i] != '\r' && b.data[i] != '\0');
	}
	/* version id arrival sender rcpt rcpt client-addr helo smtputf8 body */
	assert_int_equal(lines, 10);
	e = envelope_parse(b.data, b.len, &errstr);
	if (e == NULL)
		fail_msg("%s", errstr);
	assert_string_equal(e->sender, env.sender);
	assert_int_equal(e->nrcpts, 2);
	assert_string_equal(e->rcpts[0], rcpts[0]);
	assert_string_equal(e->rcpts[1], rcpts[1]);
	assert_null(e->auth_user);
	assert_string_equal(e->client_addr, env.client_addr);
	assert_string_equal(e->helo, env.helo);
	assert_false(e->smtputf8);
	assert_int_equal(e->nextra, 0);
	envelope_free(e);
	buf_free(&b);
}

static void
test_envelope_rejects(void **state)
{
	static const char head[] = "smtpgate-envelope: 1\nid: 0123456789abcdefgh\narrival: 1\n";
	static const char *const bad[] = {
	    "sender: a\rb\nrcpt: x\n", /* raw CR */
	    "sender: a\nrcpt: x%0\n", /* short escape */
	    "sender: a\nrcpt: x%zz\n", /* bad escape */
	    "sender: a\nrcpt: x%00\n", /* NUL */
	    "sender: a\nrcpt: x", /* no final LF */
	    "sender: a\nsender: b\nrcpt: x\n", /* duplicate */
	    "sender: a\n", /* no recipient */
	    "rcpt: x\n", /* no sender */
	    "sender: a\nrcpt: x\nSender: b\n", /* key case */
	    "sender: a\nrcpt: x\nfoo:bar\n", /* no SP */
	    "sender: a\nrcpt: x\nsmtputf8: maybe\n",
	    "sender: a\nrcpt: x\nsmtpgate-envelope: 1\n",
	};
	char text[512];
	struct envelope *e;
	const char *errstr;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(text, sizeof(text), "%s%s", head, bad[i]);

		errstr = NULL;
		e = envelope_parse(text, (size_t)n, &errstr);
		if (e != NULL)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(errstr);
	}
	/* other versions, and unknown keys kept for later versions' readers */
	e = envelope_parse("smtpgate-envelope: 2\n", 21, &errstr);
	assert_null(e);
	snprintf(text, sizeof(text), "%ssender: \nrcpt: x\nattempts: 3\n", head);
	e = envelope_parse(text, strlen(text), &errstr);
	assert_non_null(e);
	assert_string_equal(e->sender, "");
	assert_int_equal(e->nextra, 1);
	assert_string_equal(e->extra[0].key, "attempts");
	assert_string_equal(e->extra[0].value, "3");
	envelope_free(e);
	/* byte at a time: every strict prefix that is not whole lines fails */
	for (size_t cut = 0; cut < strlen(text); cut++) {
		e = envelope_parse(text, cut, &errstr);
		envelope_free(e);
	}
}

static void
test_trailer(void **state)
{
	unsigned char hash[ENVELOPE_HASH_LEN], got[ENVELOPE_HASH_LEN];
	char t[ENVELOPE_TRAILER_LEN];
	uint64_t b, e;

	for (size_t i = 0; i < sizeof(hash); i++)
		hash[i] = (unsigned char)(i * 7);
	envelope_trailer_prefix(0x123456789, 0xabc, t);
	envelope_trailer_suffix(hash, t + ENVELOPE_TRAILER_PREFIX_LEN);
	assert_memory_equal(t, "%%smtpgate 1 body=0000000123456789 env=00000abc sha256=", 55);
	assert_int_equal(envelope_trailer_parse(t, &b, &e, got), 0);
	assert_int_equal(b, 0x123456789);
	assert_int_equal(e, 0xabc);
	assert_memory_equal(got, hash, sizeof(hash));
	t[20] = 'G';
	assert_int_equal(envelope_trailer_parse(t, &b, &e, got), -1);
}

#define ID_THREADS 4
#define ID_EACH 5000

static char id_pool[ID_THREADS * ID_EACH][QUEUE_ID_MAX];

static void *
id_main(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg;

	for (size_t i = 0; i < ID_EACH; i++)
		queue_id_new(id_pool[t * ID_EACH + i]);
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_ids(void **state)
{
	pthread_t th[ID_THREADS];
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX];

	for (size_t t = 0; t < ID_THREADS; t++)
		pthread_create(&th[t], NULL, id_main, (void *)(uintptr_t)t);
	for (size_t t = 0; t < ID_THREADS; t++)
		pthread_join(th[t], NULL);
	qsort(id_pool, ID_THREADS * ID_EACH, QUEUE_ID_MAX, cmp_id);
	for (size_t i = 0; i < ID_THREADS * ID_EACH; i++) {
		assert_true(queue_id_is_valid(id_pool[i]));
		if (i > 0)
			assert_true(strcmp(id_pool[i - 1], id_pool[i]) < 0);
	}
	/* sortable by time */
	queue_id_new(a);
	usleep(2000);
	queue_id_new(b);
	assert_true(strcmp(a, b) < 0);
	assert_false(queue_id_is_valid("../../etc/passwd"));
	assert_false(queue_id_is_valid("0123456789ABCDEFGH"));
	assert_false(queue_id_is_valid("0123456789abcdefg"));
	assert_false(queue_id_is_valid(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_commit_from_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_open_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_and_abort, setup, teardown),
	    cmocka_unit_test(test_envelope_escaping),
	    cmocka_unit_test(test_envelope_rejects),
	    cmocka_unit_test(test_trailer),
	    cmocka_unit_test(test_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
