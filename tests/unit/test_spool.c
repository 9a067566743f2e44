/*
 * Unit tests for queue/spool: names and listing, finding a message in
 * queue/ or hold/, the lock-wait (free, busy, released while waiting,
 * replaced by a rewrite while waiting, moved away, stale fd), durable move
 * and remove, the server's lock and pid, the writability probe. flock locks
 * belong to an open file description, so a second open() in this process
 * stands in for another process. Every test works in its own mkdtemp()
 * spool and removes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "queue/queue_id.h"
#include "queue/spool.h"

struct fixture {
	char dir[64]; /* the spool */
	int spool_fd;
};

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/sg-spool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->spool_fd = spool_open(f->dir);
	assert_true(f->spool_fd >= 0);
	for (const char *const *d =
	         (const char *const[]){SPOOL_INCOMING, SPOOL_QUEUE, SPOOL_HOLD, NULL};
	     *d != NULL; d++) {
		int fd = spool_folder_open(f->spool_fd, *d, true);

		assert_true(fd >= 0);
		close(fd);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	close(f->spool_fd);
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Writes folder/name with text; returns its inode. */
static ino_t
put(struct fixture *f, const char *folder, const char *name, const char *text)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, folder, name);
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static bool
exists(struct fixture *f, const char *folder, const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, folder, name);
	return lstat(path, &st) == 0;
}

/* Whether fd's file is locked by someone else: a new open cannot lock it. */
static bool
is_locked(struct fixture *f, const char *folder, const char *name)
{
	int fd = spool_msg_open(f->spool_fd, folder, name);
	bool locked;

	assert_true(fd >= 0);
	locked = flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
	close(fd);
	return locked;
}

/*
 * flock as every module of this binary sees it: the system call, after the
 * hook while one is armed. The hook puts a rewrite exactly between a
 * waiter's open and its flock, which no timing can arrange reliably.
 */
struct flock_hook {
	struct fixture *f;
	const char *id;
	unsigned left; /* calls still to hook */
	unsigned calls; /* calls hooked */
	ino_t new_ino; /* the last replacement's inode */
};

static struct flock_hook *flock_hook;

/* What a delivery rewrite does: a new file renamed over queue/ID. */
static void
replace(struct flock_hook *h)
{
	char name[QUEUE_ID_MAX + 8];
	struct stat st;
	int fd;

	snprintf(name, sizeof(name), "%s.new", h->id);
	fd = spool_msg_create(h->f->spool_fd, SPOOL_INCOMING, name, false);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(
	    spool_msg_rename(h->f->spool_fd, SPOOL_INCOMING, name, SPOOL_QUEUE, h->id), 0);
	h->new_ino = st.st_ino;
}

