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

#endif
