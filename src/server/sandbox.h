/*
 * sandbox: the system calls the smtpgate-smtp and smtpgate-relay processes
 * may make (DESIGN 2.1), as a seccomp filter (libseccomp) on all their
 * threads. The two lists differ in one point: only the smtp process may
 * accept a connection; the relay process makes connections (deliveries,
 * DNS, TLS), never takes one. Anything else
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

enum sandbox_role {
	SANDBOX_SMTP, /* accepts on the listeners the parent bound */
	SANDBOX_RELAY, /* accepts nothing */
};

/* Installs the filter of role on every thread of the process (TSYNC). 0,
 * or -1 with err. Needs no_new_privs (or CAP_SYS_ADMIN). */
int sandbox_enter(enum sandbox_role role, char *err, size_t errlen);

struct conf;

/* The files the process may reach (server/landlock.h): the spool of c, the
 * system's folders, and for the relay process the folders of the CA files
 * and DNSSEC anchors of c's routes. Before the process starts any thread.
 * Logs a `landlock` event: its ABI, or abi 0, a warning and the reason when
 * Landlock cannot be had (the files then stay as the user's modes allow).
 * 0, or -1 with err. */
int sandbox_enter_files(enum sandbox_role role, const struct conf *c, char *err, size_t errlen);

#endif
