/*
 * sender: sender/login binding (DESIGN 5.5, doc/passwd.5.md "senders").
 * Which envelope and header sender addresses an authenticated user may use:
 * the login name itself (when it is an address) and the patterns of the
 * user's senders= field, a comma-separated list of full addresses
 * ("bob@example.org") and domains ("@example.org": any address there).
 *
 * Comparison: the address is split at its last '@'; a quoted local part
 * ("alice"@example.test) is unquoted first. Local part and domain are both
 * compared case-insensitively for ASCII letters, byte for byte otherwise
 * (no Unicode case folding, no IDNA conversion: a domain written as
 * U-labels and as A-labels are different strings). RFC 5321 2.4 lets a
 * server treat local parts as case-sensitive, but no deployed mailbox
 * system does, and a user who may send as alice@ but not as Alice@ would
 * only be confused.
 *
 * Pure functions: no I/O, no allocation that outlives a call.
 */
#ifndef SG_POLICY_SENDER_H
#define SG_POLICY_SENDER_H

#include <stdbool.h>
#include <stddef.h>

#define SENDER_PATTERNS_MAX 4096 /* the senders= value, all patterns */
#define SENDER_REPLY_TEXT_MAX 400 /* RFC 5321 4.5.3.1.5: reply line 512 with code */

/* true if address (NUL-terminated, as parsed from MAIL FROM or a From:
 * header) is the login or matches one of patterns (comma-separated; NULL
 * or "" for none). "" (the null sender) is never owned. */
bool sender_owns(const char *login, const char *patterns, const char *address);

/* The envelope rule: the null reverse-path <> ("") is allowed (delivery
 * and read-receipt notifications use it, RFC 3461, RFC 8098 2.1; the
 * header From: is still checked), any other address must be owned. */
bool sender_envelope_is_allowed(const char *login, const char *patterns, const char *address);

/* Checks one pattern for `smtpgate user senders`: "local@domain" or
 * "@domain", no white space, control bytes, ',', ':' or '"'. -1 with a
 * static message in *errstr_r. */
int sender_pattern_check(const char *pattern, const char **errstr_r)
    __attribute__((warn_unused_result));

/*
 * The text of the 553 5.7.1 reply (after the enhanced code):
 *   "Sender address rejected: not owned by user LOGIN (allowed: A, @B)"
 * and with header_addr (a refused header From: address):
 *   "Sender address rejected: not owned by user LOGIN (header From: X; allowed: A, @B)"
 * Bytes other than printable ASCII become '?'; a long list is cut with "...".
 * Always NUL-terminates out (outlen > 0).
 */
void sender_reject_text(
    const char *login, const char *patterns, const char *header_addr, char *out, size_t outlen);

#endif
