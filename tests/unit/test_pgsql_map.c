/* Unit tests for pgsql_map: column names to meanings, one row to the
 * passwd-file line it stands for (checked as the file checks it), and the
 * conninfo with its password hidden. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "auth/passwd_file.h"
#include "auth/pgsql_map.h"

#define SCRAM                                                                                        \
	"{SCRAM-SHA-256}4096,ftKNuHUVFxpOQJo5OgRL4w==,jSe3MM4c/eSBGtpEr4kh/irQrAdp/bLUnLypNPRpd7A=," \
	"H2VfdotYBhfCxrJMl17bQv1da/0Ezs1xebiaPNfdxKc="

static void
test_columns(void **state)
{
	static const struct {
		const char *names[8];
		size_t n;
		int cred, login, label, locked; /* expected indices, -1 none */
		const char *err; /* NULL: accepted */
	} cases[] = {
	    {{"credential"}, 1, 0, -1, -1, -1, NULL},
	    {{"login", "credential", "label", "locked"}, 4, 1, 0, 2, 3, NULL},
	    {{"x", "locked", "y", "credential"}, 4, 3, -1, -1, 1, NULL},
	    {{"password", "login"}, 2, -1, -1, -1, -1, "the query returns no credential column"},
	    {{"credential", "credential"}, 2, -1, -1, -1, -1,
	        "the query returns two columns of one name"},
	    /* the server's names are compared as they come: no case folding */
	    {{"Credential"}, 1, -1, -1, -1, -1, "the query returns no credential column"},
	    {{"credential", "label", "label"}, 3, -1, -1, -1, -1,
	        "the query returns two columns of one name"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pgsql_map m;
		const char *err = NULL;
		int r = pgsql_map_columns(&m, cases[i].names, cases[i].n, &err);

		if (cases[i].err != NULL) {
			assert_int_equal(r, -1);
			assert_string_equal(err, cases[i].err);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(m.col[PGSQL_MAP_CREDENTIAL], cases[i].cred);
		assert_int_equal(m.col[PGSQL_MAP_LOGIN], cases[i].login);
		assert_int_equal(m.col[PGSQL_MAP_LABEL], cases[i].label);
		assert_int_equal(m.col[PGSQL_MAP_LOCKED], cases[i].locked);
	}
	assert_string_equal(pgsql_map_col_name(PGSQL_MAP_SENDERS), "senders");
}

/* columns of every case below */
static const char *const row_names[] = {
    "login", "credential", "label", "senders", "locked", "expires", "created", "scram1"};

static void
test_rows(void **state)
{
	static const struct {
		const char *vals[8]; /* NULL: SQL NULL */
		const char *err; /* NULL: accepted */
		const char *user, *label, *senders, *locked, *expires;
		bool active; /* at time 1700000000 */
	} cases[] = {
	    /* no login column value: the name asked for */
	    {{NULL, SCRAM}, "login is NULL", NULL, NULL, NULL, NULL, NULL, false},
	    {{"alice@x.test", SCRAM}, NULL, "alice@x.test", NULL, NULL, NULL, NULL, true},
	    {{"alice@x.test", SCRAM, "phone", "bob@x.test, @y.test", "f", "1800000000.000000"},
	        NULL, "alice@x.test", "phone", "bob@x.test,@y.test", NULL, "1800000000", true},
	    {{"alice@x.test", SCRAM, NULL, NULL, "t"}, NULL, "alice@x.test", NULL, NULL, "yes",
	        NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, "yes"}, NULL, "alice@x.test", NULL, NULL, "yes",
	        NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, "false", "1600000000"}, NULL, "alice@x.test", NULL,
	        NULL, NULL, "1600000000", false},
	    /* an empty label or senders is none */
	    {{"alice@x.test", SCRAM, "", " , "}, NULL, "alice@x.test", NULL, NULL, NULL, NULL,
	        true},
	    {{"alice@x.test", NULL}, "credential is NULL", NULL, NULL, NULL, NULL, NULL, false},
	    {{"alice@x.test", "plaintext"}, "x", NULL, NULL, NULL, NULL, NULL,
	        false}, /* the file's message */
	    {{"alice@x.test", "{NOPE}abc"}, "x", NULL, NULL, NULL, NULL, NULL, false},
	    {{"alice@x.test", "{SCRAM-SHA-256}4096,bad"}, "x", NULL, NULL, NULL, NULL, NULL, false},
	    {{"bad name", SCRAM}, "x", NULL, NULL, NULL, NULL, NULL, false},
	    {{"alice:x", SCRAM}, "x", NULL, NULL, NULL, NULL, NULL, false},
	    {{"alice@x.test", SCRAM, "a label with spaces"}, "x", NULL, NULL, NULL, NULL, NULL,
	        false},
	    {{"alice@x.test", SCRAM, NULL, NULL, "maybe"}, "locked must be a boolean", NULL, NULL,
	        NULL, NULL, NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, NULL, "2025-01-01 00:00:00+00"},
	        "expires must be a UNIX time (extract(epoch from ...))", NULL, NULL, NULL, NULL,
	        NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, NULL, "-5"},
	        "expires must be a UNIX time (extract(epoch from ...))", NULL, NULL, NULL, NULL,
	        NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, NULL, "17.x"},
	        "expires must be a UNIX time (extract(epoch from ...))", NULL, NULL, NULL, NULL,
	        NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, NULL, NULL, "soon"},
	        "created must be a UNIX time (extract(epoch from ...))", NULL, NULL, NULL, NULL,
	        NULL, false},
	    {{"alice@x.test", SCRAM, NULL, "a:b"}, "x", NULL, NULL, NULL, NULL, NULL, false},
	    {{"alice@x.test", SCRAM, NULL, NULL, NULL, NULL, NULL, "1,2,3"}, "x", NULL, NULL, NULL,
	        NULL, NULL, false},
	};
	struct pgsql_map m;
	const char *err;
	char perr[256];

	assert_int_equal(pgsql_map_columns(&m, row_names, 8, &err), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct passwd_file *pf = passwd_file_parse_text("t", "", 0, perr, sizeof(perr));
		const struct passwd_entry *e;
		int r;

		assert_non_null(pf);
		err = NULL;
		r = pgsql_map_row(pf, &m, "asked@x.test", cases[i].vals, &err);
		if (cases[i].err != NULL) {
			assert_int_equal(r, -1);
			assert_non_null(err);
			if (strcmp(cases[i].err, "x") != 0)
				assert_string_equal(err, cases[i].err);
			assert_int_equal(pf->nentries, 0); /* left unchanged */
			passwd_file_free(pf);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(pf->nentries, 1);
		e = &pf->entries[0];
		assert_string_equal(e->user, cases[i].user);
		assert_string_equal(e->password, cases[i].vals[1]);
#define CHECK_FIELD(key, want)                                                                     \
	do {                                                                                       \
		if ((want) == NULL)                                                                \
			assert_null(passwd_entry_get(e, key));                                     \
		else                                                                               \
			assert_string_equal(passwd_entry_get(e, key), want);                       \
	} while (0)
		CHECK_FIELD("label", cases[i].label);
		CHECK_FIELD("senders", cases[i].senders);
		CHECK_FIELD("locked", cases[i].locked);
		CHECK_FIELD("expires", cases[i].expires);
#undef CHECK_FIELD
		assert_int_equal(passwd_entry_is_active(e, 1700000000), cases[i].active);
		passwd_file_free(pf);
	}
}

