/*
 * ban_cmd: the ban list of a server (policy/limiter.h), from both ends: the
 * [admin] routes under /bans that the running server serves, and
 * `smtpgate ban list|add|del`, which talks to them or, when the server is
 * not running (or has no [admin]), edits its state file directly.
 */
#ifndef SG_SERVER_BAN_CMD_H
#define SG_SERVER_BAN_CMD_H

#include <stddef.h>

struct buf;
struct conf;

/* SPOOL/bans.json, malloc'd. */
char *ban_state_path(const struct conf *c);

/* The admin_handler for "/bans" (net/admin.h); arg is the struct server.
 *   GET    /bans[?all=1]   the bans in force (all=1: remembered offences too)
 *   POST   /bans           {"address": "192.0.2.7" or "192.0.2.0/24",
 *                           "seconds": N (default [limits] ban_time)}
 *   DELETE /bans/ADDRESS   lifts the ban and forgets its offences (404: none)
 * Replies are JSON; errors are {"error": "..."} with 400, 404 or 405. */
int ban_admin_handler(void *arg, const char *method, const char *path, const char *query,
    const char *body, size_t bodylen, struct buf *out, const char **content_type_r);

#endif
