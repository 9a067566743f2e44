/*
 * deliver: one attempt for one destination (deliver.h), on a worker thread.
 *
 * Session steps: connect, greeting, EHLO/LHLO, STARTTLS (required where the
 * route says tls = starttls: a peer that does not offer it gets nothing),
 * EHLO again, AUTH (required where the route names a mechanism: a peer that
 * does not offer it gets nothing), MAIL, RCPT per recipient, DATA (LMTP: one
 * reply per accepted recipient). A failure before RCPT applies to every
 * recipient of the attempt; after it, to those it concerns. Every result
 * carries the knowledge-base finding (reply_map for replies, the client
 * error otherwise) so the log can say why in plain words.
 */
#include "relay/deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509_vfy.h>

#include "client/client.h"
#include "conf/conf.h"
#include "explain/reply_map.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "relay/creds.h"
#include "relay/dkim_sign.h"
#include "relay/route_mx.h"

enum qfile_state
deliver_classify(int code, const char *enh, const char *cmd)
{
	if (code >= 200 && code < 300)
		return QFILE_SENT;
	/* RFC 4954 6 / RFC 3207: an authentication or encryption problem of our
	 * own configuration: retrying cannot help and bouncing would lose mail
	 * an admin can still send ("not retried, they need an admin") */
	if (code == 530 || code == 534 || code == 535 || code == 538)
		return QFILE_HELD;
	if (code >= 500 && cmd != NULL && strcmp(cmd, "AUTH") == 0)
		return QFILE_HELD;
	if (code >= 500 && code < 600)
		return QFILE_FAILED;
	return QFILE_DEFERRED;
}

/* The finding for a client error that is not a reply. */
static const char *
deliver_err_finding(struct client *c, bool greeting)
{
	const struct client_tls_info *ti = client_tls_info(c);

	switch (client_error(c)->kind) {
	case CLIENT_E_RESOLVE:
		return "name-unresolvable";
	case CLIENT_E_REFUSED:
		return "connection-refused";
	case CLIENT_E_CONNECT_TIMEOUT:
	case CLIENT_E_UNREACHABLE:
		return "connection-timeout";
	case CLIENT_E_RESET:
		return "connection-reset";
	case CLIENT_E_CLOSED:
		return "connection-closed";
	case CLIENT_E_TIMEOUT:
		return greeting ? "greeting-timeout" : "reply-timeout";
	case CLIENT_E_PROTOCOL:
		return "reply-malformed";
	case CLIENT_E_TLS_BYTES:
		return "tls-mode-mismatch";
	case CLIENT_E_TLS:
		return ti->fail == CLIENT_TLS_FAIL_VERSION ? "tls-version-too-old"
		                                           : "tls-handshake-failed";
	case CLIENT_E_TLS_VERIFY:
		for (size_t i = 0; i < ti->nerrors; i++) {
			switch (ti->errors[i].err) {
			case X509_V_ERR_HOSTNAME_MISMATCH:
			case X509_V_ERR_IP_ADDRESS_MISMATCH:
				return "cert-name-mismatch";
			case X509_V_ERR_CERT_HAS_EXPIRED:
				return "cert-expired";
			case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
				return "cert-self-signed";
			default:
				break;
			}
		}
		return "cert-untrusted";
	case CLIENT_E_AUTH:
		return "auth-server-proof-invalid";
	default:
		return NULL;
	}
}

