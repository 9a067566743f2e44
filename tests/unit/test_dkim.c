/* Unit tests for diag/dkim_parse: the tag-list syntax (RFC 6376 3.2) and
 * the key record (RFC 6376 3.6.1, RFC 8463), with key sizes from real keys
 * made here by OpenSSL, and every prefix fed in an exact-size buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dns/dkim_parse.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

/* An RSA public key of the given size as base64 SubjectPublicKeyInfo. */
static char *
rsa_p(int bits)
{
	EVP_PKEY *pk = EVP_RSA_gen((unsigned)bits);
	unsigned char *der = NULL;
	int n;
	struct buf b;
	char *s;

	assert_non_null(pk);
	n = i2d_PUBKEY(pk, &der);
	assert_true(n > 0);
	buf_init(&b, 8192);
	assert_int_equal(base64_encode(der, (size_t)n, &b), 0);
	s = buf_strdup(&b);
	buf_free(&b);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	return s;
}

static int
parse_exact(const char *s, size_t len, struct dkim_key_record *r, struct dkim_parse_error *err)
{
	char *copy = xmalloc(len > 0 ? len : 1);
	int rc;

	memcpy(copy, s, len);
	rc = dkim_key_parse(copy, len, r, err);
	free(copy);
	return rc;
}

static void
test_taglist(void **state)
{
	const char *s = " a=1 ; b_2 = x y\r\n\tz ;c=;";
	struct dkim_taglist tl;
	struct dkim_parse_error err;
	const struct dkim_tag *t;

	assert_int_equal(dkim_taglist_parse(s, strlen(s), false, &tl, &err), 0);
	assert_int_equal(tl.n, 3);
	t = dkim_taglist_get(&tl, "b_2", false);
	assert_non_null(t);
	assert_int_equal(t->value_len, strlen("x y\r\n\tz"));
	assert_memory_equal(t->value, "x y\r\n\tz", t->value_len);
	t = dkim_taglist_get(&tl, "c", false);
	assert_non_null(t);
	assert_int_equal(t->value_len, 0);
	assert_null(dkim_taglist_get(&tl, "A", false));
	assert_non_null(dkim_taglist_get(&tl, "A", true));
}

static void
test_taglist_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    ";",
	    "a",
	    "a=1;;b=2",
	    "=1",
	    "1a=2",
	    "a=1;a=2",
	    "a=x\ry",
	    "a=x\ny",
	    "a=\x7f",
	    "a=1; b",
	    "a b=1",
	    "a=;=",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dkim_taglist tl;
		struct dkim_parse_error err;

		if (dkim_taglist_parse(bad[i], strlen(bad[i]), false, &tl, &err) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(err.errstr);
		assert_true(err.off + err.len <= strlen(bad[i]));
	}
}

static void
test_key_sizes(void **state)
{
	static const int sizes[] = {512, 1024, 2048};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = rsa_p(sizes[i]), *rec;
		struct dkim_key_record r;
		struct dkim_parse_error err;
		const char *errstr;

		/* split by FWS as long keys are in zone files */
		assert_true(asprintf(&rec, "v=DKIM1; k=rsa; h=sha256; t=y:s; p=%.40s \r\n %s", p,
		                p + 40) > 0);
		assert_int_equal(dkim_key_parse(rec, strlen(rec), &r, &err), 0);
		assert_int_equal(dkim_key_bits(&r, &errstr), sizes[i]);
		assert_true(r.testing);
		assert_true(r.strict);
		assert_false(r.revoked);
		assert_false(r.sha1_only);
		assert_string_equal(r.key_type, "rsa");
		dkim_key_record_free(&r);
		free(rec);
		free(p);
	}
}

static void
test_ed25519_and_revoked(void **state)
{
	/* RFC 8463 appendix A.2 */
	const char *ed = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	const char *rev = "v=DKIM1; p=";
	struct dkim_key_record r;
	struct dkim_parse_error err;
	const char *errstr;

	assert_int_equal(dkim_key_parse(ed, strlen(ed), &r, &err), 0);
	assert_string_equal(r.key_type, "ed25519");
	assert_int_equal(dkim_key_bits(&r, &errstr), 256);
	dkim_key_record_free(&r);
	assert_int_equal(dkim_key_parse(rev, strlen(rev), &r, &err), 0);
	assert_true(r.revoked);
	assert_int_equal(dkim_key_bits(&r, &errstr), -1);
	dkim_key_record_free(&r);
}

