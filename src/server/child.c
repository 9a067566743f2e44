/*
 * child: see child.h.
 */
#include <errno.h>
#include <signal.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "net/ipc_sock.h"
#include "server/child.h"

extern char **environ;

/* the exit status of a child that could not become what it was to be */
#define CHILD_EXIT_SETUP 127

long long
child_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
child_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGCHLD);
}

void
child_init(struct child *ch, const char *role, const char *path)
{
	memset(ch, 0, sizeof(*ch));
	ch->role = role;
	ch->path = path;
	ch->ctl = -1;
	ch->backoff_ms = CHILD_BACKOFF_MIN_MS;
}

void
child_set_user(struct child *ch, uid_t uid, gid_t gid)
{
	ch->switch_user = true;
	ch->uid = uid;
	ch->gid = gid;
}

/* In the forked child, before exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) child_exec(const struct child *ch, int ctl)
{
	char *argv[] = {
	    "smtpgate", "serve", "-c", (char *)ch->path, "--child", (char *)ch->role, NULL};
	sigset_t none;
	uid_t r, e, s;
	gid_t gr, ge, gs, groups[2];

	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(ctl, CHILD_CTL_FD) == -1 || close_range(CHILD_CTL_FD + 1, ~0U, 0) == -1)
		_exit(CHILD_EXIT_SETUP);
	/* the same user (root with [server] user = root): nothing to change,
	 * and setgroups may be refused (a user namespace) */
	if (ch->switch_user && (ch->uid != geteuid() || ch->gid != getegid())) {
		if (setgroups(1, &ch->gid) == -1 || setresgid(ch->gid, ch->gid, ch->gid) == -1 ||
		    setresuid(ch->uid, ch->uid, ch->uid) == -1)
			_exit(CHILD_EXIT_SETUP);
		/* read back: a partial switch must never run */
		if (getresuid(&r, &e, &s) == -1 || r != ch->uid || e != ch->uid || s != ch->uid ||
		    getresgid(&gr, &ge, &gs) == -1 || gr != ch->gid || ge != ch->gid ||
		    gs != ch->gid || getgroups(2, groups) != 1 || groups[0] != ch->gid)
			_exit(CHILD_EXIT_SETUP);
		if (ch->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
			_exit(CHILD_EXIT_SETUP);
	}
	execve("/proc/self/exe", argv, environ);
	_exit(CHILD_EXIT_SETUP);
}

int
child_start(struct child *ch, char *err, size_t errlen)
{
	int sv[2];
	pid_t pid;

	if (ipc_sock_pair(sv) == -1) {
		snprintf(err, errlen, "cannot make the %s process's socket: %s", ch->role,
		    strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0)
		child_exec(ch, sv[1]);
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		ch->pid = 0;
		snprintf(err, errlen, "cannot start the %s process: %s", ch->role, strerror(errno));
		return -1;
	}
	ch->pid = pid;
	ch->ctl = sv[0];
	ch->started_ms = child_now_ms();
	ch->restart_at_ms = 0;
	return 0;
}

bool
child_reaped(struct child *ch, pid_t pid, int status)
{
	long long now = child_now_ms();

	if (ch->pid == 0 || pid != ch->pid)
		return false;
	if (WIFSIGNALED(status))
		log_event(LOG_ERR, "child_exit", 0, "{s:s, s:i, s:s, s:i}", "process", ch->role,
		    "pid", (int)pid, "signal", strsignal(WTERMSIG(status)), "restart_ms",
		    (int)ch->backoff_ms);
	else
		log_event(LOG_ERR, "child_exit", 0, "{s:s, s:i, s:i, s:i}", "process", ch->role,
		    "pid", (int)pid, "status", WEXITSTATUS(status), "restart_ms",
		    (int)ch->backoff_ms);
	ch->pid = 0;
	if (ch->ctl != -1)
		close(ch->ctl);
	ch->ctl = -1;
	/* a child that lived long gets the short delay again */
	if (now - ch->started_ms >= CHILD_YOUNG_MS)
		ch->backoff_ms = CHILD_BACKOFF_MIN_MS;
	ch->restart_at_ms = now + ch->backoff_ms;
	if (now - ch->started_ms < CHILD_YOUNG_MS) {
		ch->backoff_ms *= 2;
		if (ch->backoff_ms > CHILD_BACKOFF_MAX_MS)
			ch->backoff_ms = CHILD_BACKOFF_MAX_MS;
	}
	return true;
}

long long
child_restart_in(const struct child *ch)
{
	long long d;

	if (ch->pid != 0 || ch->restart_at_ms == 0)
		return -1;
	d = ch->restart_at_ms - child_now_ms();
	return d < 0 ? 0 : d;
}

void
child_stop(struct child *ch, long grace_ms)
{
	long long until = child_now_ms() + grace_ms;
	int status;

	if (ch->pid == 0)
		return;
	(void)kill(ch->pid, SIGTERM);
	while (waitpid(ch->pid, &status, WNOHANG) == 0) {
		if (child_now_ms() >= until) {
			(void)kill(ch->pid, SIGKILL);
			(void)waitpid(ch->pid, &status, 0);
			break;
		}
		usleep(10 * 1000);
	}
	ch->pid = 0;
	if (ch->ctl != -1)
		close(ch->ctl);
	ch->ctl = -1;
	ch->restart_at_ms = 0;
}
