/*
 * tls_info: what an administrator needs to tell one certificate from
 * another in a log line: its subject, serial number and notAfter, as
 * `openssl x509 -noout -subject -serial -enddate` shows them (the serial
 * in upper-case hex, so the two can be compared by eye).
 */
#ifndef SG_NET_TLS_INFO_H
#define SG_NET_TLS_INFO_H

#include <stddef.h>

#include <openssl/x509.h>

struct tls_info {
	char subject[512]; /* RFC 2253 order: "CN=mail.example.test,O=..." */
	char serial[132]; /* hex, upper case, no separators (RFC 5280: <= 20 octets) */
	char not_after[32]; /* ISO 8601 UTC: "2025-01-31T12:00:00Z" */
};

/* The leaf certificate x. Fields that cannot be read are "?". */
void tls_info_of(X509 *x, struct tls_info *out);

/* The first certificate of the PEM file behind fd (read from its start,
 * fd left open). 0, or -1 when fd holds none. */
int tls_info_of_fd(int fd, struct tls_info *out) __attribute__((warn_unused_result));

#endif
