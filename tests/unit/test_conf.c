/* Unit tests for conf: values, defaults and errors that name file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/xalloc.h"

static struct conf *
parse(const char *text, char *err, size_t errlen)
{
	char *copy = xstrdup(text);
	struct conf *c;

	err[0] = '\0';
	c = conf_parse_text("/etc/smtpgate/smtpgate.conf", copy, err, errlen);
	free(copy);
	return c;
}

static const char good[] = "; example\n"
                           "[server]\n"
                           "hostname = mail.example.test   ; inline comment\n"
                           "spool = spool\n"
                           "threads = 4\n"
                           "\n"
                           "[listen submission]\n"
                           "address = 127.0.0.1:587\n"
                           "tls = starttls\n"
                           "auth = required\n"
                           "relay = authenticated\n"
                           "[listen smtps]\n"
                           "address = [::1]:465\n"
                           "tls = implicit\n"
                           "[listen mx]\n"
                           "address = 127.0.0.1:25\n"
                           "tls = none\n"
                           "auth = off\n"
                           "relay = local\n"
                           "[tls]\n"
                           "cert = a.pem\n"
                           "key = a.key\n"
                           "cert = /abs/b.pem\n"
                           "key = b.key\n"
                           "min_version = 1.3\n"
                           "[auth]\n"
                           "mechanisms = plain LOGIN\n"
                           "backend = file:users\n"
                           "[domains]\n"
                           "local = Example.TEST other.test\n"
                           "[limits]\n"
                           "message_size = 10M\n"
                           "recipients = 200\n"
                           "timeout_command = 2m\n";

static void
test_good_config(void **state)
{
	char err[512];
	struct conf *c = parse(good, err, sizeof(err));

	assert_non_null(c);
	assert_string_equal(c->hostname, "mail.example.test");
	assert_string_equal(c->spool, "/etc/smtpgate/spool");
	assert_int_equal(c->threads, 4);
	assert_int_equal(c->nlistens, 3);
	assert_string_equal(c->listens[0].name, "submission");
	assert_int_equal(c->listens[0].tls, CONF_TLS_STARTTLS);
	assert_int_equal(c->listens[0].addr.ss_family, AF_INET);
	assert_int_equal(c->listens[1].tls, CONF_TLS_IMPLICIT);
	assert_int_equal(c->listens[1].auth, CONF_AUTH_REQUIRED); /* default */
	assert_int_equal(c->listens[1].addr.ss_family, AF_INET6);
	assert_int_equal(c->listens[2].relay, CONF_RELAY_LOCAL);
	assert_int_equal(c->ncerts, 2);
	assert_string_equal(c->certs[0].cert, "/etc/smtpgate/a.pem");
	assert_string_equal(c->certs[1].cert, "/abs/b.pem");
	assert_string_equal(c->certs[1].key, "/etc/smtpgate/b.key");
	assert_int_equal(c->tls_min_version, 0x0304);
	assert_int_equal(c->nmechanisms, 2);
	assert_string_equal(c->mechanisms[0], "PLAIN");
	assert_string_equal(conf_backend_file(c), "/etc/smtpgate/users");
	assert_true(conf_is_local_domain(c, "example.test", 12));
	assert_true(conf_is_local_domain(c, "OTHER.test", 10));
	assert_false(conf_is_local_domain(c, "example.tes", 11));
	assert_int_equal(c->message_size, 10 * 1024 * 1024);
	assert_int_equal(c->recipients, 200);
	assert_int_equal(c->timeout_command, 120);
	assert_int_equal(c->timeout_data, 600); /* default */
	conf_free(c);
}

