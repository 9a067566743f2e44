/*
 * authdb_pgsql: the pgsql:CONNINFO backend of authdb (authdb_priv.h,
 * doc/pgsql.md): the credentials of a user are the rows the [sql] query
 * returns for the login, each row one passwd-file line (pgsql_map.h), so
 * they mean what the file's lines mean (authdb_pf.c does the rest).
 *
 * Every request queries the server: nothing is cached, so a changed or
 * deleted row counts at the next AUTH on every node. The query is
 * prepared once per connection and the login is only ever its parameter
 * $1 (conf_sql_query_check), never spliced into SQL.
 *
 * Connections: a pool (a free list under lock); a worker takes one for a
 * request and gives it back, so there are at most as many as workers.
 * The calls block the worker, never a loop, each bounded by [sql] timeout
 * (connect_timeout, then poll(2) on the socket for the query). A broken
 * connection is dropped; a reused one that broke is replaced once at
 * once (the server restarted). After a failed connect no new one is tried
 * before a backoff (AUTHDB_PGSQL_BACKOFF_MIN_MS, doubling to _MAX_MS): in
 * between, and on any error, the answer is AUTHDB_TEMPFAIL (454 4.7.0),
 * never a failure of the credentials.
 *
 * Senders: auth_proc asks authdb_user_senders on its loop right after a
 * verification; the union of senders of the user's rows from that very
 * query is kept in a small ring for it, so the loop never queries.
 *
 * Secrets: the conninfo and the password of [sql] password_file are
 * wiped when freed; messages show the conninfo redacted (pgsql_map_redact)
 * and libpq's messages, which never contain the password.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "auth/authdb_pgsql.h"

#include "auth/authdb_priv.h"
#include "auth/passwd_file.h"
#include "auth/pgsql_map.h"
#include "conf/conf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define AUTHDB_PGSQL_STMT "smtpgate_auth"
#define AUTHDB_PGSQL_BACKOFF_MIN_MS 200
#define AUTHDB_PGSQL_BACKOFF_MAX_MS 5000
#define AUTHDB_PGSQL_ROWS_MAX 256 /* credentials of one user taken */
#define AUTHDB_PGSQL_RECENT 64 /* senders kept for auth_proc's lookup */
#define AUTHDB_PGSQL_PASSWORD_MAX 4096

struct authdb_pgsql_conn {
	struct authdb_pgsql_conn *next; /* in the free list */
	PGconn *pg;
	bool prepared;
	bool used; /* has answered a query: a break may be a server restart */
};

struct authdb_pgsql_recent {
	char *user;
	char *senders; /* NULL: none */
};

struct authdb_pgsql {
	char *conninfo; /* secret */
	char *password; /* of [sql] password_file; NULL: libpq's own ways */
	char *query;
	unsigned timeout; /* seconds */
	char redacted[512]; /* conninfo for messages */

	pthread_mutex_t lock; /* all below */
	struct authdb_pgsql_conn *idle;
	int64_t retry_at_ms; /* no new connection before */
	unsigned backoff_ms;
	bool down; /* the last attempt failed (logged once per change) */
	struct authdb_pgsql_recent recent[AUTHDB_PGSQL_RECENT];
	size_t recent_next;
};

static int64_t
authdb_pgsql_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
authdb_pgsql_conn_free(struct authdb_pgsql_conn *pc)
{
	if (pc == NULL)
		return;
	PQfinish(pc->pg);
	free(pc);
}

