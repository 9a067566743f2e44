/*
 * sasl: the mechanism interface (RFC 4422) and the registry of mechanisms.
 * Mechanism cores are pure: they take decoded client responses and say what
 * to do next: send a challenge, verify a plaintext credential, or fail. The
 * session does base64, the wire and the authdb call (DESIGN 1).
 *
 * Secrets: an exchange holds the password it decoded until sasl_free(),
 * which wipes it. Nothing here logs.
 */
#ifndef SG_SASL_SASL_H
#define SG_SASL_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define SASL_USER_MAX 320 /* longest accepted authentication identity */
#define SASL_SECRET_MAX 1024 /* longest accepted password */

enum sasl_flags {
	SASL_F_PLAINTEXT = 1 << 0, /* reveals the password: only inside TLS (RFC 4954 4) */
	SASL_F_WEAK = 1 << 1, /* legacy; only when explicitly enabled (534 otherwise) */
};

enum sasl_status {
	SASL_CONTINUE, /* send the challenge in out (may be empty) as 334 */
	SASL_VERIFY_PLAIN, /* user and password are ready for the authdb */
	SASL_MALFORMED, /* the response does not follow the mechanism: 535 5.7.8 */
};

struct sasl_mech;
struct sasl_exchange;

/* The mechanism called name (upper case), or NULL if smtpgate has none. */
const struct sasl_mech *sasl_mech_find(const char *name);
const char *sasl_mech_name(const struct sasl_mech *m);
unsigned sasl_mech_flags(const struct sasl_mech *m);
/* Known only to answer 534 rather than 504 (weak mechanisms never offered). */
bool sasl_mech_is_known_weak(const char *name);

struct sasl_exchange *sasl_new(const struct sasl_mech *m);
/* Wipes and frees. x may be NULL. */
void sasl_free(struct sasl_exchange *x);
/*
 * One step. in/inlen is the decoded client response; has_input is false for
 * the first step of an AUTH without initial response. A challenge to send
 * is appended to out (raw bytes; the caller encodes).
 */
enum sasl_status sasl_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out);
/* After SASL_VERIFY_PLAIN: NUL-terminated, valid until sasl_free. */
const char *sasl_user(const struct sasl_exchange *x);
const char *sasl_password(const struct sasl_exchange *x);
size_t sasl_password_len(const struct sasl_exchange *x);

/* Pure decoder of a PLAIN message (RFC 4616 2): authzid NUL authcid NUL
 * passwd. Rejects empty authcid or password, NULs inside fields, over-long
 * fields and an authzid different from the authcid (no proxy login).
 * On success points into msg. 0 / -1. */
int sasl_plain_decode(const char *msg, size_t len, const char **user_r, size_t *userlen_r,
    const char **pass_r, size_t *passlen_r) __attribute__((warn_unused_result));

#endif
