/*
 * audit: the rules of `smtpgate audit`, one finding id per rule (kb_audit.c
 * holds the cause and fix of each, doc/findings.md lists them).
 *
 * Each rule looks at the loaded struct conf and, for certificates and
 * permissions, at the files it names: read-only, nothing is created. TLS
 * cipher lists are judged by asking OpenSSL which suites a server context
 * with the configured min_version and list would really negotiate
 * (SSL_get1_supported_ciphers, which also applies the security level), then
 * inspecting each suite's cipher, MAC, key exchange and authentication.
 *
 * A listener is "reachable from other hosts" unless it is bound to a
 * loopback address; limits and the unauthenticated-MX note apply only then.
 */
#include "diag/audit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "diag/audit_chain.h"
#include "diag/audit_cluster.h"
#include "diag/audit_pgsql.h"
#include "diag/audit_user.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define AUDIT_LIST_ITEMS_MAX 6 /* names shown in one finding's evidence */

/* A short comma-separated list for evidence: the first few items, then a
 * count of the rest. */
struct audit_list {
	char s[512];
	size_t len;
	unsigned n;
};

static void
audit_list_add(struct audit_list *l, const char *item)
{
	int r;

	if (l->n++ >= AUDIT_LIST_ITEMS_MAX)
		return;
	r = snprintf(l->s + l->len, sizeof(l->s) - l->len, "%s%s", l->len ? ", " : "", item);
	if (r < 0 || (size_t)r >= sizeof(l->s) - l->len)
		l->len = sizeof(l->s) - 1; /* truncated: keep what fits */
	else
		l->len += (size_t)r;
}

/* The list as text; valid until l changes. */
static const char *
audit_list_str(struct audit_list *l)
{
	if (l->n > AUDIT_LIST_ITEMS_MAX && l->len < sizeof(l->s) - 32)
		snprintf(l->s + l->len, sizeof(l->s) - l->len, " and %u more",
		    l->n - AUDIT_LIST_ITEMS_MAX);
	return l->s;
}

static bool
audit_uses_tls(const struct conf *c)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].tls != CONF_TLS_NONE)
			return true;
	}
	return false;
}

/* Not a loopback address: other hosts may connect. */
static bool
audit_addr_is_exposed(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		return (ntohl(sin->sin_addr.s_addr) >> 24) != 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return false;
		return !(IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127);
	}
	return true;
}

/* A listener not bound to a loopback address. */
static bool
audit_listen_is_exposed(const struct conf_listen *l)
{
	return audit_addr_is_exposed(&l->addr);
}

/* " (all addresses)" for a wildcard listener, else "". */
static const char *
audit_listen_wildcard(const struct conf_listen *l)
{
	if (l->addr.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;

		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			return " (all addresses)";
	} else if (l->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;

		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			return " (all addresses)";
	}
	return "";
}

static const char *
audit_auth_name(enum conf_auth_mode a)
{
	return a == CONF_AUTH_REQUIRED ? "required" : a == CONF_AUTH_OPTIONAL ? "optional" : "off";
}

/* Why a negotiable suite gives no real protection, or NULL. */
static const char *
audit_cipher_insecure(const SSL_CIPHER *ci)
{
	int bits = SSL_CIPHER_get_bits(ci, NULL);

	switch (SSL_CIPHER_get_cipher_nid(ci)) {
	case NID_undef:
		return "no encryption";
	case NID_rc4:
	case NID_rc4_40:
	case NID_rc4_hmac_md5:
		return "RC4";
	case NID_des_cbc:
	case NID_des_ede3_cbc:
	case NID_des_ede_cbc:
		return "DES/3DES";
	case NID_idea_cbc:
	case NID_rc2_cbc:
	case NID_rc2_40_cbc:
		return "64-bit block cipher";
	default:
		break;
	}
	if (SSL_CIPHER_get_auth_nid(ci) == NID_auth_null)
		return "anonymous, no server authentication";
	if (SSL_CIPHER_get_digest_nid(ci) == NID_md5)
		return "MD5 MAC";
	if (bits < 128)
		return "export-grade key";
	return NULL;
}

