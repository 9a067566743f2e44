/*
 * qfile: open/lock/read/rewrite/remove of one queued message (qfile.h).
 *
 * Locking is spool.h's (spool_msg_open_locked): flock(LOCK_EX) on the
 * open file, then a check that queue/ID still is that file. A rewrite's new
 * file is locked before it is renamed over queue/ID, so there is never a
 * moment where queue/ID is unlocked while the scheduler works on it; a
 * write or a removal first checks that queue/ID is still its file (the CLI
 * may have moved it to hold/ without the lock of a delivery it waited for).
 *
 * rcpt-status value: "INDEX STATE CODE ENH WHEN TEXT" (ENH "-" when none,
 * TEXT to the end of the line); one field per recipient that has a result.
 * warned: seconds since the epoch when the delay-warning DSN was queued;
 * present once one was, so there is never a second one.
 */
#include "queue/qfile.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_read.h"

#define QFILE_TEXT_MAX 400 /* bytes of a reason kept in the envelope */

static const char *const qfile_states[] = {"pending", "deferred", "held", "sent", "failed"};

const char *
qfile_state_name(enum qfile_state s)
{
	return qfile_states[s];
}

bool
qfile_is_final(enum qfile_state s)
{
	return s == QFILE_SENT || s == QFILE_FAILED;
}

void
qfile_set(struct qfile_rcpt *r, enum qfile_state state, int code, const char *enh, long long when,
    const char *text)
{
	r->state = state;
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh != NULL ? enh : "");
	r->when = when;
	free(r->text);
	r->text = xstrndup(text != NULL ? text : "", QFILE_TEXT_MAX);
}

static void
qfile_parse_rcpt_status(const char *v, size_t nrcpts, struct qfile_rcpt *rcpt)
{
	char state[16], enh[16];
	unsigned long idx;
	int code, off = 0;
	long long when;
	enum qfile_state st;

	if (sscanf(v, "%lu %15s %d %15s %lld %n", &idx, state, &code, enh, &when, &off) != 5 ||
	    idx >= nrcpts)
		return;
	for (st = QFILE_PENDING; st <= QFILE_FAILED; st++) {
		if (strcmp(state, qfile_states[st]) == 0)
			break;
	}
	if (st > QFILE_FAILED)
		return;
	qfile_set(
	    &rcpt[idx], st, code, strcmp(enh, "-") == 0 ? "" : enh, when, off > 0 ? v + off : "");
}

/* The field's presence is what counts (never a second warning): a value
 * that is not a time after 1970 reads as 1. */
static long long
qfile_parse_warned(const char *v)
{
	char *end;
	long long t = strtoll(v, &end, 10);

	return end != v && *end == '\0' && t > 0 ? t : 1;
}

void
qfile_parse_state(const struct envelope *e, unsigned *attempts_r, long long *next_try_r,
    long long *warned_r, struct qfile_rcpt *rcpt)
{
	*attempts_r = 0;
	*next_try_r = 0;
	if (warned_r != NULL)
		*warned_r = 0;
	for (size_t i = 0; i < e->nextra; i++) {
		const char *k = e->extra[i].key, *v = e->extra[i].value;

		if (strcmp(k, "attempts") == 0)
			*attempts_r = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(k, "next-try") == 0)
			*next_try_r = strcmp(v, "never") == 0 ? QFILE_NEVER : strtoll(v, NULL, 10);
		else if (strcmp(k, "warned") == 0 && warned_r != NULL)
			*warned_r = qfile_parse_warned(v);
		else if (strcmp(k, "rcpt-status") == 0)
			qfile_parse_rcpt_status(v, e->nrcpts, rcpt);
	}
}

