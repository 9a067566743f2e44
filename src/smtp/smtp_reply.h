/*
 * smtp_reply: the one table of replies the server sends (DESIGN 5.5), and the
 * formatter for (multi-line) replies. Later the relay and probe map received
 * replies onto the same ids for their diagnoses.
 */
#ifndef SG_SMTP_SMTP_REPLY_H
#define SG_SMTP_SMTP_REPLY_H

#include <stdbool.h>

#include "lib/buf.h"

enum smtp_reply_id {
	SMTP_R_OK, /* 250 2.0.0 OK */
	SMTP_R_SENDER_OK, /* 250 2.1.0 Sender OK */
	SMTP_R_RCPT_OK, /* 250 2.1.5 Recipient OK */
	SMTP_R_RESET, /* 250 2.0.0 Reset state */
	SMTP_R_BYE, /* 221 2.0.0 Bye */
	SMTP_R_DATA_GO, /* 354 End data with <CR><LF>.<CR><LF> */
	SMTP_R_STARTTLS_GO, /* 220 2.0.0 Ready to start TLS */
	SMTP_R_AUTH_OK, /* 235 2.7.0 Authentication successful */
	SMTP_R_VRFY, /* 252 2.5.0 Cannot VRFY user, but will accept message */
	SMTP_R_HELP, /* 214 2.0.0 ... */
	SMTP_R_SHUTDOWN, /* 421 4.3.2 Service shutting down */
	SMTP_R_TIMEOUT, /* 421 4.4.2 Timeout, closing connection */
	SMTP_R_TOO_MANY_ERRORS, /* 421 4.7.0 Too many errors, closing connection */
	SMTP_R_TOO_MANY_CONNS, /* 421 4.7.0 Too many connections */
	SMTP_R_LOCAL_ERROR, /* 451 4.3.0 Local error in processing, try again later */
	SMTP_R_TOO_MANY_RCPTS, /* 452 4.5.3 Too many recipients */
	SMTP_R_AUTH_TEMPFAIL, /* 454 4.7.0 Temporary authentication failure */
	SMTP_R_TLS_UNAVAILABLE, /* 454 4.7.0 TLS not available due to temporary reason */
	SMTP_R_SYNTAX, /* 500 5.5.2 Syntax error, command unrecognized */
	SMTP_R_LINE_TOO_LONG, /* 500 5.5.6 Line too long */
	SMTP_R_AUTH_LINE_TOO_LONG, /* 500 5.5.6 Authentication exchange line is too long */
	SMTP_R_ARG_SYNTAX, /* 501 5.5.4 Syntax error in parameters or arguments */
	SMTP_R_SENDER_SYNTAX, /* 501 5.1.7 Bad sender address syntax */
	SMTP_R_RCPT_SYNTAX, /* 501 5.1.3 Bad recipient address syntax */
	SMTP_R_AUTH_ABORTED, /* 501 5.7.0 Authentication aborted */
	SMTP_R_AUTH_BAD_BASE64, /* 501 5.5.2 Cannot decode response */
	SMTP_R_AUTH_TOO_LONG, /* 501 5.5.2 Authentication response is too long */
	SMTP_R_NOT_IMPLEMENTED, /* 502 5.5.1 Command not implemented */
	SMTP_R_BAD_SEQUENCE, /* 503 5.5.1 Bad sequence of commands */
	SMTP_R_NEED_HELO, /* 503 5.5.1 Send EHLO or HELO first */
	SMTP_R_NEED_MAIL, /* 503 5.5.1 Need MAIL command */
	SMTP_R_NEED_RCPT, /* 503 5.5.1 Need RCPT command */
	SMTP_R_ALREADY_AUTH, /* 503 5.5.1 Already authenticated */
	SMTP_R_AUTH_NOT_ENABLED, /* 503 5.5.1 Authentication not enabled */
	SMTP_R_BDAT_MIX, /* 503 5.5.1 DATA and BDAT cannot be mixed */
	SMTP_R_AUTH_UNKNOWN, /* 504 5.5.4 Unrecognized authentication type */
	SMTP_R_STARTTLS_REQUIRED, /* 530 5.7.0 Must issue a STARTTLS command first */
	SMTP_R_AUTH_REQUIRED, /* 530 5.7.0 Authentication required */
	SMTP_R_AUTH_TOO_WEAK, /* 534 5.7.9 Authentication mechanism is too weak */
	SMTP_R_AUTH_INVALID, /* 535 5.7.8 Authentication credentials invalid */
	SMTP_R_AUTH_NEEDS_TLS, /* 538 5.7.11 Encryption required for requested authentication mechanism */
	SMTP_R_BARE_LF, /* 550 5.5.2 Bare LF or CR in message is not allowed */
	SMTP_R_SIZE_EXCEEDED, /* 552 5.3.4 Message size exceeds fixed limit */
	SMTP_R_SENDER_NOT_OWNED, /* 553 5.7.1 Sender address rejected: not owned by user */
	SMTP_R_RELAY_DENIED, /* 554 5.7.1 Relay access denied */
	SMTP_R_PARAM_UNKNOWN, /* 555 5.5.4 Unsupported parameter */
	SMTP_R_SMTPUTF8_REQUIRED, /* 553 5.6.7 Non-ASCII address requires SMTPUTF8 */
	SMTP_R_NO_TLS_NOW, /* 503 5.5.1 TLS already active */
	SMTP_R_BANNED, /* 421 4.7.0 Too many authentication failures, try again later */
	SMTP_R_TOO_MANY_COMMANDS, /* 421 4.7.0 Too many commands, closing connection */
	SMTP_R_QUOTA_TEMP, /* 452 4.7.1 Sending quota exceeded, account on hold */
	SMTP_R_QUOTA_REJECT, /* 550 5.7.1 Sending quota exceeded, account on hold */
	SMTP_R_AUTH_THROTTLED, /* 454 4.7.0 Temporary authentication failure: too many failed attempts, ... */
	SMTP_R__COUNT
};

struct smtp_reply {
	int code; /* 250 */
	const char *enh; /* "2.0.0" (RFC 3463) */
	const char *text; /* "OK" */
};

/* The table row for id; never NULL. */
const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id);

/* Appends "CODE ENH TEXT\r\n" to out. With more = true the separator is '-'
 * (a non-final line of a multi-line reply). text may be NULL for the table's. */
int smtp_reply_format(struct buf *out, enum smtp_reply_id id, const char *text, bool more)
    __attribute__((warn_unused_result));
/* The same for a code/enh/text given directly (EHLO lines, 235, 334). enh may be NULL. */
int smtp_reply_format_raw(struct buf *out, int code, const char *enh, const char *text, bool more)
    __attribute__((warn_unused_result));

#endif