/* Without a login column, the name asked for; several rows make several
 * lines of that user, as app passwords are in the file. */
static void
test_rows_without_login(void **state)
{
	static const char *const names[] = {"label", "credential"};
	const char *a[] = {NULL, SCRAM}, *b[] = {"phone", SCRAM};
	struct pgsql_map m;
	const char *err;
	char perr[256];
	struct passwd_file *pf = passwd_file_parse_text("t", "", 0, perr, sizeof(perr));
	size_t pos = 0, n = 0;

	assert_int_equal(pgsql_map_columns(&m, names, 2, &err), 0);
	assert_int_equal(pgsql_map_row(pf, &m, "asked@x.test", a, &err), 0);
	assert_int_equal(pgsql_map_row(pf, &m, "asked@x.test", b, &err), 0);
	while (passwd_file_next(pf, "asked@x.test", 12, &pos) != NULL)
		n++;
	assert_int_equal(n, 2);
	assert_string_equal(passwd_entry_get(&pf->entries[1], "label"), "phone");
	passwd_file_free(pf);
}

static void
test_redact(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"host=db port=5432 dbname=mail user=sg", "host=db port=5432 dbname=mail user=sg"},
	    {"host=db password=s3cret dbname=mail", "host=db password=*** dbname=mail"},
	    {"password = 's3 cr\\'et' host=db", "password=*** host=db"},
	    {"  host = db   user=sg ", "host=db user=sg"},
	    {"dbname=mail passfile=/x/pgpass", "dbname=mail passfile=/x/pgpass"},
	    {"mail", "mail="},
	    {"postgresql://sg:s3cret@db:5432/mail", "postgresql://sg:***@db:5432/mail"},
	    {"postgres://sg@db/mail?password=s3cret&sslmode=require",
	        "postgres://sg@db/mail?password=***&sslmode=require"},
	    {"postgresql://sg:p@ss@db/mail", "postgresql://sg:***@db/mail"},
	    {"postgresql:///mail?host=/run/postgresql", "postgresql:///mail?host=/run/postgresql"},
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pgsql_map_redact(cases[i].in, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
		assert_null(strstr(out, "s3"));
	}
	/* cut to fit, still terminated */
	pgsql_map_redact("host=a-very-long-host-name.example.org", out, 10);
	assert_string_equal(out, "host=a-ve");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_columns),
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_rows_without_login),
	    cmocka_unit_test(test_redact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
