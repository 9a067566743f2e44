/*
 * session_auth: the AUTH command and its exchange (RFC 4954) for a session
 * (session_priv.h): the mechanisms a session can offer, the SASL steps and
 * their base64, the asynchronous answers of the authdb and the token
 * verifier, and the abuse defences around them (per-account throttling,
 * counted failures, the tarpit, bans) from policy/limiter.h.
 *
 * Secrets: decoded responses and challenges live in secret buffers (wiped
 * on free); the log gets the mechanism, the user and a static reason only.
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
#include "server/auth_msg.h"
#include "server/authc.h"
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
#include "sasl/sasl_cram.h"
#include "sasl/sasl_mech.h"
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

static void session_auth_outcome(struct session *s, enum sasl_status st, struct buf *chal);
static void session_auth_token_cb(void *ctx, uint64_t session_id, enum oauth_result result,
    const char *reason, const char *openid, const char *senders);
static void session_auth_channel_binding(const struct session *s, struct sasl_context *ctx);
static bool session_auth_plus_offered(const struct session *s);

/* AUTH is advertised when the listener has it, no STARTTLS is pending
 * (AUTH before it gets 530), nobody is logged in yet, and at least one
 * configured mechanism can work on this session. */
bool
session_auth_offered(const struct session *s)
{
	const struct conf *c = session_conf(s);

	if (s->listen->auth == CONF_AUTH_OFF || s->auth_user != NULL ||
	    (s->listen->tls == CONF_TLS_STARTTLS && !s->tls))
		return false;
	for (size_t i = 0; i < c->nmechanisms; i++) {
		const struct sasl_mech *m = sasl_mech_find(c->mechanisms[i]);

		if (m != NULL && session_auth_mech_usable(s, m))
			return true;
	}
	return false;
}

/* Ends the exchange with 235 for user (canonical) and logs it. */
static void
session_auth_ok(struct session *s, const char *user)
{
	const char *typed = s->sasl != NULL ? sasl_user(s->sasl) : "";
	struct limiter *l = s->w->srv->limiter;

	/* known-good for the per-account throttle, under the name as typed
	 * (what limiter_auth_throttled sees) and the canonical one */
	if (l != NULL) {
		limiter_auth_ok(l, user, strlen(user), &s->addr, limiter_now_ms());
		if (typed[0] != '\0' && strcmp(typed, user) != 0)
			limiter_auth_ok(l, typed, strlen(typed), &s->addr, limiter_now_ms());
	}
	s->auth_user = xstrdup(user);
	s->auth_senders = s->auth_senders_next;
	s->auth_senders_next = NULL;
	session_reply(s, SMTP_R_AUTH_OK, NULL);
	log_event(LOG_INFO, "auth", s->id, "{s:s, s:s, s:s, s:i, s:s}", "mechanism", s->auth_mech,
	    "user", user, "result", "ok", "code", 235, "client", s->client);
	obs_auth(s->w->srv->obs, s->auth_mech, "ok");
	session_reset_auth(s);
	s->state = SESSION_CMD;
}

/* After an async answer: go on reading (pipelined lines may be waiting). */
static void
session_auth_unbusy(struct session *s)
{
	/* a tarpitted 535 is still held back (session_auth_tarpit_cb unbusies), or
	 * the client was banned and is being closed */
	if (s->tarpit || s->closing)
		return;
	s->busy = false;
	session_flush(s);
	if (!session_too_many_errors(s)) {
		conn_read_resume(s->conn);
		session_process(s);
	}
}

static void
session_auth_banned(struct session *s)
{
	session_reply(s, SMTP_R_BANNED, NULL);
	session_close(s);
}

static void
session_auth_log_ban(struct session *s, const struct limiter_ban *b, int64_t now)
{
	log_event(LOG_WARNING, "ban", s->id, "{s:s, s:I, s:s, s:i, s:s}", "address", b->address,
	    "seconds", (json_int_t)((b->until_ms - now + 999) / 1000), "reason",
	    limiter_reason_name(b->reason), "offences", (int)b->offences, "client", s->client);
}

