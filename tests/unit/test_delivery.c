/* Unit tests for the pure parts of delivery (src/relay/): delivery state in the envelope
 * (qfile), reply classification (deliver), DSNs (bounce), credentials lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "queue/envelope.h"
#include "queue/qfile.h"
#include "relay/bounce.h"
#include "relay/creds.h"
#include "relay/deliver.h"

static const char env_text[] = "smtpgate-envelope: 1\n"
                               "id: 1k0x4xx88tqwka93rq\n"
                               "arrival: 1700000000\n"
                               "sender: alice@example.test\n"
                               "rcpt: bob@example.net\n"
                               "rcpt: carol@example.net\n"
                               "rcpt: dave@example.net\n"
                               "client-addr: 203.0.113.5\n"
                               "helo: laptop\n"
                               "smtputf8: no\n"
                               "body: 7bit\n"
                               "x-later-field: kept%25\n";

static void
test_state_round_trip(void **state)
{
	const char *errstr = NULL;
	struct envelope *e = envelope_parse(env_text, strlen(env_text), &errstr), *e2;
	struct qfile_rcpt rs[3], rs2[3];
	unsigned attempts;
	long long next, warned = -1;
	struct buf out;

	assert_non_null(e);
	memset(rs, 0, sizeof(rs));
	memset(rs2, 0, sizeof(rs2));
	qfile_parse_state(e, &attempts, &next, &warned, rs);
	assert_int_equal(attempts, 0);
	assert_true(next == 0);
	assert_true(warned == 0);
	assert_int_equal(rs[0].state, QFILE_PENDING);
	qfile_set(&rs[0], QFILE_SENT, 250, "2.0.0", 1700000100, "250 2.0.0 ok");
	qfile_set(&rs[1], QFILE_DEFERRED, 451, "4.3.0", 1700000100,
	    "RCPT: 451 4.3.0 try later\r\nwith a line break %");
	qfile_set(&rs[2], QFILE_HELD, 0, "", 1700000100, "the server does not offer AUTH");
	buf_init(&out, ENVELOPE_MAX);
	assert_int_equal(qfile_encode(e, 3, 1700000160, 0, rs, &out), 0);
	/* not warned: no field at all */
	assert_null(strstr(out.data, "warned:"));
	buf_reset(&out);
	assert_int_equal(qfile_encode(e, 3, 1700000160, 1700000130, rs, &out), 0);
	assert_non_null(strstr(out.data, "\nwarned: 1700000130\n"));
	/* the value escaping keeps one line per field */
	assert_null(strstr(out.data, "\r\nwith"));
	e2 = envelope_parse(out.data, out.len, &errstr);
	assert_non_null(e2);
	qfile_parse_state(e2, &attempts, &next, &warned, rs2);
	assert_int_equal(attempts, 3);
	assert_true(next == 1700000160);
	assert_true(warned == 1700000130);
	assert_int_equal(rs2[0].state, QFILE_SENT);
	assert_int_equal(rs2[0].code, 250);
	assert_string_equal(rs2[0].enh, "2.0.0");
	assert_int_equal(rs2[1].state, QFILE_DEFERRED);
	assert_string_equal(rs2[1].text, "RCPT: 451 4.3.0 try later\r\nwith a line break %");
	assert_int_equal(rs2[2].state, QFILE_HELD);
	assert_string_equal(rs2[2].enh, "");
	assert_true(rs2[2].when == 1700000100);
	/* unknown fields pass through; the old state is replaced, not repeated */
	assert_non_null(strstr(out.data, "x-later-field: kept%25\n"));
	buf_reset(&out);
	assert_int_equal(qfile_encode(e2, 4, QFILE_NEVER, warned, rs2, &out), 0);
	assert_non_null(strstr(out.data, "next-try: never\n"));
	assert_null(strstr(strstr(out.data, "attempts: 4") + 1, "attempts:"));
	/* warned is replaced, not repeated, and survives a second rewrite */
	assert_null(strstr(strstr(out.data, "warned: 1700000130\n") + 1, "warned:"));
	/* a reader that does not know the field (NULL) still parses the rest */
	qfile_parse_state(e2, &attempts, &next, NULL, rs2);
	assert_int_equal(attempts, 3);
	for (size_t i = 0; i < 3; i++) {
		free(rs[i].text);
		free(rs2[i].text);
	}
	buf_free(&out);
	envelope_free(e);
	envelope_free(e2);
}

