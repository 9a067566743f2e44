/*
 * sasl_plain: PLAIN (RFC 4616) and LOGIN; the pure PLAIN decoder.
 */
#ifndef SG_SASL_SASL_PLAIN_H
#define SG_SASL_SASL_PLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/sasl.h"

extern const struct sasl_mech sasl_plain_mech_plain;
extern const struct sasl_mech sasl_plain_mech_login;

/* Pure decoder of a PLAIN message (RFC 4616 2): authzid NUL authcid NUL
 * passwd. Rejects empty authcid or password, NULs inside fields, over-long
 * fields and an authzid different from the authcid (no proxy login).
 * On success points into msg. 0 / -1. */
int sasl_plain_decode(const char *msg, size_t len, const char **user_r, size_t *userlen_r,
    const char **pass_r, size_t *passlen_r) __attribute__((warn_unused_result));

#endif
