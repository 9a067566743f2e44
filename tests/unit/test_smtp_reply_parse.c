/*
 * Unit tests for smtp/smtp_reply_parse: every case is fed whole, one byte at
 * a time, and split at every point; the outcome (result, code, enhanced
 * code, lines, flags, bytes consumed) must be the same each way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_reply_parse.h"

#define S(x) x, sizeof(x) - 1

struct outcome {
	enum smtp_reply_parse_result r;
	int code;
	char enh[SMTP_REPLY_ENH_MAX + 1];
	size_t nlines;
	unsigned flags;
	size_t consumed;
	char text[512]; /* lines joined by '|' */
	const char *errstr;
};

/* Feeds in chunks of at most step bytes (0: all at once), first split at
 * split (0: none). */
static void
run(const char *in, size_t len, size_t split, size_t step, struct outcome *o)
{
	struct smtp_reply_parser p;
	size_t off = 0;

	memset(o, 0, sizeof(*o));
	smtp_reply_parser_init(&p);
	o->r = SMTP_REPLY_PARSE_MORE;
	while (off < len) {
		size_t n = len - off, used = 0;

		if (split > 0 && off < split)
			n = split - off;
		else if (step > 0 && n > step)
			n = step;
		o->r = smtp_reply_parse_feed(&p, in + off, n, &used);
		assert_true(used <= n);
		off += used;
		if (o->r != SMTP_REPLY_PARSE_MORE)
			break;
		assert_int_equal(used, n);
	}
	o->consumed = off;
	o->errstr = p.errstr;
	if (o->r == SMTP_REPLY_PARSE_DONE) {
		size_t tl = 0;

		o->code = p.code;
		memcpy(o->enh, p.enh, sizeof(o->enh));
		o->nlines = p.nlines;
		o->flags = p.flags;
		for (size_t i = 0; i < p.nlines; i++) {
			size_t ln;
			const char *l = smtp_reply_parse_line(&p, i, &ln);

			for (size_t k = 0; k < ln && tl + 2 < sizeof(o->text); k++)
				o->text[tl++] = l[k] == '\0' ? '@' : l[k];
			if (i + 1 < p.nlines && tl + 2 < sizeof(o->text))
				o->text[tl++] = '|';
		}
		o->text[tl] = '\0';
	}
	smtp_reply_parser_free(&p);
}

struct rcase {
	const char *in;
	size_t len;
	enum smtp_reply_parse_result r;
	int code;
	const char *enh;
	size_t nlines;
	unsigned flags;
	size_t consumed; /* 0: all of it */
	const char *text;
};