static void
test_bad_state_values_are_ignored(void **state)
{
	static const char *bad[] = {"9 sent 250 - 1 x", "0 bogus 250 - 1 x", "x", "0 sent", ""};
	const char *errstr;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[1024];
		struct envelope *e;
		struct qfile_rcpt rs[3];
		unsigned attempts;
		long long next, warned;

		snprintf(text, sizeof(text), "%srcpt-status: %s\n", env_text, bad[i]);
		e = envelope_parse(text, strlen(text), &errstr);
		if (e == NULL)
			continue; /* an empty value is no field at all */
		memset(rs, 0, sizeof(rs));
		qfile_parse_state(e, &attempts, &next, &warned, rs);
		assert_true(warned == 0);
		for (size_t k = 0; k < 3; k++)
			assert_int_equal(rs[k].state, QFILE_PENDING);
		envelope_free(e);
	}
}

/* warned: any value means a warning went out (never a second one) */
static void
test_warned_field(void **state)
{
	static const struct {
		const char *value;
		long long want;
	} rows[] = {
	    {"1700000130", 1700000130},
	    {"0", 1},
	    {"-5", 1},
	    {"soon", 1},
	    {"17x", 1},
	};
	const char *errstr;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[1024];
		struct envelope *e;
		struct qfile_rcpt rs[3];
		unsigned attempts;
		long long next, warned;

		snprintf(text, sizeof(text), "%swarned: %s\n", env_text, rows[i].value);
		e = envelope_parse(text, strlen(text), &errstr);
		assert_non_null(e);
		memset(rs, 0, sizeof(rs));
		qfile_parse_state(e, &attempts, &next, &warned, rs);
		if (warned != rows[i].want)
			fail_msg("row %zu: %lld", i, warned);
		envelope_free(e);
	}
}

static void
test_classify(void **state)
{
	static const struct {
		int code;
		const char *enh, *cmd;
		enum qfile_state want;
	} rows[] = {
	    {250, "2.0.0", "DATA", QFILE_SENT},
	    {451, "4.3.0", "DATA", QFILE_DEFERRED},
	    {421, "4.7.0", "", QFILE_DEFERRED},
	    {454, "4.7.0", "AUTH", QFILE_DEFERRED},
	    {550, "5.1.1", "RCPT", QFILE_FAILED},
	    {554, "5.7.1", "DATA", QFILE_FAILED},
	    {552, "5.3.4", "MAIL", QFILE_FAILED},
	    {535, "5.7.8", "AUTH", QFILE_HELD},
	    {534, "5.7.9", "AUTH", QFILE_HELD},
	    {530, "5.7.0", "MAIL", QFILE_HELD},
	    {538, "5.7.11", "AUTH", QFILE_HELD},
	    {504, "5.5.4", "AUTH", QFILE_HELD},
	    {0, "", "", QFILE_DEFERRED},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (deliver_classify(rows[i].code, rows[i].enh, rows[i].cmd) != rows[i].want)
			fail_msg("row %zu: %d %s", i, rows[i].code, rows[i].enh);
	}
}

