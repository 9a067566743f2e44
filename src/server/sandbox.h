/*
 * sandbox: the system calls the smtpgate-smtp process may make (DESIGN
 * 2.1), as a seccomp filter (libseccomp) on all its threads. Anything else
 * kills the process (the parent logs child_exit with SIGSYS and starts a
 * new one): no exec, no ptrace, no new listening socket, no mount or
 * module call, no signal to another process, sockets of the IPv4, IPv6,
 * Unix and netlink (address lookup) families only, threads only (clone
 * without CLONE_THREAD is refused, clone3 answers ENOSYS so that the C
 * library uses clone).
 *
 * Sanitizer builds (the tests') also allow what the sanitizers need: the
 * leak checker's tracer at exit (a process, ptrace, wait4) and the
 * symbolizer they start for a report (fork, execve).
 */
#ifndef SG_SERVER_SANDBOX_H
#define SG_SERVER_SANDBOX_H

#include <stddef.h>

/* Installs the filter on every thread of the process (TSYNC). 0, or -1
 * with err. Needs no_new_privs (or CAP_SYS_ADMIN). */
int sandbox_enter(char *err, size_t errlen);

#endif
