/*
 * queue: the durable spool behind an asynchronous API (DESIGN 1).
 *
 * A session opens a message (a file in the spool's incoming folder), writes
 * the bytes as they arrive, and commits it with its envelope. Commit is
 * durable before the answer: file data and directory entries are on disk
 * (fsync/syncfs) before the callback says 0. Concurrent commits are batched
 * by one committer thread (group commit): one sync makes a whole batch
 * durable, and each session is answered only when its own message is.
 *
 * Answers come back through the requesting loop's mailbox, keyed by the
 * session id; a session that went away before its answer has its message
 * rolled back (queue_rollback) by the caller.
 *
 * A crash at any point leaves either a whole committed message or nothing:
 * queue_open() removes incomplete files left by a crash.
 */
#ifndef SG_QUEUE_QUEUE_H
#define SG_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/envelope.h"
#include "queue/queue_id.h"

struct conf;
struct mailbox;
struct queue;
struct queue_msg;

/* result 0: durable under queue_id; -1: failed (answer 451 4.3.0). */
typedef void queue_commit_cb(void *ctx, uint64_t session_id, const char *queue_id, int result);

/* Creates the spool folders if needed, cleans up after a crash, starts the
 * committer. NULL with a message in err on failure. */
struct queue *queue_open(const struct conf *c, char *err, size_t errlen);
void queue_free(struct queue *q);

/* Opens a new message; its id (unique, sortable by time) goes to id_r.
 * NULL on error (errno set). Called on a loop thread; cheap (no fsync). */
struct queue_msg *queue_msg_new(struct queue *q, char id_r[QUEUE_ID_MAX]);
/* Appends message bytes (CRLF line ends). -1 on error (errno set); the
 * message must then be aborted. */
int queue_msg_write(struct queue_msg *m, const void *p, size_t n)
    __attribute__((warn_unused_result));
/* Discards an uncommitted message. */
void queue_msg_abort(struct queue_msg *m);
/* Takes m; writes the envelope and hands it to the committer. The answer is
 * posted to mb as cb(ctx, session_id, id, result). */
void queue_msg_commit(struct queue_msg *m, const struct queue_envelope *env, struct mailbox *mb,
    uint64_t session_id, queue_commit_cb *cb, void *ctx);
/* Called on the committer thread with the id of every message that has
 * just become durable (before its session is answered): the delivery
 * scheduler's hook. Set once, before the first commit; cb must not block. */
typedef void queue_durable_cb(void *arg, const char *queue_id);
void queue_set_durable_hook(struct queue *q, queue_durable_cb *cb, void *arg);
/* Removes a committed message whose session vanished before its 250. */
void queue_rollback(struct queue *q, const char *queue_id);

/* Counters since queue_open (for benchmarks and, later, metrics). */
struct queue_stats {
	uint64_t commits; /* answered 0 */
	uint64_t failures; /* answered -1 */
	uint64_t syncs; /* group-commit syncs (one per batch) */
	uint64_t batch_max; /* largest batch */
};
void queue_get_stats(struct queue *q, struct queue_stats *r);

#endif
