/*
 * mailbox: how a result made on one thread reaches the thread that asked
 * for it. Any thread posts (fn, arg); the consumer (an event loop, see
 * net/loop.h) runs them on its own thread, in posting order, so a session's
 * state is only ever touched by the thread that owns it. The consumer gives
 * a wake function, called after each post, that makes it drain soon.
 *
 * The layers below the network (auth/, queue/) answer through a mailbox and
 * know nothing of the loop behind it.
 */
#ifndef SG_LIB_MAILBOX_H
#define SG_LIB_MAILBOX_H

struct mailbox;

typedef void mailbox_fn(void *arg);

/* wake(ctx) is called from the posting thread after each post. */
struct mailbox *mailbox_new(void (*wake)(void *ctx), void *ctx);
/* A mailbox without a consumer thread: a post runs fn at once, on the
 * posting thread. For a consumer whose fns are thread-safe and would only
 * pay a wake-up for the hop (an answer a worker can send itself). */
struct mailbox *mailbox_new_direct(void);
/* Frees what is still pending without running it. NULL is a no-op. */
void mailbox_free(struct mailbox *mb);
/* Thread-safe. Never runs fn inline, even on the consumer's thread (but
 * always inline for a mailbox_new_direct one). */
void mailbox_post(struct mailbox *mb, mailbox_fn *fn, void *arg);
/* The consumer: runs everything posted before the call, in order. */
void mailbox_drain(struct mailbox *mb);

#endif
