/*
 * smtp_cmd: recognises a command line (RFC 5321 4.1.1) and parses the
 * arguments of MAIL, RCPT, BDAT, EHLO/HELO and AUTH. Pure: no I/O, no clock.
 * Parse errors come back as the reply id the server should send.
 */
#ifndef SG_SMTP_SMTP_CMD_H
#define SG_SMTP_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_reply.h"

#define SMTP_ADDR_MAX 320 /* RFC 5321 4.5.3.1.3: path 256; local 64 + @ + domain 255 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define SMTP_LOCAL_MAX 64 /* RFC 5321 4.5.3.1.1 */

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* after the verb and its separating space(s); points into the line */
	size_t arglen; /* trailing white space removed; 0 when there is no argument */
};

/*
 * Verb matching is case-insensitive; "MAIL FROM:" and "RCPT TO:" are verbs
 * with the "FROM:"/"TO:" keyword checked here (arg then starts after the
 * colon, optional spaces skipped). Returns 0, or -1 with *err_r set
 * (SMTP_R_SYNTAX for an unknown verb or a NUL byte, SMTP_R_ARG_SYNTAX for
 * an argument where none is allowed: DATA/RSET/QUIT/STARTTLS take none).
 */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd_r, enum smtp_reply_id *err_r)
    __attribute__((warn_unused_result));

enum smtp_body {
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* The parsed argument of MAIL FROM: or RCPT TO:. addr is NUL-terminated and
 * owned by the struct (smtp_path_clear frees). */
struct smtp_path {
	char addr[SMTP_ADDR_MAX + 1]; /* "" for the null reverse-path <> */
	size_t local_len; /* addr[0..local_len) is the local part */
	const char *domain; /* points into addr after '@'; "" for <> or <postmaster> */
	bool non_ascii; /* contains UTF-8 (needs SMTPUTF8) */
	/* MAIL parameters (RFC 1870, 6152, 6531, 4954 5) */
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	bool has_auth; /* AUTH=<...> given; the value is ignored (RFC 4954 5) */
};

/*
 * Parses "<path> [SP params]" after MAIL FROM:. The path may be <> (null
 * sender). Source routes (<@a,@b:x@y>) are accepted and stripped (RFC 5321
 * 4.1.2). Quoted local parts are kept as written. Errors: SMTP_R_SENDER_SYNTAX,
 * SMTP_R_PARAM_UNKNOWN (unknown or repeated parameter), SMTP_R_ARG_SYNTAX (bad
 * parameter value), SMTP_R_SMTPUTF8_REQUIRED (non-ASCII address without the
 * SMTPUTF8 parameter). A parameter value for BODY= must be 7BIT or 8BITMIME.
 */
int smtp_parse_mail(const char *arg, size_t len, struct smtp_path *p_r, enum smtp_reply_id *err_r)
    __attribute__((warn_unused_result));
/*
 * Parses "<path> [SP params]" after RCPT TO:. No parameters are supported
 * (DSN is not offered): any is SMTP_R_PARAM_UNKNOWN. <> is SMTP_R_RCPT_SYNTAX;
 * <postmaster> (any case) is allowed without a domain. Non-ASCII needs
 * smtputf8 (from the transaction's MAIL): else SMTP_R_SMTPUTF8_REQUIRED.
 */
int smtp_parse_rcpt(const char *arg, size_t len, bool smtputf8, struct smtp_path *p_r,
    enum smtp_reply_id *err_r) __attribute__((warn_unused_result));

/* "BDAT <size> [LAST]" (RFC 3030 2). Errors: SMTP_R_ARG_SYNTAX. */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size_r, bool *last_r,
    enum smtp_reply_id *err_r) __attribute__((warn_unused_result));

/* "EHLO/HELO <domain or address literal>": a non-empty argument of printable
 * ASCII with no spaces inside (lenient, as deployed clients need).
 * Errors: SMTP_R_ARG_SYNTAX. */
int smtp_parse_helo(const char *arg, size_t len, enum smtp_reply_id *err_r)
    __attribute__((warn_unused_result));

/* "AUTH <mechanism> [initial-response]" (RFC 4954 4). mech is upper-cased
 * into mech_r (at most 20 chars, RFC 4422 3.1: [A-Z0-9-_]); *ir_r and *irlen_r
 * point into arg (NULL when absent; "=" means empty, left for the caller).
 * Errors: SMTP_R_ARG_SYNTAX. */
#define SMTP_MECH_MAX 20
int smtp_parse_auth(const char *arg, size_t len, char mech_r[SMTP_MECH_MAX + 1], const char **ir_r,
    size_t *irlen_r, enum smtp_reply_id *err_r) __attribute__((warn_unused_result));

#endif
