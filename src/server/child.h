/*
 * child: starting and restarting smtpgate's child processes (DESIGN 2.1).
 * A child is this very binary executed anew (/proc/self/exe, so an upgrade
 * on disk does not mix versions), as `smtpgate serve -c PATH --child ROLE`,
 * with its control socket as descriptor 3 and no other descriptor of the
 * parent's; a fresh exec also gives each child its own address-space
 * layout. The parent restarts a child that ends, after a back-off that
 * doubles (CHILD_BACKOFF_MIN_MS .. CHILD_BACKOFF_MAX_MS) while it keeps
 * dying young, and logs each end as a `child_exit` event.
 */
#ifndef SG_SERVER_CHILD_H
#define SG_SERVER_CHILD_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#define CHILD_CTL_FD 3
#define CHILD_BACKOFF_MIN_MS 500
#define CHILD_BACKOFF_MAX_MS 30000
#define CHILD_YOUNG_MS 10000 /* a child that lived less died young */

/* Frames on the control sockets of the smtp and relay processes (after the
 * parent's AUTH_MSG_CHANNEL of server/auth_msg.h, which the auth process
 * reads), and CHILD_MSG_QUEUED, the one frame on the channel from the smtp
 * process to the relay process. */
enum child_msg {
	CHILD_MSG_LISTENER = 16, /* parent -> smtp: u32 listener index, u32 thread; fd */
	CHILD_MSG_ADMIN, /* fd: the [admin] listening socket */
	CHILD_MSG_LOG, /* fd: the log file; none: stderr */
	CHILD_MSG_FILE, /* str path; fd: a file of the vault (lib/vault.h) */
	/* parent -> smtp: u32 loop thread, u32 n (its n-th since the smtp process
	 * started); fd: a new channel to the auth process for that loop.
	 * smtp -> parent: u32 loop, u32 n: that channel was lost (the auth
	 * process closed it), a new one is wanted */
	CHILD_MSG_AUTH,
	CHILD_MSG_EXIT, /* str process: a child ended (the metric) */
	CHILD_MSG_START, /* the end of the set-up: serve */
	CHILD_MSG_RELOAD, /* the end of a new LOG and FILE set: reload */
	CHILD_MSG_READY, /* smtp -> parent: every listener serves; relay: it delivers */
	CHILD_MSG_TOKEN, /* relay -> parent: u32 is_relay, str domain: run that route's token
	                    command (relay/creds.h); the frame id is the request's */
	CHILD_MSG_TOKEN_ANSWER, /* parent -> relay: u32 ok, bytes token (ok) or reason */
	/* parent -> smtp and relay: u32 0, u32 n (the n-th to the smtp process
	 * since it started); fd: a new channel between the two. smtp -> parent:
	 * u32 0, u32 n: that one failed, a new one is wanted */
	CHILD_MSG_RELAY,
	CHILD_MSG_QUEUED, /* smtp -> relay: str queue id, a message just made durable */
	CHILD_MSG_CERTS, /* the end of a FILE set with renewed certificates
	                    (server/certwatch.h): the TLS contexts built again */
};

struct child {
	const char *role; /* "auth", "smtp", "relay" */
	const char *path; /* the configuration */
	pid_t pid; /* 0: not running */
	int ctl; /* the parent's end of the control socket; -1 when not running */
	long long started_ms, restart_at_ms; /* monotonic; restart_at_ms 0: none due */
	unsigned backoff_ms;
	bool switch_user; /* start it as uid/gid (the parent is root) */
	uid_t uid;
	gid_t gid;
};

void child_init(struct child *ch, const char *role, const char *path);
/* The child runs as uid with gid as its only group (setgroups, setgid,
 * setuid before exec, each read back). */
void child_set_user(struct child *ch, uid_t uid, gid_t gid);
/* Starts the child. 0, or -1 with err. */
int child_start(struct child *ch, char *err, size_t errlen);
/* After waitpid reported pid with status: logs the end, closes the
 * control socket and schedules the restart. True when pid was this child. */
bool child_reaped(struct child *ch, pid_t pid, int status);
/* Milliseconds until the restart is due (0: now), or -1 when none is. */
long long child_restart_in(const struct child *ch);
/* Asks the child to end (SIGTERM) and waits for it at most grace_ms, then
 * kills it. */
void child_stop(struct child *ch, long grace_ms);
/* The signals the parent, the smtp and the relay process take on their main thread
 * (through a signalfd), blocked in every other thread. */
void child_signal_set(sigset_t *set);
/* The monotonic clock in milliseconds. */
long long child_now_ms(void);

#endif
