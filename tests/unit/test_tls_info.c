/* Unit tests for net/tls_info: the subject, serial (hex, as `openssl x509
 * -serial` prints it) and notAfter (ISO 8601 UTC) of a certificate made
 * here with known values, from an X509 and from a PEM file (the first
 * certificate of a chain); a file holding no certificate is -1. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "net/tls_info.h"

static X509 *
make_cert(const char *cn, const char *serial_hex, time_t not_after)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	BIGNUM *bn = NULL;

	assert_non_null(k);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	                     (const unsigned char *)"Example, Inc.", -1, -1, 0),
	    1);
	assert_int_equal(
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
	    1);
	assert_true(BN_hex2bn(&bn, serial_hex) > 0);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	X509_set_version(x, 2);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), not_after));
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	BN_free(bn);
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	return x;
}

static const struct {
	const char *cn, *serial;
	time_t not_after;
	const char *subject, *want_serial, *want_not_after;
} cases[] = {
    {"mail.example.test", "0123456789ABCDEF01", 1893456000,
        "CN=mail.example.test,O=Example\\, Inc.", "0123456789ABCDEF01", "2030-01-01T00:00:00Z"},
    {"a.example", "2a", 4102444799, "CN=a.example,O=Example\\, Inc.", "2A", "2099-12-31T23:59:59Z"},
};

static void
test_info_of(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *x = make_cert(cases[i].cn, cases[i].serial, cases[i].not_after);
		struct tls_info info;

		tls_info_of(x, &info);
		assert_string_equal(info.subject, cases[i].subject);
		assert_string_equal(info.serial, cases[i].want_serial);
		assert_string_equal(info.not_after, cases[i].want_not_after);
		X509_free(x);
	}
}

static void
test_info_of_fd(void **state)
{
	char path[] = "/tmp/test_tls_info.XXXXXX";
	int fd = mkstemp(path);
	X509 *leaf = make_cert("leaf.example", "1001", 1893456000);
	X509 *ca = make_cert("ca.example", "1002", 1893456000);
	FILE *fp;
	struct tls_info info;

	(void)state;
	assert_true(fd != -1);
	fp = fdopen(dup(fd), "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, leaf), 1);
	assert_int_equal(PEM_write_X509(fp, ca), 1);
	fclose(fp);
	/* the offset is not the reader's: it reads from the start */
	assert_int_equal(tls_info_of_fd(fd, &info), 0);
	assert_string_equal(info.serial, "1001");
	assert_string_equal(info.subject, "CN=leaf.example,O=Example\\, Inc.");

	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "not a certificate\n", 18, 0), 18);
	assert_int_equal(tls_info_of_fd(fd, &info), -1);
	close(fd);
	unlink(path);
	X509_free(leaf);
	X509_free(ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_info_of),
	    cmocka_unit_test(test_info_of_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
