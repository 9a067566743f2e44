/*
 * dns_check: the checks of `smtpgate dns DOMAIN`: MX (addresses, PTR),
 * SPF, DMARC, DKIM (one selector), MTA-STS (TXT and HTTPS policy),
 * TLS-RPT and TLSA, each answer with its DNSSEC status. Every problem is a
 * finding (kb_dns.c); the data seen is one JSON object that both the
 * --json output and the readable report are made from.
 */
#ifndef SG_DIAG_DNS_CHECK_H
#define SG_DIAG_DNS_CHECK_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "dns/dns_resolve.h"
#include "explain/finding.h"

#define DNS_CHECK_MX_MAX 10 /* MX hosts looked at */
#define DNS_CHECK_ADDRS_MAX 4 /* addresses per MX host and family given a PTR look-up */
#define DNS_CHECK_DKIM_WEAK 1024 /* RFC 8301 3.2: below this, verifiers refuse the key */
#define DNS_CHECK_DKIM_GOOD 2048 /* RFC 8301 3.2: signers SHOULD use at least this */
#define DNS_CHECK_MTASTS_MAX_AGE_MIN 86400 /* RFC 8461 3.2 advises weeks; below a day is short */

struct dns_check_opts {
	const char *domain; /* checked syntax, no final dot */
	const char *selector; /* DKIM selector, or NULL */
	double timeout; /* seconds per DNS query and for the HTTPS fetch */
	const char *cafile; /* CAs for the MTA-STS policy fetch, NULL: the system's */
	unsigned mta_sts_port; /* the policy server's port, 0: 443 */
};

/* Runs every check; returns the report object (new reference) without its
 * "findings", which the caller adds from f. */
json_t *dns_check_run(struct dns_resolver *r, const struct dns_check_opts *o, struct findings *f);

#endif
