/*
 * client: the SMTP/LMTP conversation of the outbound client (see client.h):
 * replies read through smtp_reply_parse from a bounded buffer with a
 * deadline per reply, commands checked for CR/LF before they are sent, the
 * EHLO/HELO, STARTTLS and AUTH dialogues, the envelope and the message.
 *
 * State: fd (-1 when closed), ssl (after the handshake), rbuf (bytes read
 * and not yet parsed), reply (the last complete reply), err (the last
 * failure), caps (from the last EHLO; cleared by STARTTLS). The client owns
 * copies of every string of its conf; secrets pass through AUTH only and
 * are wiped when it returns.
 */
#include "client/client.h"
#include "client/client_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>

#include "lib/base64.h"
#include "lib/xalloc.h"

#define CLIENT_CMD_MAX (CLIENT_SECRET_MAX * 2 + 64) /* AUTH with a token as IR */
#define CLIENT_AUTH_STEPS_MAX 10 /* 334 challenges answered in one AUTH */
#define CLIENT_BDAT_CHUNK (1024 * 1024)
#define CLIENT_QUIT_TIMEOUT_MS 5000
#define CLIENT_ENVELOPE_LINE_MAX 700 /* MAIL FROM:<512 bytes> and parameters */

static char *
client_strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct client *
client_new(const struct client_conf *conf)
{
	struct client *c = xcalloc(1, sizeof(*c));

	c->conf = *conf;
	c->conf.host = client_strdup_or_null(conf->host);
	c->conf.port = xstrdup(conf->port != NULL ? conf->port : "25");
	c->conf.unix_path = client_strdup_or_null(conf->unix_path);
	c->conf.cafile = client_strdup_or_null(conf->cafile);
	c->conf.sni = client_strdup_or_null(conf->sni);
	c->conf.verify_host = client_strdup_or_null(conf->verify_host);
	c->conf.helo = xstrdup(conf->helo != NULL ? conf->helo : "localhost");
	c->conf.dane_base = client_strdup_or_null(conf->dane_base);
	c->conf.dane = NULL;
	c->conf.ndane = 0;
	if (conf->ndane > 0) {
		struct client_tlsa *t = xcalloc(conf->ndane, sizeof(*t));

		for (size_t i = 0; i < conf->ndane; i++) {
			unsigned char *d = xmalloc(conf->dane[i].len + 1);

			memcpy(d, conf->dane[i].data, conf->dane[i].len);
			t[i] = conf->dane[i];
			t[i].data = d;
		}
		c->conf.dane = t;
		c->conf.ndane = conf->ndane;
	}
	c->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : CLIENT_TIMEOUT_DEFAULT_MS;
	c->fd = -1;
	if (conf->ssl_ctx != NULL) {
		SSL_CTX_up_ref(conf->ssl_ctx);
		c->ctx = conf->ssl_ctx;
	}
	buf_init(&c->rbuf, CLIENT_READ_BUF_MAX);
	smtp_reply_parser_init(&c->parser);
	return c;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	client_close(c);
	SSL_CTX_free(c->ctx);
	free((char *)c->conf.host);
	free((char *)c->conf.port);
	free((char *)c->conf.unix_path);
	free((char *)c->conf.cafile);
	free((char *)c->conf.sni);
	free((char *)c->conf.verify_host);
	free((char *)c->conf.helo);
	free((char *)c->conf.dane_base);
	for (size_t i = 0; i < c->conf.ndane; i++)
		free((unsigned char *)c->conf.dane[i].data);
	free((struct client_tlsa *)c->conf.dane);
	buf_free(&c->rbuf);
	smtp_reply_parser_free(&c->parser);
	explicit_bzero(c->cb, sizeof(c->cb));
	free(c);
}

const struct client_error *
client_error(const struct client *c)
{
	return &c->err;
}

const struct client_reply *
client_reply(const struct client *c)
{
	return &c->reply;
}

const struct client_caps *
client_caps(const struct client *c)
{
	return &c->caps;
}

const struct client_tls_info *
client_tls_info(const struct client *c)
{
	return &c->tls;
}

const char *
client_peer(const struct client *c)
{
	return c->peer;
}

bool
client_is_tls(const struct client *c)
{
	return c->ssl != NULL && c->tls.active;
}

