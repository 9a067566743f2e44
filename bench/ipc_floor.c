/*
 * bench/ipc_floor.c: what this machine charges for the AUTH round trip's parts, without
 * smtpgate around them. Two processes on a SOCK_SEQPACKET socket pair, as smtpgate-smtp and
 * smtpgate-auth; the client times sendmsg -> recvmsg of the answer (as bench/auth_rtt.sh's
 * "rtt"), for five servers, each step adding what the auth process does to the one before:
 *
 *   block    recvmsg/sendmsg, both sides blocking: the bare hop (two process switches)
 *   epoll    both sides wait in epoll_wait; the server's channel is one-shot and armed again
 *            after each read (EPOLL_CTL_MOD): the system calls of smtpgate's path
 *   stat     + a stat of a file path (the passwd file's change check)
 *   check    + pwscheme_verify of a {SCRAM-SHA-256} entry with 1 iteration (the check
 *            itself, hash all but free: the same as auth_rtt.sh's RTT_ITERS=1)
 *   check2   + the same check twice, the figure being the second's share: the check's
 *            cost warm, so check - stat - (check2 - check) is what the process switch
 *            costs the check (cold caches and TLB)
 *
 *   make -C bench ipc_floor && taskset -c 0 bench/ipc_floor [N [ROUNDS]]
 *
 * Rounds run the servers in a rotated order (a fresh server process each time) so a drift
 * of the machine's speed falls on all of them alike; medians over all rounds. Figures,
 * never pass/fail (RESULTS.md, "The AUTH round trip's floor").
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/pwscheme.h"
#include "lib/buf.h"

enum mode { M_BLOCK, M_EPOLL, M_STAT, M_CHECK, M_CHECK2, M_N };
static const char *const mode_name[M_N] = {"block", "epoll", "stat", "check", "check2"};

#define WARMUP 200
#define REQ_LEN 79 /* an AUTH PLAIN request's frame */
#define ANS_LEN 74 /* its answer's */

static const char password[] = "correct horse battery staple";
static char stat_path[] = "/tmp/ipc_floor.XXXXXX";
static char *entry; /* {SCRAM-SHA-256} data, 1 iteration */

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
server_work(enum mode m)
{
	struct stat st;
	bool match = false;

	if (m >= M_STAT && stat(stat_path, &st) == -1)
		die("stat");
	for (int i = m == M_CHECK2 ? 2 : m == M_CHECK ? 1 : 0; i > 0; i--) {
		if (pwscheme_verify(PWSCHEME_SCRAM_SHA256, entry, password, sizeof(password) - 1,
		        &match) == -1 ||
		    !match) {
			fprintf(stderr, "ipc_floor: the check failed\n");
			exit(1);
		}
	}
}

static void
server(int fd, enum mode m)
{
	unsigned char buf[65536], ans[ANS_LEN];
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 1};
	int ep = -1;

	memset(ans, 'a', sizeof(ans));
	if (m != M_BLOCK) {
		if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			die("epoll");
	}
	for (;;) {
		ssize_t n;

		if (ep != -1) {
			struct epoll_event got;

			if (epoll_wait(ep, &got, 1, -1) != 1)
				continue;
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			(void)epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		} else {
			n = recv(fd, buf, sizeof(buf), 0);
		}
		if (n <= 0)
			_exit(0);
		server_work(m);
		if (send(fd, ans, sizeof(ans), MSG_NOSIGNAL) != (ssize_t)sizeof(ans))
			_exit(0);
	}
}

/* IPC_FLOOR_POLLUTE=KIB: before each round trip the client writes KIB of memory, as the TLS
 * handshake before an AUTH does to the core's caches (0: none) */
static size_t pollute_len;
static unsigned char *pollute_buf;

static void
pollute(void)
{
	for (size_t i = 0; i < pollute_len; i += 64)
		pollute_buf[i] = (unsigned char)(pollute_buf[i] + 1);
}

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* the servers' CPU time (user + system, us), per mode */
static double server_cpu[M_N];

/* n round trips against a fresh server of mode m; the times to out (n of them). */
static void
run(enum mode m, int n, double *out)
{
	struct rusage ru;
	int sv[2], ep;
	unsigned char req[REQ_LEN], buf[65536];
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1}, got;
	pid_t pid;

	memset(req, 'r', sizeof(req));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		die("socketpair");
	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		server(sv[1], m);
		_exit(0);
	}
	close(sv[1]);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == -1)
		die("epoll");
	for (int i = -WARMUP; i < n; i++) {
		double t0;

		pollute();
		t0 = now_us();

		if (send(sv[0], req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req))
			die("send");
		if (m != M_BLOCK) {
			while (epoll_wait(ep, &got, 1, -1) != 1)
				;
		}
		if (recv(sv[0], buf, sizeof(buf), 0) != ANS_LEN)
			die("recv");
		if (i >= 0)
			out[i] = now_us() - t0;
	}
	close(sv[0]);
	close(ep);
	if (wait4(pid, NULL, 0, &ru) == pid)
		server_cpu[m] += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000, rounds = argc > 2 ? atoi(argv[2]) : 8;
	double *t[M_N], med[M_N];
	struct buf b;
	int fd;

	if (n <= 0 || rounds <= 0) {
		fprintf(stderr, "usage: ipc_floor [N [ROUNDS]]\n");
		return 2;
	}
	buf_init(&b, 4096);
	if (getenv("IPC_FLOOR_POLLUTE") != NULL) {
		pollute_len = (size_t)strtoul(getenv("IPC_FLOOR_POLLUTE"), NULL, 10) * 1024;
		pollute_buf = calloc(1, pollute_len + 1);
	}
	if ((fd = mkstemp(stat_path)) == -1)
		die("mkstemp");
	close(fd);
	/* a 1-iteration entry, as bench/smtpgate.sh's BENCH_SCRAM_ITER=1 user */
	{
		static const unsigned char salt[16] = "ipc_floor salt!";
		struct pwscheme_scram k;

		if (pwscheme_scram_derive(PWSCHEME_SCRAM_SHA256, password, sizeof(password) - 1,
		        salt, sizeof(salt), 1, &k, NULL) == -1 ||
		    pwscheme_scram_format(&k, &b) == -1)
			die("derive");
		entry = b.data;
	}
	for (int m = 0; m < M_N; m++)
		t[m] = calloc((size_t)n * (size_t)rounds, sizeof(double));
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < M_N; k++) {
			int m = (k + r) % M_N;

			run((enum mode)m, n, t[m] + (size_t)r * (size_t)n);
		}
	}
	unlink(stat_path);
	printf("ipc_floor: %d round trips x %d rounds per server, median (p10, p90) in us;\n"
	       "the server's CPU time per round trip (warm-up included)\n",
	    n, rounds);
	for (int m = 0; m < M_N; m++) {
		size_t all = (size_t)n * (size_t)rounds;

		qsort(t[m], all, sizeof(double), cmp);
		med[m] = t[m][all / 2];
		printf("  %-7s %7.1f  (%.1f, %.1f)  cpu %.1f\n", mode_name[m], med[m],
		    t[m][all / 10], t[m][all * 9 / 10],
		    server_cpu[m] / ((double)(n + WARMUP) * rounds));
	}
	printf("parts: epoll's own %.1f, stat %.1f, check cold %.1f (warm %.1f)\n",
	    med[M_EPOLL] - med[M_BLOCK], med[M_STAT] - med[M_EPOLL], med[M_CHECK] - med[M_STAT],
	    med[M_CHECK2] - med[M_CHECK]);
	return 0;
}
