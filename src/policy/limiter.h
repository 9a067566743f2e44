/*
 * limiter: the shared abuse-defence state of the server, used
 * from every loop thread at once: connection counts and rates, AUTH failure
 * counts per IP, per network and per account, bans with a growing TTL, and
 * the (account, client) pairs (and clients) that authenticated recently.
 *
 * Decisions take the session's immutable struct conf ([limits]) and a
 * wall-clock time in milliseconds (limiter_now_ms(), or any value in tests:
 * the clock is injected, nothing here reads it by itself).
 *
 * Addresses are kept as 16 bytes, IPv4 as ::ffff:a.b.c.d (RFC 4291
 * 2.5.5.2), prefixes in that space (an IPv4 /24 is 96 + 24).
 *
 * Structures and their bounds (memory is allocated once, in limiter_new,
 * and never grows):
 *
 *  counters   four set-associative hash tables (client IPs, networks,
 *             accounts, known-good (account, client) pairs and, in their
 *             own key space of that table, known-good clients), each split in
 *             LIMITER_SHARDS shards with one mutex each; a key picks a shard
 *             and an 8-way bucket in it by a keyed SipHash-2-4 (random key
 *             per process, so clients cannot aim at one bucket). A slot holds
 *             a 64-bit fingerprint, not the key: an account name of any length
 *             costs the same 32 bytes. Two keys share a counter only on a
 *             64-bit fingerprint collision (p < n^2 / 2^65: ~3e-8 with a
 *             million live keys).
 *             Failure counts decay exponentially (half-life
 *             LIMITER_FAIL_HALFLIFE_MS); connection rates are leaky buckets
 *             that drain connection_rate_per_ip per minute. A new key takes
 *             the least useful slot of its bucket: an empty one, else the one
 *             with the smallest decayed score, never one with open
 *             connections unless all eight have some. So counts are exact
 *             until a bucket overflows and then only ever UNDER-estimated,
 *             and a key whose score is above the seven others of its bucket
 *             is never evicted: churn of millions of one-shot IPs or names
 *             evicts each other, not a hot attacker.
 *             Default sizes (limiter_sizes): 65,536 IPs, 16,384 networks,
 *             32,768 accounts, 32,768 known-good pairs: 4.5 MiB.
 *  bans       an exact table of (network, prefix) entries with their expiry,
 *             offence count and reason, sharded and 8-way like the counters
 *             (default 16,384 entries, 40 bytes each). When a bucket is full
 *             the expired entry with the oldest offence goes first, else the
 *             ban that ends first. An expired ban stays as a remembered
 *             offence for LIMITER_OFFENCE_MEMORY_MS so the next ban doubles.
 *             A connect checks each prefix length in use (a bitmap), usually
 *             two lookups, and none at all while the table is empty.
 *
 * Thread safety: every function may be called from any thread; each takes
 * at most one shard mutex at a time (never nested) and the server-wide
 * connection count is an atomic. limiter_bans_save runs off the loops (the
 * persister thread, or a command).
 */
#ifndef SG_POLICY_LIMITER_H
#define SG_POLICY_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf;

#define LIMITER_SHARDS 64
#define LIMITER_FAIL_HALFLIFE_MS (60LL * 60 * 1000) /* failure counts halve each hour */
#define LIMITER_GOOD_TTL_MS (30LL * 24 * 3600 * 1000) /* "recently" authenticated */
#define LIMITER_OFFENCE_MEMORY_MS (7LL * 24 * 3600 * 1000) /* repeat offences */
#define LIMITER_BAN_MAX_S (24 * 3600) /* a grown ban is at most a day */
#define LIMITER_TARPIT_FIRST_MS 500 /* delay of the first 535, doubling */
#define LIMITER_TARPIT_MAX_MS 5000
#define LIMITER_ADDR_STRLEN 64 /* "ffff:...:ffff/128" and NUL */

struct limiter;

struct limiter_addr {
	unsigned char a[16]; /* IPv4 as ::ffff:a.b.c.d */
};

/* Slots of each table (rounded up to a multiple of LIMITER_SHARDS * 8);
 * 0 takes the default. */
struct limiter_sizes {
	size_t ips, nets, accounts, good, bans;
};

enum limiter_verdict {
	LIMITER_OK,
	LIMITER_TOO_MANY, /* connections, connections_per_ip or connection_rate_per_ip */
	LIMITER_BANNED,
};