static const struct {
	const char *text;
	const char *err; /* expected error message */
} bad[] = {
    {"[server]\nfoo = 1\n", "/etc/smtpgate/smtpgate.conf:2: unknown key \"foo\" in [server]"},
    {"[bogus]\n", "/etc/smtpgate/smtpgate.conf:1: unknown section [bogus]"},
    {"x = 1\n", "/etc/smtpgate/smtpgate.conf:1: key \"x\" outside any section"},
    {"[server]\nthreads = many\n",
        "/etc/smtpgate/smtpgate.conf:2: threads: expected a number from 1 to 256, got \"many\""},
    {"[listen]\n", "/etc/smtpgate/smtpgate.conf:1: [listen] needs a name: [listen submission]"},
    {"[listen a]\naddress = 127.0.0.1\n",
        "/etc/smtpgate/smtpgate.conf:2: address: \"127.0.0.1\" is not HOST:PORT or [V6]:PORT with a numeric address"},
    {"[listen a]\naddress = 127.0.0.1:70000\n",
        "/etc/smtpgate/smtpgate.conf:2: address: \"127.0.0.1:70000\" is not HOST:PORT or [V6]:PORT with a numeric address"},
    {"[listen a]\ntls = maybe\n",
        "/etc/smtpgate/smtpgate.conf:2: tls: expected starttls, implicit or none, got \"maybe\""},
    {"[listen a]\naddress = 127.0.0.1:1\n[listen a]\n",
        "/etc/smtpgate/smtpgate.conf:3: [listen a] appears twice (first at line 1)"},
    {"[server]\n[server]\n", "/etc/smtpgate/smtpgate.conf:2: section [server] appears twice"},
    {"[server]\nhostname\n", "/etc/smtpgate/smtpgate.conf:2: expected key = value"},
    {"[server]\nhostname =\n", "/etc/smtpgate/smtpgate.conf:2: hostname: missing value"},
    {"[server]\n", "/etc/smtpgate/smtpgate.conf: no [listen NAME] section: nothing to serve"},
    {"[listen a]\naddress = 127.0.0.1:1\n",
        "/etc/smtpgate/smtpgate.conf: a listener uses TLS but [tls] has no cert and key"},
    {"[listen a]\naddress = 127.0.0.1:1\ntls = none\n",
        "/etc/smtpgate/smtpgate.conf:1: [listen a] uses auth but [auth] has no backend"},
    {"[listen a]\naddress = 127.0.0.1:1\ntls = none\n[auth]\nbackend = file:u\nmechanisms = PLAIN GSSAPI\n",
        "/etc/smtpgate/smtpgate.conf:6: [auth] mechanisms: GSSAPI is not supported (supported: SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5 OAUTHBEARER XOAUTH2)"},
    {"[listen a]\naddress = 127.0.0.1:1\n[tls]\ncert = c\nkey = k\n[auth]\nbackend = file:u\nmechanisms = PLAIN XOAUTH2\n",
        "/etc/smtpgate/smtpgate.conf:8: [auth] mechanisms: XOAUTH2 needs an [oauth] section with jwks or introspection"},
    {"[listen a]\naddress = 127.0.0.1:1\ntls = none\n[auth]\nbackend = dovecot:/run/dovecot/auth-client\nmechanisms = PLAIN SCRAM-SHA-256-PLUS\n",
        "/etc/smtpgate/smtpgate.conf:6: [auth] mechanisms: SCRAM-SHA-256-PLUS needs stored credentials, which backend = dovecot:SOCKET cannot provide (use PLAIN LOGIN, or backend = file:PATH)"},
    {"[listen a]\naddress = 127.0.0.1:1\ntls = none\n[auth]\nmechanisms = CRAM-MD5 PLAIN\nbackend = dovecot:auth-client\n",
        "/etc/smtpgate/smtpgate.conf:5: [auth] mechanisms: CRAM-MD5 needs stored credentials, which backend = dovecot:SOCKET cannot provide (use PLAIN LOGIN, or backend = file:PATH)"},
    {"[tls]\ncert = a\n[listen a]\naddress = 127.0.0.1:1\n",
        "/etc/smtpgate/smtpgate.conf:2: [tls] every cert needs a key and every key a cert"},
    {"[limits]\ntimeout_data = soon\n",
        "/etc/smtpgate/smtpgate.conf:2: timeout_data: expected a duration such as 90s, 10m or 1h, got \"soon\""},
    {"[limits]\nmessage_size = 12X\n",
        "/etc/smtpgate/smtpgate.conf:2: message_size: expected a size of at least 1k such as 25M, got \"12X\""},
    {"[server]\n[tls\n", "/etc/smtpgate/smtpgate.conf:2: malformed section header"},
    {"[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n",
        "/etc/smtpgate/smtpgate.conf:1: [listen a]: auth = off with relay = authenticated accepts no mail; use relay = local"},
};

static void
test_errors_name_file_and_line(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512];
		struct conf *c = parse(bad[i].text, err, sizeof(err));

		if (c != NULL)
			fail_msg("case %zu parsed but should not", i);
		assert_string_equal(err, bad[i].err);
	}
}

