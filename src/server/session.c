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
#include "sasl/sasl_oauth.h"
#include "server/obs.h"
#include "server/sendquota.h"
#include "server/server.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_header.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"

/* A command line may carry an AUTH initial response of SASL_LINE_MAX
 * (RFC 4954 4), so the splitter allows that much; other commands are then
 * held to SMTP_CMD_LINE_MAX. */
#define SESSION_LINE_MAX (SASL_LINE_MAX + 64)
/*
 * Output back-pressure. Replies made in one pass over the input gather in
 * s->out and go to the connection at the end of the pass. When what is
 * pending (s->out plus the connection's output) passes SESSION_OUT_HIGH the
 * client is not reading its replies: the pass stops, input is no longer
 * read, and reading resumes once the client has taken everything; one that
 * never does meets the write timeout. A pass therefore adds at most one
 * command's reply (a 334 challenge is the largest, under SASL_LINE_MAX)
 * above SESSION_OUT_HIGH, far below the hard cap SESSION_OUT_MAX.
 */
#define SESSION_OUT_HIGH (16 * 1024)
#define SESSION_OUT_MAX (SESSION_OUT_HIGH + 2 * SASL_LINE_MAX)
#define SESSION_HELO_MAX 255
#define SESSION_IOV 8

enum session_state {
	SESSION_HANDSHAKE,
	SESSION_CMD,
	SESSION_AUTH,
	SESSION_DATA,
	SESSION_BDAT,
};

enum session_deferred {
	SESSION_DEFER_NONE,
	SESSION_DEFER_STARTTLS, /* 220 flushed: switch the socket to TLS */
	SESSION_DEFER_FREE, /* final reply flushed: free */
};

struct session {
	uint64_t id;
	struct worker *w;
	struct server_snap *snap;
	const struct conf_listen *listen;
	struct conn *conn;
	struct loop_timer *defer;
	enum session_deferred deferred;
	bool tls; /* the TLS handshake is done */
	char client[64]; /* the client: the peer, or what its PROXY header names */
	char proxy[64]; /* the balancer that sent a PROXY header; "" without one */
	enum session_state state;
	bool busy;
	bool closing;
	bool out_blocked; /* input paused until the client reads its replies */
	unsigned errors;
	unsigned commands; /* [limits] commands */
	struct limiter_addr addr; /* the client, for the limiter */
	bool lim_counted; /* limiter_connect counted it: disconnect at free */
	struct loop_timer *tarpit_timer; /* holds a reply back (session_auth_invalid) */
	enum smtp_reply_id tarpit_reply; /* the reply it holds back */
	bool tarpit; /* tarpit_timer is pending */
	struct smtp_line lines;
	struct buf out;

	/* EHLO/HELO; forgotten after STARTTLS (RFC 3207 4.2) */
	char *helo;
	bool esmtp;

	/* AUTH */
	char *auth_user;
	const char *auth_mech; /* static name of the mechanism in progress */
	const char *auth_reason; /* static: why a token was refused, for the log */
	/* the exchange was given the user's stored keys (SCRAM server-first
	 * went out): abandoning it now counts as a failure, or a client could
	 * probe salts without ever meeting the limiter */
	bool auth_keyed;
	struct sasl_exchange *sasl;

	/* the mail transaction */
	bool has_mail;
	struct smtp_path mail;
	char **rcpts;
	size_t nrcpts;
	struct queue_msg *msg;
	char qid[QUEUE_ID_MAX];
	bool msg_failed;
	bool too_big;
	uint64_t msg_size;
	struct timespec commit_start; /* for smtpgate_commit_latency_seconds */
	struct smtp_data data;
	struct smtp_bare bare;
	bool bdat_mode;
	bool bdat_last;
	uint64_t bdat_left;
	enum smtp_reply_id bdat_error; /* SMTP_R_OK, or the reply after discarding */
	struct smtp_header *hdr; /* From: extraction when sender binding applies */
};

static void session_process(struct session *s);
static void session_abandon(struct session *s);
static void session_event_cb(void *arg, enum conn_event ev);
static void session_read_cb(void *arg);
static void session_drained_cb(void *arg);

