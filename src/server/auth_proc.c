/*
 * auth_proc: see auth_proc.h. The channels from the smtp process are read
 * by the authdb workers themselves: an idle worker waits in epoll on every
 * channel (ep_w, one-shot: one worker per request) and the pool's kick
 * (lib/workpool.h's idle hook), reads a request and, for AUTH PLAIN,
 * verifies it and sends the answer on its own thread: no hand-off between
 * threads on the way (bench/RESULTS.md section 7); it runs the steps of a
 * SASL exchange too (auth_sasl is thread-safe; a key lookup goes to
 * another worker, which answers). The event loop on the main thread reads
 * the control socket and the signals, runs oauth (a worker posts those
 * requests to the loop's mailbox), and closes channels. While no worker is idle, the
 * loop reads the channels too (ep_loop, level-triggered, watched only
 * then), so a request still finds the pool's bounded queue, or its 454 at
 * once when that is full ([auth] queue), instead of waiting unread. Without
 * an authdb (no listener uses auth: conf.c) the loop is the only reader.
 *
 * Threads: lock covers chans (and each channel's dead), inflight and out,
 * and is held over the recvmsg of a request (not its decoding) and the
 * sendmsg of an answer,
 * so a frame goes out whole (SOCK_SEQPACKET keeps it one message anyway)
 * and a channel is never closed under a reader or a sender. A channel is
 * added and freed on the loop only; a thread that finds it ended or
 * broken takes it out of both epoll sets, marks it dead and asks the loop
 * to close it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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
/* ep_w's data for the pool's kick; channels are numbered from 1 */
#define AUTH_PROC_KICK 0

struct auth_chan {
	int fd;
	unsigned no; /* never reused: an answer and an epoll event name it */
	bool dead; /* out of the epoll sets, to be closed by the loop */
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
	int ep_w; /* the workers' set: channels (one-shot) and the kick */
	int ep_loop; /* the loop's set: channels (level) */
	struct loop_io *ep_loop_io; /* ep_loop watched by the loop, or NULL */
	bool workers_read; /* the authdb's workers read the channels */
	struct idmap chans; /* no -> struct auth_chan */
	unsigned next_chan_no;
	pthread_mutex_t lock; /* chans, inflight, out (see the top) */
	struct idmap inflight; /* token -> struct auth_inflight */
	uint64_t next_token;
	unsigned char buf[IPC_FRAME_MAX]; /* the loop's reads */
	struct ipc_out out;
};

static struct auth_chan *
auth_proc_chan(struct auth_proc *p, unsigned no)
{
	return idmap_get(&p->chans, no);
}

/* Takes ch out of both epoll sets; under lock. */
static void
auth_proc_chan_unwatch(struct auth_proc *p, struct auth_chan *ch)
{
	if (ch->dead)
		return;
	ch->dead = true;
	(void)epoll_ctl(p->ep_w, EPOLL_CTL_DEL, ch->fd, NULL);
	(void)epoll_ctl(p->ep_loop, EPOLL_CTL_DEL, ch->fd, NULL);
}

/* On the loop. */
static void
auth_proc_chan_close(struct auth_proc *p, struct auth_chan *ch, const char *why)
{
	pthread_mutex_lock(&p->lock);
	auth_proc_chan_unwatch(p, ch);
	idmap_del(&p->chans, ch->no);
	pthread_mutex_unlock(&p->lock);
	if (p->sasl != NULL)
		auth_sasl_drop_owner(p->sasl, ch->no);
	if (why != NULL)
		log_event(
		    LOG_ERR, "auth_channel", 0, "{s:s, s:s}", "process", "auth", "error", why);
	close(ch->fd);
	free(ch);
}

/* A channel to close, by number (it may be gone by now), posted to the
 * loop's mailbox; why NULL: it ended (the smtp process closed it). */
struct auth_proc_broken {
	struct auth_proc *p;
	unsigned chan_no;
	const char *why;
};

static void
auth_proc_broken_run(void *arg)
{
	struct auth_proc_broken *b = arg;
	struct auth_chan *ch = auth_proc_chan(b->p, b->chan_no);

	if (ch != NULL)
		auth_proc_chan_close(b->p, ch, b->why);
	free(b);
}

