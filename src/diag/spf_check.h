/*
 * spf_check: walks a domain's SPF policy through include and redirect and
 * counts what RFC 7208 4.6.4 limits: DNS-querying terms (at most 10) and
 * void lookups (at most 2), with loop detection. DNS goes through an
 * injectable callback so the walk is unit-tested without a resolver.
 *
 * The count is the worst case for a sender whose address matches nothing
 * before the final "all": every term up to "all" is evaluated. Terms whose
 * domain holds a macro are counted but not followed (they need a sender).
 */
#ifndef SG_DIAG_SPF_CHECK_H
#define SG_DIAG_SPF_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "explain/finding.h"

#define SPF_LOOKUPS_MAX 10 /* RFC 7208 4.6.4 */
#define SPF_VOID_LOOKUPS_MAX 2 /* RFC 7208 4.6.4: SHOULD be 2 */
#define SPF_MX_NAMES_MAX 10 /* RFC 7208 4.6.4: per mx mechanism */
#define SPF_CHECK_DEPTH_MAX 20 /* stop following includes past this depth */
#define SPF_CHECK_QUERIES_MAX 100 /* bound on the DNS work of one walk */

enum spf_dns_status {
	SPF_DNS_OK, /* n >= 1 answers */
	SPF_DNS_NODATA,
	SPF_DNS_NXDOMAIN,
	SPF_DNS_FAIL, /* SERVFAIL, timeout, bogus: the callback reports it */
};

enum spf_qtype {
	SPF_Q_TXT,
	SPF_Q_A,
	SPF_Q_AAAA,
	SPF_Q_MX,
};

/* Resolves name. On SPF_DNS_OK *ans_r gets *n_r malloc'd strings (the caller
 * frees each and the array): TXT records (strings concatenated, RFC 7208
 * 3.3), addresses, or MX target names. */
typedef enum spf_dns_status (*spf_lookup_cb)(
    void *arg, const char *name, enum spf_qtype type, char ***ans_r, size_t *n_r);

struct spf_check_result {
	bool found; /* the domain has exactly one SPF record */
	char *record; /* that record (malloc'd), or NULL */
	size_t lookups; /* DNS-querying terms, include/redirect recursively */
	size_t void_lookups;
	char all; /* the qualifier of the policy's final "all" ('+', '-', '~',
		   * '?'), following redirect; 0 when there is none */
	bool truncated; /* the walk stopped at a bound */
	bool unknown; /* the domain's own TXT question got no answer */
	json_t *includes; /* [{"domain","via","record"}] of records walked */
};

/* Checks the SPF policy of domain, adding spf-* findings to f (not the
 * "all" advice: that depends on DMARC, see res->all). res is freed with
 * spf_check_result_free. */
void spf_check(const char *domain, spf_lookup_cb cb, void *arg, struct findings *f,
    struct spf_check_result *res);
void spf_check_result_free(struct spf_check_result *res);

#endif