static void
test_oauth_and_binding(void **state)
{
	char err[512];
	struct conf *c =
	    parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nsender_binding = off\n"
	          "[auth]\nbackend = dovecot:/run/dovecot/auth-client\n"
	          "[oauth]\njwks = keys/jwks.json\nissuer = https://idp.test\n"
	          "audience = smtp\n",
	        err, sizeof(err));

	assert_non_null(c);
	assert_false(c->listens[0].sender_binding);
	assert_null(conf_backend_file(c));
	assert_string_equal(conf_backend_dovecot(c), "/run/dovecot/auth-client");
	assert_string_equal(c->oauth_jwks, "/etc/smtpgate/keys/jwks.json");
	assert_string_equal(c->oauth_issuer, "https://idp.test");
	assert_string_equal(c->oauth_user_claim, "email");
	assert_null(c->oauth_introspection);
	conf_free(c);
	c = parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n", err,
	    sizeof(err));
	assert_non_null(c);
	assert_true(c->listens[0].sender_binding); /* default on */
	assert_null(c->oauth_jwks);
	conf_free(c);
	c = parse("[oauth]\njwks = http://idp.test/jwks\n", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err,
	    "/etc/smtpgate/smtpgate.conf:2: jwks: keys must come over https, got \"http://idp.test/jwks\"");
	c = parse(
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n[oauth]\njwks = j\n",
	    err, sizeof(err));
	assert_null(c);
	assert_string_equal(
	    err, "/etc/smtpgate/smtpgate.conf:6: [oauth] needs issuer and audience");
}

static void
test_limits_and_admin(void **state)
{
	char err[512];
	struct conf_cidr n;
	unsigned char a4[4] = {192, 0, 2, 77}, b4[4] = {192, 0, 3, 1},
	              a6[16] = {0x20, 0x01, 0x0d, 0xb8};
	struct conf *c =
	    parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n"
	          "relay = local\n[limits]\nallow =\nban_time = 1h\nban_action = close\n"
	          "auth_failures_per_ip = 3\nquota_action = reject\n[admin]\n",
	        err, sizeof(err));

	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->nallow, 0);
	assert_int_equal(c->ban_time, 3600);
	assert_true(c->ban_silent);
	assert_true(c->quota_reject);
	assert_int_equal(c->auth_failures_per_ip, 3);
	assert_int_equal(c->connections_per_ip, 20); /* default */
	assert_true(c->admin);
	assert_string_equal(c->admin_address, "127.0.0.1:8025");
	assert_null(c->admin_token); /* no token_file: no authentication */
	assert_int_equal(c->admin_auth, CONF_ADMIN_AUTH_CHANGES);
	conf_free(c);
	c = parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n", err,
	    sizeof(err));
	assert_non_null(c);
	assert_false(c->admin);
	assert_int_equal(c->nallow, 2); /* 127.0.0.0/8 ::1 */
	conf_free(c);
	assert_int_equal(conf_parse_cidr("192.0.2.0/24", &n), 0);
	assert_true(conf_cidr_contains(&n, AF_INET, a4));
	assert_false(conf_cidr_contains(&n, AF_INET, b4));
	assert_false(conf_cidr_contains(&n, AF_INET6, a6));
	assert_int_equal(conf_parse_cidr("2001:db8::/32", &n), 0);
	assert_true(conf_cidr_contains(&n, AF_INET6, a6));
	assert_int_equal(conf_parse_cidr("192.0.2.128/25", &n), 0);
	assert_false(conf_cidr_contains(&n, AF_INET, a4)); /* .77 is in the upper half */
	assert_int_equal(conf_parse_cidr("192.0.2.0/33", &n), -1);
	assert_int_equal(conf_parse_cidr("192.0.2.0/", &n), -1);
	assert_int_equal(conf_parse_cidr("example.test", &n), -1);
	c = parse("[limits]\nallow = 10.0.0.0/8 bogus\n", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err,
	    "/etc/smtpgate/smtpgate.conf:2: allow: \"bogus\" is not an address or ADDRESS/PREFIX");
}

