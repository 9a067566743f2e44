/* Unit tests for conf_table: the key tables of doc/smtpgate.conf.5.md against
 * the rows of the code. Every documented key exists in its section, every
 * row is documented, a default given as a literal (`...`) is the row's, and
 * the SIGHUP column says what the row says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf_priv.h"

#define DOC SG_SOURCE_DIR "/doc/smtpgate.conf.5.md"
#define MAX_SECS 4
#define MAX_DOCUMENTED 256

struct doc {
	const char *secs[MAX_SECS]; /* the sections of the current heading */
	size_t nsecs;
	int col_default, col_sighup; /* -1: the table has no such column */
	const struct conf_key *documented[MAX_DOCUMENTED];
	const struct conf_section *documented_in[MAX_DOCUMENTED];
	size_t ndocumented;
	int problems;
	int line;
};

static void problem(struct doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(struct doc *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "doc/smtpgate.conf.5.md:%d: ", d->line);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	d->problems++;
}

/* "## [relay] and [route DOMAIN]" -> relay, route; "## SYNTAX" -> none */
static void
doc_heading(struct doc *d, char *s)
{
	static char names[MAX_SECS][32];
	char *b = s;

	d->nsecs = 0;
	while ((b = strchr(b, '[')) != NULL && d->nsecs < MAX_SECS) {
		size_t n = strspn(b + 1, "abcdefghijklmnopqrstuvwxyz");

		if (n > 0 && n < sizeof(names[0])) {
			memcpy(names[d->nsecs], b + 1, n);
			names[d->nsecs][n] = '\0';
			d->secs[d->nsecs] = names[d->nsecs];
			d->nsecs++;
		}
		b++;
	}
}

/* Splits "| a | b | c |" into its trimmed cells (in place). */
static size_t
doc_cells(char *s, char **cells, size_t max)
{
	size_t n = 0;
	char *t = strchr(s, '|'), *bar, *e;

	while (t != NULL && (bar = strchr(t + 1, '|')) != NULL && n < max) {
		*bar = '\0';
		t++;
		while (*t == ' ')
			t++;
		e = t + strlen(t);
		while (e > t && e[-1] == ' ')
			*--e = '\0';
		cells[n++] = t;
		t = bar;
	}
	return n;
}

static void
doc_table_head(struct doc *d, char **cells, size_t n)
{
	d->col_default = d->col_sighup = -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cells[i], "default") == 0)
			d->col_default = (int)i;
		if (strcmp(cells[i], "SIGHUP") == 0)
			d->col_sighup = (int)i;
	}
	if (d->col_default == -1 || d->col_sighup == -1)
		problem(d, "a key table without a default or a SIGHUP column");
}

static void
doc_check_row(struct doc *d, const struct conf_section *sec, const struct conf_key *k,
    const char *def, const char *sighup)
{
	const char *want = k->apply == CONF_RELOAD ? "reload" : "restart";

	if (strcmp(sighup, want) != 0)
		problem(d, "[%s] %s: SIGHUP column says \"%s\", the code %s", sec->name, k->name,
		    sighup, want);
	if (def[0] == '`') {
		size_t n = strcspn(def + 1, "`");

		if (k->def == NULL)
			problem(d, "[%s] %s: documented default %.*s, the code has none", sec->name,
			    k->name, (int)n, def + 1);
		else if (strlen(k->def) != n || strncmp(k->def, def + 1, n) != 0)
			problem(d, "[%s] %s: documented default %.*s, the code's is %s", sec->name,
			    k->name, (int)n, def + 1, k->def);
	} else if (k->def != NULL) {
		problem(d, "[%s] %s: the code's default %s is not documented as `%s`", sec->name,
		    k->name, k->def, k->def);
	}
}

static void
doc_row(struct doc *d, char **cells, size_t n)
{
	size_t klen = strcspn(cells[0] + 1, "`");
	char key[64];

	if (d->nsecs == 0) {
		problem(d, "a key table under a heading that names no [section]");
		return;
	}
	if (d->col_default == -1 || d->col_sighup == -1 || (size_t)d->col_sighup >= n ||
	    (size_t)d->col_default >= n || klen >= sizeof(key)) {
		problem(d, "a row that does not fit its table");
		return;
	}
	memcpy(key, cells[0] + 1, klen);
	key[klen] = '\0';
	for (size_t i = 0; i < d->nsecs; i++) {
		const struct conf_section *sec = conf_table_section(d->secs[i]);
		const struct conf_key *k = sec != NULL ? conf_table_key(sec, key) : NULL;

		if (k == NULL) {
			problem(d, "[%s] %s is documented but not in the code's table", d->secs[i],
			    key);
			continue;
		}
		doc_check_row(d, sec, k, cells[d->col_default], cells[d->col_sighup]);
		assert_true(d->ndocumented < MAX_DOCUMENTED);
		d->documented_in[d->ndocumented] = sec;
		d->documented[d->ndocumented++] = k;
	}
}

