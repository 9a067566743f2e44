/*
 * parent: the process `smtpgate serve` starts as (DESIGN 2.1). It never
 * reads from a client: it binds the listeners and the admin socket, opens
 * the log and every secret file the configuration names (lib/vault.h),
 * then runs two children and hands them what they need:
 *   - smtpgate-auth (server/auth_proc.h), which holds the credentials;
 *   - smtpgate-smtp (serve_smtp_main), the event loops, delivery and the
 *     admin API, started as [server] user when the parent is root, with
 *     the listeners, the log, the vault and a channel to the auth process.
 * A child that ends is started again (server/child.h). SIGHUP: the
 * configuration and the files are read again here, checked, and handed to
 * the smtp process, which reloads; the auth process re-reads its own.
 * SIGUSR1/SIGUSR2 go to the smtp process; SIGTERM/SIGINT stop it (it
 * drains its sessions), then the auth process.
 */
#ifndef SG_SERVER_PARENT_H
#define SG_SERVER_PARENT_H

#include <stdbool.h>

/* `smtpgate serve`: checks the configuration at path (with check: and the
 * audit's findings, then returns), then runs the server in the foreground
 * until SIGTERM or SIGINT. Errors are printed on stderr. Returns the exit
 * status: 0, or 2 for a configuration that cannot run. */
int parent_main(const char *path, bool check);

#endif