/* [tls] ciphers: insecure suites (error) and non-AEAD or RSA key exchange
 * suites (warning), as a server with this configuration would negotiate. */
static void
audit_ciphers(const struct conf *c, struct findings *f)
{
	struct audit_list bad = {.len = 0}, weak = {.len = 0};
	STACK_OF(SSL_CIPHER) *sk = NULL;
	SSL_CTX *ctx;
	SSL *ssl = NULL;

	if (c->tls_ciphers == NULL)
		return; /* the built-in default: ECDHE with AEAD only */
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		goto out;
	SSL_CTX_set_min_proto_version(ctx, c->tls_min_version);
	if (SSL_CTX_set_cipher_list(ctx, c->tls_ciphers) != 1) {
		findings_add(f, "tls-ciphers-invalid",
		    "[tls] ciphers = %s: OpenSSL matches no suite", c->tls_ciphers);
		goto out;
	}
	ssl = SSL_new(ctx);
	if (ssl == NULL || (sk = SSL_get1_supported_ciphers(ssl)) == NULL)
		goto out;
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
		const SSL_CIPHER *ci = sk_SSL_CIPHER_value(sk, i);
		const char *why = audit_cipher_insecure(ci);
		bool cbc = !SSL_CIPHER_is_aead(ci);
		bool rsa_kx = SSL_CIPHER_get_kx_nid(ci) == NID_kx_rsa;
		char item[128];

		if (why != NULL) {
			snprintf(item, sizeof(item), "%s (%s)", SSL_CIPHER_get_name(ci), why);
			audit_list_add(&bad, item);
		} else if (cbc || rsa_kx) {
			snprintf(item, sizeof(item), "%s (%s%s%s)", SSL_CIPHER_get_name(ci),
			    rsa_kx ? "RSA key exchange" : "", rsa_kx && cbc ? ", " : "",
			    cbc ? "CBC, not AEAD" : "");
			audit_list_add(&weak, item);
		}
	}
	if (bad.n > 0)
		findings_add(f, "tls-ciphers-insecure",
		    "[tls] ciphers = %s enables %u such suite%s: %s", c->tls_ciphers, bad.n,
		    bad.n == 1 ? "" : "s", audit_list_str(&bad));
	if (weak.n > 0)
		findings_add(f, "tls-ciphers-weak",
		    "[tls] ciphers = %s enables %u such suite%s: %s", c->tls_ciphers, weak.n,
		    weak.n == 1 ? "" : "s", audit_list_str(&weak));
out:
	sk_SSL_CIPHER_free(sk);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

/* Whether a session without TLS offers mechanism name: the session offers
 * only those that send no password in the clear and bind no channel
 * (SCRAM-* without -PLUS, CRAM-MD5), as sasl_mech_flags() says there. */
static bool
audit_mech_works_without_tls(const char *name)
{
	size_t n = strlen(name);

	if (n > 5 && strcasecmp(name + n - 5, "-PLUS") == 0)
		return false;
	return strncasecmp(name, "SCRAM-", 6) == 0 || strcasecmp(name, "CRAM-MD5") == 0;
}

/* A tls = none listener with auth: either AUTH is never offered (nothing
 * configured works without TLS) or it is offered on a cleartext session. */
