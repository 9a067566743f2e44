/*
 * pgsql_map: what the pgsql backend (authdb_pgsql.c) does without a
 * server, pure and unit-tested: which columns of the [sql] query's result
 * mean what, one result row made into the passwd-file line it stands for
 * (so that a row means exactly what that line of the file means:
 * doc/pgsql.md), and a conninfo with its password hidden, for messages.
 *
 * Columns, by name (any order, others ignored): credential (required: the
 * "{SCHEME}data" of the passwd file), and optionally login (the stored,
 * canonical name), label, senders, locked, expires, created, scram1. SQL
 * NULL is "not set". Values come in libpq's text format.
 */
#ifndef SG_AUTH_PGSQL_MAP_H
#define SG_AUTH_PGSQL_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct passwd_file;

enum pgsql_map_col {
	PGSQL_MAP_CREDENTIAL,
	PGSQL_MAP_LOGIN,
	PGSQL_MAP_LABEL,
	PGSQL_MAP_SENDERS,
	PGSQL_MAP_LOCKED,
	PGSQL_MAP_EXPIRES,
	PGSQL_MAP_CREATED,
	PGSQL_MAP_SCRAM1,
	PGSQL_MAP_NCOLS,
};

/* The result column of each meaning, -1 when the query has none. */
struct pgsql_map {
	int col[PGSQL_MAP_NCOLS];
};

/* The name of column meaning i ("credential", ...). */
const char *pgsql_map_col_name(enum pgsql_map_col i);

/*
 * Maps the result's column names (names[0..n-1], as the server names them:
 * lower case unless quoted) to m_r. -1 and *errstr_r (static) when there
 * is no credential column or a meaning has two columns.
 */
int pgsql_map_columns(struct pgsql_map *m_r, const char *const *names, size_t n,
    const char **errstr_r) __attribute__((warn_unused_result));

/*
 * Appends the line one row stands for to pf: its login column's value, or
 * login when the query has none, then the credential and the extra fields
 * (locked: a boolean, t/f as libpq gives it, or yes/no, true/false, 1/0;
 * expires and created: a UNIX time, a fractional part such as
 * extract(epoch ...) gives is cut; senders: patterns separated by commas
 * or white space). values[i] is column i, NULL for SQL NULL. -1 and
 * *errstr_r (static; it names the column, never shows a value) when a
 * value is not what the passwd file would take; pf is then unchanged.
 */
int pgsql_map_row(struct passwd_file *pf, const struct pgsql_map *m, const char *login,
    const char *const *values, const char **errstr_r) __attribute__((warn_unused_result));

/*
 * conninfo (key=value pairs or a postgresql:// URI) with the value of
 * every password key and the password of a URI's user info replaced by
 * "***", into out (cut to fit, NUL-terminated). For messages and logs.
 */
void pgsql_map_redact(const char *conninfo, char *out, size_t outlen);

#endif