static const struct conn_ops session_conn_ops = {
    .read_cb = session_read_cb,
    .drained_cb = session_drained_cb,
    .event_cb = session_event_cb,
};

static const struct conf *
session_conf(const struct session *s)
{
	return s->snap->conf;
}

/* --- output ------------------------------------------------------------- */

static void
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

static void session_close(struct session *s);

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
static void
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

static void
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
static void
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
static bool
session_too_many_errors(struct session *s)
{
	if (s->errors < session_conf(s)->errors)
		return false;
	session_reply(s, SMTP_R_TOO_MANY_ERRORS, NULL);
	session_close(s);
	return true;
}

/* --- transaction -------------------------------------------------------- */

static void
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

static void
session_reset_auth(struct session *s)
{
	sasl_free(s->sasl);
	s->sasl = NULL;
	s->auth_mech = NULL;
	s->auth_reason = NULL;
	s->auth_keyed = false;
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
}

/* --- lifecycle ----------------------------------------------------------- */

static void session_auth_gone(struct session *s);

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

static void
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

static bool session_mech_usable(const struct session *s, const struct sasl_mech *m);

/* AUTH is advertised when the listener has it, no STARTTLS is pending
 * (AUTH before it gets 530), nobody is logged in yet, and at least one
 * configured mechanism can work on this session. */
static bool
session_auth_offered(const struct session *s)
{
	const struct conf *c = session_conf(s);

	if (s->listen->auth == CONF_AUTH_OFF || s->auth_user != NULL ||
	    (s->listen->tls == CONF_TLS_STARTTLS && !s->tls))
		return false;
	for (size_t i = 0; i < c->nmechanisms; i++) {
		const struct sasl_mech *m = sasl_mech_find(c->mechanisms[i]);

		if (m != NULL && session_mech_usable(s, m))
			return true;
	}
	return false;
}

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

			if (m != NULL && session_mech_usable(s, m))
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

/* --- AUTH ------------------------------------------------------------------ */

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
	/* a tarpitted 535 is still held back (session_tarpit_cb unbusies), or
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

/* --- abuse defences (policy/limiter.h) --------------------------------------- */

static void session_auth_fail(struct session *s, enum smtp_reply_id id);

static void
session_banned(struct session *s)
{
	session_reply(s, SMTP_R_BANNED, NULL);
	session_close(s);
}

static void
session_log_ban(struct session *s, const struct limiter_ban *b, int64_t now)
{
	log_event(LOG_WARNING, "ban", s->id, "{s:s, s:I, s:s, s:i, s:s}", "address", b->address,
	    "seconds", (json_int_t)((b->until_ms - now + 999) / 1000), "reason",
	    limiter_reason_name(b->reason), "offences", (int)b->offences, "client", s->client);
}

static void
session_tarpit_cb(void *arg)
{
	struct session *s = arg;

	s->tarpit = false;
	if (s->closing)
		return;
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
		session_log_ban(s, &f.ban, now);
	if (f.banned) {
		session_banned(s);
		return;
	}
	if (f.delay_ms == 0) {
		session_reply(s, id, NULL);
		return;
	}
	if (s->tarpit_timer == NULL)
		s->tarpit_timer = loop_timer_new(s->w->loop, session_tarpit_cb, s);
	s->tarpit = true;
	s->tarpit_reply = id;
	s->busy = true;
	conn_read_pause(s->conn);
	loop_timer_add(s->tarpit_timer, (long)f.delay_ms);
}

/* The connection ended in the middle of an exchange that had the user's
 * stored keys: counted like a '*' after server-first (session_auth_fail). */
static void
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
		session_log_ban(s, &f.ban, now);
}

/* Per-account throttling, before any password is checked: 454 4.7.0 for a
 * client that is new to an account under attack. */
static bool
session_auth_throttled(struct session *s)
{
	struct limiter *l = s->w->srv->limiter;
	const char *acct = s->sasl != NULL ? sasl_user(s->sasl) : "";

	if (l == NULL ||
	    !limiter_auth_throttled(
	        l, session_conf(s), acct, strlen(acct), &s->addr, limiter_now_ms()))
		return false;
	log_event(
	    LOG_WARNING, "throttle", s->id, "{s:s, s:s}", "account", acct, "client", s->client);
	session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
	return true;
}

