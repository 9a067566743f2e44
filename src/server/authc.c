/*
 * authc: see authc.h. Each loop thread has its own link: a channel whose
 * descriptor is in that loop's event set, so an answer is read and
 * delivered on the thread that asked, with no other thread in between.
 * Only the hand-over of a new channel crosses threads (under the lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/idmap.h"
#include "lib/log.h"
#include "lib/mailbox.h"
#include "lib/xalloc.h"
#include "net/ipc_sock.h"
#include "net/loop.h"
#include "server/auth_msg.h"
#include "server/authc.h"
#include "server/child.h"

struct authc_req {
	uint64_t id;
	uint64_t session_id;
	authc_done_cb *done;
	authc_sasl_cb *sasl;
	authc_token_cb *token;
	void *ctx;
	long long deadline; /* monotonic seconds */
	struct timespec sent; /* CLOCK_MONOTONIC, at its sendmsg */
	char user[SASL_USER_MAX + 1]; /* as typed, for a TEMPFAIL answer */
	struct auth_msg_answer *answer; /* NULL: TEMPFAIL */
	struct authc_req *prev, *next;
};

/* One loop's channel. Everything but the hand-over fields is its loop
 * thread's only. */
struct authc_link {
	struct authc *a;
	size_t index; /* the loop's */
	struct loop *loop; /* under a->lock until attached */
	struct mailbox *mb;
	int fd_next; /* under a->lock: a channel handed over before attach */
	uint32_t gen_next;
	int fd; /* -1: no channel */
	uint32_t gen; /* the parent's number of this channel (of the last one) */
	bool lost; /* the channel failed: a new one is to be asked for */
	long long asked; /* when it was last asked for (monotonic ms) */
	struct loop_io *io;
	struct loop_timer *timer; /* the deadlines, while requests wait (made on the loop) */
	struct idmap pending;
	struct authc_req *head;
	uint64_t next_id;
	struct ipc_out out;
	unsigned char *buf; /* IPC_FRAME_MAX */
};

struct authc {
	pthread_mutex_t lock; /* links[] and each link's loop, mb and fd_next */
	struct authc_link *links[AUTHC_LINKS_MAX];
	size_t nlinks; /* one past the highest made */
	authc_lost_cb *lost;
	void *lost_ctx;
	authc_timed_cb *timed;
	void *timed_ctx;
};

/* A channel on its way to a link's loop. */
struct authc_handover {
	struct authc_link *l;
	int fd;
	uint32_t gen;
};

static long long
authc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* On the asking loop: the answer, or TEMPFAIL. */
static void
authc_deliver(void *arg)
{
	struct authc_req *r = arg;
	struct auth_msg_answer *a = r->answer;
	const char *senders = a != NULL && a->senders[0] != '\0' ? a->senders : NULL;

	if (r->done != NULL) {
		if (a == NULL)
			r->done(r->ctx, r->session_id, AUTHDB_TEMPFAIL, r->user, NULL);
		else
			r->done(r->ctx, r->session_id, (enum authdb_result)a->result,
			    a->result == AUTHDB_OK ? a->user : r->user, senders);
	} else if (r->sasl != NULL) {
		r->sasl(r->ctx, r->session_id, a);
	} else if (r->token != NULL) {
		if (a == NULL)
			r->token(r->ctx, r->session_id, OAUTH_TEMPFAIL, "auth process unavailable",
			    NULL, NULL);
		else
			r->token(r->ctx, r->session_id, (enum oauth_result)a->result,
			    a->reason[0] != '\0' ? a->reason : NULL,
			    a->openid[0] != '\0' ? a->openid : NULL, senders);
	}
	if (a != NULL) {
		explicit_bzero(a, sizeof(*a));
		free(a);
	}
	free(r);
}

static void
authc_unlink(struct authc_link *l, struct authc_req *r)
{
	idmap_del(&l->pending, r->id);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
}

/* Every pending request of l (or those past their deadline) gets TEMPFAIL,
 * through the mailbox: never inside the call of another request. */
static void
authc_fail_pending(struct authc_link *l, bool expired_only)
{
	long long now = authc_now();
	struct authc_req *r = l->head, *next;

	for (; r != NULL; r = next) {
		next = r->next;
		if (expired_only && r->deadline > now)
			continue;
		authc_unlink(l, r);
		mailbox_post(l->mb, authc_deliver, r);
	}
}

