/*
 * landlock: the files smtpgate-smtp and smtpgate-relay may reach, by the
 * kernel's Landlock LSM (DESIGN 2.1, the optional file limit), on top of
 * the user's file modes and the seccomp filter (sandbox.h):
 *
 *   the spool          read, write, create, remove, rename (no exec,
 *                      no device, FIFO, socket or symlink made)
 *   /usr /lib /lib64   read and execute (libraries, providers, NSS
 *                      modules, zoneinfo, CA certificates)
 *   /etc /proc         read (resolv.conf, hosts, CA store; the process's
 *   /sys/devices/      own status for the metrics; the number of CPUs)
 *     system/cpu
 *   /dev/null /dev/zero /dev/urandom /dev/random   read and write
 *   the folders given  read (the configuration's, its CA files')
 *
 * Everything else (home folders, /tmp, /var but the spool, /run, /srv, ...)
 * can be neither read nor written, whatever its mode. Where the ABI has
 * them (6 and later), the process can also neither connect to an abstract
 * Unix socket nor signal a process outside its own domain.
 *
 * Landlock restricts the calling thread and the threads it starts later:
 * call it before the process starts any thread.
 */
#ifndef SG_SERVER_LANDLOCK_H
#define SG_SERVER_LANDLOCK_H

#include <stddef.h>

/* Restricts the calling thread (and its future threads) to the files above:
 * spool, and dirs[0..ndirs) read-only (NULL entries and folders that do not
 * exist are skipped). Returns the Landlock ABI version that now applies
 * (>= 1); 0 with the reason in err when Landlock cannot be had (a kernel
 * without it, turned off, or refused by a system call filter: nothing is
 * restricted); or -1 with err (nothing restricted either; the caller
 * refuses to go on). Needs no_new_privs. */
int landlock_enter(
    const char *spool, const char *const *dirs, size_t ndirs, char *err, size_t errlen);

#endif