const char *
client_err_name(enum client_err e)
{
	static const char *const names[] = {
	    [CLIENT_E_NONE] = "none",
	    [CLIENT_E_RESOLVE] = "resolve",
	    [CLIENT_E_REFUSED] = "refused",
	    [CLIENT_E_CONNECT_TIMEOUT] = "connect-timeout",
	    [CLIENT_E_UNREACHABLE] = "unreachable",
	    [CLIENT_E_RESET] = "reset",
	    [CLIENT_E_CLOSED] = "closed",
	    [CLIENT_E_TIMEOUT] = "timeout",
	    [CLIENT_E_PROTOCOL] = "protocol",
	    [CLIENT_E_TLS_BYTES] = "tls-bytes",
	    [CLIENT_E_TLS] = "tls",
	    [CLIENT_E_TLS_VERIFY] = "tls-verify",
	    [CLIENT_E_REPLY] = "reply",
	    [CLIENT_E_UNSUPPORTED] = "unsupported",
	    [CLIENT_E_AUTH] = "auth",
	    [CLIENT_E_LOCAL] = "local",
	};

	return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

bool
client_error_is_transient(const struct client *c)
{
	switch (c->err.kind) {
	case CLIENT_E_REPLY:
		return c->reply.code >= 400 && c->reply.code < 500;
	case CLIENT_E_UNSUPPORTED:
	case CLIENT_E_AUTH:
	case CLIENT_E_NONE:
		return false;
	default:
		/* network, TLS and local trouble may go away; the queue's expiry
		 * bounds how long it is retried */
		return true;
	}
}

/* --- replies ---------------------------------------------------------------- */

/* Appends one line (escaped) to r->text, after a '\n' unless it is the
 * first; once a line does not fit, the text ends with "..." and *full_r is
 * set. */
static void
client_reply_keep_line(struct client_reply *r, size_t *used, const char *l, size_t n, bool *full_r)
{
	size_t room = sizeof(r->text) - 1 - *used; /* - 1: the NUL */
	size_t sep = *used > 0;
	struct buf e;

	if (*full_r)
		return;
	buf_init(&e, sizeof(r->text) * 4);
	if (client_escape(l, n, sizeof(r->text), &e) == -1 || e.data == NULL) {
		buf_free(&e);
		return;
	}
	if (sep + e.len <= room) {
		memcpy(r->text + *used, "\n", sep);
		memcpy(r->text + *used + sep, e.data, e.len);
		*used += sep + e.len;
	} else {
		if (room >= sep + 3) {
			size_t k = room - sep - 3;

			memcpy(r->text + *used, "\n", sep);
			memcpy(r->text + *used + sep, e.data, k < e.len ? k : e.len);
			*used += sep + (k < e.len ? k : e.len);
		} else {
			*used -= 3 - room; /* room < 3 here and *used >= 3 */
		}
		memcpy(r->text + *used, "...", 3);
		*used += 3;
		*full_r = true;
	}
	r->text[*used] = '\0';
	buf_free(&e);
}

static void
client_record_reply(struct client *c)
{
	struct smtp_reply_parser *p = &c->parser;
	struct client_reply *r = &c->reply;
	struct buf b;
	size_t n, used = 0;
	bool full = false;
	const char *l;

	r->code = p->code;
	snprintf(r->enh, sizeof(r->enh), "%s", p->enh);
	r->flags = p->flags;
	r->text[0] = '\0';
	for (size_t i = 0; i < p->nlines; i++) {
		char head[5];

		l = smtp_reply_parse_line(p, i, &n);
		buf_init(&b, SMTP_REPLY_LINE_MAX + 8);
		snprintf(head, sizeof(head), "%03d%c", i + 1 < p->nlines ? p->first_code : p->code,
		    i + 1 < p->nlines ? '-' : ' ');
		if (buf_append(&b, head, n == 0 && i + 1 == p->nlines ? 3 : 4) == 0 &&
		    buf_append(&b, l, n) == 0) {
			client_transcript_add(c->conf.transcript, CLIENT_T_SERVER, b.data, b.len);
			client_reply_keep_line(r, &used, b.data, b.len, &full);
		}
		if (i + 1 == p->nlines) {
			struct buf e;

			buf_init(&e, sizeof(r->line) * 4);
			if (client_escape(b.data, b.len, sizeof(r->line) / 4 - 4, &e) == 0)
				snprintf(
				    r->line, sizeof(r->line), "%s", e.data != NULL ? e.data : "");
			buf_free(&e);
		}
		buf_free(&b);
	}
}

/* A snippet of the first bytes of the incomplete reply, for the evidence. */
static void
client_note_partial(struct client *c, const char *raw, size_t n)
{
	struct buf e;

	if (n == 0)
		return;
	buf_init(&e, 1024);
	if (client_escape(raw, n, 120, &e) == 0)
		client_transcript_addf(c->conf.transcript, CLIENT_T_INFO,
		    "incomplete reply, %zu bytes so far, starting: %s", c->err.partial,
		    e.data != NULL ? e.data : "");
	buf_free(&e);
}

/* Reads one complete reply for the command verb cmd ("" for a greeting). */
static int
client_read_reply(struct client *c, const char *cmd)
{
	long long deadline = client_now_ms() + c->timeout_ms;
	char snip[128];
	size_t sniplen = 0, got = 0;
	char what[64];

	snprintf(what, sizeof(what), "reply to %s", *cmd ? cmd : "connect (greeting)");
	smtp_reply_parser_reset(&c->parser);
	memset(&c->reply, 0, sizeof(c->reply));
	snprintf(c->reply.cmd, sizeof(c->reply.cmd), "%s", cmd);
	c->err.partial = 0;
	if (c->fd == -1) {
		client_set_error(c, CLIENT_E_CLOSED, 0, "%s: not connected", what);
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (c->rbuf.len > 0) {
			size_t used = 0;
			enum smtp_reply_parse_result r =
			    smtp_reply_parse_feed(&c->parser, c->rbuf.data, c->rbuf.len, &used);
			size_t take = used + (r == SMTP_REPLY_PARSE_ERROR && used < c->rbuf.len);

			if (sniplen < sizeof(snip)) {
				size_t k =
				    take < sizeof(snip) - sniplen ? take : sizeof(snip) - sniplen;

				memcpy(snip + sniplen, c->rbuf.data, k);
				sniplen += k;
			}
			got += take;
			if (r == SMTP_REPLY_PARSE_DONE) {
				buf_consume(&c->rbuf, used);
				client_record_reply(c);
				return 0;
			}
			buf_consume(&c->rbuf, take);
			if (r == SMTP_REPLY_PARSE_ERROR) {
				c->err.partial = got;
				client_note_partial(c, snip, sniplen);
				/* 0x16/0x15 0x03: a TLS handshake or alert record */
				if (sniplen >= 2 && (snip[0] == 0x16 || snip[0] == 0x15) &&
				    snip[1] == 0x03) {
					client_set_error(c, CLIENT_E_TLS_BYTES, 0,
					    "%s: the server speaks TLS here, not SMTP", what);
					return -1;
				}
				client_set_error(
				    c, CLIENT_E_PROTOCOL, 0, "%s: %s", what, c->parser.errstr);
				return -1;
			}
		}
		n = client_read_some(c, deadline, what);
		if (n > 0)
			continue;
		c->err.partial = got;
		if (n == 0) {
			client_note_partial(c, snip, sniplen);
			client_set_error(c, CLIENT_E_CLOSED, 0,
			    got ? "%s: connection closed in the middle of a reply"
			        : "%s: connection closed without a reply",
			    what);
		} else if (c->err.kind == CLIENT_E_TIMEOUT && got > 0) {
			c->err.partial = got;
			client_note_partial(c, snip, sniplen);
			snprintf(c->err.detail, sizeof(c->err.detail),
			    "%s: still incomplete after %d ms (%zu bytes received)", what,
			    c->timeout_ms, got);
		}
		return -1;
	}
}

/* Records line (no CR/LF) in the transcript and appends it with CRLF to out. */
static int
client_stage_line(struct client *c, const char *line, size_t len, bool in_auth, struct buf *out)
{
	struct buf shown;

	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "refusing to send a command with CR or LF");
		return -1;
	}
	buf_init(&shown, CLIENT_TRANSCRIPT_LINE_MAX * 2);
	if (client_transcript_redact(line, len, in_auth, &shown) == 0)
		client_transcript_add(c->conf.transcript, CLIENT_T_CLIENT, shown.data, shown.len);
	buf_free(&shown);
	if (buf_append(out, line, len) == -1 || buf_append(out, "\r\n", 2) == -1) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "command too long");
		return -1;
	}
	return 0;
}

