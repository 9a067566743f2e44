/* Unit tests for diag/spf_parse (RFC 7208 grammar) and diag/spf_check (the
 * lookup and void-lookup limits through include/redirect, loop detection),
 * the latter driven by a table-backed fake resolver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "explain/finding.h"
#include "diag/spf_check.h"
#include "dns/spf_parse.h"
#include "lib/xalloc.h"

static const char *const good[] = {
    "v=spf1",
    "v=spf1 -all",
    "V=SPF1 MX -ALL",
    "v=spf1 mx a ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.com ~all",
    "v=spf1 a:mail.example.com/24//64 mx:example.org//128 ?all",
    "v=spf1 a/24 mx/0 -all",
    "v=spf1 ptr ptr:example.com -all",
    "v=spf1 exists:%{i}._spf.%{d} -all",
    "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d2} -all",
    "v=spf1 include:example.com. -all",
    "v=spf1 redirect=_spf.example.com",
    "v=spf1 -all exp=explain._spf.%{d}",
    "v=spf1 foo=bar -all",
    "v=spf1 foo= -all",
    "v=spf1 x-custom.mod=%{s}%% -all",
    "v=spf1  mx   -all  ",
    "v=spf1 ip4:0.0.0.0/0 ip6:::/0 ip6:::1 -all",
    "v=spf1 include:%{d}.%{h}.example.com -all",
    "v=spf1 a:xn--bcher-kva.example -all",
    "v=spf1 a:1-2.example -all",
};

static const struct {
	const char *record;
	const char *term; /* the offending term the error names */
} bad[] = {
    {"v=spf2 -all", "v=spf2"},
    {"v=spf1-all", "v=spf1-all"},
    {"spf1 -all", "spf1"},
    {"v=spf1 ip4:192.0.2.300 -all", "ip4:192.0.2.300"},
    {"v=spf1 ip4:192.0.2.0/33", "ip4:192.0.2.0/33"},
    {"v=spf1 ip4:192.0.2.0/024", "ip4:192.0.2.0/024"},
    {"v=spf1 ip4:2001:db8::1", "ip4:2001:db8::1"},
    {"v=spf1 ip6:192.0.2.1", "ip6:192.0.2.1"},
    {"v=spf1 ip6:2001:db8::/129", "ip6:2001:db8::/129"},
    {"v=spf1 ip4", "ip4"},
    {"v=spf1 ip4:", "ip4:"},
    {"v=spf1 include", "include"},
    {"v=spf1 include:", "include:"},
    {"v=spf1 include:com", "include:com"},
    {"v=spf1 include:example.123", "include:example.123"},
    {"v=spf1 a:1.2.3.4", "a:1.2.3.4"},
    {"v=spf1 include:example..com", "include:example..com"},
    {"v=spf1 include:-bad.example.-com", "include:-bad.example.-com"},
    {"v=spf1 all:foo", "all:foo"},
    {"v=spf1 -all/24", "-all/24"},
    {"v=spf1 +-all", "+-all"},
    {"v=spf1 mxfoo", "mxfoo"},
    {"v=spf1 ip:192.0.2.1", "ip:192.0.2.1"},
    {"v=spf1 a:example.com/", "a:example.com/"},
    {"v=spf1 a:example.com//", "a:example.com//"},
    {"v=spf1 a:example.com//129", "a:example.com//129"},
    {"v=spf1 ptr/24", "ptr/24"},
    {"v=spf1 exists", "exists"},
    {"v=spf1 exists:%{x}.example.com", "exists:%{x}.example.com"},
    {"v=spf1 exists:%{c}.example.com", "exists:%{c}.example.com"},
    {"v=spf1 exists:%{d0}.example.com", "exists:%{d0}.example.com"},
    {"v=spf1 exists:%{d", "exists:%{d"},
    {"v=spf1 exists:%x.example.com", "exists:%x.example.com"},
    {"v=spf1 exists:%{d}%", "exists:%{d}%"},
    {"v=spf1 redirect=a.example redirect=b.example", "redirect=b.example"},
    {"v=spf1 exp=a.example exp=b.example", "exp=b.example"},
    {"v=spf1 redirect=", "redirect="},
    {"v=spf1 redirect=%{q}", "redirect=%{q}"},
    {"v=spf1 foo=%z", "foo=%z"},
    {"v=spf1 -all\t", "-all\t"},
    {"v=spf1 a\xc3\xa9 -all", "a\xc3\xa9"},
};