static void
audit_listen_auth_without_tls(const struct conf *c, const struct conf_listen *l, struct findings *f)
{
	struct audit_list usable = {.len = 0};

	for (size_t i = 0; i < c->nmechanisms; i++) {
		if (audit_mech_works_without_tls(c->mechanisms[i]))
			audit_list_add(&usable, c->mechanisms[i]);
	}
	if (usable.n > 0)
		findings_add_severity(f, "listen-auth-without-tls", FINDING_WARNING,
		    "[listen %s] (%s:%d): tls = none with auth = %s: AUTH offered without TLS "
		    "with %s; the session and the mail are not encrypted",
		    l->name, c->path, l->line, audit_auth_name(l->auth), audit_list_str(&usable));
	else
		findings_add_severity(f, "listen-auth-without-tls",
		    l->auth == CONF_AUTH_REQUIRED ? FINDING_ERROR : FINDING_WARNING,
		    "[listen %s] (%s:%d): tls = none with auth = %s: no mechanism of [auth] "
		    "mechanisms works without TLS, so AUTH is not offered%s",
		    l->name, c->path, l->line, audit_auth_name(l->auth),
		    l->auth == CONF_AUTH_REQUIRED ? " and the listener accepts no mail"
		                                  : " and only unauthenticated mail is accepted");
}

/* proxy_protocol = yes: whoever is in proxy_from may claim any client
 * address, so a network wider than AUDIT_PROXY_FROM_V4_MIN (IPv4) or
 * AUDIT_PROXY_FROM_V6_MIN (IPv6) is not "the load balancers". */
#define AUDIT_PROXY_FROM_V4_MIN 16
#define AUDIT_PROXY_FROM_V6_MIN 48

static void
audit_listen_proxy_from(const struct conf *c, const struct conf_listen *l, struct findings *f)
{
	struct audit_list wide = {0};

	for (size_t i = 0; i < l->nproxy_from; i++) {
		const struct conf_cidr *n = &l->proxy_from[i];
		char addr[INET6_ADDRSTRLEN], item[INET6_ADDRSTRLEN + 8];

		if (n->prefix >=
		    (n->family == AF_INET ? AUDIT_PROXY_FROM_V4_MIN : AUDIT_PROXY_FROM_V6_MIN))
			continue;
		inet_ntop(n->family, n->addr, addr, sizeof(addr));
		snprintf(item, sizeof(item), "%s/%u", addr, n->prefix);
		audit_list_add(&wide, item);
	}
	if (wide.n > 0)
		findings_add(f, "listen-proxy-from-wide",
		    "[listen %s] (%s:%d): proxy_protocol = yes with proxy_from %s", l->name,
		    c->path, l->line, audit_list_str(&wide));
}

static void
audit_listeners(const struct conf *c, struct findings *f)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		const struct conf_listen *l = &c->listens[i];

		if (l->tls == CONF_TLS_NONE && l->auth != CONF_AUTH_OFF)
			audit_listen_auth_without_tls(c, l, f);
		/* with auth = required relay = local is moot: only logged-in
		 * sessions send, and they may relay anywhere */
		if (l->relay == CONF_RELAY_LOCAL && l->auth != CONF_AUTH_REQUIRED &&
		    c->nlocal_domains == 0)
			findings_add(f, "relay-local-no-domains",
			    "[listen %s] (%s:%d): relay = local with auth = %s, and [domains] local "
			    "is empty",
			    l->name, c->path, l->line, audit_auth_name(l->auth));
		if (l->relay == CONF_RELAY_LOCAL && l->auth == CONF_AUTH_OFF &&
		    audit_listen_is_exposed(l))
			findings_add(f, "relay-unauthenticated-mx",
			    "[listen %s] (%s:%d): address %s%s, auth = off, relay = local (%zu local "
			    "domain%s)",
			    l->name, c->path, l->line, l->address, audit_listen_wildcard(l),
			    c->nlocal_domains, c->nlocal_domains == 1 ? "" : "s");
		if (l->proxy_protocol)
			audit_listen_proxy_from(c, l, f);
	}
}

static void
audit_mechanisms(const struct conf *c, struct findings *f)
{
	for (size_t i = 0; i < c->nmechanisms; i++) {
		if (strcasecmp(c->mechanisms[i], "CRAM-MD5") == 0)
			findings_add(f, "auth-cram-md5-enabled", "[auth] mechanisms includes %s",
			    c->mechanisms[i]);
	}
}

