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

#include <stdbool.h>
#include <sys/types.h>

#define CHILD_CTL_FD 3
#define CHILD_BACKOFF_MIN_MS 500
#define CHILD_BACKOFF_MAX_MS 30000
#define CHILD_YOUNG_MS 10000 /* a child that lived less died young */

struct child {
	const char *role; /* "auth" */
	const char *path; /* the configuration */
	pid_t pid; /* 0: not running */
	int ctl; /* the parent's end of the control socket; -1 when not running */
	long long started_ms, restart_at_ms; /* monotonic; restart_at_ms 0: none due */
	unsigned backoff_ms;
};

void child_init(struct child *ch, const char *role, const char *path);
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
/* The monotonic clock in milliseconds. */
long long child_now_ms(void);

/* In the child: the role named by --child and its control socket. */
int child_main(const char *role, const char *path);

#endif
