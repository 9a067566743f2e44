/*
 * sasl_scram: SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants (RFC
 * 5802, 7677); the pure client-first parser.
 */
#ifndef SG_SASL_SASL_SCRAM_H
#define SG_SASL_SASL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/sasl.h"

extern const struct sasl_mech sasl_scram_mech_sha1;
extern const struct sasl_mech sasl_scram_mech_sha1_plus;
extern const struct sasl_mech sasl_scram_mech_sha256;
extern const struct sasl_mech sasl_scram_mech_sha256_plus;

/* A SCRAM client-first-message (RFC 5802 7), as far as the server must
 * understand it before the key lookup. Pointers go into the message. */
struct sasl_scram_first {
	char cbflag; /* 'n', 'y' or 'p' */
	const char *cbname; /* after "p=", or NULL */
	size_t cbnamelen;
	char user[SASL_USER_MAX + 1]; /* decoded saslname ("=2C" -> ',', "=3D" -> '=') */
	size_t userlen;
	bool has_authzid; /* "a=" given (equal to the user, or refused) */
	const char *nonce; /* c-nonce after "r=" */
	size_t noncelen;
	const char *bare; /* client-first-message-bare */
	size_t barelen;
};

/*
 * Parses a SCRAM client-first-message strictly: gs2-header with "n", "y" or
 * "p=" cb-name, optional authzid (only one equal to the user is accepted:
 * no proxy login), no "m=" extension (RFC 5802 5.1: reserved, must fail),
 * "n=" saslname of 1..SASL_USER_MAX decoded bytes without NUL or stray '=',
 * "r=" printable nonce, then optional attr=value extensions. 0, or -1 with
 * a static reason in *errstr_r.
 */
int sasl_scram_parse_first(const char *msg, size_t len, struct sasl_scram_first *r,
    const char **errstr_r) __attribute__((warn_unused_result));

#endif