/* Any thread: channel no leaves the epoll sets now and is closed on the
 * loop. */
static void
auth_proc_chan_end(struct auth_proc *p, unsigned no, const char *why)
{
	struct auth_proc_broken *b;
	struct auth_chan *ch;

	pthread_mutex_lock(&p->lock);
	ch = auth_proc_chan(p, no);
	if (ch != NULL)
		auth_proc_chan_unwatch(p, ch);
	pthread_mutex_unlock(&p->lock);
	if (ch == NULL)
		return;
	b = xmalloc(sizeof(*b));
	b->p = p;
	b->chan_no = no;
	b->why = why;
	mailbox_post(loop_mailbox(p->loop), auth_proc_broken_run, b);
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
		broken = ch != NULL && !ch->dead &&
		    auth_msg_answer_encode(&p->out, in->req_id, a) == 0 &&
		    ipc_sock_send(ch->fd, &p->out, -1) == -1;
		explicit_bzero(p->out.buf, p->out.len);
	}
	pthread_mutex_unlock(&p->lock);
	free(in);
	if (broken)
		auth_proc_chan_end(p, chan_no, "cannot answer the smtp process");
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
auth_proc_inflight(struct auth_proc *p, unsigned chan_no, uint64_t req_id)
{
	struct auth_inflight *in = xcalloc(1, sizeof(*in));
	uint64_t token;

	in->chan_no = chan_no;
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

/* On the loop, or on a worker for anything but AUTH_MSG_TOKEN (oauth's
 * answers come through the loop). */
static void
auth_proc_dispatch(struct auth_proc *p, unsigned chan_no, uint64_t id, const struct auth_msg_req *q)
{
	uint64_t t;

	if (q->type == AUTH_MSG_USE) {
		if (p->db != NULL)
			authdb_record_use(
			    p->db, q->user, q->label, q->created, q->client[0] ? q->client : NULL);
		return;
	}
	if (q->type == AUTH_MSG_SASL_END) {
		auth_sasl_end(p->sasl, chan_no, q->handle);
		return;
	}
	t = auth_proc_inflight(p, chan_no, id);
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
		/* the keys come on the worker that looked them up, which answers */
		auth_sasl_start(p->sasl, p->direct, chan_no, t, q, auth_proc_sasl_cb, p);
		break;
	case AUTH_MSG_SASL_STEP:
		auth_sasl_step(p->sasl, chan_no, t, q, auth_proc_sasl_cb, p);
		break;
	case AUTH_MSG_TOKEN:
		if (p->oauth == NULL)
			auth_proc_tempfail(p, t, OAUTH_TEMPFAIL);
		else
			oauth_verify(p->oauth, loop_mailbox(p->loop), t, q->user, q->userlen,
			    (const char *)q->secret, q->secretlen, auth_proc_token_cb, p);
		break;
	default:
		auth_proc_tempfail(p, t, AUTHDB_TEMPFAIL);
		break;
	}
}

static void
auth_proc_req_free(struct auth_msg_req *q)
{
	explicit_bzero(q, sizeof(*q));
	free(q);
}

/* A request a worker read that the loop runs (oauth). */
struct auth_proc_posted {
	struct auth_proc *p;
	unsigned chan_no;
	uint64_t id;
	struct auth_msg_req *q;
};

static void
auth_proc_posted_run(void *arg)
{
	struct auth_proc_posted *r = arg;

	if (auth_proc_chan(r->p, r->chan_no) != NULL)
		auth_proc_dispatch(r->p, r->chan_no, r->id, r->q);
	auth_proc_req_free(r->q);
	free(r);
}

/*
 * Reads one request from channel no, on any thread, buf being
 * IPC_FRAME_MAX bytes of the caller's. Returns it (wiped and freed by the
 * caller), or NULL when there is none for the caller: another thread took
 * it, the channel is gone, or it ended or sent a malformed frame (it is
 * then closed: the sender's channel dies, never this process).
 * worker: the caller got the channel from ep_w (one-shot). It is armed
 * again at once, so the channel's next request goes to another worker
 * while this one works; and an oauth request is posted to the loop, not
 * returned. Workers may take one channel's requests out of order; the
 * requests of one SASL exchange cannot be: each follows the answer to the
 * one before (the handle a step or end names comes with the start's
 * answer).
 */
