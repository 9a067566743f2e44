/*
 * sasl_mech: the registry of mechanisms, by name (the ones smtpgate
 * implements, and the weak ones it refuses knowingly).
 */
#ifndef SG_SASL_SASL_MECH_H
#define SG_SASL_SASL_MECH_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/sasl.h"

/* The mechanism called name (upper case), or NULL if smtpgate has none. */
const struct sasl_mech *sasl_mech_find(const char *name);
const char *sasl_mech_name(const struct sasl_mech *m);
unsigned sasl_mech_flags(const struct sasl_mech *m);
/* Known only to answer 534 rather than 504 (weak mechanisms never offered). */
bool sasl_mech_is_known_weak(const char *name);

#endif
