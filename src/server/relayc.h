/*
 * relayc: the smtp process's side of its channel to smtpgate-relay
 * (server/relay_proc.h). The queue's durable hook (queue/queue.h) tells the
 * relay process about each message just committed, with one
 * CHILD_MSG_QUEUED frame (server/child.h). It never waits: the socket does
 * not block, and a frame that cannot go (the relay process is down,
 * restarting or behind) is dropped: the message is on disk, and the relay
 * process scans the queue folder when it starts and every
 * SCHEDULER_RESCAN_S. The parent hands over a new channel whenever either
 * process starts, and when the smtp process asks for one because its sends
 * fail (the relay process closed the channel after a frame it refused).
 */
#ifndef SG_SERVER_RELAYC_H
#define SG_SERVER_RELAYC_H

#include <stdint.h>

struct relayc;

/* The channel number gen (the parent's count, CHILD_MSG_RELAY) failed:
 * ask the parent for a new one. Any thread, at most once a second; 0 or -1
 * (the next failing notice asks again). */
typedef int relayc_lost_cb(void *ctx, uint32_t gen);

/* lost (may be NULL) asks for a new channel when sends fail. */
struct relayc *relayc_new(relayc_lost_cb *lost, void *ctx);
/* A new channel from the parent (taken; the old one is closed). */
void relayc_set_channel(struct relayc *r, uint32_t gen, int fd);
/* queue_durable_cb: any thread; never blocks. */
void relayc_notify(void *r, const char *queue_id);
void relayc_free(struct relayc *r);

#endif
