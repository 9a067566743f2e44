/*
 * probe: `smtpgate probe` (see probe.h). One run is up to PROBE_TRIES_MAX
 * attempts of a session (a 421 anywhere, or a 454 to STARTTLS, starts the
 * next one after an exponential backoff; 5xx never does); a session is one
 * connection walked as far as it goes, plus short extra connections that
 * confirm a diagnosis (the other TLS mode, an older TLS version) or try the
 * further offered AUTH mechanisms. Every connection writes into the one
 * transcript; what goes wrong becomes findings, and the JSON parts (tls,
 * capabilities, auth, message) are built along the way.
 *
 * Rules that are judgement calls (doc/findings.md says the same):
 *   - A chain "unable to get local issuer certificate" where the server sent
 *     only its leaf, and the leaf is not self-signed, is cert-chain-incomplete:
 *     public CAs never sign server certificates with a root key (CA/B Forum
 *     Baseline Requirements 6.1.7), so the missing link is an intermediate the
 *     server must send. With intermediates sent and still no trusted root, it
 *     is cert-untrusted. A chain that verifies only because the client's store
 *     supplied intermediates the server did not send is cert-chain-incomplete
 *     at warning severity.
 *   - Credentials are never sent without TLS unless --plain was asked for.
 *   - After a 535 no further mechanism is tried (each failure counts towards
 *     the account's lockout on many servers).
 *   - Any failed handshake is tried again with TLS 1.0 allowed before it is
 *     called tls-handshake-failed: old servers refuse a modern ClientHello
 *     with an alert of any kind, a reset or a close, not always with
 *     protocol_version.
 *   - An AUTH that works only after a 454 is a warning, not silence.
 */
#include "diag/probe.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include "client/client.h"
#include "diag/probe_priv.h"
#include "explain/finding.h"
#include "explain/reply_map.h"
#include "smtp/smtp_reply_parse.h"

const char *
probe_mode_name(enum probe_mode m)
{
	switch (m) {
	case PROBE_MODE_PLAIN:
		return "plain";
	case PROBE_MODE_STARTTLS:
		return "starttls";
	case PROBE_MODE_STARTTLS_OPT:
		return "starttls-if-offered";
	case PROBE_MODE_TLS:
		return "tls";
	case PROBE_MODE_AUTO:
		break;
	}
	return "auto";
}

/* Adds a finding once per id (the first evidence is the telling one). */
void
probe_add(struct probe *p, const char *id, const char *fmt, ...)
{
	char ev[PROBE_EVIDENCE_MAX];
	va_list ap;

	if (findings_has(&p->f, id))
		return;
	va_start(ap, fmt);
	vsnprintf(ev, sizeof(ev), fmt, ap);
	va_end(ap);
	findings_add(&p->f, id, "%s", ev);
}

static void probe_add_sev(struct probe *p, const char *id, enum finding_severity sev,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
probe_add_sev(struct probe *p, const char *id, enum finding_severity sev, const char *fmt, ...)
{
	char ev[PROBE_EVIDENCE_MAX];
	va_list ap;

	if (findings_has(&p->f, id))
		return;
	va_start(ap, fmt);
	vsnprintf(ev, sizeof(ev), fmt, ap);
	va_end(ap);
	findings_add_severity(&p->f, id, sev, "%s", ev);
}

static void
probe_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1)
		;
}

/* --- connections --------------------------------------------------------------- */

static struct client *
probe_client_new(struct probe *p, enum client_tls_mode tls, bool legacy, const char *why)
{
	const struct probe_opts *o = p->o;
	struct client_conf cc = {
	    .host = o->host,
	    .port = p->port,
	    .tls = tls,
	    .verify = o->verify_none ? CLIENT_VERIFY_NONE : CLIENT_VERIFY_PEER_HOST,
	    .verify_soft = true,
	    .cafile = o->cafile,
	    .sni = o->sni,
	    .tls_legacy = legacy,
	    .helo = o->helo != NULL ? o->helo : "probe.smtpgate.invalid",
	    .timeout_ms = o->timeout_s * 1000,
	    .transcript = &p->t,
	};

	p->conns++;
	client_transcript_addf(&p->t, CLIENT_T_INFO, "--- connection %d (%s) ---", p->conns, why);
	return client_new(&cc);
}

