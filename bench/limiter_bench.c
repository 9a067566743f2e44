/*
 * limiter_bench: what the shared limiter (src/policy/limiter.h) costs a loop
 * thread, and whether threads contend on it. N threads each run the checks
 * a session makes: limiter_connect + limiter_disconnect (ban lookup, server
 * count, per-IP slot), limiter_auth_throttled and limiter_auth_failed.
 *
 *   limiter_bench [ITERATIONS]     prints ns per check for 1 and 2 threads,
 *                                  with distinct client IPs (the normal case:
 *                                  the keys spread over the 64 shards) and
 *                                  with every thread on ONE IP (one shard:
 *                                  what a single global lock would cost)
 *
 * Built by bench/Makefile (`make -C bench limiter_bench`) against the static
 * layers of an optimised build (BUILD=../build). Figures, never pass/fail.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "policy/limiter.h"

#define BENCH_NAMES 1024

/* account names, made before the clock starts */
static char names[BENCH_NAMES][32];
static size_t namelen[BENCH_NAMES];

struct bench_arg {
	struct limiter *l;
	const struct conf *c;
	long iters;
	unsigned seed;
	int same_ip;
	pthread_barrier_t *start;
	double ns;
};

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *
bench_thread(void *p)
{
	struct bench_arg *a = p;
	struct limiter_addr ip;
	struct limiter_fail f;
	int64_t now = limiter_now_ms();
	double t0;
	unsigned x = a->seed;

	memset(&ip, 0, sizeof(ip));
	ip.a[10] = ip.a[11] = 0xff;
	ip.a[12] = 10;
	pthread_barrier_wait(a->start);
	t0 = bench_now();
	for (long i = 0; i < a->iters; i++) {
		int n;

		x = x * 1103515245u + 12345u;
		if (!a->same_ip) {
			ip.a[13] = (unsigned char)(x >> 8);
			ip.a[14] = (unsigned char)(x >> 16);
			ip.a[15] = (unsigned char)(x >> 24);
		}
		if (limiter_connect(a->l, a->c, &ip, now) == LIMITER_OK)
			limiter_disconnect(a->l, &ip);
		n = (int)((x >> 20) & (BENCH_NAMES - 1));
		(void)limiter_auth_throttled(a->l, a->c, names[n], namelen[n], &ip, now);
		if ((i & 15) == 0)
			limiter_auth_failed(a->l, a->c, names[n], namelen[n], &ip, now, &f);
	}
	/* 3 checks per round (connect, disconnect, throttle) + 1/16 failure */
	a->ns = (bench_now() - t0) / ((double)a->iters * (3.0 + 1.0 / 16));
	return NULL;
}

static double
bench_run(const struct conf *c, int threads, long iters, int same_ip)
{
	struct limiter *l = limiter_new(NULL);
	pthread_t th[8];
	struct bench_arg args[8];
	pthread_barrier_t start;
	double sum = 0;

	pthread_barrier_init(&start, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		args[i] = (struct bench_arg){
		    l, c, iters, 0x9e3779b9u * (unsigned)(i + 1), same_ip, &start, 0};
		pthread_create(&th[i], NULL, bench_thread, &args[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		sum += args[i].ns;
	}
	pthread_barrier_destroy(&start);
	limiter_free(l);
	return sum / threads;
}

int
main(int argc, char **argv)
{
	char text[] = "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\n"
	              "relay = local\n[limits]\nallow =\nconnections = 1000000\n"
	              "connections_per_ip = 1000000\nconnection_rate_per_ip = 1000000\n"
	              "auth_failures_per_ip = 1000000\nauth_failures_per_net = 1000000\n"
	              "auth_failures_per_account = 1000000\n";
	char err[256];
	struct conf *c = conf_parse_text("bench.conf", text, err, sizeof(err));
	long iters = argc > 1 ? atol(argv[1]) : 2000000;

	if (c == NULL) {
		fprintf(stderr, "limiter_bench: %s\n", err);
		return 2;
	}
	for (int i = 0; i < BENCH_NAMES; i++)
		namelen[i] = (size_t)snprintf(names[i], sizeof(names[i]), "user%d@example.test", i);
	printf("limiter_bench: %ld rounds per thread, ns per check (mean over threads)\n", iters);
	printf("%-28s %10s %10s\n", "", "1 thread", "2 threads");
	for (int same = 0; same <= 1; same++) {
		double one = bench_run(c, 1, iters, same);
		double two = bench_run(c, 2, iters, same);

		printf("%-28s %10.1f %10.1f\n",
		    same ? "one IP (one shard)" : "distinct IPs (64 shards)", one, two);
	}
	conf_free(c);
	return 0;
}
