/*
 * queue: the spool write path and the group committer (doc/spool.md).
 *
 * A message lives in incoming/ID while it is received (queue_msg_new,
 * queue_msg_write: buffered write(2), no sync). queue_msg_commit appends the
 * envelope and the trailer (lengths + SHA-256 of everything before the
 * digest), flushes to the kernel and hands the message to the committer.
 *
 * The committer is one thread. It takes every pending message as one batch,
 * renames each incoming/ID to queue/ID, then makes the whole batch durable
 * with one syncfs(2) on the spool: file data, inodes and both directories'
 * entries. Only then is each session answered 0 (posted to its mailbox). If
 * the sync fails, every message of the batch is answered -1 and removed:
 * never a 250 for a message that may not be on disk.
 *
 * Invariants:
 * - A file in queue/ that got a 0 answer is whole and durable. A file in
 *   queue/ may also be one whose rename reached the disk before its data
 *   (crash between rename and sync): queue_open() validates every file by
 *   its trailer and checksum and moves invalid ones to corrupt/.
 * - incoming/ only holds messages no one was answered for: queue_open()
 *   empties it.
 * - One server per spool: queue_open() holds an flock on spool/lock, so
 *   recovery never removes another live server's files.
 * Ownership: a queue_msg belongs to its session until queue_msg_commit, then
 *   to the committer, then to the answer posted to the loop, which frees it.
 */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "lib/mailbox.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_read.h"

#define QUEUE_MSG_BUF 65536 /* user-space write buffer per message */
#define QUEUE_NEW_TRIES 8 /* O_EXCL clashes tolerated before giving up */

struct queue_msg {
	struct queue *q;
	int fd;
	char id[QUEUE_ID_MAX];
	EVP_MD_CTX *md;
	char *buf; /* QUEUE_MSG_BUF bytes, allocated at the first write */
	size_t buflen;
	uint64_t body_len;
	bool failed; /* a write failed: only abort is allowed */

	/* set by queue_msg_commit */
	struct mailbox *mb;
	uint64_t session_id;
	queue_commit_cb *cb;
	void *ctx;
	int result;
	bool renamed; /* now queue/ID */
	bool durable; /* data and name synced */
	struct queue_msg *next;
};

struct queue {
	char *spool;
	int spool_fd, incoming_fd, queue_fd, lock_fd;
	EVP_MD *sha256;

	pthread_t committer;
	bool committer_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct queue_msg *head, *tail; /* pending commits, FIFO */
	bool stopping;

	_Atomic uint64_t commits, failures, syncs, batch_max;

	queue_durable_cb *durable_cb; /* the scheduler's hook; NULL: none */
	void *durable_arg;
};

static void
queue_log_error(const char *op, const char *id, uint64_t session, int err)
{
	log_event(LOG_ERR, "spool_error", session, "{s:s, s:s, s:i, s:s}", "op", op, "queue_id",
	    id != NULL ? id : "", "errno", err, "error", strerror(err));
}

static void
queue_msg_free(struct queue_msg *m)
{
	if (m == NULL)
		return;
	if (m->fd != -1)
		close(m->fd);
	EVP_MD_CTX_free(m->md);
	free(m->buf);
	free(m);
}

