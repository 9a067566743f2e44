/* Unit tests for lib/mailbox: order, a direct mailbox, posting from inside a drain, posts from
 * several threads (each thread's own order kept, none lost), and freeing
 * with items pending. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "lib/mailbox.h"

#define THREADS 4
#define PER_THREAD 20000

struct log {
	int seen[64];
	int n;
	int wakes;
	struct mailbox *mb;
};

static void
wake_count(void *ctx)
{
	__atomic_add_fetch(&((struct log *)ctx)->wakes, 1, __ATOMIC_RELAXED);
}

struct item {
	struct log *log;
	int value;
};

static void
record(void *arg)
{
	struct item *it = arg;

	it->log->seen[it->log->n++] = it->value;
}

static void
test_order_and_wake(void **state)
{
	struct log log = {0};
	struct item items[5];
	struct mailbox *mb = mailbox_new(wake_count, &log);

	for (int i = 0; i < 5; i++) {
		items[i] = (struct item){&log, i};
		mailbox_post(mb, record, &items[i]);
	}
	assert_int_equal(log.n, 0); /* never inline */
	assert_int_equal(log.wakes, 5);
	mailbox_drain(mb);
	assert_int_equal(log.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(log.seen[i], i);
	mailbox_drain(mb); /* empty: nothing runs */
	assert_int_equal(log.n, 5);
	mailbox_free(mb);
}

/* A direct mailbox runs each post at once, on the posting thread, in
 * order; nothing is left for a drain. */
static void
test_direct(void **state)
{
	struct log log = {0};
	struct item items[3];
	struct mailbox *mb = mailbox_new_direct();

	(void)state;
	for (int i = 0; i < 3; i++) {
		items[i] = (struct item){&log, i};
		mailbox_post(mb, record, &items[i]);
		assert_int_equal(log.n, i + 1); /* inline */
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(log.seen[i], i);
	mailbox_drain(mb);
	assert_int_equal(log.n, 3);
	mailbox_free(mb);
}

static struct item repost_second;

static void
repost(void *arg)
{
	struct item *it = arg;

	record(it);
	repost_second = (struct item){it->log, 99};
	mailbox_post(it->log->mb, record, &repost_second);
}

/* An item posted while draining waits for the next drain. */
static void
test_post_during_drain(void **state)
{
	struct log log = {0};
	struct item first;

	log.mb = mailbox_new(wake_count, &log);
	first = (struct item){&log, 1};
	mailbox_post(log.mb, repost, &first);
	mailbox_drain(log.mb);
	assert_int_equal(log.n, 1);
	mailbox_drain(log.mb);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.seen[1], 99);
	mailbox_free(log.mb);
}

struct counter {
	int next[THREADS]; /* the next value expected from each thread */
	int total;
	int bad;
};

struct tagged {
	struct counter *c;
	int thread;
	int value;
};

static void
count(void *arg)
{
	struct tagged *t = arg;

	if (t->value != t->c->next[t->thread])
		t->c->bad++;
	t->c->next[t->thread] = t->value + 1;
	t->c->total++;
	free(t);
}

struct poster {
	struct mailbox *mb;
	struct counter *c;
	int thread;
};

static void *
post_many(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		struct tagged *t = malloc(sizeof(*t));

		*t = (struct tagged){p->c, p->thread, i};
		mailbox_post(p->mb, count, t);
	}
	return NULL;
}

static void
wake_none(void *ctx)
{
}

static void
test_threads(void **state)
{
	struct counter c = {{0}, 0, 0};
	struct mailbox *mb = mailbox_new(wake_none, NULL);
	struct poster p[THREADS];
	pthread_t th[THREADS];

	for (int i = 0; i < THREADS; i++) {
		p[i] = (struct poster){mb, &c, i};
		assert_int_equal(pthread_create(&th[i], NULL, post_many, &p[i]), 0);
	}
	/* drain while they post, then what is left */
	while (c.total < THREADS * PER_THREAD / 2)
		mailbox_drain(mb);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	mailbox_drain(mb);
	assert_int_equal(c.total, THREADS * PER_THREAD);
	assert_int_equal(c.bad, 0);
	mailbox_free(mb);
}

static void
test_free_pending(void **state)
{
	struct log log = {0};
	struct item it = {&log, 7};
	struct mailbox *mb = mailbox_new(wake_count, &log);

	mailbox_post(mb, record, &it);
	mailbox_post(mb, record, &it);
	mailbox_free(mb); /* dropped without running (ASan: no leak) */
	assert_int_equal(log.n, 0);
	mailbox_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_wake),
	    cmocka_unit_test(test_direct),
	    cmocka_unit_test(test_post_during_drain),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_free_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
