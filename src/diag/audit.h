/*
 * audit: `smtpgate audit -c FILE` and the audit half of `serve --check`:
 * findings (finding.h, ids in kb_audit.c and doc/findings.md) about weak or
 * unsafe settings of a loaded configuration: TLS ciphers, listeners that
 * cannot authenticate, CRAM-MD5, relay settings, limits on listeners other
 * hosts can reach, the certificates and keys of [tls], and the permissions
 * of the passwd file, the JWKS file, the spool and the log; with
 * [cluster], the cluster's Redis (diag/audit_cluster.h).
 *
 * The audit reads files the configuration names (certificates, keys, file
 * metadata) but never writes or creates anything.
 */
#ifndef SG_DIAG_AUDIT_H
#define SG_DIAG_AUDIT_H

#include <stdio.h>
#include <time.h>

#include "explain/finding.h"

struct conf;

#define AUDIT_CERT_EXPIRY_WARN_DAYS 30
#define AUDIT_TIMEOUT_COMMAND_MAX 600 /* seconds; RFC 5321 4.5.3.2.7 suggests 5 min */
#define AUDIT_TIMEOUT_DATA_MAX 3600 /* seconds; RFC 5321 4.5.3.2.6: 3 min per block */
#define AUDIT_MESSAGE_SIZE_MAX (100ULL * 1024 * 1024)
#define AUDIT_RECIPIENTS_MAX 1000 /* RFC 5321 4.5.3.1.8: at least 100 */
#define AUDIT_ERRORS_MAX 50

/* Appends the findings about c to f, with certificate validity judged at
 * now (time(NULL) outside tests). */
void audit_conf(const struct conf *c, time_t now, struct findings *f);

/* serve --check: audits c and prints the findings (human form) to out, if
 * any. Returns 0 when no finding has severity error, -1 otherwise. */
int audit_check_print(const struct conf *c, FILE *out) __attribute__((warn_unused_result));

#endif