/* The record copied into a buffer of exactly its length, so ASan sees any
 * read past the end (parsers get (p, len), never a NUL). */
static int
parse_exact(const char *s, size_t len, struct spf_record *r, struct spf_parse_error *err)
{
	char *copy = xmalloc(len > 0 ? len : 1);
	int rc;

	memcpy(copy, s, len);
	rc = spf_parse(copy, len, r, err);
	free(copy);
	return rc;
}

static void
test_good_records(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct spf_record r;
		struct spf_parse_error err;

		if (parse_exact(good[i], strlen(good[i]), &r, &err) != 0)
			fail_msg("\"%s\": %s", good[i], err.errstr);
		spf_record_free(&r);
	}
}

static void
test_bad_records_name_the_term(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct spf_record r;
		struct spf_parse_error err;
		const char *rec = bad[i].record;

		if (spf_parse(rec, strlen(rec), &r, &err) != -1)
			fail_msg("\"%s\" accepted", rec);
		assert_non_null(err.errstr);
		if (err.len != strlen(bad[i].term) ||
		    memcmp(rec + err.off, bad[i].term, err.len) != 0)
			fail_msg("\"%s\": named \"%.*s\", want \"%s\"", rec, (int)err.len,
			    rec + err.off, bad[i].term);
		spf_record_free(&r);
	}
}

static void
test_terms(void **state)
{
	const char *s = "v=spf1 ~a:mail.example.com/24//64 ip6:2001:db8::/48 ?mx "
	                "include:_spf.example.net redirect=_spf.example.org";
	struct spf_record r;
	struct spf_parse_error err;

	assert_int_equal(spf_parse(s, strlen(s), &r, &err), 0);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.terms[0].kind, SPF_A);
	assert_int_equal(r.terms[0].qualifier, '~');
	assert_string_equal(r.terms[0].domain, "mail.example.com");
	assert_int_equal(r.terms[0].cidr4, 24);
	assert_int_equal(r.terms[0].cidr6, 64);
	assert_int_equal(r.terms[1].kind, SPF_IP6);
	assert_string_equal(r.terms[1].domain, "2001:db8::");
	assert_int_equal(r.terms[1].cidr6, 48);
	assert_int_equal(r.terms[2].kind, SPF_MX);
	assert_int_equal(r.terms[2].qualifier, '?');
	assert_null(r.terms[2].domain);
	assert_int_equal(r.terms[3].qualifier, '+');
	assert_true(spf_term_is_lookup(&r.terms[3]));
	assert_int_equal(r.terms[4].kind, SPF_REDIRECT);
	assert_int_equal(r.terms[4].qualifier, 0);
	assert_string_equal(r.terms[4].domain, "_spf.example.org");
	spf_record_free(&r);
}

static void
test_is_record(void **state)
{
	assert_true(spf_is_record("v=spf1", 6));
	assert_true(spf_is_record("V=Spf1 -all", 11));
	assert_false(spf_is_record("v=spf10", 7));
	assert_false(spf_is_record("v=spf", 5));
	assert_false(spf_is_record("google-site-verification=x", 26));
}

/* TXT records that are plainly meant as SPF but are not SPF records, and
 * ones that are something else. */
static const struct {
	const char *text;
	const char *why; /* a word of the reason, or NULL: not near */
} near_cases[] = {
    {" v=spf1 mx -all", "white space before"},
    {"\tv=spf1 -all", "white space before"},
    {"\"v=spf1 mx -all\"", "quote characters"},
    {"v=spf1mx -all", "not followed by a space"},
    {"v=spf1,mx", "not followed by a space"},
    {"v = spf1 mx -all", "white space inside"},
    {"v=spf 1 mx -all", "white space inside"},
    {"V= SPF1 -all", "white space inside"},
    {"v=spf2 mx -all", "typo"},
    {"v=sfp1 mx -all", "typo"},
    {"v=spf mx -all", "typo"},
    {"spf1 mx -all", "typo"},
    {"v:spf1 mx -all", "typo"},
    {"vspf1 -all", "typo"},
    {"v=spf1", NULL},
    {"v=spf1 -all", NULL},
    {"spf2.0/pra mx -all", NULL},
    {"google-site-verification=abc", NULL},
    {"v=DKIM1; p=abc", NULL},
    {"v=DMARC1; p=none", NULL},
    {"MS=ms12345678", NULL},
    {"", NULL},
    {"v", NULL},
    {"sf", NULL},
};

