/*
 * authdb_pgsql: the pgsql:CONNINFO credential backend (its vtable is in
 * authdb_priv.h). Here only what `smtpgate audit` asks of it.
 */
#ifndef SG_AUTH_AUTHDB_PGSQL_H
#define SG_AUTH_AUTHDB_PGSQL_H

#include <stdbool.h>
#include <stddef.h>

struct conf;

enum authdb_pgsql_probe {
	AUTHDB_PGSQL_PROBE_OK,
	AUTHDB_PGSQL_PROBE_UNREACHABLE, /* no connection ([sql] timeout) */
	AUTHDB_PGSQL_PROBE_QUERY_INVALID, /* the server refuses to prepare the query */
	AUTHDB_PGSQL_PROBE_NO_CREDENTIAL, /* its result has no credential column */
};

/*
 * Connects once with the backend of c (pgsql:CONNINFO and [sql]), prepares
 * the query and looks at the columns it would return (nothing is run). The
 * reason, without the password, in err. Blocks for up to about twice
 * [sql] timeout.
 */
enum authdb_pgsql_probe authdb_pgsql_probe(const struct conf *c, char *err, size_t errlen);

/* Does the conninfo of c hold a password itself (rather than [sql]
 * password_file or libpq's password file)? */
bool authdb_pgsql_conninfo_has_password(const struct conf *c);

#endif
