/*
 * auth_msg: the typed messages between the smtp process's loops and the
 * auth process (DESIGN 2.1), over net/ipc_frame. Requests carry what the
 * SASL exchange produced; the answer carries the verdict, the canonical
 * user and the user's sender patterns (so the smtp process never reads the
 * credentials database). No answer ever carries key material: the
 * mechanisms that need stored keys (SCRAM-*, CRAM-MD5) run their
 * secret-dependent steps in the auth process (server/auth_sasl.h), which
 * answers with the server's next message only.
 *
 * Decoding checks every field against the same limits the session and the
 * authdb apply (user SASL_USER_MAX, secret SASL_SECRET_MAX or
 * SASL_TOKEN_MAX, a SASL message AUTH_MSG_SASL_MAX, ...); a frame that breaks one, has a
 * field too many or too few, or an unknown type, is refused whole (-1) and
 * its channel closed by the caller.
 */
#ifndef SG_SERVER_AUTH_MSG_H
#define SG_SERVER_AUTH_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/authdb.h"
#include "net/ipc_frame.h"
#include "sasl/sasl.h"

enum auth_msg_type {
	AUTH_MSG_PLAIN = 1, /* smtp -> auth: user, password, client */
	AUTH_MSG_SASL_START, /* smtp -> auth: mechanism, client response, the
	                        challenge it answers, channel binding, client */
	AUTH_MSG_USE, /* smtp -> auth: user, label, created, client (no answer) */
	AUTH_MSG_TOKEN, /* smtp -> auth: user, bearer token */
	AUTH_MSG_ANSWER, /* auth -> smtp: the answer to the request of the same id */
	AUTH_MSG_CHANNEL, /* parent -> child: the descriptor that comes with it is a
	                     new channel (no fields) */
	AUTH_MSG_SASL_STEP, /* smtp -> auth: handle, has_input, client response */
	AUTH_MSG_SASL_END, /* smtp -> auth: handle (no answer): the exchange is over */
};

#define AUTH_MSG_CLIENT_MAX 63 /* an IP address as text */
#define AUTH_MSG_REASON_MAX 127
#define AUTH_MSG_URL_MAX 1023
#define AUTH_MSG_MECH_MAX 31
/* A decoded client response or server challenge of a SASL exchange: more
 * than any SCRAM or CRAM-MD5 message may hold (they end in SASL_TOO_LONG
 * below 3 KiB), less than a frame. */
#define AUTH_MSG_SASL_MAX 8192

struct auth_msg_req {
	enum auth_msg_type type;
	char user[SASL_USER_MAX + 1];
	size_t userlen;
	unsigned char secret[SASL_TOKEN_MAX]; /* password, token, or SASL response */
	size_t secretlen;
	/* AUTH_MSG_SASL_*: the exchange (0 before the auth process made one) */
	uint64_t handle;
	bool has_input;
	char mech[AUTH_MSG_MECH_MAX + 1];
	/* the challenge the response answers when the smtp process made it
	 * (CRAM-MD5), else empty */
	char chal[AUTH_MSG_SASL_MAX + 1];
	size_t challen;
	bool plus_offered;
	unsigned char cb[SASL_CB_NTYPES][SASL_CB_DATA_MAX];
	size_t cblen[SASL_CB_NTYPES];
	char client[AUTH_MSG_CLIENT_MAX + 1];
	char label[SASL_CRED_ID_MAX + 1];
	char created[SASL_CRED_ID_MAX + 1];
};

struct auth_msg_answer {
	uint32_t result; /* enum authdb_result, or enum oauth_result for a token */
	char user[AUTHDB_USER_MAX + 1]; /* "" with user_known false: unknown */
	bool user_known;
	char senders[AUTHDB_SENDERS_MAX + 1]; /* "" when none */
	char reason[AUTH_MSG_REASON_MAX + 1]; /* a token's refusal, for the log */
	char openid[AUTH_MSG_URL_MAX + 1]; /* RFC 7628 openid-configuration, "" if none */
	/* AUTH_MSG_SASL_*: what the step decided (enum sasl_status: CONTINUE,
	 * DONE, FAILED, MALFORMED, TOO_LONG), the exchange to go on with
	 * (CONTINUE), the server's challenge (raw bytes) */
	uint32_t status;
	uint64_t handle;
	unsigned char chal[AUTH_MSG_SASL_MAX];
	size_t challen;
};

/* 0, or -1 when it does not fit a frame. */
int auth_msg_req_encode(struct ipc_out *o, uint64_t id, const struct auth_msg_req *r)
    __attribute__((warn_unused_result));
int auth_msg_req_decode(const struct ipc_frame *f, struct auth_msg_req *r)
    __attribute__((warn_unused_result));
int auth_msg_answer_encode(struct ipc_out *o, uint64_t id, const struct auth_msg_answer *a)
    __attribute__((warn_unused_result));
int auth_msg_answer_decode(const struct ipc_frame *f, struct auth_msg_answer *a)
    __attribute__((warn_unused_result));

#endif