static void
session_auth_done_cb(void *ctx, uint64_t session_id, enum authdb_result result, const char *user)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);
	const char *res = "fail";
	int code;

	if (s == NULL || s->closing)
		return;
	switch (result) {
	case AUTHDB_OK:
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
static void
session_auth_fail(struct session *s, enum smtp_reply_id id)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	bool abandoned = id == SMTP_R_AUTH_ABORTED && s->auth_keyed;
	const char *why = abandoned  ? "abandoned after the server's challenge"
	    : s->auth_reason != NULL ? s->auth_reason
	    : s->sasl != NULL        ? sasl_errstr(s->sasl)
	                             : "";

	log_event(LOG_NOTICE, "auth", s->id, "{s:s, s:s?, s:s, s:i, s:s, s:s?}", "mechanism",
	    s->auth_mech != NULL ? s->auth_mech : "", "user",
	    s->sasl != NULL && sasl_user(s->sasl)[0] ? sasl_user(s->sasl) : NULL, "result",
	    id == SMTP_R_AUTH_ABORTED ? "aborted" : "fail", "code", r->code, "client", s->client,
	    "reason", why[0] != '\0' ? why : NULL);
	obs_auth(s->w->srv->obs, s->auth_mech,
	    id == SMTP_R_AUTH_ABORTED        ? "aborted"
	        : id == SMTP_R_AUTH_TEMPFAIL ? "tempfail"
	                                     : "fail");
	if (id == SMTP_R_AUTH_INVALID || abandoned)
		session_auth_invalid(s, id);
	else
		session_reply(s, id, NULL);
	session_reset_auth(s);
	s->state = SESSION_CMD;
}

static void session_auth_outcome(struct session *s, enum sasl_status st, struct buf *chal);
static void session_auth_token_cb(
    void *ctx, uint64_t session_id, enum oauth_result result, const char *reason);

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

/* The stored keys asked for by SASL_NEED_KEYS: resume the mechanism. */
static void
session_auth_keys_cb(void *ctx, uint64_t session_id, enum authdb_result result,
    const struct sasl_keys *k, const char *user)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);

	if (s == NULL || s->closing || s->sasl == NULL)
		return;
	if (result != AUTHDB_OK) {
		session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
		session_auth_unbusy(s);
		return;
	}
	sasl_set_keys(s->sasl, k, user);
	s->auth_keyed = true;
	session_auth_resume(s);
}

/* The verdict on a bearer token (SASL_VERIFY_TOKEN): resume the mechanism,
 * which ends it or sends the RFC 7628 error challenge. */
