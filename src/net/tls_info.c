/*
 * tls_info: see tls_info.h.
 */
#include "net/tls_info.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "lib/xalloc.h"

#define TLS_INFO_PEM_MAX (1024 * 1024) /* the vault's own limit */

static void
tls_info_subject(X509 *x, char *out, size_t outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	X509_NAME *n = X509_get_subject_name(x);
	char *p;
	long len;

	snprintf(out, outlen, "?");
	if (b == NULL)
		return;
	if (n != NULL &&
	    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &p);
		if (len >= 0)
			snprintf(out, outlen, "%.*s", (int)len, p);
	}
	BIO_free(b);
}

static void
tls_info_serial(X509 *x, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(out, outlen, "%s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

static void
tls_info_not_after(X509 *x, char *out, size_t outlen)
{
	const ASN1_TIME *t = X509_get0_notAfter(x);
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "?");
}

void
tls_info_of(X509 *x, struct tls_info *out)
{
	tls_info_subject(x, out->subject, sizeof(out->subject));
	tls_info_serial(x, out->serial, sizeof(out->serial));
	tls_info_not_after(x, out->not_after, sizeof(out->not_after));
}

int
tls_info_of_fd(int fd, struct tls_info *out)
{
	/* pread: the descriptor may be shared (a vault copy), its offset is not ours */
	char *pem = xmalloc(TLS_INFO_PEM_MAX);
	size_t len = 0;
	BIO *b;
	X509 *x = NULL;

	while (len < TLS_INFO_PEM_MAX) {
		ssize_t n = pread(fd, pem + len, TLS_INFO_PEM_MAX - len, (off_t)len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	b = len > 0 ? BIO_new_mem_buf(pem, (int)len) : NULL;
	if (b != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	free(pem);
	ERR_clear_error();
	if (x == NULL)
		return -1;
	tls_info_of(x, out);
	X509_free(x);
	return 0;
}
