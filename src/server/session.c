/*
 * session: the SMTP server state machine for one connection (RFC 5321,
 * 3207, 4954, 3030, 2920, 6531), on the loop thread that accepted it.
 *
 * States:
 *   HANDSHAKE  TLS handshake running (implicit TLS, or after STARTTLS)
 *   CMD        reading command lines
 *   AUTH       reading SASL responses (334 sent)
 *   DATA       reading the message after 354, until CRLF.CRLF
 *   BDAT       reading the bytes of one BDAT chunk
 * and two flags across states: busy (an async answer from the authdb or
 * the queue is pending, or STARTTLS is switching; input is not read) and
 * closing (a final reply is being flushed; nothing more is processed).
 *
 * The session owns its connection (net/conn.h), its transaction
 * and open spool message. It is never freed inside a call chain that could
 * touch it again: session_close() marks it and a deferred event frees it.
 * Async answers find it by id in the worker's idmap; an answer for a
 * session that is gone is dropped (and a committed message rolled back).
 *
 * This file: the life of the session, its output (with back-pressure), the
 * input loop and the commands of the CMD state; AUTH is session_auth.c, the
 * mail transaction session_mail.c, and session_priv.h what they share.
 */
#include "server/session.h"

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
#include "sasl/sasl_mech.h"
#include "sasl/sasl_oauth.h"
#include "server/authc.h"
#include "server/obs.h"
#include "server/sendquota.h"
#include "server/server.h"
#include "server/session_priv.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_header.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"

static void session_abandon(struct session *s);
static void session_event_cb(void *arg, enum conn_event ev);
static void session_read_cb(void *arg);
static void session_drained_cb(void *arg);

static const struct conn_ops session_conn_ops = {
    .read_cb = session_read_cb,
    .drained_cb = session_drained_cb,
    .event_cb = session_event_cb,
};

const struct conf *
session_conf(const struct session *s)
{
	return s->snap->conf;
}

/* --- output ------------------------------------------------------------- */

void
session_flush(struct session *s)
{
	if (s->out.len > 0) {
		conn_write(s->conn, s->out.data, s->out.len);
		buf_reset(&s->out);
	}
	buf_shrink(&s->out);
}

static void
session_log_reject(struct session *s, enum smtp_reply_id id, const char *text)
{
	const struct smtp_reply *r = smtp_reply_get(id);

	log_event(LOG_NOTICE, "reject", s->id, "{s:i, s:s?, s:s, s:s}", "code", r->code, "enhanced",
	    r->enh, "reason", text != NULL ? text : r->text, "client", s->client);
}

/*
 * A reply did not fit in s->out. Back-pressure (SESSION_OUT_HIGH) keeps a
 * pass far below the cap, so this means a reply larger than any we make;
 * whatever the cause, it ends this session, never the process.
 */
static void
session_out_overflow(struct session *s)
{
	if (s->closing)
		return;
	log_event(LOG_ERR, "session_error", s->id, "{s:s, s:s}", "error",
	    "reply does not fit the output buffer", "client", s->client);
	session_close(s);
}

/* True while replies wait for a client that does not read them. */
static bool
session_output_full(const struct session *s)
{
	return s->out.len + conn_out_len(s->conn) > SESSION_OUT_HIGH;
}

/* Queues a reply from the table. 4xx/5xx replies are logged as rejects and
 * counted as peer errors. */
void
session_reply(struct session *s, enum smtp_reply_id id, const char *text)
{
	const struct smtp_reply *r = smtp_reply_get(id);

	if (smtp_reply_format(&s->out, id, text, false) == -1) {
		session_out_overflow(s);
		return;
	}
	obs_reply(s->w->srv->obs, r->code);
	if (r->code >= 400) {
		session_log_reject(s, id, text);
		if (r->code >= 500 && id != SMTP_R_TOO_MANY_ERRORS)
			s->errors++;
	}
}

void
session_reply_raw(struct session *s, int code, const char *enh, const char *text, bool more)
{
	if (smtp_reply_format_raw(&s->out, code, enh, text, more) == -1) {
		session_out_overflow(s);
		return;
	}
	if (!more) /* a multi-line reply counts once */
		obs_reply(s->w->srv->obs, code);
}

static void
session_defer(struct session *s, enum session_deferred what)
{
	s->deferred = what;
	loop_timer_add(s->defer, 0);
}