static void
test_near_records(void **state)
{
	for (size_t i = 0; i < sizeof(near_cases) / sizeof(near_cases[0]); i++) {
		const char *text = near_cases[i].text, *why = NULL;
		bool near = spf_is_near_record(text, strlen(text), &why);

		if (near != (near_cases[i].why != NULL))
			fail_msg("\"%s\": near %d", text, near);
		if (near && strstr(why, near_cases[i].why) == NULL)
			fail_msg(
			    "\"%s\": \"%s\" does not say \"%s\"", text, why, near_cases[i].why);
		/* never both a record and near one */
		assert_false(near && spf_is_record(text, strlen(text)));
	}
}

/* Each prefix of each case in an exact-size buffer: no over-read. */
static void
test_near_records_byte_by_byte(void **state)
{
	for (size_t i = 0; i < sizeof(near_cases) / sizeof(near_cases[0]); i++) {
		size_t len = strlen(near_cases[i].text);

		for (size_t n = 0; n <= len; n++) {
			char *p = xmalloc(n > 0 ? n : 1);
			const char *why = NULL;

			memcpy(p, near_cases[i].text, n);
			if (spf_is_near_record(p, n, &why))
				assert_non_null(why);
			free(p);
		}
	}
}

/* Every prefix of every record, in an exact-size buffer: no crash, no
 * over-read, and a consistent error place. */
static void
test_prefixes_byte_by_byte(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		for (size_t n = 0; n <= strlen(good[i]); n++) {
			struct spf_record r;
			struct spf_parse_error err;

			if (parse_exact(good[i], n, &r, &err) == -1) {
				assert_non_null(err.errstr);
				assert_true(err.off + err.len <= n);
			}
			spf_record_free(&r);
		}
	}
}

/* ---- the walk, on a fake resolver ------------------------------------- */

struct fake_rr {
	const char *name;
	enum spf_qtype type;
	const char *data; /* NULL: NXDOMAIN for the name */
};

static const struct fake_rr *fake_zone;
static size_t fake_queries;

static enum spf_dns_status
fake_lookup_cb(void *arg, const char *name, enum spf_qtype type, char ***ans_r, size_t *n_r)
{
	bool exists = false;

	fake_queries++;
	*ans_r = NULL;
	*n_r = 0;
	for (const struct fake_rr *z = fake_zone; z->name != NULL; z++) {
		if (strcmp(z->name, name) != 0)
			continue;
		if (z->data == NULL)
			return SPF_DNS_NXDOMAIN;
		exists = true;
		if (z->type != type)
			continue;
		*ans_r = xrealloc(*ans_r, (*n_r + 1) * sizeof(char *));
		(*ans_r)[(*n_r)++] = xstrdup(z->data);
	}
	if (*n_r > 0)
		return SPF_DNS_OK;
	return exists ? SPF_DNS_NODATA : SPF_DNS_NXDOMAIN;
}

static const struct fake_rr zone_eleven[] = {
    {"ex.test", SPF_Q_TXT, "v=spf1 mx include:a.test include:b.test redirect=c.test"},
    {"ex.test", SPF_Q_MX, "mx.ex.test."},
    {"a.test", SPF_Q_TXT, "v=spf1 a a:x.test mx -all"},
    {"a.test", SPF_Q_A, "192.0.2.1"},
    {"a.test", SPF_Q_MX, "mx.a.test."},
    {"x.test", SPF_Q_A, "192.0.2.2"},
    {"b.test", SPF_Q_TXT, "v=spf1 ip4:192.0.2.0/24 include:d.test ?all"},
    {"d.test", SPF_Q_TXT, "v=spf1 a -all"},
    {"d.test", SPF_Q_A, "192.0.2.3"},
    {"c.test", SPF_Q_TXT, "v=spf1 exists:%{i}.c.test ptr a -all"},
    {"c.test", SPF_Q_A, "192.0.2.4"},
    {NULL, SPF_Q_TXT, NULL},
};

