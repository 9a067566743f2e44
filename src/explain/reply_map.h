/*
 * reply_map: the one table from a received SMTP reply (code, RFC 3463
 * enhanced code, the command it answers) to a finding id of the knowledge
 * base (kb_probe.c), whose cause and fix explain it; the providers' own
 * refusals come first (kb_provider.c). `smtpgate probe` uses it
 * for its findings; the relay uses it for the diagnosis in its delivery logs.
 */
#ifndef SG_EXPLAIN_REPLY_MAP_H
#define SG_EXPLAIN_REPLY_MAP_H

#include "explain/finding.h"

/*
 * The finding id for a reply: code (e.g. 535), enh ("5.7.8", "" or NULL),
 * cmd (the verb answered: "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
 * "STARTTLS", "EHLO", "" for the greeting; NULL: any), text (the whole
 * reply, every line: a provider's words may be on any of them, and "530
 * Must issue a STARTTLS command first" differs from "530 Authentication
 * required" only there). NULL when the reply is no problem (2xx, 3xx) or
 * nothing more specific than its class is known. A provider's known
 * refusal (kb_provider.h) wins over the generic rows.
 */
const char *reply_map_find(int code, const char *enh, const char *cmd, const char *text);
/* The same, and fills *r for findings_add_reply(): the reply's codes (for
 * the cause's "{reply}") and, for a provider's known refusal, its cause,
 * fix and help page (NULL otherwise). r is filled even when NULL is
 * returned. */
const char *reply_map_explain(
    int code, const char *enh, const char *cmd, const char *text, struct finding_reply *r);

#endif