/* Sends what is queued, then closes. Safe anywhere: the free is deferred. */
void
session_close(struct session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	session_flush(s);
	conn_read_pause(s->conn);
	if (conn_out_len(s->conn) == 0)
		session_defer(s, SESSION_DEFER_FREE);
	/* else session_drained_cb fires when the output is drained */
}

/* Counts a peer error; past the limit the session is closed (421). */
bool
session_too_many_errors(struct session *s)
{
	if (s->errors < session_conf(s)->errors)
		return false;
	session_reply(s, SMTP_R_TOO_MANY_ERRORS, NULL);
	session_close(s);
	return true;
}

/* --- transaction -------------------------------------------------------- */

void
session_reset_transaction(struct session *s)
{
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->has_mail = false;
	memset(&s->mail, 0, sizeof(s->mail));
	if (s->msg != NULL) {
		queue_msg_abort(s->msg);
		s->msg = NULL;
	}
	s->qid[0] = '\0';
	s->msg_failed = false;
	s->too_big = false;
	s->msg_size = 0;
	s->bdat_mode = false;
	s->bdat_last = false;
	s->bdat_left = 0;
	s->bdat_error = SMTP_R_OK;
	smtp_header_clear(s->hdr);
	free(s->hdr);
	s->hdr = NULL;
}

void
session_reset_auth(struct session *s)
{
	if (s->auth_handle != 0)
		authc_sasl_end(s->w->srv->authc, loop_mailbox(s->w->loop), s->auth_handle);
	s->auth_handle = 0;
	sasl_free(s->sasl);
	s->sasl = NULL;
	s->auth_mech = NULL;
	s->auth_reason = NULL;
	s->auth_keyed = false;
	free(s->auth_senders_next);
	s->auth_senders_next = NULL;
}

