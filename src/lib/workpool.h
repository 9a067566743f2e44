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
 * Stops the pool: refuses new items, hands every item still queued to
 * drop(ctx, item) in FIFO order (before waiting, so their requesters hear at
 * once), then waits for the items in progress to finish and joins the
 * workers. drop may be NULL only when nothing can be queued. p may be NULL.
 * Not to be called from a worker, nor concurrently with workpool_submit.
 */
void workpool_free(struct workpool *p, workpool_drop_cb *drop);

#endif