static void
session_auth_tarpit_cb(void *arg)
{
	struct session *s = arg;

	s->tarpit = false;
	if (s->closing)
		return;
	/* a ban that came from another node meanwhile ([cluster]): this very
	 * failure may be the one that reached the threshold over all nodes */
	if (s->w->srv->limiter != NULL &&
	    limiter_is_banned(
	        s->w->srv->limiter, session_conf(s), &s->addr, limiter_now_ms(), NULL)) {
		session_auth_banned(s);
		return;
	}
	session_reply(s, s->tarpit_reply, NULL);
	session_auth_unbusy(s);
}

/*
 * Every counted failure goes through here (the exchange's user is still
 * known): a 535, or a SCRAM exchange abandoned after the server's
 * challenge (reply id). The limiter counts it per client, network and
 * account. The reply is held for
 * the tarpit delay by a timer on this loop (never a sleep: the loop goes on
 * serving everyone else) with input paused; when the client or its network
 * is banned now, it gets 421 instead and the session ends.
 */
static void
session_auth_invalid(struct session *s, enum smtp_reply_id id)
{
	struct limiter *l = s->w->srv->limiter;
	const char *acct = s->sasl != NULL ? sasl_user(s->sasl) : "";
	int64_t now = limiter_now_ms();
	struct limiter_fail f;

	if (l == NULL) {
		session_reply(s, id, NULL);
		return;
	}
	limiter_auth_failed(l, session_conf(s), acct, strlen(acct), &s->addr, now, &f);
	if (f.new_ban)
		session_auth_log_ban(s, &f.ban, now);
	if (f.banned) {
		session_auth_banned(s);
		return;
	}
	if (f.delay_ms == 0) {
		session_reply(s, id, NULL);
		return;
	}
	if (s->tarpit_timer == NULL)
		s->tarpit_timer = loop_timer_new(s->w->loop, session_auth_tarpit_cb, s);
	s->tarpit = true;
	s->tarpit_reply = id;
	s->busy = true;
	conn_read_pause(s->conn);
	loop_timer_add(s->tarpit_timer, (long)f.delay_ms);
}

/* The connection ended in the middle of an exchange that had the user's
 * stored keys: counted like a '*' after server-first (session_auth_fail). */
void
session_auth_gone(struct session *s)
{
	struct limiter *l = s->w->srv->limiter;
	const char *acct;
	int64_t now = limiter_now_ms();
	struct limiter_fail f;

	if (s->sasl == NULL || !s->auth_keyed)
		return;
	acct = sasl_user(s->sasl);
	/* no reply was sent: the event has no code */
	log_event(LOG_NOTICE, "auth", s->id, "{s:s, s:s, s:s, s:s, s:s}", "mechanism", s->auth_mech,
	    "user", acct, "result", "aborted", "client", s->client, "reason",
	    "connection closed after the server's challenge");
	obs_auth(s->w->srv->obs, s->auth_mech, "aborted");
	if (l == NULL)
		return;
	limiter_auth_failed(l, session_conf(s), acct, strlen(acct), &s->addr, now, &f);
	if (f.new_ban)
		session_auth_log_ban(s, &f.ban, now);
}

/* Per-account throttling, before any password is checked: 454 4.7.0 for a
 * client that is new to an account under attack; the ban's 421 for an
 * account this client is not known-good for, when only that let it past a
 * network ban (limiter_auth_banned). */
