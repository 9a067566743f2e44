/*
 * auth_sasl: see auth_sasl.h. An exchange waiting for its keys is in the
 * store already (pending): the authdb answers by handle, so an exchange
 * freed meanwhile (its owner gone) simply gets no answer.
 *
 * Threads: lock covers the store and every exchange in it; each entry
 * point takes it, and the answer callbacks run under it (so they must not
 * call back in). The key lookup is asked for after the lock is let go: a
 * lookup the authdb refuses (a full queue) is answered at once, on the
 * asking thread, into auth_sasl_keys_cb, which takes the lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "lib/buf.h"
#include "lib/idmap.h"
#include "lib/xalloc.h"
#include "sasl/sasl.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_mech.h"
#include "server/auth_sasl.h"

struct auth_sasl_x {
	uint64_t handle;
	unsigned owner;
	long long born; /* monotonic seconds */
	struct sasl_exchange *x;
	char client[AUTH_MSG_CLIENT_MAX + 1];
	/* waiting for the authdb: whom to answer */
	bool pending;
	uint64_t token;
	auth_sasl_cb *cb;
	void *ctx;
};

struct auth_sasl {
	pthread_mutex_t lock; /* everything below (see the top) */
	struct authdb *db;
	const struct conf *conf;
	struct idmap xs; /* handle -> struct auth_sasl_x */
};

static long long
auth_sasl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

struct auth_sasl *
auth_sasl_new(struct authdb *db, const struct conf *c)
{
	struct auth_sasl *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->db = db;
	s->conf = c;
	idmap_init(&s->xs);
	return s;
}

static void
auth_sasl_tempfail(uint64_t token, auth_sasl_cb *cb, void *ctx)
{
	struct auth_msg_answer *a = xcalloc(1, sizeof(*a));

	a->result = AUTHDB_TEMPFAIL;
	cb(ctx, token, a);
	free(a);
}

/* Out of the map first: the answer to a pending request (TEMPFAIL: nobody
 * will give it otherwise) may end in its owner's channel closing. */
static void
auth_sasl_x_free(struct auth_sasl *s, struct auth_sasl_x *e)
{
	idmap_del(&s->xs, e->handle);
	if (e->pending)
		auth_sasl_tempfail(e->token, e->cb, e->ctx);
	sasl_free(e->x);
	free(e);
}

/* Frees the exchanges for which drop(e, arg) is true. */
static void
auth_sasl_sweep(
    struct auth_sasl *s, bool (*drop)(const struct auth_sasl_x *, const void *), const void *arg)
{
	struct auth_sasl_x **del = xcalloc(s->xs.count + 1, sizeof(*del));
	size_t n = 0;

	/* collected first: deleting from the map moves its entries */
	for (size_t i = 0; i < s->xs.cap; i++) {
		if (s->xs.keys[i] != 0 && drop(s->xs.vals[i], arg))
			del[n++] = s->xs.vals[i];
	}
	for (size_t i = 0; i < n; i++)
		auth_sasl_x_free(s, del[i]);
	free(del);
}

static bool
auth_sasl_is_any(const struct auth_sasl_x *e, const void *arg)
{
	return true;
}

static bool
auth_sasl_is_owner(const struct auth_sasl_x *e, const void *arg)
{
	return e->owner == *(const unsigned *)arg;
}

static bool
auth_sasl_is_expired(const struct auth_sasl_x *e, const void *arg)
{
	return !e->pending && e->born + AUTH_SASL_TTL_S <= *(const long long *)arg;
}

void
auth_sasl_detach(struct auth_sasl *s)
{
	pthread_mutex_lock(&s->lock);
	s->db = NULL;
	pthread_mutex_unlock(&s->lock);
}

