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
 * Between two round trips (outside the time taken) the client can do what a session does
 * between two AUTHs in bench/auth_rtt.sh, which leaves the core's caches and TLB cold:
 *   IPC_FLOOR_EC=N         N P-256 key generations and ECDSA signatures (a TLS handshake's
 *                          public-key work, both ends, is about 8)
 *   IPC_FLOOR_POLLUTE=KIB  writes KIB of memory, one byte per cache line
 *   IPC_FLOOR_FSYNC=1      writes 4 KiB to a file and fdatasyncs it (a message's commit)
 *   IPC_FLOOR_MODE=NAME    runs that server alone (for a trace of one kind of round trip)
 * The messages are smtpgate's frames, of an AUTH PLAIN request's and answer's sizes, sent
 * and read by smtpgate's own net/ipc_sock.c (sendmsg, recvmsg), so that perf's filter on
 * those two system calls (auth_rtt.sh) traces both alike.
 *
 * Rounds run the servers in a rotated order (a fresh server process each time) so a drift
 * of the machine's speed falls on all of them alike; medians over all rounds. Figures,
 * never pass/fail (RESULTS.md section 8).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "auth/pwscheme.h"
#include "lib/buf.h"
#include "net/ipc_sock.h"

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

/* A frame of len bytes in all (header included), as an AUTH PLAIN request or answer. */
static void
frame(struct ipc_out *o, size_t len)
{
	static const unsigned char fill[REQ_LEN] = {0};

	ipc_out_begin(o, 1, 1);
	ipc_put_bytes(o, fill, len - IPC_FRAME_HDR - 4);
	if (ipc_out_end(o) == -1 || o->len != len)
		die("frame");
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
	static unsigned char buf[IPC_FRAME_MAX];
	static struct ipc_out ans;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 1};
	struct ipc_frame f;
	int ep = -1;

	frame(&ans, ANS_LEN);
	if (m != M_BLOCK) {
		/* as smtpgate-auth's channels */
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1 ||
		    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			die("epoll");
	}
	for (;;) {
		int n;

		if (ep != -1) {
			struct epoll_event got;

			if (epoll_wait(ep, &got, 1, -1) != 1)
				continue;
			n = ipc_sock_recv(fd, buf, &f, NULL);
			(void)epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		} else {
			n = ipc_sock_recv(fd, buf, &f, NULL);
		}
		if (n <= 0)
			_exit(0);
		server_work(m);
		if (ipc_sock_send(fd, &ans, -1) == -1)
			_exit(0);
	}
}

/* the work between two round trips (the top) */
static size_t pollute_len;
static unsigned char *pollute_buf;
static int ec_n;
static EVP_PKEY *ec_key;
static int fsync_fd = -1;
static char fsync_path[] = "/tmp/ipc_floor.fsync.XXXXXX";

static void
between(void)
{
	static const unsigned char digest[32] = {1};
	static char block[4096];

	for (int i = 0; i < ec_n; i++) {
		unsigned char sig[128];
		size_t siglen = sizeof(sig);
		EVP_PKEY *k = EVP_EC_gen("P-256");
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		if (k == NULL || c == NULL ||
		    EVP_DigestSignInit(c, NULL, NULL, NULL, ec_key) != 1 ||
		    EVP_DigestSign(c, sig, &siglen, digest, sizeof(digest)) != 1)
			die("ecdsa");
		EVP_MD_CTX_free(c);
		EVP_PKEY_free(k);
	}
	for (size_t i = 0; i < pollute_len; i += 64)
		pollute_buf[i] = (unsigned char)(pollute_buf[i] + 1);
	if (fsync_fd != -1 &&
	    (pwrite(fsync_fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) ||
	        fdatasync(fsync_fd) == -1))
		die("fdatasync");
}

static void
between_init(void)
{
	const char *v;

	if ((v = getenv("IPC_FLOOR_POLLUTE")) != NULL) {
		pollute_len = (size_t)strtoul(v, NULL, 10) * 1024;
		if ((pollute_buf = calloc(1, pollute_len + 1)) == NULL)
			die("calloc");
	}
	if ((v = getenv("IPC_FLOOR_EC")) != NULL && (ec_n = atoi(v)) > 0 &&
	    (ec_key = EVP_EC_gen("P-256")) == NULL)
		die("EVP_EC_gen");
	if ((v = getenv("IPC_FLOOR_FSYNC")) != NULL && strcmp(v, "1") == 0) {
		if ((fsync_fd = mkstemp(fsync_path)) == -1)
			die("mkstemp");
		unlink(fsync_path);
	}
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
	static unsigned char buf[IPC_FRAME_MAX];
	static struct ipc_out req;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1}, got;
	struct ipc_frame f;
	pid_t pid;

	frame(&req, REQ_LEN);
	if (ipc_sock_pair(sv) == -1)
		die("ipc_sock_pair");
	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		/* told apart from the client in a trace (comm) */
		(void)prctl(PR_SET_NAME, "ipc_floor-srv");
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

		between();
		t0 = now_us();

		if (ipc_sock_send(sv[0], &req, -1) == -1)
			die("send");
		if (m != M_BLOCK) {
			while (epoll_wait(ep, &got, 1, -1) != 1)
				;
		}
		if (ipc_sock_recv(sv[0], buf, &f, NULL) != 1 || IPC_FRAME_HDR + f.len != ANS_LEN)
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
	/* IPC_FLOOR_MODE=NAME: that server alone (a trace of one kind of round trip) */
	const char *only = getenv("IPC_FLOOR_MODE");
	struct buf b;
	int fd;

	if (n <= 0 || rounds <= 0) {
		fprintf(stderr, "usage: ipc_floor [N [ROUNDS]]\n");
		return 2;
	}
	buf_init(&b, 4096);
	between_init();
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

			if (only != NULL && strcmp(only, mode_name[m]) != 0)
				continue;
			run((enum mode)m, n, t[m] + (size_t)r * (size_t)n);
		}
	}
	unlink(stat_path);
	printf("ipc_floor: %d round trips x %d rounds per server, median (p10, p90) in us;\n"
	       "the server's CPU time per round trip (warm-up included); between round trips: "
	       "EC %d, POLLUTE %zu KiB, FSYNC %d\n",
	    n, rounds, ec_n, pollute_len / 1024, fsync_fd != -1);
	for (int m = 0; m < M_N; m++) {
		size_t all = (size_t)n * (size_t)rounds;

		if (only != NULL && strcmp(only, mode_name[m]) != 0)
			continue;
		qsort(t[m], all, sizeof(double), cmp);
		med[m] = t[m][all / 2];
		printf("  %-7s %7.1f  (%.1f, %.1f)  cpu %.1f\n", mode_name[m], med[m],
		    t[m][all / 10], t[m][all * 9 / 10],
		    server_cpu[m] / ((double)(n + WARMUP) * rounds));
	}
	if (only == NULL)
		printf("parts: epoll's own %.1f, stat %.1f, check cold %.1f (warm %.1f)\n",
		    med[M_EPOLL] - med[M_BLOCK], med[M_STAT] - med[M_EPOLL],
		    med[M_CHECK] - med[M_STAT], med[M_CHECK2] - med[M_CHECK]);
	return 0;
}