static void
audit_limits(const struct conf *c, struct findings *f)
{
	const struct conf_listen *l = NULL;

	for (size_t i = 0; i < c->nlistens && l == NULL; i++) {
		if (audit_listen_is_exposed(&c->listens[i]))
			l = &c->listens[i];
	}
	if (l == NULL)
		return;
	if (c->timeout_command > AUDIT_TIMEOUT_COMMAND_MAX ||
	    c->timeout_data > AUDIT_TIMEOUT_DATA_MAX)
		findings_add(f, "limits-timeout-too-long",
		    "[limits] timeout_command = %us, timeout_data = %us; [listen %s] is on %s%s",
		    c->timeout_command, c->timeout_data, l->name, l->address,
		    audit_listen_wildcard(l));
	if (c->message_size > AUDIT_MESSAGE_SIZE_MAX)
		findings_add(f, "limits-message-size-too-large",
		    "[limits] message_size = %lluM; [listen %s] is on %s%s",
		    (unsigned long long)(c->message_size >> 20), l->name, l->address,
		    audit_listen_wildcard(l));
	if (c->recipients > AUDIT_RECIPIENTS_MAX)
		findings_add(f, "limits-recipients-too-many",
		    "[limits] recipients = %u; [listen %s] is on %s%s", c->recipients, l->name,
		    l->address, audit_listen_wildcard(l));
	if (c->errors > AUDIT_ERRORS_MAX)
		findings_add(f, "limits-errors-too-many",
		    "[limits] errors = %u; [listen %s] is on %s%s", c->errors, l->name, l->address,
		    audit_listen_wildcard(l));
}

static bool
audit_allowed(const struct conf *c, int family, const void *addr)
{
	for (size_t i = 0; i < c->nallow; i++) {
		if (conf_cidr_contains(&c->allow[i], family, addr))
			return true;
	}
	return false;
}

/* Adds the text form of addr (family) to l when no [limits] allow covers it. */
static void
audit_bannable_add(const struct conf *c, int family, const void *addr, struct audit_list *l)
{
	char text[INET6_ADDRSTRLEN];

	if (audit_allowed(c, family, addr) || inet_ntop(family, addr, text, sizeof(text)) == NULL)
		return;
	if (strstr(audit_list_str(l), text) == NULL)
		audit_list_add(l, text);
}

/*
 * Bans must not hit the server's own addresses: a local program (webmail,
 * monitoring, a cron job) that submits through the public name connects
 * from the host's own address, and its failed logins would ban the host.
 * Loopback is covered by the default allow list; this warns when an allow
 * list leaves loopback or one of the listeners' own addresses bannable
 * (the addresses of wildcard listeners are not known from the config).
 */
static void
audit_bans(const struct conf *c, struct findings *f)
{
	static const unsigned char lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};
	struct audit_list own;

	if (!audit_allowed(c, AF_INET, lo4) || !audit_allowed(c, AF_INET6, lo6))
		findings_add(f, "limits-loopback-bannable", "[limits] allow = %s",
		    c->nallow == 0 ? "(empty)" : "without 127.0.0.1 or ::1");
	memset(&own, 0, sizeof(own));
	for (size_t i = 0; i < c->nlistens; i++) {
		const struct conf_listen *l = &c->listens[i];

		if (l->addr.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;

			/* a wildcard listener's addresses are the host's: not known here */
			if (sin->sin_addr.s_addr != htonl(INADDR_ANY) &&
			    (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
				audit_bannable_add(c, AF_INET, &sin->sin_addr, &own);
		} else if (l->addr.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&l->addr;

			if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) &&
			    !IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
				audit_bannable_add(c, AF_INET6, &s6->sin6_addr, &own);
		}
	}
	if (own.n > 0)
		findings_add(f, "limits-own-address-bannable",
		    "the server's own address%s %s %s not in [limits] allow", own.n > 1 ? "es" : "",
		    audit_list_str(&own), own.n > 1 ? "are" : "is");
}

