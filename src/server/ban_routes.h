/*
 * ban_routes: the running server's side of the ban list (policy/limiter.h):
 * the [admin] routes under /bans, and where the bans are saved. The
 * `smtpgate ban` command (cmd/ban_cmd.c) is their client.
 */
#ifndef SG_SERVER_BAN_ROUTES_H
#define SG_SERVER_BAN_ROUTES_H

#include <stddef.h>

struct buf;
struct conf;

#define BAN_ROUTES_MAX_SECONDS (365U * 24 * 3600) /* longest manual ban */

/* SPOOL/bans.json, malloc'd. */
char *ban_routes_state_path(const struct conf *c);

/* The admin_handler for "/bans" (net/admin.h); arg is the struct server.
 *   GET    /bans[?all=1]   the bans in force (all=1: remembered offences too)
 *   POST   /bans           {"address": "192.0.2.7" or "192.0.2.0/24",
 *                           "seconds": N (default [limits] ban_time)}
 *   DELETE /bans/ADDRESS   lifts the ban and forgets its offences (404: none)
 * Replies are JSON; errors are {"error": "..."} with 400, 404 or 405. */
int ban_routes_handler(void *arg, const char *method, const char *path, const char *query,
    const char *body, size_t bodylen, struct buf *out, const char **content_type_r);

#endif