static const struct rcase cases[] = {
    {S("220 mail.example.test ESMTP\r\n"), SMTP_REPLY_PARSE_DONE, 220, "", 1, 0, 0,
        "mail.example.test ESMTP"},
    {S("250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 AUTH PLAIN LOGIN\r\n"),
        SMTP_REPLY_PARSE_DONE, 250, "", 4, 0, 0,
        "mail.example.test|PIPELINING|SIZE 1000|AUTH PLAIN LOGIN"},
    {S("535 5.7.8 Authentication credentials invalid\r\n"), SMTP_REPLY_PARSE_DONE, 535, "5.7.8", 1,
        0, 0, "5.7.8 Authentication credentials invalid"},
    {S("550-5.7.1 first\r\n550 5.7.1 second\r\n"), SMTP_REPLY_PARSE_DONE, 550, "5.7.1", 2, 0, 0,
        "5.7.1 first|5.7.1 second"},
    /* enhanced code class must match the reply class */
    {S("550 4.7.1 nope\r\n"), SMTP_REPLY_PARSE_DONE, 550, "", 1, 0, 0, "4.7.1 nope"},
    {S("250 2.0.0\r\n"), SMTP_REPLY_PARSE_DONE, 250, "2.0.0", 1, 0, 0, "2.0.0"},
    {S("552 5.3.4x too big\r\n"), SMTP_REPLY_PARSE_DONE, 552, "", 1, 0, 0, "5.3.4x too big"},
    {S("452 4.123.456 odd\r\n"), SMTP_REPLY_PARSE_DONE, 452, "4.123.456", 1, 0, 0, "4.123.456 odd"},
    {S("452 4.1234.1 odd\r\n"), SMTP_REPLY_PARSE_DONE, 452, "", 1, 0, 0, "4.1234.1 odd"},
    {S("250\r\n"), SMTP_REPLY_PARSE_DONE, 250, "", 1, 0, 0, ""},
    /* pipelined: only the first reply is consumed */
    {S("250 OK\r\n354 go\r\n"), SMTP_REPLY_PARSE_DONE, 250, "", 1, 0, 8, "OK"},
    /* tolerated, flagged */
    {S("220 bare\n"), SMTP_REPLY_PARSE_DONE, 220, "", 1, SMTP_REPLY_F_BARE_LF, 0, "bare"},
    {S("220 a\0b\r\n"), SMTP_REPLY_PARSE_DONE, 220, "", 1, SMTP_REPLY_F_NUL, 0, "a@b"},
    {S("220 a\rb\r\n"), SMTP_REPLY_PARSE_DONE, 220, "", 1, SMTP_REPLY_F_BARE_CR, 0, "a\rb"},
    {S("250-a\r\n251 b\r\n"), SMTP_REPLY_PARSE_DONE, 251, "", 2, SMTP_REPLY_F_CODE_MISMATCH, 0,
        "a|b"},
    /* incomplete */
    {S("250-a\r\n250 b"), SMTP_REPLY_PARSE_MORE, 0, "", 0, 0, 0, ""},
    {S("250-a\r\n"), SMTP_REPLY_PARSE_MORE, 0, "", 0, 0, 0, ""},
    /* refused at the first bad byte */
    {S("\x16\x03\x01\x02\x00"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
    {S("hello\r\n"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
    {S("150 one hundred\r\n"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
    {S("260 bad second digit\r\n"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
    {S("250x\r\n"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
    {S("25\r\n"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
    {S("\r\n"), SMTP_REPLY_PARSE_ERROR, 0, "", 0, 0, 0, ""},
};

static void
check_same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->r, b->r);
	assert_int_equal(a->code, b->code);
	assert_string_equal(a->enh, b->enh);
	assert_int_equal(a->nlines, b->nlines);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->consumed, b->consumed);
	assert_string_equal(a->text, b->text);
}

static void
test_reply_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		struct outcome whole, one, sp;

		run(c->in, c->len, 0, 0, &whole);
		if (whole.r != c->r || whole.code != c->code || strcmp(whole.enh, c->enh) != 0 ||
		    whole.flags != c->flags || strcmp(whole.text, c->text) != 0)
			fail_msg("case %zu: r=%d code=%d enh=%s flags=%u text=%s err=%s", i,
			    whole.r, whole.code, whole.enh, whole.flags, whole.text,
			    whole.errstr ? whole.errstr : "");
		assert_int_equal(whole.nlines, c->nlines);
		if (c->r != SMTP_REPLY_PARSE_ERROR)
			assert_int_equal(whole.consumed, c->consumed ? c->consumed : c->len);
		else
			assert_non_null(whole.errstr);
		run(c->in, c->len, 0, 1, &one);
		check_same(&whole, &one);
		for (size_t s = 1; s < c->len; s++) {
			run(c->in, c->len, s, 0, &sp);
			check_same(&whole, &sp);
		}
	}
}

/* Feeds n copies of unit, then returns the result and errstr. */
static enum smtp_reply_parse_result
feed_repeat(const char *unit, size_t n, const char **errstr_r)
{
	struct smtp_reply_parser p;
	enum smtp_reply_parse_result r = SMTP_REPLY_PARSE_MORE;
	size_t used;

	smtp_reply_parser_init(&p);
	for (size_t i = 0; i < n && r == SMTP_REPLY_PARSE_MORE; i++)
		r = smtp_reply_parse_feed(&p, unit, strlen(unit), &used);
	*errstr_r = p.errstr;
	/* the text buffer never exceeds the reply limit */
	assert_true(p.text.len <= SMTP_REPLY_SIZE_MAX);
	smtp_reply_parser_free(&p);
	return r;
}

static void
test_reply_limits(void **state)
{
	const char *err;
	struct smtp_reply_parser p;
	char line[SMTP_REPLY_LINE_MAX + 8];
	size_t used;

	(void)state;
	/* endless multi-line reply: refused by the size or line-count limit */
	assert_int_equal(feed_repeat("250-x\r\n", 100000, &err), SMTP_REPLY_PARSE_ERROR);
	assert_non_null(strstr(err, "1000 lines"));
	assert_int_equal(
	    feed_repeat(
	        "250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
	        100000, &err),
	    SMTP_REPLY_PARSE_ERROR);
	assert_non_null(strstr(err, "65536"));
	/* a banner that never ends: one endless line */
	assert_int_equal(feed_repeat("220 aaaaaaaaaaaaaaaa", 100000, &err), SMTP_REPLY_PARSE_ERROR);
	assert_non_null(strstr(err, "4096"));

	/* exactly SMTP_REPLY_LINE_MAX bytes before CRLF is accepted */
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	memcpy(line + SMTP_REPLY_LINE_MAX, "\r\n", 2);
	smtp_reply_parser_init(&p);
	assert_int_equal(
	    smtp_reply_parse_feed(&p, line, SMTP_REPLY_LINE_MAX + 2, &used), SMTP_REPLY_PARSE_DONE);
	smtp_reply_parser_reset(&p);
	line[SMTP_REPLY_LINE_MAX] = 'a';
	memcpy(line + SMTP_REPLY_LINE_MAX + 1, "\r\n", 2);
	assert_int_equal(smtp_reply_parse_feed(&p, line, SMTP_REPLY_LINE_MAX + 3, &used),
	    SMTP_REPLY_PARSE_ERROR);
	assert_int_equal(used, SMTP_REPLY_LINE_MAX);
	smtp_reply_parser_free(&p);
}

static void
test_reply_reset(void **state)
{
	struct smtp_reply_parser p;
	const char in[] = "250 OK\r\n354 go ahead\r\n";
	size_t used, used2;

	(void)state;
	smtp_reply_parser_init(&p);
	assert_int_equal(
	    smtp_reply_parse_feed(&p, in, sizeof(in) - 1, &used), SMTP_REPLY_PARSE_DONE);
	assert_int_equal(p.code, 250);
	/* feeding after DONE without reset is refused */
	assert_int_equal(smtp_reply_parse_feed(&p, in + used, 1, &used2), SMTP_REPLY_PARSE_ERROR);
	smtp_reply_parser_reset(&p);
	assert_int_equal(smtp_reply_parse_feed(&p, in + used, sizeof(in) - 1 - used, &used2),
	    SMTP_REPLY_PARSE_DONE);
	assert_int_equal(p.code, 354);
	assert_int_equal(p.nlines, 1);
	smtp_reply_parser_free(&p);
}

static void
test_reply_flag_names(void **state)
{
	char out[128];

	(void)state;
	assert_string_equal(
	    smtp_reply_flag_names(SMTP_REPLY_F_NUL | SMTP_REPLY_F_BARE_LF, out, sizeof(out)),
	    "NUL byte, bare LF line end");
	assert_string_equal(smtp_reply_flag_names(0, out, sizeof(out)), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_cases),
	    cmocka_unit_test(test_reply_limits),
	    cmocka_unit_test(test_reply_reset),
	    cmocka_unit_test(test_reply_flag_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
