/*
 * obs: the server's metric families, the series caches of the hot path,
 * and the /metrics and /healthz handlers (obs.h).
 *
 * Series caches: a family with label values from a small, closed set
 * (reply codes, mechanism names, TLS versions, results) keeps a fixed array
 * of published entries. A writer fills an entry under the cache mutex and
 * publishes it with a release store of its ready flag; readers scan the
 * ready entries with acquire loads and never lock. A cache that is full
 * falls back to metrics_series (a mutex), which only a bug could cause.
 *
 * /healthz runs on the admin thread: it writes and removes a file in the
 * spool, then posts a ping to every loop and waits up to OBS_PING_MS for all
 * of them. The ping is reference counted, so a loop that answers after the
 * deadline frees nothing twice.
 */
#include "server/obs.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "net/loop.h"
#include "queue/spool.h"
#include "server/server.h"

#define OBS_CACHE 48
#define OBS_VALUE_MAX 32
#define OBS_PING_MS 2000

struct obs_entry {
	int ready; /* atomic: 1 once the entry is published */
	char v[2][OBS_VALUE_MAX];
	int series;
};

struct obs_cache {
	pthread_mutex_t lock; /* writers only */
	struct obs_entry e[OBS_CACHE];
	int n; /* atomic */
};

struct obs {
	struct metrics *m;
	int connections, open, accepted, latency, bans;
	int queue_fam, oldest;
	int f_replies, f_auth, f_tls, f_quota, f_proxy, f_child, f_check;
	int replies[600]; /* atomic: series + 1 by code, 0 = not yet */
	struct obs_cache auth, tls, quota, proxy, child, check;
	struct server *srv;
};

static const double obs_latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
/* from a few tens of microseconds (the round trip with a cheap hash) to the
 * 30 s an answer may take (authc.h) */
