/*
 * scheduler: the delivery queue runner (scheduler.h); what one attempt does
 * to one message is scheduler_attempt.c's.
 *
 * State: one entry per message of queue/ (sorted by id, so by arrival),
 * with its due time (ms since the epoch, SCHEDULER_NEVER when only held or
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "relay/creds.h"
#include "relay/deliver.h"
#include "relay/route_mx.h"
#include "relay/scheduler_priv.h"

#define SCHEDULER_REUSE_LOADS_MAX 16 /* envelopes read to find the next message for a session */

long long
scheduler_now_ms(void)
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
scheduler_find_pos(struct scheduler *s, const char *id, bool *found_r)
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
scheduler_entry_free_dests(struct scheduler_entry *e)
{
	for (size_t i = 0; i < e->ndests; i++)
		free(e->dests[i]);
	free(e->dests);
	e->dests = NULL;
	e->ndests = 0;
}

/* Adds id (unloaded, due now) unless present; returns the entry. */
struct scheduler_entry *
scheduler_add(struct scheduler *s, const char *id)
{
	bool found;
	size_t pos = scheduler_find_pos(s, id, &found);
	struct scheduler_entry *e;

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
scheduler_remove(struct scheduler *s, struct scheduler_entry *e)
{
	bool found;
	size_t pos = scheduler_find_pos(s, e->id, &found);

	if (!found || s->v[pos] != e)
		return;
	memmove(&s->v[pos], &s->v[pos + 1], (s->n - pos - 1) * sizeof(*s->v));
	s->n--;
	scheduler_entry_free_dests(e);
	free(e);
}

static struct scheduler_dest *
scheduler_dest_get(struct scheduler *s, const char *key, unsigned limit)
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

/* deliver's hook: the MX router of route r. */
static struct route_mx *
scheduler_mx_for(void *arg, const struct conf_route *r)
{
	struct scheduler *s = arg;

	for (size_t i = 0; i < s->nmx; i++) {
		if (s->mx_routes[i] == r)
			return s->mx[i];
	}
	return NULL;
}

/* --- loading (lock held; dropped while reading) ---------------------------------- */

/* The inode change time of queue/ID in ns (0: none). */
static long long
scheduler_stamp(struct scheduler *s, const char *id)
{
	struct stat st;

	if (spool_msg_stat(s->spool_fd, SPOOL_QUEUE, id, &st) == -1)
		return 0;
	return (long long)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

/* Loads entry e (unloaded, not running) with the lock held, dropping it
 * while the envelope is read. e is gone from the list when the message is. */
static void
scheduler_load_entry(struct scheduler *s, struct scheduler_entry *e)
{
	char id[QUEUE_ID_MAX];
	char **dests = NULL;
	size_t ndests = 0;
	bool force = e->force, fresh = e->fresh;
	long long due, stamp;

	snprintf(id, sizeof(id), "%s", e->id);
	e->running = true;
	pthread_mutex_unlock(&s->lock);
	due = scheduler_attempt_load(s, id, force, fresh, &dests, &ndests);
	stamp = scheduler_stamp(s, id);
	pthread_mutex_lock(&s->lock);
	e->stamp = stamp;
	e->running = false;
	if (due == -1) {
		scheduler_remove(s, e);
		return;
	}
	scheduler_entry_free_dests(e);
	e->dests = dests;
	e->ndests = ndests;
	e->loaded = true;
	e->fresh = false;
	e->due = due;
}

/* --- workers -------------------------------------------------------------------- */

static unsigned scheduler_dest_limit(struct scheduler *s, const char *key);

/* Whether every destination of e has a free slot. */
static bool
scheduler_slots_free(struct scheduler *s, struct scheduler_entry *e)
{
	for (size_t i = 0; i < e->ndests; i++) {
		struct scheduler_dest *d =
		    scheduler_dest_get(s, e->dests[i], scheduler_dest_limit(s, e->dests[i]));

		if (d->active >= d->limit)
			return false;
	}
	return true;
}

static unsigned
scheduler_dest_limit(struct scheduler *s, const char *key)
{
	/* "smarthost H:P" / "lmtp X" / "mx DOMAIN": the limit of the route */
	if (strncmp(key, "mx ", 3) == 0) {
		const struct conf_route *r = conf_route_for(s->conf, key + 3);

		return r != NULL ? r->concurrency : 1;
	}
	for (size_t i = 0; i <= s->conf->nroutes; i++) {
		const struct conf_route *r =
		    i < s->conf->nroutes ? s->conf->routes[i] : s->conf->relay;
		char k[SCHEDULER_DEST_KEY_MAX];

		if (r == NULL || r->kind == CONF_ROUTE_MX)
			continue;
		scheduler_attempt_route_key(r, "", k, sizeof(k));
		if (strcmp(k, key) == 0)
			return r->concurrency;
	}
	return 1;
}

static void
scheduler_reserve(struct scheduler *s, struct scheduler_entry *e, int delta)
{
	for (size_t i = 0; i < e->ndests; i++) {
		struct scheduler_dest *d =
		    scheduler_dest_get(s, e->dests[i], scheduler_dest_limit(s, e->dests[i]));

		d->active = (unsigned)((int)d->active + delta);
	}
}

/* A due entry whose only destination is key (marked running), or NULL:
 * the next message for a worker's open session, in the slot it holds.
 * Called with the lock held; may drop it to load entries. */
static struct scheduler_entry *
scheduler_pick_same(struct scheduler *s, const char *key)
{
	for (unsigned loads = 0; !s->stopping;) {
		long long now = scheduler_now_ms();
		struct scheduler_entry *unloaded = NULL;

		for (size_t i = 0; i < s->n; i++) {
			struct scheduler_entry *e = s->v[i];

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
		if (unloaded == NULL || loads++ >= SCHEDULER_REUSE_LOADS_MAX)
			return NULL;
		scheduler_load_entry(s, unloaded);
	}
	return NULL;
}

/* The next entry to work on (marked running), or NULL; *wake_r: the
 * earliest due time of entries that only wait for their time. */
static struct scheduler_entry *
scheduler_pick(struct scheduler *s, long long now, long long *wake_r)
{
	*wake_r = SCHEDULER_NEVER;
	for (size_t i = 0; i < s->n; i++) {
		struct scheduler_entry *e = s->v[i];

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
		if (!scheduler_slots_free(s, e))
			continue; /* woken when a slot frees */
		scheduler_reserve(s, e, +1);
		e->running = true;
		return e;
	}
	return NULL;
}

static void *
scheduler_worker_main(void *arg)
{
	struct scheduler *s = arg;
	/* the session left open by the last delivery, and the entry taken to
	 * go over it next (its destination's slot is still held) */
	struct deliver_conn *dc = deliver_conn_new();
	struct scheduler_entry *next = NULL;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		long long now = scheduler_now_ms(), wake = SCHEDULER_NEVER, due;
		struct scheduler_entry *e = next != NULL ? next : scheduler_pick(s, now, &wake);
		char **dests = NULL, **reserved;
		size_t ndests = 0, nreserved;
		bool force;
		char id[QUEUE_ID_MAX];
		long long stamp;

		if (e == NULL) {
			struct timespec ts;
			long long until =
			    wake == SCHEDULER_NEVER || wake > now + 60000 ? now + 60000 : wake;

			ts.tv_sec = (time_t)(until / 1000);
			ts.tv_nsec = (long)(until % 1000) * 1000000;
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
			continue;
		}
		if (!e->loaded) {
			scheduler_load_entry(s, e);
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
		due = scheduler_attempt(s, dc, id, force, reserved, nreserved, &dests, &ndests);
		stamp = scheduler_stamp(s, id);
		pthread_mutex_lock(&s->lock);
		e->stamp = stamp;
		e->running = false;
		if (due == -1) {
			scheduler_remove(s, e);
		} else {
			scheduler_entry_free_dests(e);
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
			next = scheduler_pick_same(s, reserved[0]);
		if (next == NULL && deliver_conn_is_open(dc)) {
			pthread_mutex_unlock(&s->lock);
			deliver_conn_close(dc); /* QUIT before the slot is free */
			pthread_mutex_lock(&s->lock);
		}
		/* free the slots taken in scheduler_pick (kept for next) */
		{
			struct scheduler_entry tmp = {.dests = reserved, .ndests = nreserved};

			if (next == NULL)
				scheduler_reserve(s, &tmp, -1);
			scheduler_entry_free_dests(&tmp);
		}
		pthread_cond_broadcast(&s->cond);
	}
	if (next != NULL) {
		next->running = false;
		scheduler_reserve(s, next, -1);
	}
	pthread_mutex_unlock(&s->lock);
	deliver_conn_free(dc);
	return NULL;
}

/* --- scanning ------------------------------------------------------------------- */

static void
scheduler_scan(struct scheduler *s, bool flush, bool initial)
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
		stamps[i] = scheduler_stamp(s, ids[i]);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		s->v[i]->seen = false;
	for (size_t i = 0; i < n; i++) {
		bool found;
		struct scheduler_entry *e;

		(void)scheduler_find_pos(s, ids[i], &found);
		e = scheduler_add(s, ids[i]);
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
		struct scheduler_entry *e = s->v[i];

		/* deleted or held by the CLI: forget it */
		if (!e->seen && !e->running && e->gen < gen) {
			scheduler_remove(s, e);
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
scheduler_scanner_main(void *arg)
{
	struct scheduler *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts;
		bool flush;

		if (!s->rescan && !s->flush) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += SCHEDULER_RESCAN_S;
			if (pthread_cond_timedwait(&s->scan_cond, &s->lock, &ts) == 0 &&
			    !s->rescan && !s->flush)
				continue;
			if (s->stopping)
				break;
		}
		flush = s->flush;
		s->rescan = s->flush = false;
		pthread_mutex_unlock(&s->lock);
		scheduler_scan(s, flush, false);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- life cycle ------------------------------------------------------------------- */

static void
scheduler_route_mx(struct scheduler *s, const struct conf_route *r)
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
			scheduler_route_mx(s, r);
	}
	s->dctx.helo = c->hostname;
	s->dctx.conf = c;
	s->dctx.creds = s->creds;
	s->dctx.mx_for = scheduler_mx_for;
	s->dctx.mx_arg = s;
	s->nworkers = workers < 2             ? 2
	    : workers > SCHEDULER_WORKERS_MAX ? SCHEDULER_WORKERS_MAX
	                                      : workers;
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
	scheduler_scan(s, false, true);
	for (size_t i = 0; i < s->nworkers; i++) {
		if ((errno = pthread_create(&s->workers[i], NULL, scheduler_worker_main, s)) != 0) {
			snprintf(err, errlen, "cannot start delivery workers: %s", strerror(errno));
			return -1;
		}
		s->nworkers_started++;
	}
	if ((errno = pthread_create(&s->scanner, NULL, scheduler_scanner_main, s)) != 0) {
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
	scheduler_add(s, queue_id);
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
		scheduler_entry_free_dests(s->v[i]);
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
