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
#define CLUSTER_TICKET_PERIOD_S 3600 /* a new TLS ticket key each hour */
#define CLUSTER_TICKET_KEEP 3 /* keys kept (and accepted): this period's and two more */
#define CLUSTER_TICKET_REFRESH_MS (60 * 1000)

/* For c's [cluster]; hooks itself into l. NULL with err on failure. */
struct cluster *cluster_new(const struct conf *c, struct limiter *l, char *err, size_t errlen);
/* Starts the thread (it connects on its own). -1 with err. */
int cluster_start(struct cluster *cl, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Stops the thread, unhooks the limiter. NULL: nothing. */
void cluster_free(struct cluster *cl);
/* Whether the shared state is reachable now (smtpgate_cluster_up). */
bool cluster_is_up(const struct cluster *cl);

#define CLUSTER_REFUSED_TTL_S (24 * 3600) /* PREFIX proxy:NAME, for the audit */
#define CLUSTER_REFUSED_EVERY_MS (60 * 1000)
#define CLUSTER_REFUSED_MAX 256 /* peers kept per node */

/* A connection to the PROXY listener `listener` was refused: address is
 * not in its proxy_from. Kept in Redis for `smtpgate audit` (a balancer
 * missing from proxy_from shows there), at most once per
 * CLUSTER_REFUSED_EVERY_MS per listener and address. Any thread; nothing
 * when down. */
void cluster_proxy_refused(struct cluster *cl, const char *listener, const char *address);

/* --- sending quotas (cluster_quota.c) ---------------------------------------
 * Messages per account per day are counted in Redis by every node (a
 * script per accepted message, its answer raising the local count), and
 * read at MAIL with a bounded wait; distinct recipients per account per
 * day are counted and decided by a script at RCPT, with the same wait;
 * holds are a shared set and a message on the channel. */

#define CLUSTER_QUOTA_WAIT_MS 300 /* a MAIL waits at most this for the count */
#define CLUSTER_QUOTA_TTL_S (25 * 3600)

struct loop;

/* What the channel and the answers tell sendquota, on the cluster thread. */
struct cluster_quota_hooks {
	/* messages: every node's count of user in the window */
	void (*count)(void *arg, const char *user, unsigned messages);
	void (*hold)(void *arg, const char *user);
	void (*unlock)(void *arg, const char *user);
};

/* Before cluster_start; hooks NULL: none. */
void cluster_set_quota_hooks(struct cluster *cl, const struct cluster_quota_hooks *h, void *arg);

/* status 0: messages and held are the shared state; -1: no answer in time
 * or Redis down (decide from the local count). */
typedef void cluster_quota_cb(void *arg, int status, unsigned messages, bool held);
/* Asks for user's shared count and hold at hour (time / 3600); cb runs on
 * reply_to's thread within wait_ms (plus a loop turn), exactly once. -1
 * when the cluster is down now (cb is not called). Any thread. */
int cluster_quota_fetch(struct cluster *cl, const char *user, unsigned hour, unsigned wait_ms,
    struct loop *reply_to, cluster_quota_cb *cb, void *arg) __attribute__((warn_unused_result));
/* status 0: over (rcpt is new and the distinct recipients of the day
 * reach the limit, or the account is held), distinct and held are the
 * shared state; -1: no answer in time or Redis down (decide locally). */
typedef void cluster_rcpt_cb(void *arg, int status, bool over, unsigned distinct, bool held);
/* At RCPT: counts rcpt (compared without case, kept hashed) among user's
 * recipients of the day at hour unless over limit (0: none); cb as for
 * cluster_quota_fetch. -1 when the cluster is down now. Any thread. */
int cluster_quota_rcpt(struct cluster *cl, const char *user, const char *rcpt, unsigned limit,
    unsigned hour, unsigned wait_ms, struct loop *reply_to, cluster_rcpt_cb *cb, void *arg)
    __attribute__((warn_unused_result));
/* A message of user was accepted at hour: counted in Redis (its answer
 * comes to the count hook). Any thread; nothing when down. */
void cluster_quota_count(struct cluster *cl, const char *user, unsigned hour);
/* user held, or its hold lifted, on every node. Any thread. */
void cluster_quota_hold(struct cluster *cl, const char *user);
void cluster_quota_unlock(struct cluster *cl, const char *user);

#endif