static void
session_auth_token_cb(void *ctx, uint64_t session_id, enum oauth_result result, const char *reason)
{
	struct worker *w = ctx;
	struct session *s = idmap_get(&w->sessions, session_id);
	struct buf json;
	enum sasl_oauth_mech m;

	if (s == NULL || s->closing || s->sasl == NULL)
		return;
	s->auth_reason = reason;
	if (result == OAUTH_TEMPFAIL) {
		session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
		session_auth_unbusy(s);
		return;
	}
	buf_init(&json, SASL_LINE_MAX);
	m = strcmp(s->auth_mech, "XOAUTH2") == 0 ? SASL_OAUTH_XOAUTH2 : SASL_OAUTH_OAUTHBEARER;
	if (result != OAUTH_OK &&
	    sasl_oauth_error_json(m, NULL, oauth_openid_configuration(w->srv->oauth), &json) == -1)
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
	const char *label, *created;

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
		authdb_verify_plain_from(s->w->srv->authdb, s->w->loop, s->id, sasl_user(s->sasl),
		    strlen(sasl_user(s->sasl)), sasl_password(s->sasl), sasl_password_len(s->sasl),
		    s->client, session_auth_done_cb, s->w);
		break;
	case SASL_NEED_KEYS:
		if (session_auth_throttled(s))
			break;
		/* the answer comes back through the loop (DESIGN 1); the next
		 * line is read only after it */
		s->state = SESSION_AUTH;
		s->busy = true;
		session_flush(s);
		conn_read_pause(s->conn);
		authdb_lookup_keys(s->w->srv->authdb, s->w->loop, s->id, sasl_user(s->sasl),
		    strlen(sasl_user(s->sasl)), sasl_keys_kind(s->sasl), session_auth_keys_cb,
		    s->w);
		break;
	case SASL_DONE:
		/* SCRAM checked the proof here: note the credential's last use
		 * like a PLAIN/LOGIN verification does */
		if (sasl_matched_cred(s->sasl, &label, &created))
			authdb_record_use(
			    s->w->srv->authdb, sasl_user(s->sasl), label, created, s->client);
		session_auth_ok(s, sasl_user(s->sasl));
		break;
	case SASL_VERIFY_TOKEN:
		if (session_auth_throttled(s))
			break;
		if (s->w->srv->oauth == NULL) {
			session_auth_fail(s, SMTP_R_AUTH_TEMPFAIL);
			break;
		}
		s->state = SESSION_AUTH;
		s->busy = true;
		session_flush(s);
		conn_read_pause(s->conn);
		oauth_verify(s->w->srv->oauth, s->w->loop, s->id, sasl_user(s->sasl),
		    strlen(sasl_user(s->sasl)), sasl_token(s->sasl), sasl_token_len(s->sasl),
		    session_auth_token_cb, s->w);
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

/* Runs one SASL step on a decoded response and acts on the outcome. */
static void
session_auth_step(struct session *s, const char *in, size_t inlen, bool has_input)
{
	struct buf chal;

	buf_init(&chal, SASL_LINE_MAX);
	buf_set_secret(&chal);
	session_auth_outcome(s, sasl_step(s->sasl, in, inlen, has_input, &chal), &chal);
	buf_free(&chal);
}

/* Decodes a base64 response (RFC 4954 4: "=" is an empty one) and steps. */
static void
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
session_mech_enabled(const struct session *s, const char *name)
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
session_channel_binding(const struct session *s, struct sasl_context *ctx)
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
static bool
session_mech_usable(const struct session *s, const struct sasl_mech *m)
{
	return s->tls || (sasl_mech_flags(m) & (SASL_F_PLAINTEXT | SASL_F_PLUS)) == 0;
}

/* A -PLUS mechanism is advertised on this session (downgrade detection). */
static bool
session_plus_offered(const struct session *s)
{
	const struct conf *c = session_conf(s);

	for (size_t i = 0; i < c->nmechanisms; i++) {
		const struct sasl_mech *m = sasl_mech_find(c->mechanisms[i]);

		if (m != NULL && (sasl_mech_flags(m) & SASL_F_PLUS) && session_mech_usable(s, m))
			return true;
	}
	return false;
}

static void
session_cmd_auth(struct session *s, const struct smtp_cmd *cmd)
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
		session_banned(s);
		return;
	}
	mech = sasl_mech_find(name);
	if (mech == NULL || !session_mech_enabled(s, name)) {
		session_reply(s,
		    sasl_mech_is_known_weak(name) ? SMTP_R_AUTH_TOO_WEAK : SMTP_R_AUTH_UNKNOWN,
		    NULL);
		return;
	}
	if (!session_mech_usable(s, mech)) {
		/* plaintext, or -PLUS with no channel to bind to */
		session_reply(s, SMTP_R_AUTH_NEEDS_TLS, NULL);
		return;
	}
	s->auth_mech = sasl_mech_name(mech);
	s->sasl = sasl_new(mech);
	memset(&ctx, 0, sizeof(ctx));
	ctx.hostname = session_conf(s)->hostname;
	ctx.now = (long long)time(NULL);
	ctx.plus_offered = session_plus_offered(s);
	session_channel_binding(s, &ctx);
	sasl_set_context(s->sasl, &ctx);
	explicit_bzero(&ctx, sizeof(ctx));
	if (ir != NULL)
		session_auth_response(s, ir, irlen);
	else
		session_auth_step(s, NULL, 0, false);
}

/* --- MAIL, RCPT -------------------------------------------------------------- */

