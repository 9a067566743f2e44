/*
 * sasl_bearer: XOAUTH2 and OAUTHBEARER (RFC 7628).
 */
#ifndef SG_SASL_SASL_BEARER_H
#define SG_SASL_SASL_BEARER_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/sasl.h"

extern const struct sasl_mech sasl_bearer_mech_xoauth2;
extern const struct sasl_mech sasl_bearer_mech_oauthbearer;

#endif