static void deliver_set(struct deliver_result *r, enum qfile_state st, int code, const char *enh,
    const char *finding, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
deliver_set(struct deliver_result *r, enum qfile_state st, int code, const char *enh,
    const char *finding, const char *fmt, ...)
{
	va_list ap;

	r->state = st;
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh != NULL ? enh : "");
	r->finding = finding;
	r->reply[0] = '\0';
	memset(&r->why, 0, sizeof(r->why));
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* A refusal rp (a reply to cmd) at step: state, finding and the whole reply
 * for the log, the final line for the queue and the DSN. */
static void
deliver_set_refusal(
    struct deliver_result *r, const struct client_reply *rp, const char *cmd, const char *step)
{
	struct finding_reply why;
	const char *id = reply_map_explain(rp->code, rp->enh, cmd, rp->text, &why);

	deliver_set(r, deliver_classify(rp->code, rp->enh, cmd), rp->code, rp->enh, id, "%s%s%s",
	    step, *step ? ": " : "", rp->line);
	snprintf(r->reply, sizeof(r->reply), "%s", rp->text);
	r->why = why;
}

/* Every recipient not yet decided gets the client's failure at step. */
static void
deliver_fail_all(
    struct client *c, const char *step, struct deliver_result *res, size_t n, const bool *decided)
{
	const struct client_error *e = client_error(c);
	const struct client_reply *rp = client_reply(c);

	for (size_t i = 0; i < n; i++) {
		if (decided != NULL && decided[i])
			continue;
		if (e->kind == CLIENT_E_REPLY && rp->code != 0) {
			deliver_set_refusal(&res[i], rp, rp->cmd, step);
		} else {
			deliver_set(&res[i],
			    e->kind == CLIENT_E_UNSUPPORTED || e->kind == CLIENT_E_AUTH
			        ? QFILE_HELD
			        : QFILE_DEFERRED,
			    0, NULL, deliver_err_finding(c, strcmp(step, "greeting") == 0),
			    "%s: %s (%s)", step, e->detail, client_err_name(e->kind));
		}
	}
}

/* AUTH as the route requires; -1 with every result set. */
static int
deliver_auth(const struct deliver_ctx *ctx, const struct conf_route *r, struct client *c,
    struct deliver_result *res, size_t n)
{
	const char *mech = creds_mech(r);
	const struct client_caps *caps = client_caps(c);
	struct buf secret, prev;
	char *user = NULL, err[256];
	int rc = -1;

	if (mech == NULL)
		return 0;
	if (!caps->auth || !client_caps_has_mech(caps, mech)) {
		/* fail closed: never send without the authentication the
		 * config asks for (smarthosts silently sending
		 * without AUTH) */
		char offered[256] = "";

		for (size_t i = 0; i < caps->nmechs; i++) {
			size_t l = strlen(offered);

			snprintf(offered + l, sizeof(offered) - l, "%s%s", i > 0 ? " " : "",
			    caps->mechs[i]);
		}
		for (size_t i = 0; i < n; i++)
			deliver_set(&res[i], QFILE_HELD, 0, NULL,
			    caps->auth ? "auth-mechanism-unsupported" : "auth-not-offered",
			    "AUTH %s required by the configuration but %s%s%s: not sending", mech,
			    caps->auth ? "the server offers only "
			               : "the server does not offer AUTH",
			    offered, client_is_tls(c) ? "" : " (before TLS)");
		return -1;
	}
	buf_init(&secret, CLIENT_SECRET_MAX);
	buf_set_secret(&secret);
	buf_init(&prev, CLIENT_SECRET_MAX);
	buf_set_secret(&prev);
	for (int round = 0;; round++) {
		if (creds_get(ctx->creds, r, &user, &secret, err, sizeof(err)) == -1) {
			for (size_t i = 0; i < n; i++)
				deliver_set(
				    &res[i], QFILE_HELD, 0, NULL, NULL, "credentials: %s", err);
			buf_free(&secret);
			buf_free(&prev);
			return -1;
		}
		/* the same token again: refused again, not worth a second AUTH */
		if (round > 0 && secret.len == prev.len &&
		    CRYPTO_memcmp(secret.data, prev.data, secret.len) == 0) {
			free(user);
			break;
		}
		rc = client_auth(c, mech, user, secret.data != NULL ? secret.data : "", secret.len);
		free(user);
		user = NULL;
		/* a bearer token refused: it may just have expired before its
		 * token_ttl; one more AUTH in the same session with a fresh one
		 * (the command runs again, or the file was rewritten) */
		if (rc == 0 || round > 0 || !client_sasl_is_oauth(mech) ||
		    client_error(c)->kind != CLIENT_E_REPLY || client_reply(c)->code / 100 != 5)
			break;
		creds_invalidate(ctx->creds, r);
		buf_reset(&prev);
		if (buf_append(&prev, secret.data, secret.len) == -1)
			break;
		buf_reset(&secret);
	}
	buf_free(&secret);
	buf_free(&prev);
	if (rc == -1) {
		const struct client_reply *rp = client_reply(c);

		if (client_sasl_is_oauth(mech))
			creds_invalidate(ctx->creds, r);
		deliver_fail_all(c, "AUTH", res, n, NULL);
		/* at AUTH only a temporary reply is worth retrying */
		for (size_t i = 0; i < n; i++) {
			if (!(rp->code >= 400 && rp->code < 500) &&
			    client_error(c)->kind == CLIENT_E_REPLY)
				res[i].state = QFILE_HELD;
		}
		return -1;
	}
	return 0;
}

/* How a transaction left its session. */
enum deliver_tx_end {
	DELIVER_TX_CLEAN, /* a reply ended the transaction: the session can go on */
	DELIVER_TX_OPEN, /* in step, but a transaction may be open: RSET before reuse */
	DELIVER_TX_BROKEN, /* out of step or gone: close it */
};

struct deliver_tx {
	enum deliver_tx_end end;
	/* the whole session failed transiently before any recipient got a
	 * result of its own (an MX caller then tries the next host) */
	bool session_transient;
	/* it failed at MAIL, before any of the message went out, with the
	 * session gone (closed, reset, 421): a new session may take it now */
	bool stale;
};

/* MAIL and RCPT (pipelined when offered), then DATA, on an open session. */
static void
deliver_transaction(struct client *c, bool lmtp, const struct qfile *q, const struct buf *sig,
    const size_t *idx, size_t n, struct deliver_result *res, struct deliver_tx *tx)
{
	const struct envelope *e = q->env;
	const struct client_caps *caps = client_caps(c);
	bool *decided = xcalloc(n, sizeof(bool));
	size_t *accepted = xcalloc(n, sizeof(size_t)), nacc = 0;
	const char **to = xcalloc(n, sizeof(*to));
	struct client_reply *rr = xcalloc(n, sizeof(*rr));
	unsigned flags = 0;
	int erc;

	tx->end = DELIVER_TX_BROKEN;
	tx->session_transient = false;
	tx->stale = false;
	if (e->smtputf8 && !caps->smtputf8) {
		/* RFC 6531 3.4: no downgrade; a permanent failure */
		for (size_t i = 0; i < n; i++)
			deliver_set(&res[i], QFILE_FAILED, 0, "5.6.7", NULL,
			    "the message needs SMTPUTF8 and the next hop does not offer it");
		tx->end = DELIVER_TX_CLEAN; /* nothing was sent */
		goto out;
	}
	if (caps->size && caps->size_max > 0 && q->body_len + sig->len > caps->size_max) {
		/* RFC 1870 6: the next hop announced it would refuse it */
		for (size_t i = 0; i < n; i++)
			deliver_set(&res[i], QFILE_FAILED, 0, "5.3.4", "message-too-large",
			    "the message (%llu bytes) is larger than the next hop accepts (SIZE %llu)",
			    (unsigned long long)(q->body_len + sig->len), caps->size_max);
		tx->end = DELIVER_TX_CLEAN; /* nothing was sent */
		goto out;
	}
	if (e->body_8bit)
		flags |= CLIENT_MAIL_8BIT;
	if (e->smtputf8)
		flags |= CLIENT_MAIL_SMTPUTF8;
	for (size_t i = 0; i < n; i++)
		to[i] = e->rcpts[idx[i]];
	erc = client_envelope(c, e->sender, (size_t)q->body_len + sig->len, flags, to, n, rr);
	if (erc == -1 && client_error(c)->kind == CLIENT_E_REPLY) {
		/* MAIL refused */
		const struct client_reply *rp = client_reply(c);

		deliver_fail_all(c, "MAIL", res, n, NULL);
		tx->session_transient = res[0].state == QFILE_DEFERRED;
		tx->stale = rp->code == 421;
		tx->end = rp->code == 421 ? DELIVER_TX_BROKEN : DELIVER_TX_OPEN;
		goto out;
	}
	/* per recipient: accepted, refused, or (the session broke) still open */
	for (size_t i = 0; i < n; i++) {
		const struct client_reply *rp = &rr[i];

		if (rp->code / 100 == 2) {
			accepted[nacc++] = i;
		} else if (rp->code != 0) {
			decided[i] = true;
			deliver_set_refusal(&res[i], rp, "RCPT", "RCPT");
		}
	}
	if (erc == -1) {
		/* the session broke (or a local refusal): everything open is deferred */
		bool local = client_error(c)->kind == CLIENT_E_LOCAL;
		const char *step = local ? "MAIL" : client_reply(c)->cmd;

		deliver_fail_all(c, step[0] != '\0' ? step : "MAIL", res, n, decided);
		tx->session_transient = nacc == 0;
		tx->stale = !local && strcmp(step, "MAIL") == 0;
		goto out;
	}
	if (nacc == 0) {
		tx->end = DELIVER_TX_OPEN; /* MAIL was accepted: RSET before the next */
		goto out;
	}
	if (client_data_prefixed(c, sig->data, sig->len, q->body, (size_t)q->body_len) == -1) {
		bool data_refused = strncmp(client_error(c)->detail, "DATA: ", 6) == 0;

		if (client_error(c)->kind != CLIENT_E_REPLY) {
			deliver_fail_all(c, "DATA", res, n, decided);
			tx->session_transient = res[accepted[0]].state == QFILE_DEFERRED;
			goto out;
		}
		tx->end = DELIVER_TX_OPEN;
		if (!lmtp || data_refused) {
			deliver_fail_all(c, "DATA", res, n, decided);
			tx->session_transient = res[accepted[0]].state == QFILE_DEFERRED;
			goto out;
		}
		/* LMTP: the first accepted recipient's own refusal */
		const struct client_reply *rp = client_reply(c);

		decided[accepted[0]] = true;
		deliver_set_refusal(&res[accepted[0]], rp, "DATA", "DATA");
	} else {
		const struct client_reply *rp = client_reply(c);

		decided[accepted[0]] = true;
		deliver_set(&res[accepted[0]], QFILE_SENT, rp->code, rp->enh, NULL, "%s", rp->line);
	}
	for (size_t k = 0; k < nacc; k++) {
		size_t i = accepted[k];
		const struct client_reply *rp = client_reply(c);

		if (decided[i])
			continue;
		if (!lmtp) {
			decided[i] = true;
			deliver_set(&res[i], QFILE_SENT, rp->code, rp->enh, NULL, "%s", rp->line);
			continue;
		}
		/* RFC 2033 4.2: one reply per accepted recipient, in order */
		if (client_data_lmtp_next(c) == -1 && client_error(c)->kind != CLIENT_E_REPLY) {
			deliver_fail_all(c, "DATA", res, n, decided);
			tx->end = DELIVER_TX_BROKEN;
			goto out;
		}
		decided[i] = true;
		if (rp->code >= 400)
			deliver_set_refusal(&res[i], rp, "DATA", "DATA");
		else
			deliver_set(&res[i], QFILE_SENT, rp->code, rp->enh, NULL, "%s", rp->line);
	}
	tx->end = DELIVER_TX_CLEAN;
out:
	free(decided);
	free(accepted);
	free(to);
	free(rr);
}

/* --- the session cache ---------------------------------------------------------- */

#define DELIVER_KEY_MAX 600

struct deliver_conn {
	struct client *c; /* NULL: none cached */
	char key[DELIVER_KEY_MAX]; /* the route (its address) and, for mx, the domain */
	char relay[300]; /* the peer, as relay_r says it */
	long long opened; /* CLOCK_MONOTONIC seconds */
	unsigned uses; /* transactions so far */
};

static long long
deliver_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

struct deliver_conn *
deliver_conn_new(void)
{
	return xcalloc(1, sizeof(struct deliver_conn));
}

bool
deliver_conn_is_open(const struct deliver_conn *dc)
{
	return dc != NULL && dc->c != NULL;
}

void
deliver_conn_close(struct deliver_conn *dc)
{
	if (dc == NULL || dc->c == NULL)
		return;
	client_quit(dc->c);
	client_free(dc->c);
	dc->c = NULL;
	dc->key[0] = '\0';
	dc->uses = 0;
}

void
deliver_conn_free(struct deliver_conn *dc)
{
	deliver_conn_close(dc);
	free(dc);
}

/* A session is per route (its settings and credentials), and per domain for
 * mx: routes live as long as the configuration, so the address names one. */
static void
deliver_key(const struct conf_route *r, const char *domain, char *key, size_t len)
{
	snprintf(key, len, "%p %s", (const void *)r, r->kind == CONF_ROUTE_MX ? domain : "");
}

/* The cached session for key, if there is a fresh one; any other is closed. */
static struct client *
deliver_conn_take(struct deliver_conn *dc, const char *key, char *relay_r, size_t relaylen)
{
	struct client *c;

	if (dc == NULL || dc->c == NULL)
		return NULL;
	if (strcmp(dc->key, key) != 0 || dc->uses >= DELIVER_CONN_MAX_USES ||
	    deliver_mono_s() - dc->opened >= DELIVER_CONN_MAX_AGE_S) {
		deliver_conn_close(dc);
		return NULL;
	}
	c = dc->c;
	dc->c = NULL;
	snprintf(relay_r, relaylen, "%s", dc->relay);
	return c;
}

/* After a transaction on c: keeps the session in dc when it can go on,
 * else ends it. reused: c came from dc. */
static void
deliver_conn_put(struct deliver_conn *dc, const char *key, const char *relay, struct client *c,
    const struct deliver_tx *tx, bool reused)
{
	bool keep = dc != NULL && tx->end != DELIVER_TX_BROKEN;

	if (keep && !reused) {
		dc->opened = deliver_mono_s();
		dc->uses = 0;
	}
	keep = keep && dc->uses + 1 < DELIVER_CONN_MAX_USES &&
	    deliver_mono_s() - dc->opened < DELIVER_CONN_MAX_AGE_S;
	if (keep && tx->end == DELIVER_TX_OPEN && client_rset(c) == -1)
		keep = false;
	if (!keep) {
		if (tx->end != DELIVER_TX_BROKEN)
			client_quit(c);
		client_free(c);
		if (dc != NULL) {
			dc->key[0] = '\0';
			dc->uses = 0;
		}
		return;
	}
	dc->c = c;
	dc->uses++;
	snprintf(dc->key, sizeof(dc->key), "%s", key);
	snprintf(dc->relay, sizeof(dc->relay), "%s", relay);
}

/* Results of a transaction on a stale reused session are not results. */
static void
deliver_reset(struct deliver_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		deliver_set(&res[i], QFILE_DEFERRED, 0, NULL, NULL, "not attempted");
}

static enum client_tls_mode
deliver_tls(enum conf_tls_mode m)
{
	return m == CONF_TLS_IMPLICIT ? CLIENT_TLS_IMPLICIT
	    : m == CONF_TLS_NONE      ? CLIENT_TLS_NONE
	                              : CLIENT_TLS_STARTTLS;
}

static enum client_verify
deliver_verify(const struct conf_route *r)
{
	enum conf_verify v = r->verify;
	const char *env;

	if (!r->verify_set && r->kind == CONF_ROUTE_SMARTHOST &&
	    (env = getenv("SMTPOPENSSLVERIFYMODE")) != NULL) {
		if (strcasecmp(env, "none") == 0)
			v = CONF_VERIFY_NONE;
		else if (strcasecmp(env, "peer") == 0)
			v = CONF_VERIFY_PEER;
	}
	return v == CONF_VERIFY_NONE ? CLIENT_VERIFY_NONE
	    : v == CONF_VERIFY_PEER  ? CLIENT_VERIFY_PEER
	                             : CLIENT_VERIFY_PEER_HOST;
}

/* Smarthost and LMTP: a new session to the configured peer, up to AUTH.
 * NULL with every result set when it cannot be had. */
static struct client *
deliver_direct_open(
    const struct deliver_ctx *ctx, const struct conf_route *r, struct deliver_result *res, size_t n)
{
	struct client_conf cc;
	struct client *c;
	enum conf_tls_mode tls = r->tls;
	const char *env;

	if (!r->tls_set && r->kind == CONF_ROUTE_SMARTHOST &&
	    (env = getenv("SMTPENABLESTARTTLS")) != NULL && *env != '\0')
		tls = strchr("nN0fF", env[0]) != NULL ? CONF_TLS_IMPLICIT : CONF_TLS_STARTTLS;
	memset(&cc, 0, sizeof(cc));
	cc.host = r->host;
	cc.port = r->port;
	cc.unix_path = r->unix_path;
	cc.tls = deliver_tls(tls);
	cc.verify = deliver_verify(r);
	cc.cafile = r->ca;
	cc.helo = ctx->helo;
	cc.lmtp = r->kind == CONF_ROUTE_LMTP;
	cc.timeout_ms = (int)(r->timeout > 3600 ? 3600000 : r->timeout * 1000);
	c = client_new(&cc);
	if (client_connect(c) == -1) {
		deliver_fail_all(c, "connect", res, n, NULL);
		goto fail;
	}
	if (client_greeting(c) == -1) {
		deliver_fail_all(c, "greeting", res, n, NULL);
		goto fail;
	}
	if (client_ehlo(c) == -1) {
		deliver_fail_all(c, cc.lmtp ? "LHLO" : "EHLO", res, n, NULL);
		goto fail;
	}
	if (cc.tls == CLIENT_TLS_STARTTLS) {
		if (client_starttls(c) == -1) {
			if (client_error(c)->kind == CLIENT_E_UNSUPPORTED) {
				/* fail closed: tls = starttls means never in plaintext */
				for (size_t i = 0; i < n; i++)
					deliver_set(&res[i], QFILE_HELD, 0, NULL,
					    "starttls-not-offered",
					    "the server does not offer STARTTLS (tls = starttls): "
					    "not sending in plaintext");
			} else {
				deliver_fail_all(c, "STARTTLS", res, n, NULL);
			}
			goto fail;
		}
		if (client_ehlo(c) == -1) {
			deliver_fail_all(c, cc.lmtp ? "LHLO" : "EHLO", res, n, NULL);
			goto fail;
		}
	}
	if (deliver_auth(ctx, r, c, res, n) == -1)
		goto fail;
	return c;
fail:
	client_free(c);
	return NULL;
}

/* Smarthost and LMTP: one configured peer, over the cached session when
 * there is one. */
static void
deliver_direct(const struct deliver_ctx *ctx, struct deliver_conn *dc, const struct conf_route *r,
    const struct qfile *q, const struct buf *sig, const size_t *idx, size_t n,
    struct deliver_result *res, char *relay_r, size_t relaylen)
{
	char key[DELIVER_KEY_MAX];
	struct deliver_tx tx;
	struct client *c;
	bool reused;
	bool lmtp = r->kind == CONF_ROUTE_LMTP;

	if (r->unix_path != NULL)
		snprintf(relay_r, relaylen, "%s", r->unix_path);
	else
		snprintf(relay_r, relaylen, "%s:%s", r->host, r->port);
	deliver_key(r, "", key, sizeof(key));
	c = deliver_conn_take(dc, key, relay_r, relaylen);
	reused = c != NULL;
	if (c == NULL && (c = deliver_direct_open(ctx, r, res, n)) == NULL)
		return;
	deliver_transaction(c, lmtp, q, sig, idx, n, res, &tx);
	if (reused && tx.stale) {
		/* the peer ended the idle session: a new one, nothing was sent */
		client_free(c);
		deliver_reset(res, n);
		reused = false;
		if ((c = deliver_direct_open(ctx, r, res, n)) == NULL)
			return;
		deliver_transaction(c, lmtp, q, sig, idx, n, res, &tx);
	}
	deliver_conn_put(dc, key, relay_r, c, &tx, reused);
}

static void
deliver_mx(const struct deliver_ctx *ctx, struct deliver_conn *dc, const struct conf_route *r,
    struct route_mx *mx, const char *domain, const struct qfile *q, const struct buf *sig,
    const size_t *idx, size_t n, struct deliver_result *res, char *relay_r, size_t relaylen)
{
	struct route_mx_plan plan;
	struct route_mx_cursor cur;
	struct route_mx_attempt at;
	struct client *c;
	struct deliver_tx tx;
	char err[ROUTE_MX_REASON_MAX], key[DELIVER_KEY_MAX];
	bool done = false, opened = false;
	int rc;

	(void)ctx;
	snprintf(relay_r, relaylen, "mx:%s", domain);
	deliver_key(r, domain, key, sizeof(key));
	if ((c = deliver_conn_take(dc, key, relay_r, relaylen)) != NULL) {
		/* the host that took the last message for this domain */
		deliver_transaction(c, false, q, sig, idx, n, res, &tx);
		if (!tx.session_transient) {
			deliver_conn_put(dc, key, relay_r, c, &tx, true);
			return;
		}
		/* gone, or a transient failure of the whole session: the MX
		 * hosts in order, as for a new attempt (RFC 5321 5.1) */
		if (tx.end != DELIVER_TX_BROKEN)
			client_quit(c);
		client_free(c);
		deliver_reset(res, n);
		snprintf(relay_r, relaylen, "mx:%s", domain);
	}
	if (mx == NULL) {
		for (size_t i = 0; i < n; i++)
			deliver_set(
			    &res[i], QFILE_DEFERRED, 0, NULL, NULL, "mx route not available");
		return;
	}
	memset(&plan, 0, sizeof(plan));
	rc = route_mx_resolve(mx, domain, &plan, err, sizeof(err));
	if (plan.sts_note[0] != '\0')
		/* a policy that could not be fetched, a record gone, a cache
		 * not written: the admin should know what TLS rules applied */
		log_event(LOG_WARNING, "mta_sts", 0, "{s:s, s:s, s:s, s:b}", "domain", domain,
		    "note", plan.sts_note, "policy_id", plan.sts_id, "cached", plan.sts_cached);
	if (rc == -1) {
		for (size_t i = 0; i < n; i++)
			deliver_set(&res[i], plan.permanent ? QFILE_FAILED : QFILE_DEFERRED, 0,
			    plan.permanent ? "5.1.2" : "4.4.3", NULL, "MX of %s: %s", domain, err);
		route_mx_plan_free(&plan);
		return;
	}
	memset(&cur, 0, sizeof(cur));
	memset(&at, 0, sizeof(at));
	while (!done && (c = route_mx_open(mx, &plan, &cur, &at)) != NULL) {
		opened = true;
		snprintf(relay_r, relaylen, "%s[%s]", at.host, at.addr);
		/* a transient failure of the whole session: the next MX (RFC 5321 5.1) */
		deliver_transaction(c, false, q, sig, idx, n, res, &tx);
		done = !tx.session_transient;
		if (done)
			deliver_conn_put(dc, key, relay_r, c, &tx, false);
		else
			client_free(c);
	}
	if (!done && !opened) {
		for (size_t i = 0; i < n; i++)
			deliver_set(&res[i], at.transient ? QFILE_DEFERRED : QFILE_FAILED, 0, NULL,
			    NULL, "no MX host of %s took the message: %s", domain, at.reason);
	}
	route_mx_plan_free(&plan);
}

/*
 * The DKIM-Signature for q, when its From: domain has a [dkim DOMAIN]
 * section, into sig (else sig stays empty and the message goes out
 * unsigned). Computed per attempt from the spool body, so a retry sends a
 * fresh signature (only t= differs) and never a second one: the spool
 * never holds it.
 */
static void
deliver_dkim(const struct deliver_ctx *ctx, const struct qfile *q, struct buf *sig)
{
	const struct conf_dkim *d;
	const char *errstr = NULL;

	if (ctx->conf == NULL ||
	    (d = dkim_sign_select(ctx->conf, q->body, (size_t)q->body_len)) == NULL)
		return;
	if (dkim_sign(d, q->body, (size_t)q->body_len, (long long)time(NULL), sig, &errstr) == -1) {
		buf_reset(sig);
		log_event(LOG_WARNING, "dkim_error", 0, "{s:s, s:s, s:s, s:s}", "queue_id", q->id,
		    "domain", d->domain, "selector", d->selector, "error", errstr);
	}
}

void
deliver_run(const struct deliver_ctx *ctx, struct deliver_conn *dc, const struct conf_route *r,
    const char *domain, const struct qfile *q, const size_t *idx, size_t n,
    struct deliver_result *res, char *relay_r, size_t relaylen)
{
	struct buf sig;

	buf_init(&sig, DKIM_SIGN_SIG_MAX);
	deliver_reset(res, n);
	if (r->kind != CONF_ROUTE_LMTP)
		deliver_dkim(ctx, q, &sig);
	if (r->kind == CONF_ROUTE_MX)
		deliver_mx(ctx, dc, r, ctx->mx_for != NULL ? ctx->mx_for(ctx->mx_arg, r) : NULL,
		    domain, q, &sig, idx, n, res, relay_r, relaylen);
	else
		deliver_direct(ctx, dc, r, q, &sig, idx, n, res, relay_r, relaylen);
	buf_free(&sig);
}
