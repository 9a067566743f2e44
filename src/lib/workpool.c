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
 *
 * With an idle hook (workpool_set_idle), idle workers wait in the hook
 * instead of on more; waiting counts them. A submit that finds one writes
 * the kick eventfd (EFD_SEMAPHORE: one unit per item, so a second idle
 * worker still sees the descriptor readable after the first took its
 * unit); a unit left over when a busy worker took the item first costs a
 * spurious return from the hook, nothing more. Stopping writes one unit per
 * worker and nobody reads them, so every hook returns.
 */
#include "lib/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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
	workpool_idle_cb *idle; /* NULL: workers wait on more */
	void *idle_ctx;
	int kick; /* the eventfd of the idle hook, or -1 */
	size_t waiting; /* workers in the idle hook */

	pthread_t *threads;
	size_t nthreads; /* started */
};

/* Writes one unit to the kick eventfd (an item for an idle worker). */
static void
workpool_kick(struct workpool *p)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full of units already, which wakes as well */
	while (write(p->kick, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

/* An idle worker's wait in the hook; under lock on entry and return. */
static void
workpool_idle_wait(struct workpool *p)
{
	workpool_idle_cb *idle = p->idle;
	void *ctx = p->idle_ctx;
	enum workpool_idle r;
	uint64_t unit;

	p->waiting++;
	pthread_mutex_unlock(&p->lock);
	r = idle(ctx, p);
	pthread_mutex_lock(&p->lock);
	if (r == WORKPOOL_IDLE_AGAIN)
		p->waiting--;
	/* the unit is this worker's; when stopping the units stay, for the
	 * other hooks to return */
	if (r == WORKPOOL_IDLE_KICK && !p->stopping && read(p->kick, &unit, sizeof(unit)) == -1)
		unit = 0; /* EAGAIN: another returning worker took it */
}

static void *
workpool_worker(void *arg)
{
	struct workpool *p = arg;
	void *item;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (p->stopping)
			break;
		if (p->count == 0) {
			if (p->idle != NULL)
				workpool_idle_wait(p);
			else
				pthread_cond_wait(&p->more, &p->lock);
			continue;
		}
		item = p->ring[p->head];
		p->ring[p->head] = NULL;
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->lock);
		p->run(p->ctx, item);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
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
	if (p->kick != -1) {
		for (size_t i = 0; i < p->nthreads; i++)
			workpool_kick(p);
	}
	pthread_mutex_unlock(&p->lock);
}

static void
workpool_destroy(struct workpool *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->more);
	if (p->kick != -1)
		close(p->kick);
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
	p->kick = -1;
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
	bool queued = false, kick = false;

	pthread_mutex_lock(&p->lock);
	if (!p->stopping && p->count < p->max_queued) {
		p->ring[(p->head + p->count) % p->cap] = item;
		p->count++;
		queued = true;
		kick = p->waiting > 0;
	}
	pthread_mutex_unlock(&p->lock);
	/* a worker in the hook, or entering it, finds the unit and returns */
	if (kick)
		workpool_kick(p);
	/* after the unlock: the worker it wakes does not block on the lock
	 * (a second context switch per item) */
	if (queued)
		pthread_cond_signal(&p->more);
	return queued;
}

int
workpool_kick_fd(struct workpool *p)
{
	int fd;

	pthread_mutex_lock(&p->lock);
	if (p->kick == -1)
		p->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	fd = p->kick;
	pthread_mutex_unlock(&p->lock);
	return fd;
}

int
workpool_set_idle(struct workpool *p, workpool_idle_cb *idle, void *ctx)
{
	if (workpool_kick_fd(p) == -1)
		return -1;
	pthread_mutex_lock(&p->lock);
	p->idle = idle;
	p->idle_ctx = ctx;
	/* the workers waiting on more move to the hook */
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The workers in the hook, less the caller first when it leaves it. */
static size_t
workpool_waiting(struct workpool *p, bool leaving)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	if (leaving)
		p->waiting--;
	n = p->waiting;
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t
workpool_busy(struct workpool *p)
{
	return workpool_waiting(p, true);
}

size_t
workpool_idle_count(struct workpool *p)
{
	return workpool_waiting(p, false);
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
