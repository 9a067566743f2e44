/*
 * supervise: the serving process's children (DESIGN 2.1): today the auth
 * process, reached by the loops through server/authc.h. Started before the
 * loops take connections, restarted when it ends (child.h), told of SIGHUP,
 * stopped last.
 */
#ifndef SG_SERVER_SUPERVISE_H
#define SG_SERVER_SUPERVISE_H

#include <stddef.h>

struct server;

/* Starts the auth process and its channel. 0, or -1 with err. */
int supervise_start(struct server *srv, const char *path, char *err, size_t errlen);
/* SIGCHLD: reaps what ended; a restart is then due (supervise_next_ms). */
void supervise_reap(struct server *srv);
/* Milliseconds until a restart is due, or -1 when none. */
long long supervise_next_ms(const struct server *srv);
/* Restarts what is due. */
void supervise_tick(struct server *srv);
/* SIGHUP: the auth process re-reads the credentials. */
void supervise_reload(struct server *srv);
/* Pending requests get TEMPFAIL, then the children end. */
void supervise_stop(struct server *srv);

#endif