static bool
session_auth_throttled(struct session *s)
{
	struct limiter *l = s->w->srv->limiter;
	const char *acct = s->sasl != NULL ? sasl_user(s->sasl) : "";

	if (l != NULL &&
	    limiter_auth_banned(
	        l, session_conf(s), acct, strlen(acct), &s->addr, limiter_now_ms())) {
		const struct smtp_reply *r = smtp_reply_get(SMTP_R_BANNED);

		log_event(LOG_NOTICE, "reject", s->id, "{s:i, s:s, s:s, s:s, s:s}", "code", r->code,
		    "enhanced", r->enh, "reason", "banned", "account", acct, "client", s->client);
		session_reset_auth(s);
		s->state = SESSION_CMD;
		session_auth_banned(s);
		return true;
	}
	if (l == NULL ||
	    !limiter_auth_throttled(
	        l, session_conf(s), acct, strlen(acct), &s->addr, limiter_now_ms()))
		return false;
	log_event(
	    LOG_WARNING, "throttle", s->id, "{s:s, s:s}", "account", acct, "client", s->client);
	session_auth_fail(s, SMTP_R_AUTH_THROTTLED);
	return true;
}

static void
session_auth_done_cb(void *ctx, uint64_t session_id, enum authdb_result result, const char *user,
    const char *senders)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);
	const char *res = "fail";
	int code;

	if (s == NULL || s->closing)
		return;
	switch (result) {
	case AUTHDB_OK:
		free(s->auth_senders_next);
		s->auth_senders_next = senders != NULL ? xstrdup(senders) : NULL;
		session_auth_ok(s, user);
		session_auth_unbusy(s);
		return;
	case AUTHDB_FAIL:
		break;
	case AUTHDB_TEMPFAIL:
		session_reply(s, SMTP_R_AUTH_TEMPFAIL, NULL);
		res = "tempfail";
		break;
	}
	code = result == AUTHDB_FAIL ? 535 : 454;
	log_event(LOG_NOTICE, "auth", s->id, "{s:s, s:s, s:s, s:i, s:s}", "mechanism", s->auth_mech,
	    "user", sasl_user(s->sasl), "result", res, "code", code, "client", s->client);
	obs_auth(s->w->srv->obs, s->auth_mech, res);
	/* after the auth event, so a ban it causes is logged after it */
	if (result == AUTHDB_FAIL)
		session_auth_invalid(s, SMTP_R_AUTH_INVALID);
	session_reset_auth(s);
	session_auth_unbusy(s);
}

/* Ends the exchange with reply id. The log names the mechanism's reason
 * (sasl_errstr: static text, no secrets). */
void
session_auth_fail(struct session *s, enum smtp_reply_id id)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	bool abandoned = id == SMTP_R_AUTH_ABORTED && s->auth_keyed;
	const char *res = id == SMTP_R_AUTH_ABORTED                     ? "aborted"
	    : id == SMTP_R_AUTH_TEMPFAIL || id == SMTP_R_AUTH_THROTTLED ? "tempfail"
	                                                                : "fail";
	const char *why = abandoned  ? "abandoned after the server's challenge"
	    : s->auth_reason != NULL ? s->auth_reason
	    : s->sasl != NULL        ? sasl_errstr(s->sasl)
	                             : "";

	log_event(LOG_NOTICE, "auth", s->id, "{s:s, s:s?, s:s, s:i, s:s, s:s?}", "mechanism",
	    s->auth_mech != NULL ? s->auth_mech : "", "user",
	    s->sasl != NULL && sasl_user(s->sasl)[0] ? sasl_user(s->sasl) : NULL, "result", res,
	    "code", r->code, "client", s->client, "reason", why[0] != '\0' ? why : NULL);
	obs_auth(s->w->srv->obs, s->auth_mech, res);
	if (id == SMTP_R_AUTH_INVALID || abandoned)
		session_auth_invalid(s, id);
	else
		session_reply(s, id, NULL);
	session_reset_auth(s);
	s->state = SESSION_CMD;
}

/* After an async answer (keys or a token verdict): the mechanism goes on,
 * then reading resumes. */