static const double obs_check_buckets[] = {0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.00025,
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct obs *
obs_new(void)
{
	struct obs *o = xcalloc(1, sizeof(*o));
	struct metrics *m = metrics_new();

	o->m = m;
	/* registration order is the order of /metrics */
	o->connections = metrics_series0(m,
	    metrics_family(m, "smtpgate_connections_total", "SMTP connections accepted.",
	        METRICS_COUNTER, NULL, NULL, 0));
	o->open = metrics_series0(m,
	    metrics_family(m, "smtpgate_connections_open", "SMTP connections open now.",
	        METRICS_GAUGE, NULL, NULL, 0));
	o->f_replies = metrics_family(m, "smtpgate_replies_total",
	    "SMTP replies sent, by reply code.", METRICS_COUNTER, "code", NULL, 0);
	o->f_auth = metrics_family(m, "smtpgate_auth_attempts_total",
	    "AUTH exchanges finished, by mechanism and result (ok, fail, tempfail, aborted).",
	    METRICS_COUNTER, "mechanism,result", NULL, 0);
	o->f_tls = metrics_family(m, "smtpgate_tls_sessions_total",
	    "TLS handshakes completed, by protocol version.", METRICS_COUNTER, "version", NULL, 0);
	o->accepted = metrics_series0(m,
	    metrics_family(m, "smtpgate_messages_accepted_total",
	        "Messages accepted (durable, answered 250).", METRICS_COUNTER, NULL, NULL, 0));
	o->latency = metrics_series0(m,
	    metrics_family(m, "smtpgate_commit_latency_seconds",
	        "Time from handing a message to the queue to its durable answer.",
	        METRICS_HISTOGRAM, NULL, obs_latency_buckets,
	        sizeof(obs_latency_buckets) / sizeof(obs_latency_buckets[0])));
	o->f_check = metrics_family(m, "smtpgate_auth_check_seconds",
	    "Time from sending a credential check to smtpgate-auth to its answer (the hash and "
	    "the backend included), by request (plain, sasl, token).",
	    METRICS_HISTOGRAM, "request", obs_check_buckets,
	    sizeof(obs_check_buckets) / sizeof(obs_check_buckets[0]));
	o->f_quota = metrics_family(m, "smtpgate_quota_exceeded_total",
	    "Accounts put on hold for going over a sending quota, by limit.", METRICS_COUNTER,
	    "limit", NULL, 0);
	o->f_proxy = metrics_family(m, "smtpgate_proxy_rejects_total",
	    "Connections closed in the PROXY protocol step, by reason (not_allowed, malformed, "
	    "timeout, closed).",
	    METRICS_COUNTER, "reason", NULL, 0);
	o->f_child = metrics_family(m, "smtpgate_child_exits_total",
	    "Child processes (auth, relay) that ended and were restarted, by process.",
	    METRICS_COUNTER, "process", NULL, 0);
	o->bans = metrics_series0(m,
	    metrics_family(m, "smtpgate_bans_active", "Client addresses or networks banned now.",
	        METRICS_GAUGE, NULL, NULL, 0));
	o->queue_fam = metrics_family(m, "smtpgate_queue_messages",
	    "Messages in the spool, by state (queued, held).", METRICS_GAUGE, "state", NULL, 0);
	o->oldest = metrics_series0(m,
	    metrics_family(m, "smtpgate_queue_oldest_age_seconds",
	        "Age of the oldest queued message (0 when none).", METRICS_GAUGE, NULL, NULL, 0));
	pthread_mutex_init(&o->auth.lock, NULL);
	pthread_mutex_init(&o->tls.lock, NULL);
	pthread_mutex_init(&o->quota.lock, NULL);
	pthread_mutex_init(&o->proxy.lock, NULL);
	pthread_mutex_init(&o->child.lock, NULL);
	pthread_mutex_init(&o->check.lock, NULL);
	return o;
}

void
obs_free(struct obs *o)
{
	if (o == NULL)
		return;
	metrics_free(o->m);
	pthread_mutex_destroy(&o->auth.lock);
	pthread_mutex_destroy(&o->tls.lock);
	pthread_mutex_destroy(&o->quota.lock);
	pthread_mutex_destroy(&o->proxy.lock);
	pthread_mutex_destroy(&o->child.lock);
	pthread_mutex_destroy(&o->check.lock);
	free(o);
}

static int
obs_cache_find(struct obs_cache *c, const char *a, const char *b)
{
	int n = __atomic_load_n(&c->n, __ATOMIC_ACQUIRE);

	for (int i = 0; i < n; i++) {
		const struct obs_entry *e = &c->e[i];

		if (__atomic_load_n(&e->ready, __ATOMIC_ACQUIRE) && strcmp(e->v[0], a) == 0 &&
		    strcmp(e->v[1], b) == 0)
			return e->series;
	}
	return -2;
}

/* The series of (a[, b]) in family fam; b is "" for one-label families. */
static int
obs_cache_series(struct obs *o, struct obs_cache *c, int fam, const char *a, const char *b)
{
	const char *values[2] = {a, b};
	int id = obs_cache_find(c, a, b), n;

	if (id != -2)
		return id;
	if (strlen(a) >= OBS_VALUE_MAX || strlen(b) >= OBS_VALUE_MAX)
		return metrics_series(o->m, fam, values);
	pthread_mutex_lock(&c->lock);
	id = obs_cache_find(c, a, b); /* another thread may have added it */
	if (id == -2) {
		id = metrics_series(o->m, fam, values);
		n = __atomic_load_n(&c->n, __ATOMIC_RELAXED);
		if (n < OBS_CACHE) {
			struct obs_entry *e = &c->e[n];

			snprintf(e->v[0], sizeof(e->v[0]), "%s", a);
			snprintf(e->v[1], sizeof(e->v[1]), "%s", b);
			e->series = id;
			__atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
			__atomic_store_n(&c->n, n + 1, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return id;
}

void
obs_connection_open(struct obs *o)
{
	if (o == NULL)
		return;
	metrics_inc(o->m, o->connections);
	metrics_gauge_add(o->m, o->open, 1);
}

void
obs_connection_close(struct obs *o)
{
	if (o != NULL)
		metrics_gauge_add(o->m, o->open, -1);
}

void
obs_reply(struct obs *o, int code)
{
	int id;

	if (o == NULL || code < 100 || code > 599)
		return;
	id = __atomic_load_n(&o->replies[code], __ATOMIC_ACQUIRE) - 1;
	if (id < 0) {
		char v[8];
		const char *values[] = {v};

		snprintf(v, sizeof(v), "%d", code);
		id = metrics_series(o->m, o->f_replies, values); /* finds it if it exists */
		__atomic_store_n(&o->replies[code], id + 1, __ATOMIC_RELEASE);
	}
	metrics_inc(o->m, id);
}

void
obs_auth(struct obs *o, const char *mechanism, const char *result)
{
	if (o == NULL)
		return;
	if (mechanism == NULL || mechanism[0] == '\0')
		mechanism = "none";
	metrics_inc(o->m, obs_cache_series(o, &o->auth, o->f_auth, mechanism, result));
}

void
obs_tls(struct obs *o, const char *version)
{
	if (o != NULL)
		metrics_inc(o->m, obs_cache_series(o, &o->tls, o->f_tls, version, ""));
}

void
obs_accepted(struct obs *o)
{
	if (o != NULL)
		metrics_inc(o->m, o->accepted);
}

void
obs_commit_latency(struct obs *o, double seconds)
{
	if (o != NULL)
		metrics_observe(o->m, o->latency, seconds);
}

void
obs_auth_check(struct obs *o, const char *request, double seconds)
{
	if (o != NULL)
		metrics_observe(
		    o->m, obs_cache_series(o, &o->check, o->f_check, request, ""), seconds);
}

void
obs_quota_exceeded(struct obs *o, const char *limit)
{
	if (o != NULL)
		metrics_inc(o->m, obs_cache_series(o, &o->quota, o->f_quota, limit, ""));
}

void
obs_proxy_reject(struct obs *o, const char *reason)
{
	if (o != NULL)
		metrics_inc(o->m, obs_cache_series(o, &o->proxy, o->f_proxy, reason, ""));
}

void
obs_child_exit(struct obs *o, const char *process)
{
	if (o != NULL)
		metrics_inc(o->m, obs_cache_series(o, &o->child, o->f_child, process, ""));
}

void
obs_set_cluster_up(struct obs *o, metrics_gauge_cb *cb, void *arg)
{
	if (o == NULL)
		return;
	/* only with [cluster]: a single node has no such state */
	metrics_gauge_set_cb(o->m,
	    metrics_series0(o->m,
	        metrics_family(o->m, "smtpgate_cluster_up",
	            "1 when the state shared with the other nodes (Redis) is reachable, 0 when "
	            "this node decides from its local state alone.",
	            METRICS_GAUGE, NULL, NULL, 0)),
	    cb, arg);
}

void
obs_set_bans_active(struct obs *o, metrics_gauge_cb *cb, void *arg)
{
	if (o != NULL)
		metrics_gauge_set_cb(o->m, o->bans, cb, arg);
}

/* --- spool gauges ------------------------------------------------------------ */

struct obs_spool {
	size_t queued, held;
	double oldest; /* seconds */
};

static double
obs_spool_queued(void *arg)
{
	return (double)((struct obs_spool *)arg)->queued;
}

static double
obs_spool_held(void *arg)
{
	return (double)((struct obs_spool *)arg)->held;
}

static double
obs_spool_oldest(void *arg)
{
	return ((struct obs_spool *)arg)->oldest;
}

/* Counts queue/ and hold/ and finds the oldest in queue/ (ids sort by
 * arrival, so it is the first; its mtime is its commit). A scrape costs a
 * directory read: fine for the admin thread, never a loop. */
static void
obs_spool_scan(const char *spool, struct obs_spool *r)
{
	char **ids = NULL;
	size_t n = 0;
	struct stat st;
	int spool_fd = spool_open(spool);

	memset(r, 0, sizeof(*r));
	if (spool_fd == -1)
		return;
	if (spool_list(spool_fd, SPOOL_QUEUE, &ids, &n) == 0) {
		r->queued = n;
		for (size_t i = 0; i < n; i++) {
			if (spool_msg_stat(spool_fd, SPOOL_QUEUE, ids[i], &st) == 0) {
				double age = difftime(time(NULL), st.st_mtime);

				r->oldest = age > 0 ? age : 0;
				break;
			}
		}
		spool_list_free(ids, n);
	}
	if (spool_list(spool_fd, SPOOL_HOLD, &ids, &n) == 0) {
		r->held = n;
		spool_list_free(ids, n);
	}
	close(spool_fd);
}

/* --- /metrics ---------------------------------------------------------------- */

static int
obs_metrics_cb(void *arg, const char *method, const char *path, const char *query, const char *body,
    size_t bodylen, struct buf *out, const char **content_type_r)
{
	struct obs *o = arg;
	struct server_snap *snap;
	struct obs_spool sp;
	const char *queued[] = {"queued"}, *held[] = {"held"};
	int rc;

	if (strcmp(method, "GET") != 0)
		return buf_append_str(out, "GET only\n") == -1 ? 500 : 405;
	if (strcmp(path, "/metrics") != 0)
		return buf_append_str(out, "not found\n") == -1 ? 500 : 404;
	snap = server_snap_get(o->srv);
	obs_spool_scan(snap->conf->spool, &sp);
	server_snap_put(snap);
	/* the callbacks read sp during the render only, under the registry's
	 * mutex: admin requests are served one at a time on one thread */
	metrics_gauge_set_cb(
	    o->m, metrics_series(o->m, o->queue_fam, queued), obs_spool_queued, &sp);
	metrics_gauge_set_cb(o->m, metrics_series(o->m, o->queue_fam, held), obs_spool_held, &sp);
	metrics_gauge_set_cb(o->m, o->oldest, obs_spool_oldest, &sp);
	rc = metrics_render(o->m, out);
	metrics_gauge_set_cb(o->m, metrics_series(o->m, o->queue_fam, queued), NULL, NULL);
	metrics_gauge_set_cb(o->m, metrics_series(o->m, o->queue_fam, held), NULL, NULL);
	metrics_gauge_set_cb(o->m, o->oldest, NULL, NULL);
	if (rc == -1)
		return 500;
	*content_type_r = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}

/* --- /healthz ---------------------------------------------------------------- */

struct obs_ping {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t answered;
	size_t refs;
};

static void
obs_ping_put(struct obs_ping *p)
{
	bool last;

	pthread_mutex_lock(&p->lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p);
	}
}

static void
obs_ping_cb(void *arg)
{
	struct obs_ping *p = arg;

	pthread_mutex_lock(&p->lock);
	p->answered++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	obs_ping_put(p);
}

/* Whether every loop runs its mailbox within OBS_PING_MS. */
static bool
obs_loops_answer(struct server *srv)
{
	struct obs_ping *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;
	struct timespec deadline;
	bool ok;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->refs = srv->nworkers + 1;
	for (size_t i = 0; i < srv->nworkers; i++)
		loop_post(srv->workers[i]->loop, obs_ping_cb, p);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += OBS_PING_MS / 1000;
	deadline.tv_nsec += (long)(OBS_PING_MS % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	while (p->answered < srv->nworkers) {
		if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT)
			break;
	}
	ok = p->answered == srv->nworkers;
	pthread_mutex_unlock(&p->lock);
	obs_ping_put(p);
	return ok;
}

/* Whether a file can be created in the spool (full disk, read-only
 * remount and lost permissions all show here). */
static bool
obs_spool_writable(const char *spool, const char **why_r)
{
	int spool_fd = spool_open(spool);
	bool ok = spool_fd != -1 && spool_probe_writable(spool_fd, "") == 0;

	if (!ok)
		*why_r = strerror(errno);
	if (spool_fd != -1)
		close(spool_fd);
	return ok;
}

static int
obs_healthz_cb(void *arg, const char *method, const char *path, const char *query, const char *body,
    size_t bodylen, struct buf *out, const char **content_type_r)
{
	struct obs *o = arg;
	struct server *srv = o->srv;
	struct server_snap *snap;
	const char *why = NULL;
	bool ok;

	if (strcmp(method, "GET") != 0)
		return buf_append_str(out, "GET only\n") == -1 ? 500 : 405;
	if (strcmp(path, "/healthz") != 0)
		return buf_append_str(out, "not found\n") == -1 ? 500 : 404;
	if (__atomic_load_n(&srv->shutting_down, __ATOMIC_RELAXED)) {
		why = "shutting down";
	} else {
		snap = server_snap_get(srv);
		ok = obs_spool_writable(snap->conf->spool, &why);
		server_snap_put(snap);
		if (ok && !obs_loops_answer(srv))
			why = "an event loop does not answer";
	}
	if (why != NULL)
		return buf_printf(out, "unhealthy: %s\n", why) == -1 ? 500 : 503;
	return buf_append_str(out, "ok\n") == -1 ? 500 : 200;
}

void
obs_admin_routes(struct obs *o, struct admin *a, struct server *srv)
{
	o->srv = srv;
	/* scrapers and health probes usually have no token: GET stays open
	 * unless [admin] auth = all */
	admin_route(a, "/metrics", ADMIN_ROUTE_OPEN_GET, obs_metrics_cb, o);
	admin_route(a, "/healthz", ADMIN_ROUTE_OPEN_GET, obs_healthz_cb, o);
}
