/*
 * serve: the daemon behind `smtpgate serve` (cmd/serve_cmd.c): loads the configuration,
 * opens the shared services, starts one event-loop thread per core (each
 * with its own SO_REUSEPORT socket per listener) and handles signals on the
 * main thread:
 *   SIGHUP   re-read the config, certificates and users; live sessions keep
 *            the snapshot they started with
 *   SIGUSR1  deliver every queued message now (`smtpgate queue flush`)
 *   SIGUSR2  rescan the queue folder (`smtpgate queue release`)
 *   SIGTERM, SIGINT  stop accepting, let sessions finish for
 *            [limits] shutdown_grace, then close the rest with 421 and exit
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/authdb.h"
#include "auth/oauth.h"
#include "conf/conf.h"
#include "diag/audit.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/tls.h"
#include "policy/limiter.h"
#include "queue/queue.h"
#include "relay/scheduler.h"
#include "server/ban_routes.h"
#include "server/obs.h"
#include "server/proxy_accept.h"
#include "server/sendquota.h"
#include "server/serve.h"
#include "server/server.h"
#include "server/session.h"
#include "server/supervise.h"

static bool
serve_needs_tls(const struct conf *c)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].tls != CONF_TLS_NONE)
			return true;
	}
	return false;
}

static struct server_snap *
serve_snap_new(const char *path, char *err, size_t errlen)
{
	struct server_snap *snap;
	struct conf *c = conf_load(path, err, errlen);

	if (c == NULL)
		return NULL;
	snap = xcalloc(1, sizeof(*snap));
	snap->refs = 1;
	snap->conf = c;
	if (serve_needs_tls(c)) {
		snap->tls = tls_server_new(c, err, errlen);
		if (snap->tls == NULL) {
			server_snap_put(snap);
			return NULL;
		}
	}
	return snap;
}

/* Checks that the spool folder exists and is writable, or can be created. */
static int
serve_check_spool(const struct conf *c, char *err, size_t errlen)
{
	if (access(c->spool, W_OK | X_OK) == 0)
		return 0;
	if (errno == ENOENT) {
		char *parent = xstrdup(c->spool), *slash = strrchr(parent, '/');

		if (slash != NULL && slash != parent)
			*slash = '\0';
		if (access(parent, W_OK | X_OK) == 0) {
			free(parent);
			return 0;
		}
		free(parent);
	}
	snprintf(err, errlen, "%s: [server] spool %s is not a writable folder: %s", c->path,
	    c->spool, strerror(errno));
	return -1;
}

static void
serve_accept_cb(void *arg, int fd, const struct sockaddr *sa)
{
	struct worker_listener *wl = arg;
	struct server_snap *snap;

	if (__atomic_load_n(&wl->w->srv->shutting_down, __ATOMIC_RELAXED)) {
		close(fd);
		return;
	}
	snap = server_snap_get(wl->w->srv);
	/* the PROXY header comes first and names the client (proxy_accept.c) */
	if (snap->conf->listens[wl->index].proxy_protocol)
		proxy_accept_start(wl->w, snap, wl->index, fd, sa);
	else
		session_start(wl->w, snap, wl->index, fd, sa, NULL);
}

static void *
serve_worker_main(void *arg)
{
	struct worker *w = arg;

	loop_run(w->loop);
	proxy_accept_close_all(w);
	session_free_all(w);
	return NULL;
}

static void
serve_worker_stop_accepting(void *arg)
{
	struct worker *w = arg;

	for (size_t i = 0; i < w->nlisteners; i++) {
		listener_accept_free(w->listeners[i].accept);
		w->listeners[i].accept = NULL;
	}
}

static void
serve_worker_close_all(void *arg)
{
	proxy_accept_close_all(arg);
	session_close_all(arg);
}

static void
serve_worker_stop(void *arg)
{
	struct worker *w = arg;

	loop_stop(w->loop);
}

static struct worker *
serve_worker_new(struct server *srv, const struct conf *c, char *err, size_t errlen)
{
	struct worker *w = xcalloc(1, sizeof(*w));

	w->srv = srv;
	w->loop = loop_new();
	idmap_init(&w->sessions);
	w->listeners = xcalloc(c->nlistens, sizeof(*w->listeners));
	w->nlisteners = c->nlistens;
	for (size_t i = 0; i < c->nlistens; i++) {
		const struct conf_listen *l = &c->listens[i];
		int fd =
		    listener_socket((const struct sockaddr *)&l->addr, l->addrlen, err, errlen);

		w->listeners[i].w = w;
		w->listeners[i].index = i;
		if (fd == -1)
			return w; /* caller sees err[0] and frees */
		w->listeners[i].accept =
		    listener_accept_new(w->loop, fd, serve_accept_cb, &w->listeners[i]);
		if (w->listeners[i].accept == NULL) {
			snprintf(err, errlen, "cannot listen on %s", l->address);
			return w;
		}
	}
	return w;
}