/* RFC 3207 4.2: after STARTTLS the server forgets everything learned. */
static void
session_forget_all(struct session *s)
{
	session_reset_transaction(s);
	session_reset_auth(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	free(s->auth_user);
	s->auth_user = NULL;
	free(s->auth_senders);
	s->auth_senders = NULL;
}

/* --- lifecycle ----------------------------------------------------------- */

static void
session_free(struct session *s)
{
	session_auth_gone(s);
	log_event(LOG_INFO, "disconnect", s->id, "{s:s}", "client", s->client);
	obs_connection_close(s->w->srv->obs);
	idmap_del(&s->w->sessions, s->id);
	session_forget_all(s);
	conn_free(s->conn);
	loop_timer_free(s->defer);
	loop_timer_free(s->tarpit_timer);
	if (s->lim_counted)
		limiter_disconnect(s->w->srv->limiter, &s->addr);
	buf_free(&s->out);
	server_snap_put(s->snap);
	__atomic_sub_fetch(&s->w->srv->sessions, 1, __ATOMIC_RELAXED);
	free(s);
}

void
session_set_timeouts(struct session *s)
{
	const struct conf *c = session_conf(s);

	conn_set_timeout(s->conn,
	    (s->state == SESSION_DATA || s->state == SESSION_BDAT) ? c->timeout_data
	                                                           : c->timeout_command);
}

static void
session_greet(struct session *s)
{
	char text[320];

	snprintf(text, sizeof(text), "%s ESMTP ready", session_conf(s)->hostname);
	session_reply_raw(s, 220, NULL, text, false);
	session_flush(s);
}

static void
session_log_tls(struct session *s)
{
	SSL *ssl = conn_ssl(s->conn);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	log_event(LOG_INFO, "tls", s->id, "{s:s, s:s, s:s?}", "version", tls_version_name(ssl),
	    "cipher", tls_cipher_name(ssl), "sni", sni);
	obs_tls(s->w->srv->obs, tls_version_name(ssl));
}

static int
session_start_tls(struct session *s)
{
	SSL *ssl = tls_server_ssl_new(s->snap->tls);

	if (ssl == NULL || conn_start_tls(s->conn, ssl) == -1)
		return -1;
	s->state = SESSION_HANDSHAKE;
	return 0;
}

static void
session_defer_cb(void *arg)
{
	struct session *s = arg;
	enum session_deferred d = s->deferred;

	s->deferred = SESSION_DEFER_NONE;
	switch (d) {
	case SESSION_DEFER_NONE:
		break;
	case SESSION_DEFER_FREE:
		session_free(s);
		break;
	case SESSION_DEFER_STARTTLS:
		/* RFC 3207 4.2 / CVE-2011-0411: whatever the client pipelined
		 * after STARTTLS is dropped by conn_start_tls; the TLS layer
		 * starts on a clean socket */
		s->busy = false;
		if (session_start_tls(s) == -1) {
			log_event(LOG_ERR, "tls_error", s->id, "{s:s}", "error",
			    "cannot start TLS on the connection");
			session_free(s);
		}
		break;
	}
}

/*
 * [limits] connections, connections_per_ip, connection_rate_per_ip and bans,
 * before any session exists (a flood costs one accept and one send): 421
 * 4.7.0 and close. On an implicit-TLS listener a plaintext reply would be
 * noise to the client, so it is only closed, as is a banned client with
 * ban_action = close. Releases snap when it returns false.
 */
static bool
session_admit(struct worker *w, struct server_snap *snap, size_t li, int fd,
    const struct sockaddr *sa, const char *proxy, struct limiter_addr *a)
{
	const struct conf *c = snap->conf;
	enum limiter_verdict v;
	enum smtp_reply_id id;
	const struct smtp_reply *r;
	char client[64];
	struct buf out;

	if (w->srv->limiter == NULL || limiter_addr_from_sockaddr(sa, a) == -1)
		return true;
	v = limiter_connect(w->srv->limiter, c, a, limiter_now_ms());
	if (v == LIMITER_OK)
		return true;
	id = v == LIMITER_BANNED ? SMTP_R_BANNED : SMTP_R_TOO_MANY_CONNS;
	r = smtp_reply_get(id);
	listener_format_addr(sa, client, sizeof(client));
	log_event(LOG_NOTICE, "reject", 0, "{s:i, s:s, s:s, s:s, s:s, s:s?}", "code", r->code,
	    "enhanced", r->enh, "reason", v == LIMITER_BANNED ? "banned" : "too many connections",
	    "client", client, "listener", c->listens[li].name, "proxy", proxy);
	if (c->listens[li].tls != CONF_TLS_IMPLICIT && !(v == LIMITER_BANNED && c->ban_silent)) {
		buf_init(&out, 512);
		if (smtp_reply_format(&out, id, NULL, false) == 0) {
			ssize_t n = send(fd, out.data, out.len, MSG_DONTWAIT | MSG_NOSIGNAL);

			(void)n; /* best effort: the socket is new and empty */
		}
		buf_free(&out);
	}
	close(fd);
	server_snap_put(snap);
	return false;
}

void
session_start(struct worker *w, struct server_snap *snap, size_t li, int fd,
    const struct sockaddr *sa, const struct sockaddr *proxy)
{
	struct server *srv = w->srv;
	struct limiter_addr addr;
	struct session *s;
	char balancer[64] = "";

	if (proxy != NULL)
		listener_format_addr(proxy, balancer, sizeof(balancer));
	memset(&addr, 0, sizeof(addr));
	if (!session_admit(w, snap, li, fd, sa, proxy != NULL ? balancer : NULL, &addr))
		return;
	s = xcalloc(1, sizeof(*s));
	s->addr = addr;
	s->lim_counted =
	    srv->limiter != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
	s->id = __atomic_add_fetch(&srv->next_id, 1, __ATOMIC_RELAXED);
	s->w = w;
	s->snap = snap;
	s->listen = &s->snap->conf->listens[li];
	listener_format_addr(sa, s->client, sizeof(s->client));
	memcpy(s->proxy, balancer, sizeof(s->proxy));
	buf_init(&s->out, SESSION_OUT_MAX);
	smtp_line_init(&s->lines, SESSION_LINE_MAX);
	s->defer = loop_timer_new(w->loop, session_defer_cb, s);
	__atomic_add_fetch(&srv->sessions, 1, __ATOMIC_RELAXED);
	idmap_put(&w->sessions, s->id, s);
	listener_tune_conn(fd);
	log_event(LOG_INFO, "connect", s->id, "{s:s, s:s, s:s?}", "client", s->client, "listener",
	    s->listen->name, "proxy", s->proxy[0] != '\0' ? s->proxy : NULL);
	obs_connection_open(srv->obs);

	s->conn = conn_new(w->loop, fd, &session_conn_ops, s);
	if (s->conn == NULL) {
		session_free(s);
		return;
	}
	s->state = SESSION_CMD;
	session_set_timeouts(s);
	if (s->listen->tls == CONF_TLS_IMPLICIT) {
		if (session_start_tls(s) == -1) {
			log_event(
			    LOG_ERR, "tls_error", s->id, "{s:s}", "error", "cannot start TLS");
			session_free(s);
		}
		return;
	}
	session_greet(s);
}

void
session_close_all(struct worker *w)
{
	struct idmap *m = &w->sessions;

	for (size_t i = 0; i < m->cap; i++) {
		struct session *s = m->keys[i] != 0 ? m->vals[i] : NULL;

		if (s == NULL || s->closing)
			continue;
		if (s->state != SESSION_HANDSHAKE)
			session_reply(s, SMTP_R_SHUTDOWN, NULL);
		session_close(s);
	}
}

/* --- EHLO, HELO, STARTTLS ------------------------------------------------ */

static void
session_cmd_ehlo(struct session *s, const struct smtp_cmd *cmd, bool esmtp)
{
	const struct conf *c = session_conf(s);
	enum smtp_reply_id err;
	char line[512];

	if (smtp_parse_helo(cmd->arg, cmd->arglen, &err) == -1 || cmd->arglen > SESSION_HELO_MAX) {
		session_reply(s, SMTP_R_ARG_SYNTAX, "Syntax: EHLO hostname");
		return;
	}
	session_reset_transaction(s);
	free(s->helo);
	s->helo = xstrndup(cmd->arg, cmd->arglen);
	s->esmtp = esmtp;
	snprintf(line, sizeof(line), "%s Hello %s [%s]", c->hostname, s->helo, s->client);
	if (!esmtp) {
		session_reply_raw(s, 250, NULL, line, false);
		return;
	}
	session_reply_raw(s, 250, NULL, line, true);
	session_reply_raw(s, 250, NULL, "PIPELINING", true);
	snprintf(line, sizeof(line), "SIZE %llu", (unsigned long long)c->message_size);
	session_reply_raw(s, 250, NULL, line, true);
	session_reply_raw(s, 250, NULL, "8BITMIME", true);
	session_reply_raw(s, 250, NULL, "ENHANCEDSTATUSCODES", true);
	session_reply_raw(s, 250, NULL, "SMTPUTF8", true);
	if (s->listen->tls == CONF_TLS_STARTTLS && !s->tls)
		session_reply_raw(s, 250, NULL, "STARTTLS", true);
	if (session_auth_offered(s)) {
		size_t n = (size_t)snprintf(line, sizeof(line), "AUTH");

		/* in the configured order, only what can work here (-PLUS and
		 * plaintext mechanisms only inside TLS) */
		for (size_t i = 0; i < c->nmechanisms && n < sizeof(line) - 32; i++) {
			const struct sasl_mech *m = sasl_mech_find(c->mechanisms[i]);

			if (m != NULL && session_auth_mech_usable(s, m))
				n += (size_t)snprintf(
				    line + n, sizeof(line) - n, " %s", c->mechanisms[i]);
		}
		session_reply_raw(s, 250, NULL, line, true);
	}
	session_reply_raw(s, 250, NULL, "CHUNKING", false);
}

static void
session_cmd_starttls(struct session *s)
{
	if (s->tls) {
		session_reply(s, SMTP_R_NO_TLS_NOW, NULL);
		return;
	}
	if (s->listen->tls != CONF_TLS_STARTTLS) {
		session_reply(s, SMTP_R_NOT_IMPLEMENTED, NULL);
		return;
	}
	if (s->has_mail) {
		session_reply(s, SMTP_R_BAD_SEQUENCE, NULL);
		return;
	}
	session_reply(s, SMTP_R_STARTTLS_GO, NULL);
	session_flush(s);
	s->busy = true;
	conn_read_pause(s->conn);
	s->deferred = SESSION_DEFER_STARTTLS;
	/* the switch happens once the 220 is on the wire (session_write_cb) */
	if (conn_out_len(s->conn) == 0)
		session_defer(s, SESSION_DEFER_STARTTLS);
}

/* --- command dispatch ----------------------------------------------------- */

static void
session_command(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	enum smtp_reply_id err;

	/* [limits] commands: a session may not go on forever */
	if (++s->commands > session_conf(s)->commands) {
		session_reply(s, SMTP_R_TOO_MANY_COMMANDS, NULL);
		session_close(s);
		return;
	}
	if (smtp_cmd_parse(line, len, &cmd, &err) == -1) {
		session_reply(s, err, NULL);
		return;
	}
	if (cmd.verb != SMTP_VERB_AUTH && len > SMTP_CMD_LINE_MAX) {
		session_reply(s, SMTP_R_LINE_TOO_LONG, NULL);
		return;
	}
	switch (cmd.verb) {
	case SMTP_VERB_EHLO:
		session_cmd_ehlo(s, &cmd, true);
		break;
	case SMTP_VERB_HELO:
		session_cmd_ehlo(s, &cmd, false);
		break;
	case SMTP_VERB_STARTTLS:
		session_cmd_starttls(s);
		break;
	case SMTP_VERB_AUTH:
		session_auth_cmd(s, &cmd);
		break;
	case SMTP_VERB_MAIL:
		session_mail_from(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		session_mail_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		session_mail_data(s);
		break;
	case SMTP_VERB_BDAT:
		session_mail_bdat(s, &cmd);
		break;
	case SMTP_VERB_RSET:
		session_reset_transaction(s);
		session_reply(s, SMTP_R_RESET, NULL);
		break;
	case SMTP_VERB_NOOP:
		session_reply(s, SMTP_R_OK, NULL);
		break;
	case SMTP_VERB_QUIT:
		session_reply(s, SMTP_R_BYE, NULL);
		session_close(s);
		break;
	case SMTP_VERB_VRFY:
		session_reply(s, SMTP_R_VRFY, NULL);
		break;
	case SMTP_VERB_EXPN:
		session_reply(s, SMTP_R_NOT_IMPLEMENTED, NULL);
		break;
	case SMTP_VERB_HELP:
		session_reply(s, SMTP_R_HELP, NULL);
		break;
	case SMTP_VERB_UNKNOWN:
		session_reply(s, SMTP_R_SYNTAX, NULL);
		break;
	}
}

/* --- input ---------------------------------------------------------------- */

/* Reads lines in CMD and AUTH states. Returns false when it must stop. */
static bool
session_input_line(struct session *s)
{
	size_t avail = conn_in_len(s->conn), view, len, consumed;
	const char *line;
	enum smtp_line_result r;
	const char *p;

	view = avail < SESSION_LINE_MAX + 2 ? avail : SESSION_LINE_MAX + 2;
	p = conn_in_pullup(s->conn, view);
	r = smtp_line_next(&s->lines, p, view, &line, &len, &consumed);
	switch (r) {
	case SMTP_LINE_NEED_MORE:
		conn_in_drain(s->conn, consumed);
		/* only a part of the input was looked at (an over-long line is
		 * skipped a window at a time): look again, as no read event
		 * may come for bytes that are already in (TLS reads ahead) */
		return view < avail;
	case SMTP_LINE_TOO_LONG:
		conn_in_drain(s->conn, consumed);
		if (s->state == SESSION_AUTH)
			session_auth_fail(s, SMTP_R_AUTH_LINE_TOO_LONG);
		else
			session_reply(s, SMTP_R_LINE_TOO_LONG, NULL);
		return true;
	case SMTP_LINE_OK:
		if (s->state == SESSION_AUTH)
			session_auth_response(s, line, len);
		else
			session_command(s, line, len);
		conn_in_drain(s->conn, consumed);
		return true;
	}
	return false;
}

void
session_process(struct session *s)
{
	while (!s->busy && !s->closing && conn_in_len(s->conn) > 0 && !session_output_full(s)) {
		bool more = true;

		switch (s->state) {
		case SESSION_HANDSHAKE:
			more = false;
			break;
		case SESSION_CMD:
		case SESSION_AUTH:
			more = session_input_line(s);
			break;
		case SESSION_DATA:
			session_mail_input_data(s);
			break;
		case SESSION_BDAT:
			session_mail_input_bdat(s);
			break;
		}
		if (s->closing || session_too_many_errors(s))
			break;
		if (!more)
			break;
	}
	/* a zero-length BDAT chunk ends without input */
	if (!s->busy && !s->closing && s->state == SESSION_BDAT && s->bdat_left == 0 &&
	    !session_output_full(s))
		session_mail_bdat_chunk_end(s);
	if (s->closing)
		return;
	session_flush(s);
	if (session_output_full(s)) {
		/* the client is not reading: read no more until it has
		 * (session_write_cb); the write timeout bounds the wait */
		s->out_blocked = true;
		conn_read_pause(s->conn);
	}
}

static void
session_read_cb(void *arg)
{
	session_process(arg);
}

/* Everything queued is on the wire. */
static void
session_drained_cb(void *arg)
{
	struct session *s = arg;

	if (s->closing && s->deferred == SESSION_DEFER_NONE) {
		session_defer(s, SESSION_DEFER_FREE);
	} else if (s->deferred == SESSION_DEFER_STARTTLS) {
		session_defer(s, SESSION_DEFER_STARTTLS);
	} else if (s->out_blocked && !s->closing) {
		/* the client has read its replies: take its input again (a
		 * pending async answer re-enables reading itself) */
		s->out_blocked = false;
		if (!s->busy) {
			conn_read_resume(s->conn);
			session_process(s);
		}
	}
}

/* Ends a session whose connection can carry nothing more: no reply; the
 * free is deferred. */
static void
session_abandon(struct session *s)
{
	if (s->msg != NULL) {
		queue_msg_abort(s->msg);
		s->msg = NULL;
	}
	s->closing = true;
	conn_stop(s->conn);
	session_defer(s, SESSION_DEFER_FREE);
}

static void
session_tls_ready(struct session *s)
{
	s->tls = true;
	s->state = SESSION_CMD;
	smtp_line_init(&s->lines, SESSION_LINE_MAX);
	session_forget_all(s);
	session_log_tls(s);
	if (s->listen->tls == CONF_TLS_IMPLICIT)
		session_greet(s);
	session_process(s);
}

static void
session_event_cb(void *arg, enum conn_event ev)
{
	struct session *s = arg;

	switch (ev) {
	case CONN_TLS_READY:
		session_tls_ready(s);
		return;
	case CONN_WRITE_TIMEOUT:
		/* the client reads nothing we send: a reply would never
		 * leave either, so the session ends here */
		log_event(LOG_NOTICE, "timeout", s->id, "{s:s, s:s, s:I}", "client", s->client,
		    "waiting_for", "client to read replies", "pending_bytes",
		    (json_int_t)(s->out.len + conn_out_len(s->conn)));
		session_abandon(s);
		return;
	case CONN_READ_TIMEOUT:
		if (s->closing) /* reading is off then; nothing to wait for */
			break;
		if (s->state != SESSION_HANDSHAKE) {
			session_reply(s, SMTP_R_TIMEOUT, NULL);
		} else {
			log_event(LOG_NOTICE, "tls_error", s->id, "{s:s, s:s}", "error",
			    "handshake timeout", "client", s->client);
		}
		session_close(s);
		return;
	case CONN_ERROR:
		if (conn_error_is_tls(s->conn) || s->state == SESSION_HANDSHAKE)
			log_event(LOG_NOTICE, "tls_error", s->id, "{s:s, s:s}", "error",
			    conn_error_text(s->conn), "client", s->client);
		break;
	case CONN_EOF:
		break;
	}
	/* EOF or error: nothing more can be sent */
	session_abandon(s);
}

void
session_free_all(struct worker *w)
{
	struct idmap *m = &w->sessions;

	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] != 0) {
			session_free(m->vals[i]);
			i = (size_t)-1; /* idmap_del reshuffles slots: rescan */
		}
	}
}

