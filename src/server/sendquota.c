/*
 * sendquota: quota decisions for sessions, and the sendquota thread that
 * does the slow parts off the loops (sendquota.h).
 *
 * The thread owns the state file. It handles, in order: hold jobs (move an
 * account's queued messages to hold/; each lock gets a second pass
 * SENDQUOTA_POLL_S later for a message whose commit was in flight), a save
 * of the locked set when it changed, then a look at the file: when someone
 * else changed it, users removed from it since the thread last read or
 * wrote it are unlocked and users added are locked. `known` is that last
 * content, so a lock taken by a loop a moment before is never mistaken for
 * a removal.
 */
#include "server/sendquota.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cluster/cluster.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "policy/quota.h"
#include "queue/spool.h"
#include "queue/spool_read.h"
#include "server/obs.h"

#define SENDQUOTA_FILE_MAX (4 * 1024 * 1024)
#define SENDQUOTA_USER_MAX 512
#define SENDQUOTA_LOG_IDS 50 /* queue ids named in a quota_hold event */
#define SENDQUOTA_LOCK_WAIT 10 /* seconds for a delivery in progress */

struct sendquota_job {
	char *user;
	int pass; /* 1, then 2 */
	time_t not_before;
	struct sendquota_job *next;
};

struct sendquota {
	struct quota *q;
	struct obs *obs;
	char *spool;
	char *path; /* SPOOL/quota-locks */
	unsigned mlimit, rlimit; /* atomic: the limits q has */
	struct cluster *cluster; /* NULL: this node alone */

	pthread_t thread;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;
	struct sendquota_job *jobs;
	bool save; /* the locked set changed */
	bool reload; /* SIGHUP */
	bool stop;

	/* the thread's own */
	char **known; /* the file's users as last read or written */
	size_t nknown;
	struct stat stamp; /* of the file then (st_ino 0: absent) */
};

/* --- the state file ---------------------------------------------------------- */

static int
sendquota_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the users of path (sorted). Absent: none. -1 on a read error. */
static int
sendquota_read_file(const char *path, char ***users_r, size_t *n_r, struct stat *st_r)
{
	char *text, *save = NULL;
	char **v = NULL;
	size_t len, n = 0;

	*users_r = NULL;
	*n_r = 0;
	memset(st_r, 0, sizeof(*st_r));
	if (stat(path, st_r) == -1)
		return errno == ENOENT ? 0 : -1;
	text = fs_read_file(path, SENDQUOTA_FILE_MAX, &len);
	if (text == NULL)
		return errno == ENOENT ? 0 : -1;
	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		size_t ll = strlen(l);

		while (ll > 0 && (l[ll - 1] == '\r' || l[ll - 1] == ' ' || l[ll - 1] == '\t'))
			l[--ll] = '\0';
		if (ll == 0 || l[0] == '#' || ll >= SENDQUOTA_USER_MAX)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = xstrdup(l);
	}
	free(text);
	if (n > 1)
		qsort(v, n, sizeof(*v), sendquota_cmp);
	*users_r = v;
	*n_r = n;
	return 0;
}

static int
sendquota_write_file(const char *path, char **users, size_t n)
{
	struct buf b;
	int rc = -1;

	buf_init(&b, SENDQUOTA_FILE_MAX);
	if (buf_append_str(&b,
	        "# smtpgate: accounts locked for going over a sending quota\n"
	        "# (smtpgate user unlock USER -c FILE removes one)\n") == -1)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (buf_printf(&b, "%s\n", users[i]) == -1)
			goto fail;
	}
	rc = fs_write_atomic(path, b.data, b.len, 0600);
fail:
	buf_free(&b);
	return rc;
}

static bool
sendquota_has(char **v, size_t n, const char *user)
{
	return n > 0 && bsearch(&user, v, n, sizeof(*v), sendquota_cmp) != NULL;
}

