/*
 * reply_map: the one table from a received SMTP reply (code, RFC 3463
 * enhanced code, the command it answers) to a finding id of the knowledge
 * base (kb_probe.c), whose cause and fix explain it. `smtpgate probe` uses it
 * for its findings; the relay uses it for the diagnosis in its delivery logs.
 */
#ifndef SG_EXPLAIN_REPLY_MAP_H
#define SG_EXPLAIN_REPLY_MAP_H

/*
 * The finding id for a reply: code (e.g. 535), enh ("5.7.8", "" or NULL),
 * cmd (the verb answered: "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
 * "STARTTLS", "EHLO", "" for the greeting; NULL: any), text (the reply's
 * text, used only to tell "530 Must issue a STARTTLS command first" from
 * "530 Authentication required"). NULL when the reply is no problem (2xx,
 * 3xx) or nothing more specific than its class is known.
 */
const char *reply_map_find(int code, const char *enh, const char *cmd, const char *text);

#endif
