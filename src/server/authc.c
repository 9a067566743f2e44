/*
 * authc: see authc.h. Requests are sent on the loop thread that makes them
 * (non-blocking: a full channel is a TEMPFAIL, never a stalled loop); the
 * reader thread owns the receiving side.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/idmap.h"
#include "lib/log.h"
#include "lib/mailbox.h"
#include "lib/xalloc.h"
#include "net/ipc_sock.h"
#include "server/auth_msg.h"
#include "server/authc.h"

struct authc_req {
	uint64_t id;
	enum auth_msg_type type;
	struct mailbox *mb;
	uint64_t session_id;
	authc_done_cb *done;
	authc_sasl_cb *sasl;
	authc_token_cb *token;
	void *ctx;
	long long deadline; /* monotonic seconds */
	char user[SASL_USER_MAX + 1]; /* as typed, for a TEMPFAIL answer */
	struct auth_msg_answer *answer; /* NULL: TEMPFAIL */
	struct authc_req *prev, *next;
};

struct authc {
	pthread_mutex_t lock; /* everything below but thread */
	int fd; /* -1: no channel */
	unsigned gen; /* changes with the channel */
	struct idmap pending;
	struct authc_req *head;
	uint64_t next_id;
	bool stop;
	int wake[2];
	pthread_t thread;
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
authc_unlink(struct authc *a, struct authc_req *r)
{
	idmap_del(&a->pending, r->id);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		a->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
}

/* Under the lock: every pending request (or those past their deadline)
 * gets TEMPFAIL. */
static void
authc_fail_pending(struct authc *a, bool expired_only)
{
	long long now = authc_now();
	struct authc_req *r = a->head, *next;

	for (; r != NULL; r = next) {
		next = r->next;
		if (expired_only && r->deadline > now)
			continue;
		authc_unlink(a, r);
		mailbox_post(r->mb, authc_deliver, r);
	}
}

/* Under the lock: the channel is gone (peer closed, bad frame, send
 * failure). */
static void
authc_drop_channel(struct authc *a, const char *why)
{
	if (a->fd == -1)
		return;
	close(a->fd);
	a->fd = -1;
	a->gen++;
	log_event(LOG_ERR, "auth_channel", 0, "{s:s}", "error", why);
	authc_fail_pending(a, false);
}

/* Under the lock: one frame from the auth process. */
static void
authc_read_one(struct authc *a, unsigned char *buf)
{
	struct ipc_frame f;
	struct auth_msg_answer *ans;
	struct authc_req *r;
	int n = ipc_sock_recv(a->fd, buf, &f, NULL);

	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		authc_drop_channel(a,
		    n == 0 ? "the auth process closed the channel"
		           : "a malformed frame from the auth process");
		return;
	}
	ans = xcalloc(1, sizeof(*ans));
	if (auth_msg_answer_decode(&f, ans) == -1) {
		free(ans);
		authc_drop_channel(a, "a malformed answer from the auth process");
		return;
	}
	explicit_bzero(buf, IPC_FRAME_HDR + f.len);
	r = idmap_get(&a->pending, f.id);
	if (r == NULL) {
		/* answered already (timed out): nobody waits */
		explicit_bzero(ans, sizeof(*ans));
		free(ans);
		return;
	}
	authc_unlink(a, r);
	r->answer = ans;
	mailbox_post(r->mb, authc_deliver, r);
}

static void *
authc_reader(void *arg)
{
	struct authc *a = arg;
	unsigned char *buf = xmalloc(IPC_FRAME_MAX);

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		struct pollfd p[2] = {
		    {.fd = a->wake[0], .events = POLLIN}, {.fd = a->fd, .events = POLLIN}};
		unsigned gen = a->gen;
		char drain[64];

		pthread_mutex_unlock(&a->lock);
		(void)poll(p, p[1].fd == -1 ? 1 : 2, 1000);
		if (p[0].revents != 0)
			while (read(a->wake[0], drain, sizeof(drain)) > 0)
				;
		pthread_mutex_lock(&a->lock);
		if (p[1].fd != -1 && p[1].revents != 0 && gen == a->gen)
			authc_read_one(a, buf);
		authc_fail_pending(a, true);
	}
	pthread_mutex_unlock(&a->lock);
	free(buf);
	return NULL;
}

struct authc *
authc_new(void)
{
	struct authc *a = xcalloc(1, sizeof(*a));

	pthread_mutex_init(&a->lock, NULL);
	a->fd = -1;
	a->next_id = 1;
	idmap_init(&a->pending);
	if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) == -1) {
		idmap_free(&a->pending);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return NULL;
	}
	pthread_create(&a->thread, NULL, authc_reader, a);
	return a;
}

static void
authc_wake(struct authc *a)
{
	(void)!write(a->wake[1], "", 1);
}

