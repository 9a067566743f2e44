/*
 * scheduler: the delivery queue runner (scheduler.h).
 *
 * State: one entry per message of queue/ (sorted by id, so by arrival),
 * with its due time (ms since the epoch, SCHED_NEVER when only held or
 * unroutable recipients are left), whether a worker has it, and the
 * destinations its open recipients need. Entries first come in "unloaded"
 * (a commit or a rescan only knows the id): the first worker to pick one
 * reads its envelope to learn its destinations and due time, then puts it
 * back. One mutex guards the entries and the destination slot counters;
 * nothing blocking runs under it.
 *
 * Workers: pick the oldest due entry whose destinations all have a free
 * slot (reserve them), deliver without the lock, record the results, free
 * the slots, wake the others. When nothing is due they sleep until the
 * earliest due time (entries blocked only by busy slots are woken by the
 * worker that frees one).
 *
 * Ownership: the scheduler owns its entries, the creds cache and the MX
 * routers; a worker owns the qfile it opened for the length of one attempt.
 */
#include "relay/scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "explain/finding.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/envelope.h"
#include "queue/qfile.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_read.h"
#include "relay/bounce.h"
#include "relay/creds.h"
#include "relay/deliver.h"
#include "relay/route_mx.h"

#define SCHED_NEVER LLONG_MAX
#define SCHED_LOCKED_RETRY_MS 2000 /* the CLI holds the message's lock */
#define SCHED_DEST_KEY_MAX 600
#define SCHED_DSN_MAX (256 * 1024)
#define SCHED_REUSE_LOADS_MAX 16 /* envelopes read to find the next message for a session */

struct sched_dest {
	char *key;
	unsigned active, limit;
};

struct sched_entry {
	char id[QUEUE_ID_MAX];
	long long due;
	bool running, loaded, force, seen, gone;
	bool fresh; /* appeared in queue/ after start (released): try now */
	unsigned long long gen; /* the scan generation when it was added */
	long long stamp; /* inode change time of queue/ID when last read: a rename (hold,
			  * release) or a replacement changes it */
	char **dests;
	size_t ndests;
};

struct scheduler {
	const struct conf *conf;
	char *spool;
	int spool_fd;
	struct creds *creds;
	struct deliver_ctx dctx;
	const struct conf_route **mx_routes;
	struct route_mx **mx;
	size_t nmx;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* workers: work may be available */
	pthread_cond_t scan_cond; /* scanner: a rescan is asked for */
	struct sched_entry **v; /* sorted by id */
	size_t n, cap;
	struct sched_dest *dests;
	size_t ndests;
	bool stopping, rescan, flush;
	unsigned long long scan_gen; /* bumped as each scan starts listing queue/ */

	pthread_t *workers;
	size_t nworkers;
	size_t nworkers_started;
	pthread_t scanner;
	bool scanner_started;
};

static long long
sched_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
scheduler_is_configured(const struct conf *c)
{
	return c->relay != NULL || c->nroutes > 0;
}

/* --- entries (lock held) ---------------------------------------------------- */

static size_t
sched_find_pos(struct scheduler *s, const char *id, bool *found_r)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid]->id, id);

		if (c == 0) {
			*found_r = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = false;
	return lo;
}

static void
sched_entry_free_dests(struct sched_entry *e)
{
	for (size_t i = 0; i < e->ndests; i++)
		free(e->dests[i]);
	free(e->dests);
	e->dests = NULL;
	e->ndests = 0;
}

