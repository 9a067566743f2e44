/*
 * relayc: see relayc.h. One lock orders the channel's replacement (main
 * thread) against the sends (the queue's committer threads) and guards the
 * one frame buffer.
 */
#include "server/relayc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/ipc_sock.h"
#include "server/child.h"

struct relayc {
	pthread_mutex_t lock;
	int fd; /* -1: no channel */
	uint32_t gen; /* the parent's number of this channel */
	bool failing; /* the last send failed: logged once until one succeeds */
	long long asked; /* when a new channel was last asked for (ms) */
	relayc_lost_cb *lost;
	void *lost_ctx;
	uint64_t next_id;
	struct ipc_out out;
};

struct relayc *
relayc_new(relayc_lost_cb *lost, void *ctx)
{
	struct relayc *r = xcalloc(1, sizeof(*r));

	pthread_mutex_init(&r->lock, NULL);
	r->fd = -1;
	r->lost = lost;
	r->lost_ctx = ctx;
	return r;
}

/* Under the lock, after a failed send: whether to ask for a new channel
 * (at most once a second, while the sends keep failing). */
static bool
relayc_should_ask(struct relayc *r)
{
	long long now = child_now_ms();

	if (r->lost == NULL || (r->asked != 0 && now - r->asked < 1000))
		return false;
	r->asked = now;
	return true;
}

void
relayc_set_channel(struct relayc *r, uint32_t gen, int fd)
{
	int flags = fd != -1 ? fcntl(fd, F_GETFL) : -1;

	/* a relay process that is slow to read must never stall a commit */
	if (flags != -1)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	pthread_mutex_lock(&r->lock);
	if (r->fd != -1)
		close(r->fd);
	r->fd = fd;
	r->gen = gen;
	r->failing = false;
	pthread_mutex_unlock(&r->lock);
}

void
relayc_notify(void *arg, const char *queue_id)
{
	struct relayc *r = arg;
	int rc = -1, saved = 0;
	bool log = false, ask = false;
	uint32_t gen = 0;

	pthread_mutex_lock(&r->lock);
	if (r->fd != -1) {
		ipc_out_begin(&r->out, CHILD_MSG_QUEUED, ++r->next_id);
		ipc_put_str(&r->out, queue_id);
		rc = ipc_out_end(&r->out) == 0 ? ipc_sock_send(r->fd, &r->out, -1) : -1;
		saved = errno;
		log = rc == -1 && !r->failing;
		r->failing = rc == -1;
		/* the relay process closed the channel (a frame it refused): a
		 * new one from the parent; a full one (EAGAIN) only waits */
		ask = rc == -1 && saved != EAGAIN && saved != EWOULDBLOCK && relayc_should_ask(r);
		gen = r->gen;
	}
	pthread_mutex_unlock(&r->lock);
	/* a failed ask: the next failing notice asks again */
	if (ask && r->lost(r->lost_ctx, gen) == -1) {
		pthread_mutex_lock(&r->lock);
		r->asked = 0;
		pthread_mutex_unlock(&r->lock);
	}
	/* the message waits for the relay process's next scan */
	if (log)
		log_event(LOG_WARNING, "relay_channel", 0, "{s:s, s:s, s:s}", "process", "smtp",
		    "queue_id", queue_id, "error", strerror(saved));
}

void
relayc_free(struct relayc *r)
{
	if (r == NULL)
		return;
	if (r->fd != -1)
		close(r->fd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
