/*
 * limiter_priv: the layout of struct limiter, shared by limiter.c (keyed
 * hashing, the counter tables, addresses, connections, authentication) and
 * limiter_bans.c (the ban table, its state file and persister thread). No
 * other module includes it.
 *
 * Invariants: a table slot is empty when its key is 0 (keys are forced
 * odd), a ban slot when used is 0; a shard mutex guards exactly its own
 * slots; no function holds two mutexes at once. conns, generation, nbans
 * and prefixes are atomics.
 */
#ifndef SG_POLICY_LIMITER_PRIV_H
#define SG_POLICY_LIMITER_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/limiter.h"

#define LIMITER_WAYS 8
#define LIMITER_SHARD_BITS 6 /* LIMITER_SHARDS == 1 << LIMITER_SHARD_BITS */

_Static_assert(LIMITER_SHARDS == 1 << LIMITER_SHARD_BITS, "shard bits");

struct limiter_entry {
	uint64_t key; /* 0 = empty */
	int64_t stamp; /* ms: last decay (counters) or last success (good) */
	float fails; /* decayed failure count */
	float rate; /* leaky bucket of new connections */
	uint32_t conns; /* open connections (IP table) */
	uint32_t pad;
};

struct limiter_shard {
	pthread_mutex_t mu;
} __attribute__((aligned(64))); /* one cache line each: no false sharing */

struct limiter_table {
	struct limiter_shard shards[LIMITER_SHARDS];
	/* shard s, bucket b: slots[(s * nbuckets + b) * LIMITER_WAYS] */
	struct limiter_entry *slots;
	size_t nbuckets; /* per shard */
	bool by_age; /* evict the oldest stamp (known-good pairs) */
};

struct limiter_bans_entry {
	unsigned char addr[16];
	uint8_t prefix; /* 0..128, mapped space */
	uint8_t used;
	uint8_t reason;
	uint8_t pad;
	uint32_t offences;
	int64_t until; /* ms */
	int64_t last; /* ms */
};

struct limiter_bans_table {
	struct limiter_shard shards[LIMITER_SHARDS];
	struct limiter_bans_entry *slots;
	size_t nbuckets;
};

struct limiter {
	uint64_t k0, k1; /* SipHash key */
	struct limiter_table ips, nets, accounts, good;
	struct limiter_bans_table bans;
	unsigned conns; /* atomic: server-wide */
	uint64_t generation; /* atomic: ban table changes */
	long nbans; /* atomic: used ban slots */
	uint64_t prefixes[3]; /* atomic bitmap: ban prefix lengths in use (0..128) */
	size_t memory;

	const struct limiter_hooks *hooks; /* NULL: a single node */
	void *hooks_arg;

	/* the persister thread (limiter_bans.c) */
	pthread_mutex_t pmu;
	pthread_cond_t pcond;
	pthread_t pthread;
	bool prunning, pstop;
	uint64_t psaved; /* generation at limiter_persist_start */
	char *ppath;
};

static inline struct limiter_shard *
limiter_shard_of(struct limiter_shard *shards, uint64_t h)
{
	return &shards[h >> (64 - LIMITER_SHARD_BITS)];
}

static inline size_t
limiter_bucket_of(size_t nbuckets, uint64_t h)
{
	return (size_t)(h >> (64 - LIMITER_SHARD_BITS)) * nbuckets +
	    (size_t)(h & 0xffffffffu) % nbuckets;
}

/* limiter.c */

/* Keyed SipHash-2-4 of p; salt separates the tables' key spaces; fold:
 * ASCII letters hash as lower case (account names). Never 0. */
uint64_t limiter_siphash(
    const struct limiter *l, uint64_t salt, const void *p, size_t len, bool fold);
/* Clears the host bits, those past prefix (mapped space, 0..128). */
void limiter_mask(struct limiter_addr *a, unsigned prefix);

/* limiter_bans.c */

/* Stores or updates the ban of (masked, prefix). seconds == 0: the grown
 * length from base_s (doubling per remembered offence, at most
 * LIMITER_BAN_MAX_S). r (may be NULL) gets the ban as listed. */
int limiter_bans_put(struct limiter *l, const struct limiter_addr *masked, unsigned prefix,
    unsigned seconds, unsigned base_s, enum limiter_reason reason, int64_t now,
    struct limiter_ban *r);
/* Whether a ban in force at now covers a (any prefix length in use);
 * until_r (may be NULL) gets its end. */
bool limiter_bans_lookup(
    struct limiter *l, const struct limiter_addr *a, int64_t now, int64_t *until_r);

/* The kinds of ban covering an address (limiter_bans_kinds). A known-good
 * client passes only an automatic network ban: the other kinds name this
 * very address, or are the operator's own decision. */
#define LIMITER_BANS_HARD 1u /* a ban of the address itself, or any manual ban */
#define LIMITER_BANS_NET 2u /* an auth_failures_per_net ban of a network */

/* LIMITER_BANS_* of the bans in force at now that cover a (0: none);
 * until_r (may be NULL) gets the latest end among them. */
unsigned limiter_bans_kinds(
    struct limiter *l, const struct limiter_addr *a, int64_t now, int64_t *until_r);

#endif
