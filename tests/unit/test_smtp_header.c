/*
 * Unit tests for smtp/smtp_header: From: extraction from a streamed header
 * section. Every case is fed whole, one byte at a time and split at every
 * point; all must give the same verdict and addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_header.h"

#define MAX_ADDRS 4

struct hcase {
	const char *msg;
	enum smtp_header_from want;
	const char *addrs[MAX_ADDRS]; /* for SMTP_HEADER_FROM_OK */
};

static const struct hcase cases[] = {
    {"From: alice@example.test\r\n\r\nbody\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    {"From: <alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    {"From: Alice <alice@example.test>\r\nTo: b@x\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    {"FROM:alice@example.test\r\n\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    {"from : alice@example.test\r\n\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    /* display names that look like addresses must not confuse it */
    {"From: \"bob@evil.test\" <alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    {"From: \"Doe, John <x@evil.test>\" <alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    {"From: alice@example.test (Alice <bob@evil.test>, yes)\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    {"From: (c (nested) \\) x) Alice <alice@example.test> (tail)\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    {"From: =?UTF-8?B?Qm9iIDxib2JAZXZpbC50ZXN0Pg==?= <alice@example.test>\r\n\r\n",
        SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    {"From: =?utf-8?q?J=C3=B6rg?= <alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    /* folded */
    {"From: Alice\r\n <alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    {"From:\r\n\t<alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    {"Subject: x\r\nFrom: a@example.test,\r\n b@example.test\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"a@example.test", "b@example.test"}},
    /* a mailbox-list; quoted local part; obs-route; UTF-8 */
    {"From: A <a@example.test>, \"B\" <b@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"a@example.test", "b@example.test"}},
    {"From: \"a b\"@example.test\r\n\r\n", SMTP_HEADER_FROM_OK, {"\"a b\"@example.test"}},
    {"From: <@relay.test,@r2.test:alice@example.test>\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"alice@example.test"}},
    {"From: Jösé <jösé@exämple.test>\r\n\r\n", SMTP_HEADER_FROM_OK, {"jösé@exämple.test"}},
    {"From: < alice@example.test >\r\n\r\n", SMTP_HEADER_FROM_OK, {"alice@example.test"}},
    /* group syntax */
    {"From: Team: a@example.test, b@example.test;\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"a@example.test", "b@example.test"}},
    {"From: undisclosed:;\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    /* several From: fields: all addresses */
    {"From: a@example.test\r\nX: y\r\nFrom: b@evil.test\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"a@example.test", "b@evil.test"}},
    /* only the header section counts */
    {"Subject: x\r\n\r\nFrom: evil@evil.test\r\n", SMTP_HEADER_FROM_NONE, {NULL}},
    {"Subject: x\r\nnot a header line\r\nFrom: evil@evil.test\r\n\r\n", SMTP_HEADER_FROM_NONE,
        {NULL}},
    {"From: a@example.test\r\nnot a header\r\nFrom: evil@evil.test\r\n\r\n", SMTP_HEADER_FROM_OK,
        {"a@example.test"}},
    {"From x: a@example.test\r\n\r\n", SMTP_HEADER_FROM_NONE, {NULL}},
    {"X-From: evil@evil.test\r\nReply-To: e@evil.test\r\nSender: s@evil.test\r\n\r\n",
        SMTP_HEADER_FROM_NONE, {NULL}},
    {"", SMTP_HEADER_FROM_NONE, {NULL}},
    {"\r\n", SMTP_HEADER_FROM_NONE, {NULL}},
    /* a message with no body and no empty line */
    {"From: a@example.test", SMTP_HEADER_FROM_OK, {"a@example.test"}},
    {"From: a@example.test\r\n", SMTP_HEADER_FROM_OK, {"a@example.test"}},
    /* LF line ends (bare LF is refused elsewhere, but parse the same) */
    {"From: a@example.test\nTo: b\n\n", SMTP_HEADER_FROM_OK, {"a@example.test"}},
    /* malformed */
    {"From: Alice\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: alice@example.test bob@evil.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: \r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: <>\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: <a@example.test> <b@evil.test>\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: <a@example.test> b@evil.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: <a@example.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: \"a@example.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: (a@example.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: a@example.test;\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: g: a@example.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: @example.test\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: a@\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
    {"From: a@example.test\r\nFrom: junk\r\n\r\n", SMTP_HEADER_FROM_BAD, {NULL}},
};

struct run {
	enum smtp_header_from result;
	size_t naddrs;
	char addrs[SMTP_HEADER_ADDRS_MAX][SMTP_ADDR_MAX + 1];
};

/* Feeds msg after a first piece of first bytes, then pieces of step. */
static void
run_case(const char *msg, size_t len, size_t first, size_t step, struct run *out)
{
	struct smtp_header h;
	size_t off = 0, n = first;

	smtp_header_init(&h);
	while (off < len) {
		if (n > len - off)
			n = len - off;
		smtp_header_feed(&h, msg + off, n);
		off += n;
		n = step;
	}
	smtp_header_finish(&h);
	assert_true(smtp_header_is_done(&h));
	memset(out, 0, sizeof(*out));
	out->result = smtp_header_result(&h);
	out->naddrs = h.naddrs;
	for (size_t i = 0; i < h.naddrs; i++)
		snprintf(out->addrs[i], sizeof(out->addrs[i]), "%s", h.addrs[i]);
	smtp_header_clear(&h);
}

static void
assert_same(const struct run *a, const struct run *b, size_t ci, size_t split)
{
	if (a->result != b->result || a->naddrs != b->naddrs)
		fail_msg("case %zu split %zu: result %d/%d naddrs %zu/%zu", ci, split, a->result,
		    b->result, a->naddrs, b->naddrs);
	for (size_t i = 0; i < a->naddrs; i++)
		assert_string_equal(a->addrs[i], b->addrs[i]);
}

static void
test_cases(void **state)
{
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const char *msg = cases[ci].msg;
		size_t len = strlen(msg), n = 0;
		struct run whole, other;

		run_case(msg, len, len, len, &whole);
		if (whole.result != cases[ci].want)
			fail_msg("case %zu (%s): result %d, want %d", ci, msg, whole.result,
			    cases[ci].want);
		if (whole.result == SMTP_HEADER_FROM_OK) {
			while (n < MAX_ADDRS && cases[ci].addrs[n] != NULL)
				n++;
			if (whole.naddrs != n)
				fail_msg("case %zu: %zu addresses, want %zu", ci, whole.naddrs, n);
			for (size_t i = 0; i < n; i++)
				assert_string_equal(whole.addrs[i], cases[ci].addrs[i]);
		}
		run_case(msg, len, 1, 1, &other); /* byte by byte */
		assert_same(&whole, &other, ci, 1);
		for (size_t split = 0; split <= len; split++) {
			run_case(msg, len, split, len, &other);
			assert_same(&whole, &other, ci, split);
		}
	}
}

static void
test_limits(void **state)
{
	struct smtp_header h;
	char line[64];

	/* a From: field over SMTP_HEADER_FIELD_MAX */
	smtp_header_init(&h);
	smtp_header_feed(&h, "From: a@example.test", 20);
	for (size_t i = 0; i < SMTP_HEADER_FIELD_MAX / 6 + 1; i++) /* 6 bytes each, unfolded */
		smtp_header_feed(&h, "\r\n (xx) ", 8);
	smtp_header_feed(&h, "\r\n\r\n", 4);
	assert_int_equal(smtp_header_result(&h), SMTP_HEADER_FROM_BAD);
	smtp_header_clear(&h);

	/* more than SMTP_HEADER_ADDRS_MAX addresses */
	smtp_header_init(&h);
	for (size_t i = 0; i <= SMTP_HEADER_ADDRS_MAX; i++) {
		snprintf(line, sizeof(line), "From: a%zu@example.test\r\n", i);
		smtp_header_feed(&h, line, strlen(line));
	}
	smtp_header_finish(&h);
	assert_int_equal(smtp_header_result(&h), SMTP_HEADER_FROM_BAD);
	smtp_header_clear(&h);

	/* a long header section without From: costs nothing */
	smtp_header_init(&h);
	for (size_t i = 0; i < 10000; i++) {
		const char *x = "X-Long: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n";

		smtp_header_feed(&h, x, strlen(x));
	}
	smtp_header_feed(&h, "From: a@example.test\r\n\r\nFrom: b@evil.test\r\n", 43);
	assert_true(smtp_header_is_done(&h));
	smtp_header_finish(&h);
	assert_int_equal(smtp_header_result(&h), SMTP_HEADER_FROM_OK);
	assert_int_equal(h.naddrs, 1);
	smtp_header_clear(&h);
	smtp_header_clear(NULL);
}

static int
count_cb(void *arg, const char *addr, size_t len)
{
	(*(size_t *)arg)++;
	assert_int_equal(strlen(addr), len);
	return 0;
}

static void
test_parse_from(void **state)
{
	size_t n = 0;

	assert_int_equal(smtp_header_parse_from("a@b, ,c@d,", 10, count_cb, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(smtp_header_parse_from("x <a@b>", 7, count_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(smtp_header_parse_from("x <a@b", 6, count_cb, &n), -1);
	assert_int_equal(smtp_header_parse_from("a@b>", 4, count_cb, &n), -1);
	assert_int_equal(smtp_header_parse_from("<a@b", 4, count_cb, &n), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_parse_from),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