/* Asks for a new channel, once a second until one comes (a channel the
 * auth process keeps refusing does not make the parent spin): an ask that
 * did not go, or that the parent could not serve (no socket pair), is
 * asked again. The parent ignores an ask for a channel it has replaced
 * already (the gen it names is not its last), so one in flight is never
 * doubled. */
static void
authc_ask(struct authc_link *l)
{
	long long now = child_now_ms();

	if (!l->lost || l->fd != -1 || l->a->lost == NULL)
		return;
	if (l->asked == 0 || now - l->asked >= 1000) {
		l->asked = now;
		l->a->lost(l->a->lost_ctx, l->index, l->gen);
	}
	if (!loop_timer_is_pending(l->timer))
		loop_timer_add(l->timer, 1000);
}

/* The channel is gone: a failure (why: peer closed, bad frame, send
 * failure: a new one is asked for) or, why NULL, replaced or closed. */
static void
authc_drop_channel(struct authc_link *l, const char *why)
{
	if (l->fd == -1)
		return;
	loop_io_free(l->io);
	l->io = NULL;
	close(l->fd);
	l->fd = -1;
	if (why != NULL)
		log_event(LOG_ERR, "auth_channel", 0, "{s:s, s:s, s:i}", "process", "smtp", "error",
		    why, "loop", (int)l->index);
	authc_fail_pending(l, false);
	if (why != NULL) {
		l->lost = true;
		authc_ask(l);
	}
}

/* The time r took (its answer has just been read), to the observer. */
static void
authc_timed(struct authc *a, const struct authc_req *r, const struct timespec *now)
{
	const char *request;

	if (a->timed == NULL)
		return;
	request = r->done != NULL ? "plain" : r->sasl != NULL ? "sasl" : "token";
	a->timed(a->timed_ctx, request,
	    (double)(now->tv_sec - r->sent.tv_sec) +
	        (double)(now->tv_nsec - r->sent.tv_nsec) / 1e9);
}

static void
authc_read(void *arg)
{
	struct authc_link *l = arg;
	struct ipc_frame f;
	struct auth_msg_answer *ans;
	struct authc_req *r;
	struct timespec now;
	int n = ipc_sock_recv(l->fd, l->buf, &f, NULL);

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		authc_drop_channel(l,
		    n == 0 ? "the auth process closed the channel"
		           : "a malformed frame from the auth process");
		return;
	}
	ans = xcalloc(1, sizeof(*ans));
	if (auth_msg_answer_decode(&f, ans) == -1) {
		free(ans);
		authc_drop_channel(l, "a malformed answer from the auth process");
		return;
	}
	explicit_bzero(l->buf, IPC_FRAME_HDR + f.len);
	r = idmap_get(&l->pending, f.id);
	if (r == NULL) {
		/* answered already (timed out): nobody waits */
		explicit_bzero(ans, sizeof(*ans));
		free(ans);
		return;
	}
	authc_unlink(l, r);
	authc_timed(l->a, r, &now);
	r->answer = ans;
	/* on this loop already, outside any request: at once */
	authc_deliver(r);
}

static void
authc_tick(void *arg)
{
	struct authc_link *l = arg;

	authc_fail_pending(l, true);
	authc_ask(l);
	if (l->head != NULL)
		loop_timer_add(l->timer, 1000);
}

/* On l's loop: fd (the parent's gen-th) in place of the current channel
 * (-1: none). */
static void
authc_install(struct authc_link *l, int fd, uint32_t gen)
{
	authc_drop_channel(l, NULL);
	if (fd == -1)
		return;
	l->gen = gen;
	l->lost = false;
	if (l->timer == NULL)
		l->timer = loop_timer_new(l->loop, authc_tick, l);
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	l->fd = fd;
	l->io = loop_io_new(l->loop, fd, authc_read, l);
}

static void
authc_install_run(void *arg)
{
	struct authc_handover *h = arg;

	authc_install(h->l, h->fd, h->gen);
	free(h);
}

