/*
 * relay: MAIL and RCPT decisions.
 *
 *  auth = required  MAIL needs AUTH (530 5.7.0 Authentication required); on a
 *                   starttls listener before TLS the answer is instead
 *                   530 5.7.0 Must issue a STARTTLS command first, since AUTH
 *                   itself needs TLS there.
 *  relay = local    unauthenticated RCPT only to [domains] local.
 *  relay = authenticated  unauthenticated RCPT never (auth = optional).
 * An authenticated session may relay to any domain on any listener.
 */
#include "policy/relay.h"

#include <string.h>

#include "conf/conf.h"

enum smtp_reply_id
relay_check_mail(const struct conf_listen *l, bool tls, bool authenticated)
{
	if (authenticated || l->auth != CONF_AUTH_REQUIRED)
		return SMTP_R_OK;
	if (l->tls == CONF_TLS_STARTTLS && !tls)
		return SMTP_R_STARTTLS_REQUIRED;
	return SMTP_R_AUTH_REQUIRED;
}

enum smtp_reply_id
relay_check_rcpt(
    const struct conf *c, const struct conf_listen *l, bool authenticated, const char *domain)
{
	if (authenticated)
		return SMTP_R_OK;
	if (l->relay == CONF_RELAY_LOCAL &&
	    (domain[0] == '\0' || conf_is_local_domain(c, domain, strlen(domain))))
		return SMTP_R_OK;
	return SMTP_R_RELAY_DENIED;
}
