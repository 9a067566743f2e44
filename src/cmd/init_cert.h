/*
 * init_cert: a self-signed certificate for a first try of smtpgate (`smtpgate
 * init`): an ECDSA P-256 key and an X509v3 certificate for one host name,
 * made with OpenSSL's API, returned as PEM text.
 */
#ifndef SG_CMD_INIT_CERT_H
#define SG_CMD_INIT_CERT_H

#include <stddef.h>

/* Validity of the certificate: the longest that every TLS client accepts
 * for a server certificate (Apple's limit, 825 days). */
#define INIT_CERT_DAYS 825

struct init_cert {
	char *cert_pem; /* malloc'd, NUL-terminated */
	char *key_pem; /* malloc'd, NUL-terminated; wiped by init_cert_free */
};

/* Makes a key and a self-signed certificate for hostname (subject CN and
 * subjectAltName DNS:hostname, serverAuth, not a CA), valid from now for
 * INIT_CERT_DAYS days. hostname must be a valid host name (the caller checks).
 * Returns 0, or -1 with an OpenSSL message in err. */
int init_cert_make(const char *hostname, struct init_cert *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void init_cert_free(struct init_cert *c);

#endif