static struct auth_msg_req *
auth_proc_take(struct auth_proc *p, unsigned no, unsigned char *buf, uint64_t *id_r, bool worker)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = no};
	struct auth_chan *ch;
	struct ipc_frame f;
	struct auth_msg_req *q = NULL;
	struct auth_proc_posted *r;
	const char *why = NULL;
	int n;

	pthread_mutex_lock(&p->lock);
	ch = auth_proc_chan(p, no);
	if (ch == NULL || ch->dead) {
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	n = ipc_sock_recv(ch->fd, buf, &f, NULL);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		/* nothing there */
		if (worker)
			(void)epoll_ctl(p->ep_w, EPOLL_CTL_MOD, ch->fd, &ev);
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	if (n <= 0) {
		pthread_mutex_unlock(&p->lock);
		auth_proc_chan_end(p, no, n == 0 ? NULL : "a malformed frame: channel closed");
		return NULL;
	}
	if (worker)
		(void)epoll_ctl(p->ep_w, EPOLL_CTL_MOD, ch->fd, &ev);
	pthread_mutex_unlock(&p->lock);
	/* the frame is in the caller's buf: decoded outside the lock the
	 * answers are sent under */
	q = xmalloc(sizeof(*q));
	if (auth_msg_req_decode(&f, q) == -1) {
		free(q);
		q = NULL;
		why = "a malformed request: channel closed";
	} else if (worker && q->type == AUTH_MSG_TOKEN) {
		r = xmalloc(sizeof(*r));
		r->p = p;
		r->chan_no = no;
		r->id = f.id;
		r->q = q;
		mailbox_post(loop_mailbox(p->loop), auth_proc_posted_run, r);
		q = NULL;
	}
	*id_r = f.id;
	explicit_bzero(buf, IPC_FRAME_HDR + f.len);
	if (why != NULL)
		auth_proc_chan_end(p, no, why);
	return q;
}

static void auth_proc_loop_read(void *arg);

/* Posted by the worker that found no other idle: the loop reads too. */
static void
auth_proc_loop_reads(void *arg)
{
	struct auth_proc *p = arg;

	if (p->ep_loop_io == NULL)
		p->ep_loop_io = loop_io_new(p->loop, p->ep_loop, auth_proc_loop_read, p);
}

/* ep_loop is readable: the loop reads one request from each ready channel
 * and queues it as before the workers read; it stops once a worker is idle
 * again. */
static void
auth_proc_loop_read(void *arg)
{
	struct auth_proc *p = arg;
	struct epoll_event ev[16];
	int n = epoll_wait(p->ep_loop, ev, 16, 0);

	for (int i = 0; i < n; i++) {
		unsigned no = (unsigned)ev[i].data.u64;
		uint64_t id = 0;
		struct auth_msg_req *q = auth_proc_take(p, no, p->buf, &id, false);

		if (q != NULL) {
			auth_proc_dispatch(p, no, id, q);
			auth_proc_req_free(q);
		}
	}
	if (p->workers_read && authdb_idle_workers(p->db) > 0) {
		loop_io_free(p->ep_loop_io);
		p->ep_loop_io = NULL;
	}
}

/*
 * An idle authdb worker's wait (authdb_set_idle): a request on a channel,
 * or the pool's kick. AUTH PLAIN is verified and answered right here (the
 * worker counts as busy meanwhile), as is a SASL step (quick: no hash);
 * oauth went to the loop (auth_proc_take).
 */