/* [listen] proxy_protocol and proxy_from */
static void
test_proxy_protocol(void **state)
{
	char err[512];
	unsigned char lb[4] = {192, 0, 2, 10}, other[4] = {127, 0, 0, 1};
	struct conf *c = parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n"
	                       "relay = local\nproxy_protocol = yes\n"
	                       "proxy_from = 192.0.2.10, 2001:db8::/64\n"
	                       "[listen b]\naddress = 127.0.0.1:2\ntls = none\nauth = off\n"
	                       "relay = local\n",
	    err, sizeof(err));

	if (c == NULL)
		fail_msg("%s", err);
	assert_true(c->listens[0].proxy_protocol);
	assert_int_equal(c->listens[0].nproxy_from, 2);
	assert_true(conf_cidr_contains(&c->listens[0].proxy_from[0], AF_INET, lb));
	assert_false(conf_cidr_contains(&c->listens[0].proxy_from[0], AF_INET, other));
	assert_int_equal(c->listens[0].proxy_from[1].prefix, 64);
	assert_false(c->listens[1].proxy_protocol); /* default no */
	assert_int_equal(c->listens[1].nproxy_from, 0);
	conf_free(c);
	c = parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	          "proxy_protocol = yes\n",
	    err, sizeof(err));
	assert_null(c);
	assert_string_equal(err,
	    "/etc/smtpgate/smtpgate.conf:1: [listen a]: proxy_protocol = yes needs proxy_from (the load balancers that may send the header)");
	c = parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	          "proxy_protocol = yes\nproxy_from =\n",
	    err, sizeof(err));
	assert_null(c);
	c = parse("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = maybe\n", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err,
	    "/etc/smtpgate/smtpgate.conf:3: proxy_protocol: expected yes or no, got \"maybe\"");
	c = parse(
	    "[listen a]\naddress = 127.0.0.1:1\nproxy_from = lb.example.test\n", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err,
	    "/etc/smtpgate/smtpgate.conf:3: proxy_from: \"lb.example.test\" is not an address or ADDRESS/PREFIX");
}

#define RELAY_BASE "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"

static void
test_relay_and_routes(void **state)
{
	/* table: text after RELAY_BASE (line 6 on), NULL or the error */
	static const struct {
		const char *text, *err;
	} rows[] = {
	    {"[relay]\nroute = smarthost smtp.example.net:587\n", NULL},
	    {"[relay]\nroute = mx\nresolver = 127.0.0.1:5353\ndane = no\n", NULL},
	    {"[relay]\nroute = lmtp /run/dovecot/lmtp\n", NULL},
	    {"[relay]\nroute = lmtp 127.0.0.1:24\n", NULL},
	    {"[relay]\nroute = lmtp [::1]:24\n", NULL},
	    {"[relay]\ntls = starttls\n",
	        "6: [relay] no route = (smarthost HOST:PORT, mx or lmtp ...)"},
	    {"[relay]\nroute = smarthost smtp.example.net\n",
	        "7: route: expected smarthost HOST:PORT, mx, lmtp /path/socket or lmtp HOST:PORT, "
	        "got \"smarthost smtp.example.net\""},
	    {"[relay]\nroute = smarthost h:99999\n", "7: route: expected smarthost HOST:PORT"},
	    {"[relay]\nroute = uucp\n", "7: route: expected"},
	    {"[relay]\nroute = smarthost h:25\ntls = none\n",
	        "6: [relay] tls = none is only for lmtp routes"},
	    {"[relay]\nroute = lmtp /s\ntls = starttls\n",
	        "6: [relay] lmtp over a unix socket takes no tls"},
	    {"[relay]\nroute = smarthost h:25\nverify = maybe\n",
	        "8: verify: expected peer+host, peer or none, got \"maybe\""},
	    {"[relay]\nroute = smarthost h:25\nauth = NTLM\n", "8: auth: expected PLAIN"},
	    {"[relay]\nroute = smarthost h:25\nretry_min = 1h\nretry_max = 1m\n",
	        "6: [relay] retry_max (60s) is shorter than retry_min (3600s)"},
	    {"[relay]\nroute = smarthost h:25\nretry_min = 0\n",
	        "8: retry_min: expected a duration"},
	    {"[relay]\nroute = smarthost h:25\ndelay_warning = 0\n", NULL},
	    {"[relay]\nroute = smarthost h:25\ndelay_warning = 4h\nexpire = 5d\n", NULL},
	    {"[relay]\nroute = smarthost h:25\ndelay_warning = soon\n",
	        "8: delay_warning: expected a duration such as 30s, 10m, 1h or 5d, got \"soon\""},
	    {"[relay]\nroute = smarthost h:25\ndelay_warning = 5d\n",
	        "6: [relay] delay_warning (432000s) is not shorter than expire (432000s)"},
	    {"[route a.test]\nroute = mx\nexpire = 1h\ndelay_warning = 2h\n",
	        "6: [route a.test] delay_warning (7200s) is not shorter than expire (3600s)"},
	    {"[relay]\nroute = smarthost h:25\nconcurrency = 0\n",
	        "8: concurrency: expected a number from 1 to 1000, got \"0\""},
	    {"[relay]\nroute = smarthost h:25\ncredentials = /nonexistent/secret\n",
	        "6: [relay] credentials given but auth = none"},
	    {"[relay]\nroute = smarthost h:25\nauth = PLAIN\ncredentials = /nonexistent/secret\n",
	        "6: [relay] credentials: /nonexistent/secret: No such file or directory"},
	    {"[relay]\nroute = mx\nauth = PLAIN\n", "6: [relay] auth is for smarthost and lmtp"},
	    {"[relay]\nroute = smarthost h:25\nfoo = 1\n", "8: unknown key \"foo\" in [relay]"},
	    {"[relay]\nroute = mx\n[relay]\n", "8: section [relay] appears twice"},
	    {"[relay x]\n", "6: [relay] takes no name"},
	    {"[route]\n", "6: [route] needs a domain"},
	    {"[route a.test]\nroute = mx\n[route A.test]\nroute = mx\n",
	        "8: [route A.test] appears twice (first at line 6)"},
	    {"[route a.test]\nroute = mx\nfoo = 1\n", "8: unknown key \"foo\" in [route a.test]"},
	};
	char err[512], text[1024];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct conf *c;

		snprintf(text, sizeof(text), "%s%s", RELAY_BASE, rows[i].text);
		c = parse(text, err, sizeof(err));
		if (rows[i].err == NULL) {
			if (c == NULL)
				fail_msg("row %zu: %s", i, err);
			conf_free(c);
			continue;
		}
		if (c != NULL)
			fail_msg("row %zu: accepted", i);
		if (strstr(err, rows[i].err) == NULL)
			fail_msg("row %zu: got \"%s\", want \"%s\"", i, err, rows[i].err);
	}
}

