/*
 * serve: the daemon's life, from the configuration file to the exit status
 * (serve.c says what each signal does).
 */
#ifndef SG_SERVER_SERVE_H
#define SG_SERVER_SERVE_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct vault;

/* The parent's check of the configuration at path (at start, running
 * NULL; at SIGHUP, the running one, whose listeners must not change):
 * loaded, certificates and credentials usable, spool writable. The conf (conf_free), or
 * NULL with err; *v_r: every file read for it (lib/vault.h), or NULL. */
struct conf *serve_conf_check(
    const char *path, const struct conf *running, struct vault **v_r, char *err, size_t errlen);

/* The smtpgate-smtp process (server/parent.h), ctl its control socket.
 * Returns its exit status. */
int serve_smtp_main(const char *path, int ctl);

#endif