/* Up or down, logged when it changes. */
static void
authdb_pgsql_set_state(struct authdb_pgsql *ap, bool down, const char *error)
{
	bool changed;

	pthread_mutex_lock(&ap->lock);
	changed = ap->down != down;
	ap->down = down;
	if (down) {
		ap->retry_at_ms = authdb_pgsql_now_ms() + ap->backoff_ms;
		ap->backoff_ms = ap->backoff_ms * 2 > AUTHDB_PGSQL_BACKOFF_MAX_MS
		    ? AUTHDB_PGSQL_BACKOFF_MAX_MS
		    : ap->backoff_ms * 2;
	} else {
		ap->backoff_ms = AUTHDB_PGSQL_BACKOFF_MIN_MS;
	}
	pthread_mutex_unlock(&ap->lock);
	if (changed && down)
		log_event(LOG_ERR, "pgsql_down", 0, "{s:s, s:s, s:s}", "conninfo", ap->redacted,
		    "error", error, "effect", "AUTH answers 454 4.7.0 until it is reachable");
	else if (changed)
		log_event(LOG_INFO, "pgsql_up", 0, "{s:s}", "conninfo", ap->redacted);
}

/* A new connection, or NULL (in backoff, or it failed: logged, and the
 * reason in err). */
static struct authdb_pgsql_conn *
authdb_pgsql_connect(struct authdb_pgsql *ap, char *err, size_t errlen)
{
	const char *keys[5], *vals[5];
	char tmo[16];
	struct authdb_pgsql_conn *pc;
	bool wait;
	size_t n = 0;

	pthread_mutex_lock(&ap->lock);
	wait = ap->down && authdb_pgsql_now_ms() < ap->retry_at_ms;
	pthread_mutex_unlock(&ap->lock);
	if (wait) {
		snprintf(err, errlen, "unreachable at the last attempt: waiting before the next");
		return NULL;
	}
	/* later entries override earlier ones: the conninfo may set its own
	 * connect_timeout, never the password of password_file */
	snprintf(tmo, sizeof(tmo), "%u", ap->timeout < 2 ? 2 : ap->timeout);
	keys[n] = "connect_timeout", vals[n++] = tmo;
	keys[n] = "fallback_application_name", vals[n++] = "smtpgate";
	keys[n] = "dbname", vals[n++] = ap->conninfo;
	if (ap->password != NULL)
		keys[n] = "password", vals[n++] = ap->password;
	keys[n] = NULL, vals[n] = NULL;
	pc = xcalloc(1, sizeof(*pc));
	pc->pg = PQconnectdbParams(keys, vals, 1);
	if (pc->pg == NULL || PQstatus(pc->pg) != CONNECTION_OK) {
		snprintf(
		    err, errlen, "%s", pc->pg != NULL ? PQerrorMessage(pc->pg) : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		authdb_pgsql_conn_free(pc);
		authdb_pgsql_set_state(ap, true, err);
		return NULL;
	}
	return pc;
}

/* Waits until a result is ready, until deadline_ms. -1 on a timeout or a
 * broken connection. */
static int
authdb_pgsql_wait(PGconn *pg, int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};

	for (;;) {
		int64_t left;
		int r;

		if (PQconsumeInput(pg) == 0)
			return -1;
		if (!PQisBusy(pg))
			return 0;
		left = deadline_ms - authdb_pgsql_now_ms();
		if (left <= 0)
			return -1;
		r = poll(&pfd, 1, (int)left);
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

/* The one result of the command sent, or NULL (timeout, broken). */
static PGresult *
authdb_pgsql_result(PGconn *pg, int64_t deadline_ms)
{
	PGresult *res = NULL, *more;

	if (authdb_pgsql_wait(pg, deadline_ms) == -1)
		return NULL;
	res = PQgetResult(pg);
	/* the end of the command: a NULL result */
	while (res != NULL && authdb_pgsql_wait(pg, deadline_ms) == 0 &&
	    (more = PQgetResult(pg)) != NULL)
		PQclear(more);
	return res;
}

/*
 * Runs the query for login on pc: its result (PGRES_TUPLES_OK), or NULL
 * with the reason in err; *broken_r says whether pc is unusable now.
 */
static PGresult *
authdb_pgsql_exec(struct authdb_pgsql *ap, struct authdb_pgsql_conn *pc, const char *login,
    char *err, size_t errlen, bool *broken_r)
{
	int64_t deadline = authdb_pgsql_now_ms() + (int64_t)ap->timeout * 1000;
	PGresult *res;

	*broken_r = false;
	if (!pc->prepared) {
		if (PQsendPrepare(pc->pg, AUTHDB_PGSQL_STMT, ap->query, 1, NULL) == 0 ||
		    (res = authdb_pgsql_result(pc->pg, deadline)) == NULL)
			goto broken;
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "cannot prepare the [sql] query: %s",
			    PQresultErrorMessage(res));
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		pc->prepared = true;
	}
	if (PQsendQueryPrepared(pc->pg, AUTHDB_PGSQL_STMT, 1, &login, NULL, NULL, 0) == 0 ||
	    (res = authdb_pgsql_result(pc->pg, deadline)) == NULL)
		goto broken;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "the [sql] query failed: %s", PQresultErrorMessage(res));
		PQclear(res);
		*broken_r = PQstatus(pc->pg) != CONNECTION_OK;
		return NULL;
	}
	return res;