/* Never prompts for a passphrase: an encrypted key fails to load. */
static int
audit_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static void
audit_time_str(const ASN1_TIME *t, char *out, size_t n)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, n, "(unreadable time)");
}

static void
audit_subject(X509 *x, char *out, size_t n)
{
	if (X509_NAME_oneline(X509_get_subject_name(x), out, (int)n) == NULL)
		snprintf(out, n, "(no subject)");
}

/* Expiry of every certificate of a chain file. */
static void
audit_cert_validity(const struct conf *c, const struct conf_cert *cc, X509 *x, size_t idx,
    time_t now, struct findings *f)
{
	time_t soon = now + (time_t)AUDIT_CERT_EXPIRY_WARN_DAYS * 86400;
	const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
	char subj[256], when[64];
	const char *what = idx == 0 ? "certificate" : "intermediate";

	audit_subject(x, subj, sizeof(subj));
	if (X509_cmp_time(na, &now) < 0) {
		audit_time_str(na, when, sizeof(when));
		findings_add(f, "tls-cert-expired", "%s (%s:%d): %s %s expired on %s", cc->cert,
		    c->path, cc->line, what, subj, when);
	} else if (X509_cmp_time(nb, &now) > 0) {
		audit_time_str(nb, when, sizeof(when));
		findings_add(f, "tls-cert-not-yet-valid", "%s (%s:%d): %s %s is valid from %s",
		    cc->cert, c->path, cc->line, what, subj, when);
	} else if (X509_cmp_time(na, &soon) < 0) {
		int days = 0, secs = 0;
		ASN1_TIME *t = ASN1_TIME_set(NULL, now);

		if (t != NULL)
			(void)ASN1_TIME_diff(&days, &secs, t, na);
		ASN1_TIME_free(t);
		audit_time_str(na, when, sizeof(when));
		findings_add(f, "tls-cert-expiring-soon",
		    "%s (%s:%d): %s %s expires on %s (in %d day%s)", cc->cert, c->path, cc->line,
		    what, subj, when, days, days == 1 ? "" : "s");
	}
}

/* The subjectAltName DNS names of x (or its subject when it has none). */
static void
audit_cert_names(X509 *x, struct audit_list *names)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char item[300];

		if (g->type != GEN_DNS)
			continue;
		snprintf(item, sizeof(item), "%.*s", ASN1_STRING_length(g->d.dNSName),
		    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		audit_list_add(names, item);
	}
	GENERAL_NAMES_free(gens);
	if (names->n == 0) {
		char subj[256];

		audit_subject(x, subj, sizeof(subj));
		audit_list_add(names, subj);
	}
}

/* The evidence is the sentence `serve` prints for the same problem. */
static void
audit_cert_problem(const struct conf *c, const struct conf_cert *cc, enum conf_cert_problem pr,
    int errnum, struct findings *f)
{
	char what[2400];

	conf_cert_describe(c, cc, pr, errnum, what, sizeof(what));
	findings_add(f,
	    pr == CONF_CERT_KEY_MISMATCH ? "tls-cert-key-mismatch" : "tls-cert-unreadable", "%s",
	    what);
}

/* The leaf's issuer is not in its cert file: fine when it is a root (the
 * server need not send it), an error when it is an intermediate. */
