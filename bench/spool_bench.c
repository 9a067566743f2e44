/*
 * spool_bench: durable commits per second through the queue API (group
 * commit), with T threads each committing S-byte messages back to back, one
 * at a time (as sessions do: the next message only after the 250). Answers
 * come back on one real loop thread with no listeners (a dummy loop).
 *
 * Also measures the alternative without group commit: each thread writes its
 * file, fdatasync()s it, renames it and fsync()s the folder (-m fsync).
 *
 * Not built by CMake; from the repository root:
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Isrc -o spool_bench bench/spool_bench.c \
 *     src/queue/[a-z]*.c src/lib/[a-z]*.c src/net/loop.c src/conf/conf.c \
 *     $(pkg-config --libs jansson openssl libevent libevent_pthreads) -lpthread
 *   ./spool_bench [-t THREADS] [-s SIZE] [-d SECONDS] [-m queue|fsync] [-p DIR]
 * DIR (default /var/tmp) must be on the file system to measure; the spool
 * made under it is removed at the end. Figures only, never pass/fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/log.h"
#include "net/loop.h"
#include "queue/queue.h"

#define BENCH_THREADS_MAX 256

static int bench_threads = 16;
static size_t bench_size = 4096;
static double bench_seconds = 5;
static const char *bench_mode = "queue";
static char bench_spool[256];

static struct queue *bench_q;
static struct loop *bench_loop;
static atomic_bool bench_stop;
static atomic_uint_fast64_t bench_done, bench_failed;
static double bench_lat_sum[BENCH_THREADS_MAX], bench_lat_max[BENCH_THREADS_MAX];

struct bench_worker {
	int n;
	sem_t answered;
	int result;
};

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_commit_cb(void *ctx, uint64_t session_id, const char *queue_id, int result)
{
	struct bench_worker *w = ctx;

	w->result = result;
	sem_post(&w->answered);
}

static void
bench_fill(char *body, size_t n)
{
	size_t hdr = (size_t)snprintf(body, n, "Subject: bench\r\nFrom: a@b.test\r\n\r\n");

	for (size_t i = hdr; i < n; i++)
		body[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
}

static void *
bench_queue_main(void *arg)
{
	struct bench_worker *w = arg;
	static const char *const rcpts[] = {"rcpt@example.test"};
	struct queue_envelope env = {
	    .sender = "sender@example.test",
	    .rcpts = rcpts,
	    .nrcpts = 1,
	    .auth_user = "user",
	    .client_addr = "127.0.0.1",
	    .helo = "bench.test",
	};
	char *body = malloc(bench_size), id[QUEUE_ID_MAX];

	bench_fill(body, bench_size);
	sem_init(&w->answered, 0, 0);
	while (!atomic_load(&bench_stop)) {
		double t0 = bench_now(), dt;
		struct queue_msg *m = queue_msg_new(bench_q, id);

		if (m == NULL || queue_msg_write(m, body, bench_size) == -1) {
			perror("spool_bench: queue_msg");
			exit(1);
		}
		env.arrival = time(NULL);
		queue_msg_commit(
		    m, &env, loop_mailbox(bench_loop), (uint64_t)w->n + 1, bench_commit_cb, w);
		sem_wait(&w->answered);
		dt = bench_now() - t0;
		bench_lat_sum[w->n] += dt;
		if (dt > bench_lat_max[w->n])
			bench_lat_max[w->n] = dt;
		atomic_fetch_add(w->result == 0 ? &bench_done : &bench_failed, 1);
	}
	free(body);
	return NULL;
}

/* The alternative without batching: everything per message, per thread. */
static void *
bench_fsync_main(void *arg)
{
	struct bench_worker *w = arg;
	char *body = malloc(bench_size), tmp[512], dst[512], dir[300];
	unsigned long k = 0;
	int dfd;

	bench_fill(body, bench_size);
	snprintf(dir, sizeof(dir), "%s/queue", bench_spool);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	while (!atomic_load(&bench_stop)) {
		double t0 = bench_now(), dt;
		int fd;

		snprintf(tmp, sizeof(tmp), "%s/incoming/%d.%lu", bench_spool, w->n, k);
		snprintf(dst, sizeof(dst), "%s/queue/%d.%lu", bench_spool, w->n, k++);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd == -1 || write(fd, body, bench_size) != (ssize_t)bench_size ||
		    fdatasync(fd) == -1 || close(fd) == -1 || rename(tmp, dst) == -1 ||
		    fsync(dfd) == -1) {
			perror("spool_bench: fsync mode");
			exit(1);
		}
		dt = bench_now() - t0;
		bench_lat_sum[w->n] += dt;
		if (dt > bench_lat_max[w->n])
			bench_lat_max[w->n] = dt;
		atomic_fetch_add(&bench_done, 1);
	}
	close(dfd);
	free(body);
	return NULL;
}

