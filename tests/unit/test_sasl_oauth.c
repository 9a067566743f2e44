/*
 * Unit tests for sasl/sasl_oauth: XOAUTH2 and OAUTHBEARER client responses
 * (table-driven, byte-exact, also every strict prefix of a good response),
 * the error-challenge acknowledgement and the JSON error challenge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "sasl/sasl_oauth.h"

#define S(x) x, sizeof(x) - 1

static const struct pcase {
	const char *name;
	enum sasl_oauth_mech mech;
	const char *msg;
	size_t len;
	int want; /* 0 / -1 */
	const char *user; /* expected, when want == 0 */
	const char *token;
	const char *host; /* NULL: none */
	unsigned port;
} cases[] = {
    /* XOAUTH2 (Google's format) */
    {"xoauth2", SASL_OAUTH_XOAUTH2,
        S("user=alice@example.test\x01"
          "auth=Bearer ya29.abc-_~+/==\x01\x01"),
        0, "alice@example.test", "ya29.abc-_~+/==", NULL, 0},
    {"xoauth2 bearer lower case", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=bearer t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"xoauth2 two spaces", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer  t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"xoauth2 user with comma and equals", SASL_OAUTH_XOAUTH2,
        S("user=a,b=c\x01"
          "auth=Bearer t\x01\x01"),
        0, "a,b=c", "t", NULL, 0},
    {"xoauth2 empty", SASL_OAUTH_XOAUTH2, S(""), -1, NULL, NULL, NULL, 0},
    {"xoauth2 only kvsep", SASL_OAUTH_XOAUTH2, S("\x01"), -1, NULL, NULL, NULL, 0},
    {"xoauth2 missing final kvsep", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 no kvsep at all", SASL_OAUTH_XOAUTH2, S("user=a auth=Bearer t"), -1, NULL, NULL, NULL,
        0},
    {"xoauth2 trailing data", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t\x01\x01x"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 three kvseps", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t\x01\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 auth first", SASL_OAUTH_XOAUTH2, S("auth=Bearer t\x01user=a\x01\x01"), -1, NULL, NULL,
        NULL, 0},
    {"xoauth2 extra key", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t\x01host=x\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 empty user", SASL_OAUTH_XOAUTH2,
        S("user=\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 NUL in user", SASL_OAUTH_XOAUTH2,
        S("user=a\0b\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 CR in user", SASL_OAUTH_XOAUTH2,
        S("user=a\rb\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 Basic", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Basic dDp0\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 Bearer without space", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearert\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 Bearer without token", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer \x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 Bearer alone", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 token with space", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t u\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 token trailing space", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t \x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 token with = inside", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer t=u\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 token only =", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer ==\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 token with quote", SASL_OAUTH_XOAUTH2,
        S("user=a\x01"
          "auth=Bearer \"t\"\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 key with digit", SASL_OAUTH_XOAUTH2,
        S("user1=a\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"xoauth2 User capitalised", SASL_OAUTH_XOAUTH2,
        S("User=a\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},

    /* OAUTHBEARER (RFC 7628 3.1; the first is the example of 4.1) */
    {"rfc 7628 4.1", SASL_OAUTH_OAUTHBEARER,
        S("n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
          "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"),
        0, "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com",
        143},
    {"msmtp order", SASL_OAUTH_OAUTHBEARER,
        S("n,a=alice@example.test,\x01host=mail.example.test\x01port=587\x01"
          "auth=Bearer tok\x01\x01"),
        0, "alice@example.test", "tok", "mail.example.test", 587},
    {"auth only", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Bearer t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"y flag", SASL_OAUTH_OAUTHBEARER,
        S("y,a=a,\x01"
          "auth=Bearer t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"no authzid", SASL_OAUTH_OAUTHBEARER,
        S("n,,\x01"
          "auth=Bearer t\x01\x01"),
        0, "", "t", NULL, 0},
    {"escaped authzid", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a=2Cb=3Dc,\x01"
          "auth=Bearer t\x01\x01"),
        0, "a,b=c", "t", NULL, 0},
    {"unknown key ignored", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01mfa=yes\x01"
          "auth=Bearer t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"BEARER upper case", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=BEARER t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"empty host", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01host=\x01"
          "auth=Bearer t\x01\x01"),
        0, "a", "t", "", 0},
    {"port 0", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01port=0\x01"
          "auth=Bearer t\x01\x01"),
        0, "a", "t", NULL, 0},
    {"port 65535", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01port=65535\x01"
          "auth=Bearer t\x01\x01"),
        0, "a", "t", NULL, 65535},
    {"channel binding", SASL_OAUTH_OAUTHBEARER,
        S("p=tls-unique,a=a,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"channel binding p= only", SASL_OAUTH_OAUTHBEARER,
        S("p=,,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"non-standard F flag", SASL_OAUTH_OAUTHBEARER,
        S("F,n,a=a,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"bad flag", SASL_OAUTH_OAUTHBEARER,
        S("x,a=a,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"N upper case", SASL_OAUTH_OAUTHBEARER,
        S("N,a=a,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"no gs2 header", SASL_OAUTH_OAUTHBEARER, S("auth=Bearer t\x01\x01"), -1, NULL, NULL, NULL, 0},
    {"gs2 missing second comma", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 one comma", SASL_OAUTH_OAUTHBEARER,
        S("n,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 empty authzid", SASL_OAUTH_OAUTHBEARER,
        S("n,a=,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 authzid without =", SASL_OAUTH_OAUTHBEARER,
        S("n,a,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 other attribute", SASL_OAUTH_OAUTHBEARER,
        S("n,b=a,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 bad escape", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a=2Db,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 lower-case escape", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a=2cb,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 bare =", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a=,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 NUL in authzid", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a\0b,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 kvsep in authzid", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a\x01"
          "b,\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"gs2 header without kvsep", SASL_OAUTH_OAUTHBEARER, S("n,a=a,auth=Bearer t\x01\x01"), -1, NULL,
        NULL, NULL, 0},
    {"missing final kvsep", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Bearer t\x01"),
        -1, NULL, NULL, NULL, 0},
    {"missing both kvseps", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Bearer t"),
        -1, NULL, NULL, NULL, 0},
    {"trailing data", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Bearer t\x01\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"no auth", SASL_OAUTH_OAUTHBEARER, S("n,a=a,\x01host=h\x01\x01"), -1, NULL, NULL, NULL, 0},
    {"no pairs", SASL_OAUTH_OAUTHBEARER, S("n,a=a,\x01\x01"), -1, NULL, NULL, NULL, 0},
    {"dummy response", SASL_OAUTH_OAUTHBEARER, S("\x01"), -1, NULL, NULL, NULL, 0},
    {"empty", SASL_OAUTH_OAUTHBEARER, S(""), -1, NULL, NULL, NULL, 0},
    {"repeated auth", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Bearer t\x01"
          "auth=Bearer u\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"repeated host", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01host=x\x01host=y\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"port not a number", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01port=x\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"port too big", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01port=65536\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"port empty", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01port=\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"port signed", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01port=-1\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"empty key", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01=x\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"key without =", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01host\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"NUL in a value", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01host=a\0b\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"DEL in a value", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01host=a\x7f\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"8-bit in a value", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01host=\xc3\xa9\x01"
          "auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"Basic scheme", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Basic dDp0\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"MAC scheme", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=MAC t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"Bearer tab", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "auth=Bearer\tt\x01\x01"),
        -1, NULL, NULL, NULL, 0},
    {"Auth capitalised", SASL_OAUTH_OAUTHBEARER,
        S("n,a=a,\x01"
          "Auth=Bearer t\x01\x01"),
        -1, NULL, NULL, NULL, 0},
};

static void
check_case(const struct pcase *c)
{
	struct sasl_oauth_cred cred;
	const char *errstr = NULL;
	int r = c->mech == SASL_OAUTH_XOAUTH2
	    ? sasl_xoauth2_parse(c->msg, c->len, &cred, &errstr)
	    : sasl_oauthbearer_parse(c->msg, c->len, &cred, &errstr);

	if (r != c->want)
		fail_msg("%s: got %d (%s)", c->name, r, errstr != NULL ? errstr : "");
	if (r == -1) {
		assert_non_null(errstr);
		assert_int_equal(cred.userlen, 0);
		assert_null(cred.token);
		return;
	}
	assert_int_equal(cred.userlen, strlen(c->user));
	assert_memory_equal(cred.user, c->user, cred.userlen + 1);
	assert_int_equal(cred.tokenlen, strlen(c->token));
	assert_memory_equal(cred.token, c->token, cred.tokenlen);
	/* the token points into the message */
	assert_true(cred.token >= c->msg && cred.token + cred.tokenlen <= c->msg + c->len);
	if (c->host == NULL) {
		assert_null(cred.host);
	} else {
		assert_int_equal(cred.hostlen, strlen(c->host));
		assert_memory_equal(cred.host, c->host, cred.hostlen);
	}
	assert_int_equal(cred.port, c->port);
}

static void
test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

/* Dovecot-style: a good response cut at every length is refused (the
 * final %x01 is required), and never read past the length given. */
static void
test_every_prefix_fails(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];

		if (c->want != 0)
			continue;
		for (size_t n = 0; n < c->len; n++) {
			struct sasl_oauth_cred cred;
			const char *errstr;
			char *copy = malloc(n + 1); /* exact size: ASan sees over-reads */
			int r;

			memcpy(copy, c->msg, n);
			r = c->mech == SASL_OAUTH_XOAUTH2
			    ? sasl_xoauth2_parse(copy, n, &cred, &errstr)
			    : sasl_oauthbearer_parse(copy, n, &cred, &errstr);
			if (r != -1)
				fail_msg("%s: prefix of %zu bytes accepted", c->name, n);
			free(copy);
		}
	}
}

static void
test_limits(void **state)
{
	struct sasl_oauth_cred cred;
	const char *errstr;
	struct buf b;

	/* a token of exactly SASL_OAUTH_TOKEN_MAX is fine, one more is not */
	for (int extra = 0; extra <= 1; extra++) {
		for (int mech = 0; mech <= 1; mech++) {
			int r;

			buf_init(&b, 65536);
			assert_int_equal(
			    buf_append_str(&b, mech == 0 ? "user=a\x01" : "n,a=a,\x01"), 0);
			assert_int_equal(buf_append_str(&b, "auth=Bearer "), 0);
			for (int i = 0; i < SASL_OAUTH_TOKEN_MAX + extra; i++)
				assert_int_equal(buf_append(&b, "A", 1), 0);
			assert_int_equal(buf_append(&b, "\x01\x01", 2), 0);
			r = mech == 0 ? sasl_xoauth2_parse(b.data, b.len, &cred, &errstr)
			              : sasl_oauthbearer_parse(b.data, b.len, &cred, &errstr);
			assert_int_equal(r, extra == 0 ? 0 : -1);
			if (r == 0)
				assert_int_equal(cred.tokenlen, SASL_OAUTH_TOKEN_MAX);
			else
				assert_string_equal(errstr, "token too long");
			buf_free(&b);
		}
	}
	/* a huge token (1 MiB) */
	buf_init(&b, 2 << 20);
	assert_int_equal(buf_append_str(&b,
	                     "n,a=a,\x01"
	                     "auth=Bearer "),
	    0);
	for (int i = 0; i < (1 << 20); i++)
		assert_int_equal(buf_append(&b, "A", 1), 0);
	assert_int_equal(buf_append(&b, "\x01\x01", 2), 0);
	assert_int_equal(sasl_oauthbearer_parse(b.data, b.len, &cred, &errstr), -1);
	buf_free(&b);

	/* a user of exactly SASL_OAUTH_USER_MAX, and one more */
	for (int extra = 0; extra <= 1; extra++) {
		for (int mech = 0; mech <= 1; mech++) {
			int r;

			buf_init(&b, 65536);
			assert_int_equal(buf_append_str(&b, mech == 0 ? "user=" : "n,a="), 0);
			for (int i = 0; i < SASL_OAUTH_USER_MAX + extra; i++)
				assert_int_equal(buf_append(&b, "u", 1), 0);
			assert_int_equal(buf_append_str(&b, mech == 0 ? "\x01" : ",\x01"), 0);
			assert_int_equal(buf_append_str(&b, "auth=Bearer t\x01\x01"), 0);
			r = mech == 0 ? sasl_xoauth2_parse(b.data, b.len, &cred, &errstr)
			              : sasl_oauthbearer_parse(b.data, b.len, &cred, &errstr);
			assert_int_equal(r, extra == 0 ? 0 : -1);
			if (r == 0) {
				assert_int_equal(cred.userlen, SASL_OAUTH_USER_MAX);
				assert_int_equal(cred.user[SASL_OAUTH_USER_MAX], '\0');
			}
			buf_free(&b);
		}
	}
	/* escapes count once each toward the limit: 320 commas as =2C */
	buf_init(&b, 65536);
	assert_int_equal(buf_append_str(&b, "n,a="), 0);
	for (int i = 0; i < SASL_OAUTH_USER_MAX; i++)
		assert_int_equal(buf_append_str(&b, "=2C"), 0);
	assert_int_equal(buf_append_str(&b,
	                     ",\x01"
	                     "auth=Bearer t\x01\x01"),
	    0);
	assert_int_equal(sasl_oauthbearer_parse(b.data, b.len, &cred, &errstr), 0);
	assert_int_equal(cred.userlen, SASL_OAUTH_USER_MAX);
	assert_int_equal(cred.user[0], ',');
	buf_free(&b);
	/* host too long */
	buf_init(&b, 65536);
	assert_int_equal(buf_append_str(&b, "n,a=a,\x01host="), 0);
	for (int i = 0; i < SASL_OAUTH_HOST_MAX + 1; i++)
		assert_int_equal(buf_append(&b, "h", 1), 0);
	assert_int_equal(buf_append_str(&b,
	                     "\x01"
	                     "auth=Bearer t\x01\x01"),
	    0);
	assert_int_equal(sasl_oauthbearer_parse(b.data, b.len, &cred, &errstr), -1);
	buf_free(&b);
}

static void
test_error_ack(void **state)
{
	assert_true(sasl_oauth_is_error_ack(SASL_OAUTH_OAUTHBEARER, "\x01", 1));
	assert_false(sasl_oauth_is_error_ack(SASL_OAUTH_OAUTHBEARER, "", 0));
	assert_false(sasl_oauth_is_error_ack(SASL_OAUTH_OAUTHBEARER, "\x01\x01", 2));
	assert_false(sasl_oauth_is_error_ack(SASL_OAUTH_OAUTHBEARER, "x", 1));
	assert_true(sasl_oauth_is_error_ack(SASL_OAUTH_XOAUTH2, "", 0));
	assert_false(sasl_oauth_is_error_ack(SASL_OAUTH_XOAUTH2, "\x01", 1));
}

static void
test_error_json(void **state)
{
	static const struct {
		enum sasl_oauth_mech mech;
		const char *scope, *oidc, *want;
	} t[] = {
	    {SASL_OAUTH_OAUTHBEARER, NULL, NULL,
	        "{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}"},
	    {SASL_OAUTH_OAUTHBEARER, "email",
	        "https://id.example.test/.well-known/openid-configuration",
	        "{\"status\":\"invalid_token\",\"schemes\":\"bearer\",\"scope\":\"email\","
	        "\"openid-configuration\":\"https://id.example.test/.well-known/openid-configuration\"}"},
	    {SASL_OAUTH_XOAUTH2, "https://mail.google.com/", NULL,
	        "{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://mail.google.com/\"}"},
	    {SASL_OAUTH_XOAUTH2, "a\"b\\c", NULL,
	        "{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"a\\\"b\\\\c\"}"},
	};
	struct buf b;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_init(&b, 4096);
		assert_int_equal(sasl_oauth_error_json(t[i].mech, t[i].scope, t[i].oidc, &b), 0);
		assert_string_equal(b.data, t[i].want);
		buf_free(&b);
	}
	/* appends, and fails cleanly when full */
	buf_init(&b, 10);
	assert_int_equal(sasl_oauth_error_json(SASL_OAUTH_OAUTHBEARER, NULL, NULL, &b), -1);
	buf_free(&b);
	/* not UTF-8: refused, not emitted */
	buf_init(&b, 4096);
	assert_int_equal(sasl_oauth_error_json(SASL_OAUTH_OAUTHBEARER, "\xff", NULL, &b), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_every_prefix_fails),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_error_ack),
	    cmocka_unit_test(test_error_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
