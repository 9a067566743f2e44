/*
 * parent: see parent.h.
 */
#include "server/parent.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "conf/conf.h"
#include "diag/audit.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/vault.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "net/ipc_sock.h"
#include "net/listener.h"
#include "relay/creds.h"
#include "relay/scheduler.h"
#include "server/auth_msg.h"
#include "server/certwatch.h"
#include "server/child.h"
#include "server/notify.h"
#include "server/serve.h"

#define PARENT_READY_MS 60000 /* the smtp or relay process's start, at most */
#define PARENT_RELAY_STOP_MS 5000 /* beyond shutdown_grace, for the relay process */

struct parent {
	const char *path;
	const struct conf *c; /* the configuration started with */
	struct conf *now; /* the one of the last reload (NULL: c), whose files vault holds */
	struct child auth, smtp, relay;
	bool has_relay; /* c routes anything: the relay process runs */
	int *lfd; /* [thread * nlistens + listener] */
	size_t nthreads, nlistens;
	int admin_fd; /* -1: no [admin] */
	struct vault *vault; /* the files of the configuration in force */
	struct certwatch *certs; /* its certificate files, watched for renewal */
	unsigned auth_exits, smtp_exits, relay_exits;
	/* auth channels handed to the smtp process's loop t since it started
	 * (a loop that lost one asks again with this count: parent_ctl) */
	uint32_t *auth_sent;
	uint32_t relay_sent; /* the same for its channel to the relay process */
	/* when a lost one was last replaced (ms), per loop and for the relay:
	 * a faster smtp process is not served (it asks at most once a second) */
	long long *auth_replaced, relay_replaced;
};

/* --- the user ------------------------------------------------------------------ */

static uid_t parent_uid;
static gid_t parent_gid;

/* Changes the owner of one file of the spool (nftw). */
static int
parent_chown_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	if ((sb->st_uid != parent_uid || sb->st_gid != parent_gid) &&
	    lchown(fpath, parent_uid, parent_gid) == -1)
		return -1;
	return 0;
}

/* Started as root: the smtp process's user, and the spool given to it.
 * 0, or -1 with err. */
static int
parent_user(struct parent *p, char *err, size_t errlen)
{
	const struct conf *c = p->c;
	struct passwd *pw;

	if (geteuid() != 0)
		return 0; /* every process runs as this user */
	errno = 0;
	pw = getpwnam(c->user);
	if (pw == NULL) {
		snprintf(err, errlen,
		    "[server] user %s does not exist%s%s; create it: useradd --system "
		    "--home-dir /var/spool/smtpgate --shell /usr/sbin/nologin %s",
		    c->user, errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "", c->user);
		return -1;
	}
	if (pw->pw_uid == 0)
		log_event(LOG_WARNING, "config_warning", 0, "{s:s, s:s, s:s}", "key",
		    "[server] user", "value", c->user, "warning",
		    "the process that reads the network runs as root: set [server] user to an "
		    "unprivileged user (smtpgate audit: server-user-root)");
	parent_uid = pw->pw_uid;
	parent_gid = pw->pw_gid;
	child_set_user(&p->smtp, pw->pw_uid, pw->pw_gid);
	child_set_user(&p->relay, pw->pw_uid, pw->pw_gid);
	if (mkdir(c->spool, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "[server] spool %s: %s", c->spool, strerror(errno));
		return -1;
	}
	/* FTW_PHYS: a link in the spool is changed, never followed */
	if (nftw(c->spool, parent_chown_cb, 16, FTW_PHYS) == -1) {
		snprintf(err, errlen, "[server] spool %s: cannot give it to %s: %s", c->spool,
		    c->user, strerror(errno));
		return -1;
	}
	return 0;
}

/* --- sockets --------------------------------------------------------------------- */

