/*
 * scheduler_priv: what the queue runner (scheduler.c: entries, destination
 * slots, workers, scanner, life cycle) and one attempt at one message
 * (scheduler_attempt.c) share, and nothing else sees.
 */
#ifndef SG_RELAY_SCHEDULER_PRIV_H
#define SG_RELAY_SCHEDULER_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "queue/queue_id.h"
#include "relay/deliver.h"
#include "relay/scheduler.h"

struct conf_route;
struct creds;
struct route_mx;

#define SCHEDULER_NEVER LLONG_MAX
#define SCHEDULER_LOCKED_RETRY_MS 2000 /* the CLI holds the message's lock */
#define SCHEDULER_DEST_KEY_MAX 600

struct scheduler_dest {
	char *key;
	unsigned active, limit;
};

struct scheduler_entry {
	char id[QUEUE_ID_MAX];
	long long due;
	bool running, loaded, force, seen, gone;
	bool fresh; /* appeared in queue/ after start (released): try now */
	unsigned long long gen; /* the scan generation when it was added */
	long long stamp; /* inode change time of queue/ID when last read: a rename (hold,
			  * release) or a replacement changes it */
	char **dests;
	size_t ndests;
};

struct scheduler {
	const struct conf *conf;
	char *spool;
	int spool_fd;
	struct creds *creds;
	struct deliver_ctx dctx;
	const struct conf_route **mx_routes;
	struct route_mx **mx;
	size_t nmx;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* workers: work may be available */
	pthread_cond_t scan_cond; /* scanner: a rescan is asked for */
	struct scheduler_entry **v; /* sorted by id */
	size_t n, cap;
	struct scheduler_dest *dests;
	size_t ndests;
	bool stopping, rescan, flush;
	unsigned long long scan_gen; /* bumped as each scan starts listing queue/ */

	pthread_t *workers;
	size_t nworkers;
	size_t nworkers_started;
	pthread_t scanner;
	bool scanner_started;
};

/* --- scheduler.c -------------------------------------------------------------- */

long long scheduler_now_ms(void);
/* Adds id (unloaded, due now) unless present; returns the entry. Lock held. */
struct scheduler_entry *scheduler_add(struct scheduler *s, const char *id);

/* --- scheduler_attempt.c --------------------------------------------------------- */

/* The destination key of route r for a recipient domain: "smarthost H:P",
 * "lmtp PATH" or "lmtp H:P", "mx DOMAIN" (lower case). */
void scheduler_attempt_route_key(
    const struct conf_route *r, const char *domain, char *key, size_t keylen);
/* Reads an unloaded entry's envelope: its destinations and due time (ms,
 * SCHEDULER_NEVER), -1 when the message is gone. Without the lock. */
long long scheduler_attempt_load(
    struct scheduler *s, const char *id, bool force, bool fresh, char ***dests_r, size_t *n_r);
/* Delivers message id for the reserved destinations (without the lock).
 * Returns the new due time (ms), SCHEDULER_NEVER, or -1 when the message is
 * gone; the destinations it still needs go to dests_r. */
long long scheduler_attempt(struct scheduler *s, struct deliver_conn *dc, const char *id,
    bool force, char **reserved, size_t nreserved, char ***dests_r, size_t *ndests_r);

#endif