broken:
	snprintf(err, errlen, "%s",
	    authdb_pgsql_now_ms() >= deadline ? "timed out" : PQerrorMessage(pc->pg));
	*broken_r = true;
	return NULL;
}

/* The rows of res as the lines of a passwd file (bad rows are logged and
 * left out: they authenticate nothing). */
static struct passwd_file *
authdb_pgsql_rows(const PGresult *res, const char *login, char *err, size_t errlen)
{
	const char *names[64], *vals[64], *errstr;
	struct pgsql_map m;
	struct passwd_file *pf = passwd_file_parse_text("pgsql", "", 0, err, errlen);
	int ncols = PQnfields(res), nrows = PQntuples(res);

	if (pf == NULL)
		return NULL;
	if (ncols > 64)
		ncols = 64; /* the meanings are among the first */
	for (int i = 0; i < ncols; i++)
		names[i] = PQfname(res, i);
	if (pgsql_map_columns(&m, names, (size_t)ncols, &errstr) == -1) {
		snprintf(err, errlen, "[sql] query: %s", errstr);
		passwd_file_free(pf);
		return NULL;
	}
	for (int r = 0; r < nrows && r < AUTHDB_PGSQL_ROWS_MAX; r++) {
		for (int i = 0; i < ncols; i++)
			vals[i] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
		if (pgsql_map_row(pf, &m, login, vals, &errstr) == -1)
			log_event(LOG_ERR, "pgsql_bad_row", 0, "{s:s, s:i, s:s, s:s}", "user",
			    login, "row", r + 1, "error", errstr, "effect", "the row is ignored");
	}
	return pf;
}

/* Takes a pooled connection, or makes one. NULL: none (logged). */
static struct authdb_pgsql_conn *
authdb_pgsql_take(struct authdb_pgsql *ap, char *err, size_t errlen)
{
	struct authdb_pgsql_conn *pc;

	pthread_mutex_lock(&ap->lock);
	pc = ap->idle;
	if (pc != NULL)
		ap->idle = pc->next;
	pthread_mutex_unlock(&ap->lock);
	return pc != NULL ? pc : authdb_pgsql_connect(ap, err, errlen);
}

static void
authdb_pgsql_give(struct authdb_pgsql *ap, struct authdb_pgsql_conn *pc)
{
	pthread_mutex_lock(&ap->lock);
	pc->next = ap->idle;
	ap->idle = pc;
	pthread_mutex_unlock(&ap->lock);
}

/* Keeps the union of senders of user's rows for authdb_user_senders. */
static void
authdb_pgsql_note_senders(struct authdb_pgsql *ap, const struct passwd_file *pf, const char *user)
{
	char *s = authdb_pf_user_senders(pf, user);
	struct authdb_pgsql_recent *r = NULL;

	pthread_mutex_lock(&ap->lock);
	for (size_t i = 0; i < AUTHDB_PGSQL_RECENT && r == NULL; i++) {
		if (ap->recent[i].user != NULL && strcmp(ap->recent[i].user, user) == 0)
			r = &ap->recent[i];
	}
	if (r == NULL) {
		r = &ap->recent[ap->recent_next];
		ap->recent_next = (ap->recent_next + 1) % AUTHDB_PGSQL_RECENT;
		free(r->user);
		r->user = xstrdup(user);
	}
	free(r->senders);
	r->senders = s;
	pthread_mutex_unlock(&ap->lock);
}