static int
client_send_line(struct client *c, const char *line, size_t len, bool in_auth)
{
	struct buf out;
	int rc = -1;

	if (c->fd == -1) {
		client_set_error(c, CLIENT_E_CLOSED, 0, "not connected");
		return -1;
	}
	buf_init(&out, len + 2);
	buf_set_secret(&out);
	if (client_stage_line(c, line, len, in_auth, &out) == 0)
		rc = client_write_all(c, out.data, out.len, "write");
	buf_free(&out);
	return rc;
}

/* The verb of a command line ("MAIL" of "MAIL FROM:<...>"). */
static void
client_verb(const char *line, char *verb, size_t verblen)
{
	size_t n = strcspn(line, " ");

	if (n >= verblen)
		n = verblen - 1;
	memcpy(verb, line, n);
	verb[n] = '\0';
}

static int
client_expect(struct client *c, int cls, const char *what)
{
	if (c->reply.code / 100 == cls)
		return 0;
	client_set_error(c, CLIENT_E_REPLY, 0, "%s: %s", what, c->reply.line);
	return -1;
}

int
client_command(struct client *c, const char *line)
{
	char verb[16];

	client_verb(line, verb, sizeof(verb));
	if (client_send_line(c, line, strlen(line), false) == -1 ||
	    client_read_reply(c, verb) == -1)
		return -1;
	if (c->reply.code >= 400) {
		client_set_error(c, CLIENT_E_REPLY, 0, "%s: %s", verb, c->reply.line);
		return -1;
	}
	return 0;
}

