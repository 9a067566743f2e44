/*
 * scheduler_attempt: what the scheduler does to one message (scheduler.h):
 * which destinations its open recipients need, when it is due, and one
 * attempt: open and lock it (qfile), deliver to the reserved destinations,
 * record each recipient's result, give up on those past the route's expire
 * (RFC 5321 4.5.4.1), queue the DSN for failed recipients and the one delay
 * warning, pick the next try (backoff), log, then rewrite or remove it.
 * Runs on a worker thread without the scheduler's lock, but for adding the
 * DSNs it queued.
 */
#include "relay/scheduler.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "explain/finding.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/envelope.h"
#include "queue/qfile.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_read.h"
#include "relay/bounce.h"
#include "relay/deliver.h"
#include "relay/scheduler_priv.h"

#define SCHEDULER_DSN_MAX (256 * 1024)

/* --- routes and destinations ---------------------------------------------- */

static const char *
scheduler_attempt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

void
scheduler_attempt_route_key(
    const struct conf_route *r, const char *domain, char *key, size_t keylen)
{
	switch (r->kind) {
	case CONF_ROUTE_SMARTHOST:
		snprintf(key, keylen, "smarthost %s:%s", r->host, r->port);
		break;
	case CONF_ROUTE_LMTP:
		if (r->unix_path != NULL)
			snprintf(key, keylen, "lmtp %s", r->unix_path);
		else
			snprintf(key, keylen, "lmtp %s:%s", r->host, r->port);
		break;
	case CONF_ROUTE_MX:
		snprintf(key, keylen, "mx %s", domain);
		for (char *p = key; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		break;
	}
}

/* The destination key of a recipient, or -1 when no route takes it. */
static int
scheduler_attempt_dest_key(
    const struct conf *c, const char *rcpt, char *key, size_t keylen, const struct conf_route **r_r)
{
	const char *domain = scheduler_attempt_domain(rcpt);
	const struct conf_route *r = conf_route_for(c, domain);

	*r_r = r;
	if (r == NULL)
		return -1;
	scheduler_attempt_route_key(r, domain, key, keylen);
	return 0;
}

static bool
scheduler_attempt_rcpt_is_open(enum qfile_state st, bool force)
{
	return st == QFILE_PENDING || st == QFILE_DEFERRED || (force && st == QFILE_HELD);
}

/* The destination keys the open recipients need (deduplicated). */
static void
scheduler_attempt_collect_dests(struct scheduler *s, const struct envelope *e,
    const struct qfile_rcpt *rs, bool force, char ***dests_r, size_t *n_r)
{
	char key[SCHEDULER_DEST_KEY_MAX];
	const struct conf_route *r;

	*dests_r = NULL;
	*n_r = 0;
	for (size_t i = 0; i < e->nrcpts; i++) {
		bool dup = false;

		if (!scheduler_attempt_rcpt_is_open(rs[i].state, force) ||
		    scheduler_attempt_dest_key(s->conf, e->rcpts[i], key, sizeof(key), &r) == -1)
			continue;
		for (size_t k = 0; k < *n_r; k++)
			dup = dup || strcmp((*dests_r)[k], key) == 0;
		if (dup)
			continue;
		*dests_r = xrealloc(*dests_r, (*n_r + 1) * sizeof(char *));
		(*dests_r)[(*n_r)++] = xstrdup(key);
	}
}

/* --- logging ------------------------------------------------------------------ */

static void
scheduler_attempt_time_str(long long t, char *out, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%lld", t);
}

static void
scheduler_attempt_log(const struct qfile *q, size_t i, const char *relay, const char *result,
    const struct deliver_result *dr, long long next_try_ms, const char *dsn)
{
	const struct finding_kb *kb = dr->finding != NULL ? finding_kb_find(dr->finding) : NULL;
	char next[64], cause[FINDING_CAUSE_MAX] = "";
	enum log_level lvl;

	if (next_try_ms == SCHEDULER_NEVER || next_try_ms <= 0 || strcmp(result, "deferred") != 0)
		snprintf(
		    next, sizeof(next), "%s", strcmp(result, "held") == 0 ? "queue flush" : "");
	else
		scheduler_attempt_time_str(next_try_ms / 1000, next, sizeof(next));
	lvl = strcmp(result, "sent") == 0     ? LOG_INFO
	    : strcmp(result, "deferred") == 0 ? LOG_WARNING
	    : strcmp(result, "held") == 0     ? LOG_ERR
	                                      : LOG_NOTICE;
	/* the same words as `smtpgate probe`: the reply's own codes, a
	 * provider's cause and fix where the knowledge base knows the reply */
	if (kb != NULL)
		finding_cause_render(kb, &dr->why, cause, sizeof(cause));
	log_event(lvl, "delivery", 0,
	    "{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s*, s:s?, s:s?, s:s?, s:s*, s:s*, s:s?, s:i, "
	    "s:s?}",
	    "queue_id", q->id, "rcpt", q->env->rcpts[i], "relay", relay, "result", result, "code",
	    dr->code, "enhanced", dr->enh, "reason", dr->text, "reply",
	    dr->reply[0] != '\0' ? dr->reply : NULL, "finding", dr->finding, "cause",
	    kb != NULL ? cause : NULL, "fix", kb != NULL ? finding_fix_text(kb, &dr->why) : NULL,
	    "provider", dr->why.provider, "help", dr->why.help, "next_try",
	    next[0] != '\0' ? next : NULL, "attempt", (int)q->attempts, "dsn", dsn);
}

/* --- one attempt ---------------------------------------------------------------- */

/* What one attempt did to one recipient, for the DSN and the log. */
struct scheduler_attempt_outcome {
	bool tried;
	struct deliver_result dr;
	char relay[300];
	bool expired;
};

static long long
scheduler_attempt_backoff_ms(const struct conf_route *r, unsigned attempts)
{
	unsigned long long d = (unsigned long long)r->retry_min * 1000;
	uint32_t rnd = 0;

	for (unsigned i = 1; i < attempts && d < (unsigned long long)r->retry_max * 1000; i++)
		d *= 2;
	if (d > (unsigned long long)r->retry_max * 1000)
		d = (unsigned long long)r->retry_max * 1000;
	/* jitter: +0..10%, so deferred messages do not come back in lockstep */
	(void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	return (long long)(d + (d / 10) * (rnd % 1001) / 1000);
}

/* The route of recipient i when it is due a delay warning at now: still
 * open (deferred, or pending behind another destination), its route warns,
 * and the message has been queued for longer than that route's
 * delay_warning. Else NULL. Held recipients wait for an admin, not for a
 * retry: they are not "delayed". */
static const struct conf_route *
scheduler_attempt_delay_route(struct scheduler *s, const struct qfile *q, size_t i, long long now)
{
	const struct conf_route *r;

	if (q->rcpt[i].state != QFILE_DEFERRED && q->rcpt[i].state != QFILE_PENDING)
		return NULL;
	r = conf_route_for(s->conf, scheduler_attempt_domain(q->env->rcpts[i]));
	if (r == NULL || r->delay_warning == 0 ||
	    now < (long long)q->env->arrival + (long long)r->delay_warning)
		return NULL;
	return r;
}

/* Queues the DSN for the recipients that failed for good in this attempt,
 * or (delayed) the delay warning for those scheduler_attempt_delay_route() names.
 * -1 when it could not be queued (failed recipients then stay deferred; a
 * warning is tried again after the next attempt). */
static int
scheduler_attempt_bounce(struct scheduler *s, struct qfile *q,
    struct scheduler_attempt_outcome *out, bool delayed, char id_r[QUEUE_ID_MAX])
{
	struct bounce_rcpt *br = xcalloc(q->env->nrcpts, sizeof(*br));
	struct buf dsn;
	size_t n = 0;
	bool eightbit = false;
	const char *rcpt1[1] = {q->env->sender};
	struct queue_envelope qe;
	long long now = (long long)time(NULL);
	int rc = -1;

	for (size_t i = 0; i < q->env->nrcpts; i++) {
		const struct conf_route *r = NULL;

		if (delayed) {
			r = scheduler_attempt_delay_route(s, q, i, now);
			if (r == NULL)
				continue;
			/* RFC 3464 2.3.9: the time the expiry in scheduler_attempt_record fails it */
			br[n].retry_until = (time_t)((long long)q->env->arrival + r->expire);
		} else if (!out[i].tried || q->rcpt[i].state != QFILE_FAILED)
			continue;
		br[n].rcpt = q->env->rcpts[i];
		br[n].code = q->rcpt[i].code;
		br[n].enh = q->rcpt[i].enh;
		br[n].text = q->rcpt[i].text != NULL ? q->rcpt[i].text : "";
		br[n].relay = out[i].relay; /* "" for a recipient not tried this time */
		br[n].expired = out[i].expired;
		br[n].when = (time_t)q->rcpt[i].when;
		n++;
	}
	buf_init(&dsn, SCHEDULER_DSN_MAX + BOUNCE_HEADERS_MAX);
	struct bounce_in in = {
	    .hostname = s->conf->hostname,
	    .queue_id = q->id,
	    .sender = q->env->sender,
	    .arrival = q->env->arrival,
	    .now = (time_t)now,
	    .body = q->body,
	    .body_len = (size_t)q->body_len,
	    .rcpts = br,
	    .nrcpts = n,
	    .delayed = delayed,
	};
	if (bounce_build(&in, &dsn, &eightbit) == -1) {
		log_event(LOG_ERR, "dsn_error", 0, "{s:s, s:s}", "queue_id", q->id, "error",
		    "DSN too large");
		goto out;
	}
	memset(&qe, 0, sizeof(qe));
	qe.sender = ""; /* RFC 5321 4.5.5: a DSN has the null sender: no bounce loop */
	qe.rcpts = rcpt1;
	qe.nrcpts = 1;
	qe.client_addr = "";
	qe.helo = s->conf->hostname;
	qe.smtputf8 = q->env->smtputf8;
	qe.body_8bit = eightbit;
	qe.arrival = time(NULL);
	if (qfile_create(s->spool_fd, dsn.data, dsn.len, &qe, id_r) == -1) {
		log_event(LOG_ERR, "dsn_error", 0, "{s:s, s:s}", "queue_id", q->id, "error",
		    strerror(errno));
		goto out;
	}
	log_event(LOG_NOTICE, "dsn", 0, "{s:s, s:s, s:s, s:s, s:i}", "queue_id", q->id, "dsn_id",
	    id_r, "action", delayed ? "delayed" : "failed", "to", q->env->sender, "recipients",
	    (int)n);
	rc = 0;
out:
	if (rc == -1)
		id_r[0] = '\0'; /* qfile_create may have named a file it did not queue */
	buf_free(&dsn);
	free(br);
	return rc;
}

/*
 * After an attempt: queues the message's one delay warning when it is due
 * (id to warn_id_r) and records it in q->warned, which the caller's
 * qfile_save makes durable. The DSN is queued first: a crash in between
 * sends the warning twice, never zero times (as for failure DSNs). Never
 * for the null sender: a DSN gets no DSN.
 */
static void
scheduler_attempt_delay_warning(struct scheduler *s, struct qfile *q,
    struct scheduler_attempt_outcome *out, char warn_id_r[QUEUE_ID_MAX])
{
	long long now = (long long)time(NULL);
	bool due = false;

	if (q->warned != 0 || q->env->sender[0] == '\0')
		return;
	for (size_t i = 0; i < q->env->nrcpts && !due; i++)
		due = scheduler_attempt_delay_route(s, q, i, now) != NULL;
	if (!due)
		return;
	if (scheduler_attempt_bounce(s, q, out, true, warn_id_r) == 0)
		q->warned = now;
}

/*
 * Records the results of one destination's recipients (idx, k of them) in
 * q and out; a deferred recipient past its route's expire fails instead
 * (RFC 5321 4.5.4.1: give up after some days). Whether any failed.
 */
static bool
scheduler_attempt_record(struct scheduler *s, struct qfile *q, const size_t *idx, size_t k,
    const struct deliver_result *res, const char *relay, struct scheduler_attempt_outcome *out)
{
	bool any_failed = false;

	for (size_t j = 0; j < k; j++) {
		size_t i = idx[j];
		const struct conf_route *ri =
		    conf_route_for(s->conf, scheduler_attempt_domain(q->env->rcpts[i]));

		out[i].tried = true;
		out[i].dr = res[j];
		snprintf(out[i].relay, sizeof(out[i].relay), "%s", relay);
		if (res[j].state == QFILE_DEFERRED && ri != NULL &&
		    (long long)time(NULL) >= (long long)q->env->arrival + ri->expire) {
			out[i].expired = true;
			out[i].dr.state = QFILE_FAILED;
			snprintf(out[i].dr.enh, sizeof(out[i].dr.enh), "4.4.7");
			snprintf(out[i].dr.text, sizeof(out[i].dr.text),
			    "expired (in the queue for more than %us); last: %s", ri->expire,
			    res[j].text);
		}
		qfile_set(&q->rcpt[i], out[i].dr.state, res[j].code,
		    out[i].expired ? "4.4.7" : res[j].enh, (long long)time(NULL), res[j].text);
		if (q->rcpt[i].state == QFILE_FAILED)
			any_failed = true;
	}
	return any_failed;
}

/*
 * Delivers, one reserved destination at a time, to the open recipients it
 * takes. *tried_r: any recipient was tried. Returns whether any failed for
 * good.
 */
static bool
scheduler_attempt_deliver(struct scheduler *s, struct deliver_conn *dc, struct qfile *q, bool force,
    char **reserved, size_t nreserved, struct scheduler_attempt_outcome *out, bool *tried_r)
{
	size_t n = q->env->nrcpts, *idx = xcalloc(n, sizeof(*idx));
	struct deliver_result *res = xcalloc(n, sizeof(*res));
	bool any_failed = false;

	*tried_r = false;
	for (size_t d = 0; d < nreserved; d++) {
		const struct conf_route *r = NULL;
		char key[SCHEDULER_DEST_KEY_MAX], relay[300] = "";
		const char *domain;
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			if (!scheduler_attempt_rcpt_is_open(q->rcpt[i].state, force) ||
			    scheduler_attempt_dest_key(
			        s->conf, q->env->rcpts[i], key, sizeof(key), &r) == -1 ||
			    strcmp(key, reserved[d]) != 0)
				continue;
			idx[k++] = i;
		}
		if (k == 0)
			continue;
		domain = scheduler_attempt_domain(q->env->rcpts[idx[0]]);
		r = conf_route_for(s->conf, domain);
		deliver_run(&s->dctx, dc, r, domain, q, idx, k, res, relay, sizeof(relay));
		*tried_r = true;
		if (scheduler_attempt_record(s, q, idx, k, res, relay, out))
			any_failed = true;
	}
	free(idx);
	free(res);
	return any_failed;
}

/* The DSN for the recipients that failed for good in this attempt (its id
 * to dsn_id_r) and the note for their log lines. When it cannot be queued
 * they stay open (deferred) and come back later. */
static const char *
scheduler_attempt_failed(struct scheduler *s, struct qfile *q,
    struct scheduler_attempt_outcome *out, char dsn_id_r[QUEUE_ID_MAX])
{
	if (q->env->sender[0] == '\0')
		return "none: the null sender (a DSN is never bounced)";
	if (scheduler_attempt_bounce(s, q, out, false, dsn_id_r) == 0)
		return dsn_id_r;
	for (size_t i = 0; i < q->env->nrcpts; i++) {
		if (out[i].tried && q->rcpt[i].state == QFILE_FAILED) {
			q->rcpt[i].state = QFILE_DEFERRED;
			out[i].dr.state = QFILE_DEFERRED;
			out[i].expired = false;
		}
	}
	return NULL;
}

/* The next try: the backoff of the first open recipient's route counted
 * from now (the end of this attempt), or now for one not tried this time
 * (pending behind another destination); SCHEDULER_NEVER when no open
 * recipient has a route. *all_final_r: every recipient is sent or failed. */
static long long
scheduler_attempt_next(struct scheduler *s, const struct qfile *q,
    const struct scheduler_attempt_outcome *out, long long now, bool *all_final_r)
{
	const struct conf_route *first_route = NULL;
	long long next = SCHEDULER_NEVER;

	*all_final_r = true;
	for (size_t i = 0; i < q->env->nrcpts; i++) {
		const struct conf_route *ri;
		char key[SCHEDULER_DEST_KEY_MAX];

		if (!qfile_is_final(q->rcpt[i].state))
			*all_final_r = false;
		if (q->rcpt[i].state != QFILE_DEFERRED && q->rcpt[i].state != QFILE_PENDING)
			continue;
		if (scheduler_attempt_dest_key(s->conf, q->env->rcpts[i], key, sizeof(key), &ri) ==
		    -1)
			continue; /* no route: waits for a configuration that has one */
		if (first_route == NULL) {
			first_route = ri;
			next = q->rcpt[i].state == QFILE_PENDING && !out[i].tried
			    ? now
			    : now + scheduler_attempt_backoff_ms(ri, q->attempts);
		}
	}
	return next;
}

/* One delivery log line per recipient tried. */
static void
scheduler_attempt_log_tried(const struct qfile *q, const struct scheduler_attempt_outcome *out,
    long long next, const char *dsn_id, const char *dsn_note)
{
	for (size_t i = 0; i < q->env->nrcpts; i++) {
		if (!out[i].tried)
			continue;
		scheduler_attempt_log(q, i, out[i].relay,
		    out[i].dr.state == QFILE_SENT           ? "sent"
		        : out[i].dr.state == QFILE_DEFERRED ? "deferred"
		        : out[i].dr.state == QFILE_HELD     ? "held"
		        : dsn_id[0] != '\0'                 ? "bounced"
		                                            : "failed",
		    &out[i].dr, next, out[i].dr.state == QFILE_FAILED ? dsn_note : NULL);
	}
}

/* After the attempt: removes the message when every recipient is final
 * (-1), else writes its delivery state when something was tried; the
 * destinations it still needs go to dests_r. The due time (ms). */
static long long
scheduler_attempt_finish(struct scheduler *s, struct qfile *q, bool force, bool tried,
    bool all_final, long long next, long long now, char ***dests_r, size_t *ndests_r)
{
	if (all_final) {
		if (qfile_remove(q, s->spool_fd) == -1)
			log_event(LOG_ERR, "spool_error", 0, "{s:s, s:s, s:s}", "op", "unlink",
			    "queue_id", q->id, "error", strerror(errno));
		else
			log_event(LOG_INFO, "queue_done", 0, "{s:s, s:i}", "queue_id", q->id,
			    "attempts", (int)q->attempts);
		return -1;
	}
	if (tried) {
		q->next_try = next == SCHEDULER_NEVER ? QFILE_NEVER : (next + 999) / 1000;
		if (qfile_save(q, s->spool_fd) == -1)
			log_event(LOG_ERR, "spool_error", 0, "{s:s, s:s, s:s}", "op", "rewrite",
			    "queue_id", q->id, "error", strerror(errno));
		scheduler_attempt_collect_dests(s, q->env, q->rcpt, false, dests_r, ndests_r);
		return next;
	}
	scheduler_attempt_collect_dests(s, q->env, q->rcpt, force, dests_r, ndests_r);
	return *ndests_r > 0 ? now : SCHEDULER_NEVER;
}

/* The DSNs this attempt queued join the scheduler's entries. */
static void
scheduler_attempt_add_dsns(struct scheduler *s, const char *dsn_id, const char *warn_id)
{
	if (dsn_id[0] == '\0' && warn_id[0] == '\0')
		return;
	pthread_mutex_lock(&s->lock);
	if (dsn_id[0] != '\0')
		scheduler_add(s, dsn_id);
	if (warn_id[0] != '\0')
		scheduler_add(s, warn_id);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

long long
scheduler_attempt(struct scheduler *s, struct deliver_conn *dc, const char *id, bool force,
    char **reserved, size_t nreserved, char ***dests_r, size_t *ndests_r)
{
	struct qfile *q = NULL;
	const char *errstr = NULL, *dsn_note = NULL;
	struct scheduler_attempt_outcome *out;
	char dsn_id[QUEUE_ID_MAX] = "", warn_id[QUEUE_ID_MAX] = "";
	bool tried, any_failed, all_final;
	long long now = scheduler_now_ms(), next, retry;

	*dests_r = NULL;
	*ndests_r = 0;
	if (qfile_open(s->spool_fd, id, &q, &errstr) == -1) {
		if (errno == ENOENT)
			return -1;
		if (errno == EBUSY)
			return now + SCHEDULER_LOCKED_RETRY_MS;
		log_event(LOG_ERR, "delivery_error", 0, "{s:s, s:s}", "queue_id", id, "error",
		    errstr != NULL ? errstr : strerror(errno));
		return SCHEDULER_NEVER;
	}
	out = xcalloc(q->env->nrcpts, sizeof(*out));
	any_failed = scheduler_attempt_deliver(s, dc, q, force, reserved, nreserved, out, &tried);
	if (tried)
		q->attempts++;
	if (any_failed)
		dsn_note = scheduler_attempt_failed(s, q, out, dsn_id);
	if (tried)
		scheduler_attempt_delay_warning(s, q, out, warn_id);
	now = scheduler_now_ms();
	retry = scheduler_attempt_next(s, q, out, now, &all_final);
	/* a message still open is logged once its state is on disk, so a
	 * `deferred` line always means its next try is written down */
	if (all_final)
		scheduler_attempt_log_tried(q, out, retry, dsn_id, dsn_note);
	next =
	    scheduler_attempt_finish(s, q, force, tried, all_final, retry, now, dests_r, ndests_r);
	if (!all_final)
		scheduler_attempt_log_tried(q, out, retry, dsn_id, dsn_note);
	scheduler_attempt_add_dsns(s, dsn_id, warn_id);
	free(out);
	qfile_close(q);
	return next;
}

/* Reads an unloaded entry's envelope: its destinations and due time. */
long long
scheduler_attempt_load(
    struct scheduler *s, const char *id, bool force, bool fresh, char ***dests_r, size_t *n_r)
{
	struct spool_read_msg m;
	const char *errstr = "cannot read";
	struct qfile_rcpt *rs;
	unsigned attempts;
	long long next_try, due;
	int fd;

	*dests_r = NULL;
	*n_r = 0;
	fd = spool_msg_open(s->spool_fd, SPOOL_QUEUE, id);
	if (fd == -1)
		return errno == ENOENT ? -1 : scheduler_now_ms() + SCHEDULER_LOCKED_RETRY_MS;
	if (spool_read_envelope(fd, &m, &errstr) == -1) {
		close(fd);
		log_event(
		    LOG_ERR, "delivery_error", 0, "{s:s, s:s}", "queue_id", id, "error", errstr);
		return SCHEDULER_NEVER;
	}
	close(fd);
	rs = xcalloc(m.env->nrcpts, sizeof(*rs));
	qfile_parse_state(m.env, &attempts, &next_try, NULL, rs);
	scheduler_attempt_collect_dests(s, m.env, rs, force, dests_r, n_r);
	for (size_t i = 0; i < m.env->nrcpts; i++) {
		/* said once per load (start-up, commit, flush): it waits for a
		 * configuration with a route for it */
		if (scheduler_attempt_rcpt_is_open(rs[i].state, force) &&
		    conf_route_for(s->conf, scheduler_attempt_domain(m.env->rcpts[i])) == NULL)
			log_event(LOG_WARNING, "delivery_no_route", 0, "{s:s, s:s}", "queue_id", id,
			    "rcpt", m.env->rcpts[i]);
	}
	if (*n_r == 0)
		due = SCHEDULER_NEVER;
	else if (force || fresh || next_try == 0)
		due = 0;
	else if (next_try == QFILE_NEVER)
		due = SCHEDULER_NEVER;
	else
		due = next_try * 1000;
	for (size_t i = 0; i < m.env->nrcpts; i++)
		free(rs[i].text);
	free(rs);
	spool_read_clear(&m);
	return due;
}