int
sendquota_file_unlock(const char *spool, const char *user)
{
	char **users, *path = spool_path(spool, SPOOL_QUOTA_LOCKS);
	size_t n, k = 0;
	struct stat st;
	int rc = -1;

	if (sendquota_read_file(path, &users, &n, &st) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(users[i], user) == 0)
			free(users[i]);
		else
			users[k++] = users[i];
	}
	rc = k == n ? 0 : 1;
	if (rc == 1 && sendquota_write_file(path, users, k) == -1)
		rc = -1;
	quota_users_free(users, k);
out:
	free(path);
	return rc;
}

/* --- the thread ----------------------------------------------------------------- */

static void
sendquota_known_set(struct sendquota *sq, char **users, size_t n, const struct stat *st)
{
	quota_users_free(sq->known, sq->nknown);
	sq->known = users;
	sq->nknown = n;
	sq->stamp = *st;
}

static void
sendquota_save(struct sendquota *sq)
{
	char **users;
	size_t n = quota_locked_users(sq->q, &users);
	struct stat st;

	if (sendquota_write_file(sq->path, users, n) == -1 || stat(sq->path, &st) == -1) {
		log_event(LOG_ERR, "quota_state", 0, "{s:s, s:s}", "file", sq->path, "error",
		    strerror(errno));
		quota_users_free(users, n);
		return;
	}
	sendquota_known_set(sq, users, n, &st);
}