static int
probe_connect(struct probe *p, struct client *c)
{
	for (size_t i = 0; i < p->naddrs; i++) {
		if (client_connect_addr(c, (struct sockaddr *)&p->addrs[i], p->addrlens[i]) == 0)
			return 0;
		/* a refused or unreachable address: the next one (RFC 5321 5.1) */
	}
	return -1;
}

/* The finding for a client failure at stage ("greeting", "EHLO", ...). */
static void
probe_client_finding(struct probe *p, struct client *c, const char *stage)
{
	const struct client_error *e = client_error(c);
	const struct client_reply *r = client_reply(c);
	struct finding_reply fr;
	const char *id;

	switch (e->kind) {
	case CLIENT_E_NONE:
		break;
	case CLIENT_E_RESOLVE:
		probe_add(p, "name-unresolvable", "%s", e->detail);
		break;
	case CLIENT_E_REFUSED:
		probe_add(p, "connection-refused", "%s", e->detail);
		break;
	case CLIENT_E_CONNECT_TIMEOUT:
	case CLIENT_E_UNREACHABLE:
		probe_add(p, "connection-timeout", "%s", e->detail);
		break;
	case CLIENT_E_RESET:
		probe_add(p, "connection-reset", "%s: %s", stage, e->detail);
		break;
	case CLIENT_E_CLOSED:
		probe_add(p, "connection-closed", "%s", e->detail);
		break;
	case CLIENT_E_TIMEOUT:
		probe_add(p, strcmp(stage, "greeting") == 0 ? "greeting-timeout" : "reply-timeout",
		    "%s", e->detail);
		break;
	case CLIENT_E_PROTOCOL:
		probe_add(p, "reply-malformed", "%s", e->detail);
		break;
	case CLIENT_E_TLS_BYTES:
		probe_add(p, "tls-mode-mismatch", "%s; use implicit TLS (--tls)", e->detail);
		break;
	case CLIENT_E_TLS:
	case CLIENT_E_TLS_VERIFY:
		probe_add(p, "tls-handshake-failed", "%s", e->detail);
		break;
	case CLIENT_E_REPLY:
		id = reply_map_explain(r->code, r->enh, r->cmd, r->text, &fr);
		if (r->code == 421 || (r->code == 454 && strcmp(r->cmd, "STARTTLS") == 0))
			p->retry = true;
		/* the whole reply: a provider's words may be on any line */
		if (id != NULL && !findings_has(&p->f, id))
			findings_add_reply(
			    &p->f, id, &fr, -1, "%s %s", *r->cmd ? r->cmd : "greeting:", r->text);
		break;
	case CLIENT_E_AUTH:
		probe_add(p, "auth-server-proof-invalid", "%s", e->detail);
		break;
	case CLIENT_E_UNSUPPORTED:
	case CLIENT_E_LOCAL:
		fprintf(stderr, "smtpgate probe: %s\n", e->detail);
		p->local_error = true;
		break;
	}
}

/* --- JSON parts -------------------------------------------------------------------- */

static json_t *
probe_caps_json(const struct client_caps *k)
{
	json_t *mechs = json_array();

	for (size_t i = 0; i < k->nmechs; i++)
		json_array_append_new(mechs, json_string(k->mechs[i]));
	return json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:o, s:b, s:o}", "esmtp",
	    k->ehlo, "starttls", k->starttls, "pipelining", k->pipelining, "8bitmime",
	    k->eightbitmime, "smtputf8", k->smtputf8, "chunking", k->chunking,
	    "enhancedstatuscodes", k->enhancedstatuscodes, "dsn", k->dsn, "size",
	    k->size ? json_integer((json_int_t)k->size_max) : json_null(), "auth", k->auth,
	    "mechanisms", mechs);
}

