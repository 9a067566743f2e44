/*
 * libFuzzer target: the pure parts of the pgsql backend on any bytes. The
 * input, split at NUL bytes, is a conninfo, then a row of the eight
 * columns (an empty field is SQL NULL). The conninfo's redaction never
 * crashes or overruns (its cases are in the unit test); a row the map takes is a
 * passwd-file line that re-parses to itself; the [sql] query check answers
 * for the whole input as a query.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd_file.h"
#include "auth/pgsql_map.h"
#include "conf/conf.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_pgsql_map_row(const char *const *vals)
{
	static const char *const names[] = {
	    "credential", "login", "label", "senders", "locked", "expires", "created", "scram1"};
	struct pgsql_map m;
	struct passwd_file *pf, *again;
	const char *err;
	char perr[512];
	struct buf a, b;

	if (pgsql_map_columns(&m, names, 8, &err) == -1)
		abort();
	pf = passwd_file_parse_text("/fuzz/sql", "", 0, perr, sizeof(perr));
	if (pf == NULL || pgsql_map_row(pf, &m, "asked@example.test", vals, &err) == -1) {
		passwd_file_free(pf);
		return;
	}
	buf_init(&a, PASSWD_FILE_MAX);
	buf_init(&b, PASSWD_FILE_MAX);
	if (passwd_file_format(pf, &a) != 0)
		abort();
	again = passwd_file_parse_text("/fuzz/sql", a.data, a.len, perr, sizeof(perr));
	if (again == NULL || again->nentries != 1 || passwd_file_format(again, &b) != 0 ||
	    a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	passwd_file_free(again);
	buf_free(&a);
	buf_free(&b);
	passwd_file_free(pf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), out[256];
	const char *fields[9] = {NULL}, *err;
	size_t nf = 0, start = 0;

	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i <= size && nf < 9; i++) {
		if (i == size || text[i] == '\0') {
			text[i] = '\0';
			fields[nf++] = i > start ? text + start : NULL;
			start = i + 1;
		}
	}
	pgsql_map_redact(fields[0] != NULL ? fields[0] : "", out, sizeof(out));
	if (strlen(out) >= sizeof(out))
		abort();
	fuzz_pgsql_map_row(fields + 1);
	(void)!conf_sql_query_check(fields[0] != NULL ? fields[0] : "", &err);
	free(text);
	return 0;
}
