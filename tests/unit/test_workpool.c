/*
 * Unit tests for lib/workpool: FIFO order, exactly-once, the bound on the
 * queue, drop at free; the idle hook (workers that wait for work of their
 * own: a byte on a pipe here, a request on a channel in the auth process). Workers are held in run on a gate (a condvar) rather
 * than by sleeping; every wait for the pool has a deadline, so a bug fails
 * the test instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/workpool.h"

#define WAIT_SECONDS 20 /* deadline of any wait for the pool */
#define ITEMS_MAX 40000

struct probe {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool gate_open; /* run waits until it is */
	size_t started; /* run calls entered */
	size_t ran, dropped;
	size_t run_order[ITEMS_MAX], drop_order[ITEMS_MAX];
	unsigned run_count[ITEMS_MAX], drop_count[ITEMS_MAX];
};

static struct probe *
probe_new(bool gate_open)
{
	struct probe *pr = calloc(1, sizeof(*pr));

	assert_non_null(pr);
	pthread_mutex_init(&pr->lock, NULL);
	pthread_cond_init(&pr->changed, NULL);
	pr->gate_open = gate_open;
	return pr;
}

static void
probe_free(struct probe *pr)
{
	pthread_mutex_destroy(&pr->lock);
	pthread_cond_destroy(&pr->changed);
	free(pr);
}

static void *
item_of(size_t i)
{
	return (void *)(uintptr_t)(i + 1); /* never NULL: a lost item shows */
}

static size_t
index_of(void *item)
{
	uintptr_t v = (uintptr_t)item;

	assert_true(v >= 1 && v <= ITEMS_MAX);
	return (size_t)(v - 1);
}

static void
test_run_cb(void *ctx, void *item)
{
	struct probe *pr = ctx;
	size_t i = index_of(item);

	pthread_mutex_lock(&pr->lock);
	pr->started++;
	pthread_cond_broadcast(&pr->changed);
	while (!pr->gate_open)
		pthread_cond_wait(&pr->changed, &pr->lock);
	pr->run_order[pr->ran++] = i;
	pr->run_count[i]++;
	pthread_cond_broadcast(&pr->changed);
	pthread_mutex_unlock(&pr->lock);
}

static void
test_drop_cb(void *ctx, void *item)
{
	struct probe *pr = ctx;
	size_t i = index_of(item);

	pthread_mutex_lock(&pr->lock);
	pr->drop_order[pr->dropped++] = i;
	pr->drop_count[i]++;
	pthread_cond_broadcast(&pr->changed);
	pthread_mutex_unlock(&pr->lock);
}

/* Waits (bounded) until *counter >= n; the counter is read under pr->lock. */
static void
probe_wait(struct probe *pr, const size_t *counter, size_t n)
{
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&pr->lock);
	while (*counter < n && r == 0)
		r = pthread_cond_timedwait(&pr->changed, &pr->lock, &deadline);
	pthread_mutex_unlock(&pr->lock);
	assert_int_equal(r, 0);
}

static void
probe_open_gate(struct probe *pr)
{
	pthread_mutex_lock(&pr->lock);
	pr->gate_open = true;
	pthread_cond_broadcast(&pr->changed);
	pthread_mutex_unlock(&pr->lock);
}

static struct workpool *
pool_new(size_t nthreads, size_t max_queued, struct probe *pr)
{
	char err[256];
	struct workpool *p;

	p = workpool_new("test", nthreads, max_queued, test_run_cb, pr, err, sizeof(err));
	assert_non_null(p);
	return p;
}

/* One thread: every item runs exactly once, in the order submitted. */
static void
test_fifo_one_thread(void **state)
{
	struct probe *pr = probe_new(true);
	struct workpool *p = pool_new(1, 1000, pr);
	size_t n = 1000;

	for (size_t i = 0; i < n; i++)
		assert_true(workpool_submit(p, item_of(i)));
	probe_wait(pr, &pr->ran, n);
	workpool_free(p, test_drop_cb);
	assert_int_equal(pr->ran, n);
	assert_int_equal(pr->dropped, 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pr->run_order[i], i);
		assert_int_equal(pr->run_count[i], 1);
	}
	probe_free(pr);
}

/* While every worker is busy, max_queued more are accepted and the next is
 * refused; once they drain, the pool accepts again. */