static void
test_bounce(void **state)
{
	static const char body[] = "Received: from x\r\nSubject: hi\r\n\r\nsecret body\r\n";
	struct bounce_rcpt r[2] = {
	    {.rcpt = "bob@example.net",
	        .code = 550,
	        .enh = "5.1.1",
	        .text = "RCPT: 550 5.1.1 no such user",
	        .relay = "smtp.example.net:587",
	        .when = 1700000100},
	    {.rcpt = "carol@example.net",
	        .code = 451,
	        .enh = "4.4.7",
	        .text = "DATA: 451 4.3.0 busy",
	        .relay = "/run/lmtp",
	        .expired = true,
	        .when = 1700000100},
	};
	struct bounce_in in = {.hostname = "mail.example.test",
	    .queue_id = "1k0x4xx88tqwka93rq",
	    .sender = "alice@example.test",
	    .arrival = 1700000000,
	    .now = 1700000200,
	    .body = body,
	    .body_len = sizeof(body) - 1,
	    .rcpts = r,
	    .nrcpts = 2};
	struct buf out;
	bool eightbit = true;
	char st[16];

	buf_init(&out, 1 << 20);
	assert_int_equal(bounce_build(&in, &out, &eightbit), 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	assert_false(eightbit);
	assert_non_null(
	    strstr(out.data, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(out.data, "Reporting-MTA: dns; mail.example.test\r\n"));
	assert_non_null(strstr(out.data,
	    "Final-Recipient: rfc822; bob@example.net\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\n"
	    "Remote-MTA: dns; smtp.example.net:587\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
	assert_non_null(strstr(out.data,
	    "Final-Recipient: rfc822; carol@example.net\r\n"
	    "Action: failed\r\nStatus: 4.4.7\r\n"
	    "Diagnostic-Code: smtp; 451 4.3.0 busy\r\n"));
	assert_non_null(strstr(out.data, "text/rfc822-headers\r\n"));
	assert_non_null(strstr(out.data, "Subject: hi\r\n"));
	assert_null(strstr(out.data, "secret body")); /* headers only */
	/* no bare LF anywhere */
	for (size_t i = 0; i + 1 < out.len; i++) {
		if (out.data[i] == '\n')
			assert_int_equal(out.data[i - 1], '\r');
	}
	/* a failure DSN is not a warning */
	assert_non_null(strstr(out.data, "Subject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(strstr(out.data, "Message-ID: <1k0x4xx88tqwka93rq.dsn@mail.example.test>"));
	assert_null(strstr(out.data, "Will-Retry-Until"));
	assert_null(strstr(out.data, "Action: delayed"));
	bounce_status(&r[0], false, st);
	assert_string_equal(st, "5.1.1");
	r[0].enh = "";
	bounce_status(&r[0], false, st);
	assert_string_equal(st, "5.0.0");
	buf_free(&out);
}

/* The part of s from the line starting with start to the next blank line. */
static char *
part_from(const char *s, const char *start)
{
	const char *p = strstr(s, start), *end;

	assert_non_null(p);
	end = strstr(p, "\r\n\r\n");
	assert_non_null(end);
	return xstrndup(p, (size_t)(end - p) + 2);
}

static void
test_bounce_delayed(void **state)
{
	static const char body[] = "Subject: hi\r\nMessage-ID: <m1@x>\r\n\r\nsecret body\r\n";
	static const struct {
		int code;
		const char *enh, *want;
	} rows[] = {
	    {451, "4.2.1", "4.2.1"}, {421, "4.7.0", "4.7.0"}, {451, "", "4.0.0"}, {0, "", "4.4.0"},
	    {451, "5.1.1", "4.0.0"}, /* a class 5 code on a deferral is not copied */
	};
	struct bounce_rcpt r[3] = {
	    {.rcpt = "bob@example.net",
	        .code = 451,
	        .enh = "4.2.1",
	        .text = "RCPT: 451 4.2.1 mailbox busy",
	        .relay = "smtp.example.net:587",
	        .when = 1700000100,
	        .retry_until = 1700432000},
	    {.rcpt = "carol@example.net",
	        .code = 0,
	        .enh = "",
	        .text = "connect: Connection refused",
	        .relay = "",
	        .when = 1700000100,
	        .retry_until = 1700086400},
	    /* pending behind another destination: never tried */
	    {.rcpt = "dave@example.org",
	        .code = 0,
	        .enh = "",
	        .text = "",
	        .relay = "",
	        .retry_until = 1700432000},
	};
	struct bounce_in in = {.hostname = "mail.example.test",
	    .queue_id = "1k0x4xx88tqwka93rq",
	    .sender = "alice@example.test",
	    .arrival = 1700000000,
	    .now = 1700014400,
	    .body = body,
	    .body_len = sizeof(body) - 1,
	    .rcpts = r,
	    .nrcpts = 3,
	    .delayed = true};
	struct buf out;
	bool eightbit = true;
	char st[16], *g;

	buf_init(&out, 1 << 20);
	assert_int_equal(bounce_build(&in, &out, &eightbit), 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	assert_false(eightbit);
	/* headers: its own subject, and an id that a later failure DSN does not reuse */
	assert_non_null(strstr(out.data, "Subject: Delayed Mail (still being retried)\r\n"));
	assert_null(strstr(out.data, "Undelivered Mail"));
	assert_non_null(
	    strstr(out.data, "Message-ID: <1k0x4xx88tqwka93rq.delay@mail.example.test>\r\n"));
	assert_non_null(strstr(out.data, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(
	    strstr(out.data, "Content-Type: multipart/report; report-type=delivery-status;"));
	/* the human part: delayed, not failed, nothing to do, and until when */
	assert_non_null(strstr(out.data, "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND"));
	assert_non_null(strstr(out.data,
	    "It has NOT failed: the mail system keeps trying,\r\n"
	    "and nothing needs doing now."));
	assert_null(strstr(out.data, "could not be delivered"));
	assert_non_null(strstr(out.data,
	    "<bob@example.net>: still trying until "
	    "Sun, 19 Nov 2023 22:13:20 +0000; last error: "
	    "RCPT: 451 4.2.1 mailbox busy\r\n"));
	assert_non_null(strstr(out.data,
	    "<dave@example.org>: still trying until "
	    "Sun, 19 Nov 2023 22:13:20 +0000; not tried yet\r\n"));
	/* the machine part: per-message fields, then one group per recipient */
	assert_non_null(strstr(out.data,
	    "Reporting-MTA: dns; mail.example.test\r\n"
	    "X-Smtpgate-Queue-ID: 1k0x4xx88tqwka93rq\r\n"
	    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	g = part_from(out.data, "Final-Recipient: rfc822; bob@example.net\r\n");
	assert_string_equal(g,
	    "Final-Recipient: rfc822; bob@example.net\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.2.1\r\n"
	    "Remote-MTA: dns; smtp.example.net:587\r\n"
	    "Diagnostic-Code: smtp; 451 4.2.1 mailbox busy\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 +0000\r\n"
	    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n");
	free(g);
	g = part_from(out.data, "Final-Recipient: rfc822; carol@example.net\r\n");
	assert_string_equal(g,
	    "Final-Recipient: rfc822; carol@example.net\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.0\r\n"
	    "Diagnostic-Code: X-smtpgate; connect: Connection refused\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 +0000\r\n"
	    "Will-Retry-Until: Wed, 15 Nov 2023 22:13:20 +0000\r\n");
	free(g);
	/* never tried: no diagnostic, no last attempt */
	g = part_from(out.data, "Final-Recipient: rfc822; dave@example.org\r\n");
	assert_string_equal(g,
	    "Final-Recipient: rfc822; dave@example.org\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.0\r\n"
	    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n");
	free(g);
	assert_null(strstr(out.data, "Action: failed"));
	/* the headers of the delayed message, not its body */
	assert_non_null(strstr(out.data,
	    "Content-Type: text/rfc822-headers\r\n"
	    "Content-Description: Headers of the delayed message\r\n"
	    "\r\n"
	    "Subject: hi\r\nMessage-ID: <m1@x>\r\n"));
	assert_null(strstr(out.data, "secret body"));
	for (size_t i = 0; i + 1 < out.len; i++) {
		if (out.data[i] == '\n')
			assert_int_equal(out.data[i - 1], '\r');
	}
	/* status: class 4 enhanced codes kept, others derived; 4.x.x always */
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct bounce_rcpt b = {.code = rows[i].code, .enh = rows[i].enh, .text = ""};

		bounce_status(&b, true, st);
		if (strcmp(st, rows[i].want) != 0)
			fail_msg("row %zu: %s", i, st);
	}
	buf_free(&out);
}

static void
test_creds_line(void **state)
{
	char *user = NULL;
	const char *secret;
	size_t len;

	assert_int_equal(creds_parse_line("relay pass word\r\n", 17, &user, &secret, &len), 0);
	assert_string_equal(user, "relay");
	assert_int_equal(len, 9);
	assert_memory_equal(secret, "pass word", 9);
	free(user);
	assert_int_equal(creds_parse_line("u !cmd --x", 10, &user, &secret, &len), 0);
	assert_memory_equal(secret, "!cmd --x", 8);
	free(user);
	assert_int_equal(creds_parse_line("nospace", 7, &user, &secret, &len), -1);
	assert_int_equal(creds_parse_line(" lead", 5, &user, &secret, &len), -1);
	assert_int_equal(creds_parse_line("user \n", 6, &user, &secret, &len), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_round_trip),
	    cmocka_unit_test(test_bad_state_values_are_ignored),
	    cmocka_unit_test(test_warned_field),
	    cmocka_unit_test(test_classify),
	    cmocka_unit_test(test_bounce),
	    cmocka_unit_test(test_bounce_delayed),
	    cmocka_unit_test(test_creds_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
