/*
 * workpool: bounded FIFO + worker threads (workpool.h).
 *
 * State, all under lock: a ring of cap slots (cap = max(max_queued, 1),
 * allocated once, so a submit never allocates) holding count items from
 * slot head on; stopping, set once by workpool_free. Workers sleep on more
 * while the ring is empty. A worker that sees stopping exits without taking
 * anything, and submit refuses once it is set: so after workpool_free has
 * set it and taken the queued items out (count = 0), the ring is touched by
 * nobody else and the items are dropped outside the lock.
 */
#include "lib/workpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

struct workpool {
	workpool_run_cb *run;
	void *ctx;

	pthread_mutex_t lock; /* ring, head, count, stopping */
	pthread_cond_t more;
	void **ring;
	size_t cap, head, count;
	size_t max_queued;
	bool stopping;

	pthread_t *threads;
	size_t nthreads; /* started */
};

static void *
workpool_worker(void *arg)
{
	struct workpool *p = arg;
	void *item;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stopping && p->count == 0)
			pthread_cond_wait(&p->more, &p->lock);
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		item = p->ring[p->head];
		p->ring[p->head] = NULL;
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->lock);
		p->run(p->ctx, item);
	}
}

/* Sets stopping, wakes every worker and returns what was still queued as
 * *first, *n (ring positions, now the caller's alone). */
static void
workpool_stop(struct workpool *p, size_t *first, size_t *n)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	*first = p->head;
	*n = p->count;
	p->count = 0;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
}

static void
workpool_destroy(struct workpool *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->more);
	free(p->threads);
	free(p->ring);
	free(p);
}

struct workpool *
workpool_new(const char *name, size_t nthreads, size_t max_queued, workpool_run_cb *run, void *ctx,
    char *err, size_t errlen)
{
	struct workpool *p;
	size_t first, n;
	int e;

	if (nthreads == 0) {
		snprintf(err, errlen, "%s: no worker threads", name);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->run = run;
	p->ctx = ctx;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	p->max_queued = max_queued;
	p->cap = max_queued > 0 ? max_queued : 1;
	p->ring = xcalloc(p->cap, sizeof(*p->ring));
	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	for (; p->nthreads < nthreads; p->nthreads++) {
		if ((e = pthread_create(&p->threads[p->nthreads], NULL, workpool_worker, p)) != 0) {
			snprintf(err, errlen, "%s: cannot start a worker: %s", name, strerror(e));
			workpool_stop(p, &first, &n);
			workpool_destroy(p);
			return NULL;
		}
	}
	return p;
}

bool
workpool_submit(struct workpool *p, void *item)
{
	bool queued = false;

	pthread_mutex_lock(&p->lock);
	if (!p->stopping && p->count < p->max_queued) {
		p->ring[(p->head + p->count) % p->cap] = item;
		p->count++;
		queued = true;
	}
	pthread_mutex_unlock(&p->lock);
	/* after the unlock: the worker it wakes does not block on the lock
	 * (a second context switch per item) */
	if (queued)
		pthread_cond_signal(&p->more);
	return queued;
}

void
workpool_free(struct workpool *p, workpool_drop_cb *drop)
{
	size_t first, n;

	if (p == NULL)
		return;
	workpool_stop(p, &first, &n);
	/* before the join: a request queued behind a slow one (a Dovecot
	 * round trip) hears its answer now, not after that one */
	for (size_t i = 0; i < n; i++) {
		size_t slot = (first + i) % p->cap;

		if (drop != NULL)
			drop(p->ctx, p->ring[slot]);
		p->ring[slot] = NULL;
	}
	workpool_destroy(p);
}