/*
 * The credentials of user as a passwd file (*pf_r) and the name to look
 * them up by (*name_r: the login column of the first row, else user).
 * An invalid name gives an empty file without a query. -1: the server
 * could not answer (logged): a temporary failure.
 */
static int
authdb_pgsql_load(struct authdb_pgsql *ap, const char *user, size_t userlen,
    struct passwd_file **pf_r, const char **name_r)
{
	struct authdb_pgsql_conn *pc;
	PGresult *res = NULL;
	char err[1024] = "";
	bool broken = false;

	*pf_r = NULL;
	*name_r = user;
	if (!passwd_user_is_valid(user, userlen)) {
		*pf_r = passwd_file_parse_text("pgsql", "", 0, err, sizeof(err));
		return *pf_r != NULL ? 0 : -1;
	}
	for (int attempt = 0; attempt < 2 && res == NULL; attempt++) {
		bool reused;

		if ((pc = authdb_pgsql_take(ap, err, sizeof(err))) == NULL)
			return -1;
		reused = pc->used;
		res = authdb_pgsql_exec(ap, pc, user, err, sizeof(err), &broken);
		pc->used = true;
		if (broken)
			authdb_pgsql_conn_free(pc);
		else
			authdb_pgsql_give(ap, pc);
		/* a pooled connection the server closed: one new try */
		if (res == NULL && !(broken && reused))
			break;
	}
	if (res == NULL) {
		err[strcspn(err, "\n")] = '\0';
		authdb_pgsql_set_state(ap, broken, err);
		if (!broken)
			log_event(LOG_ERR, "pgsql_query_error", 0, "{s:s, s:s}", "error", err,
			    "effect", "AUTH answers 454 4.7.0");
		return -1;
	}
	authdb_pgsql_set_state(ap, false, NULL);
	*pf_r = authdb_pgsql_rows(res, user, err, sizeof(err));
	PQclear(res);
	if (*pf_r == NULL) {
		log_event(LOG_ERR, "pgsql_query_error", 0, "{s:s, s:s}", "error", err, "effect",
		    "AUTH answers 454 4.7.0");
		return -1;
	}
	if ((*pf_r)->nentries > 0)
		*name_r = (*pf_r)->entries[0].user;
	authdb_pgsql_note_senders(ap, *pf_r, *name_r);
	return 0;
}

static enum authdb_result
authdb_pgsql_verify(void *be, const struct authdb_verify *v, struct authdb_match *m_r)
{
	struct authdb_verify named = *v;
	struct passwd_file *pf;
	const char *name;
	enum authdb_result r;

	if (authdb_pgsql_load(be, v->user, v->userlen, &pf, &name) == -1)
		return AUTHDB_TEMPFAIL;
	named.user = name;
	named.userlen = strlen(name);
	r = authdb_pf_verify(pf, &named, m_r);
	passwd_file_free(pf);
	return r;
}

static int
authdb_pgsql_scram_keys(void *be, const char *user, size_t userlen, enum pwscheme scheme,
    struct authdb_scram_cand *c_r, size_t max, size_t *n_r, char **user_r,
    struct pwscheme_scram *salt_r, bool *has_salt_r)
{
	struct passwd_file *pf;
	const char *name;
	int r;

	if (authdb_pgsql_load(be, user, userlen, &pf, &name) == -1)
		return -1;
	r = authdb_pf_scram_keys(
	    pf, name, strlen(name), scheme, c_r, max, n_r, user_r, salt_r, has_salt_r);
	passwd_file_free(pf);
	return r;
}

