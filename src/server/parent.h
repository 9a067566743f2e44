/*
 * parent: the process `smtpgate serve` starts as (DESIGN 2.1). It never
 * reads from a client: it binds the listeners and the admin socket, opens
 * the log and every secret file the configuration names (lib/vault.h),
 * then runs its children and hands each what it needs, and no more:
 *   - smtpgate-auth (server/auth_proc.h), which holds the credentials;
 *   - smtpgate-smtp (serve_smtp_main), the event loops, the queue's writes
 *     and the admin API, started as [server] user when the parent is root,
 *     with the listeners, the log, the vault without the DKIM keys, and
 *     channels to the auth and relay processes;
 *   - smtpgate-relay (server/relay_proc.h), only with [relay] or [route]:
 *     delivery, as [server] user, with the log, the configuration and DKIM
 *     keys of the vault (not the TLS keys nor the admin token); the routes'
 *     credentials are read, and token commands run, here at its request.
 * A child that ends is started again (server/child.h). SIGHUP: the
 * configuration and the files are read again here, checked, and handed to
 * the smtp process, which reloads, and a new log to the relay process; the
 * auth process re-reads its own. SIGUSR1/SIGUSR2 go to the relay process;
 * SIGTERM/SIGINT stop the smtp process (it drains its sessions), then the
 * relay process (it ends its deliveries), then the auth process.
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
