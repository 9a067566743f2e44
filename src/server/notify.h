/*
 * notify: tells the service manager (systemd, Type=notify) where the root
 * parent stands: READY=1 once every listener serves, RELOADING=1 then
 * READY=1 around a reload, STOPPING=1 when it begins to stop. Through
 * libsystemd's sd_notify when the build found libsystemd (SG_HAVE_SYSTEMD),
 * to $NOTIFY_SOCKET; without libsystemd, or without $NOTIFY_SOCKET, these
 * do nothing. Only the parent calls them: it is the unit's main process,
 * and systemd takes notifications from it alone (NotifyAccess=main).
 */
#ifndef SG_SERVER_NOTIFY_H
#define SG_SERVER_NOTIFY_H

#include <stdbool.h>

/* true when this build sends notifications (it was linked with libsystemd) */
bool notify_built(void);

/* READY=1, with a STATUS= line saying what serves */
void notify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC, as Type=notify-reload wants) */
void notify_reloading(void);

/* STOPPING=1 */
void notify_stopping(void);

#endif
