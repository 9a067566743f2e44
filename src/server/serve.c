/*
 * serve: the processes of `smtpgate serve` (cmd/serve_cmd.c) that the
 * parent (server/parent.h) relies on: serve_conf_check, the parent's check
 * of a configuration, and serve_smtp_main, the smtpgate-smtp process the
 * parent starts: the shared
 * services, one event-loop thread per core (each with its own SO_REUSEPORT
 * socket per listener, bound by the parent) and, on the main thread, the
 * signals and the parent's control socket:
 *   RELOAD (the parent's SIGHUP)  re-read the config and certificates from
 *            the files the parent handed over; live sessions keep the
 *            snapshot they started with
 *   SIGTERM, SIGINT  stop accepting, let sessions finish for
 *            [limits] shutdown_grace, then close the rest with 421 and exit
 * Delivery is the relay process's (server/relay_proc.h): each message made
 * durable here is announced to it (server/relayc.h), and this process loads
 * the configuration without the [dkim] keys, which it never needs.
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/authdb.h"
#include "auth/oauth.h"
#include "cluster/cluster.h"
#include "conf/conf.h"
#include "lib/log.h"
#include "lib/vault.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "net/ipc_sock.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/tls.h"
#include "policy/limiter.h"
#include "queue/queue.h"
#include "server/ban_routes.h"
#include "server/obs.h"
#include "server/proxy_accept.h"
#include "server/relayc.h"
#include "server/sandbox.h"
#include "server/sendquota.h"
#include "server/serve.h"
#include "server/server.h"
#include "server/session.h"
#include "server/authc.h"
#include "server/child.h"

static bool
serve_needs_tls(const struct conf *c)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].tls != CONF_TLS_NONE)
			return true;
	}
	return false;
}

/* without: CONF_WITHOUT_* (conf/conf.h), the secrets left out. */
static struct server_snap *
serve_snap_new(const char *path, unsigned without, char *err, size_t errlen)
{
	struct server_snap *snap;
	struct conf *c = conf_load_without(path, without, err, errlen);

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
serve_worker_new(struct server *srv, const struct conf *c, size_t t, char *err, size_t errlen)
{
	struct worker *w = xcalloc(1, sizeof(*w));

	w->srv = srv;
	w->loop = loop_new();
	authc_attach(srv->authc, t, w->loop);
	idmap_init(&w->sessions);
	w->listeners = xcalloc(c->nlistens, sizeof(*w->listeners));
	w->nlisteners = c->nlistens;
	for (size_t i = 0; i < c->nlistens; i++) {
		const struct conf_listen *l = &c->listens[i];
		int fd = srv->lfd[t * srv->lfd_listens + i];

		srv->lfd[t * srv->lfd_listens + i] = -1; /* the accepter's now */
		w->listeners[i].w = w;
		w->listeners[i].index = i;
		if (fd == -1) {
			snprintf(err, errlen, "no socket for %s from the parent", l->address);
			return w; /* caller sees err[0] and frees */
		}
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

/* The parent's RELOAD: the configuration and certificates read again
 * through the files it handed over (srv->vault_next), which it checked.
 * CERTS is the same with the configuration in force and renewed
 * certificates (server/certwatch.h); event names which. */
static void
serve_reload(struct server *srv, const char *path, const char *event)
{
	char err[1024];
	struct server_snap *snap, *old;
	struct vault *prev = vault_install(srv->vault_next);

	srv->vault_next = NULL;
	vault_free(prev);
	if (srv->log_next != -1)
		log_use_fd(srv->log_next);
	srv->log_next = -1;
	snap = serve_snap_new(path, CONF_WITHOUT_DKIM_KEYS, err, sizeof(err));
	if (snap == NULL) {
		log_event(LOG_ERR, event, 0, "{s:s, s:s}", "result", "fail", "error", err);
		return;
	}
	if (!serve_same_listeners(srv->snap->conf, snap->conf)) {
		log_event(LOG_ERR, event, 0, "{s:s, s:s}", "result", "fail", "error",
		    "[listen] sections changed: restart the server to apply them");
		server_snap_put(snap);
		return;
	}
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
	log_event(LOG_NOTICE, event, 0, "{s:s}", "result", "ok");
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

/* One frame from the parent (server/child.h), with the descriptor that
 * came with it (taken). 0, or -1 when it cannot be kept. */
static int
serve_ctl_frame(struct server *srv, const char *path, const struct ipc_frame *f, int fd)
{
	struct ipc_reader rd;
	char str[4096];

	ipc_reader_init(&rd, f);
	switch (f->type) {
	case CHILD_MSG_AUTH:
	case CHILD_MSG_RELAY: {
		uint32_t t, gen; /* the loop it is for (0 for the relay), the parent's count */

		if (ipc_get_u32(&rd, &t) == -1 || ipc_get_u32(&rd, &gen) == -1) {
			if (fd != -1)
				close(fd);
		} else if (f->type == CHILD_MSG_AUTH) {
			authc_set_channel(srv->authc, t, gen, fd);
		} else {
			relayc_set_channel(srv->relayc, gen, fd);
		}
		return 0;
	}
	case CHILD_MSG_EXIT:
		if (ipc_get_str(&rd, str, 63) == 0)
			obs_child_exit(srv->obs, str);
		break;
	case CHILD_MSG_LOG:
		if (srv->log_next != -1)
			close(srv->log_next);
		srv->log_next = fd;
		return 0;
	case CHILD_MSG_FILE:
		if (srv->vault_next == NULL)
			srv->vault_next = vault_new();
		if (fd != -1 && ipc_get_str(&rd, str, sizeof(str) - 1) == 0)
			return vault_add(srv->vault_next, str, fd) == -1 ? -1 : 0;
		break;
	case CHILD_MSG_RELOAD:
		serve_reload(srv, path, "reload");
		break;
	case CHILD_MSG_CERTS:
		serve_reload(srv, path, "tls_reload");
		break;
	default:
		break;
	}
	if (fd != -1)
		close(fd);
	return 0;
}

/* One frame from the parent. 0, or -1 when the parent is gone or talks
 * nonsense: the process then ends as on SIGTERM. */
static int
serve_ctl(struct server *srv, const char *path, unsigned char *buf)
{
	struct ipc_frame f;
	int fd = -1, r = ipc_sock_recv(srv->ctl, buf, &f, &fd);

	if (r == -1 && errno == EAGAIN)
		return 0;
	if (r != 1)
		return -1;
	return serve_ctl_frame(srv, path, &f, fd);
}

/* The main thread: signals (a signalfd) and the parent's frames. */
static int
serve_run(struct server *srv, const char *path, const sigset_t *set)
{
	unsigned char *buf = xmalloc(IPC_FRAME_MAX);
	int sfd = signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
	struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = srv->ctl, .events = POLLIN}};
	bool stop = sfd == -1;

	while (!stop) {
		struct signalfd_siginfo si;

		if (poll(pfd, 2, -1) == -1 && errno != EINTR)
			break;
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
		    serve_ctl(srv, path, buf) == -1)
			break; /* the parent is gone: end as on SIGTERM */
		while (!stop && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				stop = true;
			/* SIGHUP: the parent's (pkill -HUP smtpgate reaches it too);
			 * SIGUSR1, SIGUSR2: the relay process's */
		}
	}
	if (sfd != -1)
		close(sfd);
	free(buf);
	serve_shutdown(srv);
	return 0;
}

/* smtpgate_bans_active, read at scrape time on the admin thread */
static double
serve_bans_active_cb(void *arg)
{
	return (double)limiter_bans_active(arg, limiter_now_ms());
}

/* smtpgate_cluster_up, read at scrape time */
static double
serve_cluster_up_cb(void *arg)
{
	return cluster_is_up(arg) ? 1 : 0;
}

/* The [admin] listener: routes, then the thread. After the workers, so a
 * handler that posts to the loops finds them running. */
static int
serve_admin_start(struct server *srv, const struct conf *c, char *err, size_t errlen)
{
	int fd;

	srv->admin = admin_new();
	/* routes of other modules (limiter: /bans) go right here */
	admin_route(srv->admin, "/bans", 0, ban_routes_handler, srv); /* GET lists addresses */

	/* observability and quotas: /metrics, /healthz, /quota */
	obs_admin_routes(srv->obs, srv->admin, srv);
	sendquota_admin_routes(srv->sendquota, srv->admin);
	serve_admin_auth(srv->admin, c);
	fd = srv->admin_fd;
	srv->admin_fd = -1;
	if (fd == -1) {
		snprintf(err, errlen, "[admin]: no socket from the parent");
		return -1;
	}
	return admin_start_fd(srv->admin, fd, err, errlen);
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
serve_open_services(struct server *srv)
{
	const struct conf *c = srv->snap->conf;
	char err[1024] = "";
	char *bans;

	srv->queue = queue_open(c, err, sizeof(err));
	if (srv->queue == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return -1;
	}
	/* delivery is the relay process's (without [relay] or [route] there
	 * is none, and nothing reads the channel) */
	queue_set_durable_hook(srv->queue, relayc_notify, srv->relayc);
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
	/* the shared state: its own thread keeps the limiter current */
	if (c->cluster) {
		srv->cluster = cluster_new(c, srv->limiter, err, sizeof(err));
		if (srv->cluster != NULL)
			sendquota_set_cluster(srv->sendquota, srv->cluster);
		if (srv->cluster == NULL || cluster_start(srv->cluster, err, sizeof(err)) == -1) {
			fprintf(stderr, "smtpgate: %s\n", err);
			return -1;
		}
		obs_set_cluster_up(srv->obs, serve_cluster_up_cb, srv->cluster);
	}
	return 0;
}

static int serve_send_ready(struct server *srv);
static const char *serve_user_name(void);

/* The loop threads, the admin listener, READY to the parent, then its
 * frames and the signals until the end; the loops are stopped and joined
 * before it returns. Returns the exit status. */
static int
serve_workers_run(struct server *srv, const char *path, const sigset_t *set)
{
	const struct conf *c = srv->snap->conf;
	char err[1024] = "";
	int rc;

	srv->nworkers = srv->lfd_threads;
	srv->workers = xcalloc(srv->nworkers, sizeof(*srv->workers));
	for (size_t i = 0; i < srv->nworkers; i++) {
		srv->workers[i] = serve_worker_new(srv, c, i, err, sizeof(err));
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
	} else if (sandbox_enter(SANDBOX_SMTP, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate-smtp: %s\n", err);
		rc = 2;
	} else if (serve_send_ready(srv) == -1) {
		rc = 2;
	} else {
		log_event(LOG_NOTICE, "start", 0, "{s:s, s:i, s:i, s:s}", "config", path, "threads",
		    (int)srv->nworkers, "listeners", (int)c->nlistens, "user", serve_user_name());
		serve_config_warnings(c);
		rc = serve_run(srv, path, set);
	}
	/* before the services and loops its handlers use */
	admin_free(srv->admin);
	srv->admin = NULL;
	/* answers still in flight reach their loops before the loops stop */
	queue_free(srv->queue);
	srv->queue = NULL;
	/* pending AUTH requests are answered (454) while the loops still run */
	authc_close(srv->authc);
	for (size_t i = 0; i < srv->nworkers; i++)
		loop_post(srv->workers[i]->loop, serve_worker_stop, srv->workers[i]);
	for (size_t i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i]->thread, NULL);
	log_event(LOG_NOTICE, "stop", 0, NULL);
	return rc;
}

/* --- the parent's side --------------------------------------------------------- */

struct conf *
serve_conf_check(
    const char *path, const struct conf *running, struct vault **v_r, char *err, size_t errlen)
{
	struct server_snap *snap;
	struct conf *c;

	/* every file the configuration makes us read, for the smtp process */
	vault_record_begin();
	snap = serve_snap_new(path, 0, err, errlen);
	*v_r = vault_record_end();
	if (snap == NULL)
		return NULL;
	c = snap->conf;
	snap->conf = NULL;
	server_snap_put(snap);
	if (serve_check_spool(c, err, errlen) == -1) {
		conf_free(c);
		return NULL;
	}
	if (running != NULL && !serve_same_listeners(running, c)) {
		snprintf(
		    err, errlen, "[listen] sections changed: restart the server to apply them");
		conf_free(c);
		return NULL;
	}
	/* the credentials must load before the auth process is told to
	 * re-read them (it keeps the old ones if it cannot); not recorded:
	 * the smtp process never holds them */
	if (serve_check_auth(c, err, errlen) == -1) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* --- the smtp process ---------------------------------------------------------- */

/* The parent's set-up frames, up to START: listeners, admin socket, and
 * what serve_ctl_frame takes (log, files, the auth channel, exits). 0, or
 * -1 (printed). */
static int
serve_setup(struct server *srv, const char *path, unsigned char *buf)
{
	size_t cap = 0, n = 0;
	uint32_t(*l)[3] = NULL; /* listener, thread, fd */
	int rc = -1;

	for (;;) {
		struct ipc_frame f;
		struct ipc_reader rd;
		uint32_t li, t;
		int fd = -1;

		if (ipc_sock_recv(srv->ctl, buf, &f, &fd) != 1) {
			fprintf(stderr, "smtpgate-smtp: the parent's set-up ended early\n");
			break;
		}
		if (f.type == CHILD_MSG_START) {
			rc = 0;
			break;
		}
		if (f.type == CHILD_MSG_ADMIN && fd != -1 && srv->admin_fd == -1) {
			srv->admin_fd = fd;
			continue;
		}
		if (f.type != CHILD_MSG_LISTENER) {
			if (serve_ctl_frame(srv, path, &f, fd) == -1)
				break;
			continue;
		}
		ipc_reader_init(&rd, &f);
		if (fd == -1 || ipc_get_u32(&rd, &li) == -1 || ipc_get_u32(&rd, &t) == -1 ||
		    t > 255 || li > 255) {
			fprintf(stderr, "smtpgate-smtp: a bad listener from the parent\n");
			if (fd != -1)
				close(fd);
			break;
		}
		if (n == cap) {
			cap = cap * 2 + 16;
			l = xrealloc(l, cap * sizeof(*l));
		}
		l[n][0] = li;
		l[n][1] = t;
		l[n][2] = (uint32_t)fd;
		n++;
		if (t + 1 > srv->lfd_threads)
			srv->lfd_threads = t + 1;
		if (li + 1 > srv->lfd_listens)
			srv->lfd_listens = li + 1;
	}
	srv->lfd = xcalloc(srv->lfd_threads * srv->lfd_listens + 1, sizeof(*srv->lfd));
	for (size_t i = 0; i < srv->lfd_threads * srv->lfd_listens; i++)
		srv->lfd[i] = -1;
	for (size_t i = 0; i < n; i++) {
		int *slot = &srv->lfd[l[i][1] * srv->lfd_listens + l[i][0]];

		if (*slot != -1)
			close(*slot);
		*slot = (int)l[i][2];
	}
	free(l);
	return rc;
}

static int
serve_send_ready(struct server *srv)
{
	static struct ipc_out o;

	ipc_out_begin(&o, CHILD_MSG_READY, 0);
	if (ipc_out_end(&o) == -1 || ipc_sock_send(srv->ctl, &o, -1) == -1) {
		fprintf(stderr, "smtpgate-smtp: cannot reach the parent: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* The user this process runs as, for the start event. */
static const char *
serve_user_name(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return pw != NULL ? pw->pw_name : "?";
}

/* Everything the sessions share, from what the parent handed over. 0, or
 * the exit status. */
static int
serve_smtp_open(struct server *srv, const char *path)
{
	unsigned char *buf = xmalloc(IPC_FRAME_MAX);
	char err[1024] = "";
	int rc = serve_setup(srv, path, buf);

	free(buf);
	if (rc == -1)
		return 2;
	vault_free(vault_install(srv->vault_next));
	srv->vault_next = NULL;
	if (srv->log_next != -1)
		log_use_fd(srv->log_next);
	srv->log_next = -1;
	srv->snap = serve_snap_new(path, CONF_WITHOUT_DKIM_KEYS, err, sizeof(err));
	if (srv->snap == NULL) {
		fprintf(stderr, "smtpgate-smtp: %s\n", err);
		return 2;
	}
	if (srv->lfd_threads == 0 || srv->lfd_listens != srv->snap->conf->nlistens) {
		fprintf(stderr, "smtpgate-smtp: %s: the parent's listeners do not match\n", path);
		return 2;
	}
	/* before any thread: Landlock holds for the threads started later */
	if (sandbox_enter_files(SANDBOX_SMTP, srv->snap->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate-smtp: %s\n", err);
		return 2;
	}
	serve_raise_nofile();
	loop_global_init();
	return serve_open_services(srv) == -1 ? 2 : 0;
}

/* Asks the parent for a new channel (type CHILD_MSG_AUTH for loop i's, or
 * CHILD_MSG_RELAY) in place of its gen-th, which failed. Any thread (a loop
 * too: the send never waits; the control socket takes whole frames). 0, or
 * -1 when the ask could not go (the caller asks again later). */
static int
serve_ask_channel(struct server *srv, uint32_t type, size_t i, uint32_t gen)
{
	struct ipc_out *o = xmalloc(sizeof(*o));
	int rc;

	ipc_out_begin(o, type, 0);
	ipc_put_u32(o, (uint32_t)i);
	ipc_put_u32(o, gen);
	rc = ipc_out_end(o) == 0 ? ipc_sock_send_nowait(srv->ctl, o) : -1;
	if (rc == -1)
		log_event(LOG_ERR, type == CHILD_MSG_AUTH ? "auth_channel" : "relay_channel", 0,
		    "{s:s, s:s, s:i, s:s}", "process", "smtp", "error",
		    "cannot ask the parent for a new channel", "loop", (int)i, "reason",
		    strerror(errno));
	free(o);
	return rc;
}

/* authc_lost_cb, on loop i (authc asks again a second later). */
static void
serve_auth_lost(void *ctx, size_t i, uint32_t gen)
{
	(void)serve_ask_channel(ctx, CHILD_MSG_AUTH, i, gen);
}

/* authc_timed_cb, on a loop: smtpgate_auth_check_seconds. */
static void
serve_auth_timed(void *ctx, const char *request, double seconds)
{
	struct server *srv = ctx;

	obs_auth_check(srv->obs, request, seconds);
}

/* relayc_lost_cb, on a committer thread. */
static int
serve_relay_lost(void *ctx, uint32_t gen)
{
	return serve_ask_channel(ctx, CHILD_MSG_RELAY, 0, gen);
}

int
serve_smtp_main(const char *path, int ctl)
{
	struct server srv;
	sigset_t set;
	int rc;

	(void)prctl(PR_SET_NAME, "smtpgate-smtp");
	/* without its parent nobody restarts it or hands it a reload: it ends at
	 * once, so that a new server may bind the addresses */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 2;
	/* no exec can gain privileges, no core dump or ptrace by its user */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 || prctl(PR_SET_DUMPABLE, 0) == -1) {
		fprintf(stderr, "smtpgate-smtp: prctl: %s\n", strerror(errno));
		return 2;
	}
	child_signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	srv.ctl = ctl;
	srv.admin_fd = -1;
	srv.log_next = -1;
	srv.obs = obs_new();
	srv.authc = authc_new(serve_auth_lost, &srv);
	authc_set_timed(srv.authc, serve_auth_timed, &srv);
	srv.relayc = relayc_new(serve_relay_lost, &srv);
	if ((rc = serve_smtp_open(&srv, path)) == 0) {
		rc = serve_workers_run(&srv, path, &set);
		/* before the sessions' loops and sendquota, which it posts to */
		cluster_free(srv.cluster);
		srv.cluster = NULL;
		/* before the loops its channels are in */
		authc_free(srv.authc);
		srv.authc = NULL;
		for (size_t i = 0; i < srv.nworkers; i++)
			serve_worker_free(srv.workers[i]);
		free(srv.workers);
	}
	queue_free(srv.queue);
	relayc_free(srv.relayc); /* after the committer, whose hook it is */
	authc_free(srv.authc);
	sendquota_free(srv.sendquota); /* after the sessions and the admin thread */
	obs_free(srv.obs);
	cluster_free(srv.cluster); /* before the limiter it feeds (a failed start) */
	limiter_free(srv.limiter); /* after the sessions: saves the bans a last time */
	if (srv.snap != NULL)
		server_snap_put(srv.snap);
	for (size_t i = 0; srv.lfd != NULL && i < srv.lfd_threads * srv.lfd_listens; i++) {
		if (srv.lfd[i] != -1)
			close(srv.lfd[i]);
	}
	free(srv.lfd);
	if (srv.admin_fd != -1)
		close(srv.admin_fd);
	vault_free(srv.vault_next);
	vault_free(vault_install(NULL));
	pthread_mutex_destroy(&srv.lock);
	return rc;
}