static int
parent_bind(struct parent *p, int threads, char *err, size_t errlen)
{
	const struct conf *c = p->c;

	if (listener_check_unused(c, err, errlen) == -1)
		return -1;
	p->nthreads = (size_t)threads;
	p->nlistens = c->nlistens;
	p->lfd = xcalloc(p->nthreads * p->nlistens + 1, sizeof(*p->lfd));
	p->auth_sent = xcalloc(p->nthreads, sizeof(*p->auth_sent));
	p->auth_replaced = xcalloc(p->nthreads, sizeof(*p->auth_replaced));
	for (size_t t = 0; t < p->nthreads; t++) {
		for (size_t i = 0; i < p->nlistens; i++) {
			const struct conf_listen *l = &c->listens[i];
			int fd = listener_socket(
			    (const struct sockaddr *)&l->addr, l->addrlen, err, errlen);

			p->lfd[t * p->nlistens + i] = fd;
			if (fd == -1)
				return -1;
		}
	}
	if (c->admin) {
		p->admin_fd = admin_listen(
		    (const struct sockaddr *)&c->admin_addr, c->admin_addrlen, err, errlen);
		if (p->admin_fd == -1)
			return -1;
	}
	return 0;
}

/* --- talking to the children --------------------------------------------------- */

static int
parent_send(int ctl, uint32_t type, const char *str, uint32_t a, uint32_t b, int fd)
{
	static struct ipc_out o;

	ipc_out_begin(&o, type, 0);
	if (str != NULL)
		ipc_put_str(&o, str);
	if (type == CHILD_MSG_LISTENER) {
		ipc_put_u32(&o, a);
		ipc_put_u32(&o, b);
	} else if (type == CHILD_MSG_AUTH || type == CHILD_MSG_RELAY) {
		ipc_put_u32(&o, a);
		ipc_put_u32(&o, b);
	}
	if (ipc_out_end(&o) == -1)
		return -1;
	return ipc_sock_send(ctl, &o, fd);
}

/* One channel between the smtp process and other, the relay process
 * (CHILD_MSG_RELAY), or the auth process (AUTH_MSG_CHANNEL, and to smtp
 * CHILD_MSG_AUTH with the loop thread it serves): one end to each. */
static int
parent_channel_one(struct parent *p, struct child *other, uint32_t thread)
{
	bool auth = other == &p->auth;
	int sv[2], rc;

	if (ipc_sock_pair(sv) == -1)
		return -1;
	rc = parent_send(
	         other->ctl, auth ? AUTH_MSG_CHANNEL : CHILD_MSG_RELAY, NULL, 0, 0, sv[1]) == 0 &&
	        parent_send(p->smtp.ctl, auth ? CHILD_MSG_AUTH : CHILD_MSG_RELAY, NULL, thread,
	            auth ? ++p->auth_sent[thread] : ++p->relay_sent, sv[0]) == 0
	    ? 0
	    : -1;
	close(sv[0]);
	close(sv[1]);
	return rc;
}

/* New channels between the smtp process and other, when both run: one to
 * the relay process, one per loop thread to the auth process (each loop
 * reads its answers itself: server/authc.h). */
static int
parent_channel(struct parent *p, struct child *other)
{
	int rc = 0;

	if (other->pid == 0 || p->smtp.pid == 0)
		return 0;
	if (other != &p->auth)
		return parent_channel_one(p, other, 0);
	for (size_t t = 0; rc == 0 && t < p->nthreads; t++)
		rc = parent_channel_one(p, other, (uint32_t)t);
	return rc;
}

