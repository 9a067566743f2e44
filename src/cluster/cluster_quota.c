/*
 * cluster_quota: the sending quotas shared in Redis (cluster.h): the count
 * of messages per account and hour, the distinct recipients per account
 * (hashed), the held accounts, and the wait of a MAIL or an RCPT for the
 * shared answer.
 *
 * A fetch is owned by the cluster thread from the moment it is posted: its
 * timer and its command both run there, so "answered" needs no lock. The
 * first of the two (the answer, or the timer at wait_ms) posts the result
 * to the session's loop; the command's callback, which hiredis always
 * calls (with NULL when the connection goes), frees the fetch.
 */
#include "cluster/cluster_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_lua.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/loop.h"

struct cluster_quota_fetch {
	struct cluster *cl;
	char key[CLUSTER_MSG_KEY_MAX];
	char hex[CLUSTER_MSG_HEX_MAX];
	char hour[16];
	unsigned wait_ms;
	struct loop *reply_to;
	cluster_quota_cb *cb;
	/* a recipient's turn instead of the message count: rcb set */
	cluster_rcpt_cb *rcb;
	char rkey[CLUSTER_MSG_KEY_MAX];
	char rhash[CLUSTER_MSG_RCPT_HEX];
	char limit[16];
	void *arg;
	bool answered;
	struct loop_timer *timer;
};

/* The result, on the session's loop. */
struct cluster_quota_result {
	cluster_quota_cb *cb;
	cluster_rcpt_cb *rcb;
	void *arg;
	int status;
	unsigned messages; /* or distinct recipients */
	bool held, over;
};

void
cluster_set_quota_hooks(struct cluster *cl, const struct cluster_quota_hooks *h, void *arg)
{
	cl->qhooks = h;
	cl->qarg = arg;
}

static int
cluster_quota_key(const struct cluster *cl, const char *user, char *key, size_t keylen,
    char hex[CLUSTER_MSG_HEX_MAX])
{
	cluster_msg_hex(user, strlen(user), hex);
	return cluster_msg_key(key, keylen, cl->prefix, "quota:", hex);
}

static void
cluster_quota_deliver(void *arg)
{
	struct cluster_quota_result *r = arg;

	if (r->rcb != NULL)
		r->rcb(r->arg, r->status, r->over, r->messages, r->held);
	else
		r->cb(r->arg, r->status, r->messages, r->held);
	free(r);
}

static void
cluster_quota_answer(
    struct cluster_quota_fetch *f, int status, unsigned messages, bool held, bool over)
{
	struct cluster_quota_result *r;

	if (f->answered)
		return;
	f->answered = true;
	loop_timer_del(f->timer);
	if (f->cl->stopping)
		return; /* the sessions are gone */
	r = xcalloc(1, sizeof(*r));
	r->cb = f->cb;
	r->rcb = f->rcb;
	r->over = over;
	r->arg = f->arg;
	r->status = status;
	r->messages = messages;
	r->held = held;
	loop_post(f->reply_to, cluster_quota_deliver, r);
}

static void
cluster_quota_fetch_free(struct cluster_quota_fetch *f)
{
	loop_timer_free(f->timer);
	free(f);
}

static void
cluster_quota_timeout(void *arg)
{
	cluster_quota_answer(arg, -1, 0, false, false);
}

static void
cluster_quota_got(struct cluster *cl, redisReply *r, void *arg)
{
	struct cluster_quota_fetch *f = arg;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER &&
	    r->element[1]->type == REDIS_REPLY_INTEGER && r->element[0]->integer >= 0) {
		long long n = r->element[0]->integer;

		cluster_quota_answer(f, 0, n > 1000000000 ? 1000000000u : (unsigned)n,
		    r->element[1]->integer == 1, false);
	} else {
		cluster_quota_answer(f, -1, 0, false, false);
	}
	(void)cl;
	cluster_quota_fetch_free(f);
}