static void
probe_time_text(long long t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(out, outlen, "?");
	else
		strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool
probe_has_verify_error(const struct client_tls_info *t, int err)
{
	for (size_t i = 0; i < t->nerrors; i++) {
		if (t->errors[i].err == err)
			return true;
	}
	return false;
}

static json_t *
probe_tls_json(const struct client_tls_info *t, bool legacy)
{
	json_t *chain = json_array(), *errs = json_array();
	bool checked = t->verify_host[0] != '\0';
	bool mismatch = probe_has_verify_error(t, X509_V_ERR_HOSTNAME_MISMATCH) ||
	    probe_has_verify_error(t, X509_V_ERR_IP_ADDRESS_MISMATCH);

	for (size_t i = 0; i < t->nchain; i++) {
		const struct client_cert_info *ci = &t->chain[i];
		char nb[32], na[32];

		probe_time_text(ci->not_before, nb, sizeof(nb));
		probe_time_text(ci->not_after, na, sizeof(na));
		/* the names are the peer's bytes (subjectAltName entries are
		 * copied raw): escaped, so a certificate is never dropped */
		json_array_append_new(chain,
		    json_pack("{s:o, s:o, s:o, s:s, s:o, s:o, s:b}", "subject",
		        finding_json_text(ci->subject), "issuer", finding_json_text(ci->issuer),
		        "names", finding_json_text(ci->names), "key", ci->key, "not_before",
		        strcmp(nb, "?") != 0 ? json_string(nb) : json_null(), "not_after",
		        strcmp(na, "?") != 0 ? json_string(na) : json_null(), "self_signed",
		        ci->self_signed));
	}
	for (size_t i = 0; i < t->nerrors; i++)
		json_array_append_new(errs,
		    json_pack("{s:i, s:i, s:s}", "depth", t->errors[i].depth, "code",
		        t->errors[i].err, "error",
		        X509_verify_cert_error_string(t->errors[i].err)));
	return json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:o, s:o, s:i, s:i, s:o, s:b}", "version",
	    t->version, "cipher", t->cipher, "sni", t->sni[0] ? t->sni : NULL, "verify_host",
	    checked ? t->verify_host : NULL, "verified", t->verified, "name_match",
	    checked ? json_boolean(!mismatch) : json_null(), "errors", errs, "sent",
	    (int)t->sent_len, "verified_length", (int)t->verified_len, "chain", chain,
	    "legacy_only", legacy);
}

/* --- TLS findings ------------------------------------------------------------------- */

static void
probe_tls_findings(struct probe *p, const struct client_tls_info *t)
{
	long long now = (long long)time(NULL);
	const struct client_cert_info *leaf = t->nchain > 0 ? &t->chain[0] : NULL;

	if (t->version_num != 0 && t->version_num < TLS1_2_VERSION)
		probe_add(p, "tls-version-too-old", "negotiated %s", t->version);
	for (size_t i = 0; i < t->nerrors; i++) {
		int err = t->errors[i].err, depth = t->errors[i].depth;
		const char *subject = (size_t)depth < t->nchain ? t->chain[depth].subject : "?";
		const char *text = X509_verify_cert_error_string(err);

		switch (err) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
		case X509_V_ERR_CERT_NOT_YET_VALID: {
			char when[32];

			probe_time_text((size_t)depth < t->nchain
			        ? (err == X509_V_ERR_CERT_HAS_EXPIRED ? t->chain[depth].not_after
			                                              : t->chain[depth].not_before)
			        : 0,
			    when, sizeof(when));
			probe_add(p, "cert-expired", "%s (depth %d, %s; %s %s)", text, depth,
			    subject,
			    err == X509_V_ERR_CERT_HAS_EXPIRED ? "not after" : "not before", when);
			break;
		}
		case X509_V_ERR_HOSTNAME_MISMATCH:
		case X509_V_ERR_IP_ADDRESS_MISMATCH:
			probe_add(p, "cert-name-mismatch",
			    "checked \"%s\"; the certificate names: %s", t->verify_host,
			    leaf != NULL && leaf->names[0] ? leaf->names : subject);
			break;
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
			probe_add(p, "cert-self-signed", "%s (%s)", text, subject);
			break;
		/* trusted, but refused by the security level: not "untrusted" */
		case X509_V_ERR_EE_KEY_TOO_SMALL:
		case X509_V_ERR_CA_KEY_TOO_SMALL:
		case X509_V_ERR_CA_MD_TOO_WEAK:
			probe_add(p, "cert-weak", "%s (depth %d, %s, key %s)", text, depth, subject,
			    (size_t)depth < t->nchain ? t->chain[depth].key : "?");
			break;
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
			if (t->sent_len == 1 && leaf != NULL && !leaf->self_signed)
				probe_add(p, "cert-chain-incomplete",
				    "%s; the server sent only its own certificate (%s, issued by %s) "
				    "without the intermediate",
				    text, subject, leaf->issuer);
			else
				probe_add(p, "cert-untrusted", "%s (depth %d, %s, issued by %s)",
				    text, depth, subject,
				    (size_t)depth < t->nchain ? t->chain[depth].issuer : "?");
			break;
		default:
			probe_add(p, "cert-untrusted", "%s (depth %d, %s)", text, depth, subject);
			break;
		}
	}
	/* verified only thanks to intermediates from the local store */
	if (t->verified && t->verified_len > t->sent_len + 1)
		probe_add_sev(p, "cert-chain-incomplete", FINDING_WARNING,
		    "the chain verified only with %zu intermediate(s) from the local store that the "
		    "server did not send (sent %zu certificate(s))",
		    t->verified_len - t->sent_len - 1, t->sent_len);
	if (leaf != NULL && !findings_has(&p->f, "cert-expired") && leaf->not_after > now &&
	    leaf->not_after - now < PROBE_CERT_SOON_DAYS * 86400LL) {
		char when[32];

		probe_time_text(leaf->not_after, when, sizeof(when));
		probe_add(p, "cert-expires-soon", "the certificate expires on %s", when);
	}
}

