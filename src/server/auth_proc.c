/*
 * auth_proc: see auth_proc.h. One event loop on the main thread reads the
 * control socket, the channels and the signals. The answer goes back on
 * the channel the request came on, if that is still open: an authdb
 * worker sends a PLAIN answer itself (a direct mailbox: no hop through the
 * loop, one thread wake-up less per AUTH); the SASL key lookups and oauth
 * answer through the loop's mailbox, since they touch loop-only state.
 *
 * Threads: lock covers chans, inflight and out, and is held over the
 * sendmsg of an answer, so a frame goes out whole (SOCK_SEQPACKET keeps
 * it one message anyway) and a channel is never closed under a sender.
 * A channel is only added and freed on the loop; a worker whose send
 * fails asks the loop to close it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "auth/authdb.h"
#include "auth/oauth.h"
#include "conf/conf.h"
#include "lib/idmap.h"
#include "lib/log.h"
#include "lib/mailbox.h"
#include "lib/vault.h"
#include "lib/xalloc.h"
#include "net/ipc_sock.h"
#include "net/loop.h"
#include "server/auth_msg.h"
#include "server/auth_proc.h"
#include "server/auth_sasl.h"
#include "server/child.h"

/* two for each of [server] threads' 256 loops: a restarted smtp process's
 * new channels may come before the old ones are closed */
#define AUTH_PROC_CHANNELS_MAX 512

struct auth_chan {
	struct auth_proc *p;
	int fd;
	unsigned no; /* never reused: an answer names its channel by it */
	struct loop_io *io;
};

/* A request in the authdb or oauth: which channel and request it answers. */
struct auth_inflight {
	unsigned chan_no;
	uint64_t req_id;
};

struct auth_proc {
	const char *path;
	struct conf *conf;
	struct authdb *db; /* NULL without [auth] backend */
	struct oauth *oauth; /* NULL without [oauth] */
	struct auth_sasl *sasl; /* the exchanges that need stored keys */
	struct loop *loop;
	struct mailbox *direct; /* PLAIN answers: sent on the worker's thread */
	struct loop_io *ctl_io, *sig_io;
	int ctl_fd, sig_fd;
	struct idmap chans; /* no -> struct auth_chan */
	unsigned next_chan_no;
	pthread_mutex_t lock; /* chans, inflight, out (see the top) */
	struct idmap inflight; /* token -> struct auth_inflight */
	uint64_t next_token;
	unsigned char buf[IPC_FRAME_MAX];
	struct ipc_out out;
};

static struct auth_chan *
auth_proc_chan(struct auth_proc *p, unsigned no)
{
	return idmap_get(&p->chans, no);
}

/* On the loop. */
static void
auth_proc_chan_close(struct auth_proc *p, struct auth_chan *ch, const char *why)
{
	pthread_mutex_lock(&p->lock);
	idmap_del(&p->chans, ch->no);
	pthread_mutex_unlock(&p->lock);
	if (p->sasl != NULL)
		auth_sasl_drop_owner(p->sasl, ch->no);
	if (why != NULL)
		log_event(
		    LOG_ERR, "auth_channel", 0, "{s:s, s:s}", "process", "auth", "error", why);
	loop_io_free(ch->io);
	close(ch->fd);
	free(ch);
}

/* A channel a worker could not answer on, by number (it may be gone by
 * now), posted to the loop's mailbox. */
struct auth_proc_broken {
	struct auth_proc *p;
	unsigned chan_no;
};

static void
auth_proc_broken_run(void *arg)
{
	struct auth_proc_broken *b = arg;
	struct auth_chan *ch = auth_proc_chan(b->p, b->chan_no);

	if (ch != NULL)
		auth_proc_chan_close(b->p, ch, "cannot answer the smtp process");
	free(b);
}