static void
test_relay_values_and_lookup(void **state)
{
	char err[512];
	const struct conf_route *r;
	struct conf *c = parse(RELAY_BASE "[relay]\nroute = smarthost [2001:db8::1]:465\n"
	                                  "tls = implicit\nverify = peer\nca = ca.pem\n"
	                                  "auth = scram-sha-256\nretry_min = 30s\nretry_max = 2h\n"
	                                  "expire = 3d\ndelay_warning = 4h\nconcurrency = 4\n"
	                                  "timeout = 1m\n"
	                                  "[route Example.ORG]\nroute = lmtp ./lmtp.sock\n",
	    err, sizeof(err));

	if (c == NULL)
		fail_msg("%s", err);
	assert_non_null(c->relay);
	assert_int_equal(c->relay->kind, CONF_ROUTE_SMARTHOST);
	assert_string_equal(c->relay->host, "2001:db8::1");
	assert_string_equal(c->relay->port, "465");
	assert_int_equal(c->relay->tls, CONF_TLS_IMPLICIT);
	assert_int_equal(c->relay->verify, CONF_VERIFY_PEER);
	assert_string_equal(c->relay->ca, "/etc/smtpgate/ca.pem");
	assert_string_equal(c->relay->auth, "SCRAM-SHA-256");
	assert_int_equal(c->relay->retry_min, 30);
	assert_int_equal(c->relay->retry_max, 7200);
	assert_int_equal(c->relay->expire, 3 * 86400);
	assert_int_equal(c->relay->delay_warning, 4 * 3600);
	assert_int_equal(c->relay->concurrency, 4);
	assert_int_equal(c->relay->timeout, 60);
	assert_int_equal(c->nroutes, 1);
	r = conf_route_for(c, "example.org");
	assert_ptr_equal(r, c->routes[0]);
	assert_int_equal(r->kind, CONF_ROUTE_LMTP);
	assert_string_equal(r->unix_path, "/etc/smtpgate/./lmtp.sock");
	assert_int_equal(r->tls, CONF_TLS_NONE); /* lmtp default */
	assert_int_equal(r->retry_min, 60); /* defaults: 1m, 1h, 5d, 10 */
	assert_int_equal(r->retry_max, 3600);
	assert_int_equal(r->expire, 5 * 86400);
	assert_int_equal(r->delay_warning, 0); /* off unless asked for */
	assert_int_equal(r->concurrency, 10);
	assert_ptr_equal(conf_route_for(c, "EXAMPLE.org"), r);
	assert_ptr_equal(conf_route_for(c, "sub.example.org"), c->relay);
	assert_ptr_equal(conf_route_for(c, "example.net"), c->relay);
	conf_free(c);
	/* without [relay] nothing is routed (nothing is delivered) */
	c = parse(RELAY_BASE, err, sizeof(err));
	assert_non_null(c);
	assert_null(conf_route_for(c, "example.net"));
	conf_free(c);
}