static void
serve_worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	serve_worker_stop_accepting(w);
	free(w->listeners);
	idmap_free(&w->sessions);
	loop_free(w->loop);
	free(w);
}

static int
serve_threads(const struct conf *c)
{
	long n;

	if (c->threads > 0)
		return c->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static bool
serve_same_listeners(const struct conf *a, const struct conf *b)
{
	if (a->nlistens != b->nlistens)
		return false;
	for (size_t i = 0; i < a->nlistens; i++) {
		if (strcmp(a->listens[i].name, b->listens[i].name) != 0 ||
		    strcmp(a->listens[i].address, b->listens[i].address) != 0)
			return false;
	}
	return true;
}

/* [admin] token_file and auth into the admin listener. */
static void
serve_admin_auth(struct admin *a, const struct conf *c)
{
	admin_set_auth(a, c->admin_token,
	    c->admin_auth == CONF_ADMIN_AUTH_ALL ? ADMIN_AUTH_ALL : ADMIN_AUTH_CHANGES);
}

/* Loads the credentials of c ([auth] backend, [oauth]) once, to report
 * what is wrong with them, and lets them go: the auth process holds them.
 * 0, or -1 with err. */
static int
serve_check_auth(const struct conf *c, char *err, size_t errlen)
{
	struct authdb *db = NULL;
	struct oauth *o = NULL;
	char e[1024] = "";

	if (c->backend != NULL && (db = authdb_open(c, err, errlen)) == NULL)
		return -1;
	authdb_free(db);
	if (oauth_is_configured(c) && (o = oauth_open(c, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "%s: [oauth]: %s", c->path, e);
		return -1;
	}
	oauth_free(o);
	return 0;
}

static void
serve_reload(struct server *srv, const char *path)
{
	char err[1024];
	struct server_snap *snap, *old;

	snap = serve_snap_new(path, err, sizeof(err));
	if (snap == NULL) {
		log_event(LOG_ERR, "reload", 0, "{s:s, s:s}", "result", "fail", "error", err);
		return;
	}
	if (!serve_same_listeners(srv->snap->conf, snap->conf)) {
		log_event(LOG_ERR, "reload", 0, "{s:s, s:s}", "result", "fail", "error",
		    "[listen] sections changed: restart the server to apply them");
		server_snap_put(snap);
		return;
	}
	/* the credentials must load before the auth process is told to
	 * re-read them (it keeps the old ones if it cannot) */
	if (serve_check_auth(snap->conf, err, sizeof(err)) == -1) {
		log_event(LOG_ERR, "reload", 0, "{s:s, s:s}", "result", "fail", "error", err);
		server_snap_put(snap);
		return;
	}
	/* the passwd file and the JWKS are re-read there; other [auth] and
	 * [oauth] changes need a restart */
	supervise_reload(srv);
	log_reopen();
	sendquota_reload(srv->sendquota);
	/* a new [admin] token_file or auth applies at once (the address, and
	 * removing the section, need a restart); the token was read by
	 * conf_load, so a bad token file failed the reload above */
	if (srv->admin != NULL && snap->conf->admin)
		serve_admin_auth(srv->admin, snap->conf);
	pthread_mutex_lock(&srv->lock);
	old = srv->snap;
	srv->snap = snap;
	pthread_mutex_unlock(&srv->lock);
	server_snap_put(old);
	log_event(LOG_NOTICE, "reload", 0, "{s:s}", "result", "ok");
}

static void
serve_shutdown(struct server *srv)
{
	const struct conf *c = srv->snap->conf;
	struct timespec start, now;

	__atomic_store_n(&srv->shutting_down, true, __ATOMIC_RELAXED);
	log_event(LOG_NOTICE, "shutdown", 0, "{s:i}", "sessions",
	    (int)__atomic_load_n(&srv->sessions, __ATOMIC_RELAXED));
	for (size_t i = 0; i < srv->nworkers; i++)
		loop_post(srv->workers[i]->loop, serve_worker_stop_accepting, srv->workers[i]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (long long)(now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000;
		if (__atomic_load_n(&srv->sessions, __ATOMIC_RELAXED) == 0 ||
		    ms >= (long long)c->shutdown_grace * 1000)
			break;
		usleep(20 * 1000);
	}
	for (size_t i = 0; i < srv->nworkers; i++)
		loop_post(srv->workers[i]->loop, serve_worker_close_all, srv->workers[i]);
	/* closing sessions flush their 421; give them a moment */
	for (int i = 0; i < 40 && __atomic_load_n(&srv->sessions, __ATOMIC_RELAXED) > 0; i++)
		usleep(50 * 1000);
}

/* Every session is a descriptor: use all the kernel lets this process have. */
static void
serve_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
serve_run(struct server *srv, const char *path)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		long long ms = supervise_next_ms(srv);
		struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

		sig = ms < 0 ? sigwaitinfo(&set, NULL) : sigtimedwait(&set, NULL, &ts);
		if (sig == -1) {
			supervise_tick(srv);
			continue;
		}
		if (sig == SIGCHLD) {
			supervise_reap(srv);
			supervise_tick(srv);
			continue;
		}
		if (sig == SIGHUP) {
			serve_reload(srv, path);
			continue;
		}
		if (sig == SIGUSR1 || sig == SIGUSR2) {
			if (srv->sched != NULL && sig == SIGUSR1)
				scheduler_flush(srv->sched);
			else if (srv->sched != NULL)
				scheduler_rescan(srv->sched);
			continue;
		}
		serve_shutdown(srv);
		return 0;
	}
}

/* smtpgate_bans_active, read at scrape time on the admin thread */
static double
serve_bans_active_cb(void *arg)
{
	return (double)limiter_bans_active(arg, limiter_now_ms());
}

/* The [admin] listener: routes, then the thread. After the workers, so a
 * handler that posts to the loops finds them running. */
static int
serve_admin_start(struct server *srv, const struct conf *c, char *err, size_t errlen)
{
	srv->admin = admin_new();
	/* routes of other modules (limiter: /bans) go right here */
	admin_route(srv->admin, "/bans", 0, ban_routes_handler, srv); /* GET lists addresses */

	/* observability and quotas: /metrics, /healthz, /quota */
	obs_admin_routes(srv->obs, srv->admin, srv);
	sendquota_admin_routes(srv->sendquota, srv->admin);
	serve_admin_auth(srv->admin, c);
	return admin_start(
	    srv->admin, (const struct sockaddr *)&c->admin_addr, c->admin_addrlen, err, errlen);
}

/* Settings that work but weaken security, logged once at start
 * (`smtpgate audit` reports them too). */
static void
serve_config_warnings(const struct conf *c)
{
	for (size_t i = 0; i < c->nmechanisms; i++) {
		if (strcmp(c->mechanisms[i], "CRAM-MD5") == 0)
			log_event(LOG_WARNING, "config_warning", 0, "{s:s, s:s, s:s}", "key",
			    "[auth] mechanisms", "value", "CRAM-MD5", "warning",
			    "CRAM-MD5 needs plaintext-equivalent {CRAM-MD5} secrets in the passwd "
			    "file and has no channel binding; prefer SCRAM-SHA-256(-PLUS)");
	}
	if (c->admin && c->admin_token == NULL)
		log_event(LOG_WARNING, "config_warning", 0, "{s:s, s:s, s:s}", "key",
		    "[admin] token_file", "value", "(none)", "warning",
		    "the admin API has no authentication: every local user can lift bans and "
		    "quota holds; set token_file (smtpgate audit: admin-unauthenticated)");
}

/* The services every worker shares, in the order they depend on each other.
 * 0, or -1 with the error printed (exit status 2). */
static int
serve_open_services(struct server *srv, const char *path, struct server_snap **sched_snap_r)
{
	const struct conf *c = srv->snap->conf;
	char err[1024] = "";
	char *bans;

	srv->queue = queue_open(c, err, sizeof(err));
	if (srv->queue == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return -1;
	}
	/* delivery, with its own reference to the start-up config ([relay]
	 * and [route] changes need a restart) */
	if (scheduler_is_configured(c)) {
		*sched_snap_r = server_snap_get(srv);
		srv->sched = scheduler_new((*sched_snap_r)->conf, err, sizeof(err));
		if (srv->sched == NULL || scheduler_start(srv->sched, err, sizeof(err)) == -1) {
			fprintf(stderr, "smtpgate: %s: %s\n", path, err);
			return -1;
		}
		queue_set_durable_hook(srv->queue, scheduler_notify, srv->sched);
	}
	srv->obs = obs_new();
	srv->sendquota = sendquota_new(c, srv->obs, err, sizeof(err));
	if (srv->sendquota == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return -1;
	}
	/* bans survive restarts: SPOOL/bans.json, saved by the limiter's own
	 * thread (it fsyncs) within a second of each change */
	srv->limiter = limiter_new(NULL);
	bans = ban_routes_state_path(c);
	if (limiter_bans_load(srv->limiter, bans, limiter_now_ms(), err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s (remove or repair it)\n", err);
		free(bans);
		return -1;
	}
	limiter_persist_start(srv->limiter, bans);
	free(bans);
	obs_set_bans_active(srv->obs, serve_bans_active_cb, srv->limiter);
	return 0;
}

/* The loop threads, the admin listener, then signals until the end; the
 * loops are stopped and joined before it returns. Returns the exit status. */
static int
serve_workers_run(struct server *srv, const char *path)
{
	const struct conf *c = srv->snap->conf;
	char err[1024] = "";
	int rc;

	if (listener_check_unused(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s: %s\n", path, err);
		return 2;
	}
	srv->nworkers = (size_t)serve_threads(c);
	srv->workers = xcalloc(srv->nworkers, sizeof(*srv->workers));
	for (size_t i = 0; i < srv->nworkers; i++) {
		srv->workers[i] = serve_worker_new(srv, c, err, sizeof(err));
		if (err[0] != '\0') {
			fprintf(stderr, "smtpgate: %s: %s\n", path, err);
			srv->nworkers = i + 1;
			return 2;
		}
	}
	for (size_t i = 0; i < srv->nworkers; i++)
		pthread_create(&srv->workers[i]->thread, NULL, serve_worker_main, srv->workers[i]);
	if (c->admin && serve_admin_start(srv, c, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s: %s\n", path, err);
		rc = 2;
	} else {
		log_event(LOG_NOTICE, "start", 0, "{s:s, s:i, s:i}", "config", path, "threads",
		    (int)srv->nworkers, "listeners", (int)c->nlistens);
		serve_config_warnings(c);
		rc = serve_run(srv, path);
	}
	/* before the services and loops its handlers use */
	admin_free(srv->admin);
	srv->admin = NULL;
	/* answers still in flight reach their loops before the loops stop */
	queue_free(srv->queue);
	srv->queue = NULL;
	/* after the committer, whose hook it is; c may be gone after a SIGHUP */
	scheduler_free(srv->sched, srv->snap->conf->shutdown_grace);
	srv->sched = NULL;
	/* pending AUTH requests are answered (454) while the loops still run */
	supervise_stop(srv);
	for (size_t i = 0; i < srv->nworkers; i++)
		loop_post(srv->workers[i]->loop, serve_worker_stop, srv->workers[i]);
	for (size_t i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i]->thread, NULL);
	log_event(LOG_NOTICE, "stop", 0, NULL);
	return rc;
}

/* The credentials backends; --check ends after them with the audit. 0 to
 * go on, or the exit status. */
static int
serve_open_auth(struct server *srv, const char *path, bool check)
{
	const struct conf *c = srv->snap->conf;
	char err[1024] = "";

	if (serve_check_auth(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 2;
	}
	if (!check)
		return -1;
	/* warnings are printed but do not fail the check (audit_check_print) */
	if (audit_check_print(c, stdout) == -1) {
		fprintf(stderr, "smtpgate: %s: the audit found errors (see above)\n", path);
		return 2;
	}
	printf("%s: configuration OK\n", path);
	return 0;
}

int
serve_daemon(const char *path, bool check)
{
	char err[1024] = "";
	struct server srv;
	struct server_snap *sched_snap = NULL;
	const struct conf *c;
	sigset_t set;
	int rc = 2;

	/* signals are taken by sigwait on this thread only: block them before
	 * any thread (auth workers, committer, loops) exists, so all inherit it */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	srv.snap = serve_snap_new(path, err, sizeof(err));
	if (srv.snap == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 2;
	}
	c = srv.snap->conf;
	if (serve_check_spool(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s\n", err);
		goto out;
	}
	if ((rc = serve_open_auth(&srv, path, check)) != -1)
		goto out;
	rc = 2;
	if (log_open(c->log) == -1) {
		fprintf(stderr, "smtpgate: %s: cannot open log %s: %s\n", path, c->log,
		    strerror(errno));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	serve_raise_nofile();
	loop_global_init();
	if (serve_open_services(&srv, path, &sched_snap) == -1)
		goto out;
	if (supervise_start(&srv, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s: %s\n", path, err);
		goto out;
	}
	rc = serve_workers_run(&srv, path);
	for (size_t i = 0; i < srv.nworkers; i++)
		serve_worker_free(srv.workers[i]);
	free(srv.workers);
out:
	queue_free(srv.queue);
	scheduler_free(srv.sched, 0);
	if (sched_snap != NULL)
		server_snap_put(sched_snap);
	supervise_stop(&srv);
	sendquota_free(srv.sendquota); /* after the sessions and the admin thread */
	obs_free(srv.obs);
	limiter_free(srv.limiter); /* after the sessions: saves the bans a last time */
	server_snap_put(srv.snap);
	pthread_mutex_destroy(&srv.lock);
	return rc;
}