void
auth_sasl_free(struct auth_sasl *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	auth_sasl_sweep(s, auth_sasl_is_any, NULL);
	pthread_mutex_unlock(&s->lock);
	idmap_free(&s->xs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

size_t
auth_sasl_count(struct auth_sasl *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->xs.count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
auth_sasl_drop_owner(struct auth_sasl *s, unsigned owner)
{
	pthread_mutex_lock(&s->lock);
	auth_sasl_sweep(s, auth_sasl_is_owner, &owner);
	pthread_mutex_unlock(&s->lock);
}

void
auth_sasl_end(struct auth_sasl *s, unsigned owner, uint64_t handle)
{
	struct auth_sasl_x *e;

	pthread_mutex_lock(&s->lock);
	e = idmap_get(&s->xs, handle);
	if (e != NULL && e->owner == owner)
		auth_sasl_x_free(s, e);
	pthread_mutex_unlock(&s->lock);
}

/* Answers token with what the step decided; the exchange ends unless it
 * goes on (SASL_CONTINUE). */
static void
auth_sasl_after(struct auth_sasl *s, struct auth_sasl_x *e, enum sasl_status st,
    const struct buf *chal, uint64_t token, auth_sasl_cb *cb, void *ctx)
{
	struct auth_msg_answer *a = xcalloc(1, sizeof(*a));
	const char *label, *created;
	char *senders;

	a->result = AUTHDB_OK;
	a->status = st;
	switch (st) {
	case SASL_CONTINUE:
		if (chal->len > AUTH_MSG_SASL_MAX) {
			a->status = SASL_FAILED;
			snprintf(a->reason, sizeof(a->reason), "challenge too long");
			break;
		}
		a->handle = e->handle;
		memcpy(a->chal, chal->data, chal->len);
		a->challen = chal->len;
		break;
	case SASL_DONE:
		snprintf(a->user, sizeof(a->user), "%s", sasl_user(e->x));
		a->user_known = true;
		if (s->db != NULL && (senders = authdb_user_senders(s->db, a->user)) != NULL) {
			snprintf(a->senders, sizeof(a->senders), "%s", senders);
			free(senders);
		}
		if (s->db != NULL && sasl_matched_cred(e->x, &label, &created))
			authdb_record_use(
			    s->db, a->user, label, created, e->client[0] ? e->client : NULL);
		break;
	case SASL_FAILED:
	case SASL_MALFORMED:
	case SASL_TOO_LONG:
		snprintf(a->reason, sizeof(a->reason), "%s", sasl_errstr(e->x));
		break;
	default:
		/* a mechanism asking for something here cannot be answered */
		a->result = AUTHDB_TEMPFAIL;
		a->status = 0;
		break;
	}
	if (a->result != AUTHDB_OK || a->status != SASL_CONTINUE)
		auth_sasl_x_free(s, e);
	cb(ctx, token, a);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* The stored keys of a pending exchange (session_id: its handle). */
static void
auth_sasl_keys_cb(void *ctx, uint64_t handle, enum authdb_result result, const struct sasl_keys *k,
    const char *user)
{
	struct auth_sasl *s = ctx;
	struct auth_sasl_x *e;
	struct buf chal;

	pthread_mutex_lock(&s->lock);
	e = idmap_get(&s->xs, handle);
	if (e == NULL || !e->pending) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (result != AUTHDB_OK || k == NULL || s->db == NULL) {
		auth_sasl_x_free(s, e); /* answers TEMPFAIL */
		pthread_mutex_unlock(&s->lock);
		return;
	}
	e->pending = false;
	sasl_set_keys(e->x, k, user);
	buf_init(&chal, AUTH_MSG_SASL_MAX + 1);
	buf_set_secret(&chal);
	auth_sasl_after(s, e, sasl_resume(e->x, &chal), &chal, e->token, e->cb, e->ctx);
	buf_free(&chal);
	pthread_mutex_unlock(&s->lock);
}

/* A mechanism that needs stored keys and is enabled. */
static const struct sasl_mech *
auth_sasl_mech(const struct auth_sasl *s, const char *name)
{
	const struct sasl_mech *m = sasl_mech_find(name);
	bool enabled = false;

	if (m == NULL || (strncmp(name, "SCRAM-", 6) != 0 && strcmp(name, "CRAM-MD5") != 0))
		return NULL;
	for (size_t i = 0; i < s->conf->nmechanisms; i++)
		enabled = enabled || strcmp(s->conf->mechanisms[i], name) == 0;
	return enabled ? m : NULL;
}

static uint64_t
auth_sasl_handle(const struct auth_sasl *s)
{
	uint64_t h = 0;

	while (h == 0 || idmap_get(&s->xs, h) != NULL) {
		if (RAND_bytes((unsigned char *)&h, sizeof(h)) != 1)
			return 0;
	}
	return h;
}

static struct auth_sasl_x *
auth_sasl_x_new(
    struct auth_sasl *s, const struct sasl_mech *m, unsigned owner, const struct auth_msg_req *q)
{
	struct auth_sasl_x *e;
	struct sasl_context sc;
	uint64_t h = auth_sasl_handle(s);

	if (h == 0)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->handle = h;
	e->owner = owner;
	e->born = auth_sasl_now();
	e->x = sasl_new(m);
	snprintf(e->client, sizeof(e->client), "%s", q->client);
	memset(&sc, 0, sizeof(sc));
	sc.plus_offered = q->plus_offered;
	memcpy(sc.cb, q->cb, sizeof(sc.cb));
	memcpy(sc.cblen, q->cblen, sizeof(sc.cblen));
	sasl_set_context(e->x, &sc);
	explicit_bzero(&sc, sizeof(sc));
	if (q->challen > 0 && sasl_cram_restore(e->x, q->chal, q->challen) == -1) {
		sasl_free(e->x);
		free(e);
		return NULL;
	}
	idmap_put(&s->xs, h, e);
	return e;
}

void
auth_sasl_start(struct auth_sasl *s, struct mailbox *mb, unsigned owner, uint64_t token,
    const struct auth_msg_req *q, auth_sasl_cb *cb, void *ctx)
{
	const struct sasl_mech *m = auth_sasl_mech(s, q->mech);
	long long now = auth_sasl_now();
	struct auth_sasl_x *e;
	enum sasl_status st;
	struct buf chal;
	/* the lookup to ask for once the lock is let go */
	struct authdb *db = NULL;
	uint64_t handle = 0;
	char *user = NULL;
	enum sasl_keys_kind kind = 0;

	pthread_mutex_lock(&s->lock);
	if (s->xs.count >= AUTH_SASL_MAX)
		auth_sasl_sweep(s, auth_sasl_is_expired, &now);
	/* CRAM-MD5 answers the smtp process's challenge, which must come along */
	if (s->db == NULL || m == NULL || s->xs.count >= AUTH_SASL_MAX ||
	    (strcmp(q->mech, "CRAM-MD5") == 0) != (q->challen > 0) ||
	    (e = auth_sasl_x_new(s, m, owner, q)) == NULL) {
		pthread_mutex_unlock(&s->lock);
		auth_sasl_tempfail(token, cb, ctx);
		return;
	}
	buf_init(&chal, AUTH_MSG_SASL_MAX + 1);
	buf_set_secret(&chal);
	st = sasl_step(e->x, (const char *)q->secret, q->secretlen, true, &chal);
	if (st != SASL_NEED_KEYS) {
		auth_sasl_after(s, e, st, &chal, token, cb, ctx);
	} else {
		e->pending = true;
		e->token = token;
		e->cb = cb;
		e->ctx = ctx;
		db = s->db;
		handle = e->handle;
		user = xstrdup(sasl_user(e->x));
		kind = sasl_keys_kind(e->x);
	}
	pthread_mutex_unlock(&s->lock);
	buf_free(&chal);
	if (db != NULL)
		authdb_lookup_keys(db, mb, handle, user, strlen(user), kind, auth_sasl_keys_cb, s);
	free(user);
}

void
auth_sasl_step(struct auth_sasl *s, unsigned owner, uint64_t token, const struct auth_msg_req *q,
    auth_sasl_cb *cb, void *ctx)
{
	struct auth_sasl_x *e;
	struct buf chal;

	pthread_mutex_lock(&s->lock);
	e = idmap_get(&s->xs, q->handle);
	if (e == NULL || e->owner != owner || e->pending) {
		pthread_mutex_unlock(&s->lock);
		auth_sasl_tempfail(token, cb, ctx);
		return;
	}
	if (e->born + AUTH_SASL_TTL_S <= auth_sasl_now() || s->db == NULL) {
		auth_sasl_x_free(s, e);
		pthread_mutex_unlock(&s->lock);
		auth_sasl_tempfail(token, cb, ctx);
		return;
	}
	buf_init(&chal, AUTH_MSG_SASL_MAX + 1);
	buf_set_secret(&chal);
	auth_sasl_after(s, e,
	    sasl_step(e->x, (const char *)q->secret, q->secretlen, q->has_input, &chal), &chal,
	    token, cb, ctx);
	pthread_mutex_unlock(&s->lock);
	buf_free(&chal);
}