int
flock(int fd, int op)
{
	struct flock_hook *h = flock_hook;

	if (h != NULL && h->left > 0) {
		h->left--;
		h->calls++;
		replace(h);
	}
	return (int)syscall(SYS_flock, fd, op);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_path(void **state)
{
	static const struct {
		const char *spool, *name, *want;
	} cases[] = {
	    {"/var/spool/sg", SPOOL_LOCK, "/var/spool/sg/lock"},
	    {"/var/spool/sg", SPOOL_PID, "/var/spool/sg/pid"},
	    {"spool", SPOOL_MTA_STS, "spool/mta-sts"},
	    {"/s", SPOOL_BANS, "/s/bans.json"},
	    {"/s", SPOOL_QUOTA_LOCKS, "/s/quota-locks"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = spool_path(cases[i].spool, cases[i].name);

		assert_string_equal(p, cases[i].want);
		free(p);
	}
}

/* Only names with the shape of an id are listed, sorted. */
static void
test_list(void **state)
{
	struct fixture *f = *state;
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], name[64], **ids;
	size_t n;

	queue_id_new(a);
	queue_id_new(b);
	put(f, SPOOL_QUEUE, b, "b");
	put(f, SPOOL_QUEUE, a, "a");
	snprintf(name, sizeof(name), "%s.new", a);
	put(f, SPOOL_QUEUE, name, "rewrite");
	put(f, SPOOL_QUEUE, ".probe.1", "x");
	put(f, SPOOL_QUEUE, "README", "x");
	assert_int_equal(spool_list(f->spool_fd, SPOOL_QUEUE, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], a);
	assert_string_equal(ids[1], b);
	spool_list_free(ids, n);
	assert_int_equal(spool_list(f->spool_fd, SPOOL_HOLD, &ids, &n), 0);
	assert_int_equal(n, 0);
	assert_null(ids);
	assert_int_equal(spool_list(f->spool_fd, SPOOL_CORRUPT, &ids, &n), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_find(void **state)
{
	struct fixture *f = *state;
	char queued[QUEUE_ID_MAX], held[QUEUE_ID_MAX], gone[QUEUE_ID_MAX], link[QUEUE_ID_MAX];
	char path[256];
	const struct {
		const char *id;
		const char *folder; /* NULL: not found */
		int err;
	} cases[] = {
	    {queued, SPOOL_QUEUE, 0}, {held, SPOOL_HOLD, 0}, {gone, NULL, ENOENT},
	    {"../lock", NULL, EINVAL}, {"", NULL, EINVAL},
	    {link, NULL, ELOOP}, /* a symbolic link is never followed */
	};

	queue_id_new(queued);
	queue_id_new(held);
	queue_id_new(gone);
	queue_id_new(link);
	put(f, SPOOL_QUEUE, queued, "q");
	put(f, SPOOL_HOLD, held, "h");
	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, SPOOL_QUEUE, link);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *folder = NULL;
		int fd = spool_msg_find(f->spool_fd, cases[i].id, &folder);

		if (cases[i].folder != NULL) {
			assert_true(fd >= 0);
			assert_string_equal(folder, cases[i].folder);
			close(fd);
		} else {
			assert_int_equal(fd, -1);
			assert_int_equal(errno, cases[i].err);
		}
	}
}

/* --- the lock-wait ---------------------------------------------------------- */

/* What a helper thread does to queue/ID while the test waits for its lock. */
enum holder_act {
	HOLDER_RELEASE, /* lets go of its lock */
	HOLDER_REPLACE, /* renames a new locked file over it (a rewrite), lets go of both */
	HOLDER_MOVE, /* moves it to hold/ (smtpgate queue hold), lets go */
	HOLDER_NOTHING, /* keeps it locked until joined */
};

struct holder {
	struct fixture *f;
	const char *id;
	enum holder_act act;
	int fd; /* the lock it holds */
	ino_t new_ino; /* HOLDER_REPLACE: the new file's inode */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
};

static void *
holder_main(void *arg)
{
	struct holder *h = arg;
	char name[QUEUE_ID_MAX + 8];
	struct stat st;
	int nfd;

	usleep(250 * 1000); /* the waiter is sleeping on the busy lock by now */
	switch (h->act) {
	case HOLDER_RELEASE:
		close(h->fd);
		break;
	case HOLDER_REPLACE:
		snprintf(name, sizeof(name), "%s.new", h->id);
		nfd = spool_msg_create(h->f->spool_fd, SPOOL_INCOMING, name, true);
		assert_true(nfd >= 0);
		assert_int_equal(fstat(nfd, &st), 0);
		h->new_ino = st.st_ino;
		assert_int_equal(
		    spool_msg_rename(h->f->spool_fd, SPOOL_INCOMING, name, SPOOL_QUEUE, h->id), 0);
		close(h->fd); /* the old file's lock: the waiter finds it stale */
		usleep(250 * 1000);
		close(nfd);
		break;
	case HOLDER_MOVE:
		assert_int_equal(spool_msg_move(h->f->spool_fd, h->id, SPOOL_QUEUE, SPOOL_HOLD), 0);
		close(h->fd);
		break;
	case HOLDER_NOTHING:
		pthread_mutex_lock(&h->mu);
		while (!h->stop)
			pthread_cond_wait(&h->cond, &h->mu);
		pthread_mutex_unlock(&h->mu);
		close(h->fd);
		break;
	}
	return NULL;
}

static void
test_lock_wait(void **state)
{
	static const struct {
		const char *name;
		bool busy; /* a holder has the lock when the wait starts */
		enum holder_act act;
		unsigned wait_ms;
		int err; /* 0: locked */
		bool new_file; /* the fd is the rewrite's new file */
		long long min_ms, max_ms; /* how long the wait took */
	} cases[] = {
	    {"free", false, HOLDER_NOTHING, 0, 0, false, 0, 100},
	    {"busy, no wait", true, HOLDER_NOTHING, 0, EBUSY, false, 0, 100},
	    {"busy past the wait", true, HOLDER_NOTHING, 300, EBUSY, false, 290, 1500},
	    {"released while waiting", true, HOLDER_RELEASE, 5000, 0, false, 200, 2500},
	    {"replaced while waiting", true, HOLDER_REPLACE, 5000, 0, true, 400, 3000},
	    {"moved away while waiting", true, HOLDER_MOVE, 5000, ENOENT, false, 200, 2500},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct holder h = {.f = f, .act = cases[i].act, .fd = -1};
		char id[QUEUE_ID_MAX];
		ino_t old_ino;
		pthread_t th;
		long long t0, took;
		int fd, err;
		struct stat st;

		print_message("lock-wait: %s\n", cases[i].name);
		queue_id_new(id);
		h.id = id;
		pthread_mutex_init(&h.mu, NULL);
		pthread_cond_init(&h.cond, NULL);
		old_ino = put(f, SPOOL_QUEUE, id, "message");
		if (cases[i].busy) {
			h.fd = spool_msg_open_locked(f->spool_fd, SPOOL_QUEUE, id, 0);
			assert_true(h.fd >= 0);
			assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
		}
		t0 = now_ms();
		fd = spool_msg_open_locked(f->spool_fd, SPOOL_QUEUE, id, cases[i].wait_ms);
		err = errno;
		took = now_ms() - t0;
		if (cases[i].busy) {
			pthread_mutex_lock(&h.mu);
			h.stop = true;
			pthread_cond_signal(&h.cond);
			pthread_mutex_unlock(&h.mu);
			pthread_join(th, NULL);
		}
		if (cases[i].err != 0) {
			assert_int_equal(fd, -1);
			assert_int_equal(err, cases[i].err);
		} else {
			assert_true(fd >= 0);
			assert_true(spool_msg_is_current(f->spool_fd, SPOOL_QUEUE, id, fd));
			assert_true(is_locked(f, SPOOL_QUEUE, id));
			assert_int_equal(fstat(fd, &st), 0);
			assert_int_equal(st.st_ino, cases[i].new_file ? h.new_ino : old_ino);
			close(fd);
			assert_false(is_locked(f, SPOOL_QUEUE, id));
		}
		if (took < cases[i].min_ms || took > cases[i].max_ms)
			fail_msg("%s: took %lld ms, want %lld-%lld", cases[i].name, took,
			    cases[i].min_ms, cases[i].max_ms);
		pthread_mutex_destroy(&h.mu);
		pthread_cond_destroy(&h.cond);
	}
}

/* A rewrite between the open and the flock: the file locked is not
 * queue/ID any more; the wait lets it go and locks the new one. */
static void
test_lock_replaced(void **state)
{
	static const struct {
		unsigned replacements; /* rewrites, one before each flock */
		unsigned wait_ms;
		int err; /* 0: the last replacement is locked */
		unsigned calls; /* flock calls that saw a rewrite */
		long long min_ms, max_ms;
	} cases[] = {
	    {1, 0, 0, 1, 0, 100},
	    {SPOOL_LOCK_REPLACED_MAX, 0, 0, SPOOL_LOCK_REPLACED_MAX, 0, 100},
	    /* rewritten time and again: busy, as a locked file */
	    {1000, 0, EBUSY, SPOOL_LOCK_REPLACED_MAX + 1, 0, 100},
	    {1000, 250, EBUSY, 4 * (SPOOL_LOCK_REPLACED_MAX + 1), 250, 1500},
	    {SPOOL_LOCK_REPLACED_MAX + 2, 250, 0, SPOOL_LOCK_REPLACED_MAX + 2, 90, 1500},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flock_hook h = {.f = f, .left = cases[i].replacements};
		char id[QUEUE_ID_MAX];
		struct stat st;
		long long t0, took;
		int fd, err;

		queue_id_new(id);
		h.id = id;
		put(f, SPOOL_QUEUE, id, "message");
		flock_hook = &h;
		t0 = now_ms();
		fd = spool_msg_open_locked(f->spool_fd, SPOOL_QUEUE, id, cases[i].wait_ms);
		err = errno;
		took = now_ms() - t0;
		flock_hook = NULL;
		assert_int_equal(h.calls, cases[i].calls);
		if (cases[i].err != 0) {
			assert_int_equal(fd, -1);
			assert_int_equal(err, cases[i].err);
		} else {
			assert_true(fd >= 0);
			assert_int_equal(fstat(fd, &st), 0);
			assert_int_equal(st.st_ino, h.new_ino);
			assert_true(spool_msg_is_current(f->spool_fd, SPOOL_QUEUE, id, fd));
			close(fd);
		}
		if (took < cases[i].min_ms || took > cases[i].max_ms)
			fail_msg("case %zu: took %lld ms, want %lld-%lld", i, took, cases[i].min_ms,
			    cases[i].max_ms);
	}
}

/* The step that tells a replaced file apart, on its own: an fd of a file a
 * rewrite replaced locks, but is stale. */
static void
test_lock_stale_fd(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], name[QUEUE_ID_MAX + 8];
	int old, nfd;

	queue_id_new(id);
	put(f, SPOOL_QUEUE, id, "old");
	old = spool_msg_open(f->spool_fd, SPOOL_QUEUE, id);
	assert_true(old >= 0);
	assert_true(spool_msg_is_current(f->spool_fd, SPOOL_QUEUE, id, old));
	snprintf(name, sizeof(name), "%s.new", id);
	nfd = spool_msg_create(f->spool_fd, SPOOL_INCOMING, name, false);
	assert_true(nfd >= 0);
	assert_int_equal(spool_msg_rename(f->spool_fd, SPOOL_INCOMING, name, SPOOL_QUEUE, id), 0);
	assert_false(spool_msg_is_current(f->spool_fd, SPOOL_QUEUE, id, old));
	assert_true(spool_msg_is_current(f->spool_fd, SPOOL_QUEUE, id, nfd));
	assert_int_equal(spool_msg_lock(f->spool_fd, SPOOL_QUEUE, id, old), -1);
	assert_int_equal(errno, ESTALE);
	assert_int_equal(spool_msg_lock(f->spool_fd, SPOOL_QUEUE, id, nfd), 0);
	close(old);
	/* gone: ENOENT, also for a lock already held */
	assert_int_equal(spool_msg_remove(f->spool_fd, SPOOL_QUEUE, id), 0);
	assert_false(spool_msg_is_current(f->spool_fd, SPOOL_QUEUE, id, nfd));
	assert_int_equal(spool_msg_lock(f->spool_fd, SPOOL_QUEUE, id, nfd), -1);
	assert_int_equal(errno, ENOENT);
	close(nfd);
	assert_int_equal(spool_msg_open_locked(f->spool_fd, SPOOL_QUEUE, id, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_msg_open_locked(f->spool_fd, SPOOL_QUEUE, "x/../../y", 0), -1);
	assert_int_equal(errno, EINVAL);
}

/* A rewrite's new file is locked before it takes the name. */
static void
test_create_locked(void **state)
{
	struct fixture *f = *state;
	static const bool locked[] = {true, false};

	for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]); i++) {
		char id[QUEUE_ID_MAX];
		int fd;

		queue_id_new(id);
		fd = spool_msg_create(f->spool_fd, SPOOL_INCOMING, id, locked[i]);
		assert_true(fd >= 0);
		assert_int_equal(is_locked(f, SPOOL_INCOMING, id), locked[i]);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
		assert_false(is_locked(f, SPOOL_INCOMING, id));
		assert_int_equal(spool_msg_unlink(f->spool_fd, SPOOL_INCOMING, id), 0);
	}
}