/* Records a completed TLS session: JSON, findings, and a STARTTLS injection. */
static void
probe_tls_done(struct probe *p, struct client *c, bool legacy)
{
	const struct client_tls_info *t = client_tls_info(c);

	json_decref(p->tls);
	p->tls = probe_tls_json(t, legacy);
	probe_tls_findings(p, t);
	if (t->discarded > 0)
		probe_add(p, "starttls-injection",
		    "%zu bytes arrived after the 220 reply to STARTTLS, before the handshake",
		    t->discarded);
}

/* --- confirming a diagnosis with a second connection --------------------------------- */

/* Does the port answer plaintext SMTP? Copies the greeting into line. */
static bool
probe_speaks_plain(struct probe *p, char *line, size_t linelen)
{
	struct client *c = probe_client_new(p, CLIENT_TLS_NONE, false, "is it plaintext SMTP?");
	bool yes = false;

	if (probe_connect(p, c) == 0 && client_greeting(c) == 0) {
		yes = true;
		snprintf(line, linelen, "%s", client_reply(c)->line);
	} else if (client_reply(c)->code != 0) {
		yes = true; /* a reply, if not a 220: still SMTP in plaintext */
		snprintf(line, linelen, "%s", client_reply(c)->line);
	}
	client_quit(c);
	client_free(c);
	return yes;
}

/* Does the port speak implicit TLS? Copies the version into version. */
static bool
probe_speaks_tls(struct probe *p, char *version, size_t versionlen)
{
	struct client *c = probe_client_new(p, CLIENT_TLS_IMPLICIT, false, "is it implicit TLS?");
	bool yes;

	yes = probe_connect(p, c) == 0 && (client_greeting(c) == 0 || client_is_tls(c));
	if (yes)
		snprintf(version, versionlen, "%s", client_tls_info(c)->version);
	client_quit(c);
	client_free(c);
	return yes;
}

/* After a failed handshake: does the server complete one that allows TLS
 * 1.0 and 1.1 at security level 0? Servers refuse a ClientHello they do
 * not like in many ways (a protocol_version alert, another alert, a reset,
 * a plain close), so this is tried whatever the failure looked like. True
 * when the failure is explained (a finding was added). */
static bool
probe_speaks_legacy(struct probe *p, bool starttls, const char *failure)
{
	struct client *c = probe_client_new(
	    p, starttls ? CLIENT_TLS_STARTTLS : CLIENT_TLS_IMPLICIT, true, "which TLS version?");
	const struct client_tls_info *t = client_tls_info(c);
	bool yes = false;

	if (probe_connect(p, c) == 0) {
		if (starttls)
			yes = client_greeting(c) == 0 && client_ehlo(c) == 0 &&
			    client_starttls(c) == 0;
		else
			yes = client_greeting(c) == 0 || client_is_tls(c);
	}
	yes = yes && client_is_tls(c);
	if (yes && t->version_num < TLS1_2_VERSION) {
		probe_tls_done(p, c, true);
		probe_add(p, "tls-version-too-old",
		    "the handshake with a TLS 1.2 floor failed (%s); one allowing older versions "
		    "succeeds with %s",
		    failure, t->version);
	} else if (yes) {
		/* TLS 1.2 or later, but only with what security level 0 allows:
		 * weak ciphers, keys or signatures, not the version */
		probe_tls_done(p, c, true);
		probe_add(p, "tls-handshake-failed",
		    "the handshake failed (%s); it succeeds only at OpenSSL security level 0 "
		    "(%s, %s): the server's cipher suites, key or signature algorithm are too weak "
		    "for current clients",
		    failure, t->version, t->cipher);
	}
	client_quit(c);
	client_free(c);
	return yes;
}