static void
doc_read(struct doc *d)
{
	FILE *f = fopen(DOC, "r");
	char *buf = NULL, *cells[8];
	size_t cap = 0, n;

	if (f == NULL)
		fail_msg("%s: cannot read", DOC);
	while (getline(&buf, &cap, f) != -1) {
		d->line++;
		if (strncmp(buf, "## ", 3) == 0 || strncmp(buf, "### ", 4) == 0) {
			doc_heading(d, buf);
			d->col_default = d->col_sighup = -1;
		} else if (strncmp(buf, "| key |", 7) == 0) {
			n = doc_cells(buf, cells, 8);
			doc_table_head(d, cells, n);
		} else if (strncmp(buf, "| `", 3) == 0) {
			n = doc_cells(buf, cells, 8);
			doc_row(d, cells, n);
		}
	}
	free(buf);
	fclose(f);
}

static void
each_undocumented_cb(const struct conf_section *sec, const struct conf_key *k, void *arg)
{
	struct doc *d = arg;

	for (size_t i = 0; i < d->ndocumented; i++) {
		if (d->documented[i] == k && d->documented_in[i] == sec)
			return;
	}
	fprintf(stderr, "doc/smtpgate.conf.5.md: [%s] %s is not documented\n", sec->name, k->name);
	d->problems++;
}

static void
test_doc_matches_table(void **state)
{
	struct doc d;

	memset(&d, 0, sizeof(d));
	d.col_default = d.col_sighup = -1;
	doc_read(&d);
	d.line = 0;
	conf_table_each(each_undocumented_cb, &d);
	if (d.problems != 0)
		fail_msg("%d difference(s) between doc/smtpgate.conf.5.md and the key table "
		         "(see above)",
		    d.problems);
	assert_true(d.ndocumented > 50);
}

static void
each_row_cb(const struct conf_section *sec, const struct conf_key *k, void *arg)
{
	int *n = arg;

	/* names are unique within a section */
	assert_ptr_equal(conf_table_key(sec, k->name), k);
	assert_ptr_equal(conf_table_section(sec->name), sec);
	/* a default the code does not store must still be written down */
	if ((k->flags & CONF_KEY_DEF_BY_USER) != 0)
		assert_non_null(k->def);
	if (k->type == CONF_T_BOOL || k->type == CONF_T_ENUM)
		assert_non_null(k->words);
	if (k->type == CONF_T_UINT || k->type == CONF_T_INT || k->type == CONF_T_DURATION)
		assert_true(k->lo <= k->hi);
	(*n)++;
}

static void
test_rows(void **state)
{
	int n = 0;

	conf_table_each(each_row_cb, &n);
	assert_true(n > 50);
	assert_null(conf_table_section("bogus"));
	assert_null(conf_table_key(conf_table_section("server"), "bogus"));
}

/* A default written out is the default: the same setter stores both. */
static void
test_written_defaults(void **state)
{
	static const char base[] =
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n";
	const char *more = "[server]\nhostname = localhost\nspool = spool\nthreads = auto\n"
	                   "log = stderr\n[limits]\nmessage_size = 25M\ntimeout_command = 5m\n"
	                   "allow = 127.0.0.0/8 ::1\nban_action = reply\n"
	                   "[auth]\nqueue = 256\n"
	                   "[relay]\nroute = mx\nretry_min = 1m\nexpire = 5d\ndelay_warning = 0\n"
	                   "dane = yes\n";
	char err[512], text[1024];
	struct conf *a, *b;

	snprintf(text, sizeof(text), "%s[relay]\nroute = mx\n", base);
	a = conf_parse_text("/etc/smtpgate/smtpgate.conf", text, err, sizeof(err));
	if (a == NULL)
		fail_msg("%s", err);
	snprintf(text, sizeof(text), "%s%s", base, more);
	b = conf_parse_text("/etc/smtpgate/smtpgate.conf", text, err, sizeof(err));
	if (b == NULL)
		fail_msg("%s", err);
	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->spool, b->spool);
	assert_string_equal(a->spool, "/etc/smtpgate/spool");
	assert_int_equal(a->threads, b->threads);
	assert_string_equal(a->log, b->log);
	assert_int_equal(a->message_size, b->message_size);
	assert_int_equal(a->timeout_command, b->timeout_command);
	assert_int_equal(a->nallow, b->nallow);
	assert_memory_equal(a->allow, b->allow, a->nallow * sizeof(*a->allow));
	assert_int_equal(a->ban_silent, b->ban_silent);
	assert_int_equal(a->auth_queue, b->auth_queue);
	assert_int_equal(a->relay->retry_min, b->relay->retry_min);
	assert_int_equal(a->relay->expire, b->relay->expire);
	assert_int_equal(a->relay->delay_warning, b->relay->delay_warning);
	assert_int_equal(a->relay->no_dane, b->relay->no_dane);
	/* given in the file or not is remembered apart from the value */
	assert_false(a->relay->tls_set);
	assert_false(a->relay->auth_set);
	assert_null(a->relay->auth);
	assert_null(a->tls_ciphers); /* net/tls.c applies its default */
	assert_null(a->relay->mx_port);
	conf_free(a);
	conf_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_doc_matches_table),
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_written_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