static void
authc_handover(struct authc_link *l, int fd, uint32_t gen)
{
	struct authc_handover *h = xmalloc(sizeof(*h));

	h->l = l;
	h->fd = fd;
	h->gen = gen;
	loop_post(l->loop, authc_install_run, h);
}

struct authc *
authc_new(authc_lost_cb *lost, void *ctx)
{
	struct authc *a = xcalloc(1, sizeof(*a));

	pthread_mutex_init(&a->lock, NULL);
	a->lost = lost;
	a->lost_ctx = ctx;
	return a;
}

void
authc_set_timed(struct authc *a, authc_timed_cb *timed, void *ctx)
{
	a->timed = timed;
	a->timed_ctx = ctx;
}

/* Under the lock: link i, made on first use. */
static struct authc_link *
authc_link_get(struct authc *a, size_t i)
{
	struct authc_link *l = a->links[i];

	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->a = a;
		l->index = i;
		l->fd = -1;
		l->fd_next = -1;
		l->next_id = 1;
		idmap_init(&l->pending);
		a->links[i] = l;
		if (i + 1 > a->nlinks)
			a->nlinks = i + 1;
	}
	return l;
}

void
authc_attach(struct authc *a, size_t i, struct loop *loop)
{
	struct authc_link *l;

	if (i >= AUTHC_LINKS_MAX)
		return;
	pthread_mutex_lock(&a->lock);
	l = authc_link_get(a, i);
	if (l->loop == NULL) {
		l->loop = loop;
		l->mb = loop_mailbox(loop);
		l->buf = xmalloc(IPC_FRAME_MAX);
		if (l->fd_next != -1)
			authc_handover(l, l->fd_next, l->gen_next);
		l->fd_next = -1;
	}
	pthread_mutex_unlock(&a->lock);
}

void
authc_set_channel(struct authc *a, size_t i, uint32_t gen, int fd)
{
	struct authc_link *l;

	if (i >= AUTHC_LINKS_MAX) {
		if (fd != -1)
			close(fd);
		return;
	}
	pthread_mutex_lock(&a->lock);
	l = authc_link_get(a, i);
	if (l->loop != NULL) {
		authc_handover(l, fd, gen);
	} else {
		if (l->fd_next != -1)
			close(l->fd_next);
		l->fd_next = fd;
		l->gen_next = gen;
	}
	pthread_mutex_unlock(&a->lock);
}

/* On the link's loop, before it stops: what waits is answered TEMPFAIL. */
static void
authc_close_run(void *arg)
{
	struct authc_link *l = arg;
	struct authc_req *r;

	while ((r = l->head) != NULL) {
		authc_unlink(l, r);
		authc_deliver(r);
	}
	authc_drop_channel(l, NULL);
	loop_timer_free(l->timer);
	l->timer = NULL;
}

void
authc_close(struct authc *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < AUTHC_LINKS_MAX; i++) {
		if (a->links[i] != NULL && a->links[i]->loop != NULL)
			loop_post(a->links[i]->loop, authc_close_run, a->links[i]);
	}
	pthread_mutex_unlock(&a->lock);
}

void
authc_free(struct authc *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < AUTHC_LINKS_MAX; i++) {
		struct authc_link *l = a->links[i];
		struct authc_req *r;

		if (l == NULL)
			continue;
		if (l->fd_next != -1)
			close(l->fd_next);
		loop_io_free(l->io);
		if (l->fd != -1)
			close(l->fd);
		loop_timer_free(l->timer);
		while ((r = l->head) != NULL) {
			authc_unlink(l, r);
			free(r);
		}
		idmap_free(&l->pending);
		explicit_bzero(l->out.buf, sizeof(l->out.buf));
		free(l->buf);
		free(l);
	}
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* The link of the loop whose mailbox is mb, or NULL. */
static struct authc_link *
authc_link_of(struct authc *a, const struct mailbox *mb)
{
	struct authc_link *found = NULL;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; found == NULL && i < a->nlinks; i++) {
		if (a->links[i] != NULL && a->links[i]->mb == mb)
			found = a->links[i];
	}
	pthread_mutex_unlock(&a->lock);
	return found;
}

/* On mb's loop: sends q for r (NULL: no answer expected). A request that
 * cannot be sent is answered TEMPFAIL, through the mailbox. */
