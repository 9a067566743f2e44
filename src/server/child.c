/*
 * child: see child.h.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "net/ipc_sock.h"
#include "server/auth_proc.h"
#include "server/child.h"

extern char **environ;

long long
child_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

int
child_start(struct child *ch, char *err, size_t errlen)
{
	char *argv[] = {"smtpgate", "serve", "-c", (char *)ch->path, "--child", (char *)ch->role,
	    NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none;
	int sv[2], rc;

	if (ipc_sock_pair(sv) == -1) {
		snprintf(err, errlen, "cannot make the %s process's socket: %s", ch->role,
		    strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], CHILD_CTL_FD);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(&ch->pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		ch->pid = 0;
		snprintf(err, errlen, "cannot start the %s process: %s", ch->role, strerror(rc));
		return -1;
	}
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

int
child_main(const char *role, const char *path)
{
	/* nothing of the parent's but the standard streams and the socket */
	if (close_range(CHILD_CTL_FD + 1, ~0U, 0) == -1) {
		fprintf(stderr, "smtpgate: close_range: %s\n", strerror(errno));
		return 2;
	}
	if (strcmp(role, "auth") == 0)
		return auth_proc_main(path, CHILD_CTL_FD);
	fprintf(stderr, "smtpgate: unknown --child %s\n", role);
	return 2;
}
