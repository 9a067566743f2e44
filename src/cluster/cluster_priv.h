/*
 * cluster_priv: struct cluster, shared by cluster.c (the thread, the two
 * connections, up and down) and cluster_state.c (commands, the shared state
 * into the local limiter, the limiter's hooks). No other module includes it.
 *
 * Invariants: cl->ac and cl->sub are NULL or live hiredis contexts; a
 * context that hiredis is freeing itself (its disconnect or failed-connect
 * callback) is set to NULL there, and every other teardown goes through
 * cluster_down on the timer, never inside a reply callback. cl->up is true
 * only while both contexts are connected, the subscription is confirmed and
 * no command has been outstanding for CLUSTER_TIMEOUT_MS.
 */
#ifndef SG_CLUSTER_CLUSTER_PRIV_H
#define SG_CLUSTER_CLUSTER_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster/cluster.h"
#include "cluster/cluster_msg.h"
#include "conf/conf.h"

#define CLUSTER_REFUSED_SLOTS 32

struct limiter;
struct loop;
struct loop_timer;

struct cluster {
	struct limiter *lim;
	struct loop *loop;
	pthread_t thread;
	bool started;

	/* [cluster], copied: the configuration may be reloaded meanwhile */
	struct conf_redis_url url;
	char *redis; /* as written, for events */
	char *password;
	char *prefix, *node;
	char chan[CLUSTER_MSG_KEY_MAX], bans[CLUSTER_MSG_KEY_MAX], good[CLUSTER_MSG_KEY_MAX];
	char id[40]; /* this instance, for the node registry */
	char record[CLUSTER_MSG_NODE_MAX]; /* its registration (cluster_msg_node_format) */
	/* refused PROXY peers sent lately, so a flood sends one a minute */
	pthread_mutex_t refused_mu;
	struct cluster_refused {
		uint64_t hash;
		int64_t sent_ms;
	} refused[CLUSTER_REFUSED_SLOTS];
	char holds[CLUSTER_MSG_KEY_MAX];
	const struct cluster_quota_hooks *qhooks;
	void *qarg;
	bool stopping; /* no more posts to other loops */
	unsigned char ticket_name[16]; /* of the current shared ticket key */
	int64_t next_ticket_ms;

	redisAsyncContext *ac, *sub;
	bool up; /* atomic */
	bool subscribed, pinged, broken;
	bool logged_down; /* the down event of this outage is out */
	int64_t oldest_ms; /* send time of the oldest command still unanswered; 0: none */
	unsigned outstanding;
	int64_t connect_ms; /* when the current attempt started; 0: none */
	long backoff_ms;
	int64_t next_try_ms, next_resync_ms, next_node_ms;
	char why[160]; /* why it went down, for the event */
	struct loop_timer *tick;
};

/* cluster.c */
int64_t cluster_mono_ms(void);

/* cluster_state.c */

/* Sends argv on the command connection; done (may be NULL) gets the
 * reply, NULL when the connection went away. 0, or -1 (not sent: down). */
int cluster_send(struct cluster *cl, int argc, const char **argv, const size_t *lens,
    void (*done)(struct cluster *, redisReply *, void *), void *arg);
/* A message of the channel, into the local limiter. */
void cluster_apply(struct cluster *cl, const struct cluster_msg *m);
/* Reads every shared ban and known-good pair again. */
void cluster_resync(struct cluster *cl);
/* Registers this node (cluster_lua_node). */
void cluster_register(struct cluster *cl);
/* A hold or unlock message, or the resync's holds, to sendquota. */
void cluster_quota_apply(struct cluster *cl, const struct cluster_msg *m);
/* Reads every held account again (cluster_resync). */
void cluster_quota_resync(struct cluster *cl);
/* cluster_ticket.c: reads (and makes, first) the ticket keys of now. */
void cluster_ticket_refresh(struct cluster *cl);
struct tls_ticket_key;
/* A key as Redis holds it (hex) into k; -1 when it is not one. */
int cluster_ticket_parse(const char *hex, size_t len, struct tls_ticket_key *k)
    __attribute__((warn_unused_result));
/* The limiter's hooks (policy/limiter.h), arg the cluster. */
extern const struct limiter_hooks cluster_hooks;

#endif