static void
run(const struct fake_rr *zone, const char *domain, struct findings *f,
    struct spf_check_result *res)
{
	fake_zone = zone;
	fake_queries = 0;
	findings_init(f);
	spf_check(domain, fake_lookup_cb, NULL, f, res);
}

static void
test_counts_through_include_and_redirect(void **state)
{
	struct findings f;
	struct spf_check_result res;

	run(zone_eleven, "ex.test", &f, &res);
	/* mx, include:a (a, a:x, mx), include:b (include:d (a)), redirect=c
	 * (exists, ptr, a) = 1 + 4 + 3 + 4 = 12 */
	assert_int_equal(res.lookups, 12);
	assert_int_equal(res.void_lookups, 0);
	assert_true(res.found);
	assert_int_equal(res.all, '-'); /* from the redirect target */
	assert_true(findings_has(&f, "spf-too-many-lookups"));
	assert_true(findings_has(&f, "spf-ptr"));
	assert_false(findings_has(&f, "spf-void-lookups"));
	assert_int_equal(json_array_size(res.includes), 4);
	spf_check_result_free(&res);
	findings_free(&f);
}

static const struct fake_rr zone_void[] = {
    {"ex.test", SPF_Q_TXT, "v=spf1 a:gone1.test mx:gone2.test exists:gone3.test -all"},
    {"gone2.test", SPF_Q_TXT, "not an mx"},
    {NULL, SPF_Q_TXT, NULL},
};

static void
test_void_lookups(void **state)
{
	struct findings f;
	struct spf_check_result res;

	run(zone_void, "ex.test", &f, &res);
	assert_int_equal(res.lookups, 3);
	assert_int_equal(res.void_lookups, 3);
	assert_true(findings_has(&f, "spf-void-lookups"));
	assert_false(findings_has(&f, "spf-too-many-lookups"));
	spf_check_result_free(&res);
	findings_free(&f);
}

static const struct fake_rr zone_loop[] = {
    {"ex.test", SPF_Q_TXT, "v=spf1 include:a.test -all"},
    {"a.test", SPF_Q_TXT, "v=spf1 include:EX.test. -all"},
    {"self.test", SPF_Q_TXT, "v=spf1 redirect=self.test"},
    {NULL, SPF_Q_TXT, NULL},
};

static void
test_loops_are_found(void **state)
{
	struct findings f;
	struct spf_check_result res;

	run(zone_loop, "ex.test", &f, &res);
	assert_true(findings_has(&f, "spf-include-loop"));
	assert_true(fake_queries < 10);
	spf_check_result_free(&res);
	findings_free(&f);
	run(zone_loop, "self.test", &f, &res);
	assert_true(findings_has(&f, "spf-include-loop"));
	spf_check_result_free(&res);
	findings_free(&f);
}

static const struct fake_rr zone_misc[] = {
    {"multi.test", SPF_Q_TXT, "v=spf1 -all"},
    {"multi.test", SPF_Q_TXT, "v=spf1 mx -all"},
    {"none.test", SPF_Q_TXT, "google-site-verification=abc"},
    {"syn.test", SPF_Q_TXT, "v=spf1 include:ok.test -all"},
    {"ok.test", SPF_Q_TXT, "v=spf1 ip4:1.2.3.4.5 -all"},
    {"inc.test", SPF_Q_TXT, "v=spf1 include:nospf.test include:plus.test -all"},
    {"nospf.test", SPF_Q_TXT, "hello"},
    {"plus.test", SPF_Q_TXT, "v=spf1 +all"},
    {"mod.test", SPF_Q_TXT, "v=spf1 ip4=192.0.2.1 ~all"},
    {"after.test", SPF_Q_TXT, "v=spf1 -all include:never.test redirect=never.test"},
    {"macro.test", SPF_Q_TXT, "v=spf1 include:%{d}.x.test -all"},
    {NULL, SPF_Q_TXT, NULL},
};