static void
session_auth_resume(struct session *s)
{
	struct buf chal;

	buf_init(&chal, SASL_LINE_MAX);
	buf_set_secret(&chal);
	session_auth_outcome(s, sasl_resume(s->sasl, &chal), &chal);
	buf_free(&chal);
	session_auth_unbusy(s);
}

/*
 * The auth process's answer to a step of SCRAM-* or CRAM-MD5 (it holds the
 * keys and runs those steps: server/auth_sasl.h): the server's next
 * message, the end, or TEMPFAIL (no auth process, or it restarted and lost
 * the exchange: 454, never 535).
 */
static void
session_auth_sasl_cb(void *ctx, uint64_t session_id, const struct auth_msg_answer *a)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);
	bool ok = a != NULL && a->result == AUTHDB_OK;
	struct buf chal;

	if (s == NULL || s->closing || s->sasl == NULL) {
		/* an exchange nobody goes on with */
		if (ok && a->status == SASL_CONTINUE)
			authc_sasl_end(w->srv->authc, loop_mailbox(w->loop), a->handle);
		return;
	}
	if (!ok || (a->status == SASL_DONE && a->user[0] == '\0')) {
		session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
		session_auth_unbusy(s);
		return;
	}
	s->auth_handle = a->status == SASL_CONTINUE ? a->handle : 0;
	if (a->status == SASL_CONTINUE)
		s->auth_keyed = true;
	if (a->reason[0] != '\0') {
		snprintf(s->auth_reason_buf, sizeof(s->auth_reason_buf), "%s", a->reason);
		s->auth_reason = s->auth_reason_buf;
	}
	if (a->status == SASL_DONE) {
		free(s->auth_senders_next);
		s->auth_senders_next = a->senders[0] != '\0' ? xstrdup(a->senders) : NULL;
		session_auth_ok(s, a->user);
	} else {
		buf_init(&chal, AUTH_MSG_SASL_MAX);
		buf_set_secret(&chal);
		if (buf_append(&chal, a->chal, a->challen) == -1)
			session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
		else
			session_auth_outcome(s, (enum sasl_status)a->status, &chal);
		buf_free(&chal);
	}
	session_auth_unbusy(s);
}

/*
 * Hands the response in/inlen to the auth process: the first one with what
 * the exchange there needs (the mechanism, CRAM-MD5's challenge, the TLS
 * channel binding data only this process knows), later ones by handle.
 */
