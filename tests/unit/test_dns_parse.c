/* Unit tests for the pure parts of `smtpgate dns`: MTA-STS and TLS-RPT
 * records and policies (diag/mtasts_parse), wire-format names and printable
 * record text (diag/dns_resolve), and DOMAIN validation (diag/dns_check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "diag/dns_check.h"
#include "dns/dns_name.h"
#include "dns/dns_resolve.h"
#include "dns/mtasts_parse.h"

static void
test_mtasts_record(void **state)
{
	static const char *const good[] = {
	    "v=STSv1; id=20240101T000000;",
	    "v=STSv1;id=abc",
	    "v=STSv1; id=abc; ext-1.x=val ;",
	};
	static const char *const bad[] = {
	    "v=STSv1",
	    "v=STSv1;",
	    "v=STSv1; id=",
	    "v=STSv1; id=a-b",
	    "v=STSv1; id=a; id=b",
	    "v=STSv1; id=012345678901234567890123456789012",
	    "v=STSv1 id=abc",
	    "v=STSv2; id=abc",
	    "v=STSv1; =x; id=abc",
	};
	char id[MTASTS_ID_MAX + 1];
	const char *errstr;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (mtasts_record_parse(good[i], strlen(good[i]), id, &errstr) != 0)
			fail_msg("\"%s\": %s", good[i], errstr);
	}
	assert_string_equal(id, "abc");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mtasts_record_parse(bad[i], strlen(bad[i]), id, &errstr) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
	}
}

static void
test_mtasts_policy(void **state)
{
	const char *good = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	                   "mx: *.example.net\r\nmax_age: 604800\r\nx-ext: whatever\r\n";
	static const struct {
		const char *text;
		size_t line;
	} bad[] = {
	    {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", 1},
	    {"version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", 2},
	    {"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n", 3},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", 4},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n", 4},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\n", 0},
	    {"version: STSv1\nmode: enforce\nmx: a.example\n", 0},
	    {"mode: enforce\nmx: a.example\nmax_age: 1\n", 0},
	    {"version: STSv1\nmode enforce\n", 2},
	    {"version: STSv1\nversion: STSv1\n", 2},
	    {"", 0},
	};
	struct mtasts_policy p;
	const char *errstr;
	size_t line;

	assert_int_equal(mtasts_policy_parse(good, strlen(good), &p, &errstr, &line), 0);
	assert_string_equal(p.mode, "enforce");
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.n_mx, 2);
	assert_string_equal(p.mx[1], "*.example.net");
	mtasts_policy_free(&p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mtasts_policy_parse(bad[i].text, strlen(bad[i].text), &p, &errstr, &line) != -1)
			fail_msg("\"%s\" accepted", bad[i].text);
		assert_int_equal(line, bad[i].line);
		mtasts_policy_free(&p);
	}
	/* mode none needs no mx */
	assert_int_equal(mtasts_policy_parse(
	                     "version: STSv1\nmode: none\nmax_age: 86400", 40, &p, &errstr, &line),
	    0);
	mtasts_policy_free(&p);
}

static void
test_mtasts_mx_matches(void **state)
{
	assert_true(mtasts_mx_matches("mail.example.com", "MAIL.example.com."));
	assert_true(mtasts_mx_matches("*.example.com", "mx1.example.com."));
	assert_false(mtasts_mx_matches("*.example.com", "a.b.example.com"));
	assert_false(mtasts_mx_matches("*.example.com", "example.com"));
	assert_false(mtasts_mx_matches("mail.example.com", "mail.example.org"));
}

static void
test_tlsrpt_record(void **state)
{
	char *rua[TLSRPT_RUA_MAX];
	size_t n;
	const char *errstr;
	const char *good = "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/x";

	assert_int_equal(tlsrpt_record_parse(good, strlen(good), rua, &n, &errstr), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rua[1], "https://r.example.com/x");
	for (size_t i = 0; i < n; i++)
		free(rua[i]);
	assert_int_equal(tlsrpt_record_parse("v=TLSRPTv1;", 11, rua, &n, &errstr), -1);
	assert_int_equal(tlsrpt_record_parse("v=TLSRPTv1; rua=ftp://x", 23, rua, &n, &errstr), -1);
	assert_int_equal(tlsrpt_record_parse("v=TLSRPTv1; rua=mailto:x", 24, rua, &n, &errstr), -1);
}

static void
test_name_to_text(void **state)
{
	char out[1024];
	static const unsigned char mx[] = "\x02mx\x07"
	                                  "example\x03"
	                                  "com";
	static const unsigned char odd[] = "\x03"
	                                   "a.b\x01\x00";
	static const unsigned char bad_len[] = "\x05"
	                                       "ab";
	static const unsigned char ptr[] = "\xc0\x0c";

	assert_int_equal(dns_name_to_text(mx, sizeof(mx), out, sizeof(out)), sizeof(mx));
	assert_string_equal(out, "mx.example.com.");
	assert_int_equal(dns_name_to_text((const unsigned char *)"", 1, out, sizeof(out)), 1);
	assert_string_equal(out, ".");
	assert_int_equal(dns_name_to_text(odd, 7, out, sizeof(out)), 7);
	assert_string_equal(out, "a\\046b.\\000.");
	assert_int_equal(dns_name_to_text(bad_len, 3, out, sizeof(out)), 0);
	assert_int_equal(dns_name_to_text(ptr, 2, out, sizeof(out)), 0);
	assert_int_equal(dns_name_to_text(mx, sizeof(mx), out, 5), 0);
}

static void
test_printable(void **state)
{
	char *s = dns_printable("a\0b\\c\xff", 6);

	assert_string_equal(s, "a\\000b\\092c\\255");
	free(s);
}

static void
test_domain_is_valid(void **state)
{
	assert_true(dns_name_is_valid("example.com"));
	assert_true(dns_name_is_valid("_dmarc.xn--bcher-kva.example"));
	assert_false(dns_name_is_valid("com"));
	assert_false(dns_name_is_valid("example..com"));
	assert_false(dns_name_is_valid("-a.example"));
	assert_false(dns_name_is_valid("a-.example"));
	assert_false(dns_name_is_valid("exa mple.com"));
	assert_false(dns_name_is_valid(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mtasts_record),
	    cmocka_unit_test(test_mtasts_policy),
	    cmocka_unit_test(test_mtasts_mx_matches),
	    cmocka_unit_test(test_tlsrpt_record),
	    cmocka_unit_test(test_name_to_text),
	    cmocka_unit_test(test_printable),
	    cmocka_unit_test(test_domain_is_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
