/*
 * cluster_msg: the pure parts of the state shared in Redis: key names, the
 * text of a ban record and of the messages on the cluster's channel, the
 * hex form of account names in keys, and the decay of failure counts. No
 * I/O (unit-tested, tests/unit/test_cluster.c).
 *
 * Keys (PREFIX is [cluster] key_prefix, "smtpgate:"):
 *   PREFIX fail:ip:ADDR     hash f (decayed count), t (ms of f)
 *   PREFIX fail:net:ADDR/N  the same for a network
 *   PREFIX fail:acct:HEX    the same for an account (lower-cased, hex)
 *   PREFIX bans             hash ADDR[/N] -> "UNTIL LAST OFFENCES REASON"
 *   PREFIX good             hash "HEX ADDR" -> ms of the last success
 *   PREFIX node:NAME        a live node (expires): "ID HOST CONFIG", ID
 *                           "PID-RANDOM" (this instance), HOST its host
 *                           name, CONFIG the real path of its configuration
 *   PREFIX clash            set of node names two live nodes used
 *   PREFIX quota:HEX        hash HOUR -> messages of the account accepted
 *                           in that hour (time / 3600), every node's
 *   PREFIX proxy:NAME       hash "LISTENER ADDR" -> time (s) of the last
 *                           connection node NAME refused on a PROXY
 *                           listener because ADDR is not in proxy_from
 *                           (the audit's evidence; expires after a day)
 *   PREFIX holds            set of HEX: accounts held for their quota
 *   PREFIX events           the channel (Pub/Sub is not per database:
 *                           the prefix tells clusters apart)
 * Messages on the channel, one per PUBLISH, words split by one space:
 *   ban ADDR UNTIL LAST OFFENCES REASON   store the ban as given
 *   unban ADDR                             lift it
 *   good HEX ADDR STAMP                    a known-good (account, client)
 *   acct HEX FAILS STAMP                   an account's count of every node
 *   hold HEX                               an account held for its sending quota
 *   unlock HEX                             its hold lifted (`user unlock`)
 */
#ifndef SG_CLUSTER_CLUSTER_MSG_H
#define SG_CLUSTER_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/limiter.h"

#define CLUSTER_MSG_KEY_MAX 1024
#define CLUSTER_MSG_ACCOUNT_MAX 255 /* longer names are cut (and still distinct enough) */
#define CLUSTER_MSG_HEX_MAX (2 * CLUSTER_MSG_ACCOUNT_MAX + 1)
#define CLUSTER_MSG_BAN_MAX 128 /* "UNTIL LAST OFFENCES REASON" */

/* account[0..len) lower-cased (ASCII) in hex, NUL-terminated; at most
 * CLUSTER_MSG_ACCOUNT_MAX bytes of it. out has CLUSTER_MSG_HEX_MAX bytes. */
void cluster_msg_hex(const char *account, size_t len, char *out);
/* The inverse; -1 on a bad digit or odd length. out has CLUSTER_MSG_ACCOUNT_MAX + 1 bytes. */
int cluster_msg_unhex(const char *hex, char *out, size_t *len_r)
    __attribute__((warn_unused_result));

#define CLUSTER_MSG_RCPT_HEX 33 /* 16 bytes of SHA-256 in hex, and the NUL */
/* The form of a recipient address kept in Redis: the first half of the
 * SHA-256 of the address lower-cased (ASCII), in hex, so that Redis holds
 * no address in clear. */
void cluster_msg_rcpt_hash(const char *addr, char out[CLUSTER_MSG_RCPT_HEX]);

/* prefix + a + b into out. -1 when it does not fit. */
int cluster_msg_key(char *out, size_t outlen, const char *prefix, const char *a, const char *b)
    __attribute__((warn_unused_result));

/* fails decayed from stamp to now with the half-life (ms); never grows. */
double cluster_msg_decay(double fails, int64_t stamp, int64_t now, int64_t halflife);

/* The ban record "UNTIL LAST OFFENCES REASON" (ms, ms, count, reason name). */
void cluster_msg_ban_format(const struct limiter_ban *b, char *out, size_t outlen);
/* address and record into b. -1 when the record is not one. */
int cluster_msg_ban_parse(const char *address, const char *rec, struct limiter_ban *b)
    __attribute__((warn_unused_result));

/* A node's registration (PREFIX node:NAME). */
#define CLUSTER_MSG_NODE_MAX 832
struct cluster_msg_node {
	char id[40]; /* "PID-RANDOM" */
	long pid;
	char host[256]; /* "" in a record of an older node */
	char path[512]; /* the configuration, "" likewise */
};

/* "ID HOST PATH" into out (HOST without spaces; PATH cut to fit). */
void cluster_msg_node_format(
    const char *id, const char *host, const char *path, char *out, size_t outlen);
/* -1 when rec is not a node's registration. */
int cluster_msg_node_parse(const char *rec, struct cluster_msg_node *n)
    __attribute__((warn_unused_result));

/* A refused PROXY peer (PREFIX proxy:NAME): field "LISTENER ADDR", value
 * the time in seconds. */
struct cluster_msg_refused {
	char listener[128];
	char address[64];
	int64_t last_s;
};
int cluster_msg_refused_parse(const char *field, const char *value, struct cluster_msg_refused *r)
    __attribute__((warn_unused_result));

enum cluster_msg_type {
	CLUSTER_MSG_BAN,
	CLUSTER_MSG_UNBAN,
	CLUSTER_MSG_GOOD,
	CLUSTER_MSG_ACCT,
	CLUSTER_MSG_HOLD,
	CLUSTER_MSG_UNLOCK,
};

/* One message of the channel, parsed. */
struct cluster_msg {
	enum cluster_msg_type type;
	struct limiter_ban ban; /* BAN; UNBAN: address only */
	char account[CLUSTER_MSG_ACCOUNT_MAX + 1]; /* GOOD, ACCT, HOLD, UNLOCK: unhexed */
	size_t account_len;
	struct limiter_addr client; /* GOOD */
	double fails; /* ACCT */
	int64_t stamp; /* GOOD, ACCT */
};

/* Parses a message of len bytes (not NUL-terminated). -1 when it is not one
 * of ours (ignored: a newer node may send more kinds). */
int cluster_msg_parse(const char *s, size_t len, struct cluster_msg *m)
    __attribute__((warn_unused_result));

#endif
