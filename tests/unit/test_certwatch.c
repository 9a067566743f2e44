/* Unit tests for server/certwatch: the decision (a change is checked only
 * once the same look came twice in a row, and only once; a refused or
 * loaded state is not checked again until it changes), and the marks that
 * feed it (a file renamed into place, rewritten in place, a link pointed
 * elsewhere and a missing file each change the mark; a mere open does not). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "server/certwatch.h"

/* --- the decision, table-driven ---------------------------------------------------- */

/* One look: the "version" of each of two files (0: as at start), and the
 * step expected. */
struct look {
	int v[2];
	enum certwatch_step want;
};

static const struct {
	const char *name;
	struct look looks[8];
	size_t n;
} cases[] = {
    {"nothing changes", {{{0, 0}, CERTWATCH_QUIET}, {{0, 0}, CERTWATCH_QUIET}}, 2},
    {"a change settles, then is checked once",
        {{{1, 0}, CERTWATCH_SETTLING}, {{1, 0}, CERTWATCH_CHECK}, {{1, 0}, CERTWATCH_QUIET},
            {{1, 0}, CERTWATCH_QUIET}},
        4},
    {"cert, then key a moment later: one check of the pair",
        {{{1, 0}, CERTWATCH_SETTLING}, {{1, 1}, CERTWATCH_SETTLING}, {{1, 1}, CERTWATCH_CHECK},
            {{1, 1}, CERTWATCH_QUIET}},
        4},
    {"a file still growing is not checked",
        {{{1, 0}, CERTWATCH_SETTLING}, {{2, 0}, CERTWATCH_SETTLING}, {{3, 0}, CERTWATCH_SETTLING},
            {{3, 0}, CERTWATCH_CHECK}},
        4},
    {"refused, then fixed: checked again",
        {{{1, 0}, CERTWATCH_SETTLING}, {{1, 0}, CERTWATCH_CHECK}, {{1, 0}, CERTWATCH_QUIET},
            {{1, 1}, CERTWATCH_SETTLING}, {{1, 1}, CERTWATCH_CHECK}},
        5},
    {"changed and changed back before it settled: nothing to check",
        {{{1, 0}, CERTWATCH_SETTLING}, {{0, 0}, CERTWATCH_SETTLING}, {{0, 0}, CERTWATCH_QUIET}}, 3},
};

static void
mark_of_version(int v, struct certwatch_mark *m)
{
	memset(m, 0, sizeof(*m));
	m->ino = 100 + (ino_t)v;
	m->size = 10 * v;
	m->mtime_ns = 1000LL * v;
}

static void
test_step_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct certwatch_mark seen[2], tried[2], now[2];

		mark_of_version(0, &seen[0]);
		mark_of_version(0, &seen[1]);
		memcpy(tried, seen, sizeof(tried));
		for (size_t i = 0; i < cases[c].n; i++) {
			enum certwatch_step got;

			mark_of_version(cases[c].looks[i].v[0], &now[0]);
			mark_of_version(cases[c].looks[i].v[1], &now[1]);
			got = certwatch_step(2, now, seen, tried);
			if (got != cases[c].looks[i].want)
				fail_msg("%s: look %zu: step %d, want %d", cases[c].name, i,
				    (int)got, (int)cases[c].looks[i].want);
		}
	}
}

/* --- the marks ------------------------------------------------------------------------ */

static char dir[] = "/tmp/test_certwatch.XXXXXX";

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
test_marks(void **state)
{
	char path[128], tmp[128], a[128], b[128];
	struct certwatch_mark m0, m1;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	snprintf(tmp, sizeof(tmp), "%s/cert.pem.new", dir);
	snprintf(a, sizeof(a), "%s/cert1.pem", dir);
	snprintf(b, sizeof(b), "%s/cert2.pem", dir);
	write_file(path, "one");
	certwatch_mark_of(path, &m0);
	assert_int_equal(m0.err, 0);

	/* reading it is no change */
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	close(fd);
	certwatch_mark_of(path, &m1);
	assert_true(certwatch_mark_equal(&m0, &m1));

	/* a new file renamed into place, even of the same size */
	write_file(tmp, "two");
	assert_int_equal(rename(tmp, path), 0);
	certwatch_mark_of(path, &m1);
	assert_false(certwatch_mark_equal(&m0, &m1));

	/* rewritten in place */
	m0 = m1;
	write_file(path, "three");
	certwatch_mark_of(path, &m1);
	assert_false(certwatch_mark_equal(&m0, &m1));

	/* a link pointed at another file (certbot's live/ -> archive/) */
	write_file(a, "first");
	write_file(b, "second");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(a, path), 0);
	certwatch_mark_of(path, &m0);
	assert_true(m0.link_ino != 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(b, path), 0);
	certwatch_mark_of(path, &m1);
	assert_false(certwatch_mark_equal(&m0, &m1));

	/* a link to nothing */
	assert_int_equal(unlink(b), 0);
	m0 = m1;
	certwatch_mark_of(path, &m1);
	assert_int_equal(m1.err, ENOENT);
	assert_false(certwatch_mark_equal(&m0, &m1));

	unlink(path);
	unlink(a);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_step_table),
	    cmocka_unit_test(test_marks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
