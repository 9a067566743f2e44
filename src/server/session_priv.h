/*
 * session_priv: what the parts of the session share (session.c: the
 * connection, the input loop and the commands of the CMD state;
 * session_auth.c: AUTH; session_mail.c: MAIL, RCPT, DATA, BDAT and the
 * commit). Nothing outside src/server/session*.c includes it.
 */
#ifndef SG_SERVER_SESSION_PRIV_H
#define SG_SERVER_SESSION_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy/limiter.h"
#include "queue/queue.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"
#include "lib/buf.h"

struct conf;
struct conf_listen;
struct conn;
struct loop_timer;
struct sasl_exchange;
struct sasl_mech;
struct server_snap;
struct smtp_header;
struct worker;

/* A command line may carry an AUTH initial response of SASL_LINE_MAX
 * (RFC 4954 4), so the splitter allows that much; other commands are then
 * held to SMTP_CMD_LINE_MAX. */
#define SESSION_LINE_MAX (SASL_LINE_MAX + 64)
/*
 * Output back-pressure. Replies made in one pass over the input gather in
 * s->out and go to the connection at the end of the pass. When what is
 * pending (s->out plus the connection's output) passes SESSION_OUT_HIGH the
 * client is not reading its replies: the pass stops, input is no longer
 * read, and reading resumes once the client has taken everything; one that
 * never does meets the write timeout. A pass therefore adds at most one
 * command's reply (a 334 challenge is the largest, under SASL_LINE_MAX)
 * above SESSION_OUT_HIGH, far below the hard cap SESSION_OUT_MAX.
 */
#define SESSION_OUT_HIGH (16 * 1024)
#define SESSION_OUT_MAX (SESSION_OUT_HIGH + 2 * SASL_LINE_MAX)
#define SESSION_HELO_MAX 255
#define SESSION_IOV 8

enum session_state {
	SESSION_HANDSHAKE,
	SESSION_CMD,
	SESSION_AUTH,
	SESSION_DATA,
	SESSION_BDAT,
};

enum session_deferred {
	SESSION_DEFER_NONE,
	SESSION_DEFER_STARTTLS, /* 220 flushed: switch the socket to TLS */
	SESSION_DEFER_FREE, /* final reply flushed: free */
};

struct session {
	uint64_t id;
	struct worker *w;
	struct server_snap *snap;
	const struct conf_listen *listen;
	struct conn *conn;
	struct loop_timer *defer;
	enum session_deferred deferred;
	bool tls; /* the TLS handshake is done */
	char client[64]; /* the client: the peer, or what its PROXY header names */
	char proxy[64]; /* the balancer that sent a PROXY header; "" without one */
	enum session_state state;
	bool busy;
	bool closing;
	bool out_blocked; /* input paused until the client reads its replies */
	unsigned errors;
	unsigned commands; /* [limits] commands */
	struct limiter_addr addr; /* the client, for the limiter */
	bool lim_counted; /* limiter_connect counted it: disconnect at free */
	struct loop_timer *tarpit_timer; /* holds a reply back (session_auth_invalid) */
	enum smtp_reply_id tarpit_reply; /* the reply it holds back */
	bool tarpit; /* tarpit_timer is pending */
	struct smtp_line lines;
	struct buf out;

	/* EHLO/HELO; forgotten after STARTTLS (RFC 3207 4.2) */
	char *helo;
	bool esmtp;

	/* AUTH */
	char *auth_user;
	/* auth_user's sender patterns (policy/sender.h) as the auth process
	 * gave them at login, NULL for none; auth_senders_next holds those of
	 * the exchange in progress until it succeeds */
	char *auth_senders, *auth_senders_next;
	const char *auth_mech; /* static name of the mechanism in progress */
	const char
	    *auth_reason; /* why a token was refused, for the log: NULL, or auth_reason_buf */
	char auth_reason_buf[128];
	/* the exchange was given the user's stored keys (SCRAM server-first
	 * went out): abandoning it now counts as a failure, or a client could
	 * probe salts without ever meeting the limiter */
	bool auth_keyed;
	/* the exchange in the auth process (SCRAM-*, CRAM-MD5), 0 when none */
	uint64_t auth_handle;
	struct sasl_exchange *sasl;

	/* the mail transaction */
	bool has_mail;
	struct smtp_path mail;
	char **rcpts;
	size_t nrcpts;
	struct queue_msg *msg;
	char qid[QUEUE_ID_MAX];
	bool msg_failed;
	bool too_big;
	uint64_t msg_size;
	struct timespec commit_start; /* for smtpgate_commit_latency_seconds */
	struct smtp_data data;
	struct smtp_bare bare;
	bool bdat_mode;
	bool bdat_last;
	uint64_t bdat_left;
	enum smtp_reply_id bdat_error; /* SMTP_R_OK, or the reply after discarding */
	struct smtp_header *hdr; /* From: extraction when sender binding applies */
};

/* session.c: the connection and the CMD state */
const struct conf *session_conf(const struct session *s);
/* Queues a reply from the table (4xx/5xx: logged as a reject, 5xx: counted
 * as a peer error), or a raw one (more: a line of a multi-line reply). */
void session_reply(struct session *s, enum smtp_reply_id id, const char *text);
void session_reply_raw(struct session *s, int code, const char *enh, const char *text, bool more);
/* Hands the queued replies to the connection. */
void session_flush(struct session *s);
/* Sends what is queued, then closes; safe anywhere (the free is deferred). */
void session_close(struct session *s);
/* Past [limits] errors: 421 and close; true then. */
bool session_too_many_errors(struct session *s);
void session_reset_transaction(struct session *s);
void session_reset_auth(struct session *s);
/* The idle timeout of the current state ([limits] timeout_command/_data). */
void session_set_timeouts(struct session *s);
/* Takes the input that is there, as far as the state allows. */
void session_process(struct session *s);

/* session_auth.c: AUTH */
void session_auth_cmd(struct session *s, const struct smtp_cmd *cmd);
/* A line of the AUTH state (a client response, base64). */
void session_auth_response(struct session *s, const char *p, size_t n);
/* Ends the exchange with reply id (logged, counted where it is a failure). */
void session_auth_fail(struct session *s, enum smtp_reply_id id);
/* At the end of the session: an exchange left after SCRAM's server-first
 * counts as a failure. */
void session_auth_gone(struct session *s);
/* Whether EHLO advertises AUTH, and which mechanisms can work here. */
bool session_auth_offered(const struct session *s);
bool session_auth_mech_usable(const struct session *s, const struct sasl_mech *m);

/* session_mail.c: the mail transaction */
void session_mail_from(struct session *s, const struct smtp_cmd *cmd);
void session_mail_rcpt(struct session *s, const struct smtp_cmd *cmd);
void session_mail_data(struct session *s);
void session_mail_bdat(struct session *s, const struct smtp_cmd *cmd);
/* Input in the DATA and BDAT states; a chunk's end (also of 0 bytes). */
void session_mail_input_data(struct session *s);
void session_mail_input_bdat(struct session *s);
void session_mail_bdat_chunk_end(struct session *s);

#endif
