/*
 * kb_provider: what the big mail providers mean by their refusals. Gmail,
 * Microsoft 365 (and Outlook.com), Yahoo and Amazon SES put the real cause
 * of an authentication or sender refusal in the reply's text, not in its
 * code: Gmail's 534 5.7.9 is not "mechanism too weak" but "this account
 * needs an app password". One table of rows (code, enhanced code, words of
 * the reply) names the finding id and the provider's own cause, fix and
 * help page; reply_map.c consults it before its generic rows, so `smtpgate
 * probe` and the relay's delivery logs explain these replies alike.
 */
#ifndef SG_EXPLAIN_KB_PROVIDER_H
#define SG_EXPLAIN_KB_PROVIDER_H

#include "explain/finding.h"

/*
 * The provider row for a reply: code, enh ("5.7.139", "" or NULL when the
 * reply has none) and text (the whole reply, every line, as the client
 * keeps it). Fills r's provider, cause, fix and help and returns the
 * finding id, or returns NULL and leaves r alone when no row matches.
 */
const char *kb_provider_find(int code, const char *enh, const char *text, struct finding_reply *r);

#endif