/* The answer to token (from the authdb or oauth), on any thread. */
static void
auth_proc_answer(struct auth_proc *p, uint64_t token, const struct auth_msg_answer *a)
{
	struct auth_inflight *in;
	struct auth_chan *ch;
	bool broken = false;
	unsigned chan_no = 0;

	pthread_mutex_lock(&p->lock);
	in = idmap_get(&p->inflight, token);
	if (in != NULL) {
		idmap_del(&p->inflight, token);
		chan_no = in->chan_no;
		ch = auth_proc_chan(p, chan_no);
		broken = ch != NULL && auth_msg_answer_encode(&p->out, in->req_id, a) == 0 &&
		    ipc_sock_send(ch->fd, &p->out, -1) == -1;
		explicit_bzero(p->out.buf, p->out.len);
	}
	pthread_mutex_unlock(&p->lock);
	free(in);
	if (broken) {
		struct auth_proc_broken *b = xmalloc(sizeof(*b));

		b->p = p;
		b->chan_no = chan_no;
		mailbox_post(loop_mailbox(p->loop), auth_proc_broken_run, b);
	}
}

static void
auth_proc_senders(struct auth_proc *p, const char *user, struct auth_msg_answer *a)
{
	char *s = p->db != NULL ? authdb_user_senders(p->db, user) : NULL;

	if (s != NULL)
		snprintf(a->senders, sizeof(a->senders), "%s", s);
	free(s);
}

static void
auth_proc_plain_cb(void *ctx, uint64_t token, enum authdb_result result, const char *user)
{
	struct auth_proc *p = ctx;
	struct auth_msg_answer *a = xcalloc(1, sizeof(*a));

	a->result = result;
	if (result == AUTHDB_OK) {
		snprintf(a->user, sizeof(a->user), "%s", user);
		a->user_known = true;
		auth_proc_senders(p, user, a);
	}
	auth_proc_answer(p, token, a);
	free(a);
}

static void
auth_proc_sasl_cb(void *ctx, uint64_t token, const struct auth_msg_answer *a)
{
	auth_proc_answer(ctx, token, a);
}

static void
auth_proc_token_cb(void *ctx, uint64_t token, enum oauth_result result, const char *reason)
{
	struct auth_proc *p = ctx;
	struct auth_msg_answer *a = xcalloc(1, sizeof(*a));
	const char *openid = p->oauth != NULL ? oauth_openid_configuration(p->oauth) : NULL;

	a->result = result;
	snprintf(a->reason, sizeof(a->reason), "%s", reason != NULL ? reason : "");
	snprintf(a->openid, sizeof(a->openid), "%s", openid != NULL ? openid : "");
	auth_proc_answer(p, token, a);
	free(a);
}

/* Registers a request; the token stands for it in the authdb and oauth
 * (their session id). */
static uint64_t
auth_proc_inflight(struct auth_proc *p, const struct auth_chan *ch, uint64_t req_id)
{
	struct auth_inflight *in = xcalloc(1, sizeof(*in));
	uint64_t token;

	in->chan_no = ch->no;
	in->req_id = req_id;
	pthread_mutex_lock(&p->lock);
	token = ++p->next_token;
	idmap_put(&p->inflight, token, in);
	pthread_mutex_unlock(&p->lock);
	return token;
}

/* A request that cannot be verified here (no backend): TEMPFAIL. */
static void
auth_proc_tempfail(struct auth_proc *p, uint64_t token, uint32_t result)
{
	struct auth_msg_answer a;

	memset(&a, 0, sizeof(a));
	a.result = result;
	auth_proc_answer(p, token, &a);
}

