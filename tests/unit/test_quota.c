/* Unit tests for policy/quota: table-driven steps on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy/quota.h"

#define T0 ((time_t)1700000000 - (time_t)1700000000 % 3600) /* on an hour */

enum step_op { MAIL, SENT, RCPT, UNLOCK, LOCKED };

struct step {
	enum step_op op;
	const char *user;
	const char *rcpt;
	time_t at; /* seconds after T0 */
	int want; /* verdict, or bool for UNLOCK and LOCKED */
	unsigned messages, recipients; /* counts after MAIL / RCPT; ~0u: do not check */
};

struct quota_case {
	const char *name;
	unsigned mlimit, rlimit;
	struct step steps[16];
	size_t nsteps;
};

#define A "alice@example.test"
#define B "bob@example.test"
#define ANY (~0u)

static const struct quota_case cases[] = {
    {"messages: the 4th MAIL locks, then all is refused", 3, 0,
        {{MAIL, A, NULL, 0, QUOTA_OK, 0, 0}, {SENT, A, NULL, 0, 0, 0, 0},
            {SENT, A, NULL, 10, 0, 0, 0}, {SENT, A, NULL, 20, 0, 0, 0},
            {MAIL, A, NULL, 30, QUOTA_EXCEEDED, 3, 0}, {MAIL, A, NULL, 40, QUOTA_LOCKED, 3, 0},
            {RCPT, A, "x@y.test", 50, QUOTA_LOCKED, ANY, ANY}, {MAIL, B, NULL, 60, QUOTA_OK, 0, 0},
            {LOCKED, A, NULL, 0, 1, 0, 0}},
        9},
    {"messages expire after 24 whole hours", 2, 0,
        {{SENT, A, NULL, 0, 0, 0, 0}, {SENT, A, NULL, 3599, 0, 0, 0},
            {MAIL, A, NULL, 23 * 3600, QUOTA_EXCEEDED, 2, 0}, {UNLOCK, A, NULL, 0, 1, 0, 0},
            {SENT, A, NULL, 23 * 3600, 0, 0, 0}, {MAIL, A, NULL, 23 * 3600 + 1, QUOTA_OK, 1, 0},
            {SENT, A, NULL, 23 * 3600 + 2, 0, 0, 0},
            {MAIL, A, NULL, 47 * 3600 - 1, QUOTA_EXCEEDED, 2, 0}},
        8},
    {"a window slides: old hours stop counting", 2, 0,
        {{SENT, A, NULL, 0, 0, 0, 0}, {SENT, A, NULL, 5 * 3600, 0, 0, 0},
            {MAIL, A, NULL, 24 * 3600, QUOTA_OK, 1, 0},
            {MAIL, A, NULL, 24 * 3600 + 1, QUOTA_OK, 1, 0}},
        4},
    {"recipients: distinct, case-blind, the 3rd new one locks", 0, 2,
        {{RCPT, A, "x@y.test", 0, QUOTA_OK, 0, 1}, {RCPT, A, "X@Y.TEST", 1, QUOTA_OK, 0, 1},
            {RCPT, A, "z@y.test", 2, QUOTA_OK, 0, 2}, {RCPT, A, "x@y.test", 3, QUOTA_OK, 0, 2},
            {RCPT, A, "w@y.test", 4, QUOTA_EXCEEDED, 0, 2},
            {RCPT, A, "x@y.test", 5, QUOTA_LOCKED, 0, 2}, {MAIL, A, NULL, 6, QUOTA_LOCKED, 0, 2},
            {RCPT, B, "w@y.test", 7, QUOTA_OK, 0, 1}},
        8},
    {"recipients expire; reuse refreshes", 0, 1,
        {{RCPT, A, "x@y.test", 0, QUOTA_OK, 0, 1}, {RCPT, A, "x@y.test", 20 * 3600, QUOTA_OK, 0, 1},
            {RCPT, A, "z@y.test", 30 * 3600, QUOTA_EXCEEDED, 0, 1}, {UNLOCK, A, NULL, 0, 1, 0, 0},
            {RCPT, A, "z@y.test", 45 * 3600, QUOTA_OK, 0, 1}},
        5},
    {"unlock resets counts; unlock of an unknown user says no", 1, 0,
        {{SENT, A, NULL, 0, 0, 0, 0}, {MAIL, A, NULL, 1, QUOTA_EXCEEDED, 1, 0},
            {UNLOCK, A, NULL, 0, 1, 0, 0}, {MAIL, A, NULL, 2, QUOTA_OK, 0, 0},
            {UNLOCK, B, NULL, 0, 0, 0, 0}, {LOCKED, A, NULL, 0, 0, 0, 0}},
        6},
    {"no limits: never locked", 0, 0,
        {{SENT, A, NULL, 0, 0, 0, 0}, {SENT, A, NULL, 0, 0, 0, 0},
            {MAIL, A, NULL, 0, QUOTA_OK, 2, 0}, {RCPT, A, "x@y.test", 0, QUOTA_OK, 2, 1}},
        4},
};

