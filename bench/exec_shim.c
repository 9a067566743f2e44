/*
 * bench/exec_shim.c: LD_PRELOAD shim for bench/callgrind.sh only, never for a
 * production server (bench/README.md, "callgrind.sh").
 *
 * 1. smtpgate starts its children with execve("/proc/self/exe", ...). Under
 *    valgrind, /proc/self/exe is valgrind's own tool binary, so a traced child
 *    cannot start ("mmap(0x58000000) failed in UME"). The shim turns that path
 *    into $BENCH_EXE (the smtpgate binary) before the system call, so
 *    `valgrind --trace-children=yes` follows the children.
 * 2. Valgrind 3.19 does not know the seccomp system call (317: "unhandled
 *    amd64-linux syscall"), so libseccomp cannot build or load a filter under
 *    it. With BENCH_FAKE_SECCOMP=1 the shim answers libseccomp's probes as a
 *    kernel with seccomp would, and "loads" the filter without loading it: the
 *    filter is built (its user-space cost is counted) but never runs. Callgrind
 *    counts user-space instructions only, so a loaded filter (which runs in the
 *    kernel) would not have been counted either.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int
execve(const char *path, char *const argv[], char *const envp[])
{
	const char *exe = getenv("BENCH_EXE");

	if (exe != NULL && exe[0] == '/' && strcmp(path, "/proc/self/exe") == 0)
		path = exe;
	return (int)syscall(SYS_execve, path, argv, envp);
}

static int
shim_fake(void)
{
	const char *v = getenv("BENCH_FAKE_SECCOMP");

	return v != NULL && strcmp(v, "1") == 0;
}

long
syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_seccomp && shim_fake()) {
		switch (a[0]) {
		case SECCOMP_SET_MODE_FILTER:
			/* libseccomp's probe passes no program and expects EFAULT */
			if (a[2] == 0) {
				errno = EFAULT;
				return -1;
			}
			return 0;
		case SECCOMP_GET_ACTION_AVAIL:
			return 0;
		default:
			errno = EINVAL;
			return -1;
		}
	}
	if (real == NULL)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int
prctl(int op, ...)
{
	static int (*real)(int, ...);
	unsigned long a[4];
	va_list ap;

	va_start(ap, op);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (op == PR_SET_SECCOMP && shim_fake())
		return 0;
	if (real == NULL)
		real = (int (*)(int, ...))dlsym(RTLD_NEXT, "prctl");
	return real(op, a[0], a[1], a[2], a[3]);
}
