/*
 * sasl_cram: CRAM-MD5 (RFC 2195), legacy; the pure response parser.
 */
#ifndef SG_SASL_SASL_CRAM_H
#define SG_SASL_SASL_CRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/sasl.h"

extern const struct sasl_mech sasl_cram_mech;

/* Parses a CRAM-MD5 response (RFC 2195 2): user SP 32 lower-case hex
 * digits. user may not contain NUL. 0 / -1. */
int sasl_cram_parse_response(const char *msg, size_t len, const char **user_r, size_t *userlen_r,
    unsigned char digest_r[16]) __attribute__((warn_unused_result));

/* The challenge exchange x (CRAM-MD5) sent, "" before it did: what the
 * process that verifies the response needs with it. */
const char *sasl_cram_challenge(const struct sasl_exchange *x);
/*
 * Makes the new CRAM-MD5 exchange x go on from the challenge chal/len that
 * another process sent (sasl_cram_challenge there): its next step takes
 * the response. 0, or -1 when x is not a new CRAM-MD5 exchange or chal is
 * not of the form "<...>" in printable ASCII (at most 1024 bytes).
 */
int sasl_cram_restore(struct sasl_exchange *x, const char *chal, size_t len)
    __attribute__((warn_unused_result));

#endif