static bool
parent_is_path(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* Whether the vault's file at path is kept from ch (DESIGN 2.1): the smtp
 * process never gets the [dkim] keys, the relay process neither the TLS
 * keys nor the admin token. The auth process gets every file. */
static bool
parent_withholds(const struct parent *p, const struct child *ch, const char *path)
{
	const struct conf *c = p->now != NULL ? p->now : p->c;

	for (size_t i = 0; ch == &p->smtp && i < c->ndkims; i++) {
		if (parent_is_path(c->dkims[i]->key_path, path))
			return true;
	}
	if (ch != &p->relay)
		return false;
	for (size_t i = 0; i < c->ncerts; i++) {
		if (parent_is_path(c->certs[i].key, path))
			return true;
	}
	return parent_is_path(c->admin_token_file, path);
}

/* The vault (what ch may have of it), then type (START or RELOAD). */
static int
parent_send_vault(struct parent *p, struct child *ch, uint32_t type)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < vault_count(p->vault); i++) {
		const char *path;
		int fd;

		vault_entry(p->vault, i, &path, &fd);
		if (!parent_withholds(p, ch, path))
			rc = parent_send(ch->ctl, CHILD_MSG_FILE, path, 0, 0, fd);
	}
	return rc == 0 ? parent_send(ch->ctl, type, NULL, 0, 0, -1) : -1;
}

/* The log and the vault, then type (START or RELOAD). */
static int
parent_send_files(struct parent *p, struct child *ch, uint32_t type)
{
	int log_fd = log_dup_fd(), rc;

	rc = parent_send(ch->ctl, CHILD_MSG_LOG, NULL, 0, 0, log_fd);
	if (log_fd != -1)
		close(log_fd);
	return rc == 0 ? parent_send_vault(p, ch, type) : -1;
}

static int
parent_setup_smtp(struct parent *p)
{
	int rc = 0;

	for (size_t t = 0; rc == 0 && t < p->nthreads; t++) {
		for (size_t i = 0; rc == 0 && i < p->nlistens; i++)
			rc = parent_send(p->smtp.ctl, CHILD_MSG_LISTENER, NULL, (uint32_t)i,
			    (uint32_t)t, p->lfd[t * p->nlistens + i]);
	}
	if (rc == 0 && p->admin_fd != -1)
		rc = parent_send(p->smtp.ctl, CHILD_MSG_ADMIN, NULL, 0, 0, p->admin_fd);
	for (unsigned i = 0; rc == 0 && i < p->auth_exits; i++)
		rc = parent_send(p->smtp.ctl, CHILD_MSG_EXIT, "auth", 0, 0, -1);
	for (unsigned i = 0; rc == 0 && i < p->smtp_exits; i++)
		rc = parent_send(p->smtp.ctl, CHILD_MSG_EXIT, "smtp", 0, 0, -1);
	for (unsigned i = 0; rc == 0 && i < p->relay_exits; i++)
		rc = parent_send(p->smtp.ctl, CHILD_MSG_EXIT, "relay", 0, 0, -1);
	/* a new smtp process counts its channels from none */
	memset(p->auth_sent, 0, p->nthreads * sizeof(*p->auth_sent));
	p->relay_sent = 0;
	if (rc == 0)
		rc = parent_channel(p, &p->auth);
	if (rc == 0)
		rc = parent_channel(p, &p->relay);
	return rc == 0 ? parent_send_files(p, &p->smtp, CHILD_MSG_START) : -1;
}

/* The relay process: the log, its files, and its channel from the smtp
 * process (which then has one end too). */
static int
parent_setup_relay(struct parent *p)
{
	if (parent_send_files(p, &p->relay, CHILD_MSG_START) == -1)
		return -1;
	return parent_channel(p, &p->relay);
}

