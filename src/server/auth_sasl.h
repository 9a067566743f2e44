/*
 * auth_sasl: the steps of a SASL exchange that need the user's stored keys
 * (SCRAM-SHA-1/256 and -PLUS, CRAM-MD5), run where the keys are: in the
 * auth process (DESIGN 2.1; after Dovecot's auth process). The smtp
 * process keeps the SMTP framing (334, base64, '*'), parses the client's
 * first message for the user (throttling) and knows the channel binding
 * data of its TLS session; it hands the message, that data and, for
 * CRAM-MD5, the challenge it made, to auth_sasl_start. Here the exchange
 * (src/sasl/, GNU SASL for SCRAM) gets the keys from the authdb (fake ones
 * for an unknown user, exactly as before) and answers with the server's
 * next message; keys never leave this process.
 *
 * An exchange that goes on (SCRAM's server-first) is kept under a random
 * 64-bit handle, for its owner (the channel it came on) only, for at most
 * AUTH_SASL_TTL_S and AUTH_SASL_MAX at a time; a handle that is unknown,
 * expired or another channel's, or no room, is answered TEMPFAIL (454
 * 4.7.0), as is an exchange whose owner went away. The exchange ends (and
 * is freed) with DONE, a failure, auth_sasl_end or auth_sasl_drop_owner.
 *
 * A successful SCRAM exchange notes the matched credential's last use.
 * Thread-safe: the auth process's workers run the steps of the requests
 * they read, and the loop drops a closed channel's exchanges. An answer
 * callback runs under the store's lock and must not call back in.
 */
#ifndef SG_SERVER_AUTH_SASL_H
#define SG_SERVER_AUTH_SASL_H

#include <stdint.h>

#include "auth/authdb.h"
#include "conf/conf.h"
#include "server/auth_msg.h"

#define AUTH_SASL_MAX 4096
#define AUTH_SASL_TTL_S 60

struct auth_sasl;
struct mailbox;

/* The answer to the request token (result AUTHDB_OK with status, or
 * AUTHDB_TEMPFAIL); a is valid during the call only. */
typedef void auth_sasl_cb(void *ctx, uint64_t token, const struct auth_msg_answer *a);

/* db may be NULL (no backend: every start is TEMPFAIL); c gives the
 * enabled mechanisms. Both must outlive the store. */
struct auth_sasl *auth_sasl_new(struct authdb *db, const struct conf *c);
/* The authdb is about to be freed: answers it still owes are TEMPFAIL,
 * new requests too. */
void auth_sasl_detach(struct auth_sasl *s);
/* Frees every exchange; answers still due are dropped. */
void auth_sasl_free(struct auth_sasl *s);
/* AUTH_MSG_SASL_START q from owner: answered through cb, inline or later
 * through mb (the authdb's answer to the key lookup). */
void auth_sasl_start(struct auth_sasl *s, struct mailbox *mb, unsigned owner, uint64_t token,
    const struct auth_msg_req *q, auth_sasl_cb *cb, void *ctx);
/* AUTH_MSG_SASL_STEP q from owner: answered inline through cb. */
void auth_sasl_step(struct auth_sasl *s, unsigned owner, uint64_t token,
    const struct auth_msg_req *q, auth_sasl_cb *cb, void *ctx);
/* AUTH_MSG_SASL_END: frees owner's exchange handle, if any. */
void auth_sasl_end(struct auth_sasl *s, unsigned owner, uint64_t handle);
/* owner's channel is gone: frees its exchanges; answers due to it are dropped. */
void auth_sasl_drop_owner(struct auth_sasl *s, unsigned owner);
/* How many exchanges are kept (tests). */
size_t auth_sasl_count(struct auth_sasl *s);

#endif
