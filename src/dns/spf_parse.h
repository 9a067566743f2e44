/*
 * spf_parse: the SPF record parser (RFC 7208 4.5, 12 ABNF). Pure: a record's
 * text in, its terms out, no DNS. Strict: any term outside the ABNF,
 * including macro syntax (RFC 7208 7.1), is an error naming the term, as
 * receivers treat it as a permerror (RFC 7208 4.6).
 */
#ifndef SG_DNS_SPF_PARSE_H
#define SG_DNS_SPF_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define SPF_TERMS_MAX 256 /* sanity bound on terms per record */

enum spf_kind {
	SPF_ALL,
	SPF_INCLUDE,
	SPF_A,
	SPF_MX,
	SPF_PTR,
	SPF_IP4,
	SPF_IP6,
	SPF_EXISTS,
	SPF_REDIRECT, /* modifiers from here on */
	SPF_EXP,
	SPF_UNKNOWN_MODIFIER,
};

struct spf_term {
	enum spf_kind kind;
	char qualifier; /* '+', '-', '~' or '?' ('+' when not written); 0 for modifiers */
	char *domain; /* domain-spec, ip4/ip6 network, or modifier value; NULL if absent */
	char *name; /* unknown modifier's name, else NULL */
	int cidr4, cidr6; /* prefix lengths, -1 when absent */
	char *text; /* the term as written */
};

struct spf_record {
	struct spf_term *terms;
	size_t n;
};

/* The error of a failed parse: a static message and the offending term's
 * place in the input. */
struct spf_parse_error {
	const char *errstr;
	size_t off, len;
};

/* True when p starts with the version "v=spf1" followed by a space or the
 * end (RFC 7208 4.5: case-insensitive); other TXT records are not SPF. */
bool spf_is_record(const char *p, size_t len);
/* True when p is not an SPF record but is plainly meant as one (white space
 * before or inside "v=spf1", no space after it, quote characters around
 * it, a typo in the version);
 * *why_r: a static sentence saying what is wrong. Receivers ignore such a
 * record (RFC 7208 4.5). */
bool spf_is_near_record(const char *p, size_t len, const char **why_r);
/* Parses a whole record into r (which the caller frees with
 * spf_record_free, also after a failure). */
int spf_parse(const char *p, size_t len, struct spf_record *r, struct spf_parse_error *err_r)
    __attribute__((warn_unused_result));
void spf_record_free(struct spf_record *r);

/* Checks a macro-string (RFC 7208 7.1); exp allows the letters c, r, t of
 * explanation strings. */
bool spf_macro_string_is_valid(const char *p, size_t len, bool exp);
/* Checks a domain-spec: macro-string domain-end. */
bool spf_domain_spec_is_valid(const char *p, size_t len);
/* True when the term queries DNS (RFC 7208 4.6.4: include, a, mx, ptr,
 * exists, redirect). */
bool spf_term_is_lookup(const struct spf_term *t);
/* True when the term's domain contains a macro (cannot be followed
 * without a sender and an IP address). */
bool spf_term_has_macro(const struct spf_term *t);
const char *spf_kind_name(enum spf_kind k);

#endif
