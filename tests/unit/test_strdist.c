/* Unit tests for lib/strdist: the optimal string alignment distance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/strdist.h"

static const struct {
	const char *a, *b;
	size_t d;
} cases[] = {
    {"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"v=spf1", "v=spf1", 0},
    {"V=SPF1", "v=spf1", 0}, /* case is ignored */
    {"v=spf2", "v=spf1", 1}, /* substitution */
    {"v=spf", "v=spf1", 1}, /* deletion */
    {"v=spf11", "v=spf1", 1}, /* insertion */
    {"v=sfp1", "v=spf1", 1}, /* neighbours swapped */
    {"spf1", "v=spf1", 2}, {"DMRC1", "DMARC1", 1}, {"DKIM1", "DMARC1", 4},
    {"ca", "abc", 3}, /* OSA, not full Damerau-Levenshtein (2) */
};

static void
test_distances(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t d =
		    strdist_osa(cases[i].a, strlen(cases[i].a), cases[i].b, strlen(cases[i].b));

		if (d != cases[i].d)
			fail_msg(
			    "\"%s\" \"%s\": %zu, want %zu", cases[i].a, cases[i].b, d, cases[i].d);
		/* symmetric */
		assert_int_equal(
		    strdist_osa(cases[i].b, strlen(cases[i].b), cases[i].a, strlen(cases[i].a)), d);
	}
}

static void
test_long_words_are_far(void **state)
{
	char w[STRDIST_WORD_MAX + 1];

	memset(w, 'a', sizeof(w));
	assert_int_equal(strdist_osa(w, STRDIST_WORD_MAX, w, STRDIST_WORD_MAX), 0);
	assert_int_equal(strdist_osa(w, sizeof(w), "a", 1), (size_t)-1);
	assert_int_equal(strdist_osa("a", 1, w, sizeof(w)), (size_t)-1);
}

/* Exact-size buffers (no NUL after the words): no over-read. */
static void
test_exact_buffers(void **state)
{
	const char *words[] = {"v=spf1", "DMARC1", "x"};

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		char *p = malloc(n);

		assert_non_null(p);
		memcpy(p, words[i], n);
		assert_int_equal(strdist_osa(p, n, p, n), 0);
		free(p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_distances),
	    cmocka_unit_test(test_long_words_are_far),
	    cmocka_unit_test(test_exact_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