static void
audit_cert_issuer_missing(
    const struct conf *c, const struct conf_cert *cc, X509 *leaf, int ncerts, struct findings *f)
{
	char issuer[256], where[4200];

	if (X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, (int)sizeof(issuer)) == NULL)
		snprintf(issuer, sizeof(issuer), "(no issuer)");
	switch (audit_chain_find_issuer(cc->cert, leaf, where, sizeof(where))) {
	case AUDIT_CHAIN_ISSUER_ROOT:
		break;
	case AUDIT_CHAIN_ISSUER_INTERMEDIATE:
		findings_add(f, "tls-cert-chain-incomplete",
		    "%s (%s:%d): the certificate is issued by %s, an intermediate CA (found in %s) "
		    "that is not in the file (%d certificate%s in it)",
		    cc->cert, c->path, cc->line, issuer, where, ncerts, ncerts == 1 ? "" : "s");
		break;
	case AUDIT_CHAIN_ISSUER_PUBLISHED:
		findings_add(f, "tls-cert-chain-incomplete",
		    "%s (%s:%d): the certificate is issued by %s, which is not in the file "
		    "(%d certificate%s in it) and is not a trusted root here; the certificate "
		    "names its issuer's certificate at %s, as a public CA's intermediate does",
		    cc->cert, c->path, cc->line, issuer, ncerts, ncerts == 1 ? "" : "s", where);
		break;
	case AUDIT_CHAIN_ISSUER_UNKNOWN:
		findings_add(f, "tls-cert-issuer-unknown",
		    "%s (%s:%d): the certificate is issued by %s, which is neither in the file, "
		    "nor in a PEM file of %s, nor among this machine's trusted CAs",
		    cc->cert, c->path, cc->line, issuer, where);
		break;
	}
}

/* One cert/key pair. Sets *name_ok when the leaf is valid for hostname, and
 * fills names (once) with the names of the first leaf seen. */
static void
audit_cert_pair(const struct conf *c, const struct conf_cert *cc, time_t now, struct findings *f,
    bool *name_ok, struct audit_list *names)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	EVP_PKEY *key = NULL;
	X509 *x, *leaf;
	struct stat st;
	FILE *fp;

	if (chain == NULL)
		abort();
	fp = fopen(cc->cert, "r");
	if (fp == NULL) {
		audit_cert_problem(c, cc, CONF_CERT_CERT_UNREADABLE, errno, f);
		goto out;
	}
	while ((x = PEM_read_X509(fp, NULL, audit_no_passphrase_cb, NULL)) != NULL)
		sk_X509_push(chain, x);
	fclose(fp);
	ERR_clear_error();
	if (sk_X509_num(chain) == 0) {
		audit_cert_problem(c, cc, CONF_CERT_CERT_NO_PEM, 0, f);
		goto out;
	}
	leaf = sk_X509_value(chain, 0);

	for (int i = 0; i < sk_X509_num(chain); i++)
		audit_cert_validity(c, cc, sk_X509_value(chain, i), (size_t)i, now, f);

	if (X509_self_signed(leaf, 0) == 1) {
		char subj[256];

		audit_subject(leaf, subj, sizeof(subj));
		findings_add(f, "tls-cert-self-signed", "%s (%s:%d): %s is self-signed", cc->cert,
		    c->path, cc->line, subj);
	} else {
		bool found = false;

		for (int i = 1; i < sk_X509_num(chain) && !found; i++)
			found = X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK;
		if (!found)
			audit_cert_issuer_missing(c, cc, leaf, sk_X509_num(chain), f);
	}

	if (X509_check_host(leaf, c->hostname, 0, 0, NULL) == 1)
		*name_ok = true;
	else if (names->n == 0)
		audit_cert_names(leaf, names);

	fp = fopen(cc->key, "r");
	if (fp == NULL) {
		audit_cert_problem(c, cc, CONF_CERT_KEY_UNREADABLE, errno, f);
		goto out;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH))
		findings_add(f, "tls-key-readable-by-others", "%s (%s:%d): mode %04o", cc->key,
		    c->path, cc->line, (unsigned)(st.st_mode & 07777));
	key = PEM_read_PrivateKey(fp, NULL, audit_no_passphrase_cb, NULL);
	fclose(fp);
	ERR_clear_error();
	if (key == NULL) {
		audit_cert_problem(c, cc, CONF_CERT_KEY_NO_PEM, 0, f);
		goto out;
	}
	if (X509_check_private_key(leaf, key) != 1)
		audit_cert_problem(c, cc, CONF_CERT_KEY_MISMATCH, 0, f);
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
}