/* --- test hook (session.h) ------------------------------------------------ */

/* Whether the first pieces of the input hold a line end. */
static bool
session_in_has_lf(struct conn *c)
{
	struct iovec iov[64];
	size_t n = conn_in_peek(c, iov, 64);

	for (size_t i = 0; i < n; i++) {
		if (memchr(iov[i].iov_base, '\n', iov[i].iov_len) != NULL)
			return true;
	}
	return false;
}

static bool
session_is_stalled(struct session *s)
{
	size_t n;

	/* waiting for an answer, a timer, or the client to read its replies */
	if (s->busy || s->closing || s->tarpit || s->conn == NULL || s->out.len > 0 ||
	    conn_out_len(s->conn) > 0)
		return false;
	n = conn_in_len(s->conn);
	switch (s->state) {
	case SESSION_HANDSHAKE:
	case SESSION_DATA: /* smtp_data may hold back part of a terminator */
		return false;
	case SESSION_CMD:
	case SESSION_AUTH:
		return n > SESSION_LINE_MAX + 2 || session_in_has_lf(s->conn);
	case SESSION_BDAT:
		return n > 0 && s->bdat_left > 0;
	}
	return false;
}

bool
session_has_stalled_input(struct worker *w)
{
	struct idmap *m = &w->sessions;

	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] != 0 && session_is_stalled(m->vals[i]))
			return true;
	}
	return false;
}