/* Sender binding (policy/sender.h) applies to authenticated sessions on
 * listeners with sender_binding on; unauthenticated mail (relay = local)
 * is not bound to anyone. */
static bool
session_binds_sender(const struct session *s)
{
	return s->auth_user != NULL && s->listen->sender_binding;
}

/* The envelope sender must be owned by the user (or be <>). The patterns are
 * read from the current passwd snapshot at each MAIL, so `smtpgate user
 * senders` applies to the next transaction. */
static bool
session_sender_allowed(struct session *s)
{
	char *patterns, text[SENDER_REPLY_TEXT_MAX];
	bool ok;

	if (!session_binds_sender(s))
		return true;
	patterns = authdb_user_senders(s->w->srv->authdb, s->auth_user);
	ok = sender_envelope_is_allowed(s->auth_user, patterns, s->mail.addr);
	if (!ok) {
		sender_reject_text(s->auth_user, patterns, NULL, text, sizeof(text));
		log_event(LOG_NOTICE, "mail", s->id, "{s:s, s:s, s:s}", "from", s->mail.addr,
		    "user", s->auth_user, "result", "not owned");
		session_reply(s, SMTP_R_SENDER_NOT_OWNED, text);
	}
	free(patterns);
	return ok;
}

/* At the end of the message: every address of every header From: must be
 * owned too (several From: fields, or a list without Sender:, pass only
 * when all are owned). NULL when the message may be queued, else the 553
 * text in text. A message without From: (RFC 5322 3.6 requires one) is
 * accepted as it is: it claims no author to spoof, and its envelope sender
 * was checked; smtpgate does not add one. */
static const char *
session_header_check(struct session *s, char *text, size_t textlen)
{
	char *patterns;
	const char *bad = NULL;

	if (s->hdr == NULL || !session_binds_sender(s))
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
	patterns = authdb_user_senders(s->w->srv->authdb, s->auth_user);
	for (size_t i = 0; i < s->hdr->naddrs && bad == NULL; i++) {
		if (!sender_owns(s->auth_user, patterns, s->hdr->addrs[i]))
			bad = s->hdr->addrs[i];
	}
	if (bad != NULL)
		sender_reject_text(s->auth_user, patterns, bad, text, textlen);
	free(patterns);
	return bad != NULL ? text : NULL;
}

static void
session_cmd_mail(struct session *s, const struct smtp_cmd *cmd)
{
	enum smtp_reply_id err;

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
	if (!session_sender_allowed(s))
		return;
	err = sendquota_check_mail(
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

static void
session_cmd_rcpt(struct session *s, const struct smtp_cmd *cmd)
{
	struct smtp_path rcpt;
	enum smtp_reply_id err;

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
	err = sendquota_check_rcpt(
	    s->w->srv->sendquota, session_conf(s), s->auth_user, rcpt.addr, s->client, s->id);
	if (err != SMTP_R_OK) {
		log_event(
		    LOG_NOTICE, "rcpt", s->id, "{s:s, s:s}", "to", rcpt.addr, "result", "quota");
		session_reply(s, err, NULL);
		return;
	}
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(*s->rcpts));
	s->rcpts[s->nrcpts++] = xstrdup(rcpt.addr);
	log_event(LOG_INFO, "rcpt", s->id, "{s:s, s:s}", "to", rcpt.addr, "result", "ok");
	session_reply(s, SMTP_R_RCPT_OK, NULL);
}

/* --- DATA, BDAT, commit ------------------------------------------------------ */

static const char *
session_protocol(const struct session *s)
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
session_write_received(struct session *s)
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
		    s->helo, s->client, session_conf(s)->hostname, session_protocol(s), s->qid,
		    tls_version_name(conn_ssl(s->conn)), tls_cipher_name(conn_ssl(s->conn)), date);
	} else {
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s])\r\n\tby %s (smtpgate) with %s id %s;\r\n\t%s\r\n",
		    s->helo, s->client, session_conf(s)->hostname, session_protocol(s), s->qid,
		    date);
	}
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	return queue_msg_write(s->msg, hdr, (size_t)n);
}