int
qfile_encode(const struct envelope *e, unsigned attempts, long long next_try, long long warned,
    const struct qfile_rcpt *rcpt, struct buf *out)
{
	struct queue_envelope qe = {
	    .sender = e->sender,
	    .rcpts = (const char *const *)e->rcpts,
	    .nrcpts = e->nrcpts,
	    .auth_user = e->auth_user,
	    .client_addr = e->client_addr,
	    .helo = e->helo,
	    .smtputf8 = e->smtputf8,
	    .body_8bit = e->body_8bit,
	    .arrival = e->arrival,
	};
	char v[64];
	struct buf line;
	int r = -1;

	buf_init(&line, QFILE_TEXT_MAX + 128);
	if (envelope_encode(e->id, &qe, out) == -1)
		goto fail;
	/* fields of later versions pass through, in order */
	for (size_t i = 0; i < e->nextra; i++) {
		const char *k = e->extra[i].key;

		if (strcmp(k, "attempts") == 0 || strcmp(k, "next-try") == 0 ||
		    strcmp(k, "warned") == 0 || strcmp(k, "rcpt-status") == 0)
			continue;
		if (envelope_append_field(out, k, e->extra[i].value) == -1)
			goto fail;
	}
	snprintf(v, sizeof(v), "%u", attempts);
	if (envelope_append_field(out, "attempts", v) == -1)
		goto fail;
	if (next_try == QFILE_NEVER)
		snprintf(v, sizeof(v), "never");
	else
		snprintf(v, sizeof(v), "%lld", next_try);
	if (next_try != 0 && envelope_append_field(out, "next-try", v) == -1)
		goto fail;
	snprintf(v, sizeof(v), "%lld", warned);
	if (warned > 0 && envelope_append_field(out, "warned", v) == -1)
		goto fail;
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct qfile_rcpt *s = &rcpt[i];

		if (s->state == QFILE_PENDING)
			continue;
		buf_reset(&line);
		if (buf_printf(&line, "%zu %s %d %s %lld %s", i, qfile_states[s->state], s->code,
		        s->enh[0] != '\0' ? s->enh : "-", s->when,
		        s->text != NULL ? s->text : "") == -1 ||
		    buf_append(&line, "", 1) == -1 ||
		    envelope_append_field(out, "rcpt-status", line.data) == -1)
			goto fail;
	}
	r = 0;
fail:
	buf_free(&line);
	return r;
}

static void
qfile_free(struct qfile *q)
{
	if (q == NULL)
		return;
	if (q->map != NULL && q->map != MAP_FAILED)
		munmap(q->map, q->map_len);
	if (q->fd != -1)
		close(q->fd); /* releases the flock */
	if (q->rcpt != NULL && q->env != NULL) {
		for (size_t i = 0; i < q->env->nrcpts; i++)
			free(q->rcpt[i].text);
	}
	free(q->rcpt);
	envelope_free(q->env);
	free(q);
}

void
qfile_close(struct qfile *q)
{
	qfile_free(q);
}

int
qfile_open(int spool_fd, const char *id, struct qfile **q_r, const char **errstr_r)
{
	struct qfile *q = xcalloc(1, sizeof(*q));
	struct spool_read_msg m;
	int saved;

	memset(&m, 0, sizeof(m));
	q->fd = -1;
	*errstr_r = NULL;
	if (!queue_id_is_valid(id)) {
		errno = ENOENT;
		goto fail;
	}
	snprintf(q->id, sizeof(q->id), "%s", id);
	/* no wait: a worker does not sit on a message the CLI works on */
	q->fd = spool_msg_open_locked(spool_fd, SPOOL_QUEUE, id, 0);
	if (q->fd == -1)
		goto fail;
	if (spool_read_envelope(q->fd, &m, errstr_r) == -1) {
		errno = EBADMSG;
		goto fail;
	}
	q->env = m.env;
	m.env = NULL;
	q->body_len = m.body_len;
	if (q->env->id == NULL || strcmp(q->env->id, id) != 0) {
		*errstr_r = "envelope id is not the file name";
		errno = EBADMSG;
		goto fail;
	}
	q->rcpt = xcalloc(q->env->nrcpts, sizeof(*q->rcpt));
	qfile_parse_state(q->env, &q->attempts, &q->next_try, &q->warned, q->rcpt);
	q->map_len = (size_t)m.file_size;
	q->map = mmap(NULL, q->map_len, PROT_READ, MAP_PRIVATE, q->fd, 0);
	if (q->map == MAP_FAILED) {
		*errstr_r = "cannot map the message";
		goto fail;
	}
	q->body = q->map;
	*q_r = q;
	return 0;
fail:
	saved = errno;
	spool_read_clear(&m);
	qfile_free(q);
	errno = saved;
	return -1;
}

/*
 * Writes body + envelope text + trailer to incoming/name, fsync'd. The fd
 * is returned open, and with locked also flock()ed (a rewrite's new file is
 * locked before it takes the name).
 */
