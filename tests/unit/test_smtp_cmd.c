/*
 * Unit tests for smtp/smtp_cmd: verbs, MAIL/RCPT paths and parameters, BDAT,
 * EHLO/HELO and AUTH arguments, with every error path's reply id. Inputs are
 * parsed from exact-size heap copies (so ASan sees any over-read), every
 * prefix of them is parsed too, and command lines are also delivered through
 * smtp_line one byte at a time to check the same result comes out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_cmd.h"
#include "smtp/smtp_line.h"

#define S(x) x, sizeof(x) - 1
#define OK SMTP_R__COUNT /* expected: success */

/* The tables below leave trailing fields out: zero / false / 7BIT / NULL. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* An exact-size heap copy, so reading past len is an ASan error. */
static char *
dup_exact(const char *p, size_t n)
{
	char *d = malloc(n > 0 ? n : 1);

	assert_non_null(d);
	if (n > 0)
		memcpy(d, p, n);
	return d;
}

/* ---- smtp_cmd_parse ---- */

static const struct {
	const char *line;
	size_t len;
	enum smtp_reply_id err; /* OK for success */
	enum smtp_verb verb;
	const char *arg;
} cmd_cases[] = {
    {S("EHLO client.example"), OK, SMTP_VERB_EHLO, "client.example"},
    {S("ehlo client.example"), OK, SMTP_VERB_EHLO, "client.example"},
    {S("HeLo x"), OK, SMTP_VERB_HELO, "x"},
    {S("EHLO   x  \t "), OK, SMTP_VERB_EHLO, "x"},
    {S("EHLO"), OK, SMTP_VERB_EHLO, ""}, /* the argument is parse_helo's */
    {S("STARTTLS"), OK, SMTP_VERB_STARTTLS, ""},
    {S("starttls  "), OK, SMTP_VERB_STARTTLS, ""},
    {S("AUTH PLAIN AGEAYg=="), OK, SMTP_VERB_AUTH, "PLAIN AGEAYg=="},
    {S("MAIL FROM:<a@b.example>"), OK, SMTP_VERB_MAIL, "<a@b.example>"},
    {S("MAIL FROM: <a@b.example>"), OK, SMTP_VERB_MAIL, "<a@b.example>"},
    {S("mail from:<a@b.example> SIZE=10"), OK, SMTP_VERB_MAIL, "<a@b.example> SIZE=10"},
    {S("mail FROM:<>"), OK, SMTP_VERB_MAIL, "<>"}, /* Python smtplib */
    {S("MAIL FROM:"), OK, SMTP_VERB_MAIL, ""},
    {S("RCPT TO:<c@d.example>"), OK, SMTP_VERB_RCPT, "<c@d.example>"},
    {S("rcpt to: <c@d.example> "), OK, SMTP_VERB_RCPT, "<c@d.example>"},
    {S("DATA"), OK, SMTP_VERB_DATA, ""},
    {S("BDAT 100 LAST"), OK, SMTP_VERB_BDAT, "100 LAST"},
    {S("RSET"), OK, SMTP_VERB_RSET, ""},
    {S("NOOP"), OK, SMTP_VERB_NOOP, ""},
    {S("NOOP anything at all"), OK, SMTP_VERB_NOOP, "anything at all"},
    {S("QUIT"), OK, SMTP_VERB_QUIT, ""},
    {S("VRFY postmaster"), OK, SMTP_VERB_VRFY, "postmaster"},
    {S("EXPN list"), OK, SMTP_VERB_EXPN, "list"},
    {S("HELP"), OK, SMTP_VERB_HELP, ""},
    {S("HELP MAIL"), OK, SMTP_VERB_HELP, "MAIL"},
    {S("QUIT\t"), OK, SMTP_VERB_QUIT, ""},
    /* unknown verbs */
    {S(""), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("   "), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S(" NOOP"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("FOO"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("GET / HTTP/1.1"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("DAT"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("DATAX"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAILFROM:<a@b>"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("DATA\tx"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    /* NUL, CR, LF anywhere in a command line */
    {S("NOOP\0"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("\0NOOP"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("DA\0TA"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAIL FROM:<a\0@b.example>"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("AUTH PLAIN \0"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("DATA\r"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("NOOP\rQUIT"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("NOOP\nQUIT"), SMTP_R_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    /* arguments where none is allowed, or a bad MAIL/RCPT keyword */
    {S("DATA x"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("RSET now"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("QUIT please"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("STARTTLS x"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAIL"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAIL TO:<a@b>"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAIL FROM <a@b>"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAIL FROM :<a@b>"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("MAIL FRO"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("RCPT FROM:<a@b>"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
    {S("RCPT"), SMTP_R_ARG_SYNTAX, SMTP_VERB_UNKNOWN, NULL},
};

static void
check_cmd(size_t i, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	enum smtp_reply_id err = OK;
	int rc = smtp_cmd_parse(line, len, &cmd, &err);

	if (cmd_cases[i].err == OK) {
		if (rc != 0)
			fail_msg("cmd case %zu: failed with %d", i, (int)err);
		assert_int_equal(cmd.verb, cmd_cases[i].verb);
		assert_int_equal(cmd.arglen, strlen(cmd_cases[i].arg));
		assert_memory_equal(cmd.arg, cmd_cases[i].arg, cmd.arglen);
		assert_true(cmd.arg >= line && cmd.arg + cmd.arglen <= line + len);
	} else {
		if (rc != -1 || err != cmd_cases[i].err)
			fail_msg("cmd case %zu: rc %d err %d, want err %d", i, rc, (int)err,
			    (int)cmd_cases[i].err);
		assert_int_equal(cmd.verb, SMTP_VERB_UNKNOWN);
	}
}

static void
test_cmd_parse(void **state)
{
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		char *line = dup_exact(cmd_cases[i].line, cmd_cases[i].len);

		check_cmd(i, line, cmd_cases[i].len);
		free(line);
	}
}

static void
test_cmd_parse_via_line_bytewise(void **state)
{
	/* Each command line arrives through smtp_line one byte at a time. */
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		size_t len = cmd_cases[i].len;
		char *acc = malloc(len + 2);
		size_t acclen = 0;
		struct smtp_line s;
		int lines = 0;

		/* an embedded LF or CR splits or changes the line: not this test */
		if (memchr(cmd_cases[i].line, '\n', len) || memchr(cmd_cases[i].line, '\r', len)) {
			free(acc);
			continue;
		}
		assert_non_null(acc);
		smtp_line_init(&s, SMTP_CMD_LINE_MAX);
		for (size_t k = 0; k < len + 2; k++) {
			const char *line;
			size_t n, consumed;
			enum smtp_line_result r;

			acc[acclen++] = k < len ? cmd_cases[i].line[k] : "\r\n"[k - len];
			r = smtp_line_next(&s, acc, acclen, &line, &n, &consumed);
			if (r == SMTP_LINE_OK) {
				char *exact = dup_exact(line, n);

				check_cmd(i, exact, n);
				free(exact);
				lines++;
			}
			assert_int_not_equal(r, SMTP_LINE_TOO_LONG);
			memmove(acc, acc + consumed, acclen - consumed);
			acclen -= consumed;
		}
		assert_int_equal(lines, 1);
		assert_int_equal(acclen, 0);
		free(acc);
	}
}

/* ---- smtp_parse_mail / smtp_parse_rcpt ---- */

#define LOCAL64 "0123456789012345678901234567890123456789012345678901234567890123"
#define LABEL63 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc"
/* 4 * 63 + 3 dots = 255 */
#define DOMAIN255 LABEL63 "." LABEL63 "." LABEL63 "." LABEL63

static const struct {
	const char *arg;
	size_t len;
	enum smtp_reply_id err;
	const char *addr;
	size_t local_len;
	bool non_ascii;
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	bool has_auth;
} mail_cases[] = {
    {S("<a@b.example>"), OK, "a@b.example", 1},
    {S("<>"), OK, "", 0},
    {S("<> "), OK, "", 0},
    {S(" <a@b.example>"), OK, "a@b.example", 1},
    {S("<john.q.public+tag@mail-1.example.COM>"), OK, "john.q.public+tag@mail-1.example.COM", 17},
    {S("<!#$%&'*+-/=?^_`{|}~@x>"), OK, "!#$%&'*+-/=?^_`{|}~@x", 19},
    {S("<a@localhost>"), OK, "a@localhost", 1},
    {S("<a@1.2.3.4>"), OK, "a@1.2.3.4", 1}, /* a valid Domain, made of digits */
    {S("<a@x-y.z>"), OK, "a@x-y.z", 1},
    /* quoted local parts, kept as written */
    {S("<\"john doe\"@b.example>"), OK, "\"john doe\"@b.example", 10},
    {S("<\"a\\\"b\\\\c\"@b.example>"), OK, "\"a\\\"b\\\\c\"@b.example", 9},
    {S("<\"\"@b.example>"), OK, "\"\"@b.example", 2},
    {S("<\"a>b\"@b.example>"), OK, "\"a>b\"@b.example", 5},
    {S("<\"a@b\"@c.example>"), OK, "\"a@b\"@c.example", 5},
    /* address literals */
    {S("<a@[192.0.2.1]>"), OK, "a@[192.0.2.1]", 1},
    {S("<a@[0.0.0.0]>"), OK, "a@[0.0.0.0]", 1},
    {S("<a@[255.255.255.255]>"), OK, "a@[255.255.255.255]", 1},
    {S("<a@[IPv6:2001:db8::1]>"), OK, "a@[IPv6:2001:db8::1]", 1},
    {S("<a@[ipv6:2001:DB8:0:0:0:0:0:1]>"), OK, "a@[ipv6:2001:DB8:0:0:0:0:0:1]", 1},
    {S("<a@[IPv6:::1]>"), OK, "a@[IPv6:::1]", 1},
    {S("<a@[IPv6:::]>"), OK, "a@[IPv6:::]", 1},
    {S("<a@[IPv6:1::]>"), OK, "a@[IPv6:1::]", 1},
    {S("<a@[IPv6:::ffff:192.0.2.1]>"), OK, "a@[IPv6:::ffff:192.0.2.1]", 1},
    {S("<a@[IPv6:1:2:3:4:5:6:192.0.2.1]>"), OK, "a@[IPv6:1:2:3:4:5:6:192.0.2.1]", 1},
    /* source routes are stripped (4.1.2) */
    {S("<@relay.example:a@b.example>"), OK, "a@b.example", 1},
    {S("<@r1.example,@r2.example:a@b.example>"), OK, "a@b.example", 1},
    /* limits: 64-octet local part and 255-octet domain are fine */
    {S("<" LOCAL64 "@b.example>"), OK, LOCAL64 "@b.example", 64},
    {S("<a@" DOMAIN255 ">"), OK, "a@" DOMAIN255, 1},
    {S("<" LOCAL64 "@" DOMAIN255 ">"), OK, LOCAL64 "@" DOMAIN255, 64},
    /* parameters */
    {S("<a@b.example> SIZE=12345"), OK, "a@b.example", 1, false, true, 12345},
    {S("<a@b.example> size=0"), OK, "a@b.example", 1, false, true, 0},
    {S("<a@b.example> SIZE=18446744073709551615"), OK, "a@b.example", 1, false, true, UINT64_MAX},
    {S("<a@b.example> SIZE=99999999999999999999"), OK, "a@b.example", 1, false, true,
        UINT64_MAX}, /* 20 digits, too large: 552 later, not 501 */
    {S("<a@b.example> BODY=8BITMIME"), OK, "a@b.example", 1, false, false, 0, SMTP_BODY_8BITMIME},
    {S("<a@b.example> body=7bit"), OK, "a@b.example", 1, false, false, 0, SMTP_BODY_7BIT},
    {S("<a@b.example> AUTH=<>"), OK, "a@b.example", 1, false, false, 0, SMTP_BODY_7BIT, false,
        true},
    {S("<a@b.example> AUTH=a+2Bb@b.example"), OK, "a@b.example", 1, false, false, 0, SMTP_BODY_7BIT,
        false, true},
    {S("<a@b.example> SMTPUTF8"), OK, "a@b.example", 1, false, false, 0, SMTP_BODY_7BIT, true},
    {S("<a@b.example>  SIZE=1   BODY=8BITMIME  SMTPUTF8 AUTH=<>  "), OK, "a@b.example", 1, false,
        true, 1, SMTP_BODY_8BITMIME, true, true},
    /* SMTPUTF8 (RFC 6531) */
    {S("<j\xc3\xb6rg@b.example> SMTPUTF8"), OK, "j\xc3\xb6rg@b.example", 5, true, false, 0,
        SMTP_BODY_7BIT, true},
    {S("<a@m\xc3\xbcnchen.example> SMTPUTF8"), OK, "a@m\xc3\xbcnchen.example", 1, true, false, 0,
        SMTP_BODY_7BIT, true},
    {S("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a> SMTPUTF8"), OK,
        "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", 6, true,
        false, 0, SMTP_BODY_7BIT, true},
    {S("<\"j\xc3\xb6rg\"@b.example> SMTPUTF8"), OK, "\"j\xc3\xb6rg\"@b.example", 7, true, false, 0,
        SMTP_BODY_7BIT, true},
    {S("<\xf0\x9f\x93\xa7@b.example> SMTPUTF8"), OK, "\xf0\x9f\x93\xa7@b.example", 4, true, false,
        0, SMTP_BODY_7BIT, true},
    {S("<j\xc3\xb6rg@b.example>"), SMTP_R_SMTPUTF8_REQUIRED},
    {S("<a@m\xc3\xbcnchen.example>"), SMTP_R_SMTPUTF8_REQUIRED},
    {S("<a@m\xc3\xbcnchen.example> BODY=8BITMIME"), SMTP_R_SMTPUTF8_REQUIRED},
    /* ill-formed UTF-8 is a syntax error, SMTPUTF8 or not */
    {S("<j\xc3@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX},
    {S("<j\xe4\xbe@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX},
    {S("<j\xe4\xbe"
       "A@b.example> SMTPUTF8"),
        SMTP_R_SENDER_SYNTAX},
    {S("<j\xf0\x9f\x93"
       "A@b.example> SMTPUTF8"),
        SMTP_R_SENDER_SYNTAX},
    {S("<j\xc0\xafrg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX}, /* overlong */
    {S("<j\xe0\x80\xafrg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX}, /* overlong */
    {S("<j\xed\xa0\x80rg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX}, /* surrogate */
    {S("<j\xf4\x90\x80\x80rg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX}, /* > U+10FFFF */
    {S("<j\xf5\x80\x80\x80rg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX},
    {S("<j\xffrg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX},
    {S("<j\x80rg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX},
    {S("<j\xc2\x85rg@b.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX}, /* C1 control NEL */
    {S("<a@m\xc3.example> SMTPUTF8"), SMTP_R_SENDER_SYNTAX},
    {S("<j\xc3>"), SMTP_R_SENDER_SYNTAX},
    /* path syntax errors */
    {S(""), SMTP_R_SENDER_SYNTAX},
    {S("a@b.example"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b.example"), SMTP_R_SENDER_SYNTAX},
    {S("a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<<a@b.example>>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b.example>x"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b.example><c@d>"), SMTP_R_SENDER_SYNTAX},
    {S("<a>"), SMTP_R_SENDER_SYNTAX},
    {S("<postmaster>"), SMTP_R_SENDER_SYNTAX}, /* only RCPT may omit the domain */
    {S("<@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b@c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("< a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b.example >"), SMTP_R_SENDER_SYNTAX},
    {S("<a b@c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<.a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a.@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a..b@c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a(b)@c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a,b@c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a\x01@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a\t@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<\"a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<\"a\"b@c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<\"a\\\"@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<\"a\x01\"@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<\"a\\\x01\"@b.example>"), SMTP_R_SENDER_SYNTAX},
    /* domains */
    {S("<a@b.example.>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@.b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b..example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@-b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b-.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b_c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b\\c.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@" LABEL63 "x.example>"), SMTP_R_SENDER_SYNTAX}, /* 64-octet label */
    {S("<a@x" DOMAIN255 ">"), SMTP_R_SENDER_SYNTAX}, /* 256-octet domain */
    {S("<x" LOCAL64 "@b.example>"), SMTP_R_SENDER_SYNTAX}, /* 65-octet local part */
    {S("<\"" LOCAL64 "\"@b.example>"), SMTP_R_SENDER_SYNTAX}, /* 66 as written */
    /* address literals */
    {S("<a@[256.0.0.1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[1.2.3]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[1.2.3.4.5]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[1.2.3.]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[1..2.3]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[1234.1.1.1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[192.0.2.1>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[192.0.2.1]x>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@b[192.0.2.1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:2:3:4:5:6:7]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:2:3:4:5:6:7:8:9]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1::2::3]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:::3]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:12345::1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:2:3:4:5:6:7::]>"), SMTP_R_SENDER_SYNTAX}, /* 7 groups with :: */
    {S("<a@[IPv6::1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:g::1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1::2x]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:2:3:4:5:6:7:8 ]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:2:3:4:5:192.0.2.1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:1:2:3:4:5::192.0.2.1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:::ffff:192.0.2]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[IPv6:::ffff:192.0.2.1:1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[2001:db8::1]>"), SMTP_R_SENDER_SYNTAX},
    {S("<a@[x-tag:foo]>"), SMTP_R_SENDER_SYNTAX}, /* General-address-literal */
    {S("<a@[IPv6:::1] >"), SMTP_R_SENDER_SYNTAX},
    /* source routes */
    {S("<@:a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<@r.example a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<@r.example,a@b.example>"), SMTP_R_SENDER_SYNTAX},
    {S("<@r.example:>"), SMTP_R_SENDER_SYNTAX},
    {S("<@[192.0.2.1]:a@b.example>"), SMTP_R_SENDER_SYNTAX},
    /* parameter errors */
    {S("<a@b.example> FOO=bar"), SMTP_R_PARAM_UNKNOWN},
    {S("<a@b.example> RET=HDRS"), SMTP_R_PARAM_UNKNOWN}, /* DSN not offered */
    {S("<a@b.example> SIZE=1 SIZE=2"), SMTP_R_PARAM_UNKNOWN},
    {S("<a@b.example> BODY=7BIT body=8BITMIME"), SMTP_R_PARAM_UNKNOWN},
    {S("<a@b.example> SMTPUTF8 SMTPUTF8"), SMTP_R_PARAM_UNKNOWN},
    {S("<a@b.example> AUTH=<> AUTH=<>"), SMTP_R_PARAM_UNKNOWN},
    {S("<a@b.example> SIZE"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SIZE="), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SIZE=-1"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SIZE=1k"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SIZE=123456789012345678901"), SMTP_R_ARG_SYNTAX}, /* 21 digits */
    {S("<a@b.example> BODY=BINARYMIME"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> BODY=8BIT"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> BODY"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SMTPUTF8=yes"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> AUTH"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> AUTH=a b"), SMTP_R_PARAM_UNKNOWN}, /* "b" is a parameter */
    {S("<a@b.example> AUTH=a+2"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> AUTH=a+2b"), SMTP_R_ARG_SYNTAX}, /* hexchar is upper case */
    {S("<a@b.example> AUTH=a+zz"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> AUTH=\xc3\xa4"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> =x"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> -SIZE=1"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SI_ZE=1"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SIZE=1=2"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> SIZE=1\x01"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example> X=\xc3"), SMTP_R_ARG_SYNTAX},
    {S("<a@b.example>\tSIZE=1"), SMTP_R_SENDER_SYNTAX},
    /* the path is checked before the parameters */
    {S("<a@@b> FOO=bar"), SMTP_R_SENDER_SYNTAX},
};

static void
check_path(const char *what, size_t i, const struct smtp_path *p, int rc, enum smtp_reply_id err,
    enum smtp_reply_id want)
{
	if (want == OK) {
		if (rc != 0)
			fail_msg("%s case %zu: failed with %d", what, i, (int)err);
	} else if (rc != -1 || err != want) {
		fail_msg(
		    "%s case %zu: rc %d err %d, want err %d", what, i, rc, (int)err, (int)want);
	}
	/* always consistent, even after a failure */
	assert_true(strlen(p->addr) <= SMTP_ADDR_MAX);
	assert_true(p->local_len <= SMTP_LOCAL_MAX);
	assert_true(p->domain >= p->addr && p->domain <= p->addr + strlen(p->addr));
	if (rc != 0) {
		assert_string_equal(p->addr, "");
		assert_false(p->non_ascii);
	}
}

static void
test_parse_mail(void **state)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		char *arg = dup_exact(mail_cases[i].arg, mail_cases[i].len);
		struct smtp_path p;
		enum smtp_reply_id err = OK;
		int rc;

		memset(&p, 0xa5, sizeof(p));
		rc = smtp_parse_mail(arg, mail_cases[i].len, &p, &err);
		check_path("mail", i, &p, rc, err, mail_cases[i].err);
		if (rc == 0) {
			const char *at = mail_cases[i].local_len < strlen(mail_cases[i].addr)
			    ? mail_cases[i].addr + mail_cases[i].local_len + 1
			    : "";

			assert_string_equal(p.addr, mail_cases[i].addr);
			assert_int_equal(p.local_len, mail_cases[i].local_len);
			assert_string_equal(p.domain, at);
			assert_int_equal(p.non_ascii, mail_cases[i].non_ascii);
			assert_int_equal(p.has_size, mail_cases[i].has_size);
			assert_int_equal(p.size, mail_cases[i].size);
			assert_int_equal(p.body, mail_cases[i].body);
			assert_int_equal(p.smtputf8, mail_cases[i].smtputf8);
			assert_int_equal(p.has_auth, mail_cases[i].has_auth);
		}
		free(arg);
	}
}

static const struct {
	const char *arg;
	size_t len;
	bool smtputf8;
	enum smtp_reply_id err;
	const char *addr;
	size_t local_len;
	const char *domain;
	bool non_ascii;
} rcpt_cases[] = {
    {S("<c@d.example>"), false, OK, "c@d.example", 1, "d.example"},
    {S(" <c@d.example>  "), false, OK, "c@d.example", 1, "d.example"},
    {S("<Postmaster>"), false, OK, "Postmaster", 10, ""},
    {S("<postmaster>"), false, OK, "postmaster", 10, ""},
    {S("<POSTMASTER>"), false, OK, "POSTMASTER", 10, ""},
    {S("<postmaster@d.example>"), false, OK, "postmaster@d.example", 10, "d.example"},
    {S("<@r.example:postmaster>"), false, OK, "postmaster", 10, ""},
    {S("<c@[IPv6:2001:db8::2]>"), false, OK, "c@[IPv6:2001:db8::2]", 1, "[IPv6:2001:db8::2]"},
    {S("<\xd0\xb8@d.example>"), true, OK, "\xd0\xb8@d.example", 2, "d.example", true},
    {S("<c@\xd0\xb8.example>"), true, OK, "c@\xd0\xb8.example", 1, "\xd0\xb8.example", true},
    {S("<\xd0\xb8@d.example>"), false, SMTP_R_SMTPUTF8_REQUIRED},
    {S("<c@\xd0\xb8.example>"), false, SMTP_R_SMTPUTF8_REQUIRED},
    {S("<c@\xd0\xb8.example> SMTPUTF8"), false, SMTP_R_PARAM_UNKNOWN},
    {S("<>"), false, SMTP_R_RCPT_SYNTAX},
    {S("<>"), true, SMTP_R_RCPT_SYNTAX},
    {S(""), false, SMTP_R_RCPT_SYNTAX},
    {S("c@d.example"), false, SMTP_R_RCPT_SYNTAX},
    {S("<c>"), false, SMTP_R_RCPT_SYNTAX},
    {S("<postmasters>"), false, SMTP_R_RCPT_SYNTAX},
    {S("<\"postmaster\">"), false, SMTP_R_RCPT_SYNTAX},
    {S("<postmaster@>"), false, SMTP_R_RCPT_SYNTAX},
    {S("<c@d..example>"), false, SMTP_R_RCPT_SYNTAX},
    {S("<c@d.example>x"), false, SMTP_R_RCPT_SYNTAX},
    {S("<c\xc3@d.example>"), true, SMTP_R_RCPT_SYNTAX},
    {S("<" LOCAL64 "x@d.example>"), false, SMTP_R_RCPT_SYNTAX},
    {S("<c@d.example> NOTIFY=NEVER"), false, SMTP_R_PARAM_UNKNOWN},
    {S("<c@d.example> ORCPT=rfc822;c@d.example"), false, SMTP_R_PARAM_UNKNOWN},
    {S("<c@d.example> SIZE=1"), false, SMTP_R_PARAM_UNKNOWN},
    {S("<c@d.example> =1"), false, SMTP_R_ARG_SYNTAX},
};

static void
test_parse_rcpt(void **state)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		char *arg = dup_exact(rcpt_cases[i].arg, rcpt_cases[i].len);
		struct smtp_path p;
		enum smtp_reply_id err = OK;
		int rc;

		memset(&p, 0xa5, sizeof(p));
		rc = smtp_parse_rcpt(arg, rcpt_cases[i].len, rcpt_cases[i].smtputf8, &p, &err);
		check_path("rcpt", i, &p, rc, err, rcpt_cases[i].err);
		if (rc == 0) {
			assert_string_equal(p.addr, rcpt_cases[i].addr);
			assert_int_equal(p.local_len, rcpt_cases[i].local_len);
			assert_string_equal(p.domain, rcpt_cases[i].domain);
			assert_int_equal(p.non_ascii, rcpt_cases[i].non_ascii);
			assert_false(p.has_size);
			assert_false(p.has_auth);
		}
		free(arg);
	}
}

/* ---- BDAT, EHLO/HELO, AUTH ---- */

static const struct {
	const char *arg;
	size_t len;
	enum smtp_reply_id err;
	uint64_t size;
	bool last;
} bdat_cases[] = {
    {S("0"), OK, 0, false},
    {S("0 LAST"), OK, 0, true},
    {S("100"), OK, 100, false},
    {S("100 LAST"), OK, 100, true},
    {S("100 last"), OK, 100, true},
    {S("100   LAST  "), OK, 100, true},
    {S("007"), OK, 7, false},
    {S("18446744073709551615"), OK, UINT64_MAX, false},
    {S(""), SMTP_R_ARG_SYNTAX},
    {S("LAST"), SMTP_R_ARG_SYNTAX},
    {S("-1"), SMTP_R_ARG_SYNTAX},
    {S("+1"), SMTP_R_ARG_SYNTAX},
    {S("1x"), SMTP_R_ARG_SYNTAX},
    {S("1LAST"), SMTP_R_ARG_SYNTAX},
    {S("1 LAS"), SMTP_R_ARG_SYNTAX},
    {S("1 LASTX"), SMTP_R_ARG_SYNTAX},
    {S("1 LAST x"), SMTP_R_ARG_SYNTAX},
    {S("1 2"), SMTP_R_ARG_SYNTAX},
    {S("1\tLAST"), SMTP_R_ARG_SYNTAX},
    {S("18446744073709551616"), SMTP_R_ARG_SYNTAX},
    {S("99999999999999999999999"), SMTP_R_ARG_SYNTAX},
    {S("1\0"), SMTP_R_ARG_SYNTAX},
};

static void
test_parse_bdat(void **state)
{
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		char *arg = dup_exact(bdat_cases[i].arg, bdat_cases[i].len);
		uint64_t size = 42;
		bool last = true;
		enum smtp_reply_id err = OK;
		int rc = smtp_parse_bdat(arg, bdat_cases[i].len, &size, &last, &err);

		if (bdat_cases[i].err == OK) {
			if (rc != 0)
				fail_msg("bdat case %zu failed", i);
			assert_int_equal(size, bdat_cases[i].size);
			assert_int_equal(last, bdat_cases[i].last);
		} else {
			if (rc != -1 || err != bdat_cases[i].err)
				fail_msg("bdat case %zu: rc %d err %d", i, rc, (int)err);
		}
		free(arg);
	}
}

static const struct {
	const char *arg;
	size_t len;
	enum smtp_reply_id err;
} helo_cases[] = {
    {S("client.example"), OK},
    {S("localhost"), OK},
    {S("[192.0.2.1]"), OK},
    {S("[IPv6:2001:db8::1]"), OK},
    {S("DESKTOP-AB_12"), OK}, /* Windows host names: lenient */
    {S("  x  "), OK},
    {S(""), SMTP_R_ARG_SYNTAX},
    {S("   "), SMTP_R_ARG_SYNTAX},
    {S("a b"), SMTP_R_ARG_SYNTAX},
    {S("a\tb"), SMTP_R_ARG_SYNTAX},
    {S("a\0b"), SMTP_R_ARG_SYNTAX},
    {S("a\x7f"), SMTP_R_ARG_SYNTAX},
    {S("m\xc3\xbcnchen.example"), SMTP_R_ARG_SYNTAX},
    {S("x" DOMAIN255), SMTP_R_ARG_SYNTAX},
    {S(DOMAIN255), OK},
};

static void
test_parse_helo(void **state)
{
	for (size_t i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++) {
		char *arg = dup_exact(helo_cases[i].arg, helo_cases[i].len);
		enum smtp_reply_id err = OK;
		int rc = smtp_parse_helo(arg, helo_cases[i].len, &err);

		if (helo_cases[i].err == OK) {
			if (rc != 0)
				fail_msg("helo case %zu failed", i);
		} else if (rc != -1 || err != helo_cases[i].err) {
			fail_msg("helo case %zu: rc %d err %d", i, rc, (int)err);
		}
		free(arg);
	}
}

static const struct {
	const char *arg;
	size_t len;
	enum smtp_reply_id err;
	const char *mech;
	const char *ir; /* NULL: absent */
} auth_cases[] = {
    {S("PLAIN"), OK, "PLAIN", NULL},
    {S("plain"), OK, "PLAIN", NULL},
    {S("PLAIN AGFsaWNlAHNlY3JldA=="), OK, "PLAIN", "AGFsaWNlAHNlY3JldA=="},
    {S("PLAIN ="), OK, "PLAIN", "="},
    {S("login  dXNlcg==  "), OK, "LOGIN", "dXNlcg=="},
    {S("SCRAM-SHA-256-PLUS"), OK, "SCRAM-SHA-256-PLUS", NULL},
    {S("X_MECH-1"), OK, "X_MECH-1", NULL},
    {S("ABCDEFGHIJKLMNOPQRST"), OK, "ABCDEFGHIJKLMNOPQRST", NULL}, /* 20 */
    {S("XOAUTH2 dXNlcj1hAWF1dGg9QmVhcmVyIHQBAQ=="), OK, "XOAUTH2",
        "dXNlcj1hAWF1dGg9QmVhcmVyIHQBAQ=="},
    {S("PLAIN *"), OK, "PLAIN", "*"}, /* not base64: the caller's 501 5.5.2 */
    {S(""), SMTP_R_ARG_SYNTAX},
    {S("  "), SMTP_R_ARG_SYNTAX},
    {S("ABCDEFGHIJKLMNOPQRSTU"), SMTP_R_ARG_SYNTAX}, /* 21 */
    {S("PLA.IN"), SMTP_R_ARG_SYNTAX},
    {S("PLAIN\tabc"), SMTP_R_ARG_SYNTAX},
    {S("PLAIN abc def"), SMTP_R_ARG_SYNTAX},
    {S("PLAIN ab\0c"), SMTP_R_ARG_SYNTAX},
    {S("PL\0AIN"), SMTP_R_ARG_SYNTAX},
    {S("PLAIN \xc3\xa4"), SMTP_R_ARG_SYNTAX},
    {S("\xc3\xa4"), SMTP_R_ARG_SYNTAX},
};

static void
test_parse_auth(void **state)
{
	for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
		char *arg = dup_exact(auth_cases[i].arg, auth_cases[i].len);
		char mech[SMTP_MECH_MAX + 1];
		const char *ir = arg;
		size_t irlen = 99;
		enum smtp_reply_id err = OK;
		int rc;

		memset(mech, 'Z', sizeof(mech));
		rc = smtp_parse_auth(arg, auth_cases[i].len, mech, &ir, &irlen, &err);
		if (auth_cases[i].err == OK) {
			if (rc != 0)
				fail_msg("auth case %zu failed", i);
			assert_string_equal(mech, auth_cases[i].mech);
			if (auth_cases[i].ir == NULL) {
				assert_null(ir);
				assert_int_equal(irlen, 0);
			} else {
				assert_int_equal(irlen, strlen(auth_cases[i].ir));
				assert_memory_equal(ir, auth_cases[i].ir, irlen);
				assert_true(ir >= arg && ir + irlen <= arg + auth_cases[i].len);
			}
		} else {
			if (rc != -1 || err != auth_cases[i].err)
				fail_msg("auth case %zu: rc %d err %d", i, rc, (int)err);
			assert_string_equal(mech, "");
			assert_null(ir);
		}
		free(arg);
	}
}

/* Every parser over every prefix of p[0..n), from exact-size copies: no
 * crash, no over-read, results that point inside the input. */
static void
check_prefixes(const char *src, size_t len)
{
	for (size_t n = 0; n <= len; n++) {
		char *p = dup_exact(src, n);
		struct smtp_path path;
		struct smtp_cmd cmd;
		enum smtp_reply_id err;
		uint64_t size;
		bool last;
		char mech[SMTP_MECH_MAX + 1];
		const char *ir;
		size_t irlen;

		if (smtp_parse_mail(p, n, &path, &err) == 0)
			assert_true(strlen(path.addr) < n);
		if (smtp_parse_rcpt(p, n, true, &path, &err) == 0)
			assert_true(strlen(path.addr) < n);
		(void)!smtp_parse_bdat(p, n, &size, &last, &err);
		(void)!smtp_parse_helo(p, n, &err);
		if (smtp_parse_auth(p, n, mech, &ir, &irlen, &err) == 0 && ir != NULL)
			assert_true(ir + irlen <= p + n);
		if (smtp_cmd_parse(p, n, &cmd, &err) == 0)
			assert_true(cmd.arg + cmd.arglen <= p + n);
		free(p);
	}
}

static void
test_prefixes(void **state)
{
#define EACH(t)                                                                                    \
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)                                      \
		check_prefixes(t[i].arg, t[i].len);
	EACH(mail_cases)
	EACH(rcpt_cases)
	EACH(bdat_cases)
	EACH(helo_cases)
	EACH(auth_cases)
#undef EACH
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++)
		check_prefixes(cmd_cases[i].line, cmd_cases[i].len);
}

static void
test_all_errors_have_replies(void **state)
{
	/* Every id a parser returns is a 5xx in the reply table. */
	static const enum smtp_reply_id ids[] = {
	    SMTP_R_SYNTAX,
	    SMTP_R_ARG_SYNTAX,
	    SMTP_R_SENDER_SYNTAX,
	    SMTP_R_RCPT_SYNTAX,
	    SMTP_R_PARAM_UNKNOWN,
	    SMTP_R_SMTPUTF8_REQUIRED,
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct smtp_reply *r = smtp_reply_get(ids[i]);

		assert_true(r->code >= 500 && r->code < 600);
		assert_non_null(r->enh);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cmd_parse),
	    cmocka_unit_test(test_cmd_parse_via_line_bytewise),
	    cmocka_unit_test(test_parse_mail),
	    cmocka_unit_test(test_parse_rcpt),
	    cmocka_unit_test(test_parse_bdat),
	    cmocka_unit_test(test_parse_helo),
	    cmocka_unit_test(test_parse_auth),
	    cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_all_errors_have_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