/* --- session start ------------------------------------------------------------ */

int
client_greeting(struct client *c)
{
	if (c->conf.tls == CLIENT_TLS_IMPLICIT && c->ssl == NULL && client_tls_handshake(c) == -1)
		return -1;
	if (client_read_reply(c, "") == -1)
		return -1;
	if (client_expect(c, 2, "greeting") == -1)
		return -1;
	c->greeted = true;
	return 0;
}

int
client_ehlo(struct client *c)
{
	char line[300];
	const char *verb = c->conf.lmtp ? "LHLO" : "EHLO";

	snprintf(line, sizeof(line), "%s %s", verb, c->conf.helo);
	client_caps_reset(&c->caps);
	if (client_send_line(c, line, strlen(line), false) == -1 ||
	    client_read_reply(c, verb) == -1)
		return -1;
	if (c->reply.code == 250) {
		c->caps.ehlo = true;
		for (size_t i = 1; i < c->parser.nlines; i++) {
			size_t n;
			const char *l = smtp_reply_parse_line(&c->parser, i, &n);

			client_caps_parse_line(&c->caps, l, n);
		}
		return 0;
	}
	/* RFC 5321 4.1.4: a server that does not know EHLO answers 500/502 */
	if (c->conf.lmtp || (c->reply.code != 500 && c->reply.code != 502))
		return client_expect(c, 2, verb);
	snprintf(line, sizeof(line), "HELO %s", c->conf.helo);
	if (client_send_line(c, line, strlen(line), false) == -1 ||
	    client_read_reply(c, "HELO") == -1)
		return -1;
	return client_expect(c, 2, "HELO");
}

int
client_starttls(struct client *c)
{
	size_t stale;

	if (!c->caps.starttls) {
		client_set_error(c, CLIENT_E_UNSUPPORTED, 0, "STARTTLS is not offered");
		return -1;
	}
	if (client_send_line(c, "STARTTLS", 8, false) == -1 ||
	    client_read_reply(c, "STARTTLS") == -1 || client_expect(c, 2, "STARTTLS") == -1)
		return -1;
	/* RFC 3207 4.2 (and CVE-2011-0411 style injection): nothing the server
	 * sent before the handshake may be taken as a reply inside TLS */
	stale = c->rbuf.len;
	buf_reset(&c->rbuf);
	if (stale > 0)
		client_transcript_addf(c->conf.transcript, CLIENT_T_INFO,
		    "discarded %zu bytes the server sent after its 220 to STARTTLS", stale);
	if (client_tls_handshake(c) == -1) {
		c->tls.discarded = stale;
		return -1;
	}
	c->tls.discarded = stale;
	client_caps_reset(&c->caps);
	return 0;
}

/* --- AUTH ----------------------------------------------------------------------- */

/* The text of the last 334 challenge (base64), NUL-terminated, malloc'd. */
static char *
client_challenge(struct client *c)
{
	size_t n;
	const char *l = smtp_reply_parse_line(&c->parser, 0, &n);

	while (n > 0 && l[n - 1] == ' ')
		n--;
	return xstrndup(l, n);
}

/* Shows the decoded error challenge of the OAuth mechanisms (RFC 7628 3.2.2:
 * JSON, no secret) in the transcript. */
