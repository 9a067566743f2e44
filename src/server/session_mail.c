/*
 * session_mail: the mail transaction of a session (session_priv.h): MAIL
 * and RCPT with relay and sender-binding policy, DATA and BDAT (RFC 5321
 * 4.1.1.4, RFC 3030) streamed into an open spool message, the Received:
 * header, the header From: check, and the commit whose durable answer is
 * the only way to a 250 (queue.h).
 */
#include "server/session_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "auth/authdb.h"
#include "auth/oauth.h"
#include "conf/conf.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/idmap.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/tls.h"
#include "policy/limiter.h"
#include "policy/relay.h"
#include "policy/sender.h"
#include "queue/queue.h"
#include "sasl/sasl.h"
#include "sasl/sasl_oauth.h"
#include "server/obs.h"
#include "server/sendquota.h"
#include "server/server.h"
#include "server/session.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_header.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"

/* Sender binding (policy/sender.h) applies to authenticated sessions on
 * listeners with sender_binding on; unauthenticated mail (relay = local)
 * is not bound to anyone. */
static bool
session_mail_binds_sender(const struct session *s)
{
	return s->auth_user != NULL && s->listen->sender_binding;
}

/* The envelope sender must be owned by the user (or be <>). The patterns
 * came from the auth process with the login, so `smtpgate user senders`
 * applies from the user's next login on. */
static bool
session_mail_sender_allowed(struct session *s)
{
	const char *patterns;
	char text[SENDER_REPLY_TEXT_MAX];
	bool ok;

	if (!session_mail_binds_sender(s))
		return true;
	patterns = s->auth_senders;
	ok = sender_envelope_is_allowed(s->auth_user, patterns, s->mail.addr);
	if (!ok) {
		sender_reject_text(s->auth_user, patterns, NULL, text, sizeof(text));
		log_event(LOG_NOTICE, "mail", s->id, "{s:s, s:s, s:s}", "from", s->mail.addr,
		    "user", s->auth_user, "result", "not owned");
		session_reply(s, SMTP_R_SENDER_NOT_OWNED, text);
	}
	return ok;
}

/* At the end of the message: every address of every header From: must be
 * owned too (several From: fields, or a list without Sender:, pass only
 * when all are owned). NULL when the message may be queued, else the 553
 * text in text. A message without From: (RFC 5322 3.6 requires one) is
 * accepted as it is: it claims no author to spoof, and its envelope sender
 * was checked; smtpgate does not add one. */
static const char *
session_mail_header_check(struct session *s, char *text, size_t textlen)
{
	const char *patterns;
	const char *bad = NULL;

	if (s->hdr == NULL || !session_mail_binds_sender(s))
		return NULL;
	smtp_header_finish(s->hdr);
	switch (smtp_header_result(s->hdr)) {
	case SMTP_HEADER_FROM_NONE:
		return NULL;
	case SMTP_HEADER_FROM_BAD:
		snprintf(text, textlen, "Sender address rejected: cannot parse the From: header");
		return text;
	case SMTP_HEADER_FROM_OK:
		break;
	}
	patterns = s->auth_senders;
	for (size_t i = 0; i < s->hdr->naddrs && bad == NULL; i++) {
		if (!sender_owns(s->auth_user, patterns, s->hdr->addrs[i]))
			bad = s->hdr->addrs[i];
	}
	if (bad != NULL)
		sender_reject_text(s->auth_user, patterns, bad, text, textlen);
	return bad != NULL ? text : NULL;
}

/* MAIL's last step: the sending quota, then the 250. */
static void
session_mail_quota(struct session *s)
{
	enum smtp_reply_id err = sendquota_check_mail(
	    s->w->srv->sendquota, session_conf(s), s->auth_user, s->client, s->id);

	if (err != SMTP_R_OK) {
		session_reply(s, err, NULL);
		return;
	}
	s->has_mail = true;
	log_event(
	    LOG_INFO, "mail", s->id, "{s:s, s:s?}", "from", s->mail.addr, "user", s->auth_user);
	session_reply(s, SMTP_R_SENDER_OK, NULL);
}