enum limiter_reason {
	LIMITER_REASON_MANUAL, /* smtpgate ban add, or the admin API */
	LIMITER_REASON_AUTH_IP, /* auth_failures_per_ip */
	LIMITER_REASON_AUTH_NET, /* auth_failures_per_net */
};

/* A ban as listed and saved. prefix is in the address' own family (32 for
 * a single IPv4 address). */
struct limiter_ban {
	char address[LIMITER_ADDR_STRLEN]; /* "192.0.2.7" or "192.0.2.0/24" */
	int64_t until_ms; /* unix time */
	int64_t last_ms; /* last offence */
	unsigned offences;
	enum limiter_reason reason;
};

/* What limiter_auth_failed did. */
struct limiter_fail {
	bool banned; /* the client (or its network) is banned now */
	bool new_ban; /* this failure made the ban: log it */
	struct limiter_ban ban; /* the new ban */
	unsigned delay_ms; /* tarpit before the 535 (0 when banned) */
};

/* sizes may be NULL. */
struct limiter *limiter_new(const struct limiter_sizes *sizes);
void limiter_free(struct limiter *l);
/* Bytes allocated by l: fixed at limiter_new. */
size_t limiter_memory(const struct limiter *l);

int64_t limiter_now_ms(void);

/* sockaddr_in or sockaddr_in6 (a v4-mapped one is IPv4). -1 for others. */
int limiter_addr_from_sockaddr(const struct sockaddr *sa, struct limiter_addr *a_r)
    __attribute__((warn_unused_result));
/* "192.0.2.7", "2001:db8::1", "192.0.2.0/24", "[2001:db8::]/64": the
 * address with its host bits cleared and the prefix in the mapped space
 * (0..128). -1 on a syntax error. */
int limiter_addr_parse(const char *s, struct limiter_addr *a_r, unsigned *prefix_r)
    __attribute__((warn_unused_result));
/* The inverse: "/prefix" only when not a single address. */
void limiter_addr_format(const struct limiter_addr *a, unsigned prefix, char *out, size_t outlen);
bool limiter_addr_is_v4(const struct limiter_addr *a);
/* In [limits] allow: never banned, no per-IP or per-network limit. */
bool limiter_is_allowed(const struct conf *c, const struct limiter_addr *a);

/* --- connections ---------------------------------------------------------- */

/* A new connection: counts it (LIMITER_OK; call limiter_disconnect when it
 * ends) or refuses it (nothing to undo). Bans and per-IP limits do not
 * apply to allowlisted clients; `connections` applies to every one. */
enum limiter_verdict limiter_connect(
    struct limiter *l, const struct conf *c, const struct limiter_addr *a, int64_t now);
void limiter_disconnect(struct limiter *l, const struct limiter_addr *a);
/* Connections counted now, server-wide. */
unsigned limiter_connections(const struct limiter *l);

/* --- authentication ------------------------------------------------------ */

/* Whether a ban keeps the client out now, before its account is known:
 * a ban of its address or a manual ban, or an automatic network ban
 * (auth_failures_per_net) unless the client authenticated for some account
 * within LIMITER_GOOD_TTL_MS (IPv6: its /64). Allowlisted: never. until_r
 * (may be NULL) gets the end of the ban, 0 if none. limiter_connect decides
 * the same way. */
bool limiter_is_banned(struct limiter *l, const struct conf *c, const struct limiter_addr *a,
    int64_t now, int64_t *until_r);
/* Once the account is known (at AUTH, before any password is checked):
 * whether a ban keeps this (account, client) out. A client that passed an
 * automatic network ban may log in only to the accounts it is known-good
 * for; the others get the ban's reply. Allowlisted: never. */
bool limiter_auth_banned(struct limiter *l, const struct conf *c, const char *account, size_t len,
    const struct limiter_addr *a, int64_t now);
/* Per-account throttling: true when the account has failed
 * auth_failures_per_account times (decayed) and this client has not
 * authenticated for it within LIMITER_GOOD_TTL_MS (IPv6: its /64, since
 * privacy addresses rotate inside it). Allowlisted clients: never. The
 * account name is compared ASCII-case-insensitively; any length. */
bool limiter_auth_throttled(struct limiter *l, const struct conf *c, const char *account,
    size_t len, const struct limiter_addr *a, int64_t now);
/* A 535: counts it for the client, its network and the account (only the
 * account for allowlisted clients), bans the client or network past its
 * threshold, and says how long to hold the reply (r->banned as
 * limiter_auth_banned decides it). account may be empty. */