static unsigned
listen_port(const struct conf_listen *l)
{
	if (l->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
}

static bool
listen_is_wildcard(const struct conf_listen *l)
{
	if (l->addr.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&l->addr)->sin6_addr);
	return ((const struct sockaddr_in *)&l->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static void
test_example_config_parses(void **state)
{
	char err[512];
	struct conf *c =
	    conf_load(SG_SOURCE_DIR "/contrib/smtpgate.conf.example", err, sizeof(err));

	if (c == NULL)
		fail_msg("%s", err);
	/* every submission port is open on both families, with the same settings */
	for (size_t i = 0; i < c->nlistens; i++) {
		const struct conf_listen *l = &c->listens[i], *twin = NULL;
		bool v6 = l->addr.ss_family == AF_INET6;

		for (size_t j = 0; j < c->nlistens; j++) {
			const struct conf_listen *o = &c->listens[j];

			if (o->addr.ss_family != l->addr.ss_family &&
			    listen_port(o) == listen_port(l))
				twin = o;
		}
		if (twin == NULL)
			fail_msg("[listen %s] %s has no %s twin", l->name, l->address,
			    v6 ? "IPv4" : "IPv6");
		assert_true(listen_is_wildcard(l) && listen_is_wildcard(twin));
		assert_int_equal(l->tls, twin->tls);
		assert_int_equal(l->auth, twin->auth);
		assert_int_equal(l->relay, twin->relay);
		assert_int_equal(l->sender_binding, twin->sender_binding);
	}
	conf_free(c);
}

static void
test_values(void **state)
{
	unsigned s;
	uint64_t n;
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(conf_parse_duration("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(conf_parse_duration("10m", &s), 0);
	assert_int_equal(s, 600);
	assert_int_equal(conf_parse_duration("1h", &s), 0);
	assert_int_equal(s, 3600);
	assert_int_equal(conf_parse_duration("5d", &s), 0);
	assert_int_equal(s, 432000);
	assert_int_equal(conf_parse_duration("7", &s), 0);
	assert_int_equal(s, 7);
	assert_int_equal(conf_parse_duration("1mm", &s), -1);
	assert_int_equal(conf_parse_duration("m", &s), -1);
	assert_int_equal(conf_parse_duration("99999999999h", &s), -1);
	assert_int_equal(conf_parse_size("25M", &n), 0);
	assert_int_equal(n, 25 * 1024 * 1024);
	assert_int_equal(conf_parse_size("1k", &n), 0);
	assert_int_equal(n, 1024);
	assert_int_equal(conf_parse_size("99999999999999999999", &n), -1);
	assert_int_equal(conf_parse_address("127.0.0.1:25", &ss, &len), 0);
	assert_int_equal(conf_parse_address("[::1]:25", &ss, &len), 0);
	assert_int_equal(conf_parse_address("*:25", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(conf_parse_address(":25", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 25);
	assert_int_equal(conf_parse_address("[::]:587", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr));
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 587);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(conf_parse_address("::1:25", &ss, &len), -1);
	assert_int_equal(conf_parse_address("localhost:25", &ss, &len), -1);
	assert_int_equal(conf_parse_address("[::1]25", &ss, &len), -1);
	assert_int_equal(conf_parse_address("1.2.3.4:-1", &ss, &len), -1);
}

/* conf_admin_token_parse: the first line, trimmed, a b64token of 32 to 512. */
static void
test_admin_token_parse(void **state)
{
	static const char tok32[] = "0123456789abcdef0123456789ABCDEF";
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		const char *want; /* NULL: refused */
	} rows[] = {
	    {"0123456789abcdef0123456789ABCDEF", 0, tok32},
	    {"0123456789abcdef0123456789ABCDEF\n", 0, tok32},
	    {"  \t0123456789abcdef0123456789ABCDEF \r\nsecond line ignored\n", 0, tok32},
	    {"ab-._~+/cdefghijklmnopqrstuvwxyz0123==\n", 0,
	        "ab-._~+/cdefghijklmnopqrstuvwxyz0123=="},
	    {"0123456789abcdef0123456789ABCDE\n", 0, NULL}, /* 31 */
	    {"", 0, NULL}, {"\n0123456789abcdef0123456789ABCDEF\n", 0, NULL}, /* first line empty */
	    {"0123456789abcdef 0123456789ABCDEF\n", 0, NULL}, /* space inside */
	    {"0123456789abcdef0123456789ABCDEF\r\n", 0, tok32},
	    {"0123456789abcdef\"0123456789ABCDEF\n", 0, NULL},
	    {"==0123456789abcdef0123456789ABCDEF\n", 0, NULL}, /* padding first */
	    {"0123456789abcdef0123456789ABCDEF=x\n", 0, NULL}, /* text after padding */
	    {"0123456789abcdef0123456789ABCDEF\0\n", 33, NULL}, /* NUL */
	};
	char big[CONF_ADMIN_TOKEN_MAX + 2];
	const char *e;
	char *t;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t len = rows[i].len ? rows[i].len : strlen(rows[i].text);
		int r = conf_admin_token_parse(rows[i].text, len, &t, &e);

		if (rows[i].want == NULL) {
			if (r != -1)
				fail_msg("row %zu accepted", i);
			assert_null(t);
			assert_non_null(e);
			/* the message never quotes the file */
			assert_null(strstr(e, "0123456789abcdef"));
		} else {
			if (r != 0)
				fail_msg("row %zu refused: %s", i, e);
			assert_string_equal(t, rows[i].want);
			free(t);
		}
		/* one byte at a time: no prefix of a refused text is accepted
		 * past its first line, and no read goes beyond len */
		for (size_t n = 0; n < len; n++) {
			char *copy = xmalloc(n > 0 ? n : 1);

			memcpy(copy, rows[i].text, n);
			if (conf_admin_token_parse(copy, n, &t, &e) == 0)
				free(t);
			free(copy);
		}
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(conf_admin_token_parse(big, CONF_ADMIN_TOKEN_MAX, &t, &e), 0);
	free(t);
	assert_int_equal(conf_admin_token_parse(big, CONF_ADMIN_TOKEN_MAX + 1, &t, &e), -1);
	assert_non_null(strstr(e, "512"));
	assert_int_equal(conf_admin_token_parse(tok32, 31, &t, &e), -1);
	assert_non_null(strstr(e, "shorter than 32"));
}

/* The secret file at path (conf_secret_read, named by the configuration
 * text) replaced by a FIFO, then gone: both refused, naming the key. */
static void
secret_file_not_regular_then_missing(const char *text, const char *path, const char *key)
{
	char err[1024];

	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "must be a regular file"));
	assert_non_null(strstr(err, key));
	assert_int_equal(unlink(path), 0);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, key));
	assert_non_null(strstr(err, "No such file"));
}

/* [cluster] redis_password_file through the shared secret-file reader:
 * the first line is the password; every refusal names the key, never the
 * password. */
static void
test_cluster_password_file(void **state)
{
	static const struct {
		const char *content;
		mode_t mode;
		const char *password; /* NULL: refused */
		const char *error;
	} rows[] = {
	    {"s3cret-pw\n", 0600, "s3cret-pw", NULL},
	    {"s3cret-pw\r\nsecond line\n", 0400, "s3cret-pw", NULL},
	    {"s3cret-pw", 0600, "s3cret-pw", NULL},
	    {"s3cret-pw\n", 0640, NULL, "mode 0600 or stricter (it is 0640): chmod 600"},
	    {"s3cret-pw\n", 0604, NULL, "(it is 0604)"},
	    {"\ns3cret-pw\n", 0600, NULL, "expected the password on the first line"},
	    {"", 0600, NULL, "expected the password on the first line"},
	    {"s3cret\0pw\n", 0600, NULL, "expected the password on the first line"},
	};
	char dir[] = "/tmp/sg-test-conf-XXXXXX", path[128], text[512], err[1024], big[600];
	struct conf *c;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/redis.pw", dir);
	snprintf(text, sizeof(text),
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	    "[cluster]\nredis = redis://127.0.0.1:6379\nredis_password_file = %s\n",
	    path);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t len = strlen(rows[i].content);

		if (i == 7)
			len = 10; /* the NUL inside */
		(void)unlink(path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd != -1);
		assert_int_equal(write(fd, rows[i].content, len), (ssize_t)len);
		close(fd);
		assert_int_equal(chmod(path, rows[i].mode), 0);
		c = parse(text, err, sizeof(err));
		if (rows[i].password != NULL) {
			if (c == NULL)
				fail_msg("row %zu: %s", i, err);
			assert_string_equal(c->cluster_password, rows[i].password);
			conf_free(c);
			continue;
		}
		assert_null(c);
		if (strstr(err, rows[i].error) == NULL ||
		    strstr(err, "smtpgate.conf:8: [cluster] redis_password_file: ") == NULL)
			fail_msg("row %zu: %s", i, err);
		assert_null(strstr(err, "s3cret"));
	}
	/* longer than 512 bytes */
	memset(big, 'p', sizeof(big));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd != -1);
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	close(fd);
	assert_int_equal(chmod(path, 0600), 0);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "1 to 512 bytes"));
	secret_file_not_regular_then_missing(text, path, "[cluster] redis_password_file: ");
	assert_int_equal(rmdir(dir), 0);
}