/* Which session waits for the shared count (it may be gone when it comes). */
struct session_mail_wait {
	struct worker *w;
	uint64_t id;
};

static void *
session_mail_wait_new(struct session *s)
{
	struct session_mail_wait *mw = xcalloc(1, sizeof(*mw));

	mw->w = s->w;
	mw->id = s->id;
	return mw;
}

static void
session_mail_quota_fetched(void *arg)
{
	struct session_mail_wait *mw = arg;
	struct session *s = idmap_get(&mw->w->sessions, mw->id);

	free(mw);
	if (s == NULL || s->closing)
		return;
	s->busy = false;
	session_mail_quota(s);
	session_flush(s);
	conn_read_resume(s->conn);
	session_process(s);
}

void
session_mail_from(struct session *s, const struct smtp_cmd *cmd)
{
	enum smtp_reply_id err;
	void *mw;

	if (s->helo == NULL) {
		session_reply(s, SMTP_R_NEED_HELO, NULL);
		return;
	}
	if (s->has_mail) {
		session_reply(s, SMTP_R_BAD_SEQUENCE, "Nested MAIL command");
		return;
	}
	err = relay_check_mail(s->listen, s->tls, s->auth_user != NULL);
	if (err != SMTP_R_OK) {
		session_reply(s, err, NULL);
		return;
	}
	if (smtp_parse_mail(cmd->arg, cmd->arglen, &s->mail, &err) == -1) {
		session_reply(s, err, NULL);
		return;
	}
	if (!s->esmtp && (s->mail.has_size || s->mail.smtputf8 || s->mail.body != SMTP_BODY_7BIT)) {
		session_reply(s, SMTP_R_PARAM_UNKNOWN, "MAIL parameters need EHLO");
		return;
	}
	if (s->mail.has_size && s->mail.size > session_conf(s)->message_size) {
		session_reply(s, SMTP_R_SIZE_EXCEEDED, NULL);
		return;
	}
	if (!session_mail_sender_allowed(s))
		return;
	/* with [cluster], the count of every node first (a bounded wait) */
	mw = session_mail_wait_new(s);
	if (sendquota_fetch(s->w->srv->sendquota, session_conf(s), s->auth_user, s->w->loop,
	        session_mail_quota_fetched, mw)) {
		s->busy = true;
		conn_read_pause(s->conn);
		return;
	}
	free(mw);
	session_mail_quota(s);
}

/* RCPT's last step: the sending quota (shared: every node's answer, NULL:
 * this node's count), then the 250. */
static void
session_mail_rcpt_quota(struct session *s, const char *addr, const struct sendquota_shared *shared)
{
	enum smtp_reply_id err = sendquota_check_rcpt(
	    s->w->srv->sendquota, session_conf(s), s->auth_user, addr, s->client, s->id, shared);

	if (err != SMTP_R_OK) {
		log_event(LOG_NOTICE, "rcpt", s->id, "{s:s, s:s}", "to", addr, "result", "quota");
		session_reply(s, err, NULL);
		return;
	}
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(*s->rcpts));
	s->rcpts[s->nrcpts++] = xstrdup(addr);
	log_event(LOG_INFO, "rcpt", s->id, "{s:s, s:s}", "to", addr, "result", "ok");
	session_reply(s, SMTP_R_RCPT_OK, NULL);
}

/* Which session waits for the shared recipients, and for which address. */
struct session_rcpt_wait {
	struct worker *w;
	uint64_t id;
	char *addr;
};

static void
session_mail_rcpt_fetched(void *arg, const struct sendquota_shared *shared)
{
	struct session_rcpt_wait *rw = arg;
	struct session *s = idmap_get(&rw->w->sessions, rw->id);

	if (s != NULL && !s->closing) {
		s->busy = false;
		session_mail_rcpt_quota(s, rw->addr, shared);
		session_flush(s);
		conn_read_resume(s->conn);
		session_process(s);
	}
	free(rw->addr);
	free(rw);
}