static void *
bench_loop_main(void *arg)
{
	loop_run(arg);
	return NULL;
}

static void
bench_stop_fn(void *arg)
{
	loop_stop(arg);
}

static int
bench_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
main(int argc, char **argv)
{
	const char *parent = "/var/tmp";
	struct bench_worker w[BENCH_THREADS_MAX];
	pthread_t th[BENCH_THREADS_MAX], lt;
	struct queue_stats st0 = {0}, st = {0};
	char text[512], err[256];
	struct conf *c = NULL;
	double t0, t1, lat = 0, latmax = 0;
	int opt;
	bool queue_mode;

	while ((opt = getopt(argc, argv, "t:s:d:m:p:")) != -1) {
		switch (opt) {
		case 't':
			bench_threads = atoi(optarg);
			break;
		case 's':
			bench_size = (size_t)atol(optarg);
			break;
		case 'd':
			bench_seconds = atof(optarg);
			break;
		case 'm':
			bench_mode = optarg;
			break;
		case 'p':
			parent = optarg;
			break;
		default:
			fprintf(stderr,
			    "usage: spool_bench [-t THREADS] [-s SIZE] [-d SECONDS] "
			    "[-m queue|fsync] [-p DIR]\n");
			return 2;
		}
	}
	if (bench_threads < 1 || bench_threads > BENCH_THREADS_MAX || bench_size < 64) {
		fprintf(stderr, "spool_bench: bad -t or -s\n");
		return 2;
	}
	queue_mode = strcmp(bench_mode, "queue") == 0;
	snprintf(bench_spool, sizeof(bench_spool), "%s/spool-bench-XXXXXX", parent);
	if (mkdtemp(bench_spool) == NULL) {
		perror("spool_bench: mkdtemp");
		return 1;
	}
	log_set_level(LOG_WARNING);
	if (queue_mode) {
		snprintf(text, sizeof(text),
		    "[server]\nhostname = bench.test\nspool = %s\n[listen a]\n"
		    "address = 127.0.0.1:2525\ntls = none\nauth = off\nrelay = local\n",
		    bench_spool);
		c = conf_parse_text("/bench.conf", text, err, sizeof(err));
		if (c == NULL) {
			fprintf(stderr, "spool_bench: %s\n", err);
			return 1;
		}
		loop_global_init();
		bench_loop = loop_new();
		pthread_create(&lt, NULL, bench_loop_main, bench_loop);
		bench_q = queue_open(c, err, sizeof(err));
		if (bench_q == NULL) {
			fprintf(stderr, "spool_bench: %s\n", err);
			return 1;
		}
		queue_get_stats(bench_q, &st0);
	} else {
		snprintf(text, sizeof(text), "%s/incoming", bench_spool);
		mkdir(text, 0700);
		snprintf(text, sizeof(text), "%s/queue", bench_spool);
		mkdir(text, 0700);
	}
	t0 = bench_now();
	for (int i = 0; i < bench_threads; i++) {
		w[i].n = i;
		pthread_create(
		    &th[i], NULL, queue_mode ? bench_queue_main : bench_fsync_main, &w[i]);
	}
	usleep((useconds_t)(bench_seconds * 1e6));
	atomic_store(&bench_stop, true);
	for (int i = 0; i < bench_threads; i++) {
		pthread_join(th[i], NULL);
		lat += bench_lat_sum[i];
		if (bench_lat_max[i] > latmax)
			latmax = bench_lat_max[i];
	}
	t1 = bench_now();
	if (queue_mode) {
		queue_get_stats(bench_q, &st);
		queue_free(bench_q);
		loop_post(bench_loop, bench_stop_fn, bench_loop);
		pthread_join(lt, NULL);
		loop_free(bench_loop);
		conf_free(c);
	}
	{
		double n = (double)atomic_load(&bench_done), secs = t1 - t0;
		double syncs = queue_mode ? (double)(st.syncs - st0.syncs) : n;

		printf("mode=%s threads=%d size=%zu seconds=%.2f commits=%.0f failed=%lu\n",
		    bench_mode, bench_threads, bench_size, secs, n,
		    (unsigned long)atomic_load(&bench_failed));
		printf("commits/s=%.0f syncs/s=%.0f commits/sync=%.2f batch_max=%lu "
		       "latency_avg_ms=%.2f latency_max_ms=%.2f\n",
		    n / secs, syncs / secs, syncs > 0 ? n / syncs : 0, (unsigned long)st.batch_max,
		    n > 0 ? lat / n * 1e3 : 0, latmax * 1e3);
	}
	nftw(bench_spool, bench_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
