/*
 * Unit tests for smtp/smtp_line: every case is fed whole, one byte at a time
 * (accumulating like a session does) and split at every point; the
 * transcripts of lines and TOO_LONG reports must be identical.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_line.h"

#define S(x) x, sizeof(x) - 1

/*
 * A transcript renders each result as the line followed by "|", or "!|" for
 * SMTP_LINE_TOO_LONG; NUL, CR and LF inside lines are shown as \0 \r \n.
 */
struct transcript {
	char text[16384];
	size_t len;
	size_t rest; /* input bytes left unconsumed at the end */
};

static void
transcript_add(struct transcript *t, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *esc = NULL;
		char one[2] = {p[i], '\0'};

		if (p[i] == '\0')
			esc = "\\0";
		else if (p[i] == '\r')
			esc = "\\r";
		else if (p[i] == '\n')
			esc = "\\n";
		else
			esc = one;
		assert_true(t->len + strlen(esc) < sizeof(t->text));
		memcpy(t->text + t->len, esc, strlen(esc));
		t->len += strlen(esc);
	}
	t->text[t->len] = '\0';
}

/* Runs the splitter over the session buffer acc[0..*acclen), as a session
 * does after each read: take lines until NEED_MORE, drop consumed bytes. */
static void
drain(struct smtp_line *s, char *acc, size_t *acclen, struct transcript *t)
{
	for (;;) {
		const char *line;
		size_t n, consumed;
		enum smtp_line_result r = smtp_line_next(s, acc, *acclen, &line, &n, &consumed);

		assert_true(consumed <= *acclen);
		if (r == SMTP_LINE_OK) {
			assert_true(n <= s->max);
			assert_true(line >= acc && line + n <= acc + *acclen);
			transcript_add(t, line, n);
			transcript_add(t, "|", 1);
			assert_true(consumed > 0);
		} else if (r == SMTP_LINE_TOO_LONG) {
			transcript_add(t, "!|", 2);
			assert_true(consumed > 0);
		}
		memmove(acc, acc + consumed, *acclen - consumed);
		*acclen -= consumed;
		if (r == SMTP_LINE_NEED_MORE) {
			/* NEED_MORE is stable: nothing more without new input. */
			r = smtp_line_next(s, acc, *acclen, &line, &n, &consumed);
			assert_int_equal(r, SMTP_LINE_NEED_MORE);
			assert_int_equal(consumed, 0);
			return;
		}
	}
}

/* Feeds in[0..len) in pieces: the first at split, then step bytes at a time
 * (step 0: the rest at once). */
static void
run(const char *in, size_t len, size_t max, size_t split, size_t step, struct transcript *t)
{
	struct smtp_line s;
	char *acc = malloc(len + 1);
	size_t acclen = 0, off = 0;

	assert_non_null(acc);
	memset(t, 0, sizeof(*t));
	smtp_line_init(&s, max);
	while (off < len) {
		size_t n = off == 0 ? split : (step == 0 ? len - off : step);

		if (n > len - off)
			n = len - off;
		memcpy(acc + acclen, in + off, n);
		acclen += n;
		off += n;
		drain(&s, acc, &acclen, t);
	}
	if (len == 0)
		drain(&s, acc, &acclen, t);
	t->rest = acclen;
	free(acc);
}

static const struct {
	const char *in;
	size_t len;
	size_t max;
	const char *expect;
	size_t rest;
} line_cases[] = {
    {S(""), 512, "", 0},
    {S("EHLO x\r\n"), 512, "EHLO x|", 0},
    {S("EHLO x\n"), 512, "EHLO x|", 0}, /* bare LF ends a command */
    {S("\r\n"), 512, "|", 0},
    {S("\n\n"), 512, "||", 0},
    {S("EHLO x"), 512, "", 6},
    {S("EHLO x\r"), 512, "", 7},
    /* pipelining */
    {S("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"), 512, "MAIL FROM:<a@b>|RCPT TO:<c@d>|DATA|",
        0},
    {S("NOOP\r\nQUI"), 512, "NOOP|", 3},
    /* only one CR before LF is the terminator's */
    {S("NOOP\r\r\n"), 512, "NOOP\\r|", 0},
    {S("NO\rOP\r\n"), 512, "NO\\rOP|", 0},
    /* NUL bytes are data for the command parser to refuse */
    {S("NO\0OP\r\n"), 512, "NO\\0OP|", 0},
    {S("\0\r\n"), 512, "\\0|", 0},
    /* limits: max bytes is fine, max + 1 is not, CRLF not counted */
    {S("12345678\r\n"), 8, "12345678|", 0},
    {S("12345678\n"), 8, "12345678|", 0},
    {S("123456789\r\n"), 8, "!|", 0},
    {S("12345678\r"), 8, "", 9},
    {S("12345678\r\r\n"), 8, "!|", 0},
    /* an over-long line is reported once and skipped, then parsing goes on */
    {S("1234567890123456789012345\r\nQUIT\r\n"), 8, "!|QUIT|", 0},
    {S("NOOP\r\n1234567890123456789012345\nQUIT\r\n"), 8, "NOOP|!|QUIT|", 0},
    {S("1234567890\r\n1234567890\r\nA\r\n"), 8, "!|!|A|", 0},
    {S("1234567890123456789012345"), 8, "!|", 0},
    {S("1234567890123\r"), 8, "!|", 0},
    {S("123456789\r\n\r\n"), 8, "!||", 0},
};

