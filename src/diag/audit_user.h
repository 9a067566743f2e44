/*
 * audit_user: the audit's view of the user the network-facing process runs
 * as ([server] user, server/parent.h): that it exists when the audit runs
 * as root, that it is not root, and that it cannot read a secret file (the
 * passwd file, TLS and DKIM keys, relay credentials, the admin token, the
 * OAuth client secret) itself: the parent hands those over, so a file that
 * user can read is a secret a compromised smtp process could take.
 */
#ifndef SG_DIAG_AUDIT_USER_H
#define SG_DIAG_AUDIT_USER_H

#include <stdbool.h>
#include <sys/types.h>

#include "explain/finding.h"

struct conf;

void audit_user(const struct conf *c, struct findings *f);
/* The uid the spool should belong to: [server] user's when the audit runs
 * as root and it exists, else the audit's own. */
uid_t audit_user_spool_owner(const struct conf *c);

#endif
