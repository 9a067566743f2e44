/*
 * dkim_sign: DKIM signatures (RFC 6376) of outgoing mail with rsa-sha256
 * (RFC 6376 3.3.1, RFC 8301) or ed25519-sha256 (RFC 8463), relaxed/relaxed
 * canonicalization, the body hash over the whole body (no l=).
 *
 * The canonicalizers are pure (bytes in, bytes out, no I/O, no clock); the
 * body canonicalizer is incremental and its output does not depend on how
 * its input was split. dkim_sign itself takes the signing time as an
 * argument, so a signature is a function of the message, the [dkim DOMAIN]
 * section and that time (deterministic for RSA, PKCS#1 v1.5, and Ed25519).
 *
 * Line ends: CRLF, and for robustness a bare LF is read as one too (the
 * canonical forms always use CRLF).
 */
#ifndef SG_RELAY_DKIM_SIGN_H
#define SG_RELAY_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct conf;
struct conf_dkim;

#define DKIM_SIGN_LINE_MAX 78 /* RFC 5322 2.1.1: SHOULD be no more than 78 */
#define DKIM_SIGN_FIELDS_MAX 1000 /* header fields looked at; more: not signed */
#define DKIM_SIGN_HEADER_MAX (1024 * 1024) /* canonical header data signed */
#define DKIM_SIGN_SIG_MAX 16384 /* the DKIM-Signature field we write */

/* One header field of a message: raw[0..len) from its name to the end of its
 * last (continuation) line, line end excluded. */
struct dkim_field {
	const char *raw;
	size_t len;
	size_t namelen; /* the name, without white space before ':' */
};

/*
 * Splits the header section of msg[0..len) into fields (at most
 * DKIM_SIGN_FIELDS_MAX, malloc'd array to *fields_r, pointing into msg) and
 * the offset of the body (after the empty line; len when there is none).
 * -1 with a static reason when a line is neither a field nor a continuation
 * (the message is then not signed) or there are too many fields.
 */
int dkim_sign_split(const char *msg, size_t len, struct dkim_field **fields_r, size_t *nfields_r,
    size_t *body_off_r, const char **errstr_r) __attribute__((warn_unused_result));

/* RFC 6376 3.4.2: appends the relaxed form "name:value\r\n" of one field
 * (raw[0..len), as in struct dkim_field; folded or not). -1: out is full. */
int dkim_sign_canon_header(const char *raw, size_t len, struct buf *out)
    __attribute__((warn_unused_result));

/*
 * RFC 6376 3.4.4: the relaxed body canonicalizer, fed in pieces of any
 * size; emit_cb gets the canonical bytes in order. An empty body, or one
 * of empty lines only, canonicalizes to nothing (RFC 6376 3.4.4 adds a
 * CRLF only to a non-empty body; the single CRLF of 3.4.3 is for simple),
 * as dkimpy and OpenDKIM verify it.
 */
struct dkim_body {
	void (*emit_cb)(void *arg, const char *p, size_t n);
	void *arg;
	size_t empty_lines; /* empty lines held back: dropped at the end */
	bool wsp; /* white space seen since the last content byte */
	bool cr; /* a CR waiting for its LF */
	bool line_content; /* the current line has content */
	char out[4096];
	size_t outlen;
};

void dkim_sign_body_init(
    struct dkim_body *b, void (*emit_cb)(void *, const char *, size_t), void *arg);
void dkim_sign_body_feed(struct dkim_body *b, const char *p, size_t n);
void dkim_sign_body_finish(struct dkim_body *b);

/*
 * The [dkim DOMAIN] of c that signs msg: the one whose DOMAIN is the domain
 * of the address(es) of the message's From: field (RFC 5322 3.6.2). NULL
 * when there is none, no From:, more than one From: field, an unparsable
 * one, or addresses in different domains.
 */
const struct conf_dkim *dkim_sign_select(const struct conf *c, const char *msg, size_t len);

/*
 * Appends the DKIM-Signature field (folded to DKIM_SIGN_LINE_MAX columns,
 * with its final CRLF) for msg[0..len) signed with d at time now (t=) to
 * out. -1 with a static reason in *errstr_r (nothing about the key).
 */
int dkim_sign(const struct conf_dkim *d, const char *msg, size_t len, long long now,
    struct buf *out, const char **errstr_r) __attribute__((warn_unused_result));

#endif