/* A failed TLS handshake (implicit or after STARTTLS): find out why. */
static void
probe_tls_failed(struct probe *p, struct client *c, bool starttls)
{
	const struct client_tls_info *t = client_tls_info(c);
	const struct client_error *e = client_error(c);
	char line[CLIENT_REPLY_LINE_MAX];

	const char *failure = t->fail_detail[0] ? t->fail_detail : e->detail;
	/* a port that answers in plaintext gives "not TLS"; one that waits
	 * for a greeting gives a timeout: asking for plaintext SMTP first
	 * costs no extra wait for an old TLS server, which refuses at once */
	bool plain_first = t->fail == CLIENT_TLS_FAIL_NOT_TLS || e->kind == CLIENT_E_TIMEOUT;
	bool may_be_plain =
	    !starttls && (plain_first || e->kind == CLIENT_E_CLOSED || e->kind == CLIENT_E_RESET);
	char failure_copy[sizeof(t->fail_detail) + 64];

	/* the next connections reuse nothing of c, but its error text is
	 * quoted after them */
	snprintf(failure_copy, sizeof(failure_copy), "%s", failure);
	if (!plain_first && probe_speaks_legacy(p, starttls, failure_copy))
		return;
	if (may_be_plain && probe_speaks_plain(p, line, sizeof(line))) {
		probe_add(p, "tls-mode-mismatch",
		    "implicit TLS failed (%s); the port speaks plaintext SMTP: \"%s\"; use "
		    "--starttls (or port 465 for implicit TLS)",
		    failure_copy, line);
		return;
	}
	if (plain_first && t->fail != CLIENT_TLS_FAIL_NOT_TLS &&
	    probe_speaks_legacy(p, starttls, failure_copy))
		return;
	if (t->fail == CLIENT_TLS_FAIL_VERSION)
		probe_add(p, "tls-version-too-old", "%s", e->detail);
	else
		probe_add(p, "tls-handshake-failed", "%s", e->detail);
}

/* --- authentication ------------------------------------------------------------------ */

static void
probe_auth_record(struct probe *p, const char *mech, bool ok, const struct client *c)
{
	json_array_append_new(p->auth,
	    json_pack("{s:s, s:s, s:s}", "mechanism", mech, "result", ok ? "ok" : "failed", "reply",
	        client_reply(c)->line));
}

/* AUTH with 454 retried (bounded, exponential); 0 ok, -1 failed (the caller
 * adds the finding). *invalid_r: the server said 535. A success after a 454
 * is still a warning: real clients often give up at the first 454, and a
 * back-end that fails now and then fails some logins. */
static int
probe_auth_one(struct probe *p, struct client *c, const char *mech, bool *invalid_r)
{
	const struct probe_opts *o = p->o;
	unsigned wait = o->backoff_ms ? o->backoff_ms : PROBE_BACKOFF_MS;
	char first[CLIENT_REPLY_LINE_MAX] = "";

	*invalid_r = false;
	for (int try = 1;; try++) {
		if (client_auth(c, mech, o->user, o->secret, o->secretlen) == 0) {
			probe_auth_record(p, mech, true, c);
			if (try > 1)
				probe_add_sev(p, "auth-temporary-failure", FINDING_WARNING,
				    "AUTH %s answered \"%s\" %d time%s, then succeeded on try %d of "
				    "%d",
				    mech, first, try - 1, try == 2 ? "" : "s", try,
				    PROBE_TRIES_MAX);
			return 0;
		}
		/* a 454 for too many attempts is not retried: retries keep the lock on */
		if (client_error(c)->kind == CLIENT_E_REPLY && client_reply(c)->code == 454 &&
		    try < PROBE_TRIES_MAX &&
		    strcmp(reply_map_find(454, client_reply(c)->enh, "AUTH", client_reply(c)->text),
		        "auth-too-many-attempts") != 0) {
			if (try == 1)
				snprintf(first, sizeof(first), "%s", client_reply(c)->line);
			client_transcript_addf(&p->t, CLIENT_T_INFO,
			    "454 is temporary: retrying in %u ms (try %d of %d)", wait, try + 1,
			    PROBE_TRIES_MAX);
			probe_sleep_ms(wait);
			wait *= 2;
			continue;
		}
		break;
	}
	probe_auth_record(p, mech, false, c);
	*invalid_r = client_reply(c)->code == 535;
	return -1;
}