static int
authdb_pgsql_cram_key(
    void *be, const char *user, size_t userlen, unsigned char *key, size_t *keylen_r, char **user_r)
{
	struct passwd_file *pf;
	const char *name;
	int r;

	if (authdb_pgsql_load(be, user, userlen, &pf, &name) == -1)
		return -1;
	r = authdb_pf_cram_key(pf, name, strlen(name), key, keylen_r, user_r);
	passwd_file_free(pf);
	return r;
}

static char *
authdb_pgsql_user_senders(void *be, const char *user)
{
	struct authdb_pgsql *ap = be;
	char *s = NULL;

	pthread_mutex_lock(&ap->lock);
	for (size_t i = 0; i < AUTHDB_PGSQL_RECENT; i++) {
		if (ap->recent[i].user != NULL && strcmp(ap->recent[i].user, user) == 0) {
			s = ap->recent[i].senders != NULL ? xstrdup(ap->recent[i].senders) : NULL;
			break;
		}
	}
	pthread_mutex_unlock(&ap->lock);
	return s;
}

/* Closes the idle connections: the next requests open new ones. */
static void
authdb_pgsql_close_idle(struct authdb_pgsql *ap)
{
	struct authdb_pgsql_conn *pc, *next;

	pthread_mutex_lock(&ap->lock);
	pc = ap->idle;
	ap->idle = NULL;
	pthread_mutex_unlock(&ap->lock);
	for (; pc != NULL; pc = next) {
		next = pc->next;
		authdb_pgsql_conn_free(pc);
	}
}

static void
authdb_pgsql_free(void *be)
{
	struct authdb_pgsql *ap = be;

	if (ap == NULL)
		return;
	authdb_pgsql_close_idle(ap);
	for (size_t i = 0; i < AUTHDB_PGSQL_RECENT; i++) {
		free(ap->recent[i].user);
		free(ap->recent[i].senders);
	}
	pthread_mutex_destroy(&ap->lock);
	xfree_secret_str(ap->conninfo);
	xfree_secret_str(ap->password);
	free(ap->query);
	free(ap);
}

