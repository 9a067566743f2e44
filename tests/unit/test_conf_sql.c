/* Unit tests for conf_sql: the [sql] query takes the login as $1 and
 * nothing else (quotes, comments and dollar-quoted strings are not
 * parameters), and the section against [auth] backend. Table-driven; the
 * query is also checked cut at every byte (never a crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"

static void
test_query_check(void **state)
{
	static const struct {
		const char *q;
		const char *err; /* NULL: accepted */
	} cases[] = {
	    {"SELECT credential FROM c WHERE login = $1", NULL},
	    {"SELECT credential FROM c WHERE login = $1 OR alias = $1;", NULL},
	    {"SELECT credential FROM c WHERE login = $1;  \n", NULL},
	    {"SELECT '$2' AS x, credential FROM c WHERE login = $1", NULL},
	    {"SELECT \"$2\", credential FROM c WHERE login = $1 -- $3", NULL},
	    {"SELECT credential FROM c /* $2 */ WHERE login = $1", NULL},
	    {"SELECT $$ $2 $$, $tag$ $9 $tag$, credential FROM c WHERE login = $1", NULL},
	    {"SELECT 'it''s $2', credential FROM c WHERE login = $1", NULL},
	    {"SELECT credential FROM c WHERE login = 'x'",
	        "the query must take the login as $1 (WHERE login = $1)"},
	    {"SELECT credential FROM c WHERE login = '$1'",
	        "the query must take the login as $1 (WHERE login = $1)"},
	    {"SELECT credential FROM c -- WHERE login = $1",
	        "the query must take the login as $1 (WHERE login = $1)"},
	    {"SELECT credential FROM c WHERE login = $1 AND d = $2",
	        "the query may only use $1 (the login) as a parameter"},
	    {"SELECT credential FROM c WHERE login = $10",
	        "the query may only use $1 (the login) as a parameter"},
	    {"SELECT credential FROM c WHERE login = $0",
	        "the query may only use $1 (the login) as a parameter"},
	    {"SELECT credential FROM c WHERE login = $1; DROP TABLE c",
	        "the query must be one statement"},
	    {"", "the query must take the login as $1 (WHERE login = $1)"},
	    {"SELECT 'unterminated $1", "the query must take the login as $1 (WHERE login = $1)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = NULL;
		int r = conf_sql_query_check(cases[i].q, &err);
		size_t len = strlen(cases[i].q);

		if (cases[i].err == NULL) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -1);
			assert_string_equal(err, cases[i].err);
		}
		/* every prefix: an answer, never a read past the end */
		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n + 1);

			memcpy(p, cases[i].q, n);
			p[n] = '\0';
			(void)!conf_sql_query_check(p, &err);
			free(p);
		}
	}
}

static struct conf *
parse(const char *auth_sql, char *err, size_t errlen)
{
	char text[2048];

	snprintf(text, sizeof(text),
	    "[listen submission]\naddress = 127.0.0.1:2587\ntls = none\n"
	    "[auth]\nmechanisms = SCRAM-SHA-256\n%s",
	    auth_sql);
	return conf_parse_text("/etc/smtpgate/smtpgate.conf", text, err, errlen);
}

static void
test_section(void **state)
{
	static const struct {
		const char *text;
		const char *err; /* substring; NULL: accepted */
	} cases[] = {
	    {"backend = pgsql:dbname=mail\n[sql]\nquery = SELECT credential FROM c WHERE "
	     "login = $1\n",
	        NULL},
	    {"backend = pgsql:host=db password=s3cret\n[sql]\nquery = SELECT credential FROM c "
	     "WHERE login = $1\ntimeout = 10s\npassword_file = pw\n",
	        NULL},
	    {"backend = pgsql:dbname=mail\n",
	        "smtpgate.conf: [auth] backend = pgsql:... needs [sql] query"},
	    {"backend = pgsql:dbname=mail\n[sql]\nquery = SELECT credential FROM c\n",
	        "smtpgate.conf:8: [sql] query: the query must take the login as $1"},
	    {"backend = pgsql:\n[sql]\nquery = SELECT credential FROM c WHERE login = $1\n",
	        "smtpgate.conf:6: backend: expected file:PATH, dovecot:SOCKET or pgsql:CONNINFO, "
	        "got \"pgsql...\""},
	    /* the message shows the prefix only: a mistyped conninfo may hold a password */
	    {"backend = postgresql://u:s3cret@db/mail\n", "got \"postgresql...\""},
	    {"backend = file:users\n[sql]\nquery = SELECT credential FROM c WHERE login = $1\n",
	        "smtpgate.conf:7: [sql] is only used with [auth] backend = pgsql:CONNINFO"},
	    {"backend = pgsql:dbname=mail\n[sql]\nquery = SELECT credential FROM c WHERE "
	     "login = $1\ntimeout = 0s\n",
	        "timeout"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c;

		err[0] = '\0';
		c = parse(cases[i].text, err, sizeof(err));
		if (cases[i].err == NULL) {
			assert_non_null(c);
			assert_non_null(conf_backend_pgsql(c));
			assert_null(conf_backend_file(c));
			assert_non_null(c->sql_query);
			conf_free(c);
			continue;
		}
		if (c != NULL)
			fail_msg("case %zu accepted", i);
		if (strstr(err, cases[i].err) == NULL)
			fail_msg("case %zu: %s", i, err);
		assert_null(strstr(err, "s3cret"));
	}
	/* the values as given: no path resolution of a conninfo */
	{
		struct conf *c = parse("backend = pgsql:host=db dbname=mail\n[sql]\nquery = SELECT "
		                       "credential FROM c WHERE login = $1\npassword_file = pw\n",
		    err, sizeof(err));

		assert_non_null(c);
		assert_string_equal(conf_backend_pgsql(c), "host=db dbname=mail");
		assert_string_equal(c->sql_password_file, "/etc/smtpgate/pw");
		assert_int_equal(c->sql_timeout, 5);
		conf_free(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_check),
	    cmocka_unit_test(test_section),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
