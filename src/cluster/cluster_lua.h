/*
 * cluster_lua: the scripts that change the shared state in Redis, each run
 * with EVAL so that a read, its decision and its write are one atomic step
 * on the Redis server (two nodes counting the same client at once cannot
 * both miss, or both make, the ban). Their keys and arguments are listed
 * with each; key names are cluster_msg.h's.
 */
#ifndef SG_CLUSTER_CLUSTER_LUA_H
#define SG_CLUSTER_CLUSTER_LUA_H

/* A counted AUTH failure. KEYS: ip counter, net counter, account counter,
 * bans hash. ARGV: now ms, half-life ms, auth_failures_per_ip, _per_net,
 * _per_account (0: none), ip field, net field, ban_time s, ban max s,
 * offence memory ms, channel, flags ("a": allowlisted, count the account
 * only; "-": no account), account hex. Bans the client or network past its
 * threshold (doubling per remembered offence, as limiter_bans_put) and
 * publishes the ban; publishes the account's count once it reaches its
 * threshold. Returns {ip count, net count, account count} as strings. */
extern const char cluster_lua_fail[];

/* Stores a ban record as given and publishes it. KEYS: bans hash. ARGV:
 * field, record, channel. */
extern const char cluster_lua_ban_put[];

/* A manual ban (smtpgate ban add). KEYS: bans hash. ARGV: field, now ms,
 * seconds, offence memory ms, channel. Returns the record. */
extern const char cluster_lua_ban_add[];

/* Lifts a ban. KEYS: bans hash. ARGV: field, channel. Returns 1, or 0
 * when there was none in force. */
extern const char cluster_lua_unban[];

/* A known-good (account, client). KEYS: good hash. ARGV: "HEX ADDR",
 * stamp ms, channel. */
extern const char cluster_lua_good[];

/* Registers a node. KEYS: node key, clash set. ARGV: instance id, ttl s,
 * node name. Records the name in the clash set when another live instance
 * holds it. */
extern const char cluster_lua_node[];
/* KEYS[1] PREFIX proxy:NAME; ARGV: field "LISTENER ADDR", time (s), TTL
 * (s), the most fields kept (a scan of many addresses adds no more). */
extern const char cluster_lua_proxy_refused[];

/* The TLS ticket keys. KEYS: this period's key, the two before. ARGV: a
 * new key (hex) for this period if none is there yet, expiry s. Returns
 * the three (nil for a missing one), this period's first. */
extern const char cluster_lua_ticket[];

/* An account's sending quota as every node counted it. KEYS: quota hash,
 * holds set. ARGV: hour now, account hex. Returns {messages in the 24
 * hours ending with this one, 1 when held}; prunes older hours. */
extern const char cluster_lua_quota_get[];

/* A message of an account accepted. KEYS: quota hash. ARGV: hour now,
 * expiry s. Returns the messages in the window, this one included. */
extern const char cluster_lua_quota_count[];

/* An account held for its quota. KEYS: holds set. ARGV: account hex,
 * channel. Returns 1 when it was not held yet. */
extern const char cluster_lua_quota_hold[];

/* The hold lifted and the counts forgotten (`user unlock`). KEYS: holds
 * set, quota hash, recipients set. ARGV: account hex, channel. Returns 1
 * when it was held. */
extern const char cluster_lua_quota_unlock[];
/* A recipient of an account at RCPT. KEYS: recipients sorted set, holds
 * set. ARGV: hour now, recipient hash, limit (0: none), ttl, account hex.
 * Returns {over, distinct recipients of the day, held}. */
extern const char cluster_lua_quota_rcpt[];

#endif