static void
client_note_oauth_error(struct client *c, const char *b64)
{
	struct buf d;

	buf_init(&d, 4096);
	if (base64_decode(b64, strlen(b64), &d) == 0 && d.len > 0)
		client_transcript_add(c->conf.transcript, CLIENT_T_INFO, d.data, d.len);
	buf_free(&d);
}

/* Sends the base64 form of raw bytes as one AUTH line (or the IR). */
static int
client_auth_send_b64(struct client *c, const char *prefix, const char *raw, size_t n)
{
	struct buf line;
	int rc = -1;

	buf_init(&line, CLIENT_CMD_MAX);
	buf_set_secret(&line);
	if (buf_append_str(&line, prefix) == -1 ||
	    (n == 0 && prefix[0] != '\0' ? buf_append_str(&line, "=")
	                                 : base64_encode(raw, n, &line)) == -1) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "AUTH response too long");
		goto out;
	}
	rc = client_send_line(c, line.data, line.len, prefix[0] == '\0');
out:
	buf_free(&line);
	return rc;
}

/* Cancels an exchange (RFC 4954 4: "*") and reads the 501. */
static void
client_auth_cancel(struct client *c, const char *why)
{
	if (client_send_line(c, "*", 1, false) == 0)
		(void)client_read_reply(c, "AUTH");
	client_set_error(c, CLIENT_E_AUTH, 0, "AUTH: %s", why);
}

int
client_auth(
    struct client *c, const char *mech, const char *user, const char *secret, size_t secretlen)
{
	struct client_gsasl *g = NULL;
	struct buf raw;
	char prefix[64];
	char *out = NULL, *chal = NULL;
	const char *errstr = "";
	bool gsasl_done = false, oauth_error = false;
	int step = 0, rc = -1;
	bool plus = strlen(mech) > 5 && strcasecmp(mech + strlen(mech) - 5, "-PLUS") == 0;

	buf_init(&raw, CLIENT_SECRET_MAX * 2 + 512);
	buf_set_secret(&raw);
	if (!client_sasl_is_supported(mech)) {
		client_set_error(
		    c, CLIENT_E_UNSUPPORTED, 0, "AUTH %s: not supported by this client", mech);
		goto out;
	}
	if (secretlen > CLIENT_SECRET_MAX || strlen(user) > 320) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "AUTH: user name or secret too long");
		goto out;
	}
	if (plus && c->cblen == 0) {
		client_set_error(
		    c, CLIENT_E_UNSUPPORTED, 0, "AUTH %s: channel binding needs TLS", mech);
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "AUTH %s ", mech);
	if (strcasecmp(mech, "PLAIN") == 0) {
		if (client_sasl_plain(user, secret, secretlen, &raw) == -1 ||
		    client_auth_send_b64(c, prefix, raw.data, raw.len) == -1)
			goto out;
	} else if (strcasecmp(mech, "XOAUTH2") == 0) {
		if (client_sasl_xoauth2(user, secret, secretlen, &raw) == -1 ||
		    client_auth_send_b64(c, prefix, raw.data, raw.len) == -1)
			goto out;
	} else if (strcasecmp(mech, "OAUTHBEARER") == 0) {
		if (client_sasl_oauthbearer(
		        user, c->conf.host, c->conf.port, secret, secretlen, &raw) == -1 ||
		    client_auth_send_b64(c, prefix, raw.data, raw.len) == -1)
			goto out;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		if (client_send_line(c, "AUTH LOGIN", 10, false) == -1)
			goto out;
	} else {
		g = client_gsasl_start(mech, user, secret, secretlen, plus ? c->cb : NULL,
		    plus ? c->cblen : 0, c->cb_exporter, &errstr);
		if (g == NULL) {
			client_set_error(c, CLIENT_E_LOCAL, 0, "AUTH %s: %s", mech, errstr);
			goto out;
		}
		if (strncasecmp(mech, "SCRAM-", 6) == 0) {
			/* client-first-message as the initial response */
			if (client_gsasl_step(g, "", &out, &errstr) == -1) {
				client_set_error(c, CLIENT_E_LOCAL, 0, "AUTH %s: %s", mech, errstr);
				goto out;
			}
			snprintf(prefix, sizeof(prefix), "AUTH %s %s", mech, "");
			buf_reset(&raw);
			if (buf_append_str(&raw, prefix) == -1 || buf_append_str(&raw, out) == -1 ||
			    client_send_line(c, raw.data, raw.len, false) == -1)
				goto out;
			xfree_secret_str(out);
			out = NULL;
		} else if (client_send_line(c, prefix, strlen(prefix) - 1, false) == -1) {
			goto out;
		}
	}
	for (;;) {
		if (client_read_reply(c, "AUTH") == -1)
			goto out;
		if (c->reply.code == 235) {
			if (g != NULL && !gsasl_done && strncasecmp(mech, "SCRAM-", 6) == 0)
				client_transcript_addf(c->conf.transcript, CLIENT_T_INFO,
				    "the server accepted without proving it knows the password");
			rc = 0;
			goto out;
		}
		if (c->reply.code != 334 || oauth_error) {
			client_set_error(c, CLIENT_E_REPLY, 0, "AUTH %s: %s", mech, c->reply.line);
			goto out;
		}
		if (++step > CLIENT_AUTH_STEPS_MAX) {
			client_auth_cancel(c, "too many challenges");
			goto out;
		}
		free(chal);
		chal = client_challenge(c);
		buf_reset(&raw);
		if (strcasecmp(mech, "LOGIN") == 0) {
			const char *v = step == 1 ? user : step == 2 ? secret : NULL;

			if (v == NULL) {
				client_auth_cancel(c, "unexpected third LOGIN challenge");
				goto out;
			}
			if (client_auth_send_b64(c, "", v, step == 1 ? strlen(user) : secretlen) ==
			    -1)
				goto out;
		} else if (strcasecmp(mech, "XOAUTH2") == 0 ||
		    strcasecmp(mech, "OAUTHBEARER") == 0) {
			/* RFC 7628 3.2.3: an error challenge; the client answers
			 * with a dummy response (XOAUTH2: empty) and gets 535 */
			client_note_oauth_error(c, chal);
			oauth_error = true;
			if (client_send_line(c, strcasecmp(mech, "XOAUTH2") == 0 ? "" : "AQ==",
			        strcasecmp(mech, "XOAUTH2") == 0 ? 0 : 4, true) == -1)
				goto out;
		} else if (g != NULL && !gsasl_done) {
			int s = client_gsasl_step(g, chal, &out, &errstr);

			if (s == -1) {
				client_auth_cancel(c, errstr);
				goto out;
			}
			gsasl_done = s == 0;
			if (client_send_line(c, out, strlen(out), true) == -1)
				goto out;
			xfree_secret_str(out);
			out = NULL;
		} else {
			client_auth_cancel(c, "unexpected challenge");
			goto out;
		}
	}
