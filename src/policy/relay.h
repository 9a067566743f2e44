/*
 * relay: who may send mail where (DESIGN 5.2 [listen] auth/relay, 5.5).
 * No address-based trust exists: the only things that grant relaying are a
 * successful AUTH, or a recipient in [domains] local on a relay = local
 * listener. Pure decisions; the session sends the replies.
 */
#ifndef SG_POLICY_RELAY_H
#define SG_POLICY_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_reply.h"

struct conf;
struct conf_listen;

/* SMTP_R_OK, or SMTP_R_STARTTLS_REQUIRED / SMTP_R_AUTH_REQUIRED. */
enum smtp_reply_id relay_check_mail(const struct conf_listen *l, bool tls, bool authenticated);
/* SMTP_R_OK or SMTP_R_RELAY_DENIED. domain is the recipient's domain ("" for
 * <postmaster>, which is always local: RFC 5321 4.5.1). */
enum smtp_reply_id relay_check_rcpt(
    const struct conf *c, const struct conf_listen *l, bool authenticated, const char *domain);

#endif