static void
session_auth_remote(struct session *s, const char *in, size_t inlen, bool has_input)
{
	struct auth_msg_req *q;
	struct sasl_context ctx;
	const char *chal;

	if (inlen > AUTH_MSG_SASL_MAX) {
		session_auth_fail(s, SMTP_R_AUTH_TOO_LONG);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	if (s->auth_handle != 0) {
		q->type = AUTH_MSG_SASL_STEP;
		q->handle = s->auth_handle;
		q->has_input = has_input;
	} else {
		q->type = AUTH_MSG_SASL_START;
		snprintf(q->mech, sizeof(q->mech), "%s", s->auth_mech);
		chal = sasl_cram_challenge(s->sasl);
		q->challen = strnlen(chal, AUTH_MSG_SASL_MAX);
		memcpy(q->chal, chal, q->challen);
		q->plus_offered = session_auth_plus_offered(s);
		memset(&ctx, 0, sizeof(ctx));
		session_auth_channel_binding(s, &ctx);
		memcpy(q->cb, ctx.cb, sizeof(q->cb));
		memcpy(q->cblen, ctx.cblen, sizeof(q->cblen));
		explicit_bzero(&ctx, sizeof(ctx));
		snprintf(q->client, sizeof(q->client), "%s", s->client);
	}
	memcpy(q->secret, in, inlen);
	q->secretlen = inlen;
	/* the answer comes back through the loop (DESIGN 1); the next line is
	 * read only after it */
	s->state = SESSION_AUTH;
	s->busy = true;
	session_flush(s);
	conn_read_pause(s->conn);
	authc_sasl(
	    s->w->srv->authc, loop_mailbox(s->w->loop), s->id, q, session_auth_sasl_cb, s->w);
	explicit_bzero(q, sizeof(*q));
	free(q);
}

/* The verdict on a bearer token (SASL_VERIFY_TOKEN): resume the mechanism,
 * which ends it or sends the RFC 7628 error challenge. */
static void
session_auth_token_cb(void *ctx, uint64_t session_id, enum oauth_result result, const char *reason,
    const char *openid, const char *senders)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);
	struct buf json;
	enum sasl_oauth_mech m;

	if (s == NULL || s->closing || s->sasl == NULL)
		return;
	s->auth_reason = NULL;
	if (reason != NULL) {
		snprintf(s->auth_reason_buf, sizeof(s->auth_reason_buf), "%s", reason);
		s->auth_reason = s->auth_reason_buf;
	}
	free(s->auth_senders_next);
	s->auth_senders_next = result == OAUTH_OK && senders != NULL ? xstrdup(senders) : NULL;
	if (result == OAUTH_TEMPFAIL) {
		session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
		session_auth_unbusy(s);
		return;
	}
	buf_init(&json, SASL_LINE_MAX);
	m = strcmp(s->auth_mech, "XOAUTH2") == 0 ? SASL_OAUTH_XOAUTH2 : SASL_OAUTH_OAUTHBEARER;
	if (result != OAUTH_OK && sasl_oauth_error_json(m, NULL, openid, &json) == -1)
		buf_reset(&json);
	sasl_set_verdict(s->sasl, result == OAUTH_OK, sasl_user(s->sasl),
	    result == OAUTH_OK || json.len == 0 ? NULL : json.data);
	buf_free(&json);
	session_auth_resume(s);
}

/* Acts on what a SASL step (or resume) decided; chal holds a challenge. */
static void
session_auth_outcome(struct session *s, enum sasl_status st, struct buf *chal)
{
	struct buf enc;

	switch (st) {
	case SASL_CONTINUE:
		/* sized from the challenge: a mechanism bounds what it sends
		 * by what it accepts (RFC 4954 4 puts no limit on a 334) */
		buf_init(&enc, (chal->len + 2) / 3 * 4 + 1);
		if (base64_encode(chal->data ? chal->data : "", chal->len, &enc) == -1) {
			buf_free(&enc);
			session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
			break;
		}
		session_reply_raw(s, 334, NULL, enc.data ? enc.data : "", false);
		buf_free(&enc);
		s->state = SESSION_AUTH;
		break;
	case SASL_VERIFY_PLAIN:
		if (session_auth_throttled(s))
			break;
		s->state = SESSION_CMD;
		s->busy = true;
		session_flush(s);
		conn_read_pause(s->conn);
		authc_verify_plain(s->w->srv->authc, loop_mailbox(s->w->loop), s->id,
		    sasl_user(s->sasl), strlen(sasl_user(s->sasl)), sasl_password(s->sasl),
		    sasl_password_len(s->sasl), s->client, session_auth_done_cb, s->w);
		break;
	case SASL_NEED_KEYS:
		/* session_auth_step hands these to the auth process */
		session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
		break;
	case SASL_DONE:
		session_auth_ok(s, sasl_user(s->sasl));
		break;
	case SASL_VERIFY_TOKEN:
		if (session_auth_throttled(s))
			break;
		if (!oauth_is_configured(session_conf(s))) {
			session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
			break;
		}
		s->state = SESSION_AUTH;
		s->busy = true;
		session_flush(s);
		conn_read_pause(s->conn);
		authc_verify_token(s->w->srv->authc, loop_mailbox(s->w->loop), s->id,
		    sasl_user(s->sasl), strlen(sasl_user(s->sasl)), sasl_token(s->sasl),
		    sasl_token_len(s->sasl), session_auth_token_cb, s->w);
		break;
	case SASL_FAILED:
	case SASL_MALFORMED:
		session_auth_fail(s, SMTP_R_AUTH_INVALID);
		break;
	case SASL_TOO_LONG:
		session_auth_fail(s, SMTP_R_AUTH_TOO_LONG);
		break;
	}
}

