/*
 * authc: how the smtp process's loops reach the credentials, which live in
 * the auth process (server/auth_proc.h; DESIGN 2.1). The same asynchronous
 * shape as auth/authdb.h and auth/oauth.h: a request made on a loop thread
 * and keyed by the session id is answered later through the given mailbox,
 * never inline; answers for a session that has gone are dropped by the
 * session.
 *
 * Each loop thread has a channel of its own (a SOCK_SEQPACKET socketpair
 * from the parent, one per loop): the loop sends its requests on it,
 * tagged with a request id, and reads the answers itself, in its own event
 * set, so an answer reaches the asking session without another thread's
 * wake-up. While a loop has no channel (the auth process died and is being
 * restarted) or its channel fails, every request of that loop, pending or
 * new, is answered TEMPFAIL (454 4.7.0): never a 535 for a password nobody
 * checked. A request unanswered after AUTHC_TIMEOUT_S is answered TEMPFAIL
 * too.
 */
#ifndef SG_SERVER_AUTHC_H
#define SG_SERVER_AUTHC_H

#include <stddef.h>
#include <stdint.h>

#include "auth/authdb.h"
#include "auth/oauth.h"
#include "sasl/sasl.h"
#include "server/auth_msg.h"

struct authc;
struct loop;
struct mailbox;

#define AUTHC_TIMEOUT_S 30
/* Loops (and channels) at most: [server] threads' maximum. */
#define AUTHC_LINKS_MAX 256

/* The answers, on the asking loop. senders: the user's sender patterns
 * (policy/sender.h), NULL when none; valid during the call only. */
typedef void authc_done_cb(void *ctx, uint64_t session_id, enum authdb_result result,
    const char *user, const char *senders);
/* The answer to a SASL request (server/auth_sasl.h): NULL for TEMPFAIL
 * (no channel, no answer in time), else a->result is AUTHDB_TEMPFAIL, or
 * AUTHDB_OK with a->status and what goes with it. Valid during the call. */
typedef void authc_sasl_cb(void *ctx, uint64_t session_id, const struct auth_msg_answer *a);
/* reason: why a token was refused (for the log); openid: the RFC 7628
 * openid-configuration URL or NULL. */
typedef void authc_token_cb(void *ctx, uint64_t session_id, enum oauth_result result,
    const char *reason, const char *openid, const char *senders);

/* Loop i's channel number gen (the parent's count, CHILD_MSG_AUTH) failed:
 * the auth process closed it or refused a frame. Called on that loop once a
 * second per loop until a new channel comes, to ask the parent for one
 * (an ask that did not go is simply made again); it must not block. */
typedef void authc_lost_cb(void *ctx, size_t i, uint32_t gen);

/* How long an answered request took: from its sendmsg on the channel to
 * the recvmsg of its answer, on the asking loop (request: "plain", "sasl"
 * or "token"). It must not block. */
typedef void authc_timed_cb(void *ctx, const char *request, double seconds);

/* Without channels yet; lost (may be NULL) asks for new ones. */
struct authc *authc_new(authc_lost_cb *lost, void *ctx);
/* timed (NULL: none) hears each answer's time; before the loops run. */
void authc_set_timed(struct authc *a, authc_timed_cb *timed, void *ctx);
/* Loop i (0 <= i < AUTHC_LINKS_MAX) will make requests: its channel is
 * read on it from now on. Once per i, before the loop runs. */
void authc_attach(struct authc *a, size_t i, struct loop *loop);
/* Any thread: fd (a channel to the auth process, the parent's gen-th for
 * loop i) in place of loop i's current one; requests pending on the old
 * one are answered TEMPFAIL. -1: none. A channel for a loop not yet
 * attached waits for it. */
void authc_set_channel(struct authc *a, size_t i, uint32_t gen, int fd);
/* Asks each attached loop to answer what waits TEMPFAIL and close its
 * channel; runs on the loops before anything posted to them later. */
void authc_close(struct authc *a);
/* After the loops have stopped (before they are freed). NULL is a no-op. */
void authc_free(struct authc *a);

/* The requests, made on the loop whose mailbox is mb (attached); the
 * answer comes on that loop, never inline. */
void authc_verify_plain(struct authc *a, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *password, size_t passlen, const char *client, authc_done_cb *cb,
    void *ctx);
/* The steps of SCRAM-* and CRAM-MD5 that need stored keys run in the auth
 * process: q is an AUTH_MSG_SASL_START or AUTH_MSG_SASL_STEP request (its
 * type is checked; another is answered TEMPFAIL). */
void authc_sasl(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const struct auth_msg_req *q, authc_sasl_cb *cb, void *ctx);
/* The exchange handle, begun on mb's loop, has ended on this side (no answer). */
void authc_sasl_end(struct authc *a, struct mailbox *mb, uint64_t handle);
void authc_verify_token(struct authc *a, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, const char *token, size_t tokenlen, authc_token_cb *cb, void *ctx);
#endif
