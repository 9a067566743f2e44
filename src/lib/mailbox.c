/*
 * mailbox: a mutex-protected FIFO of (fn, arg); a drain takes the whole
 * list under the lock and runs it outside, so a fn may post again (that
 * item waits for the next drain).
 */
#include "lib/mailbox.h"

#include <pthread.h>
#include <stdlib.h>

#include "lib/xalloc.h"

struct mailbox_item {
	mailbox_fn *fn;
	void *arg;
	struct mailbox_item *next;
};

struct mailbox {
	pthread_mutex_t lock;
	struct mailbox_item *head, *tail;
	void (*wake)(void *ctx); /* NULL: direct (mailbox_new_direct) */
	void *ctx;
};

struct mailbox *
mailbox_new(void (*wake)(void *ctx), void *ctx)
{
	struct mailbox *mb = xcalloc(1, sizeof(*mb));

	pthread_mutex_init(&mb->lock, NULL);
	mb->wake = wake;
	mb->ctx = ctx;
	return mb;
}

struct mailbox *
mailbox_new_direct(void)
{
	return mailbox_new(NULL, NULL);
}

void
mailbox_free(struct mailbox *mb)
{
	struct mailbox_item *it, *next;

	if (mb == NULL)
		return;
	for (it = mb->head; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}

void
mailbox_post(struct mailbox *mb, mailbox_fn *fn, void *arg)
{
	struct mailbox_item *it;

	if (mb->wake == NULL) {
		fn(arg);
		return;
	}
	it = xmalloc(sizeof(*it));
	it->fn = fn;
	it->arg = arg;
	it->next = NULL;
	pthread_mutex_lock(&mb->lock);
	if (mb->tail != NULL)
		mb->tail->next = it;
	else
		mb->head = it;
	mb->tail = it;
	pthread_mutex_unlock(&mb->lock);
	mb->wake(mb->ctx);
}

void
mailbox_drain(struct mailbox *mb)
{
	struct mailbox_item *it, *next;

	pthread_mutex_lock(&mb->lock);
	it = mb->head;
	mb->head = mb->tail = NULL;
	pthread_mutex_unlock(&mb->lock);
	for (; it != NULL; it = next) {
		next = it->next;
		it->fn(it->arg);
		free(it);
	}
}