static bool
sendquota_same_stamp(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Applies what someone else changed in the file. */
static void
sendquota_poll(struct sendquota *sq, bool force)
{
	char **users;
	size_t n;
	struct stat st;

	if (!force) {
		if (stat(sq->path, &st) == -1)
			memset(&st, 0, sizeof(st));
		if (sendquota_same_stamp(&st, &sq->stamp))
			return;
	}
	if (sendquota_read_file(sq->path, &users, &n, &st) == -1) {
		log_event(LOG_ERR, "quota_state", 0, "{s:s, s:s}", "file", sq->path, "error",
		    strerror(errno));
		return;
	}
	for (size_t i = 0; i < sq->nknown; i++) {
		if (!sendquota_has(users, n, sq->known[i]) && quota_unlock(sq->q, sq->known[i]))
			log_event(LOG_NOTICE, "quota_unlock", 0, "{s:s, s:s}", "user", sq->known[i],
			    "source", "state file");
	}
	for (size_t i = 0; i < n; i++) {
		if (!sendquota_has(sq->known, sq->nknown, users[i]))
			quota_lock(sq->q, users[i]);
	}
	sendquota_known_set(sq, users, n, &st);
}

/* Whether message id of queue/ was sent by user (envelope auth-user). */
static bool
sendquota_is_users(int spool_fd, const char *id, const char *user)
{
	struct spool_read_msg m;
	const char *errstr;
	bool mine;
	int fd = spool_msg_open(spool_fd, SPOOL_QUEUE, id);

	if (fd == -1)
		return false; /* delivered or removed meanwhile */
	if (spool_read_envelope(fd, &m, &errstr) == -1) {
		close(fd);
		return false;
	}
	close(fd);
	mine = m.env->auth_user != NULL && strcasecmp(m.env->auth_user, user) == 0;
	spool_read_clear(&m);
	return mine;
}

/* Moves every message of user from queue/ to hold/. */
static void
sendquota_hold(struct sendquota *sq, const char *user, int pass)
{
	char **ids = NULL;
	size_t n = 0, held = 0;
	json_t *list = json_array();
	int spool_fd = spool_open(sq->spool);

	if (spool_fd == -1 || spool_list(spool_fd, SPOOL_QUEUE, &ids, &n) == -1) {
		log_event(
		    LOG_ERR, "quota_hold", 0, "{s:s, s:s}", "user", user, "error", strerror(errno));
		json_decref(list);
		if (spool_fd != -1)
			close(spool_fd);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int fd;

		if (!sendquota_is_users(spool_fd, ids[i], user))
			continue;
		/* as `smtpgate queue hold`: a delivery holds the file's flock
		 * (doc/spool.md "Delivery state"); wait for it to end */
		fd = spool_msg_open_locked(
		    spool_fd, SPOOL_QUEUE, ids[i], SENDQUOTA_LOCK_WAIT * 1000);
		if (fd == -1 ||
		    spool_msg_rename(spool_fd, SPOOL_QUEUE, ids[i], SPOOL_HOLD, ids[i]) == -1) {
			if (errno != ENOENT) /* ENOENT: delivered meanwhile */
				log_event(LOG_ERR, "quota_hold", 0, "{s:s, s:s, s:s}", "user", user,
				    "queue_id", ids[i], "error", strerror(errno));
			if (fd != -1)
				close(fd);
			continue;
		}
		close(fd);
		held++;
		if (held <= SENDQUOTA_LOG_IDS)
			json_array_append_new(list, json_string(ids[i]));
	}
	spool_list_free(ids, n);
	/* the new entries first, then the removals */
	if (held > 0 &&
	    (spool_folder_sync(spool_fd, SPOOL_HOLD) == -1 ||
	        spool_folder_sync(spool_fd, SPOOL_QUEUE) == -1))
		log_event(
		    LOG_ERR, "quota_hold", 0, "{s:s, s:s}", "user", user, "error", strerror(errno));
	close(spool_fd);
	if (held > 0 || pass == 1)
		log_event(LOG_WARNING, "quota_hold", 0, "{s:s, s:i, s:o, s:i}", "user", user,
		    "held", (int)held, "queue_ids", list, "pass", pass);
	else
		json_decref(list);
}

static void *
sendquota_main(void *arg)
{
	struct sendquota *sq = arg;

	pthread_mutex_lock(&sq->lock);
	while (!sq->stop) {
		struct sendquota_job *j, **pp;
		struct timespec ts;
		time_t now = time(NULL);
		bool save, reload;

		/* one due job at a time, without the lock */
		for (pp = &sq->jobs; *pp != NULL && (*pp)->not_before > now; pp = &(*pp)->next)
			;
		if ((j = *pp) != NULL) {
			*pp = j->next;
			pthread_mutex_unlock(&sq->lock);
			sendquota_hold(sq, j->user, j->pass);
			pthread_mutex_lock(&sq->lock);
			if (j->pass == 1) {
				j->pass = 2;
				j->not_before = time(NULL) + SENDQUOTA_POLL_S;
				j->next = sq->jobs;
				sq->jobs = j;
			} else {
				free(j->user);
				free(j);
			}
			continue;
		}
		save = sq->save;
		reload = sq->reload;
		sq->save = sq->reload = false;
		pthread_mutex_unlock(&sq->lock);
		if (save)
			sendquota_save(sq);
		sendquota_poll(sq, reload);
		pthread_mutex_lock(&sq->lock);
		if (sq->stop || sq->save || sq->reload)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += sq->jobs != NULL ? 1 : SENDQUOTA_POLL_S;
		(void)pthread_cond_timedwait(&sq->cond, &sq->lock, &ts);
	}
	pthread_mutex_unlock(&sq->lock);
	return NULL;
}

static void
sendquota_wake(struct sendquota *sq, bool save, bool reload, char *hold_user)
{
	pthread_mutex_lock(&sq->lock);
	sq->save |= save;
	sq->reload |= reload;
	if (hold_user != NULL) {
		struct sendquota_job *j = xcalloc(1, sizeof(*j));

		j->user = hold_user;
		j->pass = 1;
		j->next = sq->jobs;
		sq->jobs = j;
	}
	pthread_cond_signal(&sq->cond);
	pthread_mutex_unlock(&sq->lock);
}

struct sendquota *
sendquota_new(const struct conf *c, struct obs *obs, char *err, size_t errlen)
{
	struct sendquota *sq = xcalloc(1, sizeof(*sq));
	char **users;
	size_t n;
	struct stat st;

	sq->q = quota_new(c->quota_messages_per_day, c->quota_recipients_per_day);
	sq->mlimit = c->quota_messages_per_day;
	sq->rlimit = c->quota_recipients_per_day;
	sq->obs = obs;
	sq->spool = xstrdup(c->spool);
	sq->path = spool_path(c->spool, SPOOL_QUOTA_LOCKS);
	if (sendquota_read_file(sq->path, &users, &n, &st) == -1) {
		snprintf(err, errlen, "%s: %s", sq->path, strerror(errno));
		quota_free(sq->q);
		free(sq->spool);
		free(sq->path);
		free(sq);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		quota_lock(sq->q, users[i]);
	sendquota_known_set(sq, users, n, &st);
	pthread_mutex_init(&sq->lock, NULL);
	pthread_cond_init(&sq->cond, NULL);
	if (pthread_create(&sq->thread, NULL, sendquota_main, sq) != 0)
		abort();
	return sq;
}

void
sendquota_free(struct sendquota *sq)
{
	struct sendquota_job *j, *next;

	if (sq == NULL)
		return;
	pthread_mutex_lock(&sq->lock);
	sq->stop = true;
	pthread_cond_signal(&sq->cond);
	pthread_mutex_unlock(&sq->lock);
	pthread_join(sq->thread, NULL);
	if (sq->save)
		sendquota_save(sq);
	for (j = sq->jobs; j != NULL; j = next) {
		next = j->next;
		free(j->user);
		free(j);
	}
	quota_users_free(sq->known, sq->nknown);
	pthread_mutex_destroy(&sq->lock);
	pthread_cond_destroy(&sq->cond);
	quota_free(sq->q);
	free(sq->spool);
	free(sq->path);
	free(sq);
}

void
sendquota_reload(struct sendquota *sq)
{
	if (sq != NULL)
		sendquota_wake(sq, false, true, NULL);
}

/* --- session checks ------------------------------------------------------------- */

static enum smtp_reply_id
sendquota_reply(const struct conf *c)
{
	return c->quota_reject ? SMTP_R_QUOTA_REJECT : SMTP_R_QUOTA_TEMP;
}

/* Follows [limits] of the session's snapshot (SIGHUP may change them). */
static void
sendquota_follow_limits(struct sendquota *sq, const struct conf *c)
{
	if (__atomic_load_n(&sq->mlimit, __ATOMIC_RELAXED) != c->quota_messages_per_day ||
	    __atomic_load_n(&sq->rlimit, __ATOMIC_RELAXED) != c->quota_recipients_per_day) {
		__atomic_store_n(&sq->mlimit, c->quota_messages_per_day, __ATOMIC_RELAXED);
		__atomic_store_n(&sq->rlimit, c->quota_recipients_per_day, __ATOMIC_RELAXED);
		quota_set_limits(sq->q, c->quota_messages_per_day, c->quota_recipients_per_day);
	}
}

/* The account just went over: alert, count, hold its mail, save the lock. */
static void
sendquota_tripped(struct sendquota *sq, const struct conf *c, const char *user, const char *limit,
    const struct quota_counts *n, const char *client, uint64_t session)
{
	log_event(LOG_ALERT, "alert", session, "{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:s}",
	    "alert", "quota_exceeded", "user", user, "limit", limit, "messages", (int)n->messages,
	    "recipients", (int)n->recipients, "messages_per_day", (int)c->quota_messages_per_day,
	    "recipients_per_day", (int)c->quota_recipients_per_day, "client", client, "action",
	    "account on hold: queued mail held, new mail refused until `smtpgate user unlock`");
	obs_quota_exceeded(sq->obs, limit);
	sendquota_wake(sq, true, false, xstrdup(user));
	cluster_quota_hold(sq->cluster, user);
}

enum smtp_reply_id
sendquota_check_mail(struct sendquota *sq, const struct conf *c, const char *user,
    const char *client, uint64_t session)
{
	struct quota_counts n;
	enum quota_verdict v;

	if (sq == NULL || user == NULL)
		return SMTP_R_OK;
	sendquota_follow_limits(sq, c);
	v = quota_check_mail(sq->q, user, time(NULL), &n);
	if (v == QUOTA_OK)
		return SMTP_R_OK;
	if (v == QUOTA_EXCEEDED)
		sendquota_tripped(sq, c, user, "messages", &n, client, session);
	return sendquota_reply(c);
}

static void sendquota_cluster_hold(void *arg, const char *user);

enum smtp_reply_id
sendquota_check_rcpt(struct sendquota *sq, const struct conf *c, const char *user, const char *rcpt,
    const char *client, uint64_t session, const struct sendquota_shared *shared)
{
	struct quota_counts n;
	enum quota_verdict v;

	if (sq == NULL || user == NULL)
		return SMTP_R_OK;
	sendquota_follow_limits(sq, c);
	if (!quota_is_enabled(sq->q))
		return quota_is_locked(sq->q, user) ? sendquota_reply(c) : SMTP_R_OK;
	if (shared != NULL && shared->held)
		sendquota_cluster_hold(sq, user);
	if (shared != NULL)
		v = quota_rcpt_shared(
		    sq->q, user, rcpt, shared->over, shared->distinct, time(NULL), &n);
	else
		v = quota_check_rcpt(sq->q, user, rcpt, time(NULL), &n);
	if (v == QUOTA_OK)
		return SMTP_R_OK;
	if (v == QUOTA_EXCEEDED)
		sendquota_tripped(sq, c, user, "recipients", &n, client, session);
	return sendquota_reply(c);
}

enum smtp_reply_id
sendquota_check_data(struct sendquota *sq, const struct conf *c, const char *user)
{
	if (sq == NULL || user == NULL || !quota_is_locked(sq->q, user))
		return SMTP_R_OK;
	return sendquota_reply(c);
}

void
sendquota_count_message(struct sendquota *sq, const char *user)
{
	time_t now = time(NULL);

	if (sq == NULL || user == NULL || !quota_is_enabled(sq->q))
		return;
	quota_count_message(sq->q, user, now);
	if (sq->cluster != NULL)
		cluster_quota_count(sq->cluster, user, (unsigned)(now / 3600));
}

/* --- the cluster's share ---------------------------------------------------------- */

static void
sendquota_cluster_count(void *arg, const char *user, unsigned messages)
{
	struct sendquota *sq = arg;

	quota_raise_messages(sq->q, user, messages, time(NULL));
}

/* Another node (or this one) held user: hold its mail here too. */
static void
sendquota_cluster_hold(void *arg, const char *user)
{
	struct sendquota *sq = arg;

	if (quota_is_locked(sq->q, user))
		return;
	quota_lock(sq->q, user);
	log_event(LOG_WARNING, "quota_lock", 0, "{s:s, s:s}", "user", user, "source", "cluster");
	sendquota_wake(sq, true, false, xstrdup(user));
}

static void
sendquota_cluster_unlock(void *arg, const char *user)
{
	struct sendquota *sq = arg;

	if (quota_unlock(sq->q, user)) {
		log_event(
		    LOG_NOTICE, "quota_unlock", 0, "{s:s, s:s}", "user", user, "source", "cluster");
		sendquota_wake(sq, true, false, NULL);
	}
}

static const struct cluster_quota_hooks sendquota_cluster_hooks = {
    .count = sendquota_cluster_count,
    .hold = sendquota_cluster_hold,
    .unlock = sendquota_cluster_unlock,
};

void
sendquota_set_cluster(struct sendquota *sq, struct cluster *cl)
{
	sq->cluster = cl;
	if (cl != NULL)
		cluster_set_quota_hooks(cl, &sendquota_cluster_hooks, sq);
}

struct sendquota_wait {
	struct sendquota *sq;
	char *user;
	void (*done)(void *arg);
	void *arg;
};

static void
sendquota_fetched(void *arg, int status, unsigned messages, bool held)
{
	struct sendquota_wait *w = arg;
	time_t now = time(NULL);

	if (status == 0) {
		quota_raise_messages(w->sq->q, w->user, messages, now);
		if (held)
			sendquota_cluster_hold(w->sq, w->user);
	}
	w->done(w->arg);
	free(w->user);
	free(w);
}

bool
sendquota_fetch(struct sendquota *sq, const struct conf *c, const char *user, struct loop *loop,
    void (*done)(void *arg), void *arg)
{
	struct sendquota_wait *w;

	if (sq == NULL || user == NULL || sq->cluster == NULL || c->quota_messages_per_day == 0)
		return false;
	w = xcalloc(1, sizeof(*w));
	w->sq = sq;
	w->user = xstrdup(user);
	w->done = done;
	w->arg = arg;
	if (cluster_quota_fetch(sq->cluster, user, (unsigned)(time(NULL) / 3600),
	        CLUSTER_QUOTA_WAIT_MS, loop, sendquota_fetched, w) == -1) {
		free(w->user);
		free(w);
		return false;
	}
	return true;
}

struct sendquota_rcpt_wait {
	void (*done)(void *arg, const struct sendquota_shared *answer);
	void *arg;
};

static void
sendquota_rcpt_fetched(void *arg, int status, bool over, unsigned distinct, bool held)
{
	struct sendquota_rcpt_wait *w = arg;
	struct sendquota_shared a = {.over = over, .held = held, .distinct = distinct};

	w->done(w->arg, status == 0 ? &a : NULL);
	free(w);
}

bool
sendquota_rcpt_fetch(struct sendquota *sq, const struct conf *c, const char *user, const char *rcpt,
    struct loop *loop, void (*done)(void *arg, const struct sendquota_shared *answer), void *arg)
{
	struct sendquota_rcpt_wait *w;

	if (sq == NULL || user == NULL || sq->cluster == NULL || c->quota_recipients_per_day == 0)
		return false;
	w = xcalloc(1, sizeof(*w));
	w->done = done;
	w->arg = arg;
	if (cluster_quota_rcpt(sq->cluster, user, rcpt, c->quota_recipients_per_day,
	        (unsigned)(time(NULL) / 3600), CLUSTER_QUOTA_WAIT_MS, loop, sendquota_rcpt_fetched,
	        w) == -1) {
		free(w);
		return false;
	}
	return true;
}

/* --- admin routes ---------------------------------------------------------------- */

static int
sendquota_admin_cb(void *arg, const char *method, const char *path, const char *query,
    const char *body, size_t bodylen, struct buf *out, const char **content_type_r)
{
	struct sendquota *sq = arg;
	char user[SENDQUOTA_USER_MAX];
	json_t *doc, *arr;
	char **users, *text;
	size_t n;
	int rc;

	*content_type_r = "application/json";
	if (strcmp(path, "/quota") == 0 && strcmp(method, "GET") == 0) {
		n = quota_locked_users(sq->q, &users);
		arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_string(users[i]));
		quota_users_free(users, n);
		doc = json_pack("{s:o}", "locked", arr);
	} else if (strcmp(path, "/quota/unlock") == 0 && strcmp(method, "POST") == 0) {
		if (admin_query_get(query, "user", user, sizeof(user)) == -1 || user[0] == '\0') {
			rc = buf_append_str(out, "{\"error\":\"user=USER is required\"}\n");
			return rc == -1 ? 500 : 400;
		}
		rc = quota_unlock(sq->q, user);
		/* every node, and the shared count, even when not held here */
		cluster_quota_unlock(sq->cluster, user);
		if (rc)
			log_event(LOG_NOTICE, "quota_unlock", 0, "{s:s, s:s}", "user", user,
			    "source", "admin");
		sendquota_wake(sq, rc, false, NULL);
		doc = json_pack("{s:s, s:b}", "user", user, "was_locked", rc);
	} else {
		rc = buf_append_str(
		    out, "{\"error\":\"GET /quota or POST /quota/unlock?user=U\"}\n");
		return rc == -1 ? 500 : 404;
	}
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	rc = buf_printf(out, "%s\n", text != NULL ? text : "{}");
	free(text);
	return rc == -1 ? 500 : 200;
}

void
sendquota_admin_routes(struct sendquota *sq, struct admin *a)
{
	/* GET /quota names users: never open */
	admin_route(a, "/quota", 0, sendquota_admin_cb, sq);
}