/* Runs one SASL step on a decoded response and acts on the outcome. Once
 * the mechanism needs stored keys (SCRAM-* on client-first, CRAM-MD5 on its
 * response: the user is known, so throttling applies), this and every
 * later step run in the auth process. */
static void
session_auth_step(struct session *s, const char *in, size_t inlen, bool has_input)
{
	struct buf chal;
	enum sasl_status st;

	if (s->auth_handle != 0) {
		session_auth_remote(s, in, inlen, has_input);
		return;
	}
	buf_init(&chal, SASL_LINE_MAX);
	buf_set_secret(&chal);
	st = sasl_step(s->sasl, in, inlen, has_input, &chal);
	if (st != SASL_NEED_KEYS)
		session_auth_outcome(s, st, &chal);
	else if (!session_auth_throttled(s))
		session_auth_remote(s, in, inlen, has_input);
	buf_free(&chal);
}

/* Decodes a base64 response (RFC 4954 4: "=" is an empty one) and steps. */
void
session_auth_response(struct session *s, const char *p, size_t n)
{
	struct buf dec;

	if (n > SASL_LINE_MAX) {
		session_auth_fail(s, SMTP_R_AUTH_LINE_TOO_LONG);
		return;
	}
	if (n == 1 && p[0] == '*') {
		session_auth_fail(s, SMTP_R_AUTH_ABORTED);
		return;
	}
	buf_init(&dec, SASL_LINE_MAX);
	buf_set_secret(&dec);
	if (!(n == 1 && p[0] == '=') && base64_decode(p, n, &dec) == -1) {
		buf_free(&dec);
		session_auth_fail(s, SMTP_R_AUTH_BAD_BASE64);
		return;
	}
	session_auth_step(s, dec.data ? dec.data : "", dec.len, true);
	buf_free(&dec);
}

static bool
session_auth_mech_enabled(const struct session *s, const char *name)
{
	const struct conf *c = session_conf(s);

	for (size_t i = 0; i < c->nmechanisms; i++) {
		if (strcmp(c->mechanisms[i], name) == 0)
			return true;
	}
	return false;
}

/*
 * The TLS session's channel binding data (SCRAM -PLUS). tls-unique (RFC
 * 5929 3.1): the first Finished message of the latest handshake: the
 * client's in a full handshake (the peer's, for us), ours when the session
 * was resumed; not defined for TLS 1.3 (RFC 9266 3). tls-exporter (RFC
 * 9266 2): 32 bytes exported with label "EXPORTER-Channel-Binding" and no
 * context; for TLS 1.2 only with the extended master secret (RFC 9266 4.2).
 */
static void
session_auth_channel_binding(const struct session *s, struct sasl_context *ctx)
{
	static const char label[] = "EXPORTER-Channel-Binding";
	SSL *ssl = conn_ssl(s->conn);
	size_t n;

	if (!s->tls || ssl == NULL)
		return;
	if (SSL_version(ssl) >= TLS1_3_VERSION || SSL_get_extms_support(ssl) == 1) {
		if (SSL_export_keying_material(ssl, ctx->cb[SASL_CB_TLS_EXPORTER],
		        SASL_TLS_EXPORTER_LEN, label, sizeof(label) - 1, NULL, 0, 0) == 1)
			ctx->cblen[SASL_CB_TLS_EXPORTER] = SASL_TLS_EXPORTER_LEN;
	}
	if (SSL_version(ssl) < TLS1_3_VERSION) {
		n = SSL_session_reused(ssl)
		    ? SSL_get_finished(ssl, ctx->cb[SASL_CB_TLS_UNIQUE], SASL_CB_DATA_MAX)
		    : SSL_get_peer_finished(ssl, ctx->cb[SASL_CB_TLS_UNIQUE], SASL_CB_DATA_MAX);
		if (n > 0 && n <= SASL_CB_DATA_MAX)
			ctx->cblen[SASL_CB_TLS_UNIQUE] = n;
	}
}

