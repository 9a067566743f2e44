/*
 * relay_proc: see relay_proc.h.
 */
#include "server/relay_proc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/log.h"
#include "lib/vault.h"
#include "lib/xalloc.h"
#include "net/ipc_sock.h"
#include "queue/queue_id.h"
#include "relay/scheduler.h"
#include "server/child.h"
#include "server/sandbox.h"
#include "server/tokenc.h"

struct relay_proc {
	const char *path;
	int ctl, chan, sig; /* chan: from the smtp process, -1 when none */
	int log_next; /* a log file from the parent, not yet in use */
	struct vault *vault; /* the parent's copies, during the set-up */
	struct conf *conf;
	struct scheduler *sched;
	unsigned char buf[IPC_FRAME_MAX];
};

static void
relay_proc_chan_close(struct relay_proc *p, const char *why)
{
	if (why != NULL)
		log_event(
		    LOG_ERR, "relay_channel", 0, "{s:s, s:s}", "process", "relay", "error", why);
	if (p->chan != -1)
		close(p->chan);
	p->chan = -1;
}

/* One frame from the parent, with the descriptor that came with it (taken). */
static void
relay_proc_ctl_frame(struct relay_proc *p, const struct ipc_frame *f, int fd)
{
	struct ipc_reader rd;
	char path[4096];

	ipc_reader_init(&rd, f);
	switch (f->type) {
	case CHILD_MSG_LOG:
		if (p->log_next != -1)
			close(p->log_next);
		p->log_next = fd;
		return;
	case CHILD_MSG_FILE:
		/* at a reload: [dkim] keys need a restart, nothing to re-read */
		if (p->vault != NULL && fd != -1 && ipc_get_str(&rd, path, sizeof(path) - 1) == 0) {
			if (vault_add(p->vault, path, fd) == -1)
				log_event(LOG_ERR, "child_start", 0, "{s:s, s:s}", "process",
				    "relay", "error", "too many files from the parent");
			return;
		}
		break;
	case CHILD_MSG_RELAY:
		relay_proc_chan_close(p, NULL);
		p->chan = fd;
		return;
	case CHILD_MSG_RELOAD:
		if (p->log_next != -1)
			log_use_fd(p->log_next);
		p->log_next = -1;
		break;
	case CHILD_MSG_TOKEN_ANSWER:
		tokenc_answer(f);
		break;
	default:
		break;
	}
	if (fd != -1)
		close(fd);
}

/* The parent's set-up frames, up to START, then the configuration from its
 * copies, which are let go at once. 0, or -1 with err. */
static int
relay_proc_setup(struct relay_proc *p, char *err, size_t errlen)
{
	p->vault = vault_new();
	for (;;) {
		struct ipc_frame f;
		int fd = -1;

		if (ipc_sock_recv(p->ctl, p->buf, &f, &fd) != 1) {
			snprintf(err, errlen, "the parent's set-up ended early");
			return -1;
		}
		if (f.type == CHILD_MSG_START)
			break;
		relay_proc_ctl_frame(p, &f, fd);
	}
	vault_free(vault_install(p->vault));
	p->vault = NULL;
	if (p->log_next != -1)
		log_use_fd(p->log_next);
	p->log_next = -1;
	/* the admin token is the smtp process's: this one serves no API */
	p->conf = conf_load_without(p->path, CONF_WITHOUT_ADMIN_TOKEN, err, errlen);
	/* the keys are in memory now: no copy of their files stays */
	vault_free(vault_install(NULL));
	if (p->conf == NULL)
		return -1;
	if (!scheduler_is_configured(p->conf)) {
		snprintf(
		    err, errlen, "%s: no [relay] or [route] section: nothing to deliver", p->path);
		return -1;
	}
	p->sched = scheduler_new(p->conf, err, errlen);
	return p->sched != NULL ? 0 : -1;
}