static void
test_admin_token_file(void **state)
{
	char dir[] = "/tmp/sg-test-conf-XXXXXX", path[128], text[512], err[1024];
	static const char tok[] = "Zm9vYmFyYmF6cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";
	struct conf *c;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/admin.token", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, tok, strlen(tok)), (ssize_t)strlen(tok));
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	snprintf(text, sizeof(text),
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	    "[admin]\ntoken_file = %s\nauth = all\n",
	    path);
	c = parse(text, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->admin_token, tok);
	assert_string_equal(c->admin_token_file, path);
	assert_int_equal(c->admin_auth, CONF_ADMIN_AUTH_ALL);
	conf_free(c);

	/* group- or world-readable: refused, naming the line and the mode */
	assert_int_equal(chmod(path, 0640), 0);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "smtpgate.conf:7: [admin] token_file: "));
	assert_non_null(strstr(err, "mode 0600 or stricter (it is 0640)"));
	assert_null(strstr(err, tok));
	assert_int_equal(chmod(path, 0400), 0); /* stricter is fine */
	c = parse(text, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	conf_free(c);

	/* too short */
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "short-token\n", 12), 12);
	close(fd);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "shorter than 32 characters"));
	assert_null(strstr(err, "short-token"));

	secret_file_not_regular_then_missing(text, path, "[admin] token_file: ");
	assert_int_equal(rmdir(dir), 0);

	/* auth without token_file, and a bad auth value */
	assert_null(parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n"
	                  "relay = local\n[admin]\nauth = all\n",
	    err, sizeof(err)));
	assert_string_equal(err,
	    "/etc/smtpgate/smtpgate.conf:7: [admin] auth needs token_file "
	    "(without a token the admin API has no authentication at all)");
	assert_null(parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n"
	                  "relay = local\n[admin]\nauth = some\n",
	    err, sizeof(err)));
	assert_string_equal(
	    err, "/etc/smtpgate/smtpgate.conf:7: auth: expected changes or all, got \"some\"");
	/* relative: against the config's folder */
	assert_null(parse("[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n"
	                  "relay = local\n[admin]\ntoken_file = admin.token\n",
	    err, sizeof(err)));
	assert_non_null(strstr(err, "/etc/smtpgate/admin.token: No such file"));
}