static void
test_line_cases(void **state)
{
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const char *in = line_cases[i].in;
		size_t len = line_cases[i].len;
		struct transcript whole, part;

		run(in, len, line_cases[i].max, len, 0, &whole);
		if (strcmp(whole.text, line_cases[i].expect) != 0 ||
		    whole.rest != line_cases[i].rest)
			fail_msg("case %zu: got \"%s\" rest %zu, want \"%s\" rest %zu", i,
			    whole.text, whole.rest, line_cases[i].expect, line_cases[i].rest);
		/* one byte at a time */
		run(in, len, line_cases[i].max, 1, 1, &part);
		assert_string_equal(part.text, whole.text);
		assert_int_equal(part.rest, whole.rest);
		/* every two-piece split */
		for (size_t k = 1; k < len; k++) {
			run(in, len, line_cases[i].max, k, 0, &part);
			assert_string_equal(part.text, whole.text);
			assert_int_equal(part.rest, whole.rest);
		}
	}
}

static void
test_line_real_limit(void **state)
{
	/* SMTP_CMD_LINE_MAX exactly, then one more, then an endless line. */
	size_t n = SMTP_CMD_LINE_MAX * 3 + 64;
	char *in = malloc(n);
	size_t off = 0;
	struct transcript whole, part;
	char want[64];

	assert_non_null(in);
	memset(in, 'a', SMTP_CMD_LINE_MAX);
	off = SMTP_CMD_LINE_MAX;
	memcpy(in + off, "\r\n", 2);
	off += 2;
	memset(in + off, 'b', SMTP_CMD_LINE_MAX + 1);
	off += SMTP_CMD_LINE_MAX + 1;
	memcpy(in + off, "\r\nQUIT\r\n", 8);
	off += 8;
	run(in, off, SMTP_CMD_LINE_MAX, off, 0, &whole);
	assert_int_equal(whole.len, SMTP_CMD_LINE_MAX + strlen("|!|QUIT|"));
	assert_string_equal(whole.text + SMTP_CMD_LINE_MAX, "|!|QUIT|");
	run(in, off, SMTP_CMD_LINE_MAX, 1, 1, &part);
	assert_string_equal(part.text, whole.text);
	run(in, off, SMTP_CMD_LINE_MAX, 1, 7, &part);
	assert_string_equal(part.text, whole.text);

	/* A line that never ends is reported once and does not pile up. */
	memset(in, 'c', n);
	run(in, n, SMTP_CMD_LINE_MAX, 1, 1, &part);
	snprintf(want, sizeof(want), "!|");
	assert_string_equal(part.text, want);
	assert_int_equal(part.rest, 0);
	free(in);
}

static void
test_line_init(void **state)
{
	struct smtp_line s;
	const char *line = (const char *)&s;
	size_t n = 99, consumed = 99;

	smtp_line_init(&s, SASL_LINE_MAX);
	assert_int_equal(s.max, SASL_LINE_MAX);
	assert_false(s.skipping);
	assert_false(s.reported);
	assert_int_equal(smtp_line_next(&s, "", 0, &line, &n, &consumed), SMTP_LINE_NEED_MORE);
	assert_null(line);
	assert_int_equal(n, 0);
	assert_int_equal(consumed, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_cases),
	    cmocka_unit_test(test_line_real_limit),
	    cmocka_unit_test(test_line_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