struct queue_msg *
queue_msg_new(struct queue *q, char id_r[QUEUE_ID_MAX])
{
	struct queue_msg *m = xcalloc(1, sizeof(*m));
	int saved;

	m->q = q;
	m->fd = -1;
	for (int i = 0; i < QUEUE_NEW_TRIES && m->fd == -1; i++) {
		queue_id_new(m->id);
		m->fd =
		    openat(q->incoming_fd, m->id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (m->fd == -1 && errno != EEXIST)
			break;
	}
	if (m->fd == -1) {
		queue_log_error("create", m->id, 0, errno);
		goto fail;
	}
	m->md = EVP_MD_CTX_new();
	if (m->md == NULL || EVP_DigestInit_ex(m->md, q->sha256, NULL) != 1)
		abort();
	memcpy(id_r, m->id, QUEUE_ID_MAX);
	return m;
fail:
	saved = errno;
	queue_msg_free(m);
	errno = saved;
	return NULL;
}

static int
queue_msg_flush(struct queue_msg *m)
{
	if (m->buflen == 0)
		return 0;
	if (fs_write_all(m->fd, m->buf, m->buflen) == -1) {
		queue_log_error("write", m->id, m->session_id, errno);
		m->failed = true;
		return -1;
	}
	m->buflen = 0;
	return 0;
}

/* Appends to the file through the buffer; hashed bytes go into the digest. */
static int
queue_msg_append(struct queue_msg *m, const void *p, size_t n, bool hashed)
{
	if (m->failed) {
		errno = EIO;
		return -1;
	}
	if (hashed)
		EVP_DigestUpdate(m->md, p, n);
	if (m->buf == NULL)
		m->buf = xmalloc(QUEUE_MSG_BUF);
	if (m->buflen + n <= QUEUE_MSG_BUF) {
		memcpy(m->buf + m->buflen, p, n);
		m->buflen += n;
		return 0;
	}
	if (queue_msg_flush(m) == -1)
		return -1;
	if (n >= QUEUE_MSG_BUF) {
		if (fs_write_all(m->fd, p, n) == -1) {
			queue_log_error("write", m->id, m->session_id, errno);
			m->failed = true;
			return -1;
		}
		return 0;
	}
	memcpy(m->buf, p, n);
	m->buflen = n;
	return 0;
}

int
queue_msg_write(struct queue_msg *m, const void *p, size_t n)
{
	if (queue_msg_append(m, p, n, true) == -1)
		return -1;
	m->body_len += n;
	return 0;
}

void
queue_msg_abort(struct queue_msg *m)
{
	if (m == NULL)
		return;
	/* best effort: start-up empties incoming/ anyway */
	if (unlinkat(m->q->incoming_fd, m->id, 0) == -1)
		queue_log_error("unlink", m->id, m->session_id, errno);
	queue_msg_free(m);
}

/* Runs on the session's loop: the answer, then the message is freed. */
static void
queue_answer_fn(void *arg)
{
	struct queue_msg *m = arg;

	m->cb(m->ctx, m->session_id, m->id, m->result);
	queue_msg_free(m);
}

/* Posts the answer for m; m is then owned by the posted call. */
static void
queue_answer(struct queue_msg *m, int result)
{
	struct queue *q = m->q;

	m->result = result;
	if (result == 0)
		atomic_fetch_add(&q->commits, 1);
	else
		atomic_fetch_add(&q->failures, 1);
	/* the fd is not needed any more; do not hold it until the loop runs */
	if (m->fd != -1) {
		close(m->fd);
		m->fd = -1;
	}
	EVP_MD_CTX_free(m->md);
	m->md = NULL;
	free(m->buf);
	m->buf = NULL;
	mailbox_post(m->mb, queue_answer_fn, m);
}

/* Writes the envelope and the trailer after the body and flushes. */
static int
queue_msg_finish(struct queue_msg *m, const struct queue_envelope *env)
{
	unsigned char hash[ENVELOPE_HASH_LEN];
	char prefix[ENVELOPE_TRAILER_PREFIX_LEN];
	char suffix[ENVELOPE_TRAILER_LEN - ENVELOPE_TRAILER_PREFIX_LEN];
	unsigned int hlen = 0;
	struct buf e;
	int r = -1;

	buf_init(&e, ENVELOPE_MAX);
	if (envelope_encode(m->id, env, &e) == -1) {
		errno = EMSGSIZE;
		queue_log_error("envelope", m->id, m->session_id, errno);
		goto fail;
	}
	envelope_trailer_prefix(m->body_len, e.len, prefix);
	if (queue_msg_append(m, e.data, e.len, true) == -1 ||
	    queue_msg_append(m, prefix, sizeof(prefix), true) == -1)
		goto fail;
	if (EVP_DigestFinal_ex(m->md, hash, &hlen) != 1 || hlen != ENVELOPE_HASH_LEN)
		abort();
	envelope_trailer_suffix(hash, suffix);
	if (queue_msg_append(m, suffix, sizeof(suffix), false) == -1 || queue_msg_flush(m) == -1)
		goto fail;
	r = 0;
fail:
	buf_free(&e);
	return r;
}

void
queue_msg_commit(struct queue_msg *m, const struct queue_envelope *env, struct mailbox *mb,
    uint64_t session_id, queue_commit_cb *cb, void *ctx)
{
	struct queue *q = m->q;

	m->mb = mb;
	m->session_id = session_id;
	m->cb = cb;
	m->ctx = ctx;
	if (m->failed || queue_msg_finish(m, env) == -1) {
		(void)unlinkat(q->incoming_fd, m->id, 0);
		queue_answer(m, -1);
		return;
	}
	pthread_mutex_lock(&q->lock);
	m->next = NULL;
	if (q->tail != NULL)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/*
 * One sync for the whole batch: syncfs(2) writes back and commits the data,
 * inodes and directory entries of incoming/ and queue/ (the spool is one
 * file system) with one journal commit and one cache flush, and reports
 * write-back errors seen since the last call on this fd (Linux >= 5.8).
 * The alternative, fdatasync per file + fsync of queue/, costs one cache
 * flush per message (measured: 1.15 flushes per commit against 0.17) and
 * was slower in every paired run of bench/spool_bench.c (doc/spool.md).
 */
static void
queue_sync_batch(struct queue *q, struct queue_msg *batch)
{
	struct queue_msg *m;
	bool ok = syncfs(q->spool_fd) == 0;

	if (!ok)
		queue_log_error("syncfs", NULL, 0, errno);
	for (m = batch; m != NULL; m = m->next)
		m->durable = m->renamed && ok;
}

/* Makes one batch durable and answers it (committer thread). */
static void
queue_commit_batch(struct queue *q, struct queue_msg *batch)
{
	struct queue_msg *m, *next;
	uint64_t n = 0, max;

	for (m = batch; m != NULL; m = m->next) {
		n++;
		if (renameat(q->incoming_fd, m->id, q->queue_fd, m->id) == 0) {
			m->renamed = true;
			continue;
		}
		queue_log_error("rename", m->id, m->session_id, errno);
		(void)unlinkat(q->incoming_fd, m->id, 0);
	}
	queue_sync_batch(q, batch);
	atomic_fetch_add(&q->syncs, 1);
	max = atomic_load(&q->batch_max);
	while (n > max && !atomic_compare_exchange_weak(&q->batch_max, &max, n))
		;
	for (m = batch; m != NULL; m = next) {
		next = m->next;
		if (m->renamed && !m->durable) {
			/* not known to be durable: no 250; the client retries */
			if (unlinkat(q->queue_fd, m->id, 0) == -1)
				queue_log_error("unlink", m->id, m->session_id, errno);
		}
		if (m->durable && q->durable_cb != NULL)
			q->durable_cb(q->durable_arg, m->id);
		queue_answer(m, m->durable ? 0 : -1);
	}
}

void
queue_set_durable_hook(struct queue *q, queue_durable_cb *cb, void *arg)
{
	q->durable_cb = cb;
	q->durable_arg = arg;
}

static void *
queue_committer_main(void *arg)
{
	struct queue *q = arg;
	struct queue_msg *batch;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		batch = q->head;
		q->head = q->tail = NULL;
		pthread_mutex_unlock(&q->lock);
		if (batch == NULL)
			break; /* stopping and nothing left */
		queue_commit_batch(q, batch);
	}
	return NULL;
}

void
queue_rollback(struct queue *q, const char *queue_id)
{
	if (!queue_id_is_valid(queue_id))
		return;
	/* durable with the next batch's sync, or at queue_free */
	if (unlinkat(q->queue_fd, queue_id, 0) == -1 && errno != ENOENT)
		queue_log_error("unlink", queue_id, 0, errno);
}

void
queue_get_stats(struct queue *q, struct queue_stats *r)
{
	r->commits = atomic_load(&q->commits);
	r->failures = atomic_load(&q->failures);
	r->syncs = atomic_load(&q->syncs);
	r->batch_max = atomic_load(&q->batch_max);
}

/* Removes every entry of incoming/: none was ever acknowledged. */
static int
queue_clean_incoming(struct queue *q, unsigned *removed_r)
{
	int fd = dup(q->incoming_fd);
	DIR *d;
	struct dirent *de;

	if (fd == -1)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(q->incoming_fd, de->d_name, 0) == 0)
			(*removed_r)++;
		else
			queue_log_error("unlink", de->d_name, 0, errno);
	}
	closedir(d);
	return 0;
}

