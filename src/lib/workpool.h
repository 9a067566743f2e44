/*
 * workpool: a bounded pool of worker threads for blocking work that must
 * not run on a loop thread (password hashing, Dovecot round trips, JWKS and
 * introspection requests: DESIGN 3).
 *
 * Model: a FIFO of at most max_queued items and nthreads threads taking
 * from it; each item is given to run(ctx, item) exactly once, on one of the
 * workers, in the order submitted (with one thread, one after the other in
 * that order). A full queue refuses at once rather than waiting: the caller
 * answers that request itself (for AUTH, RFC 4954 6: 454 4.7.0). Items in
 * progress do not count against max_queued.
 *
 * Ownership: an item is opaque to the pool. Once workpool_submit accepts it,
 * the pool holds it until it hands it to run or, at workpool_free, to drop;
 * either callback then owns it (frees it, answers its requester). A refused
 * item stays the caller's. The pool knows nothing of event loops: posting an
 * answer back to the requesting loop is the run callback's business.
 */
#ifndef SG_LIB_WORKPOOL_H
#define SG_LIB_WORKPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct workpool;

/* Does the work of item, on a worker thread; ctx is workpool_new's. */
typedef void workpool_run_cb(void *ctx, void *item);
/* Disposes of an item that never ran (workpool_free), on the caller's thread. */
typedef void workpool_drop_cb(void *ctx, void *item);

/*
 * Starts nthreads (at least 1) workers. name prefixes error messages
 * ("authdb: cannot start a worker: ..."). max_queued 0 refuses everything.
 * NULL with err set when a thread cannot be started (none is left running).
 */
struct workpool *workpool_new(const char *name, size_t nthreads, size_t max_queued,
    workpool_run_cb *run, void *ctx, char *err, size_t errlen);

/*
 * Queues item for a worker. false when the queue holds max_queued items or
 * the pool is stopping: item is then still the caller's. Any thread.
 */
bool workpool_submit(struct workpool *p, void *item) __attribute__((warn_unused_result));

/*
 * The idle hook (optional): an idle worker, instead of sleeping until an
 * item is queued, calls idle(ctx, p), which waits for work of the caller's
 * own (for the auth process: a request on one of its channels, read by the
 * worker itself, so that a request costs no hand-off from a reader thread)
 * and for the pool's kick descriptor (workpool_kick_fd): an eventfd that is
 * readable while an item is waiting for an idle worker, or the pool is
 * stopping. idle returns
 *   WORKPOOL_IDLE_KICK   the kick descriptor was readable; idle called
 *                        workpool_busy (the worker goes for a queued item)
 *                        and must not read the descriptor: the pool does;
 *   WORKPOOL_IDLE_BUSY   it did work of its own, having called
 *                        workpool_busy when that work began;
 *   WORKPOOL_IDLE_AGAIN  nothing to do after all (a request another
 *                        thread took, an interrupted wait).
 * After each return the pool takes any queued item before calling idle
 * again, so queued items keep their FIFO order ahead of the hook's own work.
 * Set once (the workers switch at once); -1 with errno when the kick
 * descriptor cannot be made.
 */
enum workpool_idle {
	WORKPOOL_IDLE_KICK,
	WORKPOOL_IDLE_AGAIN,
	WORKPOOL_IDLE_BUSY,
};
typedef enum workpool_idle workpool_idle_cb(void *ctx, struct workpool *p);
/* The kick descriptor (made at the first call; the pool closes it), or -1
 * with errno. */
int workpool_kick_fd(struct workpool *p);
int workpool_set_idle(struct workpool *p, workpool_idle_cb *idle, void *ctx)
    __attribute__((warn_unused_result));
/* From idle, on the worker's thread, as its own work begins: that worker no
 * longer counts as idle. Returns how many workers are still idle (0: every
 * worker is busy, so the caller's other readers may have to step in). */
size_t workpool_busy(struct workpool *p);
/* How many workers are in the idle hook now. Any thread. */
size_t workpool_idle_count(struct workpool *p);

/*
 * Stops the pool: refuses new items, hands every item still queued to
 * drop(ctx, item) in FIFO order (before waiting, so their requesters hear at
 * once), then waits for the items in progress to finish and joins the
 * workers. drop may be NULL only when nothing can be queued. p may be NULL.
 * Not to be called from a worker, nor concurrently with workpool_submit.
 */
void workpool_free(struct workpool *p, workpool_drop_cb *drop);

#endif