static void
authc_send(struct authc *a, struct mailbox *mb, const struct auth_msg_req *q, struct authc_req *r)
{
	struct authc_link *l = authc_link_of(a, mb);
	uint64_t id;
	bool sent = false;

	if (l != NULL && l->fd != -1) {
		id = l->next_id++;
		if (auth_msg_req_encode(&l->out, id, q) == 0) {
			if (r != NULL)
				clock_gettime(CLOCK_MONOTONIC, &r->sent);
			if (ipc_sock_send(l->fd, &l->out, -1) == 0)
				sent = true;
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				authc_drop_channel(l, "the auth process is gone");
		}
		explicit_bzero(l->out.buf, l->out.len);
		if (sent && r != NULL) {
			r->id = id;
			r->deadline = authc_now() + AUTHC_TIMEOUT_S;
			r->next = l->head;
			if (l->head != NULL)
				l->head->prev = r;
			l->head = r;
			idmap_put(&l->pending, id, r);
			if (!loop_timer_is_pending(l->timer))
				loop_timer_add(l->timer, 1000);
		}
	}
	if (!sent && r != NULL)
		mailbox_post(mb, authc_deliver, r);
}

static struct authc_req *
authc_req_new(uint64_t session_id, const char *user, size_t userlen, void *ctx)
{
	struct authc_req *r = xcalloc(1, sizeof(*r));

	r->session_id = session_id;
	r->ctx = ctx;
	if (userlen > SASL_USER_MAX)
		userlen = SASL_USER_MAX;
	memcpy(r->user, user, userlen);
	r->user[strnlen(r->user, userlen)] = '\0';
	return r;
}

/* The user field of a request, cut to what a request may carry. */
static void
authc_req_user(struct auth_msg_req *q, const char *user, size_t userlen)
{
	q->userlen = userlen > SASL_USER_MAX ? SASL_USER_MAX : userlen;
	memcpy(q->user, user, q->userlen);
	q->user[q->userlen] = '\0';
}

void
authc_verify_plain(struct authc *a, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *password, size_t passlen, const char *client, authc_done_cb *cb,
    void *ctx)
{
	struct auth_msg_req *q = xcalloc(1, sizeof(*q));
	struct authc_req *r = authc_req_new(session_id, user, userlen, ctx);

	r->done = cb;
	q->type = AUTH_MSG_PLAIN;
	authc_req_user(q, user, userlen);
	q->secretlen = passlen > SASL_SECRET_MAX ? SASL_SECRET_MAX : passlen;
	memcpy(q->secret, password, q->secretlen);
	if (client != NULL)
		snprintf(q->client, sizeof(q->client), "%s", client);
	authc_send(a, mb, q, r);
	explicit_bzero(q, sizeof(*q));
	free(q);
}

void
authc_sasl(struct authc *a, struct mailbox *mb, uint64_t session_id, const struct auth_msg_req *q,
    authc_sasl_cb *cb, void *ctx)
{
	struct authc_req *r = authc_req_new(session_id, "", 0, ctx);

	r->sasl = cb;
	if (q->type != AUTH_MSG_SASL_START && q->type != AUTH_MSG_SASL_STEP)
		mailbox_post(mb, authc_deliver, r);
	else
		authc_send(a, mb, q, r);
}

void
authc_sasl_end(struct authc *a, struct mailbox *mb, uint64_t handle)
{
	struct auth_msg_req *q;

	if (a == NULL)
		return;
	q = xcalloc(1, sizeof(*q));
	q->type = AUTH_MSG_SASL_END;
	q->handle = handle;
	authc_send(a, mb, q, NULL);
	free(q);
}

void
authc_verify_token(struct authc *a, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *token, size_t tokenlen, authc_token_cb *cb, void *ctx)
{
	struct auth_msg_req *q = xcalloc(1, sizeof(*q));
	struct authc_req *r = authc_req_new(session_id, user, userlen, ctx);

	r->token = cb;
	q->type = AUTH_MSG_TOKEN;
	authc_req_user(q, user, userlen);
	q->secretlen = tokenlen > SASL_TOKEN_MAX ? SASL_TOKEN_MAX : tokenlen;
	memcpy(q->secret, token, q->secretlen);
	authc_send(a, mb, q, r);
	explicit_bzero(q, sizeof(*q));
	free(q);
}