static int
qfile_write_new(int spool_fd, const char *name, const char *body, uint64_t body_len,
    const struct buf *env, bool locked)
{
	unsigned char hash[ENVELOPE_HASH_LEN];
	char prefix[ENVELOPE_TRAILER_PREFIX_LEN];
	char suffix[ENVELOPE_TRAILER_LEN - ENVELOPE_TRAILER_PREFIX_LEN];
	unsigned int hlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd, saved;

	fd = spool_msg_create(spool_fd, SPOOL_INCOMING, name, locked);
	if (fd == -1 || md == NULL)
		goto fail;
	envelope_trailer_prefix(body_len, env->len, prefix);
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, body, body_len) != 1 ||
	    EVP_DigestUpdate(md, env->data, env->len) != 1 ||
	    EVP_DigestUpdate(md, prefix, sizeof(prefix)) != 1 ||
	    EVP_DigestFinal_ex(md, hash, &hlen) != 1 || hlen != ENVELOPE_HASH_LEN)
		abort();
	envelope_trailer_suffix(hash, suffix);
	if (fs_write_all(fd, body, body_len) == -1 || fs_write_all(fd, env->data, env->len) == -1 ||
	    fs_write_all(fd, prefix, sizeof(prefix)) == -1 ||
	    fs_write_all(fd, suffix, sizeof(suffix)) == -1 || fsync(fd) == -1)
		goto fail;
	EVP_MD_CTX_free(md);
	return fd;
fail:
	saved = errno;
	EVP_MD_CTX_free(md);
	if (fd != -1) {
		close(fd);
		(void)spool_msg_unlink(spool_fd, SPOOL_INCOMING, name);
	}
	errno = saved;
	return -1;
}

int
qfile_save(struct qfile *q, int spool_fd)
{
	char name[QUEUE_ID_MAX + 8];
	struct buf env;
	int fd = -1, saved;

	buf_init(&env, ENVELOPE_MAX);
	if (qfile_encode(q->env, q->attempts, q->next_try, q->warned, q->rcpt, &env) == -1) {
		errno = EMSGSIZE;
		goto fail;
	}
	snprintf(name, sizeof(name), "%s.new", q->id);
	/* locked before it takes the name: no unlocked moment for queue/ID */
	fd = qfile_write_new(spool_fd, name, q->body, q->body_len, &env, true);
	if (fd == -1)
		goto fail;
	if (!spool_msg_is_current(spool_fd, SPOOL_QUEUE, q->id, q->fd)) {
		/* moved away meanwhile (e.g. to hold/): never bring it back */
		(void)spool_msg_unlink(spool_fd, SPOOL_INCOMING, name);
		errno = ENOENT;
		goto fail;
	}
	if (spool_msg_rename(spool_fd, SPOOL_INCOMING, name, SPOOL_QUEUE, q->id) == -1) {
		saved = errno;
		(void)spool_msg_unlink(spool_fd, SPOOL_INCOMING, name);
		errno = saved;
		goto fail;
	}
	if (spool_folder_sync(spool_fd, SPOOL_QUEUE) == -1)
		goto fail;
	/* the new file replaces the old one: map and lock move to it */
	if (q->map != NULL && q->map != MAP_FAILED)
		munmap(q->map, q->map_len);
	close(q->fd);
	q->fd = fd;
	q->map_len = (size_t)(q->body_len + env.len + ENVELOPE_TRAILER_LEN);
	q->map = mmap(NULL, q->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	q->body = q->map != MAP_FAILED ? q->map : NULL;
	buf_free(&env);
	return q->body != NULL ? 0 : -1;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	buf_free(&env);
	errno = saved;
	return -1;
}

int
qfile_remove(struct qfile *q, int spool_fd)
{
	if (!spool_msg_is_current(spool_fd, SPOOL_QUEUE, q->id, q->fd))
		return 0; /* moved away meanwhile: that copy is someone else's now */
	if (spool_msg_remove(spool_fd, SPOOL_QUEUE, q->id) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	return spool_folder_sync(spool_fd, SPOOL_QUEUE);
}

int
qfile_create(int spool_fd, const char *body, size_t len, const struct queue_envelope *env,
    char id_r[QUEUE_ID_MAX])
{
	struct buf e;
	int fd = -1, saved;

	buf_init(&e, ENVELOPE_MAX);
	queue_id_new(id_r);
	if (envelope_encode(id_r, env, &e) == -1) {
		errno = EMSGSIZE;
		goto fail;
	}
	fd = qfile_write_new(spool_fd, id_r, body, len, &e, false);
	if (fd == -1)
		goto fail;
	close(fd);
	fd = -1;
	if (spool_msg_rename(spool_fd, SPOOL_INCOMING, id_r, SPOOL_QUEUE, id_r) == -1) {
		saved = errno;
		(void)spool_msg_unlink(spool_fd, SPOOL_INCOMING, id_r);
		errno = saved;
		goto fail;
	}
	if (spool_folder_sync(spool_fd, SPOOL_QUEUE) == -1)
		goto fail;
	buf_free(&e);
	return 0;
fail:
	saved = errno;
	buf_free(&e);
	errno = saved;
	return -1;
}
