/*
 * cluster: this node's part in the state shared by every node of a cluster
 * through Redis ([cluster], doc/cluster.md), in the smtp process.
 *
 * Decisions never wait for Redis: they read the local limiter, which this
 * module keeps current from one thread of its own (its own event loop, with
 * hiredis' libevent adapter):
 *   - the limiter's hooks (policy/limiter.h) post each AUTH failure, success
 *     and operator ban to that thread, which sends it to Redis (a Lua
 *     script counts and bans atomically there: cluster_lua.h);
 *   - bans, known-good pairs and account counts come back on the cluster's
 *     channel (SUBSCRIBE) within a round trip, to every node, and are stored
 *     in the local limiter; a resync (at each connect, then every
 *     CLUSTER_RESYNC_MS) reads the bans and pairs again, so a message missed
 *     while disconnected is made up for.
 * A session that failed AUTH holds its 535 for the tarpit delay (at least
 * 500 ms) and looks at the bans again before it answers: the failure that
 * reaches auth_failures_per_ip counted over every node is answered with the
 * ban, on whichever node it happened.
 *
 * Redis down or slow: a command outstanding for CLUSTER_TIMEOUT_MS, a lost
 * connection or a failed connect marks the cluster down (a `cluster` event,
 * smtpgate_cluster_up 0); the node decides from its local state alone
 * (every failure is counted locally too, and the bans it knows stay), and
 * reconnects with a backoff from CLUSTER_BACKOFF_MIN_MS to
 * CLUSTER_BACKOFF_MAX_MS. Nothing on a loop thread ever waits for it.
 *
 * Thread safety: cluster_is_up from any thread; the hooks from any thread;
 * cluster_new, cluster_start and cluster_free from the main thread.
 */
#ifndef SG_CLUSTER_CLUSTER_H
#define SG_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct limiter;
struct cluster;

#define CLUSTER_TIMEOUT_MS 1500
#define CLUSTER_PING_MS 500
#define CLUSTER_RESYNC_MS (30 * 1000)
#define CLUSTER_BACKOFF_MIN_MS 250
#define CLUSTER_BACKOFF_MAX_MS (10 * 1000)
#define CLUSTER_NODE_TTL_S 30

/* For c's [cluster]; hooks itself into l. NULL with err on failure. */
struct cluster *cluster_new(const struct conf *c, struct limiter *l, char *err, size_t errlen);
/* Starts the thread (it connects on its own). -1 with err. */
int cluster_start(struct cluster *cl, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Stops the thread, unhooks the limiter. NULL: nothing. */
void cluster_free(struct cluster *cl);
/* Whether the shared state is reachable now (smtpgate_cluster_up). */
bool cluster_is_up(const struct cluster *cl);

#endif
