/*
 * auth_proc: the auth process, `smtpgate-auth` (DESIGN 2.1). It alone opens
 * the credentials (the [auth] backend and [oauth]) and verifies typed,
 * length-checked requests (server/auth_msg.h) that the smtp process's loops
 * send over channels; it never reads from a client's socket. The parent
 * hands it each channel over its control socket; a malformed frame closes
 * the channel it came on. SIGHUP re-reads the credentials (authdb_reload,
 * oauth_reload); SIGTERM ends it; so does the parent's death.
 */
#ifndef SG_SERVER_AUTH_PROC_H
#define SG_SERVER_AUTH_PROC_H

/* Runs the auth process for the configuration at path with the control
 * socket ctl_fd; returns its exit status (2: it cannot start). */
int auth_proc_main(const char *path, int ctl_fd);

#endif
