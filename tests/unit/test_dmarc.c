/* Unit tests for diag/dmarc_parse (RFC 7489 6.3, 6.4): accepted records and
 * their values, rejected ones with the offending tag named, and every
 * prefix fed in an exact-size buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns/dmarc_parse.h"
#include "lib/xalloc.h"

static const struct {
	const char *record;
	enum dmarc_policy p, sp;
	int pct;
	char adkim, aspf;
	size_t n_rua;
} good[] = {
    {"v=DMARC1; p=none", DMARC_POLICY_NONE, DMARC_POLICY_UNSET, 100, 'r', 'r', 0},
    {"v=DMARC1;p=reject;", DMARC_POLICY_REJECT, DMARC_POLICY_UNSET, 100, 'r', 'r', 0},
    {"v = DMARC1 ; p = Quarantine ; sp = none ; pct = 0", DMARC_POLICY_QUARANTINE,
        DMARC_POLICY_NONE, 0, 'r', 'r', 0},
    {"v=DMARC1; p=reject; adkim=s; aspf=S; pct=100; ri=3600; fo=1:d:s; rf=afrf",
        DMARC_POLICY_REJECT, DMARC_POLICY_UNSET, 100, 's', 's', 0},
    {"v=DMARC1; p=reject; rua=mailto:a@example.com,mailto:b@example.net!10m; "
     "ruf=mailto:f@example.com",
        DMARC_POLICY_REJECT, DMARC_POLICY_UNSET, 100, 'r', 'r', 2},
    {"v=DMARC1; rua=mailto:a@example.com; p=none", DMARC_POLICY_NONE, DMARC_POLICY_UNSET, 100, 'r',
        'r', 1},
    {"v=DMARC1; p=reject; rua=mailto:a@example.com , mailto:b@example.com", DMARC_POLICY_REJECT,
        DMARC_POLICY_UNSET, 100, 'r', 'r', 2},
    {"v=DMARC1; p=reject; np=reject; psd=n; t=n", DMARC_POLICY_REJECT, DMARC_POLICY_UNSET, 100, 'r',
        'r', 0},
    {"v=DMARC1; p=none; foo=bar", DMARC_POLICY_NONE, DMARC_POLICY_UNSET, 100, 'r', 'r', 0},
    {"v=DMARC1; p=none;  ", DMARC_POLICY_NONE, DMARC_POLICY_UNSET, 100, 'r', 'r', 0},
};

static const struct {
	const char *record;
	const char *tag; /* the tag-spec the error names (trimmed), NULL: the record */
} bad[] = {
    {"p=none; v=DMARC1", "p=none"},
    {"v=DMARC2; p=none", "v=DMARC2"},
    {"v=dmarc1; p=none", "v=dmarc1"},
    {"v=DMARC1", NULL},
    {"v=DMARC1; rua=mailto:a@example.com", NULL},
    {"v=DMARC1; p=nothing", "p=nothing"},
    {"v=DMARC1; p=none; sp=rejected", "sp=rejected"},
    {"v=DMARC1; p=none; pct=101", "pct=101"},
    {"v=DMARC1; p=none; pct=-1", "pct=-1"},
    {"v=DMARC1; p=none; pct=", "pct="},
    {"v=DMARC1; p=none; pct=50%", "pct=50%"},
    {"v=DMARC1; p=none; adkim=relaxed", "adkim=relaxed"},
    {"v=DMARC1; p=none; aspf=x", "aspf=x"},
    {"v=DMARC1; p=none; rua=a@example.com", "rua=a@example.com"},
    {"v=DMARC1; p=none; rua=mailto:example.com", "rua=mailto:example.com"},
    {"v=DMARC1; p=none; rua=mailto:a@localhost", "rua=mailto:a@localhost"},
    {"v=DMARC1; p=none; rua=mailto:a@example.com!", "rua=mailto:a@example.com!"},
    {"v=DMARC1; p=none; rua=mailto:a@example.com!10x", "rua=mailto:a@example.com!10x"},
    {"v=DMARC1; p=none; rua=mailto:a@example.com,", "rua=mailto:a@example.com,"},
    {"v=DMARC1; p=none; ruf=mailto:a@b@example.com", "ruf=mailto:a@b@example.com"},
    {"v=DMARC1; p=none; fo=2", "fo=2"},
    {"v=DMARC1; p=none; fo=0:", "fo=0:"},
    {"v=DMARC1; p=none; ri=1h", "ri=1h"},
    {"v=DMARC1; p=none; p=reject", "p=reject"},
    {"v=DMARC1; p=none; P=reject", "P=reject"},
    {"v=DMARC1; p=none; v=DMARC1", "v=DMARC1"},
    {"v=DMARC1;; p=none", ";"},
    {"v=DMARC1; p=none; 1x=2", "1x=2"},
    {"v=DMARC1; p none", "p none"},
    {"v=DMARC1; p=none\x01", "p=none\x01"},
    {"", NULL},
};

static int
parse_exact(const char *s, size_t len, struct dmarc_record *r, struct dkim_parse_error *err)
{
	char *copy = xmalloc(len > 0 ? len : 1);
	int rc;

	memcpy(copy, s, len);
	rc = dmarc_parse(copy, len, r, err);
	free(copy);
	return rc;
}