/* Starts a child (and hands it what it needs). 0, or -1 with err. */
static int
parent_start(struct parent *p, struct child *ch, char *err, size_t errlen)
{
	if (child_start(ch, err, errlen) == -1)
		return -1;
	/* the auth process loads the configuration the parent checked too */
	if ((ch == &p->smtp                                          ? parent_setup_smtp(p)
	            : ch == &p->relay                                ? parent_setup_relay(p)
	            : parent_send_vault(p, ch, CHILD_MSG_START) == 0 ? parent_channel(p, ch)
	                                                             : -1) == -1) {
		snprintf(err, errlen, "cannot hand the %s process its set-up: %s", ch->role,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* The first start: the smtp process says READY once it serves, the relay
 * process once it delivers. 0, or -1 when ch ended first (it said why on
 * stderr). */
static int
parent_wait_ready(struct child *ch)
{
	struct pollfd pfd = {.fd = ch->ctl, .events = POLLIN};
	unsigned char *buf = xmalloc(IPC_FRAME_MAX);
	struct ipc_frame f;
	int rc = -1;

	if (poll(&pfd, 1, PARENT_READY_MS) == 1 && ipc_sock_recv(ch->ctl, buf, &f, NULL) == 1 &&
	    f.type == CHILD_MSG_READY)
		rc = 0;
	free(buf);
	return rc;
}

/* --- signals --------------------------------------------------------------------- */

static void
parent_reap(struct parent *p)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (child_reaped(&p->auth, pid, status)) {
			p->auth_exits++;
			if (p->smtp.pid != 0)
				(void)parent_send(p->smtp.ctl, CHILD_MSG_EXIT, "auth", 0, 0, -1);
		} else if (child_reaped(&p->smtp, pid, status)) {
			p->smtp_exits++;
		} else if (child_reaped(&p->relay, pid, status)) {
			p->relay_exits++;
			if (p->smtp.pid != 0)
				(void)parent_send(p->smtp.ctl, CHILD_MSG_EXIT, "relay", 0, 0, -1);
		}
	}
}

static long long
parent_next_ms(const struct parent *p)
{
	long long a = child_restart_in(&p->auth), s = child_restart_in(&p->smtp),
	          r = child_restart_in(&p->relay);

	a = a < 0 ? s : s < 0 ? a : a < s ? a : s;
	return a < 0 ? r : r < 0 ? a : a < r ? a : r;
}

static void
parent_tick(struct parent *p)
{
	struct child *order[] = {&p->auth, &p->smtp, &p->relay};
	char err[512];

	for (size_t i = 0; i < 3; i++) {
		struct child *ch = order[i];

		if (child_restart_in(ch) != 0)
			continue;
		if (parent_start(p, ch, err, sizeof(err)) == -1) {
			log_event(LOG_ERR, "child_start", 0, "{s:s, s:s}", "process", ch->role,
			    "error", err);
			if (ch->pid != 0)
				(void)kill(ch->pid, SIGKILL); /* reaped, then retried */
			else
				ch->restart_at_ms = child_now_ms() + ch->backoff_ms;
			continue;
		}
		log_event(LOG_NOTICE, "child_start", 0, "{s:s, s:i}", "process", ch->role, "pid",
		    (int)ch->pid);
	}
}

/* SIGHUP: the configuration and its files read again, checked here, then
 * handed to the smtp process, and a new log to the relay process; the auth
 * process re-reads its own. */
static void
parent_reload(struct parent *p)
{
	char err[1024];
	struct vault *v = NULL;
	struct conf *c;

	notify_reloading();
	log_reopen();
	c = serve_conf_check(p->path, p->c, &v, err, sizeof(err));
	if (c == NULL) {
		log_event(LOG_ERR, "reload", 0, "{s:s, s:s}", "result", "fail", "error", err);
		vault_free(v);
		notify_ready("reload failed: the configuration in force stays (see the log)");
		return;
	}
	conf_free(p->now);
	p->now = c;
	vault_free(p->vault);
	p->vault = v;
	certwatch_free(p->certs);
	p->certs = certwatch_new(p->path, c, v, "reload");
	if (p->auth.pid != 0)
		(void)kill(p->auth.pid, SIGHUP);
	if (p->smtp.pid != 0 && parent_send_files(p, &p->smtp, CHILD_MSG_RELOAD) == -1)
		log_event(LOG_ERR, "reload", 0, "{s:s, s:s}", "result", "fail", "error",
		    "cannot reach the smtp process");
	if (p->relay.pid != 0 && parent_send_files(p, &p->relay, CHILD_MSG_RELOAD) == -1)
		log_event(LOG_ERR, "reload", 0, "{s:s, s:s}", "result", "fail", "error",
		    "cannot reach the relay process");
	notify_ready("serving");
}

/* Renewed certificates, checked (server/certwatch.h): handed over as a
 * reload's files are, with the configuration in force. */
static void
parent_certs(struct parent *p)
{
	struct vault *v = certwatch_tick(p->certs, p->vault, child_now_ms());

	if (v == NULL)
		return;
	vault_free(p->vault);
	p->vault = v;
	if (p->smtp.pid != 0 && parent_send_vault(p, &p->smtp, CHILD_MSG_CERTS) == -1)
		log_event(LOG_ERR, "tls_reload", 0, "{s:s, s:s}", "result", "fail", "error",
		    "cannot reach the smtp process");
}

/* SIGTERM: the smtp process drains its sessions (shutdown_grace), then the
 * relay process ends its deliveries (shutdown_grace too), then the auth
 * process ends. The smtp process's exit status. */
static int
parent_stop(struct parent *p)
{
	long long until = child_now_ms() + (long long)p->c->shutdown_grace * 1000 + 15000;
	int status = 0, rc = 0;

	notify_stopping();
	if (p->smtp.pid != 0) {
		(void)kill(p->smtp.pid, SIGTERM);
		while (waitpid(p->smtp.pid, &status, WNOHANG) == 0) {
			if (child_now_ms() >= until) {
				(void)kill(p->smtp.pid, SIGKILL);
				(void)waitpid(p->smtp.pid, &status, 0);
				break;
			}
			usleep(10 * 1000);
		}
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
		p->smtp.pid = 0;
	}
	child_stop(&p->relay, (long)p->c->shutdown_grace * 1000 + PARENT_RELAY_STOP_MS);
	child_stop(&p->auth, 5000);
	child_stop(&p->smtp, 0);
	return rc;
}

/* A token command for the relay process (server/tokenc.h): a process of
 * its own runs it, from this process's copy of the route's credentials
 * file, and answers on the control socket itself, so that the parent never
 * waits. The request names a route, never a command. */
static void
parent_token(struct parent *p, const struct ipc_frame *f)
{
	struct ipc_reader rd;
	const struct conf_route *r = NULL;
	uint32_t is_relay, kind;
	char domain[256];
	pid_t pid;

	ipc_reader_init(&rd, f);
	if (ipc_get_u32(&rd, &is_relay) == -1 ||
	    ipc_get_str(&rd, domain, sizeof(domain) - 1) == -1 || ipc_get_u32(&rd, &kind) == -1)
		return;
	r = is_relay ? p->c->relay : conf_route_for(p->c, domain);
	pid = fork();
	if (pid == 0) {
		static struct ipc_out o;
		struct buf out;
		char err[256] = "", *cmd = NULL;
		sigset_t none;
		int ok;

		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		buf_init(&out, kind == 1 ? IPC_PAYLOAD_MAX - 64 : CLIENT_SECRET_MAX);
		buf_set_secret(&out);
		if (r == NULL)
			snprintf(err, sizeof(err), "failed: no such route");
		if (r != NULL && r->credentials == NULL)
			snprintf(err, sizeof(err), "failed: the route has no credentials file");
		if (kind == 1 && r != NULL && r->credentials != NULL) {
			size_t len = 0;
			char *text = creds_read_file(r, &len, err, sizeof(err)), *nl;

			/* the first line is all the credentials are */
			nl = text != NULL ? memchr(text, '\n', len) : NULL;
			ok = text != NULL &&
			    buf_append(&out, text, nl != NULL ? (size_t)(nl - text) : len) == 0;
			if (text != NULL)
				explicit_bzero(text, len);
			free(text);
		} else {
			ok = kind == 0 && r != NULL && r->credentials != NULL &&
			    (cmd = creds_command(r, err, sizeof(err))) != NULL &&
			    creds_run_command(cmd, &out, err, sizeof(err)) == 0;
		}
		ipc_out_begin(&o, CHILD_MSG_TOKEN_ANSWER, f->id);
		ipc_put_u32(&o, ok ? 1 : 0);
		if (ok)
			ipc_put_bytes(&o, out.data, out.len);
		else
			ipc_put_bytes(&o, err, strlen(err));
		if (ipc_out_end(&o) == 0)
			(void)ipc_sock_send(p->relay.ctl, &o, -1);
		explicit_bzero(o.buf, sizeof(o.buf));
		_exit(0);
	}
}

/* The smtp process lost a channel (the other process closed it: a frame
 * it refused): to the auth process, its loop t's; to the relay process, its
 * one (t 0). gen says which of those the parent handed it: a new one,
 * unless a newer one is on its way already (a restart of the other process
 * sends new ones). */
static void
parent_channel_lost(struct parent *p, const struct ipc_frame *f)
{
	bool auth = f->type == CHILD_MSG_AUTH;
	struct child *other = auth ? &p->auth : &p->relay;
	long long now = child_now_ms(), *last;
	struct ipc_reader rd;
	uint32_t t, gen;

	ipc_reader_init(&rd, f);
	if (ipc_get_u32(&rd, &t) == -1 || ipc_get_u32(&rd, &gen) == -1 ||
	    t >= (auth ? p->nthreads : 1) || gen != (auth ? p->auth_sent[t] : p->relay_sent) ||
	    other->pid == 0)
		return;
	last = auth ? &p->auth_replaced[t] : &p->relay_replaced;
	if (*last != 0 && now - *last < 500)
		return;
	*last = now;
	/* EPIPE: the other process has just died (its restart brings new ones) */
	if (parent_channel_one(p, other, t) == -1 && errno != EPIPE)
		log_event(LOG_ERR, auth ? "auth_channel" : "relay_channel", 0, "{s:s, s:i, s:s}",
		    "process", "parent", "loop", (int)t, "error", strerror(errno));
}

/* What a child says: READY after a restart; the relay process's token
 * requests (the smtp process may not ask: it holds no route's secret); a
 * channel the smtp process lost. */
static void
parent_ctl(struct parent *p, struct child *ch)
{
	unsigned char *buf = xmalloc(IPC_FRAME_MAX);
	struct ipc_frame f;

	/* one frame per wake-up: the socket blocks */
	if (ipc_sock_recv(ch->ctl, buf, &f, NULL) == 1) {
		if (f.type == CHILD_MSG_TOKEN && ch == &p->relay)
			parent_token(p, &f);
		else if ((f.type == CHILD_MSG_AUTH || f.type == CHILD_MSG_RELAY) && ch == &p->smtp)
			parent_channel_lost(p, &f);
	}
	free(buf);
}

static int
parent_loop(struct parent *p)
{
	sigset_t set;
	int sfd;

	child_signal_set(&set);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) == -1)
		return parent_stop(p);
	for (;;) {
		long long ms = parent_next_ms(p), cw = certwatch_due_in(p->certs, child_now_ms());
		struct pollfd pfd[3] = {{.fd = sfd, .events = POLLIN},
		    {.fd = p->smtp.pid != 0 ? p->smtp.ctl : -1, .events = POLLIN},
		    {.fd = p->relay.pid != 0 ? p->relay.ctl : -1, .events = POLLIN}};
		struct signalfd_siginfo si;

		if (cw >= 0 && (ms < 0 || cw < ms))
			ms = cw;
		if (poll(pfd, 3,
		        ms < 0             ? -1
		            : ms > INT_MAX ? INT_MAX
		                           : (int)ms) == -1 &&
		    errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN)
			parent_ctl(p, &p->smtp);
		if (pfd[2].revents & POLLIN)
			parent_ctl(p, &p->relay);
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			int sig = (int)si.ssi_signo;

			if (sig == SIGCHLD)
				parent_reap(p);
			else if (sig == SIGHUP)
				parent_reload(p);
			else if ((sig == SIGUSR1 || sig == SIGUSR2) && p->relay.pid != 0)
				(void)kill(p->relay.pid, sig);
			else if (sig == SIGTERM || sig == SIGINT) {
				close(sfd);
				return parent_stop(p);
			}
		}
		parent_tick(p);
		parent_certs(p);
	}
	close(sfd);
	return parent_stop(p);
}

