/*
 * loop: event_base per thread plus its mailbox (lib/mailbox.h), drained by
 * a user event that a post makes active.
 */
#include "net/loop.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>

#include "lib/mailbox.h"
#include "lib/xalloc.h"

struct loop {
	struct event_base *base;
	struct event *wake;
	struct mailbox *mb;
};

void
loop_global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, (void (*)(void))evthread_use_pthreads);
}

static void
loop_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;

	mailbox_drain(l->mb);
}

/* event_active() is thread-safe once evthread_use_pthreads() has run */
static void
loop_wake(void *ctx)
{
	struct loop *l = ctx;

	event_active(l->wake, 0, 0);
}

struct loop *
loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	struct event_config *cfg = event_config_new();

	/* one loop per thread: no lock needed inside the base itself, but
	 * event_active from other threads needs the notify machinery */
	l->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (l->base == NULL)
		abort();
	l->wake = event_new(l->base, -1, 0, loop_drain_cb, l);
	l->mb = mailbox_new(loop_wake, l);
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	mailbox_free(l->mb);
	event_free(l->wake);
	event_base_free(l->base);
	free(l);
}

struct event_base *
loop_base(struct loop *l)
{
	return l->base;
}

void
loop_run(struct loop *l)
{
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
}

void
loop_run_once(struct loop *l, bool block)
{
	event_base_loop(l->base, block ? EVLOOP_ONCE : EVLOOP_NONBLOCK);
}

void
loop_stop(struct loop *l)
{
	event_base_loopbreak(l->base);
}

void
loop_post(struct loop *l, loop_fn *fn, void *arg)
{
	mailbox_post(l->mb, fn, arg);
}

struct mailbox *
loop_mailbox(struct loop *l)
{
	return l->mb;
}

/* --- timers and fd readiness ------------------------------------------------ */

struct loop_timer {
	struct event *ev;
	loop_fn *fn;
	void *arg;
};

struct loop_io {
	struct event *ev;
	loop_fn *fn;
	void *arg;
};

static void
loop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop_timer *t = arg;

	t->fn(t->arg);
}

struct loop_timer *
loop_timer_new(struct loop *l, loop_fn *fn, void *arg)
{
	struct loop_timer *t = xcalloc(1, sizeof(*t));

	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(l->base, loop_timer_cb, t);
	if (t->ev == NULL)
		abort(); /* allocation failure */
	return t;
}

void
loop_timer_add(struct loop_timer *t, long ms)
{
	struct timeval tv;

	if (ms <= 0) {
		event_active(t->ev, EV_TIMEOUT, 0);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(t->ev, &tv);
}

void
loop_timer_del(struct loop_timer *t)
{
	evtimer_del(t->ev);
}

bool
loop_timer_is_pending(const struct loop_timer *t)
{
	return evtimer_pending(t->ev, NULL) != 0;
}

void
loop_timer_free(struct loop_timer *t)
{
	if (t == NULL)
		return;
	event_free(t->ev);
	free(t);
}

static void
loop_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop_io *io = arg;

	io->fn(io->arg);
}

struct loop_io *
loop_io_new(struct loop *l, int fd, loop_fn *fn, void *arg)
{
	struct loop_io *io = xcalloc(1, sizeof(*io));

	io->fn = fn;
	io->arg = arg;
	io->ev = event_new(l->base, fd, EV_READ | EV_PERSIST, loop_io_cb, io);
	if (io->ev == NULL || event_add(io->ev, NULL) == -1)
		abort(); /* allocation failure */
	return io;
}

void
loop_io_free(struct loop_io *io)
{
	if (io == NULL)
		return;
	event_free(io->ev);
	free(io);
}