static void
test_bad_keys(void **state)
{
	static const struct {
		const char *record;
		const char *tag; /* the tag-spec named, NULL: not checked */
	} bad[] = {
	    {"v=DKIM2; p=AAAA", "v=DKIM2"}, {"k=rsa; v=DKIM1; p=AAAA", "v=DKIM1"},
	    {"v=DKIM1; k=dsa; p=AAAA", "k=dsa"}, {"v=DKIM1; k=rsa", NULL},
	    {"v=DKIM1; p=AAA", "p=AAA"}, {"v=DKIM1; p=AA*A", "p=AA*A"},
	    {"v=DKIM1; h=md5; p=AAAA", "h=md5"}, {"v=DKIM1; s=web; p=AAAA", "s=web"},
	    {"v=DKIM1; t=; p=AAAA", "t="}, {"v=DKIM1; p=AAAA; p=AAAA", "p=AAAA"},
	    {"V=DKIM1; P=AAAA", NULL}, /* tag names are case-sensitive: no p= */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dkim_key_record r;
		struct dkim_parse_error err;
		const char *rec = bad[i].record;

		if (dkim_key_parse(rec, strlen(rec), &r, &err) != -1)
			fail_msg("\"%s\" accepted", rec);
		if (bad[i].tag != NULL &&
		    (err.len != strlen(bad[i].tag) ||
		        memcmp(rec + err.off, bad[i].tag, err.len) != 0))
			fail_msg("\"%s\": named \"%.*s\", want \"%s\"", rec, (int)err.len,
			    rec + err.off, bad[i].tag);
		dkim_key_record_free(&r);
	}
}

static void
test_undecodable_keys(void **state)
{
	/* valid base64, but not an SPKI; an ed25519 key of the wrong size */
	static const char *const recs[] = {
	    "v=DKIM1; p=AAAA",
	    "v=DKIM1; k=ed25519; p=AAAA",
	};

	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		struct dkim_key_record r;
		struct dkim_parse_error err;
		const char *errstr;

		assert_int_equal(dkim_key_parse(recs[i], strlen(recs[i]), &r, &err), 0);
		assert_int_equal(dkim_key_bits(&r, &errstr), -1);
		assert_non_null(errstr);
		dkim_key_record_free(&r);
	}
}

static void
test_sha1_only(void **state)
{
	const char *s = "v=DKIM1; h=sha1; p=AAAA";
	struct dkim_key_record r;
	struct dkim_parse_error err;

	assert_int_equal(dkim_key_parse(s, strlen(s), &r, &err), 0);
	assert_true(r.sha1_only);
	dkim_key_record_free(&r);
}

static void
test_prefixes_byte_by_byte(void **state)
{
	char *p = rsa_p(1024), *rec;

	assert_true(
	    asprintf(&rec, "v=DKIM1; h=sha1:sha256; k=rsa; s=email:*; t=y; n=note; p=%s", p) > 0);
	for (size_t n = 0; n <= strlen(rec); n++) {
		struct dkim_key_record r;
		struct dkim_parse_error err;
		const char *errstr;

		if (parse_exact(rec, n, &r, &err) == -1) {
			assert_non_null(err.errstr);
			assert_true(err.off + err.len <= n);
		} else {
			(void)dkim_key_bits(&r, &errstr);
		}
		dkim_key_record_free(&r);
	}
	free(rec);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_taglist),
	    cmocka_unit_test(test_taglist_rejects),
	    cmocka_unit_test(test_key_sizes),
	    cmocka_unit_test(test_ed25519_and_revoked),
	    cmocka_unit_test(test_bad_keys),
	    cmocka_unit_test(test_undecodable_keys),
	    cmocka_unit_test(test_sha1_only),
	    cmocka_unit_test(test_prefixes_byte_by_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