static void
test_cases(void **state)
{
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct quota_case *tc = &cases[c];
		struct quota *q = quota_new(tc->mlimit, tc->rlimit);

		for (size_t i = 0; i < tc->nsteps; i++) {
			const struct step *st = &tc->steps[i];
			struct quota_counts n = {ANY, ANY};
			int got = 0;

			switch (st->op) {
			case MAIL:
				got = (int)quota_check_mail(q, st->user, T0 + st->at, &n);
				break;
			case SENT:
				quota_count_message(q, st->user, T0 + st->at);
				continue;
			case RCPT:
				got = (int)quota_check_rcpt(q, st->user, st->rcpt, T0 + st->at, &n);
				break;
			case UNLOCK:
				got = quota_unlock(q, st->user);
				break;
			case LOCKED:
				got = quota_is_locked(q, st->user);
				break;
			}
			if (got != st->want)
				fail_msg(
				    "%s: step %zu: got %d, want %d", tc->name, i, got, st->want);
			if ((st->op == MAIL || st->op == RCPT) && st->messages != ANY &&
			    (n.messages != st->messages || n.recipients != st->recipients))
				fail_msg("%s: step %zu: counts %u/%u, want %u/%u", tc->name, i,
				    n.messages, n.recipients, st->messages, st->recipients);
		}
		quota_free(q);
	}
}

static void
test_locked_users_and_lock(void **state)
{
	struct quota *q = quota_new(1, 0);
	char **users;
	size_t n;

	quota_lock(q, "zed@example.test");
	quota_count_message(q, A, T0);
	assert_int_equal(quota_check_mail(q, A, T0, NULL), QUOTA_EXCEEDED);
	assert_int_equal(quota_check_mail(q, "zed@example.test", T0, NULL), QUOTA_LOCKED);
	n = quota_locked_users(q, &users);
	assert_int_equal(n, 2);
	assert_string_equal(users[0], A);
	assert_string_equal(users[1], "zed@example.test");
	quota_users_free(users, n);
	quota_set_limits(q, 0, 0);
	assert_false(quota_is_enabled(q));
	assert_int_equal(quota_check_mail(q, A, T0, NULL), QUOTA_LOCKED); /* locks stay */
	quota_free(q);
}

/* Bounded: many more users than QUOTA_USERS; locked ones survive. */
static void
test_bounded_users(void **state)
{
	struct quota *q = quota_new(1, 1);
	char name[64];

	quota_lock(q, "victim@example.test");
	for (int i = 0; i < QUOTA_USERS * 2; i++) {
		snprintf(name, sizeof(name), "u%d@example.test", i);
		quota_count_message(q, name, T0 + i / 1000);
	}
	assert_true(quota_is_locked(q, "victim@example.test"));
	/* the latest users are still counted */
	assert_int_equal(quota_check_mail(q, name, T0 + 200, NULL), QUOTA_EXCEEDED);
	quota_free(q);
}

/* RCPT decided by a cluster's answer: the local count follows it, so a
 * fallback to it (Redis gone) starts from every node's count. */
static void
test_rcpt_shared(void **state)
{
	struct quota *q = quota_new(0, 3);
	struct quota_counts n;

	(void)state;
	/* other nodes counted two: this one notes its recipient and stand-ins */
	assert_int_equal(quota_rcpt_shared(q, A, "x@example.net", false, 3, T0, &n), QUOTA_OK);
	assert_int_equal(n.recipients, 3);
	/* again: nothing more (the recipient is known, the count reached) */
	assert_int_equal(quota_rcpt_shared(q, A, "X@Example.NET", false, 3, T0, &n), QUOTA_OK);
	assert_int_equal(n.recipients, 3);
	/* Redis gone: the local count refuses a fourth, but not x */
	assert_int_equal(quota_check_rcpt(q, A, "x@example.net", T0 + 60, &n), QUOTA_OK);
	assert_int_equal(quota_check_rcpt(q, A, "y@example.net", T0 + 60, &n), QUOTA_EXCEEDED);
	assert_int_equal(quota_rcpt_shared(q, A, "z@example.net", false, 1, T0, &n), QUOTA_LOCKED);
	quota_free(q);
	/* over: locks, and the user stays locked */
	q = quota_new(0, 3);
	assert_int_equal(quota_rcpt_shared(q, A, "x@example.net", true, 3, T0, &n), QUOTA_EXCEEDED);
	assert_true(quota_is_locked(q, A));
	assert_int_equal(quota_rcpt_shared(q, A, "x@example.net", false, 1, T0, &n), QUOTA_LOCKED);
	/* a count above the limit never grows the local array past it */
	assert_true(quota_unlock(q, A));
	assert_int_equal(quota_rcpt_shared(q, A, "x@example.net", false, 1000, T0, &n), QUOTA_OK);
	assert_int_equal(n.recipients, 3);
	/* a day later the stand-ins are gone with the rest */
	assert_int_equal(
	    quota_rcpt_shared(q, A, "w@example.net", false, 1, T0 + 24 * 3600, &n), QUOTA_OK);
	assert_int_equal(n.recipients, 1);
	quota_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_locked_users_and_lock),
	    cmocka_unit_test(test_bounded_users),
	    cmocka_unit_test(test_rcpt_shared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