/* The mechanisms to try: the chosen one, or each offered one we know
 * (strongest first; the OAuth ones only when chosen: they need a token). */
static size_t
probe_auth_mechs(struct probe *p, const struct client_caps *k, const char **mechs, size_t max)
{
	size_t n = 0;

	if (p->o->mech != NULL) {
		mechs[n++] = p->o->mech;
		return n;
	}
	for (size_t i = 0; client_sasl_mechs[i] != NULL && n < max; i++) {
		if (!client_sasl_is_oauth(client_sasl_mechs[i]) &&
		    client_caps_has_mech(k, client_sasl_mechs[i]))
			mechs[n++] = client_sasl_mechs[i];
	}
	return n;
}

/* One further mechanism on a connection of its own. */
static void
probe_auth_extra(struct probe *p, const char *mech, const char *first_ok)
{
	struct client *c = probe_client_new(
	    p, p->mode == PROBE_MODE_TLS ? CLIENT_TLS_IMPLICIT : CLIENT_TLS_STARTTLS, false, mech);
	bool invalid;

	if (probe_connect(p, c) == 0 && client_greeting(c) == 0 && client_ehlo(c) == 0 &&
	    (p->mode == PROBE_MODE_TLS || p->mode == PROBE_MODE_PLAIN ||
	        (client_caps(c)->starttls && client_starttls(c) == 0 && client_ehlo(c) == 0))) {
		if (probe_auth_one(p, c, mech, &invalid) == -1) {
			const struct client_reply *r = client_reply(c);
			struct finding_reply fr;
			const char *id = reply_map_explain(r->code, r->enh, "AUTH", r->text, &fr);

			if (client_error(c)->kind == CLIENT_E_AUTH)
				id = "auth-server-proof-invalid";
			/* one mechanism failing where another works: a warning */
			if (client_error(c)->kind == CLIENT_E_AUTH && !findings_has(&p->f, id))
				findings_add_severity(&p->f, id, FINDING_WARNING,
				    "AUTH %s: %s (while %s worked)", mech, client_error(c)->detail,
				    first_ok);
			else if (id != NULL && !findings_has(&p->f, id))
				findings_add_reply(&p->f, id, &fr, FINDING_WARNING,
				    "AUTH %s: %s (while %s worked)", mech, r->text, first_ok);
		}
	}
	client_quit(c);
	client_free(c);
}

/* --- the test message ------------------------------------------------------------------ */

static char *
probe_message(const struct probe_opts *o, size_t *len_r)
{
	unsigned char rnd[12];
	char id[25], date[64];
	const char *at = strrchr(o->from, '@');
	time_t now = time(NULL);
	struct tm tm;
	char *msg = NULL;
	int n;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0x5a, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	gmtime_r(&now, &tm);
	/* RFC 5322 3.3, in English whatever the locale */
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {
	    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday],
	    tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	n = asprintf(&msg,
	    "From: <%s>\r\nTo: <%s>\r\nSubject: smtpgate probe test message\r\nDate: %s\r\n"
	    "Message-ID: <%s.probe@%s>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is a test message sent by smtpgate probe to check that %s:%s\r\n"
	    "accepts mail from <%s> to <%s>.\r\n",
	    o->from, o->to, date, id, at != NULL && at[1] ? at + 1 : "smtpgate.invalid", o->host,
	    o->port != NULL ? o->port : "", o->from, o->to);
	if (n < 0)
		abort();
	*len_r = (size_t)n;
	return msg;
}

static void
probe_send_message(struct probe *p, struct client *c)
{
	size_t len;
	char *msg = probe_message(p->o, &len);
	const char *stage = "MAIL";
	int rc;

	rc = client_mail(c, p->o->from, len, 0);
	if (rc == 0) {
		stage = "RCPT";
		rc = client_rcpt(c, p->o->to);
	}
	if (rc == 0) {
		stage = "DATA";
		rc = client_data(c, msg, len);
	}
	p->message = json_pack("{s:s, s:s, s:b, s:s, s:s}", "from", p->o->from, "to", p->o->to,
	    "accepted", rc == 0, "stage", rc == 0 ? "done" : stage, "reply", client_reply(c)->line);
	if (rc == -1)
		probe_client_finding(p, c, stage);
	free(msg);
}

/* --- one attempt ------------------------------------------------------------------------ */

