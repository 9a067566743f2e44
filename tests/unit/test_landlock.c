/*
 * landlock_enter (server/landlock.h), in forked children (a Landlock domain
 * cannot be left): what the spool, the system folders and a folder given
 * allow and what they do not; and the kernel's refusals (ENOSYS, EPERM, as
 * a seccomp filter makes them) give 0 and the reason, restricting nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/landlock.h"

static char base[] = "/tmp/sg-test-landlock-XXXXXX";
static char spool[128], given[128], other[128];

/* The kernel's ABI, 0 without Landlock. */
static long
kernel_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, 1U);

	return abi > 0 ? abi : 0;
}

static void
put(const char *dir, const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(base) == NULL)
		return -1;
	snprintf(spool, sizeof(spool), "%s/spool", base);
	snprintf(given, sizeof(given), "%s/given", base);
	snprintf(other, sizeof(other), "%s/other", base);
	if (mkdir(spool, 0700) == -1 || mkdir(given, 0700) == -1 || mkdir(other, 0700) == -1)
		return -1;
	put(spool, "queued");
	put(given, "ca.pem");
	put(other, "public.txt");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

/* In a child: 0 when path opens with flags (closed again), else errno. */
static int
try_open(const char *dir, const char *name, int flags)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s%s%s", dir, name[0] != '\0' ? "/" : "", name);
	fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd == -1)
		return errno;
	close(fd);
	return 0;
}

/* Runs fn in a child; its exit status (0: every check held). */
static int
in_child(int (*fn)(void))
{
	pid_t pid = fork();
	int st;

	assert_true(pid != -1);
	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Each line of the table: what a process limited to spool and given may do. */
static int
child_rules(void)
{
	static const struct {
		const char *dir, *name;
		int flags, want; /* 0 or the errno */
	} rows[] = {
	    {spool, "queued", O_RDONLY, 0},
	    {spool, "queued", O_RDWR, 0},
	    {spool, "new", O_WRONLY | O_CREAT, 0},
	    {spool, "", O_RDONLY | O_DIRECTORY, 0},
	    {given, "ca.pem", O_RDONLY, 0},
	    {given, "ca.pem", O_WRONLY, EACCES}, /* read-only */
	    {given, "new", O_WRONLY | O_CREAT, EACCES},
	    {other, "public.txt", O_RDONLY, EACCES}, /* mode 0644, but outside */
	    {other, "new", O_WRONLY | O_CREAT, EACCES},
	    {"/tmp", "", O_RDONLY | O_DIRECTORY, EACCES},
	    {"/", "", O_RDONLY | O_DIRECTORY, EACCES},
	    {"/etc", "hostname", O_RDONLY, 0},
	    {"/etc", "hostname", O_WRONLY, EACCES}, /* read-only */
	    {"/dev", "null", O_RDWR, 0},
	    {"/proc/self", "status", O_RDONLY, 0},
	};
	const char *dirs[] = {given, NULL, "/"}; /* NULL and "/" are skipped */
	char err[256] = "";
	int fails = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return 100;
	if (landlock_enter(spool, dirs, 3, err, sizeof(err)) < 1) {
		fprintf(stderr, "landlock_enter: %s\n", err);
		return 101;
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int got = try_open(rows[i].dir, rows[i].name, rows[i].flags);

		if (got != rows[i].want) {
			fprintf(stderr, "row %zu: %s/%s: got %s, want %s\n", i, rows[i].dir,
			    rows[i].name, strerror(got), strerror(rows[i].want));
			fails++;
		}
	}
	return fails;
}

static void
test_rules(void **state)
{
	(void)state;
	if (kernel_abi() == 0)
		skip(); /* the refusals below still run */
	assert_int_equal(in_child(child_rules), 0);
}

/* A seccomp filter that answers landlock_create_ruleset with errnum. */
static int
refuse_landlock(int errnum)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	int rc;

	if (f == NULL)
		return -1;
	rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(errnum), __NR_landlock_create_ruleset, 0);
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	return rc;
}

static int
child_refused(int errnum, const char *reason)
{
	char err[256] = "";

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 || refuse_landlock(errnum) != 0)
		return 100;
	if (landlock_enter(spool, NULL, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "landlock_enter did not give 0: %s\n", err);
		return 101;
	}
	if (strstr(err, reason) == NULL) {
		fprintf(stderr, "reason: %s\n", err);
		return 102;
	}
	/* nothing was restricted */
	return try_open(other, "public.txt", O_RDONLY) == 0 ? 0 : 103;
}

static int
child_enosys(void)
{
	return child_refused(ENOSYS, "the kernel has no Landlock");
}

static int
child_eperm(void)
{
	return child_refused(EPERM, "a system call filter refuses Landlock");
}

static int
child_eopnotsupp(void)
{
	return child_refused(EOPNOTSUPP, "turned off");
}

/* Another failure is an error, not a quiet "unavailable". */
static int
child_other_error(void)
{
	char err[256] = "";

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 || refuse_landlock(EINVAL) != 0)
		return 100;
	if (landlock_enter(spool, NULL, 0, err, sizeof(err)) != -1 ||
	    strstr(err, "landlock") == NULL)
		return 101;
	return 0;
}

static void
test_refusals(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_enosys), 0);
	assert_int_equal(in_child(child_eperm), 0);
	assert_int_equal(in_child(child_eopnotsupp), 0);
	assert_int_equal(in_child(child_other_error), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
