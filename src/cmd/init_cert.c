/*
 * init_cert: the self-signed certificate of `smtpgate init` (init_cert.h).
 *
 * The subjectAltName is built as a GENERAL_NAME, not from an OpenSSL
 * configuration string, so no character of the host name is ever parsed
 * as syntax. The serial is 127 random bits (positive, unique enough that
 * clients which remember certificates never see two alike).
 */
#include "cmd/init_cert.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/xalloc.h"

#define INIT_CERT_SERIAL_BITS 127

static void
init_cert_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char ossl[256] = "";

	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "", ossl);
	ERR_clear_error();
}

/* The PEM text of a memory BIO in a malloc'd string. */
static char *
init_cert_bio_string(BIO *b)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);

	if (n <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static int
init_cert_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int rc;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

static int
init_cert_add_san(X509 *x, const char *hostname)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int rc = -1;

	if (names == NULL || gn == NULL || ia5 == NULL ||
	    ASN1_STRING_set(ia5, hostname, (int)strlen(hostname)) != 1)
		goto fail;
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(names, gn) == 0)
		goto fail;
	gn = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1)
		rc = 0;
fail:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return rc;
}

static int
init_cert_set_fields(X509 *x, EVP_PKEY *pkey, const char *hostname)
{
	X509_NAME *subject = X509_get_subject_name(x);
	BIGNUM *serial = BN_new();
	int rc = -1;

	if (serial == NULL ||
	    BN_rand(serial, INIT_CERT_SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), INIT_CERT_DAYS, 0, NULL) == NULL ||
	    X509_NAME_add_entry_by_txt(
	        subject, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, subject) != 1 || X509_set_pubkey(x, pkey) != 1)
		goto fail;
	if (init_cert_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    init_cert_add_ext(x, NID_key_usage, "critical,digitalSignature") == -1 ||
	    init_cert_add_ext(x, NID_ext_key_usage, "serverAuth") == -1 ||
	    init_cert_add_ext(x, NID_subject_key_identifier, "hash") == -1 ||
	    init_cert_add_san(x, hostname) == -1)
		goto fail;
	rc = 0;
fail:
	BN_free(serial);
	return rc;
}

int
init_cert_make(const char *hostname, struct init_cert *c, char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *cb = NULL, *kb = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if ((pkey = EVP_EC_gen("P-256")) == NULL) {
		init_cert_error(err, errlen, "cannot make an ECDSA P-256 key");
		goto fail;
	}
	if ((x = X509_new()) == NULL || init_cert_set_fields(x, pkey, hostname) == -1 ||
	    X509_sign(x, pkey, EVP_sha256()) == 0) {
		init_cert_error(err, errlen, "cannot make the certificate");
		goto fail;
	}
	cb = BIO_new(BIO_s_mem());
	kb = BIO_new(BIO_s_mem());
	if (cb == NULL || kb == NULL || PEM_write_bio_X509(cb, x) != 1 ||
	    PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (c->cert_pem = init_cert_bio_string(cb)) == NULL ||
	    (c->key_pem = init_cert_bio_string(kb)) == NULL) {
		init_cert_error(err, errlen, "cannot write the certificate or key as PEM");
		init_cert_free(c);
		goto fail;
	}
	rc = 0;
fail:
	if (kb != NULL) {
		char *data;
		long n = BIO_get_mem_data(kb, &data);

		/* the key's PEM must not linger in freed memory */
		if (n > 0)
			OPENSSL_cleanse(data, (size_t)n);
	}
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

void
init_cert_free(struct init_cert *c)
{
	free(c->cert_pem);
	xfree_secret_str(c->key_pem);
	c->cert_pem = c->key_pem = NULL;
}