void
authc_set_channel(struct authc *a, int fd)
{
	pthread_mutex_lock(&a->lock);
	authc_drop_channel(a, "a new auth process");
	if (fd != -1)
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	a->fd = fd;
	a->gen++;
	pthread_mutex_unlock(&a->lock);
	authc_wake(a);
}

void
authc_free(struct authc *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_mutex_unlock(&a->lock);
	authc_wake(a);
	pthread_join(a->thread, NULL);
	pthread_mutex_lock(&a->lock);
	if (a->fd != -1)
		close(a->fd);
	a->fd = -1;
	authc_fail_pending(a, false);
	pthread_mutex_unlock(&a->lock);
	idmap_free(&a->pending);
	close(a->wake[0]);
	close(a->wake[1]);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Sends q for r (NULL: no answer expected). A request that cannot be sent
 * is answered TEMPFAIL at once, through the mailbox. */
static void
authc_send(struct authc *a, const struct auth_msg_req *q, struct authc_req *r)
{
	static _Thread_local struct ipc_out o;
	uint64_t id;
	bool sent = false;

	pthread_mutex_lock(&a->lock);
	id = a->next_id++;
	if (a->fd != -1 && auth_msg_req_encode(&o, id, q) == 0) {
		if (ipc_sock_send(a->fd, &o, -1) == 0)
			sent = true;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			authc_drop_channel(a, "the auth process is gone");
	}
	explicit_bzero(o.buf, o.len);
	if (sent && r != NULL) {
		r->id = id;
		r->deadline = authc_now() + AUTHC_TIMEOUT_S;
		r->next = a->head;
		if (a->head != NULL)
			a->head->prev = r;
		a->head = r;
		idmap_put(&a->pending, id, r);
	}
	pthread_mutex_unlock(&a->lock);
	if (!sent && r != NULL)
		mailbox_post(r->mb, authc_deliver, r);
}

static struct authc_req *
authc_req_new(struct mailbox *mb, uint64_t session_id, const char *user, size_t userlen, void *ctx)
{
	struct authc_req *r = xcalloc(1, sizeof(*r));

	r->mb = mb;
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

static void
authc_req_client(struct auth_msg_req *q, const char *client)
{
	if (client != NULL)
		snprintf(q->client, sizeof(q->client), "%s", client);
}

void
authc_verify_plain(struct authc *a, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *password, size_t passlen, const char *client, authc_done_cb *cb,
    void *ctx)
{
	struct auth_msg_req *q = xcalloc(1, sizeof(*q));
	struct authc_req *r = authc_req_new(mb, session_id, user, userlen, ctx);

	r->done = cb;
	q->type = AUTH_MSG_PLAIN;
	authc_req_user(q, user, userlen);
	q->secretlen = passlen > SASL_SECRET_MAX ? SASL_SECRET_MAX : passlen;
	memcpy(q->secret, password, q->secretlen);
	authc_req_client(q, client);
	authc_send(a, q, r);
	explicit_bzero(q, sizeof(*q));
	free(q);
}

void
authc_sasl(struct authc *a, struct mailbox *mb, uint64_t session_id, const struct auth_msg_req *q,
    authc_sasl_cb *cb, void *ctx)
{
	struct authc_req *r = authc_req_new(mb, session_id, "", 0, ctx);

	r->sasl = cb;
	if (q->type != AUTH_MSG_SASL_START && q->type != AUTH_MSG_SASL_STEP)
		mailbox_post(mb, authc_deliver, r);
	else
		authc_send(a, q, r);
}

void
authc_sasl_end(struct authc *a, uint64_t handle)
{
	struct auth_msg_req *q;

	if (a == NULL)
		return;
	q = xcalloc(1, sizeof(*q));
	q->type = AUTH_MSG_SASL_END;
	q->handle = handle;
	authc_send(a, q, NULL);
	free(q);
}

void
authc_verify_token(struct authc *a, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *token, size_t tokenlen, authc_token_cb *cb, void *ctx)
{
	struct auth_msg_req *q = xcalloc(1, sizeof(*q));
	struct authc_req *r = authc_req_new(mb, session_id, user, userlen, ctx);

	r->token = cb;
	q->type = AUTH_MSG_TOKEN;
	authc_req_user(q, user, userlen);
	q->secretlen = tokenlen > SASL_TOKEN_MAX ? SASL_TOKEN_MAX : tokenlen;
	memcpy(q->secret, token, q->secretlen);
	authc_send(a, q, r);
	explicit_bzero(q, sizeof(*q));
	free(q);
}

void
authc_record_use(
    struct authc *a, const char *user, const char *label, const char *created, const char *client)
{
	struct auth_msg_req *q = xcalloc(1, sizeof(*q));

	q->type = AUTH_MSG_USE;
	authc_req_user(q, user, strlen(user));
	snprintf(q->label, sizeof(q->label), "%s", label != NULL ? label : "");
	snprintf(q->created, sizeof(q->created), "%s", created != NULL ? created : "");
	authc_req_client(q, client);
	authc_send(a, q, NULL);
	free(q);
}
