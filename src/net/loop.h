/*
 * loop: one event-loop thread (libevent event_base) and its mailbox
 * (lib/mailbox.h). Other threads (auth workers, the spool committer) hand
 * results back to a loop through the mailbox; the function then runs on
 * the loop's own thread, so session state is only ever touched by the
 * thread that owns it.
 */
#ifndef SG_NET_LOOP_H
#define SG_NET_LOOP_H

#include <stdbool.h>

struct event_base;
struct loop;
struct mailbox;

typedef void loop_fn(void *arg);

/* Creates the loop (not yet running). Must be called after loop_global_init(). */
struct loop *loop_new(void);
/* Once per process, before any thread starts: libevent pthreads support. */
void loop_global_init(void);
void loop_free(struct loop *l);
struct event_base *loop_base(struct loop *l);
/* Runs the loop on the calling thread until loop_stop(). */
void loop_run(struct loop *l);
/* One pass of the loop on the calling thread: runs what is ready, waiting
 * for something to be ready first when block is true (tests and tools that
 * drive a loop themselves). */
void loop_run_once(struct loop *l, bool block);
/* Thread-safe: asks the loop to return from loop_run. */
void loop_stop(struct loop *l);
/* Thread-safe: fn(arg) will run on the loop's thread, in posting order.
 * Never runs fn inline, even when called from the loop's own thread. */
void loop_post(struct loop *l, loop_fn *fn, void *arg);
/* The loop's mailbox, for services below net/ that answer on this loop
 * (loop_post is mailbox_post on it). */
struct mailbox *loop_mailbox(struct loop *l);

/*
 * Timers and fd readiness on a loop, for the loop's own thread only. The
 * callback runs from the loop, never inline. Freeing cancels.
 */
struct loop_timer;
struct loop_io;

struct loop_timer *loop_timer_new(struct loop *l, loop_fn *fn, void *arg);
/* (Re)arms the timer to fire once after ms milliseconds; 0: at the loop's
 * next turn (a deferred call). */
void loop_timer_add(struct loop_timer *t, long ms);
void loop_timer_del(struct loop_timer *t);
bool loop_timer_is_pending(const struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);

/* fn(arg) runs each time fd is readable, until loop_io_free. */
struct loop_io *loop_io_new(struct loop *l, int fd, loop_fn *fn, void *arg);
void loop_io_free(struct loop_io *io);

#endif
