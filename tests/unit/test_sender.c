/* Unit tests for policy/sender: ownership table, pattern checks, reply text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/sender.h"

static void
test_owns(void **state)
{
	static const struct {
		const char *login, *patterns, *addr;
		bool want;
	} cases[] = {
	    /* the login itself */
	    {"alice@example.test", NULL, "alice@example.test", true},
	    {"alice@example.test", "", "alice@example.test", true},
	    {"alice@example.test", NULL, "bob@example.test", false},
	    {"alice@example.test", NULL, "alice@example.org", false},
	    {"alice@example.test", NULL, "alice@sub.example.test", false},
	    {"alice@example.test", NULL, "alice@example.test.evil", false},
	    {"alice@example.test", NULL, "xalice@example.test", false},
	    /* case: ASCII-insensitive in both halves */
	    {"alice@example.test", NULL, "Alice@EXAMPLE.Test", true},
	    {"Alice@Example.Test", NULL, "alice@example.test", true},
	    /* quoted local part */
	    {"alice@example.test", NULL, "\"alice\"@example.test", true},
	    {"alice@example.test", NULL, "\"alice@example.test\"@evil.test", false},
	    {"alice@example.test", NULL, "\"al\\ice\"@example.test", true},
	    /* null sender and junk */
	    {"alice@example.test", "@example.test", "", false},
	    {"alice@example.test", "@example.test", "postmaster", false},
	    {"alice@example.test", "@example.test", "@example.test", false},
	    {"alice@example.test", "@example.test", "alice@", false},
	    /* a login that is not an address owns nothing by itself */
	    {"alice", NULL, "alice@example.test", false},
	    {"alice", "alice@example.test", "alice@example.test", true},
	    /* aliases */
	    {"alice@example.test", "info@example.test", "info@example.test", true},
	    {"alice@example.test", "info@example.test", "Info@Example.test", true},
	    {"alice@example.test", "info@example.test", "sales@example.test", false},
	    {"alice@example.test", "a@x.test,info@example.test", "info@example.test", true},
	    {"alice@example.test", "a@x.test, info@example.test ", "info@example.test", true},
	    {"alice@example.test", "a@x.test,,", "info@example.test", false},
	    /* @domain */
	    {"alice@example.test", "@example.org", "anyone@example.org", true},
	    {"alice@example.test", "@example.org", "anyone@EXAMPLE.ORG", true},
	    {"alice@example.test", "@example.org", "anyone@sub.example.org", false},
	    {"alice@example.test", "@example.org", "anyone@example.org.evil", false},
	    {"alice@example.test", "@example.org", "\"x@y\"@example.org", true},
	    {"alice@example.test", "@example.org", "x@y@evil.test", false},
	    {"alice@example.test", "@", "x@example.org", false},
	    {"alice@example.test", "example.org", "x@example.org", false},
	    /* UTF-8 and IDN: byte for byte beyond ASCII case */
	    {"jösé@exämple.test", NULL, "jösé@exämple.test", true},
	    {"jösé@exämple.test", NULL, "JÖSÉ@exämple.test", false},
	    {"jösé@exämple.test", NULL, "JöSé@EXäMPLE.test", true},
	    {"alice@example.test", "@bücher.test", "x@bücher.test", true},
	    {"alice@example.test", "@bücher.test", "x@xn--bcher-kva.test", false},
	    {"alice@example.test", "@xn--bcher-kva.test", "x@XN--BCHER-KVA.test", true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sender_owns(cases[i].login, cases[i].patterns, cases[i].addr) != cases[i].want)
			fail_msg("case %zu: %s %s %s", i, cases[i].login,
			    cases[i].patterns ? cases[i].patterns : "(null)", cases[i].addr);
	}
}

static void
test_envelope(void **state)
{
	assert_true(sender_envelope_is_allowed("alice@example.test", NULL, ""));
	assert_true(sender_envelope_is_allowed("alice@example.test", NULL, "alice@example.test"));
	assert_false(sender_envelope_is_allowed("alice@example.test", NULL, "bob@example.test"));
}

static void
test_pattern_check(void **state)
{
	static const struct {
		const char *p;
		int want;
	} cases[] = {
	    {"a@b.test", 0},
	    {"@b.test", 0},
	    {"jösé@bücher.test", 0},
	    {"@", -1},
	    {"a@", -1},
	    {"b.test", -1},
	    {"a@b@c", -1},
	    {"a b@c", -1},
	    {"a,b@c", -1},
	    {"a:b@c", -1},
	    {"\"a\"@c", -1},
	    {"a@.c", -1},
	    {"a@c.", -1},
	    {"a@c..d", -1},
	    {"", -1},
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@c", -1},
	};
	const char *errstr;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errstr = NULL;
		if (sender_pattern_check(cases[i].p, &errstr) != cases[i].want)
			fail_msg("case %zu: %s", i, cases[i].p);
		if (cases[i].want == -1)
			assert_non_null(errstr);
	}
}

static void
test_reject_text(void **state)
{
	char text[SENDER_REPLY_TEXT_MAX], small[48];
	char many[2000];

	sender_reject_text("alice@example.test", "@example.org", NULL, text, sizeof(text));
	assert_string_equal(text,
	    "Sender address rejected: not owned by user alice@example.test "
	    "(allowed: alice@example.test, @example.org)");
	sender_reject_text("alice@example.test", NULL, NULL, text, sizeof(text));
	assert_string_equal(text,
	    "Sender address rejected: not owned by user alice@example.test "
	    "(allowed: alice@example.test)");
	sender_reject_text("alice", NULL, NULL, text, sizeof(text));
	assert_string_equal(
	    text, "Sender address rejected: not owned by user alice (allowed: none)");
	sender_reject_text(
	    "alice@example.test", "a@b.test, ,c@d.test", "evil@x.test", text, sizeof(text));
	assert_string_equal(text,
	    "Sender address rejected: not owned by user alice@example.test "
	    "(header From: evil@x.test; allowed: alice@example.test, "
	    "a@b.test, c@d.test)");
	/* non-ASCII and control bytes never reach the reply */
	sender_reject_text("jösé@example.test", NULL, "a\r\nb@x", text, sizeof(text));
	for (const char *p = text; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	/* long lists are cut, still closed */
	memset(many, 0, sizeof(many));
	for (size_t i = 0; i + 12 < sizeof(many); i += 11)
		memcpy(many + i, "@abcdefghi,", 11);
	sender_reject_text("alice@example.test", many, NULL, text, sizeof(text));
	assert_true(strlen(text) < sizeof(text));
	assert_non_null(strstr(text, "...)"));
	sender_reject_text("alice@example.test", many, NULL, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	assert_int_equal(small[strlen(small) - 1], ')');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_owns),
	    cmocka_unit_test(test_envelope),
	    cmocka_unit_test(test_pattern_check),
	    cmocka_unit_test(test_reject_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