static void
test_full_refuses(void **state)
{
	struct probe *pr = probe_new(false);
	size_t nthreads = 3, max = 5, next = 0;
	struct workpool *p = pool_new(nthreads, max, pr);

	/* one item per worker, each held at the gate (not queued any more) */
	for (; next < nthreads; next++)
		assert_true(workpool_submit(p, item_of(next)));
	probe_wait(pr, &pr->started, nthreads);
	for (size_t i = 0; i < max; i++, next++)
		assert_true(workpool_submit(p, item_of(next)));
	assert_false(workpool_submit(p, item_of(next)));
	assert_false(workpool_submit(p, item_of(next + 1)));

	probe_open_gate(pr);
	probe_wait(pr, &pr->ran, next);
	/* drained: room again */
	assert_true(workpool_submit(p, item_of(next)));
	next++;
	probe_wait(pr, &pr->ran, next);
	workpool_free(p, test_drop_cb);

	assert_int_equal(pr->ran, next);
	assert_int_equal(pr->dropped, 0);
	for (size_t i = 0; i < next; i++)
		assert_int_equal(pr->run_count[i], 1);
	probe_free(pr);
}

/* max_queued 0: nothing is ever accepted. */
static void
test_zero_queue(void **state)
{
	struct probe *pr = probe_new(true);
	struct workpool *p = pool_new(2, 0, pr);

	assert_false(workpool_submit(p, item_of(0)));
	workpool_free(p, NULL);
	assert_int_equal(pr->ran, 0);
	probe_free(pr);
}

static void
test_no_threads(void **state)
{
	char err[256] = "";

	assert_null(workpool_new("test", 0, 10, test_run_cb, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "test: "));
	workpool_free(NULL, NULL);
}

struct free_arg {
	struct workpool *p;
	struct probe *pr;
};

static void *
free_thread(void *arg)
{
	struct free_arg *fa = arg;

	workpool_free(fa->p, test_drop_cb);
	return NULL;
}

/* workpool_free drops each queued item exactly once, in FIFO order, before
 * it waits for the item in progress; the one in progress finishes. */
static void
test_free_drops_queued(void **state)
{
	struct probe *pr = probe_new(false);
	size_t max = 10;
	struct workpool *p = pool_new(1, max, pr);
	struct free_arg fa = {p, pr};
	pthread_t t;

	assert_true(workpool_submit(p, item_of(0)));
	probe_wait(pr, &pr->started, 1); /* item 0 is in progress, held */
	for (size_t i = 1; i <= max; i++)
		assert_true(workpool_submit(p, item_of(i)));
	assert_false(workpool_submit(p, item_of(max + 1)));

	assert_int_equal(pthread_create(&t, NULL, free_thread, &fa), 0);
	/* the drops come while item 0 is still held */
	probe_wait(pr, &pr->dropped, max);
	probe_open_gate(pr);
	assert_int_equal(pthread_join(t, NULL), 0);

	assert_int_equal(pr->ran, 1);
	assert_int_equal(pr->run_order[0], 0);
	assert_int_equal(pr->run_count[0], 1);
	assert_int_equal(pr->drop_count[0], 0);
	assert_int_equal(pr->dropped, max);
	for (size_t i = 1; i <= max; i++) {
		assert_int_equal(pr->drop_order[i - 1], i);
		assert_int_equal(pr->drop_count[i], 1);
		assert_int_equal(pr->run_count[i], 0);
	}
	probe_free(pr);
}

/* Items queued across the end of the ring (4 slots; the head at slot 2
 * when they are queued) are still dropped in FIFO order. */
static void
test_free_after_wrap(void **state)
{
	struct probe *pr = probe_new(true);
	size_t max = 4, n = 5;
	struct workpool *p = pool_new(1, max, pr);
	struct free_arg fa = {p, pr};
	pthread_t t;

	/* move the ring's head forward by n items */
	for (size_t i = 0; i < n; i++) {
		assert_true(workpool_submit(p, item_of(i)));
		probe_wait(pr, &pr->ran, i + 1);
	}
	pthread_mutex_lock(&pr->lock);
	pr->gate_open = false;
	pthread_mutex_unlock(&pr->lock);
	assert_true(workpool_submit(p, item_of(n)));
	probe_wait(pr, &pr->started, n + 1);
	for (size_t i = 1; i <= max; i++)
		assert_true(workpool_submit(p, item_of(n + i)));
	assert_false(workpool_submit(p, item_of(n + max + 1)));

	assert_int_equal(pthread_create(&t, NULL, free_thread, &fa), 0);
	probe_wait(pr, &pr->dropped, max);
	probe_open_gate(pr);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pr->ran, n + 1);
	for (size_t i = 0; i < max; i++)
		assert_int_equal(pr->drop_order[i], n + 1 + i);
	probe_free(pr);
}

