/*
 * dkim_parse: the DKIM tag-list syntax (RFC 6376 3.2), shared with DMARC
 * (RFC 7489 6.4 uses the same form), and the DKIM key record (RFC 6376
 * 3.6.1, RFC 8463 for ed25519). Pure: text in, tags out; no DNS.
 */
#ifndef SG_DNS_DKIM_PARSE_H
#define SG_DNS_DKIM_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define DKIM_TAGS_MAX 32 /* sanity bound on tags per record */
#define DKIM_KEY_MAX 4096 /* bytes of a decoded public key (RSA 16384 fits) */

/* One tag; name and value point into the parsed text (valid as long as it
 * is). The value has no surrounding white space. */
struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	size_t off, len; /* the whole tag-spec in the input, for errors */
};

struct dkim_taglist {
	struct dkim_tag v[DKIM_TAGS_MAX];
	size_t n;
};

/* The error of a failed parse: a static message and the offending part of
 * the input (off, len). */
struct dkim_parse_error {
	const char *errstr;
	size_t off, len;
};

/* Splits p into tags. Tag names compare case-sensitively (DKIM) or not
 * (DMARC, icase) when duplicates are looked for (RFC 6376 3.2: a duplicate
 * invalidates the whole list). */
int dkim_taglist_parse(const char *p, size_t len, bool icase, struct dkim_taglist *tl,
    struct dkim_parse_error *err_r) __attribute__((warn_unused_result));
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_taglist_get(
    const struct dkim_taglist *tl, const char *name, bool icase);

struct dkim_key_record {
	char key_type[16]; /* "rsa" (the default) or "ed25519" */
	bool testing; /* t=y: the domain is testing DKIM (RFC 6376 3.6.1) */
	bool strict; /* t=s: no subdomains in i= */
	bool revoked; /* p= empty */
	unsigned char *key; /* decoded p= (malloc'd), NULL when revoked */
	size_t key_len;
	bool sha1_only; /* h= lists sha1 and not sha256 */
};

/* Parses a DKIM key record; r is freed with dkim_key_record_free (also
 * after a failure). */
int dkim_key_parse(const char *p, size_t len, struct dkim_key_record *r,
    struct dkim_parse_error *err_r) __attribute__((warn_unused_result));
void dkim_key_record_free(struct dkim_key_record *r);
/* The key size in bits (RSA: of the SubjectPublicKeyInfo in p=; ed25519:
 * 256), or -1 with a static *errstr_r when the key does not decode. */
int dkim_key_bits(const struct dkim_key_record *r, const char **errstr_r);

#endif
