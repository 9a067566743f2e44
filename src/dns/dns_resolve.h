/*
 * dns_resolve: blocking DNS look-ups for `smtpgate dns`, over libunbound,
 * with a per-query deadline and the DNSSEC status of each answer. A CLI
 * asks one question at a time, so each query waits on the context's fd;
 * the server side will use ub_resolve_event on its loop instead.
 */
#ifndef SG_DNS_DNS_RESOLVE_H
#define SG_DNS_DNS_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52

#define DNS_RR_MAX 64 /* answers kept per query */
#define DNS_TIMEOUTS_MAX 2 /* after this many timeouts, fail fast */

struct dns_resolver_opts {
	const char *resolver; /* "ADDR", "ADDR:PORT", "[V6]:PORT"; NULL: resolv.conf */
	const char *trust_anchor; /* file, "none", or NULL for the system's root key */
	double timeout; /* seconds per query */
};

enum dns_status {
	DNS_OK, /* at least one answer */
	DNS_NODATA,
	DNS_NXDOMAIN,
	DNS_SERVFAIL, /* or another failing rcode (REFUSED...): see rcode */
	DNS_TIMEOUT,
	DNS_BOGUS, /* DNSSEC validation failed: see why_bogus */
};

enum dns_security {
	DNS_INSECURE, /* unsigned, or no trust anchor covers it */
	DNS_SECURE,
	DNS_SEC_BOGUS,
};

struct dns_rr {
	char *text; /* names (with a final dot), addresses, TXT (strings
		     * concatenated, may hold any byte), TLSA data in hex */
	size_t len;
	unsigned pref; /* MX preference */
	unsigned usage, selector, mtype; /* TLSA */
	size_t data_len; /* TLSA: bytes of association data */
};

struct dns_answer {
	enum dns_status status;
	enum dns_security security;
	int rcode;
	char *why_bogus; /* malloc'd or NULL */
	char *canonname; /* set when a CNAME was followed (malloc'd) */
	struct dns_rr rr[DNS_RR_MAX];
	size_t n;
};

struct dns_resolver;

/* Creates a resolver; on failure returns NULL with a message in err. */
struct dns_resolver *dns_resolver_new(const struct dns_resolver_opts *o, char *err, size_t errlen);
void dns_resolver_free(struct dns_resolver *r);
/* The trust-anchor file in use, or NULL (then nothing is "secure"). */
const char *dns_resolver_anchor(const struct dns_resolver *r);
/* The forwarder in unbound's "ADDR@PORT" form, or NULL. */
const char *dns_resolver_forwarder(const struct dns_resolver *r);

/* Looks up name/type; a fills in (free with dns_answer_free). */
void dns_query(struct dns_resolver *r, const char *name, int type, struct dns_answer *a);
void dns_answer_free(struct dns_answer *a);
const char *dns_status_name(enum dns_status s);
const char *dns_security_name(enum dns_security s);
const char *dns_type_name(int type);

/* A printable copy of p[0..len) (malloc'd): bytes outside %x20-7E and "\\"
 * become \DDD as in zone files, so the text is safe in evidence and JSON. */
char *dns_printable(const char *p, size_t len);

/* Decodes a wire-format name at p[0..len) into text with a final dot,
 * escaping bytes outside LDH as \DDD. Returns the bytes used, or 0 when the
 * name is malformed. Pure; exposed for tests. */
size_t dns_name_to_text(const unsigned char *p, size_t len, char *out, size_t outsz);

#endif
