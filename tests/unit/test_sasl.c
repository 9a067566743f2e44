/* Unit tests for sasl: PLAIN decoding (RFC 4616) and the PLAIN/LOGIN steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sasl/sasl.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_mech.h"
#include "sasl/sasl_plain.h"
#include "sasl/sasl_scram.h"

#define S(lit) lit, sizeof(lit) - 1

static const struct {
	const char *msg;
	size_t len;
	int ok;
	const char *user;
	const char *pass;
} plain_cases[] = {
    {S("\0alice\0secret"), 0, "alice", "secret"},
    {S("alice\0alice\0secret"), 0, "alice", "secret"}, /* authzid == authcid */
    {S("bob\0alice\0secret"), -1, NULL, NULL}, /* proxy login refused */
    {S("\0\0secret"), -1, NULL, NULL}, /* empty authcid */
    {S("\0alice\0"), -1, NULL, NULL}, /* empty password */
    {S("\0alice"), -1, NULL, NULL}, /* one NUL only */
    {S("alice"), -1, NULL, NULL}, /* no NUL */
    {S("\0alice\0se\0cret"), -1, NULL, NULL}, /* NUL in password */
    {S(""), -1, NULL, NULL},
    {S("\0a\0p"), 0, "a", "p"},
};

static void
test_plain_decode(void **state)
{
	for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		const char *u, *p;
		size_t ul, pl;
		int r = sasl_plain_decode(plain_cases[i].msg, plain_cases[i].len, &u, &ul, &p, &pl);

		if (r != plain_cases[i].ok)
			fail_msg("case %zu: got %d", i, r);
		if (r == 0) {
			assert_int_equal(ul, strlen(plain_cases[i].user));
			assert_memory_equal(u, plain_cases[i].user, ul);
			assert_int_equal(pl, strlen(plain_cases[i].pass));
			assert_memory_equal(p, plain_cases[i].pass, pl);
		}
	}
}

static void
test_plain_limits(void **state)
{
	char msg[2 + SASL_USER_MAX + 1 + 8];
	const char *u, *p;
	size_t ul, pl;

	memset(msg, 'u', sizeof(msg));
	msg[0] = '\0';
	msg[1 + SASL_USER_MAX + 1] = '\0'; /* user of SASL_USER_MAX + 1 */
	assert_int_equal(sasl_plain_decode(msg, sizeof(msg), &u, &ul, &p, &pl), -1);
	msg[1 + SASL_USER_MAX] = '\0'; /* user of exactly SASL_USER_MAX */
	msg[1 + SASL_USER_MAX + 1] = 'p';
	assert_int_equal(sasl_plain_decode(msg, sizeof(msg), &u, &ul, &p, &pl), 0);
	assert_int_equal(ul, SASL_USER_MAX);
}

static void
test_plain_exchange(void **state)
{
	const struct sasl_mech *m = sasl_mech_find("PLAIN");
	struct sasl_exchange *x;
	struct buf out;

	assert_non_null(m);
	assert_true(sasl_mech_flags(m) & SASL_F_PLAINTEXT);
	buf_init(&out, 1024);
	/* without initial response: empty challenge, then the response */
	x = sasl_new(m);
	assert_int_equal(sasl_step(x, NULL, 0, false, &out), SASL_CONTINUE);
	assert_int_equal(out.len, 0);
	assert_int_equal(sasl_step(x, S("\0alice\0pw"), true, &out), SASL_VERIFY_PLAIN);
	assert_string_equal(sasl_user(x), "alice");
	assert_string_equal(sasl_password(x), "pw");
	assert_int_equal(sasl_password_len(x), 2);
	sasl_free(x);
	/* a malformed response */
	x = sasl_new(m);
	assert_int_equal(sasl_step(x, S("garbage"), true, &out), SASL_MALFORMED);
	sasl_free(x);
	buf_free(&out);
}

static void
test_login_exchange(void **state)
{
	const struct sasl_mech *m = sasl_mech_find("LOGIN");
	struct sasl_exchange *x;
	struct buf out;

	assert_non_null(m);
	buf_init(&out, 1024);
	x = sasl_new(m);
	assert_int_equal(sasl_step(x, NULL, 0, false, &out), SASL_CONTINUE);
	assert_string_equal(out.data, "Username:");
	buf_reset(&out);
	assert_int_equal(sasl_step(x, S("alice"), true, &out), SASL_CONTINUE);
	assert_string_equal(out.data, "Password:");
	buf_reset(&out);
	assert_int_equal(sasl_step(x, S("pw"), true, &out), SASL_VERIFY_PLAIN);
	assert_string_equal(sasl_user(x), "alice");
	assert_string_equal(sasl_password(x), "pw");
	sasl_free(x);
	/* initial response carries the user name */
	x = sasl_new(m);
	assert_int_equal(sasl_step(x, S("bob"), true, &out), SASL_CONTINUE);
	assert_string_equal(out.data, "Password:");
	buf_reset(&out);
	assert_int_equal(sasl_step(x, S(""), true, &out), SASL_MALFORMED); /* empty password */
	sasl_free(x);
	/* a NUL inside the user name */
	x = sasl_new(m);
	assert_int_equal(sasl_step(x, NULL, 0, false, &out), SASL_CONTINUE);
	assert_int_equal(sasl_step(x, S("al\0ice"), true, &out), SASL_MALFORMED);
	sasl_free(x);
	buf_free(&out);
}

static void
test_registry(void **state)
{
	assert_null(sasl_mech_find("plain")); /* callers upper-case */
	/* CRAM-MD5 exists but is weak: only used when listed, 534 otherwise */
	assert_non_null(sasl_mech_find("CRAM-MD5"));
	assert_true(sasl_mech_flags(sasl_mech_find("CRAM-MD5")) & SASL_F_WEAK);
	assert_true(sasl_mech_flags(sasl_mech_find("SCRAM-SHA-256-PLUS")) & SASL_F_PLUS);
	assert_false(sasl_mech_flags(sasl_mech_find("SCRAM-SHA-1")) & SASL_F_PLAINTEXT);
	assert_true(sasl_mech_is_known_weak("CRAM-MD5"));
	assert_false(sasl_mech_is_known_weak("FOO"));
	assert_string_equal(sasl_mech_name(sasl_mech_find("LOGIN")), "LOGIN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_decode),
	    cmocka_unit_test(test_plain_limits),
	    cmocka_unit_test(test_plain_exchange),
	    cmocka_unit_test(test_login_exchange),
	    cmocka_unit_test(test_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
