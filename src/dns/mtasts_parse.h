/*
 * mtasts_parse: MTA-STS (RFC 8461 3.1 TXT record, 3.2 policy file, 4.1 MX
 * patterns) and SMTP TLS Reporting (RFC 8460 3 TXT record). Pure: text in,
 * fields out; fetching the policy is mtasts_fetch's job.
 */
#ifndef SG_DNS_MTASTS_PARSE_H
#define SG_DNS_MTASTS_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define MTASTS_ID_MAX 32 /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define MTASTS_MAX_AGE_MAX 31557600UL /* RFC 8461 3.2: about one year */
#define MTASTS_MX_MAX 32 /* sanity bound on mx lines */
#define MTASTS_POLICY_MAX 65536 /* bytes of a policy file we read (RFC 8461 3.3: 64 KiB) */
#define TLSRPT_RUA_MAX 8

/* True when the record starts with "v=STSv1" (RFC 8461 3.1). */
bool mtasts_is_record(const char *p, size_t len);
/* Parses the _mta-sts TXT record; id_r gets the id (NUL-terminated). */
int mtasts_record_parse(const char *p, size_t len, char id_r[MTASTS_ID_MAX + 1],
    const char **errstr_r) __attribute__((warn_unused_result));

struct mtasts_policy {
	char mode[16]; /* "enforce", "testing" or "none" */
	unsigned long max_age;
	char *mx[MTASTS_MX_MAX]; /* malloc'd patterns */
	size_t n_mx;
};

/* Parses a policy file; p is freed with mtasts_policy_free (also after a
 * failure). *line_r is the 1-based line of the error (0: the whole file). */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p,
    const char **errstr_r, size_t *line_r) __attribute__((warn_unused_result));
void mtasts_policy_free(struct mtasts_policy *p);
/* RFC 8461 4.1: pattern "mx.example.com" or "*.example.com" (one leftmost
 * label) against a host name; case-insensitive, trailing dots ignored. */
bool mtasts_mx_matches(const char *pattern, const char *host);

/* True when the record starts with "v=TLSRPTv1" (RFC 8460 3). */
bool tlsrpt_is_record(const char *p, size_t len);
/* Parses the _smtp._tls TXT record; rua gets malloc'd URIs (mailto: or
 * https:), freed by the caller. */
int tlsrpt_record_parse(const char *p, size_t len, char *rua[TLSRPT_RUA_MAX], size_t *n_rua_r,
    const char **errstr_r) __attribute__((warn_unused_result));

#endif