/* Adds id (unloaded, due now) unless present; returns the entry. */
static struct sched_entry *
sched_add(struct scheduler *s, const char *id)
{
	bool found;
	size_t pos = sched_find_pos(s, id, &found);
	struct sched_entry *e;

	if (found)
		return s->v[pos];
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 64 : s->cap * 2;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	memmove(&s->v[pos + 1], &s->v[pos], (s->n - pos) * sizeof(*s->v));
	e = xcalloc(1, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->due = 0;
	e->gen = s->scan_gen;
	s->v[pos] = e;
	s->n++;
	return e;
}

static void
sched_remove(struct scheduler *s, struct sched_entry *e)
{
	bool found;
	size_t pos = sched_find_pos(s, e->id, &found);

	if (!found || s->v[pos] != e)
		return;
	memmove(&s->v[pos], &s->v[pos + 1], (s->n - pos - 1) * sizeof(*s->v));
	s->n--;
	sched_entry_free_dests(e);
	free(e);
}

static struct sched_dest *
sched_dest(struct scheduler *s, const char *key, unsigned limit)
{
	for (size_t i = 0; i < s->ndests; i++) {
		if (strcmp(s->dests[i].key, key) == 0)
			return &s->dests[i];
	}
	s->dests = xrealloc(s->dests, (s->ndests + 1) * sizeof(*s->dests));
	s->dests[s->ndests].key = xstrdup(key);
	s->dests[s->ndests].active = 0;
	s->dests[s->ndests].limit = limit;
	return &s->dests[s->ndests++];
}

/* --- routes and destinations ---------------------------------------------- */

static const char *
sched_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* The destination key of a recipient, or -1 when no route takes it. */
static int
sched_dest_key(
    const struct conf *c, const char *rcpt, char *key, size_t keylen, const struct conf_route **r_r)
{
	const char *domain = sched_domain(rcpt);
	const struct conf_route *r = conf_route_for(c, domain);

	*r_r = r;
	if (r == NULL)
		return -1;
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
	return 0;
}

static bool
sched_rcpt_is_open(enum qfile_state st, bool force)
{
	return st == QFILE_PENDING || st == QFILE_DEFERRED || (force && st == QFILE_HELD);
}

/* The destination keys the open recipients need (deduplicated). */
static void
sched_collect_dests(struct scheduler *s, const struct envelope *e, const struct qfile_rcpt *rs,
    bool force, char ***dests_r, size_t *n_r)
{
	char key[SCHED_DEST_KEY_MAX];
	const struct conf_route *r;

	*dests_r = NULL;
	*n_r = 0;
	for (size_t i = 0; i < e->nrcpts; i++) {
		bool dup = false;

		if (!sched_rcpt_is_open(rs[i].state, force) ||
		    sched_dest_key(s->conf, e->rcpts[i], key, sizeof(key), &r) == -1)
			continue;
		for (size_t k = 0; k < *n_r; k++)
			dup = dup || strcmp((*dests_r)[k], key) == 0;
		if (dup)
			continue;
		*dests_r = xrealloc(*dests_r, (*n_r + 1) * sizeof(char *));
		(*dests_r)[(*n_r)++] = xstrdup(key);
	}
}

static struct route_mx *
sched_mx_for(void *arg, const struct conf_route *r)
{
	struct scheduler *s = arg;

	for (size_t i = 0; i < s->nmx; i++) {
		if (s->mx_routes[i] == r)
			return s->mx[i];
	}
	return NULL;
}

/* --- logging ------------------------------------------------------------------ */

static void
sched_time_str(long long t, char *out, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%lld", t);
}

static void
sched_log_delivery(const struct qfile *q, size_t i, const char *relay, const char *result,
    const struct deliver_result *dr, long long next_try_ms, const char *dsn)
{
	const struct finding_kb *kb = dr->finding != NULL ? finding_kb_find(dr->finding) : NULL;
	char next[64];
	enum log_level lvl;

	if (next_try_ms == SCHED_NEVER || next_try_ms <= 0 || strcmp(result, "deferred") != 0)
		snprintf(
		    next, sizeof(next), "%s", strcmp(result, "held") == 0 ? "queue flush" : "");
	else
		sched_time_str(next_try_ms / 1000, next, sizeof(next));
	lvl = strcmp(result, "sent") == 0     ? LOG_INFO
	    : strcmp(result, "deferred") == 0 ? LOG_WARNING
	    : strcmp(result, "held") == 0     ? LOG_ERR
	                                      : LOG_NOTICE;
	log_event(lvl, "delivery", 0,
	    "{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:s?}", "queue_id",
	    q->id, "rcpt", q->env->rcpts[i], "relay", relay, "result", result, "code", dr->code,
	    "enhanced", dr->enh, "reason", dr->text, "finding", dr->finding, "cause",
	    kb != NULL ? kb->cause : NULL, "fix", kb != NULL ? kb->fix : NULL, "next_try",
	    next[0] != '\0' ? next : NULL, "attempt", (int)q->attempts, "dsn", dsn);
}

/* --- one attempt ---------------------------------------------------------------- */

/* What one attempt did to one recipient, for the DSN and the log. */
struct sched_outcome {
	bool tried;
	struct deliver_result dr;
	char relay[300];
	bool expired;
};

static long long
sched_backoff_ms(const struct conf_route *r, unsigned attempts)
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
sched_delay_route(struct scheduler *s, const struct qfile *q, size_t i, long long now)
{
	const struct conf_route *r;

	if (q->rcpt[i].state != QFILE_DEFERRED && q->rcpt[i].state != QFILE_PENDING)
		return NULL;
	r = conf_route_for(s->conf, sched_domain(q->env->rcpts[i]));
	if (r == NULL || r->delay_warning == 0 ||
	    now < (long long)q->env->arrival + (long long)r->delay_warning)
		return NULL;
	return r;
}

/* Queues the DSN for the recipients that failed for good in this attempt,
 * or (delayed) the delay warning for those sched_delay_route() names.
 * -1 when it could not be queued (failed recipients then stay deferred; a
 * warning is tried again after the next attempt). */
static int
sched_bounce(struct scheduler *s, struct qfile *q, struct sched_outcome *out, bool delayed,
    char id_r[QUEUE_ID_MAX])
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
			r = sched_delay_route(s, q, i, now);
			if (r == NULL)
				continue;
			/* RFC 3464 2.3.9: the time the expiry in sched_attempt fails it */
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
	buf_init(&dsn, SCHED_DSN_MAX + BOUNCE_HEADERS_MAX);
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
sched_delay_warning(
    struct scheduler *s, struct qfile *q, struct sched_outcome *out, char warn_id_r[QUEUE_ID_MAX])
{
	long long now = (long long)time(NULL);
	bool due = false;

	if (q->warned != 0 || q->env->sender[0] == '\0')
		return;
	for (size_t i = 0; i < q->env->nrcpts && !due; i++)
		due = sched_delay_route(s, q, i, now) != NULL;
	if (!due)
		return;
	if (sched_bounce(s, q, out, true, warn_id_r) == 0)
		q->warned = now;
}

/*
 * Delivers entry e's message for the reserved destinations. Returns the new
 * due time (ms), SCHED_NEVER, or -1 when the message is gone.
 */
static long long
sched_attempt(struct scheduler *s, struct deliver_conn *dc, const char *id, bool force,
    char **reserved, size_t nreserved, char ***dests_r, size_t *ndests_r)
{
	struct qfile *q = NULL;
	const char *errstr = NULL;
	struct sched_outcome *out = NULL;
	size_t n, *idx = NULL;
	struct deliver_result *res = NULL;
	long long now = sched_now_ms(), next = SCHED_NEVER;
	bool any_tried = false, all_final = true, any_failed = false;
	const struct conf_route *sched_route = NULL;
	char dsn_id[QUEUE_ID_MAX] = "", warn_id[QUEUE_ID_MAX] = "";
	const char *dsn_note = NULL;

	*dests_r = NULL;
	*ndests_r = 0;
	if (qfile_open(s->spool_fd, id, &q, &errstr) == -1) {
		if (errno == ENOENT)
			return -1;
		if (errno == EBUSY)
			return now + SCHED_LOCKED_RETRY_MS;
		log_event(LOG_ERR, "delivery_error", 0, "{s:s, s:s}", "queue_id", id, "error",
		    errstr != NULL ? errstr : strerror(errno));
		return SCHED_NEVER;
	}
	n = q->env->nrcpts;
	out = xcalloc(n, sizeof(*out));
	idx = xcalloc(n, sizeof(*idx));
	res = xcalloc(n, sizeof(*res));
	/* one destination at a time: the reserved ones */
	for (size_t d = 0; d < nreserved; d++) {
		const struct conf_route *r = NULL;
		char key[SCHED_DEST_KEY_MAX], relay[300] = "";
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			if (!sched_rcpt_is_open(q->rcpt[i].state, force) ||
			    sched_dest_key(s->conf, q->env->rcpts[i], key, sizeof(key), &r) == -1 ||
			    strcmp(key, reserved[d]) != 0)
				continue;
			idx[k++] = i;
		}
		if (k == 0)
			continue;
		r = conf_route_for(s->conf, sched_domain(q->env->rcpts[idx[0]]));
		deliver_run(&s->dctx, dc, r, sched_domain(q->env->rcpts[idx[0]]), q, idx, k, res,
		    relay, sizeof(relay));
		any_tried = true;
		for (size_t j = 0; j < k; j++) {
			size_t i = idx[j];
			const struct conf_route *ri =
			    conf_route_for(s->conf, sched_domain(q->env->rcpts[i]));

			out[i].tried = true;
			out[i].dr = res[j];
			snprintf(out[i].relay, sizeof(out[i].relay), "%s", relay);
			/* expiry (RFC 5321 4.5.4.1: give up after some days) */
			if (res[j].state == QFILE_DEFERRED && ri != NULL &&
			    (long long)time(NULL) >= (long long)q->env->arrival + ri->expire) {
				out[i].expired = true;
				out[i].dr.state = QFILE_FAILED;
				snprintf(out[i].dr.enh, sizeof(out[i].dr.enh), "4.4.7");
				snprintf(out[i].dr.text, sizeof(out[i].dr.text),
				    "expired (in the queue for more than %us); last: %s",
				    ri->expire, res[j].text);
			}
			qfile_set(&q->rcpt[i], out[i].dr.state, res[j].code,
			    out[i].expired ? "4.4.7" : res[j].enh, (long long)time(NULL),
			    res[j].text);
			if (q->rcpt[i].state == QFILE_FAILED)
				any_failed = true;
		}
	}
	if (any_tried)
		q->attempts++;
	if (any_failed) {
		if (q->env->sender[0] == '\0') {
			dsn_note = "none: the null sender (a DSN is never bounced)";
		} else if (sched_bounce(s, q, out, false, dsn_id) == -1) {
			/* no DSN: the recipients stay open and come back later */
			for (size_t i = 0; i < n; i++) {
				if (out[i].tried && q->rcpt[i].state == QFILE_FAILED) {
					q->rcpt[i].state = QFILE_DEFERRED;
					out[i].dr.state = QFILE_DEFERRED;
					out[i].expired = false;
				}
			}
		} else {
			dsn_note = dsn_id;
		}
	}
	if (any_tried)
		sched_delay_warning(s, q, out, warn_id);
	/* the next try: the backoff of the first deferred recipient's route,
	 * counted from the end of this attempt */
	now = sched_now_ms();
	for (size_t i = 0; i < n; i++) {
		const struct conf_route *ri;
		char key[SCHED_DEST_KEY_MAX];

		if (!qfile_is_final(q->rcpt[i].state))
			all_final = false;
		if (q->rcpt[i].state != QFILE_DEFERRED && q->rcpt[i].state != QFILE_PENDING)
			continue;
		if (sched_dest_key(s->conf, q->env->rcpts[i], key, sizeof(key), &ri) == -1)
			continue; /* no route: waits for a configuration that has one */
		if (sched_route == NULL) {
			sched_route = ri;
			next = q->rcpt[i].state == QFILE_PENDING && !out[i].tried
			    ? now
			    : now + sched_backoff_ms(ri, q->attempts);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!out[i].tried)
			continue;
		sched_log_delivery(q, i, out[i].relay,
		    out[i].dr.state == QFILE_SENT           ? "sent"
		        : out[i].dr.state == QFILE_DEFERRED ? "deferred"
		        : out[i].dr.state == QFILE_HELD     ? "held"
		        : dsn_id[0] != '\0'                 ? "bounced"
		                                            : "failed",
		    &out[i].dr, next, out[i].dr.state == QFILE_FAILED ? dsn_note : NULL);
	}
	if (all_final) {
		if (qfile_remove(q, s->spool_fd) == -1)
			log_event(LOG_ERR, "spool_error", 0, "{s:s, s:s, s:s}", "op", "unlink",
			    "queue_id", q->id, "error", strerror(errno));
		else
			log_event(LOG_INFO, "queue_done", 0, "{s:s, s:i}", "queue_id", q->id,
			    "attempts", (int)q->attempts);
		next = -1;
	} else if (any_tried) {
		q->next_try = next == SCHED_NEVER ? QFILE_NEVER : (next + 999) / 1000;
		if (qfile_save(q, s->spool_fd) == -1)
			log_event(LOG_ERR, "spool_error", 0, "{s:s, s:s, s:s}", "op", "rewrite",
			    "queue_id", q->id, "error", strerror(errno));
		sched_collect_dests(s, q->env, q->rcpt, false, dests_r, ndests_r);
	} else {
		sched_collect_dests(s, q->env, q->rcpt, force, dests_r, ndests_r);
		next = *ndests_r > 0 ? now : SCHED_NEVER;
	}
	if (dsn_id[0] != '\0' || warn_id[0] != '\0') {
		pthread_mutex_lock(&s->lock);
		if (dsn_id[0] != '\0')
			sched_add(s, dsn_id);
		if (warn_id[0] != '\0')
			sched_add(s, warn_id);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	free(out);
	free(idx);
	free(res);
	qfile_close(q);
	return next;
}

/* Reads an unloaded entry's envelope: its destinations and due time. */
static long long
sched_load(
    struct scheduler *s, const char *id, bool force, bool fresh, char ***dests_r, size_t *n_r)
{
	struct spool_msg m;
	const char *errstr = "cannot read";
	struct qfile_rcpt *rs;
	unsigned attempts;
	long long next_try, due;
	int fd;

	*dests_r = NULL;
	*n_r = 0;
	fd = spool_msg_open(s->spool_fd, SPOOL_QUEUE, id);
	if (fd == -1)
		return errno == ENOENT ? -1 : sched_now_ms() + SCHED_LOCKED_RETRY_MS;
	if (spool_read_envelope(fd, &m, &errstr) == -1) {
		close(fd);
		log_event(
		    LOG_ERR, "delivery_error", 0, "{s:s, s:s}", "queue_id", id, "error", errstr);
		return SCHED_NEVER;
	}
	close(fd);
	rs = xcalloc(m.env->nrcpts, sizeof(*rs));
	qfile_parse_state(m.env, &attempts, &next_try, NULL, rs);
	sched_collect_dests(s, m.env, rs, force, dests_r, n_r);
	for (size_t i = 0; i < m.env->nrcpts; i++) {
		/* said once per load (start-up, commit, flush): it waits for a
		 * configuration with a route for it */
		if (sched_rcpt_is_open(rs[i].state, force) &&
		    conf_route_for(s->conf, sched_domain(m.env->rcpts[i])) == NULL)
			log_event(LOG_WARNING, "delivery_no_route", 0, "{s:s, s:s}", "queue_id", id,
			    "rcpt", m.env->rcpts[i]);
	}
	if (*n_r == 0)
		due = SCHED_NEVER;
	else if (force || fresh || next_try == 0)
		due = 0;
	else if (next_try == QFILE_NEVER)
		due = SCHED_NEVER;
	else
		due = next_try * 1000;
	for (size_t i = 0; i < m.env->nrcpts; i++)
		free(rs[i].text);
	free(rs);
	spool_msg_clear(&m);
	return due;
}

/* The inode change time of queue/ID in ns (0: none). */
static long long
sched_stamp(struct scheduler *s, const char *id)
{
	struct stat st;

	if (spool_msg_stat(s->spool_fd, SPOOL_QUEUE, id, &st) == -1)
		return 0;
	return (long long)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

/* Loads entry e (unloaded, not running) with the lock held, dropping it
 * while the envelope is read. e is gone from the list when the message is. */
static void
sched_load_entry(struct scheduler *s, struct sched_entry *e)
{
	char id[QUEUE_ID_MAX];
	char **dests = NULL;
	size_t ndests = 0;
	bool force = e->force, fresh = e->fresh;
	long long due, stamp;

	snprintf(id, sizeof(id), "%s", e->id);
	e->running = true;
	pthread_mutex_unlock(&s->lock);
	due = sched_load(s, id, force, fresh, &dests, &ndests);
	stamp = sched_stamp(s, id);
	pthread_mutex_lock(&s->lock);
	e->stamp = stamp;
	e->running = false;
	if (due == -1) {
		sched_remove(s, e);
		return;
	}
	sched_entry_free_dests(e);
	e->dests = dests;
	e->ndests = ndests;
	e->loaded = true;
	e->fresh = false;
	e->due = due;
}

/* --- workers -------------------------------------------------------------------- */

static unsigned sched_dest_limit(struct scheduler *s, const char *key);

/* Whether every destination of e has a free slot. */
static bool
sched_slots_free(struct scheduler *s, struct sched_entry *e)
{
	for (size_t i = 0; i < e->ndests; i++) {
		struct sched_dest *d = sched_dest(s, e->dests[i], sched_dest_limit(s, e->dests[i]));

		if (d->active >= d->limit)
			return false;
	}
	return true;
}

static unsigned
sched_dest_limit(struct scheduler *s, const char *key)
{
	/* "smarthost H:P" / "lmtp X" / "mx DOMAIN": the limit of the route */
	if (strncmp(key, "mx ", 3) == 0) {
		const struct conf_route *r = conf_route_for(s->conf, key + 3);

		return r != NULL ? r->concurrency : 1;
	}
	for (size_t i = 0; i <= s->conf->nroutes; i++) {
		const struct conf_route *r =
		    i < s->conf->nroutes ? s->conf->routes[i] : s->conf->relay;
		char k[SCHED_DEST_KEY_MAX];

		if (r == NULL || r->kind == CONF_ROUTE_MX)
			continue;
		if (r->kind == CONF_ROUTE_SMARTHOST)
			snprintf(k, sizeof(k), "smarthost %s:%s", r->host, r->port);
		else if (r->unix_path != NULL)
			snprintf(k, sizeof(k), "lmtp %s", r->unix_path);
		else
			snprintf(k, sizeof(k), "lmtp %s:%s", r->host, r->port);
		if (strcmp(k, key) == 0)
			return r->concurrency;
	}
	return 1;
}

static void
sched_reserve(struct scheduler *s, struct sched_entry *e, int delta)
{
	for (size_t i = 0; i < e->ndests; i++) {
		struct sched_dest *d = sched_dest(s, e->dests[i], sched_dest_limit(s, e->dests[i]));

		d->active = (unsigned)((int)d->active + delta);
	}
}

/* A due entry whose only destination is key (marked running), or NULL:
 * the next message for a worker's open session, in the slot it holds.
 * Called with the lock held; may drop it to load entries. */
static struct sched_entry *
sched_pick_same(struct scheduler *s, const char *key)
{
	for (unsigned loads = 0; !s->stopping;) {
		long long now = sched_now_ms();
		struct sched_entry *unloaded = NULL;

		for (size_t i = 0; i < s->n; i++) {
			struct sched_entry *e = s->v[i];

			if (e->running || e->gone || e->due > now)
				continue;
			if (!e->loaded) {
				if (unloaded == NULL)
					unloaded = e;
				continue;
			}
			if (e->ndests != 1 || strcmp(e->dests[0], key) != 0)
				continue;
			e->running = true;
			return e;
		}
		/* new commits come in unloaded: read a few to find one for
		 * this destination (the others are then ready for any worker) */
		if (unloaded == NULL || loads++ >= SCHED_REUSE_LOADS_MAX)
			return NULL;
		sched_load_entry(s, unloaded);
	}
	return NULL;
}

/* The next entry to work on (marked running), or NULL; *wake_r: the
 * earliest due time of entries that only wait for their time. */
static struct sched_entry *
sched_pick(struct scheduler *s, long long now, long long *wake_r)
{
	*wake_r = SCHED_NEVER;
	for (size_t i = 0; i < s->n; i++) {
		struct sched_entry *e = s->v[i];

		if (e->running || e->gone)
			continue;
		if (e->due > now) {
			if (e->due < *wake_r)
				*wake_r = e->due;
			continue;
		}
		if (!e->loaded) {
			e->running = true;
			return e;
		}
		if (!sched_slots_free(s, e))
			continue; /* woken when a slot frees */
		sched_reserve(s, e, +1);
		e->running = true;
		return e;
	}
	return NULL;
}

static void *
sched_worker_main(void *arg)
{
	struct scheduler *s = arg;
	/* the session left open by the last delivery, and the entry taken to
	 * go over it next (its destination's slot is still held) */
	struct deliver_conn *dc = deliver_conn_new();
	struct sched_entry *next = NULL;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		long long now = sched_now_ms(), wake = SCHED_NEVER, due;
		struct sched_entry *e = next != NULL ? next : sched_pick(s, now, &wake);
		char **dests = NULL, **reserved;
		size_t ndests = 0, nreserved;
		bool force;
		char id[QUEUE_ID_MAX];
		long long stamp;

		if (e == NULL) {
			struct timespec ts;
			long long until =
			    wake == SCHED_NEVER || wake > now + 60000 ? now + 60000 : wake;

			ts.tv_sec = (time_t)(until / 1000);
			ts.tv_nsec = (long)(until % 1000) * 1000000;
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
			continue;
		}
		if (!e->loaded) {
			sched_load_entry(s, e);
			continue;
		}
		snprintf(id, sizeof(id), "%s", e->id);
		force = e->force;
		reserved = e->dests;
		nreserved = e->ndests;
		e->dests = NULL;
		e->ndests = 0;
		e->force = false;
		pthread_mutex_unlock(&s->lock);
		next = NULL;
		due = sched_attempt(s, dc, id, force, reserved, nreserved, &dests, &ndests);
		stamp = sched_stamp(s, id);
		pthread_mutex_lock(&s->lock);
		e->stamp = stamp;
		e->running = false;
		if (due == -1) {
			sched_remove(s, e);
		} else {
			sched_entry_free_dests(e);
			e->dests = dests;
			e->ndests = ndests;
			/* a flush that came during the attempt still applies */
			e->due = e->force ? 0 : due;
			if (e->force)
				e->loaded = false;
		}
		/* connection reuse: the next due message for the same single
		 * destination goes over the open session, in the same slot */
		if (deliver_conn_is_open(dc) && nreserved == 1)
			next = sched_pick_same(s, reserved[0]);
		if (next == NULL && deliver_conn_is_open(dc)) {
			pthread_mutex_unlock(&s->lock);
			deliver_conn_close(dc); /* QUIT before the slot is free */
			pthread_mutex_lock(&s->lock);
		}
		/* free the slots taken in sched_pick (kept for next) */
		{
			struct sched_entry tmp = {.dests = reserved, .ndests = nreserved};

			if (next == NULL)
				sched_reserve(s, &tmp, -1);
			sched_entry_free_dests(&tmp);
		}
		pthread_cond_broadcast(&s->cond);
	}
	if (next != NULL) {
		next->running = false;
		sched_reserve(s, next, -1);
	}
	pthread_mutex_unlock(&s->lock);
	deliver_conn_free(dc);
	return NULL;
}

/* --- scanning ------------------------------------------------------------------- */

static void
sched_scan(struct scheduler *s, bool flush, bool initial)
{
	char **ids = NULL;
	size_t n = 0;
	long long *stamps;
	unsigned long long gen;

	/* a message committed while queue/ is being listed is not in the
	 * listing but was added by scheduler_notify: it is not "gone" */
	pthread_mutex_lock(&s->lock);
	gen = ++s->scan_gen;
	pthread_mutex_unlock(&s->lock);
	if (spool_list(s->spool_fd, SPOOL_QUEUE, &ids, &n) == -1) {
		log_event(LOG_ERR, "spool_error", 0, "{s:s, s:s}", "op", "scan", "error",
		    strerror(errno));
		return;
	}
	stamps = xcalloc(n + 1, sizeof(*stamps));
	for (size_t i = 0; i < n; i++)
		stamps[i] = sched_stamp(s, ids[i]);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		s->v[i]->seen = false;
	for (size_t i = 0; i < n; i++) {
		bool found;
		struct sched_entry *e;

		(void)sched_find_pos(s, ids[i], &found);
		e = sched_add(s, ids[i]);
		/* a message released from hold/ (or put back by hand) goes now;
		 * held and released between two scans, its ctime changed */
		if (!initial && (!found || (!e->running && e->loaded && e->stamp != stamps[i]))) {
			e->fresh = true;
			e->loaded = false;
			e->due = 0;
		}

		e->seen = true;
	}
	for (size_t i = 0; i < s->n;) {
		struct sched_entry *e = s->v[i];

		/* deleted or held by the CLI: forget it */
		if (!e->seen && !e->running && e->gen < gen) {
			sched_remove(s, e);
			continue;
		}
		if (flush) {
			e->force = true;
			if (!e->running) {
				e->due = 0;
				e->loaded = false; /* held recipients count again */
			}
		}
		i++;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (flush)
		log_event(LOG_NOTICE, "queue_flush", 0, "{s:i}", "messages", (int)n);
	spool_list_free(ids, n);
	free(stamps);
}

static void *
sched_scanner_main(void *arg)
{
	struct scheduler *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts;
		bool flush;

		if (!s->rescan && !s->flush) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += SCHED_RESCAN_S;
			if (pthread_cond_timedwait(&s->scan_cond, &s->lock, &ts) == 0 &&
			    !s->rescan && !s->flush)
				continue;
			if (s->stopping)
				break;
		}
		flush = s->flush;
		s->rescan = s->flush = false;
		pthread_mutex_unlock(&s->lock);
		sched_scan(s, flush, false);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- life cycle ------------------------------------------------------------------- */

static void
sched_route_mx(struct scheduler *s, const struct conf_route *r)
{
	struct route_mx_conf rc;
	struct route_mx *mx;
	char err[512], *sts_dir;

	memset(&rc, 0, sizeof(rc));
	rc.resolver = r->resolver;
	rc.dnssec_anchor = r->dnssec_anchor;
	rc.port = r->mx_port;
	rc.no_dane = r->no_dane;
	rc.no_mta_sts = r->no_mta_sts;
	rc.cafile = r->ca;
	rc.sts_port = r->mta_sts_port;
	rc.helo = s->conf->hostname;
	rc.timeout_ms = (int)(r->timeout > 3600 ? 3600000 : r->timeout * 1000);
	/* MTA-STS policies survive restarts (RFC 8461 5.1); doc/spool.md */
	sts_dir = spool_path(s->spool, SPOOL_MTA_STS);
	rc.sts_cache_dir = sts_dir;
	mx = route_mx_new(&rc, err, sizeof(err));
	free(sts_dir);
	if (mx == NULL) {
		log_event(LOG_ERR, "relay_config", 0, "{s:s, s:s}", "route",
		    r->domain != NULL ? r->domain : "[relay]", "error", err);
		return;
	}
	s->mx_routes = xrealloc(s->mx_routes, (s->nmx + 1) * sizeof(*s->mx_routes));
	s->mx = xrealloc(s->mx, (s->nmx + 1) * sizeof(*s->mx));
	s->mx_routes[s->nmx] = r;
	s->mx[s->nmx++] = mx;
}

struct scheduler *
scheduler_new(const struct conf *c, char *err, size_t errlen)
{
	struct scheduler *s = xcalloc(1, sizeof(*s));
	unsigned workers = 0;

	s->conf = c;
	s->spool = xstrdup(c->spool);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->scan_cond, NULL);
	s->spool_fd = spool_open(s->spool);
	if (s->spool_fd == -1) {
		snprintf(err, errlen, "spool %s: %s", s->spool, strerror(errno));
		scheduler_free(s, 0);
		return NULL;
	}
	s->creds = creds_new();
	for (size_t i = 0; i <= c->nroutes; i++) {
		const struct conf_route *r = i < c->nroutes ? c->routes[i] : c->relay;

		if (r == NULL)
			continue;
		workers += r->concurrency;
		if (r->kind == CONF_ROUTE_MX)
			sched_route_mx(s, r);
	}
	s->dctx.helo = c->hostname;
	s->dctx.conf = c;
	s->dctx.creds = s->creds;
	s->dctx.mx_for = sched_mx_for;
	s->dctx.mx_arg = s;
	s->nworkers = workers < 2 ? 2 : workers > SCHED_WORKERS_MAX ? SCHED_WORKERS_MAX : workers;
	s->workers = xcalloc(s->nworkers, sizeof(*s->workers));
	/* the pid, so `smtpgate queue flush|release` can signal this server */
	if (spool_pid_write(s->spool) == -1)
		log_event(LOG_WARNING, "spool_error", 0, "{s:s, s:s}", "op", "pid file", "error",
		    strerror(errno));
	return s;
}

int
scheduler_start(struct scheduler *s, char *err, size_t errlen)
{
	sched_scan(s, false, true);
	for (size_t i = 0; i < s->nworkers; i++) {
		if ((errno = pthread_create(&s->workers[i], NULL, sched_worker_main, s)) != 0) {
			snprintf(err, errlen, "cannot start delivery workers: %s", strerror(errno));
			return -1;
		}
		s->nworkers_started++;
	}
	if ((errno = pthread_create(&s->scanner, NULL, sched_scanner_main, s)) != 0) {
		snprintf(err, errlen, "cannot start the queue scanner: %s", strerror(errno));
		return -1;
	}
	s->scanner_started = true;
	log_event(LOG_INFO, "scheduler_start", 0, "{s:i, s:i}", "workers", (int)s->nworkers,
	    "queued", (int)s->n);
	return 0;
}

void
scheduler_notify(void *arg, const char *queue_id)
{
	struct scheduler *s = arg;

	pthread_mutex_lock(&s->lock);
	sched_add(s, queue_id);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void
scheduler_rescan(struct scheduler *s)
{
	pthread_mutex_lock(&s->lock);
	s->rescan = true;
	pthread_cond_signal(&s->scan_cond);
	pthread_mutex_unlock(&s->lock);
}

void
scheduler_flush(struct scheduler *s)
{
	pthread_mutex_lock(&s->lock);
	s->flush = true;
	pthread_cond_signal(&s->scan_cond);
	pthread_mutex_unlock(&s->lock);
}

void
scheduler_free(struct scheduler *s, unsigned grace)
{
	struct timespec ts;
	bool cancelled = false;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_cond_broadcast(&s->scan_cond);
	pthread_mutex_unlock(&s->lock);
	if (s->scanner_started)
		pthread_join(s->scanner, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += grace;
	for (size_t i = 0; i < s->nworkers_started; i++) {
		if (pthread_timedjoin_np(s->workers[i], NULL, &ts) == 0)
			continue;
		/* a delivery stuck in a slow peer: its message stays queued
		 * (locks go with the descriptors) and is retried after restart */
		pthread_cancel(s->workers[i]);
		pthread_join(s->workers[i], NULL);
		cancelled = true;
	}
	if (cancelled)
		log_event(LOG_WARNING, "scheduler_stop", 0, "{s:s}", "note",
		    "deliveries still running were abandoned; they are retried after restart");
	for (size_t i = 0; i < s->nmx; i++)
		route_mx_free(s->mx[i]);
	free(s->mx);
	free(s->mx_routes);
	creds_free(s->creds);
	for (size_t i = 0; i < s->n; i++) {
		sched_entry_free_dests(s->v[i]);
		free(s->v[i]);
	}
	free(s->v);
	for (size_t i = 0; i < s->ndests; i++)
		free(s->dests[i].key);
	free(s->dests);
	free(s->workers);
	spool_pid_remove(s->spool);
	if (s->spool_fd != -1)
		close(s->spool_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->scan_cond);
	free(s->spool);
	free(s);
}