/* The first line of [sql] password_file, trimmed, or NULL with err. */
static char *
authdb_pgsql_read_password(const char *path, char *err, size_t errlen)
{
	size_t len = 0, n;
	char *data = fs_read_file(path, AUTHDB_PGSQL_PASSWORD_MAX, &len), *pw;

	if (data == NULL) {
		snprintf(err, errlen, "[sql] password_file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = strcspn(data, "\r\n");
	while (n > 0 && (data[n - 1] == ' ' || data[n - 1] == '\t'))
		n--;
	if (n == 0 || memchr(data, '\0', n) != NULL) {
		snprintf(
		    err, errlen, "[sql] password_file %s: no password on its first line", path);
		xfree_secret(data, len);
		return NULL;
	}
	pw = xmalloc(n + 1);
	memcpy(pw, data, n);
	pw[n] = '\0';
	xfree_secret(data, len);
	return pw;
}

/* No connection here: the server may start after us (AUTH answers 454
 * until it is there), and `serve --check` must not need it. */
static void *
authdb_pgsql_open(const char *conninfo, const struct conf *c, char *err, size_t errlen)
{
	struct authdb_pgsql *ap;

	if (c->sql_query == NULL) {
		snprintf(err, errlen, "%s: [auth] backend = pgsql:... needs [sql] query", c->path);
		return NULL;
	}
	ap = xcalloc(1, sizeof(*ap));
	pthread_mutex_init(&ap->lock, NULL);
	ap->conninfo = xstrdup(conninfo);
	ap->query = xstrdup(c->sql_query);
	ap->timeout = c->sql_timeout > 0 ? c->sql_timeout : 5;
	ap->backoff_ms = AUTHDB_PGSQL_BACKOFF_MIN_MS;
	pgsql_map_redact(conninfo, ap->redacted, sizeof(ap->redacted));
	if (c->sql_password_file != NULL &&
	    (ap->password = authdb_pgsql_read_password(c->sql_password_file, err, errlen)) ==
	        NULL) {
		authdb_pgsql_free(ap);
		return NULL;
	}
	return ap;
}

/* SIGHUP: reconnect (the conninfo and query stay those of the start). */
static int
authdb_pgsql_reload(void *be, char *err, size_t errlen)
{
	authdb_pgsql_close_idle(be);
	return 0;
}

const struct authdb_backend authdb_pgsql_backend = {
    .name = "pgsql",
    .usage = "pgsql:CONNINFO",
    .workers = 0,
    .pads = true,
    .open = authdb_pgsql_open,
    .free = authdb_pgsql_free,
    .reload = authdb_pgsql_reload,
    .verify = authdb_pgsql_verify,
    .scram_keys = authdb_pgsql_scram_keys,
    .cram_key = authdb_pgsql_cram_key,
    .user_senders = authdb_pgsql_user_senders,
};

/* The prepared query's columns, for the audit. */
static enum authdb_pgsql_probe
authdb_pgsql_probe_columns(
    struct authdb_pgsql *ap, struct authdb_pgsql_conn *pc, char *err, size_t errlen)
{
	int64_t deadline = authdb_pgsql_now_ms() + (int64_t)ap->timeout * 1000;
	const char *names[64], *errstr;
	struct pgsql_map m;
	PGresult *res;
	int n;

	if (PQsendPrepare(pc->pg, AUTHDB_PGSQL_STMT, ap->query, 1, NULL) == 0 ||
	    (res = authdb_pgsql_result(pc->pg, deadline)) == NULL) {
		snprintf(err, errlen, "%s", PQerrorMessage(pc->pg));
		return AUTHDB_PGSQL_PROBE_UNREACHABLE;
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		PQclear(res);
		return AUTHDB_PGSQL_PROBE_QUERY_INVALID;
	}
	PQclear(res);
	if (PQsendDescribePrepared(pc->pg, AUTHDB_PGSQL_STMT) == 0 ||
	    (res = authdb_pgsql_result(pc->pg, deadline)) == NULL) {
		snprintf(err, errlen, "%s", PQerrorMessage(pc->pg));
		return AUTHDB_PGSQL_PROBE_UNREACHABLE;
	}
	n = PQnfields(res) > 64 ? 64 : PQnfields(res);
	for (int i = 0; i < n; i++)
		names[i] = PQfname(res, i);
	if (pgsql_map_columns(&m, names, (size_t)n, &errstr) == -1) {
		snprintf(err, errlen, "%s", errstr);
		PQclear(res);
		return AUTHDB_PGSQL_PROBE_NO_CREDENTIAL;
	}
	PQclear(res);
	return AUTHDB_PGSQL_PROBE_OK;
}

enum authdb_pgsql_probe
authdb_pgsql_probe(const struct conf *c, char *err, size_t errlen)
{
	const char *conninfo = conf_backend_pgsql(c);
	enum authdb_pgsql_probe r = AUTHDB_PGSQL_PROBE_UNREACHABLE;
	struct authdb_pgsql *ap;
	struct authdb_pgsql_conn *pc;

	err[0] = '\0';
	if (conninfo == NULL || (ap = authdb_pgsql_open(conninfo, c, err, errlen)) == NULL)
		return r;
	if ((pc = authdb_pgsql_connect(ap, err, errlen)) == NULL) {
		/* the reason, then where */
		size_t n = strcspn(err, "\n");

		snprintf(err + n, errlen - n, " (%s)", ap->redacted);
	} else {
		r = authdb_pgsql_probe_columns(ap, pc, err, errlen);
		authdb_pgsql_conn_free(pc);
	}
	err[strcspn(err, "\n")] = '\0';
	authdb_pgsql_free(ap);
	return r;
}

bool
authdb_pgsql_conninfo_has_password(const struct conf *c)
{
	const char *conninfo = conf_backend_pgsql(c);
	PQconninfoOption *opts;
	bool has = false;

	if (conninfo == NULL || (opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return false;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			has = true;
		if (o->val != NULL)
			explicit_bzero(o->val, strlen(o->val));
	}
	PQconninfoFree(opts);
	return has;
}
