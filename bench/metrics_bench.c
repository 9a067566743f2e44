/*
 * metrics_bench: what a counter update costs when several loop threads
 * count at once (no lock contention between loop threads).
 * Figures, never pass/fail. Compares, per thread count:
 *   sharded  lib/metrics.h metrics_inc (per-thread shard, relaxed atomic add)
 *   shared   one relaxed atomic counter for all threads (one cache line)
 *   mutex    one counter behind a pthread mutex
 *
 *   cc -std=c17 -O2 -D_GNU_SOURCE -pthread -Isrc -o /tmp/metrics_bench \
 *       bench/metrics_bench.c src/lib/metrics.c src/lib/buf.c src/lib/xalloc.c
 *   /tmp/metrics_bench [ops-per-thread]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/metrics.h"

enum mode { SHARDED, SHARED, MUTEX };

static struct metrics *bench_m;
static int bench_series;
static uint64_t bench_shared;
static pthread_mutex_t bench_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t bench_locked;
static long bench_ops;
static enum mode bench_mode;

static void *
bench_thread(void *arg)
{
	(void)arg;
	for (long i = 0; i < bench_ops; i++) {
		switch (bench_mode) {
		case SHARDED:
			metrics_inc(bench_m, bench_series);
			break;
		case SHARED:
			__atomic_fetch_add(&bench_shared, 1, __ATOMIC_RELAXED);
			break;
		case MUTEX:
			pthread_mutex_lock(&bench_lock);
			bench_locked++;
			pthread_mutex_unlock(&bench_lock);
			break;
		}
	}
	return NULL;
}

static double
bench_run(enum mode mode, int nthreads)
{
	pthread_t th[64];
	struct timespec a, b;

	bench_mode = mode;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, bench_thread, NULL);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* wall ns per update, all threads together */
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) /
	    ((double)bench_ops * nthreads);
}

int
main(int argc, char **argv)
{
	static const char *const names[] = {"sharded", "shared", "mutex"};
	static const int threads[] = {1, 2, 4, 8};

	bench_ops = argc > 1 ? atol(argv[1]) : 20000000;
	bench_m = metrics_new();
	bench_series = metrics_series0(
	    bench_m, metrics_family(bench_m, "b_total", "B.", METRICS_COUNTER, NULL, NULL, 0));
	printf(
	    "ns per counter update (wall time / all updates), %ld updates per thread\n", bench_ops);
	printf("%-8s", "threads");
	for (size_t m = 0; m < 3; m++)
		printf(" %10s", names[m]);
	printf("\n");
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		printf("%-8d", threads[t]);
		for (size_t m = 0; m < 3; m++)
			printf(" %10.2f", bench_run((enum mode)m, threads[t]));
		printf("\n");
	}
	metrics_free(bench_m);
	return 0;
}