#define STRESS_SUBMITTERS 4
#define STRESS_PER_SUBMITTER 5000

struct submitter {
	struct workpool *p;
	size_t first;
	size_t refused;
};

static void *
submitter_thread(void *arg)
{
	struct submitter *s = arg;

	for (size_t i = 0; i < STRESS_PER_SUBMITTER; i++) {
		/* a small queue: refusals happen; retry until taken */
		while (!workpool_submit(s->p, item_of(s->first + i))) {
			s->refused++;
			sched_yield();
		}
	}
	return NULL;
}

/* Many submitters, many workers, a small queue: every item runs exactly
 * once. */
static void
test_many_threads(void **state)
{
	struct probe *pr = probe_new(true);
	struct workpool *p = pool_new(8, 16, pr);
	struct submitter s[STRESS_SUBMITTERS];
	pthread_t t[STRESS_SUBMITTERS];
	size_t n = STRESS_SUBMITTERS * STRESS_PER_SUBMITTER;

	for (size_t i = 0; i < STRESS_SUBMITTERS; i++) {
		s[i] = (struct submitter){p, i * STRESS_PER_SUBMITTER, 0};
		assert_int_equal(pthread_create(&t[i], NULL, submitter_thread, &s[i]), 0);
	}
	for (size_t i = 0; i < STRESS_SUBMITTERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	probe_wait(pr, &pr->ran, n);
	workpool_free(p, test_drop_cb);
	assert_int_equal(pr->ran, n);
	assert_int_equal(pr->dropped, 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pr->run_count[i], 1);
	probe_free(pr);
}

/* The idle hook's side: an epoll set of the pool's kick (data 0) and the
 * read end of a pipe (data 1), each byte on it a piece of the hook's own
 * work, held on pr's gate like an item. */
struct hook {
	struct probe *pr;
	int ep, rfd, wfd;
	size_t own; /* bytes taken, under pr->lock */
	size_t left[64]; /* what workpool_busy returned for each */
};

static enum workpool_idle
test_idle_cb(void *ctx, struct workpool *p)
{
	struct hook *h = ctx;
	struct epoll_event ev;
	size_t left;
	char c;

	if (epoll_wait(h->ep, &ev, 1, -1) != 1)
		return WORKPOOL_IDLE_AGAIN;
	if (ev.data.u32 == 0) {
		(void)workpool_busy(p);
		return WORKPOOL_IDLE_KICK;
	}
	/* level-triggered: another worker may have taken the byte */
	if (read(h->rfd, &c, 1) != 1)
		return WORKPOOL_IDLE_AGAIN;
	left = workpool_busy(p);
	pthread_mutex_lock(&h->pr->lock);
	if (h->own < 64)
		h->left[h->own] = left;
	h->own++;
	pthread_cond_broadcast(&h->pr->changed);
	while (!h->pr->gate_open)
		pthread_cond_wait(&h->pr->changed, &h->pr->lock);
	pthread_mutex_unlock(&h->pr->lock);
	return WORKPOOL_IDLE_BUSY;
}

static void
hook_set(struct hook *h, struct workpool *p, struct probe *pr)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int fds[2];

	h->pr = pr;
	h->own = 0;
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	h->rfd = fds[0];
	h->wfd = fds[1];
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(h->ep >= 0);
	ev.data.u32 = 0;
	assert_int_equal(epoll_ctl(h->ep, EPOLL_CTL_ADD, workpool_kick_fd(p), &ev), 0);
	ev.data.u32 = 1;
	assert_int_equal(epoll_ctl(h->ep, EPOLL_CTL_ADD, h->rfd, &ev), 0);
	assert_int_equal(workpool_set_idle(p, test_idle_cb, h), 0);
}

static void
hook_close(struct hook *h)
{
	close(h->ep);
	close(h->rfd);
	close(h->wfd);
}

/* Waits (bounded) until n workers are in the hook. */
static void
idle_wait(struct workpool *p, size_t n)
{
	struct timespec ms = {0, 1000000};

	for (int i = 0; i < WAIT_SECONDS * 1000 && workpool_idle_count(p) != n; i++)
		nanosleep(&ms, NULL);
	assert_int_equal(workpool_idle_count(p), n);
}

