/*
 * sandbox: see sandbox.h.
 */
#include "server/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "server/landlock.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

/* Allowed whatever their arguments: I/O on descriptors the process has,
 * memory, time, threads' own housekeeping, the spool's file calls. */
static const char *const sandbox_plain[] = {
    /* descriptors */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "lseek",
    "pipe",
    "pipe2",
    "socketpair", /* libcurl's wake-up pair (the MTA-STS fetch) */
    "eventfd2",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    /* waiting */
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "futex",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
    "restart_syscall",
    /* files: the spool, CA files, the resolver's /etc files */
    "openat",
    "open",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents",
    "getdents64",
    "getcwd",
    "fsync",
    "fdatasync",
    "syncfs",
    "memfd_create",
    "ftruncate",
    "fallocate",
    "flock",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "link",
    "linkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "fchmod",
    "fchmodat",
    "umask",
    "utimensat",
    /* network: deliveries and lookups it makes (bind: the resolver's
       random source ports; a new listening socket needs listen, never
       allowed); accept is the smtp process's alone (sandbox_accepts) */
    "connect",
    "bind",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    /* memory */
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "mincore",
    "membarrier",
    /* time, identity, limits */
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getrandom",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "uname",
    "sysinfo",
    "getrusage",
    "getrlimit",
    "sched_getaffinity",
    "getpriority",
    /* signals and threads */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "sigaltstack",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "exit",
    "exit_group",
    "sched_getparam",
    "sched_getscheduler",
#ifdef SANDBOX_SANITIZER
    "ptrace",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "fork",
    "vfork",
    "execve",
#endif
};

/* Only for the process that serves clients on the parent's listeners. */
static const char *const sandbox_accepts[] = {"accept", "accept4"};

static int
sandbox_allow(scmp_filter_ctx f, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	/* a name this architecture lacks (open, stat on arm64) is no hole */
	if (nr == __NR_SCMP_ERROR)
		return 0;
	return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
}

static struct scmp_arg_cmp
sandbox_arg(unsigned arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};

	return c;
}

/* Allows nr when argument arg equals v. */
static int
sandbox_allow_eq(scmp_filter_ctx f, int nr, unsigned arg, scmp_datum_t v)
{
	struct scmp_arg_cmp c = sandbox_arg(arg, SCMP_CMP_EQ, v, 0);

	return seccomp_rule_add_array(f, SCMP_ACT_ALLOW, nr, 1, &c);
}

/* The calls allowed with some arguments only. */
static int
sandbox_rules(scmp_filter_ctx f)
{
	static const int families[] = {AF_INET, AF_INET6, AF_UNIX, AF_NETLINK};
	static const unsigned long ioctls[] = {FIONREAD, FIONBIO, TCGETS, TIOCGWINSZ};
	static const int prctls[] = {PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(families) / sizeof(families[0]); i++)
		rc = sandbox_allow_eq(f, SCMP_SYS(socket), 0, (scmp_datum_t)families[i]);
	for (size_t i = 0; rc == 0 && i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		rc = sandbox_allow_eq(f, SCMP_SYS(ioctl), 1, (scmp_datum_t)ioctls[i]);
#ifdef SANDBOX_SANITIZER
	if (rc == 0)
		rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0);
	if (rc == 0)
		rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 0);
#else
	for (size_t i = 0; rc == 0 && i < sizeof(prctls) / sizeof(prctls[0]); i++)
		rc = sandbox_allow_eq(f, SCMP_SYS(prctl), 0, (scmp_datum_t)prctls[i]);
	/* threads, never a process */
	if (rc == 0) {
		struct scmp_arg_cmp c = sandbox_arg(
		    0, SCMP_CMP_MASKED_EQ, (scmp_datum_t)CLONE_THREAD, (scmp_datum_t)CLONE_THREAD);

		rc = seccomp_rule_add_array(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &c);
	}
#endif
	(void)prctls;
	/* clone3's flags are out of a filter's reach: the C library falls back */
	if (rc == 0)
		rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* a signal to its own threads only (abort, raise) */
	if (rc == 0)
		rc = sandbox_allow_eq(f, SCMP_SYS(tgkill), 0, (scmp_datum_t)getpid());
	/* its own limits only (getrlimit goes through prlimit64) */
	if (rc == 0) {
		struct scmp_arg_cmp c[2] = {
		    sandbox_arg(0, SCMP_CMP_EQ, 0, 0), sandbox_arg(2, SCMP_CMP_EQ, 0, 0)};

		rc = seccomp_rule_add_array(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2, c);
	}
	return rc;
}

int
sandbox_enter(enum sandbox_role role, char *err, size_t errlen)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc;

	if (f == NULL) {
		snprintf(err, errlen, "seccomp: cannot make a filter");
		return -1;
	}
	rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; rc == 0 && i < sizeof(sandbox_plain) / sizeof(sandbox_plain[0]); i++)
		rc = sandbox_allow(f, sandbox_plain[i]);
	for (size_t i = 0; rc == 0 && role == SANDBOX_SMTP &&
	     i < sizeof(sandbox_accepts) / sizeof(sandbox_accepts[0]);
	     i++)
		rc = sandbox_allow(f, sandbox_accepts[i]);
	if (rc == 0)
		rc = sandbox_rules(f);
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* A route's files the relay process opens itself at delivery time: its CA
 * file (PKIX roots, also for MTA-STS fetches) and DNSSEC trust anchor. */
static size_t
sandbox_route_dirs(const struct conf_route *r, char **dirs, size_t n)
{
	if (r == NULL)
		return n;
	if (r->ca != NULL)
		dirs[n++] = fs_dirname(r->ca);
	if (r->dnssec_anchor != NULL && strcmp(r->dnssec_anchor, "none") != 0)
		dirs[n++] = fs_dirname(r->dnssec_anchor);
	return n;
}

int
sandbox_enter_files(enum sandbox_role role, const struct conf *c, char *err, size_t errlen)
{
	/* the smtp process opens no file by its path but in the spool: the
	 * configuration and its files come as the parent's copies */
	size_t max = role == SANDBOX_RELAY ? 2 * (c->nroutes + 1) : 0, n = 0;
	char **dirs = xcalloc(max + 2, sizeof(*dirs));
	int abi;

#ifdef SANDBOX_SANITIZER
	/* the symbolizer a sanitizer report starts reads this binary */
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len > 0) {
		exe[len] = '\0';
		dirs[n++] = fs_dirname(exe);
	}
#endif
	if (role == SANDBOX_RELAY) {
		n = sandbox_route_dirs(c->relay, dirs, n);
		for (size_t i = 0; i < c->nroutes; i++)
			n = sandbox_route_dirs(c->routes[i], dirs, n);
	}
	abi = landlock_enter(c->spool, (const char *const *)dirs, n, err, errlen);
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	if (abi == -1)
		return -1;
	if (abi > 0)
		log_event(LOG_INFO, "landlock", 0, "{s:s, s:i, s:s}", "process",
		    role == SANDBOX_SMTP ? "smtp" : "relay", "abi", abi, "files",
		    "the spool and the system's folders only");
	else
		log_event(LOG_WARNING, "landlock", 0, "{s:s, s:i, s:s, s:s}", "process",
		    role == SANDBOX_SMTP ? "smtp" : "relay", "abi", 0, "files",
		    "not limited beyond the user's modes", "error", err);
	return 0;
}