out:
	xfree_secret_str(out);
	free(chal);
	client_gsasl_free(g);
	buf_free(&raw);
	return rc;
}

/* --- the transaction ---------------------------------------------------------- */

static bool
client_addr_ok(const char *a)
{
	return strpbrk(a, "\r\n<>") == NULL && strlen(a) <= 512;
}

/* The MAIL FROM line with the parameters the server offered. */
static int
client_mail_line(
    struct client *c, const char *from, size_t size, unsigned flags, char *line, size_t len)
{
	int n;

	if (!client_addr_ok(from)) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "bad sender address");
		return -1;
	}
	n = snprintf(line, len, "MAIL FROM:<%s>", from);
	if (c->caps.size && size > 0)
		n += snprintf(line + n, len - (size_t)n, " SIZE=%zu", size);
	if ((flags & CLIENT_MAIL_8BIT) && c->caps.eightbitmime)
		n += snprintf(line + n, len - (size_t)n, " BODY=8BITMIME");
	if ((flags & CLIENT_MAIL_SMTPUTF8) && c->caps.smtputf8)
		snprintf(line + n, len - (size_t)n, " SMTPUTF8");
	return 0;
}

static int
client_rcpt_line(struct client *c, const char *to, char *line, size_t len)
{
	if (!client_addr_ok(to)) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "bad recipient address");
		return -1;
	}
	snprintf(line, len, "RCPT TO:<%s>", to);
	return 0;
}

int
client_mail(struct client *c, const char *from, size_t size, unsigned flags)
{
	char line[CLIENT_ENVELOPE_LINE_MAX];

	if (client_mail_line(c, from, size, flags, line, sizeof(line)) == -1 ||
	    client_send_line(c, line, strlen(line), false) == -1 ||
	    client_read_reply(c, "MAIL") == -1)
		return -1;
	return client_expect(c, 2, "MAIL");
}

