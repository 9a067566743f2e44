/*
 * audit_pgsql: see audit_pgsql.h.
 */
#include "diag/audit_pgsql.h"

#include "auth/authdb_pgsql.h"
#include "conf/conf.h"

void
audit_pgsql(const struct conf *c, struct findings *f)
{
	char err[1024];

	if (conf_backend_pgsql(c) == NULL)
		return;
	if (authdb_pgsql_conninfo_has_password(c))
		findings_add(f, "auth-pgsql-password-in-config",
		    "%s: [auth] backend = pgsql:... holds a password", c->path);
	switch (authdb_pgsql_probe(c, err, sizeof(err))) {
	case AUTHDB_PGSQL_PROBE_OK:
		break;
	case AUTHDB_PGSQL_PROBE_UNREACHABLE:
		findings_add(f, "auth-pgsql-unreachable", "%s", err);
		break;
	case AUTHDB_PGSQL_PROBE_QUERY_INVALID:
		findings_add(f, "auth-pgsql-query-invalid", "[sql] query, %s:%d: %s", c->path,
		    c->sql_query_line, err);
		break;
	case AUTHDB_PGSQL_PROBE_NO_CREDENTIAL:
		findings_add(f, "auth-pgsql-no-credential-column", "[sql] query, %s:%d: %s",
		    c->path, c->sql_query_line, err);
		break;
	}
}
