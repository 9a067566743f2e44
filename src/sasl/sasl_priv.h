/*
 * sasl_priv: the mechanism vtable and the layout of an exchange, shared by
 * the files of src/sasl/ (sasl.c: the exchange; sasl_mech.c: the registry;
 * one file per mechanism family). Not for use outside src/sasl/.
 */
#ifndef SG_SASL_SASL_PRIV_H
#define SG_SASL_SASL_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "sasl/sasl.h"

/*
 * A mechanism: one const object per mechanism, defined by the file that
 * implements it (sasl_plain.c, sasl_scram.c, sasl_cram.c, sasl_bearer.c)
 * and listed by the registry (sasl_mech.c). sasl.c runs an exchange through
 * these entries only.
 */
struct sasl_mech {
	const char *name;
	unsigned flags; /* enum sasl_flags */
	int variant; /* the mechanism's own: a SCRAM hash, XOAUTH2 or OAUTHBEARER */
	enum sasl_status (*step)(
	    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out);
	/* continues after SASL_NEED_KEYS or SASL_VERIFY_TOKEN; NULL: never asks */
	enum sasl_status (*resume)(struct sasl_exchange *x, struct buf *out);
	/* frees the mechanism's own state (wiping secrets); NULL: none */
	void (*free)(struct sasl_exchange *x);
};

struct sasl_scram_state; /* sasl_scram.c */

struct sasl_exchange {
	const struct sasl_mech *mech;
	int state;
	char user[SASL_USER_MAX + 1];
	char *password; /* secret */
	size_t passlen;
	struct sasl_context ctx; /* ctx.hostname points to hostname */
	char *hostname;
	const char *errstr; /* static */

	/* SASL_NEED_KEYS */
	enum sasl_keys_kind keys_kind;
	struct sasl_keys keys; /* secret */
	bool has_keys;
	bool user_known; /* the keys are real (a canonical user was given) */

	/* SASL_VERIFY_TOKEN (bearer mechanisms) */
	char *token; /* secret */
	size_t tokenlen;
	bool has_verdict;
	bool verdict_ok;
	char *verdict_error; /* JSON error challenge, or NULL */

	struct sasl_scram_state *scram;
	char *cram_challenge; /* "<random.time@host>" */
	unsigned char cram_digest[16];
};

/* Sets x->user from p/n (n <= SASL_USER_MAX, no NUL: checked by callers). */
void sasl_set_user(struct sasl_exchange *x, const char *p, size_t n);

/* Keeps a copy of the password p/n (secret) for SASL_VERIFY_PLAIN. */
void sasl_set_password(struct sasl_exchange *x, const char *p, size_t n);
/* A user name of 1..SASL_USER_MAX bytes without NUL. */
bool sasl_user_ok(const char *p, size_t n);

#endif