int
client_rcpt(struct client *c, const char *to)
{
	char line[CLIENT_ENVELOPE_LINE_MAX];

	if (client_rcpt_line(c, to, line, sizeof(line)) == -1 ||
	    client_send_line(c, line, strlen(line), false) == -1 ||
	    client_read_reply(c, "RCPT") == -1)
		return -1;
	return client_expect(c, 2, "RCPT");
}

/*
 * Command k of the envelope (0: MAIL, k: RCPT for to[k - 1]) are sent in
 * groups: all of a group in one write, then its replies in order. Without
 * PIPELINING a group is one command, so MAIL's reply is known before any
 * RCPT goes out; with it, a refused MAIL still has the rest of its group's
 * replies read (RFC 2920 3.1: the server answers every command), and no
 * further group is sent.
 */
int
client_envelope(struct client *c, const char *from, size_t size, unsigned flags,
    const char *const *to, size_t n, struct client_reply *rcpt_r)
{
	char line[CLIENT_ENVELOPE_LINE_MAX];
	struct client_reply mail_reply;
	struct buf out;
	size_t group = c->caps.pipelining ? CLIENT_PIPELINE_MAX : 1;
	size_t sent = 0, got = 0, total = n + 1;
	bool mail_ok = false;
	int rc = -1;

	memset(&mail_reply, 0, sizeof(mail_reply));
	for (size_t i = 0; i < n; i++)
		memset(&rcpt_r[i], 0, sizeof(rcpt_r[i]));
	if (client_mail_line(c, from, size, flags, line, sizeof(line)) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (client_rcpt_line(c, to[i], line, sizeof(line)) == -1)
			return -1;
	}
	if (c->fd == -1) {
		client_set_error(c, CLIENT_E_CLOSED, 0, "not connected");
		return -1;
	}
	/* a failure before any reply is read (the write) is MAIL's */
	memset(&c->reply, 0, sizeof(c->reply));
	snprintf(c->reply.cmd, sizeof(c->reply.cmd), "MAIL");
	buf_init(&out, CLIENT_PIPELINE_MAX * (CLIENT_ENVELOPE_LINE_MAX + 2));
	while (got < total) {
		if (got == sent) {
			if (sent > 0 && !mail_ok)
				break; /* MAIL refused: nothing more to send */
			buf_reset(&out);
			for (size_t k = 0; k < group && sent < total; k++, sent++) {
				if ((sent == 0 ? client_mail_line(
				                     c, from, size, flags, line, sizeof(line))
				               : client_rcpt_line(
				                     c, to[sent - 1], line, sizeof(line))) == -1 ||
				    client_stage_line(c, line, strlen(line), false, &out) == -1)
					goto out;
			}
			if (client_write_all(c, out.data, out.len, "write") == -1)
				goto out;
		}
		if (client_read_reply(c, got == 0 ? "MAIL" : "RCPT") == -1) {
			/* MAIL was refused, and a 421 closes the session (RFC 5321
			 * 3.8) before the RCPT replies: the refusal is the outcome */
			if (got > 0 && !mail_ok) {
				c->reply = mail_reply;
				(void)client_expect(c, 2, "MAIL");
			}
			goto out;
		}
		if (got == 0) {
			mail_reply = c->reply;
			mail_ok = c->reply.code / 100 == 2;
		} else {
			rcpt_r[got - 1] = c->reply;
		}
		got++;
	}
	if (!mail_ok) {
		c->reply = mail_reply;
		rc = client_expect(c, 2, "MAIL");
		goto out;
	}
	rc = 0;
out:
	buf_free(&out);
	return rc;
}

/* Dot-stuffs msg[0..len) onto out; *bol: at the start of a line. */
static int
client_dot_stuff_part(const char *msg, size_t len, bool *bol, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		/* RFC 5321 4.5.2: a line starting with '.' gets one more */
		if (*bol && msg[i] == '.' && buf_append(out, ".", 1) == -1)
			return -1;
		if (buf_append(out, &msg[i], 1) == -1)
			return -1;
		*bol = msg[i] == '\n';
	}
	return 0;
}