static void
test_move_remove(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX];
	ino_t ino;
	struct stat st;

	queue_id_new(id);
	ino = put(f, SPOOL_QUEUE, id, "m");
	assert_int_equal(spool_msg_move(f->spool_fd, id, SPOOL_QUEUE, SPOOL_HOLD), 0);
	assert_false(exists(f, SPOOL_QUEUE, id));
	assert_int_equal(spool_msg_stat(f->spool_fd, SPOOL_HOLD, id, &st), 0);
	assert_int_equal(st.st_ino, ino);
	assert_int_equal(spool_msg_move(f->spool_fd, id, SPOOL_QUEUE, SPOOL_HOLD), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_msg_move(f->spool_fd, id, SPOOL_HOLD, SPOOL_QUEUE), 0);
	assert_true(exists(f, SPOOL_QUEUE, id));
	assert_int_equal(spool_msg_remove(f->spool_fd, SPOOL_QUEUE, id), 0);
	assert_false(exists(f, SPOOL_QUEUE, id));
	assert_int_equal(spool_msg_remove(f->spool_fd, SPOOL_QUEUE, id), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_msg_stat(f->spool_fd, SPOOL_QUEUE, id, &st), -1);
}

/* `smtpgate queue` tells a running server by its lock, then reads its pid. */
static void
test_server_lock_and_pid(void **state)
{
	struct fixture *f = *state;
	int lock, second;

	assert_int_equal(spool_server_pid(f->dir), 0); /* no lock file yet */
	assert_int_equal(spool_pid_write(f->dir), 0);
	assert_int_equal(spool_server_pid(f->dir), 0); /* a pid, but no server */
	lock = spool_lock_server(f->spool_fd);
	assert_true(lock >= 0);
	second = spool_lock_server(f->spool_fd);
	assert_int_equal(second, -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(spool_server_pid(f->dir), getpid());
	spool_pid_remove(f->dir);
	assert_int_equal(spool_server_pid(f->dir), 0); /* locked, no pid */
	assert_false(exists(f, "", SPOOL_PID));
	close(lock);
	lock = spool_lock_server(f->spool_fd);
	assert_true(lock >= 0);
	close(lock);
}

static void
test_probe_writable(void **state)
{
	struct fixture *f = *state;
	char path[256];

	assert_int_equal(spool_probe_writable(f->spool_fd, ""), 0);
	assert_int_equal(spool_probe_writable(f->spool_fd, SPOOL_INCOMING), 0);
	assert_int_equal(spool_probe_writable(f->spool_fd, SPOOL_CORRUPT), -1);
	assert_int_equal(errno, ENOENT);
	/* nothing left behind: the folders are empty, the spool holds them only */
	for (const char *const *d =
	         (const char *const[]){SPOOL_INCOMING, SPOOL_QUEUE, SPOOL_HOLD, NULL};
	     *d != NULL; d++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, *d);
		assert_int_equal(rmdir(path), 0);
	}
	assert_int_equal(rmdir(f->dir), 0);
	assert_int_equal(mkdir(f->dir, 0700), 0); /* for teardown */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path),
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_find, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_stale_fd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_locked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_move_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_lock_and_pid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_writable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