static enum workpool_idle
auth_proc_idle(void *ctx, struct authdb *db)
{
	struct auth_proc *p = ctx;
	unsigned char buf[IPC_FRAME_MAX];
	struct epoll_event ev;
	struct auth_msg_req *q;
	unsigned no;
	uint64_t id = 0, t;

	if (epoll_wait(p->ep_w, &ev, 1, -1) != 1)
		return WORKPOOL_IDLE_AGAIN;
	if (ev.data.u64 == AUTH_PROC_KICK) {
		if (authdb_busy(db) == 0)
			mailbox_post(loop_mailbox(p->loop), auth_proc_loop_reads, p);
		return WORKPOOL_IDLE_KICK;
	}
	no = (unsigned)ev.data.u64;
	q = auth_proc_take(p, no, buf, &id, true);
	if (q == NULL)
		return WORKPOOL_IDLE_AGAIN;
	if (q->type != AUTH_MSG_PLAIN) {
		auth_proc_dispatch(p, no, id, q);
		auth_proc_req_free(q);
		return WORKPOOL_IDLE_AGAIN;
	}
	if (authdb_busy(db) == 0)
		mailbox_post(loop_mailbox(p->loop), auth_proc_loop_reads, p);
	t = auth_proc_inflight(p, no, id);
	authdb_verify_plain_now(db, p->direct, t, q->user, q->userlen, (const char *)q->secret,
	    q->secretlen, q->client[0] ? q->client : NULL, auth_proc_plain_cb, p);
	auth_proc_req_free(q);
	return WORKPOOL_IDLE_BUSY;
}

/* The parent hands over a channel. */
static void
auth_proc_ctl_read(void *arg)
{
	struct auth_proc *p = arg;
	struct ipc_frame f;
	int fd = -1, n = ipc_sock_recv(p->ctl_fd, p->buf, &f, &fd);
	struct epoll_event ev = {.events = EPOLLIN};
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
	 * process does not read is closed (EAGAIN), never waited for; and a
	 * reader woken for a request another one took finds EAGAIN */
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	ch = xcalloc(1, sizeof(*ch));
	ch->fd = fd;
	ch->no = ++p->next_chan_no;
	ev.data.u64 = ch->no;
	pthread_mutex_lock(&p->lock);
	idmap_put(&p->chans, ch->no, ch);
	if (epoll_ctl(p->ep_loop, EPOLL_CTL_ADD, fd, &ev) == -1)
		ch->dead = true;
	ev.events = EPOLLIN | EPOLLONESHOT;
	if (!ch->dead && epoll_ctl(p->ep_w, EPOLL_CTL_ADD, fd, &ev) == -1) {
		(void)epoll_ctl(p->ep_loop, EPOLL_CTL_DEL, fd, NULL);
		ch->dead = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (ch->dead)
		auth_proc_chan_close(p, ch, "cannot watch the channel");
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

/* The channels' readers: the authdb's workers, with the loop while none is
 * idle; without an authdb, the loop alone. -1 with errno. */
static int
auth_proc_readers(struct auth_proc *p)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = AUTH_PROC_KICK};
	int kick;

	if ((p->ep_w = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (p->ep_loop = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	if (p->db == NULL) {
		p->ep_loop_io = loop_io_new(p->loop, p->ep_loop, auth_proc_loop_read, p);
		return 0;
	}
	/* the kick first: a worker in the hook must see it from its first wait */
	if ((kick = authdb_kick_fd(p->db)) == -1 ||
	    epoll_ctl(p->ep_w, EPOLL_CTL_ADD, kick, &ev) == -1 ||
	    authdb_set_idle(p->db, auth_proc_idle, p) == -1)
		return -1;
	p->workers_read = true;
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
	p->ep_w = p->ep_loop = -1;
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
	if (auth_proc_readers(p) == -1) {
		fprintf(stderr, "smtpgate-auth: cannot watch the channels: %s\n", strerror(errno));
		goto stop;
	}
	loop_run(p->loop);
	rc = 0;
stop:
	/* answers still queued run now, while the channels can take them */
	if (p->sasl != NULL)
		auth_sasl_detach(p->sasl);
	authdb_free(p->db);
	p->db = NULL;
	p->workers_read = false;
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
	loop_io_free(p->ep_loop_io);
	loop_io_free(p->ctl_io);
	loop_io_free(p->sig_io);
	close(p->sig_fd);
	loop_free(p->loop);
out:
	if (p->ep_w != -1)
		close(p->ep_w);
	if (p->ep_loop != -1)
		close(p->ep_loop);
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