static void
test_record_problems(void **state)
{
	static const struct {
		const char *domain;
		const char *id;
		char all;
	} cases[] = {
	    {"multi.test", "spf-multiple", 0},
	    {"none.test", "spf-missing", 0},
	    {"nowhere.test", "spf-missing", 0},
	    {"syn.test", "spf-syntax", '-'},
	    {"inc.test", "spf-include-missing", '-'},
	    {"inc.test", "spf-permissive-all", '-'},
	    {"mod.test", "spf-syntax", '~'},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct findings f;
		struct spf_check_result res;

		run(zone_misc, cases[i].domain, &f, &res);
		if (!findings_has(&f, cases[i].id))
			fail_msg("%s: no %s", cases[i].domain, cases[i].id);
		assert_int_equal(res.all, cases[i].all);
		spf_check_result_free(&res);
		findings_free(&f);
	}
}

static const struct fake_rr zone_near[] = {
    {"typo.test", SPF_Q_TXT, "v=spf2 mx -all"},
    {"typo.test", SPF_Q_TXT, "google-site-verification=abc"},
    {"both.test", SPF_Q_TXT, "v=spf1 mx -all"},
    {"both.test", SPF_Q_TXT, " v=spf1 ip4:192.0.2.0/24 -all"},
    {"inc.test", SPF_Q_TXT, "v=spf1 include:typo.test -all"},
    {NULL, SPF_Q_TXT, NULL},
};

/* An almost-SPF record is named for what is wrong with it: an error alone
 * (not spf-missing), a warning next to a valid record, the reason in an
 * include's spf-include-missing. */
static void
test_near_records_in_the_walk(void **state)
{
	struct findings f;
	struct spf_check_result res;

	run(zone_near, "typo.test", &f, &res);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.v[0].kb->id, "spf-version-invalid");
	assert_int_equal(f.v[0].severity, FINDING_ERROR);
	assert_non_null(strstr(f.v[0].evidence, "v=spf2 mx -all"));
	assert_false(res.found);
	spf_check_result_free(&res);
	findings_free(&f);

	run(zone_near, "both.test", &f, &res);
	assert_true(res.found);
	assert_int_equal(res.all, '-');
	assert_int_equal(f.n, 1);
	assert_string_equal(f.v[0].kb->id, "spf-version-invalid");
	assert_int_equal(f.v[0].severity, FINDING_WARNING);
	assert_non_null(strstr(f.v[0].evidence, "white space before"));
	spf_check_result_free(&res);
	findings_free(&f);

	run(zone_near, "inc.test", &f, &res);
	assert_true(findings_has(&f, "spf-include-missing"));
	assert_false(findings_has(&f, "spf-version-invalid"));
	for (size_t i = 0; i < f.n; i++) {
		if (strcmp(f.v[i].kb->id, "spf-include-missing") == 0)
			assert_non_null(strstr(f.v[i].evidence, "typo"));
	}
	spf_check_result_free(&res);
	findings_free(&f);
}

static void
test_terms_after_all_are_not_counted(void **state)
{
	struct findings f;
	struct spf_check_result res;

	run(zone_misc, "after.test", &f, &res);
	assert_int_equal(res.lookups, 0);
	assert_int_equal(f.n, 0);
	spf_check_result_free(&res);
	findings_free(&f);
	run(zone_misc, "macro.test", &f, &res);
	assert_int_equal(res.lookups, 1); /* counted, not followed */
	assert_int_equal(fake_queries, 1);
	spf_check_result_free(&res);
	findings_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_records),
	    cmocka_unit_test(test_bad_records_name_the_term),
	    cmocka_unit_test(test_terms),
	    cmocka_unit_test(test_is_record),
	    cmocka_unit_test(test_prefixes_byte_by_byte),
	    cmocka_unit_test(test_counts_through_include_and_redirect),
	    cmocka_unit_test(test_void_lookups),
	    cmocka_unit_test(test_loops_are_found),
	    cmocka_unit_test(test_record_problems),
	    cmocka_unit_test(test_terms_after_all_are_not_counted),
	    cmocka_unit_test(test_near_records),
	    cmocka_unit_test(test_near_records_byte_by_byte),
	    cmocka_unit_test(test_near_records_in_the_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