/* Validates every message file of folder; invalid ones go to corrupt/. */
static int
queue_check_folder(struct queue *q, const char *folder, unsigned *ok_r, unsigned *corrupt_r)
{
	char **ids = NULL;
	size_t n = 0;

	if (spool_list(q->spool_fd, folder, &ids, &n) == -1)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const char *errstr = "cannot open";
		int fd = spool_msg_open(q->spool_fd, folder, ids[i]);
		int r = fd == -1 ? -1 : spool_read_verify(fd, ids[i], &errstr);

		if (fd != -1)
			close(fd);
		if (r == 0) {
			(*ok_r)++;
			continue;
		}
		log_event(LOG_WARNING, "queue_corrupt", 0, "{s:s, s:s, s:s}", "queue_id", ids[i],
		    "folder", folder, "reason", errstr);
		if (spool_msg_rename(q->spool_fd, folder, ids[i], SPOOL_CORRUPT, ids[i]) == -1) {
			queue_log_error("rename", ids[i], 0, errno);
			goto fail;
		}
		(*corrupt_r)++;
	}
	spool_list_free(ids, n);
	return 0;
fail : {
	int saved = errno;

	spool_list_free(ids, n);
	errno = saved;
	return -1;
}
}

/* The folders, each created (0700) when missing. */
static int
queue_open_folders(struct queue *q)
{
	static const char *const others[] = {SPOOL_HOLD, SPOOL_CORRUPT};

	q->incoming_fd = spool_folder_open(q->spool_fd, SPOOL_INCOMING, true);
	if (q->incoming_fd == -1)
		return -1;
	q->queue_fd = spool_folder_open(q->spool_fd, SPOOL_QUEUE, true);
	if (q->queue_fd == -1)
		return -1;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		int fd = spool_folder_open(q->spool_fd, others[i], true);

		if (fd == -1)
			return -1;
		close(fd);
	}
	return 0;
}