/* The secrets a process is not given: their files are not read (here they
 * do not exist), every other check still applies. */
static void
test_load_without_secrets(void **state)
{
	char dir[] = "/tmp/sg-test-conf-XXXXXX", path[128], text[512], err[1024];
	struct conf *c;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/smtpgate.conf", dir);
	snprintf(text, sizeof(text),
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	    "[admin]\ntoken_file = %s/no.token\n[dkim example.test]\nselector = s1\n"
	    "key = %s/no.key\n",
	    dir, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);

	/* everything read: the token is missing first, then the key */
	assert_null(conf_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "[admin] token_file: "));
	assert_null(conf_load_without(path, CONF_WITHOUT_ADMIN_TOKEN, err, sizeof(err)));
	assert_non_null(strstr(err, "[dkim example.test] key: "));
	assert_null(conf_load_without(path, CONF_WITHOUT_DKIM_KEYS, err, sizeof(err)));
	assert_non_null(strstr(err, "[admin] token_file: "));

	c = conf_load_without(
	    path, CONF_WITHOUT_DKIM_KEYS | CONF_WITHOUT_ADMIN_TOKEN, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->ndkims, 1);
	assert_null(c->dkims[0]->key);
	assert_non_null(c->dkims[0]->key_path);
	assert_null(c->admin_token);
	assert_non_null(c->admin_token_file);
	conf_free(c);

	/* what is not a secret is checked as always */
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	snprintf(text, sizeof(text),
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	    "[dkim example.test]\nkey = x\n");
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_null(conf_load_without(
	    path, CONF_WITHOUT_DKIM_KEYS | CONF_WITHOUT_ADMIN_TOKEN, err, sizeof(err)));
	assert_non_null(strstr(err, "needs selector"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_config),
	    cmocka_unit_test(test_errors_name_file_and_line),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_oauth_and_binding),
	    cmocka_unit_test(test_example_config_parses),
	    cmocka_unit_test(test_limits_and_admin),
	    cmocka_unit_test(test_admin_token_parse),
	    cmocka_unit_test(test_admin_token_file),
	    cmocka_unit_test(test_cluster_password_file),
	    cmocka_unit_test(test_load_without_secrets),
	    cmocka_unit_test(test_proxy_protocol),
	    cmocka_unit_test(test_relay_and_routes),
	    cmocka_unit_test(test_relay_values_and_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