int
client_dot_stuff(const char *msg, size_t len, struct buf *out)
{
	bool bol = true;

	if (client_dot_stuff_part(msg, len, &bol, out) == -1)
		return -1;
	if (len > 0 && !(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n') &&
	    buf_append(out, "\r\n", 2) == -1)
		return -1;
	return buf_append(out, ".\r\n", 3);
}

static int
client_bdat(struct client *c, const char *msg, size_t len)
{
	bool crlf = len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n';
	size_t total = len + (crlf ? 0 : 2), off = 0;
	const char *crlf_s = "\r\n";

	client_transcript_addf(
	    c->conf.transcript, CLIENT_T_INFO, "(%zu bytes of message by BDAT)", total);
	while (off < total) {
		size_t n = total - off > CLIENT_BDAT_CHUNK ? CLIENT_BDAT_CHUNK : total - off;
		bool last = off + n == total;
		char line[64];
		size_t from_msg = off < len ? (off + n <= len ? n : len - off) : 0;

		snprintf(line, sizeof(line), "BDAT %zu%s", n, last ? " LAST" : "");
		if (client_send_line(c, line, strlen(line), false) == -1 ||
		    (from_msg > 0 && client_write_all(c, msg + off, from_msg, "BDAT") == -1) ||
		    (from_msg < n &&
		        client_write_all(c, crlf_s + 2 - (n - from_msg), n - from_msg, "BDAT") ==
		            -1) ||
		    client_read_reply(c, "BDAT") == -1 || client_expect(c, 2, "BDAT") == -1)
			return -1;
		off += n;
	}
	return 0;
}

int
client_data(struct client *c, const char *msg, size_t len)
{
	return client_data_prefixed(c, NULL, 0, msg, len);
}

int
client_data_prefixed(struct client *c, const char *pre, size_t prelen, const char *msg, size_t len)
{
	struct buf body;
	bool bol = true;
	int rc = -1;

	if (c->caps.chunking && !c->conf.lmtp) {
		/* the prefix (whole lines) as a chunk of its own (RFC 3030 2) */
		if (prelen > 0) {
			char line[64];

			snprintf(line, sizeof(line), "BDAT %zu", prelen);
			client_transcript_addf(c->conf.transcript, CLIENT_T_INFO,
			    "(%zu bytes of added header by BDAT)", prelen);
			if (client_send_line(c, line, strlen(line), false) == -1 ||
			    client_write_all(c, pre, prelen, "BDAT") == -1 ||
			    client_read_reply(c, "BDAT") == -1 || client_expect(c, 2, "BDAT") == -1)
				return -1;
		}
		return client_bdat(c, msg, len);
	}
	if (client_send_line(c, "DATA", 4, false) == -1 || client_read_reply(c, "DATA") == -1)
		return -1;
	if (c->reply.code != 354) {
		client_set_error(c, CLIENT_E_REPLY, 0, "DATA: %s", c->reply.line);
		return -1;
	}
	buf_init(&body, prelen + len + (prelen + len) / 16 + 16);
	if (client_dot_stuff_part(pre, prelen, &bol, &body) == -1 ||
	    client_dot_stuff_part(msg, len, &bol, &body) == -1 ||
	    (body.len > 0 &&
	        !(body.len >= 2 && body.data[body.len - 2] == '\r' &&
	            body.data[body.len - 1] == '\n') &&
	        buf_append(&body, "\r\n", 2) == -1) ||
	    buf_append(&body, ".\r\n", 3) == -1) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "message too large to send");
		goto out;
	}
	client_transcript_addf(c->conf.transcript, CLIENT_T_INFO,
	    "(%zu bytes of message, dot-stuffed, then <CRLF>.<CRLF>)", prelen + len);
	if (client_write_all(c, body.data, body.len, "DATA") == -1 ||
	    client_read_reply(c, "DATA") == -1)
		goto out;
	rc = client_expect(c, 2, "end of DATA");
out:
	buf_free(&body);
	return rc;
}

int
client_data_lmtp_next(struct client *c)
{
	if (client_read_reply(c, "DATA") == -1)
		return -1;
	return client_expect(c, 2, "end of DATA");
}

int
client_rset(struct client *c)
{
	return client_command(c, "RSET");
}

void
client_disconnect(struct client *c)
{
	client_close(c);
}

void
client_quit(struct client *c)
{
	int saved = c->timeout_ms;
	struct client_error keep = c->err;
	struct client_reply keepr = c->reply;

	if (c->fd != -1) {
		if (c->timeout_ms > CLIENT_QUIT_TIMEOUT_MS)
			c->timeout_ms = CLIENT_QUIT_TIMEOUT_MS;
		if (client_send_line(c, "QUIT", 4, false) == 0)
			(void)client_read_reply(c, "QUIT");
		if (c->ssl != NULL) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl); /* close_notify, not waiting for the peer's */
			ERR_clear_error();
		}
		c->timeout_ms = saved;
	}
	/* the caller still looks at what failed before */
	c->err = keep;
	c->reply = keepr;
	client_close(c);
}
