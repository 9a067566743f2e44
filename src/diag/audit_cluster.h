/*
 * audit_cluster: the audit of [cluster] (doc/cluster.md), against the
 * cluster's Redis itself: reachable, the password taken, this node's name
 * held by no other live node, the key_prefix shared with the other nodes
 * (none registered under ours while some are under another prefix), and
 * no balancer refused lately for want of a place in a listener's
 * proxy_from (the nodes note the peers they refused in Redis). Connects
 * once; every command waits at most CLUSTER_SYNC_TIMEOUT_MS. Reads only.
 */
#ifndef SG_DIAG_AUDIT_CLUSTER_H
#define SG_DIAG_AUDIT_CLUSTER_H

#include <time.h>

#include "explain/finding.h"

struct conf;

#define AUDIT_CLUSTER_REFUSED_S (24 * 3600) /* refusals older than this are not reported */

void audit_cluster(const struct conf *c, time_t now, struct findings *f);

#endif
