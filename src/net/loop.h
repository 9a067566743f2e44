/*
 * loop: one event-loop thread (libevent event_base) and its mailbox. Other
 * threads (auth workers, the spool committer) hand results back to a loop
 * with loop_post(); the function then runs on the loop's own thread, so
 * session state is only ever touched by the thread that owns it.
 */
#ifndef SG_NET_LOOP_H
#define SG_NET_LOOP_H

struct event_base;
struct loop;

typedef void loop_fn(void *arg);

/* Creates the loop (not yet running). Must be called after loop_global_init(). */
struct loop *loop_new(void);
/* Once per process, before any thread starts: libevent pthreads support. */
void loop_global_init(void);
void loop_free(struct loop *l);
struct event_base *loop_base(struct loop *l);
/* Runs the loop on the calling thread until loop_stop(). */
void loop_run(struct loop *l);
/* Thread-safe: asks the loop to return from loop_run. */
void loop_stop(struct loop *l);
/* Thread-safe: fn(arg) will run on the loop's thread, in posting order.
 * Never runs fn inline, even when called from the loop's own thread. */
void loop_post(struct loop *l, loop_fn *fn, void *arg);

#endif
