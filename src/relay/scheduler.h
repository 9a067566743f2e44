/*
 * scheduler: delivers what the queue holds. Started by `smtpgate
 * serve` when the configuration has a [relay] or [route DOMAIN] section.
 *
 * - Sources of work: every message in queue/ at start (a crash mid-delivery
 *   re-delivers: at-least-once), each new commit (scheduler_notify, from the
 *   queue's durable hook), and rescans of queue/ (scheduler_rescan: on
 *   SIGUSR2, sent by `smtpgate queue release`, and every SCHEDULER_RESCAN_S).
 * - A bounded pool of worker threads runs the blocking client; a message is
 *   only started when every destination it needs has a free slot
 *   (concurrency per destination).
 * - Per recipient: sent, failed (5xx or expired: DSN to the sender), deferred
 *   (backoff: retry_min doubling to retry_max, +0-10% jitter) or held (needs
 *   an admin: waits for scheduler_flush). The state is in the envelope.
 * - Delay warning: once per message, when recipients are still deferred
 *   after their route's delay_warning, a DSN with Action: delayed to the
 *   sender (never for the null sender); the envelope's warned field keeps
 *   it from being sent twice.
 * - While a worker delivers a message it holds the message file's flock,
 *   which `smtpgate queue del|hold` also take.
 * - scheduler_flush (SIGUSR1, `smtpgate queue flush`): every queued message
 *   is tried now, held recipients too.
 */
#ifndef SG_RELAY_SCHEDULER_H
#define SG_RELAY_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct scheduler;

#define SCHEDULER_RESCAN_S 60 /* periodic rescan of queue/ */
#define SCHEDULER_WORKERS_MAX 64

/* True when c routes anything (has [relay] or a [route DOMAIN]). */
bool scheduler_is_configured(const struct conf *c);
/* Creates the scheduler for c (which must outlive it): opens the spool,
 * writes SPOOL/pid (spool_pid_write), sets up MX routing. NULL with err on failure. */
struct scheduler *scheduler_new(const struct conf *c, char *err, size_t errlen);
/* Scans queue/ and starts the workers. */
int scheduler_start(struct scheduler *s, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* A message has just been committed (queue_durable_cb; never blocks). */
void scheduler_notify(void *s, const char *queue_id);
void scheduler_rescan(struct scheduler *s);
void scheduler_flush(struct scheduler *s);
/* Stops: workers finish their attempt (at most grace seconds, then they are
 * cancelled: their messages stay queued and are delivered after restart). */
void scheduler_free(struct scheduler *s, unsigned grace);

#endif