static void
cluster_quota_rcpt_got(struct cluster *cl, redisReply *r, void *arg)
{
	struct cluster_quota_fetch *f = arg;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER &&
	    r->element[1]->type == REDIS_REPLY_INTEGER &&
	    r->element[2]->type == REDIS_REPLY_INTEGER && r->element[1]->integer >= 0) {
		long long n = r->element[1]->integer;

		cluster_quota_answer(f, 0, n > 1000000000 ? 1000000000u : (unsigned)n,
		    r->element[2]->integer == 1, r->element[0]->integer == 1);
	} else {
		cluster_quota_answer(f, -1, 0, false, false);
	}
	(void)cl;
	cluster_quota_fetch_free(f);
}

static void
cluster_quota_fetch_run(void *arg)
{
	struct cluster_quota_fetch *f = arg;
	struct cluster *cl = f->cl;
	const char *argv[] = {
	    "EVAL", cluster_lua_quota_get, "2", f->key, cl->holds, f->hour, f->hex};

	char ttl[16];
	const char *rargv[] = {"EVAL", cluster_lua_quota_rcpt, "2", f->rkey, cl->holds, f->hour,
	    f->rhash, f->limit, ttl, f->hex};
	int rc;

	snprintf(ttl, sizeof(ttl), "%d", CLUSTER_QUOTA_TTL_S);
	f->timer = loop_timer_new(cl->loop, cluster_quota_timeout, f);
	if (!cluster_is_up(cl))
		rc = -1;
	else if (f->rcb != NULL)
		rc = cluster_send(cl, (int)(sizeof(rargv) / sizeof(rargv[0])), rargv, NULL,
		    cluster_quota_rcpt_got, f);
	else
		rc = cluster_send(
		    cl, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL, cluster_quota_got, f);
	if (rc == -1) {
		cluster_quota_answer(f, -1, 0, false, false);
		cluster_quota_fetch_free(f);
		return;
	}
	loop_timer_add(f->timer, (long)f->wait_ms);
}

int
cluster_quota_fetch(struct cluster *cl, const char *user, unsigned hour, unsigned wait_ms,
    struct loop *reply_to, cluster_quota_cb *cb, void *arg)
{
	struct cluster_quota_fetch *f;

	if (!cluster_is_up(cl))
		return -1;
	f = xcalloc(1, sizeof(*f));
	if (cluster_quota_key(cl, user, f->key, sizeof(f->key), f->hex) == -1) {
		free(f);
		return -1;
	}
	f->cl = cl;
	snprintf(f->hour, sizeof(f->hour), "%u", hour);
	f->wait_ms = wait_ms;
	f->reply_to = reply_to;
	f->cb = cb;
	f->arg = arg;
	loop_post(cl->loop, cluster_quota_fetch_run, f);
	return 0;
}

int
cluster_quota_rcpt(struct cluster *cl, const char *user, const char *rcpt, unsigned limit,
    unsigned hour, unsigned wait_ms, struct loop *reply_to, cluster_rcpt_cb *cb, void *arg)
{
	struct cluster_quota_fetch *f;

	if (!cluster_is_up(cl))
		return -1;
	f = xcalloc(1, sizeof(*f));
	if (cluster_quota_key(cl, user, f->key, sizeof(f->key), f->hex) == -1 ||
	    cluster_msg_key(f->rkey, sizeof(f->rkey), cl->prefix, "rcpt:", f->hex) == -1) {
		free(f);
		return -1;
	}
	cluster_msg_rcpt_hash(rcpt, f->rhash);
	f->cl = cl;
	snprintf(f->hour, sizeof(f->hour), "%u", hour);
	snprintf(f->limit, sizeof(f->limit), "%u", limit);
	f->wait_ms = wait_ms;
	f->reply_to = reply_to;
	f->rcb = cb;
	f->arg = arg;
	loop_post(cl->loop, cluster_quota_fetch_run, f);
	return 0;
}

/* --- counts, holds and unlocks: sent, never waited for ------------------------- */

struct cluster_quota_job {
	struct cluster *cl;
	const char *script;
	char user[CLUSTER_MSG_ACCOUNT_MAX + 1];
	char key[CLUSTER_MSG_KEY_MAX];
	char hex[CLUSTER_MSG_HEX_MAX];
	char rkey[CLUSTER_MSG_KEY_MAX];
	char hour[16];
};