static void
audit_certs(const struct conf *c, time_t now, struct findings *f)
{
	struct audit_list names = {.len = 0};
	bool name_ok = false;

	for (size_t i = 0; i < c->ncerts; i++)
		audit_cert_pair(c, &c->certs[i], now, f, &name_ok, &names);
	if (!name_ok && names.n > 0)
		findings_add(f, "tls-cert-name-mismatch",
		    "[server] hostname = %s; the first certificate is for %s", c->hostname,
		    audit_list_str(&names));
}

static void
audit_credential_files(const struct conf *c, struct findings *f)
{
	const char *passwd = conf_backend_file(c);
	struct stat st;

	if (passwd != NULL && stat(passwd, &st) == 0 && (st.st_mode & 077))
		findings_add(f, "auth-passwd-file-permissions",
		    "%s ([auth] backend): mode %04o, %s by %s", passwd,
		    (unsigned)(st.st_mode & 07777), (st.st_mode & 022) ? "writable" : "readable",
		    (st.st_mode & 007) ? "other users" : "the group");
	if (c->oauth_jwks != NULL && strncmp(c->oauth_jwks, "https://", 8) != 0 &&
	    stat(c->oauth_jwks, &st) == 0 && (st.st_mode & S_IWOTH))
		findings_add(f, "oauth-jwks-file-writable",
		    "%s ([oauth] jwks, %s:%d): mode %04o, writable by every user", c->oauth_jwks,
		    c->path, c->oauth_line, (unsigned)(st.st_mode & 07777));
}

/* Whether the folder that would hold path lets this user create it. */
static bool
audit_parent_is_writable(const char *path, char **parent_r)
{
	*parent_r = fs_dirname(path);
	return access(*parent_r, W_OK | X_OK) == 0;
}

static void
audit_spool(const struct conf *c, struct findings *f)
{
	struct stat st;
	char *parent = NULL;

	if (stat(c->spool, &st) == -1) {
		int e = errno;

		if (e != ENOENT)
			findings_add(f, "spool-not-writable", "[server] spool %s: %s", c->spool,
			    strerror(e));
		else if (!audit_parent_is_writable(c->spool, &parent))
			findings_add(f, "spool-not-writable",
			    "[server] spool %s does not exist and %s is not writable: %s", c->spool,
			    parent, strerror(errno));
		free(parent);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		findings_add(
		    f, "spool-not-writable", "[server] spool %s is not a folder", c->spool);
		return;
	}
	if (access(c->spool, W_OK | X_OK) == -1)
		findings_add(f, "spool-not-writable", "[server] spool %s: %s (uid %u)", c->spool,
		    strerror(errno), (unsigned)geteuid());
	if (st.st_mode & 077)
		findings_add(f, "spool-permissions-open", "[server] spool %s: mode %04o", c->spool,
		    (unsigned)(st.st_mode & 07777));
	/* serve gives the spool to [server] user when started as root */
	if (st.st_uid != audit_user_spool_owner(c) && st.st_uid != geteuid())
		findings_add(f, "spool-owner-mismatch",
		    "[server] spool %s is owned by uid %u; the audit runs as uid %u", c->spool,
		    (unsigned)st.st_uid, (unsigned)geteuid());
}

static void
audit_log(const struct conf *c, struct findings *f)
{
	struct stat st;
	char *parent = NULL;

	if (c->log == NULL || strcmp(c->log, "stderr") == 0)
		return;
	if (stat(c->log, &st) == -1) {
		if (errno != ENOENT)
			findings_add(f, "log-file-not-writable", "[server] log %s: %s", c->log,
			    strerror(errno));
		else if (!audit_parent_is_writable(c->log, &parent))
			findings_add(f, "log-file-not-writable",
			    "[server] log %s does not exist and %s is not writable: %s", c->log,
			    parent, strerror(errno));
		free(parent);
		return;
	}
	if (access(c->log, W_OK) == -1)
		findings_add(f, "log-file-not-writable", "[server] log %s: %s (uid %u)", c->log,
		    strerror(errno), (unsigned)geteuid());
	if (S_ISREG(st.st_mode) && (st.st_mode & S_IROTH))
		findings_add(f, "log-file-world-readable", "[server] log %s: mode %04o", c->log,
		    (unsigned)(st.st_mode & 07777));
}