void
session_mail_rcpt(struct session *s, const struct smtp_cmd *cmd)
{
	struct smtp_path rcpt;
	enum smtp_reply_id err;
	struct session_rcpt_wait *rw;

	if (!s->has_mail) {
		session_reply(s, SMTP_R_NEED_MAIL, NULL);
		return;
	}
	if (s->nrcpts >= session_conf(s)->recipients) {
		session_reply(s, SMTP_R_TOO_MANY_RCPTS, NULL);
		return;
	}
	if (smtp_parse_rcpt(cmd->arg, cmd->arglen, s->mail.smtputf8, &rcpt, &err) == -1) {
		session_reply(s, err, NULL);
		return;
	}
	err = relay_check_rcpt(session_conf(s), s->listen, s->auth_user != NULL, rcpt.domain);
	if (err != SMTP_R_OK) {
		log_event(
		    LOG_NOTICE, "rcpt", s->id, "{s:s, s:s}", "to", rcpt.addr, "result", "denied");
		session_reply(s, err, NULL);
		return;
	}
	/* with [cluster], the distinct recipients of every node (a bounded wait) */
	rw = xcalloc(1, sizeof(*rw));
	rw->w = s->w;
	rw->id = s->id;
	rw->addr = xstrdup(rcpt.addr);
	if (sendquota_rcpt_fetch(s->w->srv->sendquota, session_conf(s), s->auth_user, rcpt.addr,
	        s->w->loop, session_mail_rcpt_fetched, rw)) {
		s->busy = true;
		conn_read_pause(s->conn);
		return;
	}
	free(rw->addr);
	free(rw);
	session_mail_rcpt_quota(s, rcpt.addr, NULL);
}

static const char *
session_mail_protocol(const struct session *s)
{
	/* RFC 3848 and RFC 6531 3.7.4 */
	static const char *const names[2][2][2] = {
	    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};

	if (!s->esmtp)
		return "SMTP";
	return names[s->mail.smtputf8][s->tls][s->auth_user != NULL];
}

static int
session_mail_write_received(struct session *s)
{
	char date[64], hdr[1024];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (s->tls) {
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s])\r\n\tby %s (smtpgate) with %s id %s\r\n"
		    "\t(version=%s cipher=%s);\r\n\t%s\r\n",
		    s->helo, s->client, session_conf(s)->hostname, session_mail_protocol(s), s->qid,
		    tls_version_name(conn_ssl(s->conn)), tls_cipher_name(conn_ssl(s->conn)), date);
	} else {
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s])\r\n\tby %s (smtpgate) with %s id %s;\r\n\t%s\r\n",
		    s->helo, s->client, session_conf(s)->hostname, session_mail_protocol(s), s->qid,
		    date);
	}
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	return queue_msg_write(s->msg, hdr, (size_t)n);
}

/* Opens the spool message at the first DATA/BDAT of a transaction. */
static int
session_mail_open(struct session *s)
{
	s->msg = queue_msg_new(s->w->srv->queue, s->qid);
	if (s->msg == NULL) {
		log_event(LOG_ERR, "spool_error", s->id, "{s:s}", "error", strerror(errno));
		return -1;
	}
	if (session_mail_write_received(s) == -1) {
		log_event(LOG_ERR, "spool_error", s->id, "{s:s}", "error", strerror(errno));
		queue_msg_abort(s->msg);
		s->msg = NULL;
		return -1;
	}
	if (session_mail_binds_sender(s)) {
		s->hdr = xcalloc(1, sizeof(*s->hdr));
		smtp_header_init(s->hdr);
	}
	return 0;
}

static void
session_mail_out_cb(void *arg, const char *p, size_t n)
{
	struct session *s = arg;

	/* the header From: is checked at the end (session_mail_header_check) */
	if (s->hdr != NULL && !smtp_header_is_done(s->hdr))
		smtp_header_feed(s->hdr, p, n);
	if (s->too_big || s->msg_failed || n == 0)
		return;
	if (s->msg_size + n > session_conf(s)->message_size) {
		s->too_big = true;
		return;
	}
	s->msg_size += n;
	if (queue_msg_write(s->msg, p, n) == -1) {
		log_event(LOG_ERR, "spool_error", s->id, "{s:s}", "error", strerror(errno));
		s->msg_failed = true;
	}
}