static void
probe_greeting_failed(struct probe *p, struct client *c, bool tls)
{
	const struct client_error *e = client_error(c);
	char version[32];

	if (p->mode == PROBE_MODE_TLS && !tls && e->kind != CLIENT_E_REPLY) {
		probe_tls_failed(p, c, false);
		return;
	}
	if (p->mode != PROBE_MODE_TLS && e->kind == CLIENT_E_TIMEOUT && e->partial == 0) {
		/* silence: an implicit-TLS port waits for our ClientHello */
		if (probe_speaks_tls(p, version, sizeof(version))) {
			probe_add(p, "tls-mode-mismatch",
			    "no greeting within %d s in plaintext, but a %s handshake succeeds: the "
			    "port speaks implicit TLS; use --tls",
			    p->o->timeout_s, version);
			return;
		}
		probe_add(p, "greeting-timeout", "no greeting within %d s", p->o->timeout_s);
		return;
	}
	if (e->kind == CLIENT_E_TIMEOUT) {
		probe_add(p, "greeting-timeout",
		    "the greeting was still incomplete after %d s (%zu bytes received: a server "
		    "sending slowly or never ending its reply)",
		    p->o->timeout_s, e->partial);
		return;
	}
	probe_client_finding(p, c, "greeting");
}

static void
probe_note_irregular(struct probe *p, const struct client_reply *r)
{
	char names[128];

	if (r->flags != 0)
		probe_add(p, "reply-irregular", "%s in \"%s\"",
		    smtp_reply_flag_names(r->flags, names, sizeof(names)), r->line);
}

static void
probe_attempt(struct probe *p)
{
	const struct probe_opts *o = p->o;
	bool implicit = p->mode == PROBE_MODE_TLS;
	struct client *c = probe_client_new(
	    p, implicit ? CLIENT_TLS_IMPLICIT : CLIENT_TLS_NONE, false, probe_mode_name(p->mode));
	const struct client_caps *k;
	const char *mechs[16];
	size_t nmechs = 0;
	bool tls = false, invalid = false;
	int ok_index = -1;

	if (probe_connect(p, c) == -1) {
		probe_client_finding(p, c, "connect");
		goto out;
	}
	if (client_greeting(c) == -1) {
		tls = client_is_tls(c);
		if (tls)
			probe_tls_done(p, c, false);
		/* free the server (s_server serves one connection at a time)
		 * before a second connection confirms the diagnosis */
		client_disconnect(c);
		probe_greeting_failed(p, c, tls);
		goto out;
	}
	snprintf(p->banner, sizeof(p->banner), "%s", client_reply(c)->line);
	probe_note_irregular(p, client_reply(c));
	if (implicit) {
		tls = true;
		probe_tls_done(p, c, false);
	}
	if (client_ehlo(c) == -1) {
		probe_client_finding(p, c, "EHLO");
		goto out;
	}
	probe_note_irregular(p, client_reply(c));
	k = client_caps(c);
	if (!tls) {
		p->caps_before = probe_caps_json(k);
		if (k->auth)
			probe_add(p, "auth-offered-cleartext",
			    "AUTH %s is offered before TLS (in plaintext)",
			    k->nmechs ? k->mechs[0] : "");
		if (p->mode == PROBE_MODE_STARTTLS || p->mode == PROBE_MODE_STARTTLS_OPT) {
			if (!k->starttls) {
				probe_add_sev(p, "starttls-not-offered",
				    p->mode == PROBE_MODE_STARTTLS ? FINDING_ERROR
				                                   : FINDING_WARNING,
				    "the EHLO reply has no STARTTLS");
				if (p->mode == PROBE_MODE_STARTTLS)
					goto quit;
			} else if (client_starttls(c) == -1) {
				client_disconnect(c);
				if (client_error(c)->kind == CLIENT_E_REPLY)
					probe_client_finding(p, c, "STARTTLS");
				else
					probe_tls_failed(p, c, true);
				goto out;
			} else {
				tls = true;
				probe_tls_done(p, c, false);
				if (client_ehlo(c) == -1) {
					probe_client_finding(p, c, "EHLO");
					goto out;
				}
				k = client_caps(c);
			}
		}
	}
	if (tls)
		p->caps_after = probe_caps_json(k);
	if (!k->auth) {
		bool want = o->user != NULL || !strcmp(p->port, "587") || !strcmp(p->port, "465");

		probe_add_sev(p, "auth-not-offered", want ? FINDING_ERROR : FINDING_INFO,
		    "the EHLO reply%s has no AUTH", tls ? " after TLS" : "");
	}
	if (o->user != NULL && k->auth) {
		if (!tls && p->mode != PROBE_MODE_PLAIN) {
			probe_add(p, "encryption-required",
			    "not sending credentials without TLS (use --plain to force it)");
			goto quit;
		}
		nmechs = probe_auth_mechs(p, k, mechs, sizeof(mechs) / sizeof(mechs[0]));
		if (nmechs == 0) {
			probe_add(p, "auth-mechanism-unsupported",
			    "none of the offered mechanisms is one this client runs");
			goto quit;
		}
		if (o->mech != NULL && !client_caps_has_mech(k, o->mech)) {
			probe_add(p, "auth-mechanism-unsupported", "%s is not offered", o->mech);
			goto quit;
		}
		for (size_t i = 0; i < nmechs && ok_index < 0; i++) {
			if (probe_auth_one(p, c, mechs[i], &invalid) == 0) {
				ok_index = (int)i;
				break;
			}
			if (client_error(c)->kind == CLIENT_E_UNSUPPORTED)
				continue; /* e.g. -PLUS without channel binding data */
			probe_client_finding(p, c, "AUTH");
			/* a 535 means the credentials: other mechanisms would only
			 * count more failures against the account */
			if (invalid || client_error(c)->kind != CLIENT_E_REPLY)
				break;
		}
	}
	if (o->from != NULL && o->to != NULL)
		probe_send_message(p, c);
quit:
	client_quit(c);
	client_free(c);
	c = NULL;
	/* the further offered mechanisms, each on a connection of its own */
	if (ok_index >= 0 && o->mech == NULL) {
		for (size_t i = (size_t)ok_index + 1; i < nmechs; i++)
			probe_auth_extra(p, mechs[i], mechs[ok_index]);
	}
out:
	if (c != NULL) {
		client_quit(c);
		client_free(c);
	}
}