static void
test_good_records(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct dmarc_record r;
		struct dkim_parse_error err;

		if (parse_exact(good[i].record, strlen(good[i].record), &r, &err) != 0)
			fail_msg("\"%s\": %s", good[i].record, err.errstr);
		assert_true(dmarc_is_record(good[i].record, strlen(good[i].record)));
		assert_int_equal(r.p, good[i].p);
		assert_int_equal(r.sp, good[i].sp);
		assert_int_equal(r.pct, good[i].pct);
		assert_int_equal(r.adkim, good[i].adkim);
		assert_int_equal(r.aspf, good[i].aspf);
		assert_int_equal(r.n_rua, good[i].n_rua);
		dmarc_record_free(&r);
	}
}

static void
test_values(void **state)
{
	const char *s = "v=DMARC1; p=reject; rua=mailto:a@example.com!10m,mailto:b@example.net; "
	                "fo=1 : d; adkimm=s";
	struct dmarc_record r;
	struct dkim_parse_error err;

	assert_int_equal(dmarc_parse(s, strlen(s), &r, &err), 0);
	assert_string_equal(r.rua[0], "mailto:a@example.com");
	assert_string_equal(r.rua[1], "mailto:b@example.net");
	assert_string_equal(r.fo, "1:d");
	assert_string_equal(r.unknown, "adkimm");
	dmarc_record_free(&r);
}

static void
test_bad_records_name_the_tag(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dmarc_record r;
		struct dkim_parse_error err;
		const char *rec = bad[i].record;

		if (dmarc_parse(rec, strlen(rec), &r, &err) != -1)
			fail_msg("\"%s\" accepted", rec);
		assert_non_null(err.errstr);
		if (bad[i].tag != NULL &&
		    (err.len != strlen(bad[i].tag) ||
		        memcmp(rec + err.off, bad[i].tag, err.len) != 0))
			fail_msg("\"%s\": named \"%.*s\", want \"%s\"", rec, (int)err.len,
			    rec + err.off, bad[i].tag);
		dmarc_record_free(&r);
	}
}

static void
test_is_record(void **state)
{
	assert_true(dmarc_is_record("v=DMARC1", 8));
	assert_true(dmarc_is_record("v = DMARC1;p=none", 17));
	assert_false(dmarc_is_record("v=DMARC10", 9));
	assert_false(dmarc_is_record("v=spf1 -all", 11));
	assert_false(dmarc_is_record("", 0));
}

/* TXT records at _dmarc that are plainly meant as DMARC but are not DMARC
 * records, and ones that are something else. */
static const struct {
	const char *text;
	const char *why; /* a word of the reason, or NULL: not near */
} near_cases[] = {
    {"p=reject; v=DMARC1; rua=mailto:d@example.com", "not the first tag"},
    {"rua=mailto:d@example.com; v=DMARC1; p=none", "not the first tag"},
    {"v=dmarc1; p=reject", "in capitals"},
    {"v=Dmarc1; p=reject", "in capitals"},
    {"V=DMARC1; p=reject", "lower case"},
    {"version=DMARC1; p=reject", "lower case"},
    {"v=DMARC 1; p=reject", "white space inside"},
    {"v=DMARC2; p=reject", "typo"},
    {"v=DMRC1; p=reject", "typo"},
    {"v=DMARC; p=reject", "typo"},
    {"v=DMARC10; p=reject", "typo"},
    {"v=DMARC1, p=reject", "followed by"},
    {"v=DMARC1,p=reject", "followed by"},
    {"\"v=DMARC1; p=reject\"", "quote characters"},
    {"p=reject; rua=mailto:d@example.com", "does not start"},
    {"p=quarantine", "does not start"},
    {"v=DMARC1; p=reject", NULL},
    {"v=DMARC1", NULL},
    {"v=spf1 -all", NULL},
    {"v=DKIM1; p=MIIB", NULL},
    {"some-verification=abc", NULL},
    {"p=something", NULL},
    {"", NULL},
    {";;;=", NULL},
};

static void
test_near_records(void **state)
{
	for (size_t i = 0; i < sizeof(near_cases) / sizeof(near_cases[0]); i++) {
		const char *text = near_cases[i].text, *why = NULL;
		bool near = dmarc_is_near_record(text, strlen(text), &why);

		if (near != (near_cases[i].why != NULL))
			fail_msg("\"%s\": near %d (%s)", text, near, near ? why : "");
		if (near && strstr(why, near_cases[i].why) == NULL)
			fail_msg(
			    "\"%s\": \"%s\" does not say \"%s\"", text, why, near_cases[i].why);
		assert_false(near && dmarc_is_record(text, strlen(text)));
	}
}

/* Each prefix of each case in an exact-size buffer: no over-read. */
static void
test_near_records_byte_by_byte(void **state)
{
	for (size_t i = 0; i < sizeof(near_cases) / sizeof(near_cases[0]); i++) {
		size_t len = strlen(near_cases[i].text);

		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n > 0 ? n : 1);
			const char *why = NULL;

			assert_non_null(p);
			memcpy(p, near_cases[i].text, n);
			if (dmarc_is_near_record(p, n, &why))
				assert_non_null(why);
			free(p);
		}
	}
}

static void
test_prefixes_byte_by_byte(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		for (size_t n = 0; n <= strlen(good[i].record); n++) {
			struct dmarc_record r;
			struct dkim_parse_error err;

			if (parse_exact(good[i].record, n, &r, &err) == -1) {
				assert_non_null(err.errstr);
				assert_true(err.off + err.len <= n);
			}
			dmarc_record_free(&r);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_records),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_bad_records_name_the_tag),
	    cmocka_unit_test(test_is_record),
	    cmocka_unit_test(test_prefixes_byte_by_byte),
	    cmocka_unit_test(test_near_records),
	    cmocka_unit_test(test_near_records_byte_by_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