/* Opens the spool message at the first DATA/BDAT of a transaction. */
static int
session_open_msg(struct session *s)
{
	s->msg = queue_msg_new(s->w->srv->queue, s->qid);
	if (s->msg == NULL) {
		log_event(LOG_ERR, "spool_error", s->id, "{s:s}", "error", strerror(errno));
		return -1;
	}
	if (session_write_received(s) == -1) {
		log_event(LOG_ERR, "spool_error", s->id, "{s:s}", "error", strerror(errno));
		queue_msg_abort(s->msg);
		s->msg = NULL;
		return -1;
	}
	if (session_binds_sender(s)) {
		s->hdr = xcalloc(1, sizeof(*s->hdr));
		smtp_header_init(s->hdr);
	}
	return 0;
}

static void
session_msg_out_cb(void *arg, const char *p, size_t n)
{
	struct session *s = arg;

	/* the header From: is checked at the end (session_header_check) */
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
session_observe_commit(struct session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	obs_commit_latency(s->w->srv->obs,
	    (double)(now.tv_sec - s->commit_start.tv_sec) +
	        (double)(now.tv_nsec - s->commit_start.tv_nsec) / 1e9);
}

static void
session_commit_done_cb(void *ctx, uint64_t session_id, const char *queue_id, int result)
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
	session_observe_commit(s);
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
session_msg_end(struct session *s, uint64_t bare)
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
	if (session_header_check(s, text, sizeof(text)) != NULL) {
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
	queue_msg_commit(s->msg, &env, s->w->loop, s->id, session_commit_done_cb, s->w);
	s->msg = NULL; /* taken by the queue */
}

static void
session_cmd_data(struct session *s)
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
	if (session_open_msg(s) == -1) {
		session_reply(s, SMTP_R_LOCAL_ERROR, NULL);
		return;
	}
	smtp_data_init(&s->data);
	s->state = SESSION_DATA;
	session_set_timeouts(s);
	session_reply(s, SMTP_R_DATA_GO, NULL);
}

static void
session_cmd_bdat(struct session *s, const struct smtp_cmd *cmd)
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
		if (session_open_msg(s) == -1) {
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

static void
session_bdat_chunk_end(struct session *s)
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
	session_msg_end(s, s->bare.bare);
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
		session_cmd_auth(s, &cmd);
		break;
	case SMTP_VERB_MAIL:
		session_cmd_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		session_cmd_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		session_cmd_data(s);
		break;
	case SMTP_VERB_BDAT:
		session_cmd_bdat(s, &cmd);
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
		return false;
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

static void
session_input_data(struct session *s)
{
	struct iovec iov[SESSION_IOV];
	size_t n = conn_in_peek(s->conn, iov, SESSION_IOV);
	size_t total = 0;

	for (size_t i = 0; i < n && !s->data.done; i++) {
		size_t used = smtp_data_feed(
		    &s->data, iov[i].iov_base, iov[i].iov_len, session_msg_out_cb, s);

		total += used;
	}
	conn_in_drain(s->conn, total);
	if (s->data.done) {
		if (s->data.size > session_conf(s)->message_size)
			s->too_big = true;
		session_msg_end(s, s->data.bare);
	}
}

static void
session_input_bdat(struct session *s)
{
	struct iovec iov[SESSION_IOV];
	size_t n = conn_in_peek(s->conn, iov, SESSION_IOV);
	size_t total = 0;

	for (size_t i = 0; i < n && s->bdat_left > 0; i++) {
		size_t take = iov[i].iov_len < s->bdat_left ? iov[i].iov_len : (size_t)s->bdat_left;

		if (s->bdat_error == SMTP_R_OK) {
			smtp_bare_feed(&s->bare, iov[i].iov_base, take);
			session_msg_out_cb(s, iov[i].iov_base, take);
			if (s->too_big)
				s->bdat_error = SMTP_R_SIZE_EXCEEDED;
		}
		s->bdat_left -= take;
		total += take;
	}
	conn_in_drain(s->conn, total);
	if (s->bdat_left == 0)
		session_bdat_chunk_end(s);
}

static void
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
			session_input_data(s);
			break;
		case SESSION_BDAT:
			session_input_bdat(s);
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
		session_bdat_chunk_end(s);
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
