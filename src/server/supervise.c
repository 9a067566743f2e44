/*
 * supervise: see supervise.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "net/ipc_sock.h"
#include "server/auth_msg.h"
#include "server/authc.h"
#include "server/obs.h"
#include "server/server.h"
#include "server/supervise.h"

/* A new channel: one end to the auth process over its control socket, the
 * other to authc. */
static int
supervise_auth_channel(struct server *srv, char *err, size_t errlen)
{
	struct ipc_out *o = calloc(1, sizeof(*o));
	int sv[2];

	if (o == NULL || ipc_sock_pair(sv) == -1) {
		free(o);
		snprintf(err, errlen, "cannot make the auth channel: %s", strerror(errno));
		return -1;
	}
	ipc_out_begin(o, AUTH_MSG_CHANNEL, 0);
	if (ipc_out_end(o) == -1 || ipc_sock_send(srv->auth_child.ctl, o, sv[1]) == -1) {
		snprintf(err, errlen, "cannot hand the auth process its channel: %s",
		    strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(o);
		return -1;
	}
	close(sv[1]);
	free(o);
	authc_set_channel(srv->authc, sv[0]);
	return 0;
}

int
supervise_start(struct server *srv, const char *path, char *err, size_t errlen)
{
	child_init(&srv->auth_child, "auth", path);
	srv->authc = authc_new();
	if (srv->authc == NULL) {
		snprintf(err, errlen, "cannot start the auth client: %s", strerror(errno));
		return -1;
	}
	if (child_start(&srv->auth_child, err, errlen) == -1)
		return -1;
	return supervise_auth_channel(srv, err, errlen);
}

void
supervise_reap(struct server *srv)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (child_reaped(&srv->auth_child, pid, status)) {
			/* AUTH answers 454 until the new one is up */
			authc_set_channel(srv->authc, -1);
			obs_child_exit(srv->obs, "auth");
		}
	}
}

long long
supervise_next_ms(const struct server *srv)
{
	return child_restart_in(&srv->auth_child);
}

void
supervise_tick(struct server *srv)
{
	char err[512];

	if (child_restart_in(&srv->auth_child) != 0)
		return;
	if (child_start(&srv->auth_child, err, sizeof(err)) == -1 ||
	    supervise_auth_channel(srv, err, sizeof(err)) == -1) {
		log_event(LOG_ERR, "child_start", 0, "{s:s, s:s}", "process", "auth", "error", err);
		if (srv->auth_child.pid != 0)
			(void)kill(srv->auth_child.pid, SIGKILL); /* reaped, then retried */
		else
			srv->auth_child.restart_at_ms = child_now_ms() + srv->auth_child.backoff_ms;
		return;
	}
	log_event(LOG_NOTICE, "child_start", 0, "{s:s, s:i}", "process", "auth", "pid",
	    (int)srv->auth_child.pid);
}

void
supervise_reload(struct server *srv)
{
	if (srv->auth_child.pid != 0)
		(void)kill(srv->auth_child.pid, SIGHUP);
}

void
supervise_stop(struct server *srv)
{
	authc_free(srv->authc);
	srv->authc = NULL;
	child_stop(&srv->auth_child, 5000);
}
