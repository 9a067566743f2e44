/*
 * Unit tests for the pure parts of client/: EHLO capability parsing,
 * SASL response formatting (PLAIN, XOAUTH2, OAUTHBEARER; SCRAM and
 * CRAM-MD5 run against GNU SASL's server side), transcript redaction and
 * escaping, dot-stuffing, and explain/reply_map.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gsasl.h>

#include "client/client.h"
#include "client/client_priv.h"
#include "explain/finding.h"
#include "explain/reply_map.h"

#define S(x) x, sizeof(x) - 1

static void
caps_feed(struct client_caps *k, const char *const *lines)
{
	client_caps_reset(k);
	for (size_t i = 0; lines[i] != NULL; i++)
		client_caps_parse_line(k, lines[i], strlen(lines[i]));
}

static void
test_caps(void **state)
{
	struct client_caps k;
	const char *const ehlo[] = {"PIPELINING", "SIZE 35882577", "8BITMIME", "smtputf8",
	    "CHUNKING", "STARTTLS", "ENHANCEDSTATUSCODES", "DSN",
	    "AUTH LOGIN PLAIN XOAUTH2 scram-sha-256 PLAIN", "AUTH=LOGIN CRAM-MD5", "X-UNKNOWN foo",
	    NULL};
	const char *const bare[] = {"SIZE", "AUTH", NULL};
	const char *const bad[] = {"SIZE 12x", "AUTH PL@IN THIS-NAME-IS-LONGER-THAN-20 OK", NULL};

	(void)state;
	caps_feed(&k, ehlo);
	assert_true(k.pipelining && k.eightbitmime && k.smtputf8 && k.chunking && k.starttls &&
	    k.enhancedstatuscodes && k.dsn && k.auth && k.size);
	assert_int_equal(k.size_max, 35882577);
	assert_int_equal(k.nmechs, 5);
	assert_string_equal(k.mechs[0], "LOGIN");
	assert_string_equal(k.mechs[3], "SCRAM-SHA-256"); /* upper-cased */
	assert_string_equal(k.mechs[4], "CRAM-MD5"); /* from the AUTH= form, no duplicate */
	assert_true(client_caps_has_mech(&k, "xoauth2"));
	assert_false(client_caps_has_mech(&k, "GSSAPI"));
	assert_false(k.mechs_truncated);

	caps_feed(&k, bare);
	assert_true(k.size && k.auth);
	assert_int_equal(k.size_max, 0);
	assert_int_equal(k.nmechs, 0);

	caps_feed(&k, bad);
	assert_int_equal(k.size_max, 0);
	assert_int_equal(k.nmechs, 1);
	assert_string_equal(k.mechs[0], "OK");
	assert_true(k.mechs_truncated);
}

static void
test_sasl_plain_xoauth2_oauthbearer(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(client_sasl_plain("alice@example.test", S("pa\0ss"), &b), 0);
	assert_int_equal(b.len, 1 + 18 + 1 + 5);
	assert_memory_equal(b.data, "\0alice@example.test\0pa\0ss", b.len);

	buf_reset(&b);
	assert_int_equal(client_sasl_xoauth2("u@example.com", S("ya29.tok"), &b), 0);
	assert_int_equal(b.len, strlen("user=u@example.com\001auth=Bearer ya29.tok\001\001"));
	assert_memory_equal(b.data, "user=u@example.com\001auth=Bearer ya29.tok\001\001", b.len);

	/* RFC 7628 4.1's example, with a user needing saslname escapes */
	buf_reset(&b);
	assert_int_equal(client_sasl_oauthbearer("us,e=r@example.com", "server.example.com", "143",
	                     S("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="), &b),
	    0);
	assert_string_equal(b.data,
	    "n,a=us=2Ce=3Dr@example.com,\001host=server.example.com\001"
	    "port=143\001auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
	    "\001\001");
	buf_free(&b);

	assert_true(client_sasl_is_supported("scram-sha-256-plus"));
	assert_false(client_sasl_is_supported("GSSAPI"));
	assert_true(client_sasl_is_oauth("OAUTHBEARER"));
	assert_false(client_sasl_is_oauth("PLAIN"));
}