void limiter_auth_failed(struct limiter *l, const struct conf *c, const char *account, size_t len,
    const struct limiter_addr *a, int64_t now, struct limiter_fail *r);
/* A success: remembers (account, client), and the client, as known-good.
 * Resets no counter (an attacker holding one valid account must not clear
 * its failures). */
void limiter_auth_ok(
    struct limiter *l, const char *account, size_t len, const struct limiter_addr *a, int64_t now);

/* --- bans ----------------------------------------------------------------- */

/* Bans (a, prefix) for seconds from now (a manual ban: offences + 1, the
 * given length). 0, or -1 when the table has no room left for it. */
int limiter_ban_add(struct limiter *l, const struct limiter_addr *a, unsigned prefix,
    unsigned seconds, enum limiter_reason reason, int64_t now) __attribute__((warn_unused_result));
/* Lifts a ban and forgets its offences. 0, or -1 when there was none. */
int limiter_ban_del(struct limiter *l, const struct limiter_addr *a, unsigned prefix)
    __attribute__((warn_unused_result));
/* The bans in force at now (all entries, remembered offences too, with
 * all = true), malloc'd, sorted by address; *n_r entries. */
struct limiter_ban *limiter_ban_list(struct limiter *l, int64_t now, bool all, size_t *n_r);
/* How many bans are in force at now (a scan of the table: for metrics). */
size_t limiter_bans_active(struct limiter *l, int64_t now);
/* Bumped by every change of the ban table (the persister's cue). */
uint64_t limiter_ban_generation(const struct limiter *l);
const char *limiter_reason_name(enum limiter_reason r);

/* The ban table as JSON: {"version":1,"bans":[{"address","until","last",
 * "offences","reason"}...]} (unix seconds), malloc'd. */
char *limiter_bans_json(struct limiter *l, int64_t now, bool all);
/* Writes the state file (fs_write_atomic, fsync): every entry, remembered
 * offences too. */
int limiter_bans_save(struct limiter *l, const char *path, int64_t now)
    __attribute__((warn_unused_result));
/* Loads a state file written by limiter_bans_save; a missing file is an
 * empty one. Entries already over their memory are dropped. -1 with a
 * message in err on a damaged file. */
int limiter_bans_load(struct limiter *l, const char *path, int64_t now, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* --- state shared with other nodes (cluster/) --------------------------------- */

/* Told of what this node's sessions and operator do, on the calling thread
 * (a loop thread, or the admin thread): each must return at once (the
 * cluster posts a copy of what it needs to its own thread). c, account and
 * a are valid during the call only. allowed: the client is in [limits]
 * allow (only the account counts). */
struct limiter_hooks {
	void (*auth_failed)(void *arg, const struct conf *c, const char *account, size_t len,
	    const struct limiter_addr *a, bool allowed, int64_t now);
	void (*auth_ok)(
	    void *arg, const char *account, size_t len, const struct limiter_addr *a, int64_t now);
	/* limiter_ban_add and limiter_ban_del (the operator's) */
	void (*ban_added)(void *arg, const struct limiter_ban *b, int64_t now);
	void (*ban_deleted)(void *arg, const char *address, int64_t now);
};

/* Before the loops start; hooks NULL: none. */
void limiter_set_hooks(struct limiter *l, const struct limiter_hooks *hooks, void *arg);
/* Stores b as given (a ban shared by another node): no hook, no doubling.
 * 0, or -1 when the address does not parse. */
int limiter_ban_set(struct limiter *l, const struct limiter_ban *b)
    __attribute__((warn_unused_result));
/* Lifts the ban of address ("192.0.2.0/24") without a hook. 0, or -1 when
 * there was none (nothing to do: callers may ignore it). */
int limiter_ban_forget(struct limiter *l, const char *address);
/* Raises the account's decayed failure count to at least fails (the count
 * of every node together), so that limiter_auth_throttled sees it. */
void limiter_account_raise(
    struct limiter *l, const char *account, size_t len, double fails, int64_t now);
/* Remembers (account, client) and the client as known-good at stamp (a
 * success on another node): as limiter_auth_ok without a hook. */
void limiter_good_set(struct limiter *l, const char *account, size_t len,
    const struct limiter_addr *a, int64_t stamp);

/* A thread that saves the table to path within about a second of each
 * change (never on a loop thread: the write fsyncs), and once more at
 * limiter_persist_stop. */
void limiter_persist_start(struct limiter *l, const char *path);
void limiter_persist_stop(struct limiter *l);

#endif