/* [admin] without token_file: whoever can connect may lift bans and quota
 * holds and read the held users; from other hosts that is an error. */
static void
audit_admin(const struct conf *c, struct findings *f)
{
	if (!c->admin || c->admin_token != NULL)
		return;
	if (audit_addr_is_exposed(&c->admin_addr))
		findings_add_severity(f, "admin-unauthenticated", FINDING_ERROR,
		    "[admin] (%s:%d) address = %s is reachable from other hosts and has no "
		    "token_file",
		    c->path, c->admin_line, c->admin_address);
	else
		findings_add(f, "admin-unauthenticated",
		    "[admin] (%s:%d) address = %s has no token_file: any local user can use the API",
		    c->path, c->admin_line, c->admin_address);
}

/* [relay] and [route DOMAIN]: TLS that checks nothing. */
static void
audit_relay(const struct conf *c, struct findings *f)
{
	for (size_t i = 0; i <= c->nroutes; i++) {
		const struct conf_route *r = i < c->nroutes ? c->routes[i] : c->relay;
		char sec[300];

		if (r == NULL || r->kind == CONF_ROUTE_MX || r->tls == CONF_TLS_NONE ||
		    r->verify != CONF_VERIFY_NONE)
			continue;
		snprintf(sec, sizeof(sec), "[%s%s]", r->domain != NULL ? "route " : "relay",
		    r->domain != NULL ? r->domain : "");
		if (r->auth != NULL)
			findings_add_severity(f, "relay-verify-none", FINDING_ERROR,
			    "%s verify = none with auth = %s", sec, r->auth);
		else
			findings_add(f, "relay-verify-none", "%s verify = none", sec);
	}
}

/* [dkim DOMAIN]: RSA keys below 2048 bits (RFC 8301 3.2: signers SHOULD
 * use at least 2048; 1024 is the floor the config accepts). */
static void
audit_dkim(const struct conf *c, struct findings *f)
{
	for (size_t i = 0; i < c->ndkims; i++) {
		const struct conf_dkim *d = c->dkims[i];

		if (d->alg == CONF_DKIM_RSA_SHA256 && d->key_bits < CONF_DKIM_RSA_GOOD)
			findings_add(f, "dkim-key-short",
			    "[dkim %s] (%s:%d) key = %s is an RSA key of %d bits (selector %s)",
			    d->domain, c->path, d->key_line, d->key_path, d->key_bits, d->selector);
	}
}

void
audit_conf(const struct conf *c, time_t now, struct findings *f)
{
	if (audit_uses_tls(c)) {
		audit_ciphers(c, f);
		audit_certs(c, now, f);
	}
	audit_listeners(c, f);
	audit_mechanisms(c, f);
	audit_limits(c, f);
	audit_bans(c, f);
	audit_credential_files(c, f);
	audit_pgsql(c, f);
	audit_cluster(c, now, f);
	audit_spool(c, f);
	audit_log(c, f);
	audit_relay(c, f);
	audit_admin(c, f);
	audit_dkim(c, f);
	audit_user(c, f);
}

int
audit_check_print(const struct conf *c, FILE *out)
{
	struct findings f;
	int rc;

	findings_init(&f);
	audit_conf(c, time(NULL), &f);
	if (f.n > 0)
		findings_print(out, &f);
	rc = findings_has_error(&f) ? -1 : 0;
	findings_free(&f);
	return rc;
}
