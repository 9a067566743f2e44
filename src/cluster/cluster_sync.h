/*
 * cluster_sync: a blocking connection to the cluster's Redis for the
 * commands (`smtpgate ban -c` and `user unlock` with [cluster]), never for the server: the
 * shared bans listed, added and lifted as the nodes' scripts do it
 * (cluster_lua.h), so every node applies the change within a round trip.
 * Each call waits at most CLUSTER_SYNC_TIMEOUT_MS. `smtpgate audit` reads
 * what it checks through it too (cluster_sync_audit).
 */
#ifndef SG_CLUSTER_CLUSTER_SYNC_H
#define SG_CLUSTER_CLUSTER_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster_msg.h"
#include "policy/limiter.h"

#define CLUSTER_SYNC_TIMEOUT_MS 3000

struct conf;
struct cluster_sync;

/* Connects, AUTH, SELECT. NULL with err. */
struct cluster_sync *cluster_sync_open(const struct conf *c, char *err, size_t errlen);

/* What failed in cluster_sync_connect. */
enum cluster_sync_fail {
	CLUSTER_SYNC_FAIL_CONNECT, /* no connection, or no answer in time */
	CLUSTER_SYNC_FAIL_AUTH, /* AUTH refused, or a password needed and none given */
	CLUSTER_SYNC_FAIL_OTHER, /* SELECT refused (a DB out of range), ... */
};
/* cluster_sync_open that also says what failed (why) and checks with a
 * PING that the server takes commands. err never holds the password. */
struct cluster_sync *cluster_sync_connect(
    const struct conf *c, enum cluster_sync_fail *why, char *err, size_t errlen);

#define CLUSTER_SYNC_AUDIT_PREFIXES 8
#define CLUSTER_SYNC_AUDIT_REFUSED 256 /* CLUSTER_REFUSED_MAX */
#define CLUSTER_SYNC_AUDIT_SCANS 200 /* SCAN calls of COUNT 1000 at most */

/* What the audit reads from Redis about this node's [cluster]. */
struct cluster_sync_audit {
	bool clash; /* node is in PREFIX clash (two live nodes used it lately) */
	bool registered; /* PREFIX node:NAME exists: holder is its record */
	struct cluster_msg_node holder;
	unsigned ours; /* registrations under this key_prefix */
	unsigned others; /* smtpgate registrations under other prefixes */
	char prefixes[CLUSTER_SYNC_AUDIT_PREFIXES][128]; /* those prefixes */
	size_t nprefixes;
	bool scan_cut; /* the SCAN stopped at CLUSTER_SYNC_AUDIT_SCANS */
	char scan_error[160]; /* "": the SCAN ran; else Redis refused it (ours, others 0) */
	struct cluster_msg_refused refused[CLUSTER_SYNC_AUDIT_REFUSED]; /* PREFIX proxy:NAME */
	size_t nrefused;
};
/* Fills a for [cluster] node. 0, or -1 with err. */
int cluster_sync_audit(struct cluster_sync *cs, const char *node, struct cluster_sync_audit *a,
    char *err, size_t errlen) __attribute__((warn_unused_result));
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
