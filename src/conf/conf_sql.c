/*
 * conf_sql: the [sql] section (the query of backend = pgsql:CONNINFO, its
 * password file and its time limit) and the checks of the query that need
 * no server: it must take the login as $1 and no other parameter, so that
 * the login only ever travels as a parameter of a prepared statement,
 * never spliced into SQL text.
 *
 * The password file is read by the backend (auth/authdb_pgsql.c), on the
 * process that connects, and never stored in struct conf.
 */
#include "conf/conf_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define CONF_S(f) offsetof(struct conf, f)

/* SIGHUP keeps the backend the server started with (as [auth] backend) */
const struct conf_key conf_sql_keys[] = {
    {CONF_KEY("query", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_S(sql_query),
        .flags = CONF_KEY_LINE, .line_off = CONF_S(sql_query_line)},
    {CONF_KEY("password_file", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_S(sql_password_file)},
    {CONF_KEY("timeout", CONF_T_DURATION, "5s", CONF_RESTART), .off = CONF_S(sql_timeout), .lo = 1,
        .hi = 300, .eg = "5s"},
    {.name = NULL},
};

int
conf_sql_open(struct conf_parse *p, const char *name, const char *arg)
{
	p->c->sql_line = p->line;
	return 0;
}

/* The length of the quoted part that starts at q[0] (' or "), doubled
 * quotes inside; to the end when unterminated. */
static size_t
conf_sql_skip_quoted(const char *q)
{
	char quote = q[0];
	size_t i = 1;

	for (; q[i] != '\0'; i++) {
		if (q[i] == quote && q[i + 1] == quote)
			i++;
		else if (q[i] == quote)
			return i + 1;
	}
	return i;
}

/* A dollar-quoted string $tag$...$tag$ at q (tag: letters, digits, _, not
 * starting with a digit): its length, or 0 when q is not one. */
static size_t
conf_sql_skip_dollar(const char *q)
{
	size_t t = 1;
	const char *end;

	if (isdigit((unsigned char)q[1]))
		return 0;
	while (isalnum((unsigned char)q[t]) || q[t] == '_')
		t++;
	if (q[t] != '$')
		return 0;
	t++; /* q[0..t) is the opening tag */
	for (end = q + t; (end = strstr(end, "$")) != NULL; end++) {
		if (strncmp(end, q, t) == 0)
			return (size_t)(end - q) + t;
	}
	return strlen(q);
}

int
conf_sql_query_check(const char *q, const char **errstr_r)
{
	size_t i = 0, ones = 0;

	while (q[i] != '\0') {
		if (q[i] == '\'' || q[i] == '"') {
			i += conf_sql_skip_quoted(q + i);
		} else if (q[i] == '-' && q[i + 1] == '-') {
			while (q[i] != '\0' && q[i] != '\n')
				i++;
		} else if (q[i] == '/' && q[i + 1] == '*') {
			const char *end = strstr(q + i + 2, "*/");

			i = end != NULL ? (size_t)(end - q) + 2 : strlen(q);
		} else if (q[i] == '$' && isdigit((unsigned char)q[i + 1])) {
			size_t n = 1;

			while (isdigit((unsigned char)q[i + n]))
				n++;
			if (n != 2 || q[i + 1] != '1') {
				*errstr_r = "the query may only use $1 (the login) as a parameter";
				return -1;
			}
			ones++;
			i += n;
		} else if (q[i] == '$') {
			size_t n = conf_sql_skip_dollar(q + i);

			i += n > 0 ? n : 1;
		} else if (q[i] == ';') {
			size_t j = i + 1;

			while (isspace((unsigned char)q[j]))
				j++;
			if (q[j] != '\0') {
				*errstr_r = "the query must be one statement";
				return -1;
			}
			i = j;
		} else {
			i++;
		}
	}
	if (ones == 0) {
		*errstr_r = "the query must take the login as $1 (WHERE login = $1)";
		return -1;
	}
	return 0;
}

int
conf_sql_validate(struct conf_parse *p)
{
	struct conf *c = p->c;
	const char *errstr;

	if (conf_backend_pgsql(c) == NULL) {
		if (c->sql_line != 0) {
			p->line = c->sql_line;
			conf_error(p, "[sql] is only used with [auth] backend = pgsql:CONNINFO");
			return -1;
		}
		return 0;
	}
	if (c->sql_query == NULL) {
		p->line = c->sql_line;
		conf_error(p, "[auth] backend = pgsql:... needs [sql] query");
		return -1;
	}
	if (conf_sql_query_check(c->sql_query, &errstr) == -1) {
		p->line = c->sql_query_line;
		conf_error(p, "[sql] query: %s", errstr);
		return -1;
	}
	return 0;
}
