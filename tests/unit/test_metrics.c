/* Unit tests for lib/metrics: the exact text of a small registry, label
 * escaping, histogram buckets, gauges by callback, and sums across threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/metrics.h"

static double
test_gauge_cb(void *arg)
{
	return *(double *)arg;
}

static void
test_render_exact(void **state)
{
	static const double buckets[] = {0.001, 0.01, 0.5};
	struct metrics *m = metrics_new();
	struct buf out;
	double bans = 3;
	int auth = metrics_family(
	    m, "t_auth_total", "Auth attempts.", METRICS_COUNTER, "mechanism,result", NULL, 0);
	int conns =
	    metrics_family(m, "t_conns_total", "Connections.", METRICS_COUNTER, NULL, NULL, 0);
	int open = metrics_family(m, "t_open", "Open now.", METRICS_GAUGE, NULL, NULL, 0);
	int ban = metrics_family(m, "t_bans", "Bans\\active\nnow.", METRICS_GAUGE, NULL, NULL, 0);
	int lat =
	    metrics_family(m, "t_latency_seconds", "Latency.", METRICS_HISTOGRAM, NULL, buckets, 3);
	int empty =
	    metrics_family(m, "t_empty_total", "No series yet.", METRICS_COUNTER, "code", NULL, 0);
	const char *plain_ok[] = {"PLAIN", "ok"}, *plain_fail[] = {"PLAIN", "fail"};
	const char *weird[] = {"a\"b\\c\nd", "ok"};
	int s_ok = metrics_series(m, auth, plain_ok);

	(void)empty;
	assert_int_equal(metrics_series(m, auth, plain_ok), s_ok);
	metrics_inc(m, s_ok);
	metrics_add(m, s_ok, 2);
	metrics_inc(m, metrics_series(m, auth, plain_fail));
	metrics_inc(m, metrics_series(m, auth, weird));
	metrics_add(m, metrics_series0(m, conns), 7);
	metrics_gauge_add(m, metrics_series0(m, open), 5);
	metrics_gauge_add(m, metrics_series0(m, open), -2);
	metrics_gauge_set_cb(m, metrics_series0(m, ban), test_gauge_cb, &bans);
	metrics_observe(m, metrics_series0(m, lat), 0.0005);
	metrics_observe(m, metrics_series0(m, lat), 0.001); /* le is inclusive */
	metrics_observe(m, metrics_series0(m, lat), 0.25);
	metrics_observe(m, metrics_series0(m, lat), 2);
	buf_init(&out, 1 << 16);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_string_equal(out.data,
	    "# HELP t_auth_total Auth attempts.\n"
	    "# TYPE t_auth_total counter\n"
	    "t_auth_total{mechanism=\"PLAIN\",result=\"ok\"} 3\n"
	    "t_auth_total{mechanism=\"PLAIN\",result=\"fail\"} 1\n"
	    "t_auth_total{mechanism=\"a\\\"b\\\\c\\nd\",result=\"ok\"} 1\n"
	    "# HELP t_conns_total Connections.\n"
	    "# TYPE t_conns_total counter\n"
	    "t_conns_total 7\n"
	    "# HELP t_open Open now.\n"
	    "# TYPE t_open gauge\n"
	    "t_open 3\n"
	    "# HELP t_bans Bans\\\\active\\nnow.\n"
	    "# TYPE t_bans gauge\n"
	    "t_bans 3\n"
	    "# HELP t_latency_seconds Latency.\n"
	    "# TYPE t_latency_seconds histogram\n"
	    "t_latency_seconds_bucket{le=\"0.001\"} 2\n"
	    "t_latency_seconds_bucket{le=\"0.01\"} 2\n"
	    "t_latency_seconds_bucket{le=\"0.5\"} 3\n"
	    "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
	    "t_latency_seconds_sum 2.2515\n"
	    "t_latency_seconds_count 4\n"
	    "# HELP t_empty_total No series yet.\n"
	    "# TYPE t_empty_total counter\n");
	buf_free(&out);
	metrics_free(m);
}

static void
test_labelled_histogram_and_full_out(void **state)
{
	static const double buckets[] = {1};
	struct metrics *m = metrics_new();
	struct buf out;
	int h = metrics_family(m, "t_h", "H.", METRICS_HISTOGRAM, "kind", buckets, 1);
	const char *v[] = {"x"};

	metrics_observe(m, metrics_series(m, h, v), 1.5);
	buf_init(&out, 1 << 12);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_string_equal(out.data,
	    "# HELP t_h H.\n"
	    "# TYPE t_h histogram\n"
	    "t_h_bucket{kind=\"x\",le=\"1\"} 0\n"
	    "t_h_bucket{kind=\"x\",le=\"+Inf\"} 1\n"
	    "t_h_sum{kind=\"x\"} 1.5\n"
	    "t_h_count{kind=\"x\"} 1\n");
	buf_free(&out);
	buf_init(&out, 20);
	assert_int_equal(metrics_render(m, &out), -1);
	buf_free(&out);
	metrics_free(m);
}

static void
test_registry_full(void **state)
{
	struct metrics *m = metrics_new();
	int f = metrics_family(m, "t_many_total", "Many.", METRICS_COUNTER, "n", NULL, 0);
	int last = 0;

	for (int i = 0; i < METRICS_CELLS + 10; i++) {
		char name[16];
		const char *v[] = {name};

		snprintf(name, sizeof(name), "%d", i);
		last = metrics_series(m, f, v);
	}
	assert_int_equal(last, -1);
	metrics_inc(m, last); /* ignored */
	metrics_free(m);
}

#define TEST_THREADS 8
#define TEST_ADDS 100000

struct test_thread {
	struct metrics *m;
	int series;
	int gauge;
};

static void *
test_thread_main(void *arg)
{
	struct test_thread *t = arg;

	for (int i = 0; i < TEST_ADDS; i++) {
		metrics_inc(t->m, t->series);
		metrics_gauge_add(t->m, t->gauge, i % 2 == 0 ? 1 : -1);
	}
	return NULL;
}

static void
test_threads_sum(void **state)
{
	struct metrics *m = metrics_new();
	struct test_thread t = {m, 0, 0};
	pthread_t th[TEST_THREADS];
	struct buf out;

	t.series =
	    metrics_series0(m, metrics_family(m, "t_c", "C.", METRICS_COUNTER, NULL, NULL, 0));
	t.gauge = metrics_series0(m, metrics_family(m, "t_g", "G.", METRICS_GAUGE, NULL, NULL, 0));
	for (int i = 0; i < TEST_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, test_thread_main, &t), 0);
	for (int i = 0; i < TEST_THREADS; i++)
		pthread_join(th[i], NULL);
	buf_init(&out, 1 << 12);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_non_null(strstr(out.data, "\nt_c 800000\n"));
	assert_non_null(strstr(out.data, "\nt_g 0\n"));
	buf_free(&out);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_exact),
	    cmocka_unit_test(test_labelled_histogram_and_full_out),
	    cmocka_unit_test(test_registry_full),
	    cmocka_unit_test(test_threads_sum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