struct queue *
queue_open(const struct conf *c, char *err, size_t errlen)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	unsigned removed = 0, ok = 0, corrupt = 0;
	const char *what = "";

	q->spool_fd = q->incoming_fd = q->queue_fd = q->lock_fd = -1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->spool = xstrdup(c->spool);
	q->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (q->sha256 == NULL)
		abort();
	what = "cannot create";
	if (mkdir(q->spool, 0700) == -1 && errno != EEXIST)
		goto fail;
	what = "cannot open";
	q->spool_fd = spool_open(q->spool);
	if (q->spool_fd == -1)
		goto fail;
	q->lock_fd = spool_lock_server(q->spool_fd);
	if (q->lock_fd == -1) {
		what = errno == EWOULDBLOCK ? "in use by another process" : "cannot lock";
		goto fail;
	}
	what = "cannot create a folder in";
	if (queue_open_folders(q) == -1)
		goto fail;
	what = "cannot recover";
	if (queue_clean_incoming(q, &removed) == -1 ||
	    queue_check_folder(q, SPOOL_QUEUE, &ok, &corrupt) == -1 ||
	    queue_check_folder(q, SPOOL_HOLD, &ok, &corrupt) == -1)
		goto fail;
	what = "is not writable";
	if (spool_probe_writable(q->spool_fd, SPOOL_INCOMING) == -1)
		goto fail;
	/* the clean-up is durable before any new message is acknowledged */
	what = "cannot sync";
	if (syncfs(q->spool_fd) == -1)
		goto fail;
	log_event(LOG_INFO, "queue_recover", 0, "{s:s, s:i, s:i, s:i}", "spool", q->spool,
	    "incoming_removed", (int)removed, "corrupt_moved", (int)corrupt, "queued", (int)ok);
	what = "cannot start the committer for";
	if ((errno = pthread_create(&q->committer, NULL, queue_committer_main, q)) != 0)
		goto fail;
	q->committer_started = true;
	return q;
fail:
	snprintf(err, errlen, "spool %s %s: %s", what, c->spool, strerror(errno));
	queue_free(q);
	return NULL;
}

void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->committer_started) {
		pthread_mutex_lock(&q->lock);
		q->stopping = true;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->committer, NULL);
		/* rollbacks since the last batch become durable */
		if (syncfs(q->spool_fd) == -1)
			queue_log_error("syncfs", NULL, 0, errno);
	}
	if (q->incoming_fd != -1)
		close(q->incoming_fd);
	if (q->queue_fd != -1)
		close(q->queue_fd);
	if (q->lock_fd != -1)
		close(q->lock_fd); /* releases the flock */
	if (q->spool_fd != -1)
		close(q->spool_fd);
	EVP_MD_free(q->sha256);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->spool);
	free(q);
}