/* --- the whole ------------------------------------------------------------------- */

static int
parent_threads(const struct conf *c)
{
	long n;

	if (c->threads > 0)
		return c->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static void
parent_free(struct parent *p)
{
	for (size_t i = 0; p->lfd != NULL && i < p->nthreads * p->nlistens; i++) {
		if (p->lfd[i] != -1)
			close(p->lfd[i]);
	}
	free(p->lfd);
	free(p->auth_sent);
	free(p->auth_replaced);
	if (p->admin_fd != -1)
		close(p->admin_fd);
	vault_free(p->vault);
	certwatch_free(p->certs);
	conf_free(p->now);
}

static int
parent_run(const char *path, const struct conf *c, struct vault *v)
{
	struct parent p = {.path = path, .c = c, .admin_fd = -1, .vault = v};
	const char *failed;
	char err[1024] = "";
	int rc = 2;

	(void)prctl(PR_SET_DUMPABLE, 0); /* it holds the secrets too */
	child_init(&p.auth, "auth", path);
	child_init(&p.smtp, "smtp", path);
	child_init(&p.relay, "relay", path);
	/* without [relay] or [route] nothing is delivered: no relay process */
	p.has_relay = scheduler_is_configured(c);
	if (parent_user(&p, err, sizeof(err)) == -1 ||
	    parent_bind(&p, parent_threads(c), err, sizeof(err)) == -1 ||
	    parent_start(&p, &p.auth, err, sizeof(err)) == -1 ||
	    parent_start(&p, &p.smtp, err, sizeof(err)) == -1 ||
	    (p.has_relay && parent_start(&p, &p.relay, err, sizeof(err)) == -1)) {
		fprintf(stderr, "smtpgate: %s: %s\n", path, err);
		child_stop(&p.relay, 0);
		child_stop(&p.smtp, 0);
		child_stop(&p.auth, 0);
		parent_free(&p);
		return 2;
	}
	failed = parent_wait_ready(&p.smtp) == -1              ? "smtp"
	    : p.has_relay && parent_wait_ready(&p.relay) == -1 ? "relay"
	                                                       : NULL;
	if (failed != NULL) {
		fprintf(stderr, "smtpgate: %s: the %s process did not start (see above)\n", path,
		    failed);
		child_stop(&p.relay, 5000);
		child_stop(&p.smtp, 5000);
		child_stop(&p.auth, 0);
		parent_free(&p);
		return 2;
	}
	p.certs = certwatch_new(path, c, p.vault, "start");
	notify_ready("serving");
	rc = parent_loop(&p);
	parent_free(&p);
	return rc;
}

int
parent_main(const char *path, bool check)
{
	char err[1024] = "";
	struct vault *v = NULL;
	struct conf *c;
	sigset_t set;
	int rc = 2;

	/* signals are taken by sigwait on this thread only */
	child_signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((c = serve_conf_check(path, NULL, &v, err, sizeof(err))) == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		vault_free(v);
		return 2;
	}
	if (check) {
		/* warnings are printed but do not fail the check (audit_check_print) */
		if (audit_check_print(c, stdout) == -1) {
			fprintf(stderr, "smtpgate: %s: the audit found errors (see above)\n", path);
			goto out;
		}
		printf("%s: configuration OK\n", path);
		rc = 0;
		goto out;
	}
	if (log_open(c->log) == -1) {
		fprintf(stderr, "smtpgate: %s: cannot open log %s: %s\n", path, c->log,
		    strerror(errno));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = parent_run(path, c, v);
	v = NULL;
out:
	vault_free(v);
	conf_free(c);
	return rc;
}