/* Between queue_msg_commit and its answer, as the session sees it. */
static void
session_mail_observe_commit(struct session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	obs_commit_latency(s->w->srv->obs,
	    (double)(now.tv_sec - s->commit_start.tv_sec) +
	        (double)(now.tv_nsec - s->commit_start.tv_nsec) / 1e9);
}

static void
session_mail_commit_done_cb(void *ctx, uint64_t session_id, const char *queue_id, int result)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);

	if (s == NULL || s->closing) {
		/* no 250 was sent: roll the message back */
		if (result == 0)
			queue_rollback(w->srv->queue, queue_id);
		return;
	}
	s->busy = false;
	session_mail_observe_commit(s);
	if (result == 0) {
		char text[128];

		obs_accepted(w->srv->obs);
		sendquota_count_message(w->srv->sendquota, s->auth_user);
		log_event(LOG_INFO, "accepted", s->id, "{s:s, s:s, s:I, s:i, s:s?}", "queue_id",
		    queue_id, "from", s->mail.addr, "size", (json_int_t)s->msg_size, "rcpts",
		    (int)s->nrcpts, "user", s->auth_user);
		snprintf(text, sizeof(text), "OK: queued as %s", queue_id);
		session_reply(s, SMTP_R_OK, text);
	} else {
		session_reply(s, SMTP_R_LOCAL_ERROR, NULL);
	}
	session_reset_transaction(s);
	session_flush(s);
	conn_read_resume(s->conn);
	session_process(s);
}

/* The end of a message (DATA terminator or BDAT LAST): refuse or commit. */
static void
session_mail_end(struct session *s, uint64_t bare)
{
	struct queue_envelope env;
	char text[SENDER_REPLY_TEXT_MAX];

	s->state = SESSION_CMD;
	session_set_timeouts(s);
	if (bare > 0) {
		session_reply(s, SMTP_R_BARE_LF, NULL);
		session_reset_transaction(s);
		return;
	}
	if (s->too_big) {
		session_reply(s, SMTP_R_SIZE_EXCEEDED, NULL);
		session_reset_transaction(s);
		return;
	}
	if (s->msg_failed) {
		session_reply(s, SMTP_R_LOCAL_ERROR, NULL);
		session_reset_transaction(s);
		return;
	}
	if (session_mail_header_check(s, text, sizeof(text)) != NULL) {
		/* nothing is queued: the spool message is dropped */
		log_event(LOG_NOTICE, "mail", s->id, "{s:s, s:s, s:s}", "from", s->mail.addr,
		    "user", s->auth_user, "result", "header From: not owned");
		session_reply(s, SMTP_R_SENDER_NOT_OWNED, text);
		session_reset_transaction(s);
		return;
	}
	/* the account went over its quota during this transaction */
	if (sendquota_check_data(s->w->srv->sendquota, session_conf(s), s->auth_user) !=
	    SMTP_R_OK) {
		session_reply(s,
		    sendquota_check_data(s->w->srv->sendquota, session_conf(s), s->auth_user),
		    NULL);
		session_reset_transaction(s);
		return;
	}
	memset(&env, 0, sizeof(env));
	env.sender = s->mail.addr;
	env.rcpts = (const char *const *)s->rcpts;
	env.nrcpts = s->nrcpts;
	env.auth_user = s->auth_user;
	env.client_addr = s->client;
	env.helo = s->helo;
	env.smtputf8 = s->mail.smtputf8;
	env.body_8bit = s->mail.body == SMTP_BODY_8BITMIME;
	env.arrival = time(NULL);
	s->busy = true;
	session_flush(s);
	conn_read_pause(s->conn);
	clock_gettime(CLOCK_MONOTONIC, &s->commit_start);
	queue_msg_commit(
	    s->msg, &env, loop_mailbox(s->w->loop), s->id, session_mail_commit_done_cb, s->w);
	s->msg = NULL; /* taken by the queue */
}

