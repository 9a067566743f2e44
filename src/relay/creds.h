/*
 * creds: the secret a route authenticates with, read when a delivery needs
 * it and wiped after use: the route's credentials file ("USER PASSWORD", or
 * for XOAUTH2/OAUTHBEARER "USER !COMMAND" whose standard output is the
 * bearer token, cached for the route's token_ttl and dropped when the
 * server refuses it), else for smarthost routes the SMTPACCOUNT and
 * SMTPPASSWORD environment variables. Thread-safe: one struct creds per
 * scheduler, shared by its workers.
 */
#ifndef SG_RELAY_CREDS_H
#define SG_RELAY_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct conf_route;
struct creds;

#define CREDS_COMMAND_TIMEOUT 30 /* seconds a token command may run */

struct creds *creds_new(void);
void creds_free(struct creds *cr);

/* The mechanism the route uses: its auth key, else SMTPAUTHMETHOD for a
 * smarthost route, else NULL (no AUTH). */
const char *creds_mech(const struct conf_route *r);
/* The user (malloc'd, to user_r) and secret (appended to secret, which the
 * caller made secret with buf_set_secret). -1 with a reason in err. */
int creds_get(struct creds *cr, const struct conf_route *r, char **user_r, struct buf *secret,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/* The server refused the secret: forget a cached token. */
void creds_invalidate(struct creds *cr, const struct conf_route *r);

/* How a token command runs. By default here, with /bin/sh -c and a
 * deadline of CREDS_COMMAND_TIMEOUT; a process that may not start programs
 * (server/sandbox.h) hands it to one that may. out gets the token. Set
 * before the scheduler starts; NULL: the default. */
typedef int creds_runner_fn(
    const struct conf_route *r, const char *cmd, struct buf *out, char *err, size_t errlen);
void creds_set_runner(creds_runner_fn *fn);
/* The default: cmd with /bin/sh -c, its standard output (trailing white
 * space dropped) to out. 0, or -1 with err. */
int creds_run_command(const char *cmd, struct buf *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* How the credentials file of a route is read (r->credentials set): its
 * text (malloc'd, NUL added, *len_r bytes; the caller wipes it), or NULL
 * with err. By default here, its mode checked first (0600 or stricter);
 * a process that may not open it asks one that may. */
typedef char *creds_reader_fn(const struct conf_route *r, size_t *len_r, char *err, size_t errlen);
void creds_set_reader(creds_reader_fn *fn);
char *creds_read_file(const struct conf_route *r, size_t *len_r, char *err, size_t errlen);

/* The COMMAND of route r's credentials file ("USER !COMMAND"), malloc'd,
 * or NULL with err. */
char *creds_command(const struct conf_route *r, char *err, size_t errlen);

/* Pure: splits one credentials line "USER SECRET" (SECRET may hold spaces;
 * a trailing CR/LF is dropped). -1 when there is no USER or SECRET. */
int creds_parse_line(const char *p, size_t len, char **user_r, const char **secret_r,
    size_t *secretlen_r) __attribute__((warn_unused_result));

#endif