/* The server side of GNU SASL, knowing one password. */
static int
test_server_cb(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
	(void)ctx;
	if (prop == GSASL_PASSWORD) {
		const char *u = gsasl_property_fast(sctx, GSASL_AUTHID);

		if (u != NULL && strcmp(u, "alice@example.test") == 0)
			return gsasl_property_set(sctx, GSASL_PASSWORD, "s3cret pw");
	}
	if (prop == GSASL_CB_TLS_UNIQUE || prop == GSASL_CB_TLS_EXPORTER)
		return gsasl_property_set(
		    sctx, prop, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
	if (prop == GSASL_VALIDATE_SIMPLE)
		return GSASL_OK;
	return GSASL_NO_CALLBACK;
}

/* Runs client (client_gsasl) against server (gsasl) for mech; returns the
 * client's last status (0 done, -1 failure). */
static int
run_scram(const char *mech, const char *pass, const unsigned char *cb, size_t cblen, int exporter)
{
	Gsasl *sctx;
	Gsasl_session *ss;
	const char *err = "";
	struct client_gsasl *g = client_gsasl_start(
	    mech, "alice@example.test", pass, strlen(pass), cb, cblen, exporter, &err);
	char *c_out = NULL, *s_out = NULL;
	int crc = 1, src = GSASL_NEEDS_MORE;
	bool cram = strcmp(mech, "CRAM-MD5") == 0;

	assert_non_null(g);
	assert_int_equal(gsasl_init(&sctx), GSASL_OK);
	gsasl_callback_set(sctx, test_server_cb);
	assert_int_equal(gsasl_server_start(sctx, mech, &ss), GSASL_OK);
	if (cram) {
		/* the server speaks first */
		assert_int_equal(gsasl_step64(ss, "", &s_out), GSASL_NEEDS_MORE);
	} else {
		crc = client_gsasl_step(g, "", &c_out, &err);
		assert_int_equal(crc, 1);
		/* RFC 5802 7: gs2 header, then n=user,r=nonce */
		assert_non_null(c_out);
	}
	for (int i = 0; i < 6; i++) {
		if (!cram || i > 0 || s_out == NULL) {
			free(s_out);
			s_out = NULL;
			src = gsasl_step64(ss, c_out, &s_out);
			free(c_out);
			c_out = NULL;
			if (src != GSASL_OK && src != GSASL_NEEDS_MORE)
				break;
		}
		if (crc == 0)
			break;
		crc = client_gsasl_step(g, s_out, &c_out, &err);
		if (crc == -1)
			break;
		if (crc == 0 && src == GSASL_OK)
			break;
	}
	free(c_out);
	free(s_out);
	gsasl_finish(ss);
	gsasl_done(sctx);
	client_gsasl_free(g);
	if (src != GSASL_OK)
		return -1;
	return crc;
}

static void
test_sasl_gsasl(void **state)
{
	unsigned char cb[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cb); i++)
		cb[i] = (unsigned char)i;
	assert_int_equal(run_scram("SCRAM-SHA-256", "s3cret pw", NULL, 0, 0), 0);
	assert_int_equal(run_scram("SCRAM-SHA-1", "s3cret pw", NULL, 0, 0), 0);
	assert_int_equal(run_scram("SCRAM-SHA-256", "wrong", NULL, 0, 0), -1);
	/* -PLUS with the same channel binding data on both sides */
	assert_int_equal(run_scram("SCRAM-SHA-256-PLUS", "s3cret pw", cb, sizeof(cb), 1), 0);
	assert_int_equal(run_scram("CRAM-MD5", "s3cret pw", NULL, 0, 0), 0);
	assert_int_equal(run_scram("CRAM-MD5", "wrong", NULL, 0, 0), -1);
}

/* The server-first-message for the client-first c_out (base64) with the
 * client's nonce, a salt and i=iter. */
static char *
scram_server_first(const char *c_out, const char *iter)
{
	char *dec = NULL, *b64 = NULL, sf[512];
	size_t declen, b64len;
	const char *r;

	/* not NUL-terminated */
	assert_int_equal(gsasl_base64_from(c_out, strlen(c_out), &dec, &declen), GSASL_OK);
	r = memmem(dec, declen, ",r=", 3);
	assert_non_null(r);
	snprintf(sf, sizeof(sf), "r=%.*sSRV,s=QSXCR+Q6sek8bf92,i=%s", (int)(dec + declen - r - 3),
	    r + 3, iter);
	free(dec);
	assert_int_equal(gsasl_base64_to(sf, strlen(sf), &b64, &b64len), GSASL_OK);
	return b64;
}

/* The iteration count is the server's choice: one with i=4294967295 would
 * hold the delivery worker or the probe for an hour of PBKDF2. */
