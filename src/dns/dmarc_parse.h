/*
 * dmarc_parse: the DMARC policy record (RFC 7489 6.3, 6.4). Pure and strict:
 * the first invalid tag makes the record invalid and is named in the error.
 * Tags of the DMARCbis drafts (np, psd, t) are checked too; other unknown
 * tags are returned for a warning (receivers ignore them, RFC 7489 6.3).
 */
#ifndef SG_DNS_DMARC_PARSE_H
#define SG_DNS_DMARC_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/dkim_parse.h"

#define DMARC_URIS_MAX 8

enum dmarc_policy {
	DMARC_POLICY_UNSET,
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

struct dmarc_record {
	enum dmarc_policy p, sp, np; /* sp, np: UNSET when absent */
	int pct; /* 0..100; 100 when absent */
	char adkim, aspf; /* 'r' (default) or 's' */
	char *rua[DMARC_URIS_MAX]; /* malloc'd URIs, without a "!size" suffix */
	size_t n_rua;
	char *ruf[DMARC_URIS_MAX];
	size_t n_ruf;
	char fo[16]; /* e.g. "0", "1:d" (white space removed) */
	unsigned long ri; /* report interval, seconds; 86400 when absent */
	char *unknown; /* names of unknown tags, comma-separated, or NULL */
};

/* True when p starts with "v=DMARC1" (white space allowed around "="):
 * other TXT records at _dmarc are not DMARC records (RFC 7489 6.6.3). */
bool dmarc_is_record(const char *p, size_t len);
/* True when p is not a DMARC record but is plainly meant as one: a version
 * tag that is not first, in the wrong case, with white space inside, with
 * a typo or without its ";", quote characters around the record, or DMARC
 * tags (p=, rua=mailto:...) without a version. *why_r: a static sentence
 * saying what is wrong. Receivers ignore such a record (RFC 7489 6.6.3). */
bool dmarc_is_near_record(const char *p, size_t len, const char **why_r);
/* Parses a record; r is freed with dmarc_record_free (also after a
 * failure). err_r names the offending tag-spec. */
int dmarc_parse(const char *p, size_t len, struct dmarc_record *r, struct dkim_parse_error *err_r)
    __attribute__((warn_unused_result));
void dmarc_record_free(struct dmarc_record *r);
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
