/*
 * sasl_mech: the mechanisms smtpgate implements, in one list of their
 * vtables (sasl_priv.h), and the weak ones it refuses as such.
 */
#include "sasl/sasl_mech.h"

#include <string.h>

#include "sasl/sasl_bearer.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_plain.h"
#include "sasl/sasl_priv.h"
#include "sasl/sasl_scram.h"

static const struct sasl_mech *const sasl_mech_all[] = {
    &sasl_plain_mech_plain,
    &sasl_plain_mech_login,
    &sasl_scram_mech_sha1,
    &sasl_scram_mech_sha1_plus,
    &sasl_scram_mech_sha256,
    &sasl_scram_mech_sha256_plus,
    /* weak: offered only when listed in [auth] mechanisms */
    &sasl_cram_mech,
    /* bearer tokens are as good as passwords on the wire: TLS only */
    &sasl_bearer_mech_oauthbearer,
    &sasl_bearer_mech_xoauth2,
};

/* Mechanisms smtpgate refuses as too weak (534 5.7.9) instead of unknown. */
static const char *const sasl_mech_weak_names[] = {"CRAM-MD5", "DIGEST-MD5", "NTLM", "ANONYMOUS"};

const struct sasl_mech *
sasl_mech_find(const char *name)
{
	for (size_t i = 0; i < sizeof(sasl_mech_all) / sizeof(sasl_mech_all[0]); i++) {
		if (strcmp(sasl_mech_all[i]->name, name) == 0)
			return sasl_mech_all[i];
	}
	return NULL;
}

const char *
sasl_mech_name(const struct sasl_mech *m)
{
	return m->name;
}

unsigned
sasl_mech_flags(const struct sasl_mech *m)
{
	return m->flags;
}

bool
sasl_mech_is_known_weak(const char *name)
{
	for (size_t i = 0; i < sizeof(sasl_mech_weak_names) / sizeof(sasl_mech_weak_names[0]);
	     i++) {
		if (strcmp(sasl_mech_weak_names[i], name) == 0)
			return true;
	}
	return false;
}