static void
probe_reset_attempt(struct probe *p)
{
	findings_free(&p->f);
	json_decref(p->tls);
	json_decref(p->caps_before);
	json_decref(p->caps_after);
	json_decref(p->message);
	json_decref(p->auth);
	p->tls = p->caps_before = p->caps_after = p->message = NULL;
	p->auth = json_array();
	p->banner[0] = '\0';
	p->retry = false;
}

int
probe_run(const struct probe_opts *o, FILE *out)
{
	struct probe p;
	unsigned wait = o->backoff_ms ? o->backoff_ms : PROBE_BACKOFF_MS;
	int status;

	memset(&p, 0, sizeof(p));
	p.o = o;
	client_transcript_init(&p.t);
	findings_init(&p.f);
	p.auth = json_array();
	p.mode = o->mode;
	if (o->port != NULL)
		snprintf(p.port, sizeof(p.port), "%s", o->port);
	else
		snprintf(p.port, sizeof(p.port), "%s", p.mode == PROBE_MODE_TLS ? "465" : "587");
	if (p.mode == PROBE_MODE_AUTO) {
		/* RFC 8314: 465 implicit TLS; 587 STARTTLS; 25 STARTTLS when offered */
		p.mode = !strcmp(p.port, "465") ? PROBE_MODE_TLS
		    : !strcmp(p.port, "25")     ? PROBE_MODE_STARTTLS_OPT
		                                : PROBE_MODE_STARTTLS;
	}
	if (probe_resolve(&p) == 0) {
		for (int try = 1; try <= PROBE_TRIES_MAX; try++) {
			probe_attempt(&p);
			if (!p.retry || p.local_error || try == PROBE_TRIES_MAX)
				break;
			client_transcript_addf(&p.t, CLIENT_T_INFO,
			    "temporary failure: retrying in %u ms (try %d of %d)", wait, try + 1,
			    PROBE_TRIES_MAX);
			probe_sleep_ms(wait);
			wait *= 2;
			probe_reset_attempt(&p);
		}
	}
	if (p.local_error) {
		status = 2;
	} else {
		if (o->json)
			probe_report_json(&p, out);
		else
			probe_report_text(&p, out);
		status = findings_has_error(&p.f) ? 1 : 0;
	}
	findings_free(&p.f);
	client_transcript_free(&p.t);
	json_decref(p.tls);
	json_decref(p.caps_before);
	json_decref(p.caps_after);
	json_decref(p.auth);
	json_decref(p.message);
	return status;
}