/* Idle workers do the hook's work; each says how many are left idle (the
 * auth process's cue for its loop to read too), and they come back idle. */
static void
test_idle_hook_own_work(void **state)
{
	struct probe *pr = probe_new(false);
	struct workpool *p = pool_new(2, 4, pr);
	struct hook h;

	hook_set(&h, p, pr);
	idle_wait(p, 2);
	assert_int_equal(write(h.wfd, "x", 1), 1);
	probe_wait(pr, &h.own, 1);
	assert_int_equal(h.left[0], 1);
	assert_int_equal(write(h.wfd, "y", 1), 1);
	probe_wait(pr, &h.own, 2);
	assert_int_equal(h.left[1], 0);
	assert_int_equal(workpool_idle_count(p), 0);
	/* every worker busy: a third byte waits for one */
	assert_int_equal(write(h.wfd, "z", 1), 1);
	probe_open_gate(pr);
	probe_wait(pr, &h.own, 3);
	idle_wait(p, 2);
	/* the stop reaches workers waiting in the hook */
	workpool_free(p, test_drop_cb);
	assert_int_equal(h.own, 3);
	assert_int_equal(pr->ran, 0);
	hook_close(&h);
	probe_free(pr);
}

/* Items submitted while the only worker waits in the hook run, in order,
 * exactly once; a worker held in the hook's own work takes the queued
 * items when it is done, before its next wait. */
static void
test_idle_hook_kick(void **state)
{
	struct probe *pr = probe_new(true);
	struct workpool *p = pool_new(1, 8, pr);
	struct hook h;

	hook_set(&h, p, pr);
	idle_wait(p, 1);
	for (size_t i = 0; i < 100; i++) {
		assert_true(workpool_submit(p, item_of(i)));
		probe_wait(pr, &pr->ran, i + 1);
		idle_wait(p, 1);
	}
	pthread_mutex_lock(&pr->lock);
	pr->gate_open = false;
	pthread_mutex_unlock(&pr->lock);
	assert_int_equal(write(h.wfd, "x", 1), 1);
	probe_wait(pr, &h.own, 1);
	for (size_t i = 100; i < 104; i++)
		assert_true(workpool_submit(p, item_of(i)));
	probe_open_gate(pr);
	probe_wait(pr, &pr->ran, 104);
	workpool_free(p, test_drop_cb);
	for (size_t i = 0; i < 104; i++) {
		assert_int_equal(pr->run_order[i], i);
		assert_int_equal(pr->run_count[i], 1);
	}
	assert_int_equal(pr->dropped, 0);
	hook_close(&h);
	probe_free(pr);
}

/* The stress test with the hook: many submitters and the hook's own work
 * at once; every item runs exactly once and every byte is taken once. */
static void
test_idle_hook_many_threads(void **state)
{
	struct probe *pr = probe_new(true);
	struct workpool *p = pool_new(8, 16, pr);
	struct submitter s[STRESS_SUBMITTERS];
	pthread_t t[STRESS_SUBMITTERS];
	size_t n = STRESS_SUBMITTERS * STRESS_PER_SUBMITTER;
	struct hook h;

	hook_set(&h, p, pr);
	for (size_t i = 0; i < STRESS_SUBMITTERS; i++) {
		s[i] = (struct submitter){p, i * STRESS_PER_SUBMITTER, 0};
		assert_int_equal(pthread_create(&t[i], NULL, submitter_thread, &s[i]), 0);
	}
	for (size_t i = 0; i < 500; i++)
		assert_int_equal(write(h.wfd, "x", 1), 1);
	for (size_t i = 0; i < STRESS_SUBMITTERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	probe_wait(pr, &pr->ran, n);
	probe_wait(pr, &h.own, 500);
	workpool_free(p, test_drop_cb);
	assert_int_equal(pr->ran, n);
	assert_int_equal(h.own, 500);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pr->run_count[i], 1);
	hook_close(&h);
	probe_free(pr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_one_thread),
	    cmocka_unit_test(test_full_refuses),
	    cmocka_unit_test(test_zero_queue),
	    cmocka_unit_test(test_no_threads),
	    cmocka_unit_test(test_free_drops_queued),
	    cmocka_unit_test(test_free_after_wrap),
	    cmocka_unit_test(test_many_threads),
	    cmocka_unit_test(test_idle_hook_own_work),
	    cmocka_unit_test(test_idle_hook_kick),
	    cmocka_unit_test(test_idle_hook_many_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