static void
auth_proc_dispatch(struct auth_proc *p, struct auth_chan *ch, uint64_t id, struct auth_msg_req *q)
{
	struct mailbox *mb = loop_mailbox(p->loop);
	uint64_t t;

	if (q->type == AUTH_MSG_USE) {
		if (p->db != NULL)
			authdb_record_use(
			    p->db, q->user, q->label, q->created, q->client[0] ? q->client : NULL);
		return;
	}
	if (q->type == AUTH_MSG_SASL_END) {
		auth_sasl_end(p->sasl, ch->no, q->handle);
		return;
	}
	t = auth_proc_inflight(p, ch, id);
	switch (q->type) {
	case AUTH_MSG_PLAIN:
		if (p->db == NULL)
			auth_proc_tempfail(p, t, AUTHDB_TEMPFAIL);
		else
			authdb_verify_plain_from(p->db, p->direct, t, q->user, q->userlen,
			    (const char *)q->secret, q->secretlen, q->client[0] ? q->client : NULL,
			    auth_proc_plain_cb, p);
		break;
	case AUTH_MSG_SASL_START:
		auth_sasl_start(p->sasl, mb, ch->no, t, q, auth_proc_sasl_cb, p);
		break;
	case AUTH_MSG_SASL_STEP:
		auth_sasl_step(p->sasl, ch->no, t, q, auth_proc_sasl_cb, p);
		break;
	case AUTH_MSG_TOKEN:
		if (p->oauth == NULL)
			auth_proc_tempfail(p, t, OAUTH_TEMPFAIL);
		else
			oauth_verify(p->oauth, mb, t, q->user, q->userlen, (const char *)q->secret,
			    q->secretlen, auth_proc_token_cb, p);
		break;
	default:
		auth_proc_tempfail(p, t, AUTHDB_TEMPFAIL);
		break;
	}
}

static void
auth_proc_chan_read(void *arg)
{
	struct auth_chan *ch = arg;
	struct auth_proc *p = ch->p;
	struct ipc_frame f;
	struct auth_msg_req *q;
	int n = ipc_sock_recv(ch->fd, p->buf, &f, NULL);

	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		auth_proc_chan_close(p, ch, n == 0 ? NULL : "a malformed frame: channel closed");
		return;
	}
	q = xmalloc(sizeof(*q));
	if (auth_msg_req_decode(&f, q) == -1) {
		free(q);
		auth_proc_chan_close(p, ch, "a malformed request: channel closed");
		return;
	}
	explicit_bzero(p->buf, IPC_FRAME_HDR + f.len);
	auth_proc_dispatch(p, ch, f.id, q);
	explicit_bzero(q, sizeof(*q));
	free(q);
}

/* The parent hands over a channel. */
static void
auth_proc_ctl_read(void *arg)
{
	struct auth_proc *p = arg;
	struct ipc_frame f;
	int fd = -1, n = ipc_sock_recv(p->ctl_fd, p->buf, &f, &fd);
	struct auth_chan *ch;

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* the parent is gone: so are we */
		loop_stop(p->loop);
		return;
	}
	if (f.type != AUTH_MSG_CHANNEL || fd == -1) {
		if (fd != -1)
			close(fd);
		return;
	}
	if (p->chans.count >= AUTH_PROC_CHANNELS_MAX) {
		close(fd);
		return;
	}
	/* an answer is sent under the lock, by a worker: a channel the smtp
	 * process does not read is closed (EAGAIN), never waited for */
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	ch = xcalloc(1, sizeof(*ch));
	ch->p = p;
	ch->fd = fd;
	ch->no = ++p->next_chan_no;
	ch->io = loop_io_new(p->loop, fd, auth_proc_chan_read, ch);
	pthread_mutex_lock(&p->lock);
	idmap_put(&p->chans, ch->no, ch);
	pthread_mutex_unlock(&p->lock);
}

static void
auth_proc_reload(struct auth_proc *p)
{
	char err[1024];

	if (p->db != NULL && authdb_reload(p->db, err, sizeof(err)) == -1) {
		log_event(LOG_ERR, "auth_reload", 0, "{s:s, s:s}", "result", "fail", "error", err);
		return;
	}
	if (p->oauth != NULL && oauth_reload(p->oauth, err, sizeof(err)) == -1)
		log_event(
		    LOG_ERR, "auth_reload", 0, "{s:s, s:s}", "result", "partial", "error", err);
	else
		log_event(LOG_NOTICE, "auth_reload", 0, "{s:s}", "result", "ok");
	log_reopen();
}