void
session_mail_data(struct session *s)
{
	if (!s->has_mail) {
		session_reply(s, SMTP_R_NEED_MAIL, NULL);
		return;
	}
	if (s->nrcpts == 0) {
		session_reply(s, SMTP_R_NEED_RCPT, NULL);
		return;
	}
	if (s->bdat_mode) {
		session_reply(s, SMTP_R_BDAT_MIX, NULL);
		return;
	}
	if (session_mail_open(s) == -1) {
		session_reply(s, SMTP_R_LOCAL_ERROR, NULL);
		return;
	}
	smtp_data_init(&s->data);
	s->state = SESSION_DATA;
	session_set_timeouts(s);
	session_reply(s, SMTP_R_DATA_GO, NULL);
}

void
session_mail_bdat(struct session *s, const struct smtp_cmd *cmd)
{
	enum smtp_reply_id err;
	uint64_t size;
	bool last;

	if (smtp_parse_bdat(cmd->arg, cmd->arglen, &size, &last, &err) == -1) {
		/* the chunk size is unknown: the stream cannot be resynchronised */
		session_reply(s, err, NULL);
		session_close(s);
		return;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_error = SMTP_R_OK;
	if (!s->has_mail)
		s->bdat_error = SMTP_R_NEED_MAIL;
	else if (s->nrcpts == 0)
		s->bdat_error = SMTP_R_NEED_RCPT;
	else if (!s->bdat_mode && s->msg != NULL)
		s->bdat_error = SMTP_R_BDAT_MIX;
	if (s->bdat_error == SMTP_R_OK && !s->bdat_mode) {
		if (session_mail_open(s) == -1) {
			s->bdat_error = SMTP_R_LOCAL_ERROR;
		} else {
			s->bdat_mode = true;
			smtp_bare_init(&s->bare);
		}
	}
	/* RFC 3030 2: the chunk is read (and discarded on error) in any case */
	s->state = SESSION_BDAT;
	session_set_timeouts(s);
}

void
session_mail_bdat_chunk_end(struct session *s)
{
	char text[64];

	s->state = SESSION_CMD;
	session_set_timeouts(s);
	if (s->bdat_error != SMTP_R_OK) {
		session_reply(s, s->bdat_error, NULL);
		if (s->bdat_mode)
			session_reset_transaction(s);
		return;
	}
	if (!s->bdat_last) {
		snprintf(
		    text, sizeof(text), "%llu octets received", (unsigned long long)s->msg_size);
		session_reply(s, SMTP_R_OK, text);
		return;
	}
	smtp_bare_finish(&s->bare);
	session_mail_end(s, s->bare.bare);
}

void
session_mail_input_data(struct session *s)
{
	struct iovec iov[SESSION_IOV];
	size_t n = conn_in_peek(s->conn, iov, SESSION_IOV);
	size_t total = 0;

	for (size_t i = 0; i < n && !s->data.done; i++) {
		size_t used = smtp_data_feed(
		    &s->data, iov[i].iov_base, iov[i].iov_len, session_mail_out_cb, s);

		total += used;
	}
	conn_in_drain(s->conn, total);
	if (s->data.done) {
		if (s->data.size > session_conf(s)->message_size)
			s->too_big = true;
		session_mail_end(s, s->data.bare);
	}
}

void
session_mail_input_bdat(struct session *s)
{
	struct iovec iov[SESSION_IOV];
	size_t n = conn_in_peek(s->conn, iov, SESSION_IOV);
	size_t total = 0;

	for (size_t i = 0; i < n && s->bdat_left > 0; i++) {
		size_t take = iov[i].iov_len < s->bdat_left ? iov[i].iov_len : (size_t)s->bdat_left;

		if (s->bdat_error == SMTP_R_OK) {
			smtp_bare_feed(&s->bare, iov[i].iov_base, take);
			session_mail_out_cb(s, iov[i].iov_base, take);
			if (s->too_big)
				s->bdat_error = SMTP_R_SIZE_EXCEEDED;
		}
		s->bdat_left -= take;
		total += take;
	}
	conn_in_drain(s->conn, total);
	if (s->bdat_left == 0)
		session_mail_bdat_chunk_end(s);
}
