/*
 * sasl_priv: the layout of an exchange, shared by the mechanism files of
 * src/sasl/ (sasl.c: registry, PLAIN, LOGIN; sasl_scram.c; sasl_cram.c).
 * Not for use outside src/sasl/.
 */
#ifndef SG_SASL_SASL_PRIV_H
#define SG_SASL_SASL_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "sasl/sasl.h"

enum sasl_mech_id {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_SCRAM_SHA1,
	SASL_MECH_SCRAM_SHA1_PLUS,
	SASL_MECH_SCRAM_SHA256,
	SASL_MECH_SCRAM_SHA256_PLUS,
	SASL_MECH_CRAM_MD5,
	SASL_MECH_XOAUTH2,
	SASL_MECH_OAUTHBEARER,
};

struct sasl_mech {
	const char *name;
	enum sasl_mech_id id;
	unsigned flags;
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

enum sasl_status sasl_scram_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out);
enum sasl_status sasl_scram_resume(struct sasl_exchange *x, struct buf *out);
void sasl_scram_free(struct sasl_exchange *x);

enum sasl_status sasl_cram_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out);
enum sasl_status sasl_cram_resume(struct sasl_exchange *x, struct buf *out);

enum sasl_status sasl_bearer_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out);
enum sasl_status sasl_bearer_resume(struct sasl_exchange *x, struct buf *out);

#endif