static void
auth_proc_signal(void *arg)
{
	struct auth_proc *p = arg;
	struct signalfd_siginfo si;

	while (read(p->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			auth_proc_reload(p);
		else
			loop_stop(p->loop);
	}
}

/* The parent's files (lib/vault.h), up to START: the configuration is
 * loaded from the copy the parent checked, never from a file that may
 * have changed since. 0, or -1 with err. */
static int
auth_proc_setup(struct auth_proc *p, char *err, size_t errlen)
{
	unsigned char *buf = xmalloc(IPC_FRAME_MAX);
	struct vault *v = vault_new();
	int rc = -1;

	for (;;) {
		struct ipc_frame f;
		struct ipc_reader rd;
		char path[4096];
		int fd = -1;

		if (ipc_sock_recv(p->ctl_fd, buf, &f, &fd) != 1) {
			snprintf(err, errlen, "the parent's set-up ended early");
			break;
		}
		if (f.type == CHILD_MSG_START) {
			rc = 0;
			break;
		}
		ipc_reader_init(&rd, &f);
		if (f.type == CHILD_MSG_FILE && fd != -1 &&
		    ipc_get_str(&rd, path, sizeof(path) - 1) == 0) {
			if (vault_add(v, path, fd) == -1) {
				snprintf(err, errlen, "too many files from the parent");
				break;
			}
		} else if (fd != -1) {
			close(fd);
		}
	}
	free(buf);
	vault_free(vault_install(v));
	return rc;
}

static int
auth_proc_open(struct auth_proc *p, char *err, size_t errlen)
{
	if (auth_proc_setup(p, err, errlen) == -1)
		return -1;
	p->conf = conf_load(p->path, err, errlen);
	if (p->conf == NULL)
		return -1;
	if (log_open(p->conf->log) == -1) {
		snprintf(err, errlen, "cannot open log %s: %s", p->conf->log, strerror(errno));
		return -1;
	}
	if (p->conf->backend != NULL && (p->db = authdb_open(p->conf, err, errlen)) == NULL)
		return -1;
	if (oauth_is_configured(p->conf) && (p->oauth = oauth_open(p->conf, err, errlen)) == NULL)
		return -1;
	p->sasl = auth_sasl_new(p->db, p->conf);
	return 0;
}

int
auth_proc_main(const char *path, int ctl_fd)
{
	struct auth_proc *p = xcalloc(1, sizeof(*p));
	char err[1024] = "";
	sigset_t set;
	int rc = 2;

	(void)prctl(PR_SET_NAME, "smtpgate-auth");
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)prctl(PR_SET_DUMPABLE, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	p->path = path;
	p->ctl_fd = ctl_fd;
	pthread_mutex_init(&p->lock, NULL);
	p->direct = mailbox_new_direct();
	idmap_init(&p->inflight);
	idmap_init(&p->chans);
	loop_global_init();
	if (auth_proc_open(p, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate-auth: %s\n", err);
		goto out;
	}
	p->loop = loop_new();
	p->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	p->sig_io = loop_io_new(p->loop, p->sig_fd, auth_proc_signal, p);
	p->ctl_io = loop_io_new(p->loop, ctl_fd, auth_proc_ctl_read, p);
	loop_run(p->loop);
	rc = 0;
	/* answers still queued run now, while the channels can take them */
	if (p->sasl != NULL)
		auth_sasl_detach(p->sasl);
	authdb_free(p->db);
	p->db = NULL;
	oauth_free(p->oauth);
	p->oauth = NULL;
	loop_run_once(p->loop, false);
	while (p->chans.count > 0) {
		for (size_t i = 0; i < p->chans.cap; i++) {
			if (p->chans.keys[i] != 0) {
				auth_proc_chan_close(p, p->chans.vals[i], NULL);
				break;
			}
		}
	}
	loop_io_free(p->ctl_io);
	loop_io_free(p->sig_io);
	close(p->sig_fd);
	loop_free(p->loop);
out:
	auth_sasl_free(p->sasl);
	authdb_free(p->db);
	oauth_free(p->oauth);
	conf_free(p->conf);
	for (size_t i = 0; i < p->inflight.cap; i++) {
		if (p->inflight.keys[i] != 0)
			free(p->inflight.vals[i]);
	}
	idmap_free(&p->inflight);
	idmap_free(&p->chans);
	mailbox_free(p->direct);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return rc;
}