static void
cluster_quota_counted(struct cluster *cl, redisReply *r, void *arg)
{
	struct cluster_quota_job *j = arg;

	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && cl->qhooks != NULL)
		cl->qhooks->count(cl->qarg, j->user,
		    r->integer > 1000000000 ? 1000000000u : (unsigned)r->integer);
	free(j);
}

static void
cluster_quota_job_run(void *arg)
{
	struct cluster_quota_job *j = arg;
	struct cluster *cl = j->cl;
	char ttl[16];
	const char *count[] = {"EVAL", j->script, "1", j->key, j->hour, ttl};
	const char *hold[] = {"EVAL", j->script, "1", cl->holds, j->hex, cl->chan};
	const char *unlock[] = {
	    "EVAL", j->script, "3", cl->holds, j->key, j->rkey, j->hex, cl->chan};
	int rc;

	snprintf(ttl, sizeof(ttl), "%d", CLUSTER_QUOTA_TTL_S);
	if (!cluster_is_up(cl)) {
		free(j);
		return;
	}
	if (j->script == cluster_lua_quota_count)
		rc = cluster_send(cl, 6, count, NULL, cluster_quota_counted, j);
	else if (j->script == cluster_lua_quota_hold)
		rc = cluster_send(cl, 6, hold, NULL, NULL, NULL);
	else
		rc = cluster_send(cl, 8, unlock, NULL, NULL, NULL);
	if (rc == -1 || j->script != cluster_lua_quota_count)
		free(j);
}

static void
cluster_quota_post(struct cluster *cl, const char *script, const char *user, unsigned hour)
{
	struct cluster_quota_job *j;

	if (cl == NULL || !cluster_is_up(cl))
		return;
	j = xcalloc(1, sizeof(*j));
	if (cluster_quota_key(cl, user, j->key, sizeof(j->key), j->hex) == -1 ||
	    cluster_msg_key(j->rkey, sizeof(j->rkey), cl->prefix, "rcpt:", j->hex) == -1) {
		free(j);
		return;
	}
	j->cl = cl;
	j->script = script;
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->hour, sizeof(j->hour), "%u", hour);
	loop_post(cl->loop, cluster_quota_job_run, j);
}

void
cluster_quota_count(struct cluster *cl, const char *user, unsigned hour)
{
	cluster_quota_post(cl, cluster_lua_quota_count, user, hour);
}

void
cluster_quota_hold(struct cluster *cl, const char *user)
{
	cluster_quota_post(cl, cluster_lua_quota_hold, user, 0);
}

void
cluster_quota_unlock(struct cluster *cl, const char *user)
{
	cluster_quota_post(cl, cluster_lua_quota_unlock, user, 0);
}

/* --- from the channel and the resync ------------------------------------------- */

void
cluster_quota_apply(struct cluster *cl, const struct cluster_msg *m)
{
	char user[CLUSTER_MSG_ACCOUNT_MAX + 1];

	if (cl->qhooks == NULL || memchr(m->account, '\0', m->account_len) != NULL)
		return;
	memcpy(user, m->account, m->account_len);
	user[m->account_len] = '\0';
	if (m->type == CLUSTER_MSG_HOLD)
		cl->qhooks->hold(cl->qarg, user);
	else if (m->type == CLUSTER_MSG_UNLOCK)
		cl->qhooks->unlock(cl->qarg, user);
}

static void
cluster_quota_resync_done(struct cluster *cl, redisReply *r, void *arg)
{
	(void)arg;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < r->elements; i++) {
		struct cluster_msg m;

		memset(&m, 0, sizeof(m));
		m.type = CLUSTER_MSG_HOLD;
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    cluster_msg_unhex(r->element[i]->str, m.account, &m.account_len) == 0 &&
		    m.account_len > 0)
			cluster_quota_apply(cl, &m);
	}
}

void
cluster_quota_resync(struct cluster *cl)
{
	const char *argv[2] = {"SMEMBERS", cl->holds};

	if (cl->qhooks != NULL)
		(void)cluster_send(cl, 2, argv, NULL, cluster_quota_resync_done, NULL);
}
