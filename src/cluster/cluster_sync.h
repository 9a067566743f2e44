/*
 * cluster_sync: a blocking connection to the cluster's Redis for the
 * commands (`smtpgate ban -c` and `user unlock` with [cluster]), never for the server: the
 * shared bans listed, added and lifted as the nodes' scripts do it
 * (cluster_lua.h), so every node applies the change within a round trip.
 * Each call waits at most CLUSTER_SYNC_TIMEOUT_MS.
 */
#ifndef SG_CLUSTER_CLUSTER_SYNC_H
#define SG_CLUSTER_CLUSTER_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/limiter.h"

#define CLUSTER_SYNC_TIMEOUT_MS 3000

struct conf;
struct cluster_sync;

/* Connects, AUTH, SELECT. NULL with err. */
struct cluster_sync *cluster_sync_open(const struct conf *c, char *err, size_t errlen);
void cluster_sync_close(struct cluster_sync *cs);
/* A manual ban of address (canonical, "192.0.2.0/24") for seconds; r gets
 * it as stored. 0, or -1 with err. */
int cluster_sync_ban_add(struct cluster_sync *cs, const char *address, unsigned seconds,
    int64_t now, struct limiter_ban *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* 1 lifted, 0 there was none, -1 with err. */
int cluster_sync_ban_del(struct cluster_sync *cs, const char *address, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The shared bans in force at now (all: remembered offences too), malloc'd;
 * NULL with err (or an empty list: *n_r 0 and a non-NULL result). */
struct limiter_ban *cluster_sync_ban_list(
    struct cluster_sync *cs, int64_t now, bool all, size_t *n_r, char *err, size_t errlen);

/* Lifts the sending-quota hold of user on every node and forgets its
 * shared count (as `POST /quota/unlock` on a node). 1 it was held, 0 not,
 * -1 with err. */
int cluster_sync_quota_unlock(struct cluster_sync *cs, const char *user, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