/* A frame from the smtp process: one queue id, or the channel is closed. */
static void
relay_proc_chan_read(struct relay_proc *p)
{
	struct ipc_frame f;
	struct ipc_reader rd;
	char id[QUEUE_ID_MAX];
	int r = ipc_sock_recv(p->chan, p->buf, &f, NULL);

	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r == 0) {
		relay_proc_chan_close(p, NULL); /* the smtp process ended */
		return;
	}
	if (r == -1) {
		relay_proc_chan_close(p, "a malformed frame from the smtp process");
		return;
	}
	ipc_reader_init(&rd, &f);
	if (f.type != CHILD_MSG_QUEUED || ipc_get_str(&rd, id, sizeof(id) - 1) == -1 ||
	    !ipc_reader_done(&rd) || !queue_id_is_valid(id)) {
		relay_proc_chan_close(p, "a frame from the smtp process that is not a queue id");
		return;
	}
	scheduler_notify(p->sched, id);
}

/* The signals; false once the process is to stop. */
static bool
relay_proc_signals(struct relay_proc *p)
{
	struct signalfd_siginfo si;

	while (read(p->sig, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			scheduler_flush(p->sched);
		else if (si.ssi_signo == SIGUSR2)
			scheduler_rescan(p->sched);
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			return false;
		/* SIGHUP: the parent's, which hands the reload over (pkill -HUP
		 * smtpgate reaches this process too) */
	}
	return true;
}

static void
relay_proc_run(struct relay_proc *p)
{
	for (;;) {
		struct pollfd pfd[3] = {{.fd = p->sig, .events = POLLIN},
		    {.fd = p->ctl, .events = POLLIN}, {.fd = p->chan, .events = POLLIN}};

		if (poll(pfd, 3, -1) == -1 && errno != EINTR)
			return;
		if ((pfd[0].revents & POLLIN) != 0 && !relay_proc_signals(p))
			return;
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			struct ipc_frame f;
			int fd = -1, r = ipc_sock_recv(p->ctl, p->buf, &f, &fd);

			if (r == 1)
				relay_proc_ctl_frame(p, &f, fd);
			else if (!(r == -1 && (errno == EAGAIN || errno == EINTR)))
				return; /* the parent is gone: end as on SIGTERM */
		}
		if (p->chan != -1 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
			relay_proc_chan_read(p);
	}
}

static int
relay_proc_send_ready(struct relay_proc *p)
{
	static struct ipc_out o;

	ipc_out_begin(&o, CHILD_MSG_READY, 0);
	return ipc_out_end(&o) == -1 ? -1 : ipc_sock_send(p->ctl, &o, -1);
}

int
relay_proc_main(const char *path, int ctl)
{
	struct relay_proc *p = xcalloc(1, sizeof(*p));
	char err[1024] = "";
	sigset_t set;
	int rc = 2;

	(void)prctl(PR_SET_NAME, "smtpgate-relay");
	/* without its parent nobody restarts it or answers its token requests */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1) {
		free(p);
		return 2;
	}
	/* no exec can gain privileges, no core dump or ptrace by its user */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 || prctl(PR_SET_DUMPABLE, 0) == -1) {
		fprintf(stderr, "smtpgate-relay: prctl: %s\n", strerror(errno));
		free(p);
		return 2;
	}
	child_signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	p->path = path;
	p->ctl = ctl;
	p->chan = -1;
	p->log_next = -1;
	p->sig = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	tokenc_start(ctl);
	if (p->sig == -1)
		snprintf(err, sizeof(err), "signalfd: %s", strerror(errno));
	else if (relay_proc_setup(p, err, sizeof(err)) == 0 &&
	    sandbox_enter_files(SANDBOX_RELAY, p->conf, err, sizeof(err)) == 0 &&
	    sandbox_enter(SANDBOX_RELAY, err, sizeof(err)) == 0) {
		if (relay_proc_send_ready(p) == -1)
			snprintf(err, sizeof(err), "cannot reach the parent: %s", strerror(errno));
		else if (scheduler_start(p->sched, err, sizeof(err)) == 0)
			rc = 0;
	}
	if (rc == 0)
		relay_proc_run(p);
	else
		fprintf(stderr, "smtpgate-relay: %s\n", err);
	/* deliveries waiting for a token give up; the others get the grace */
	tokenc_stop();
	scheduler_free(p->sched, rc == 0 ? p->conf->shutdown_grace : 0);
	conf_free(p->conf);
	relay_proc_chan_close(p, NULL);
	if (p->log_next != -1)
		close(p->log_next);
	vault_free(p->vault);
	if (p->sig != -1)
		close(p->sig);
	free(p);
	return rc;
}