/* Can mechanism m work on this session? Plaintext ones need TLS (RFC 4954
 * 4), -PLUS ones need a TLS channel to bind to. */
bool
session_auth_mech_usable(const struct session *s, const struct sasl_mech *m)
{
	return s->tls || (sasl_mech_flags(m) & (SASL_F_PLAINTEXT | SASL_F_PLUS)) == 0;
}

/* A -PLUS mechanism is advertised on this session (downgrade detection). */
static bool
session_auth_plus_offered(const struct session *s)
{
	const struct conf *c = session_conf(s);

	for (size_t i = 0; i < c->nmechanisms; i++) {
		const struct sasl_mech *m = sasl_mech_find(c->mechanisms[i]);

		if (m != NULL && (sasl_mech_flags(m) & SASL_F_PLUS) &&
		    session_auth_mech_usable(s, m))
			return true;
	}
	return false;
}

void
session_auth_cmd(struct session *s, const struct smtp_cmd *cmd)
{
	char name[SMTP_MECH_MAX + 1];
	const struct sasl_mech *mech;
	struct sasl_context ctx;
	enum smtp_reply_id err;
	const char *ir;
	size_t irlen;

	if (s->listen->auth == CONF_AUTH_OFF) {
		session_reply(s, SMTP_R_AUTH_NOT_ENABLED, NULL);
		return;
	}
	if (s->listen->tls == CONF_TLS_STARTTLS && !s->tls) {
		session_reply(s, SMTP_R_STARTTLS_REQUIRED, NULL);
		return;
	}
	if (!s->esmtp) {
		session_reply(s, SMTP_R_NEED_HELO, "Send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		session_reply(s, SMTP_R_ALREADY_AUTH, NULL);
		return;
	}
	if (s->has_mail) {
		/* RFC 4954 4: not permitted during a mail transaction */
		session_reply(s, SMTP_R_BAD_SEQUENCE, NULL);
		return;
	}
	if (smtp_parse_auth(cmd->arg, cmd->arglen, name, &ir, &irlen, &err) == -1) {
		session_reply(s, err, NULL);
		return;
	}
	/* a ban made while this session was open (another of its connections
	 * failed too often): no more guesses */
	if (s->w->srv->limiter != NULL &&
	    limiter_is_banned(
	        s->w->srv->limiter, session_conf(s), &s->addr, limiter_now_ms(), NULL)) {
		session_auth_banned(s);
		return;
	}
	mech = sasl_mech_find(name);
	if (mech == NULL || !session_auth_mech_enabled(s, name)) {
		session_reply(s,
		    sasl_mech_is_known_weak(name) ? SMTP_R_AUTH_TOO_WEAK : SMTP_R_AUTH_UNKNOWN,
		    NULL);
		return;
	}
	if (!session_auth_mech_usable(s, mech)) {
		/* plaintext, or -PLUS with no channel to bind to */
		session_reply(s, SMTP_R_AUTH_NEEDS_TLS, NULL);
		return;
	}
	s->auth_mech = sasl_mech_name(mech);
	s->sasl = sasl_new(mech);
	memset(&ctx, 0, sizeof(ctx));
	ctx.hostname = session_conf(s)->hostname;
	ctx.now = (long long)time(NULL);
	ctx.plus_offered = session_auth_plus_offered(s);
	session_auth_channel_binding(s, &ctx);
	sasl_set_context(s->sasl, &ctx);
	explicit_bzero(&ctx, sizeof(ctx));
	if (ir != NULL)
		session_auth_response(s, ir, irlen);
	else
		session_auth_step(s, NULL, 0, false);
}
