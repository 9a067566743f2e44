/*
 * serve: the daemon's life, from the configuration file to the exit status
 * (serve.c says what each signal does).
 */
#ifndef SG_SERVER_SERVE_H
#define SG_SERVER_SERVE_H

#include <stdbool.h>

/* Runs the server of the configuration at path in the foreground until
 * SIGTERM or SIGINT; with check, validates everything (and prints the
 * audit's findings) and returns. Errors are printed on stderr. Returns the
 * exit status: 0, or 2 for a configuration that cannot run. */
int serve_daemon(const char *path, bool check);

#endif