static void
test_scram_iterations_bounded(void **state)
{
	static const struct {
		const char *iter;
		int want;
	} cases[] = {
	    {"4096", 1},
	    {"0004096", 1},
	    {"1000001", -1},
	    {"4294967295", -1},
	    {"99999999999999999999999", -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = "";
		struct client_gsasl *g = client_gsasl_start(
		    "SCRAM-SHA-256", "alice@example.test", S("pw"), NULL, 0, 0, &err);
		char *c_out = NULL, *sf;
		int rc;

		assert_non_null(g);
		assert_int_equal(client_gsasl_step(g, "", &c_out, &err), 1);
		sf = scram_server_first(c_out, cases[i].iter);
		free(c_out);
		c_out = NULL;
		rc = client_gsasl_step(g, sf, &c_out, &err);
		assert_int_equal(rc, cases[i].want);
		if (rc == -1) {
			assert_null(c_out);
			assert_non_null(strstr(err, "SCRAM iterations"));
		}
		free(c_out);
		free(sf);
		client_gsasl_free(g);
	}
}

static void
test_redact(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(
	    client_transcript_redact(S("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), false, &b), 0);
	assert_string_equal(b.data, "AUTH PLAIN <redacted>");
	buf_reset(&b);
	assert_int_equal(client_transcript_redact(S("auth xoauth2 dXNlcj1..."), false, &b), 0);
	assert_string_equal(b.data, "auth xoauth2 <redacted>");
	buf_reset(&b);
	assert_int_equal(client_transcript_redact(S("AUTH LOGIN"), false, &b), 0);
	assert_string_equal(b.data, "AUTH LOGIN");
	buf_reset(&b);
	assert_int_equal(client_transcript_redact(S("c2VjcmV0"), true, &b), 0);
	assert_string_equal(b.data, "<redacted>");
	buf_reset(&b);
	assert_int_equal(client_transcript_redact(S("MAIL FROM:<a@b>"), false, &b), 0);
	assert_string_equal(b.data, "MAIL FROM:<a@b>");
	buf_free(&b);
}

static void
test_escape_and_transcript(void **state)
{
	struct buf b;
	struct client_transcript t;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(client_escape(S("a\0b\x1b[31m\\\xff"), 100, &b), 0);
	assert_string_equal(b.data, "a\\x00b\\x1b[31m\\\\\\xff");
	buf_reset(&b);
	assert_int_equal(client_escape(S("abcdef"), 3, &b), 0);
	assert_string_equal(b.data, "abc...");
	buf_free(&b);

	client_transcript_init(&t);
	for (int i = 0; i < CLIENT_TRANSCRIPT_MAX_ENTRIES + 10; i++)
		client_transcript_add(&t, CLIENT_T_SERVER, S("250 OK"));
	assert_int_equal(t.n, CLIENT_TRANSCRIPT_MAX_ENTRIES);
	assert_true(t.truncated);
	client_transcript_free(&t);
}

static void
test_dot_stuff(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(client_dot_stuff(S(".a\r\nb\r\n..c\r\n.\r\n"), &b), 0);
	assert_string_equal(b.data, "..a\r\nb\r\n...c\r\n..\r\n.\r\n");
	buf_reset(&b);
	assert_int_equal(client_dot_stuff(S("no final line end"), &b), 0);
	assert_string_equal(b.data, "no final line end\r\n.\r\n");
	buf_free(&b);
}

static void
test_reply_map(void **state)
{
	static const struct {
		int code;
		const char *enh, *cmd, *text, *id;
	} cases[] = {
	    {535, "5.7.8", "AUTH", "Authentication credentials invalid",
	        "auth-credentials-invalid"},
	    {534, "5.7.9", "AUTH", "", "auth-mechanism-too-weak"},
	    {538, "5.7.11", "AUTH", "", "encryption-required"},
	    {530, "5.7.0", "MAIL", "Must issue a STARTTLS command first", "encryption-required"},
	    {530, "5.7.0", "MAIL", "Authentication required", "auth-required"},
	    {454, "4.7.0", "AUTH", "", "auth-temporary-failure"},
	    {454, "4.7.0", "STARTTLS", "", "tls-unavailable"},
	    {421, "4.7.0", "", "", "service-unavailable"},
	    {432, "4.7.12", "AUTH", "", "password-transition-needed"},
	    {554, "5.7.1", "RCPT", "Relay access denied", "relay-denied"},
	    {550, "5.7.1", "RCPT", "", "relay-denied"},
	    {553, "5.7.1", "MAIL", "not owned", "sender-rejected"},
	    {552, "5.3.4", "DATA", "", "message-too-large"},
	    {500, "5.5.2", "EHLO", "", "command-syntax-error"},
	    {501, "5.5.4", "MAIL", "", "command-syntax-error"},
	    {502, "5.5.1", "VRFY", "", "command-not-implemented"},
	    {503, "5.5.1", "RCPT", "", "bad-sequence"},
	    {504, "5.5.4", "AUTH", "", "auth-mechanism-unsupported"},
	    {504, "5.5.4", "MAIL", "", "parameter-not-implemented"},
	    {550, "5.1.1", "RCPT", "No such user", "recipient-rejected"},
	    {451, "4.3.0", "DATA", "", "server-temporary-failure"},
	    {250, "2.0.0", "DATA", "", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *id =
		    reply_map_find(cases[i].code, cases[i].enh, cases[i].cmd, cases[i].text);

		if (cases[i].id == NULL) {
			assert_null(id);
			continue;
		}
		if (id == NULL || strcmp(id, cases[i].id) != 0)
			fail_msg("%d %s: got %s, want %s", cases[i].code, cases[i].cmd,
			    id ? id : "NULL", cases[i].id);
		/* every id the map yields is in the knowledge base */
		assert_non_null(finding_kb_find(id));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_sasl_plain_xoauth2_oauthbearer),
	    cmocka_unit_test(test_sasl_gsasl),
	    cmocka_unit_test(test_scram_iterations_bounded),
	    cmocka_unit_test(test_redact),
	    cmocka_unit_test(test_escape_and_transcript),
	    cmocka_unit_test(test_dot_stuff),
	    cmocka_unit_test(test_reply_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
