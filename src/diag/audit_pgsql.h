/*
 * audit_pgsql: the audit of [auth] backend = pgsql:CONNINFO: the server
 * reachable with the conninfo, the [sql] query prepared there and
 * returning a credential column, and no password written into the
 * configuration itself. Connects once (bounded by [sql] timeout).
 */
#ifndef SG_DIAG_AUDIT_PGSQL_H
#define SG_DIAG_AUDIT_PGSQL_H

#include "explain/finding.h"

struct conf;

void audit_pgsql(const struct conf *c, struct findings *f);

#endif
