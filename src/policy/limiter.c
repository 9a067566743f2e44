/*
 * limiter: connection limits, AUTH failure counts and known-good
 * (account, client) pairs, shared by all loop threads (see limiter.h for
 * the structures and their error bounds); the keyed hash, the counter
 * tables and addresses. The ban table, its state file and the persister
 * are in limiter_bans.c; limiter_priv.h holds the layout both use.
 *
 * Invariants: a table slot is empty when its key is 0 (keys are forced
 * odd); a shard mutex guards exactly its own slots; no function holds two
 * mutexes at once, so there is no lock order to get wrong. The server-wide
 * connection count is an atomic, the ban generation too.
 */
#include "policy/limiter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "conf/conf.h"
#include "lib/xalloc.h"
#include "policy/limiter_priv.h"

#define LIMITER_DEFAULT_IPS 65536
#define LIMITER_DEFAULT_NETS 16384
#define LIMITER_DEFAULT_ACCOUNTS 32768
#define LIMITER_DEFAULT_GOOD 32768
#define LIMITER_DEFAULT_BANS 16384

/* --- SipHash-2-4 (Aumasson, Bernstein), 64-bit output ------------------ */

#define LIMITER_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define LIMITER_SIPROUND                                                                           \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = LIMITER_ROTL(v1, 13);                                                         \
		v1 ^= v0;                                                                          \
		v0 = LIMITER_ROTL(v0, 32);                                                         \
		v2 += v3;                                                                          \
		v3 = LIMITER_ROTL(v3, 16);                                                         \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = LIMITER_ROTL(v3, 21);                                                         \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = LIMITER_ROTL(v1, 17);                                                         \
		v1 ^= v2;                                                                          \
		v2 = LIMITER_ROTL(v2, 32);                                                         \
	} while (0)

static unsigned char
limiter_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* fold: ASCII letters hash as lower case (account names). */
uint64_t
limiter_siphash(const struct limiter *l, uint64_t salt, const void *p, size_t len, bool fold)
{
	const unsigned char *in = p;
	uint64_t v0 = 0x736f6d6570736575ULL ^ l->k0, v1 = 0x646f72616e646f6dULL ^ l->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ l->k0, v3 = 0x7465646279746573ULL ^ l->k1;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, end = len - len % 8;

	/* the salt separates the tables' key spaces */
	v3 ^= salt;
	LIMITER_SIPROUND;
	LIMITER_SIPROUND;
	v0 ^= salt;
	for (i = 0; i < end; i += 8) {
		m = 0;
		for (int j = 0; j < 8; j++)
			m |= (uint64_t)(fold ? limiter_lower(in[i + j]) : in[i + j]) << (8 * j);
		v3 ^= m;
		LIMITER_SIPROUND;
		LIMITER_SIPROUND;
		v0 ^= m;
	}
	for (int j = 0; i + (size_t)j < len; j++)
		b |= (uint64_t)(fold ? limiter_lower(in[i + j]) : in[i + j]) << (8 * j);
	v3 ^= b;
	LIMITER_SIPROUND;
	LIMITER_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	LIMITER_SIPROUND;
	LIMITER_SIPROUND;
	LIMITER_SIPROUND;
	LIMITER_SIPROUND;
	return (v0 ^ v1 ^ v2 ^ v3) | 1; /* never 0: 0 marks an empty slot */
}

/* --- time and decay -------------------------------------------------------- */

int64_t
limiter_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 2^-x for x >= 0 without libm: whole halvings, then a Taylor polynomial of
 * e^(-r ln 2) on the fraction (error below 2e-4). */
static float
limiter_exp2_neg(double x)
{
	double r, f = 1.0;

	if (x >= 64)
		return 0;
	for (; x >= 1; x -= 1)
		f *= 0.5;
	r = x * 0.6931471805599453;
	f *= 1 - r + r * r / 2 - r * r * r / 6 + r * r * r * r / 24 - r * r * r * r * r / 120;
	return (float)f;
}

static float
limiter_decayed_fails(const struct limiter_entry *e, int64_t now)
{
	int64_t dt = now - e->stamp;

	if (dt <= 0 || e->fails == 0)
		return e->fails;
	return e->fails * limiter_exp2_neg((double)dt / (double)LIMITER_FAIL_HALFLIFE_MS);
}

/* Brings the counters of e to now. rate_per_min drains the leaky bucket. */
static void
limiter_decay(struct limiter_entry *e, unsigned rate_per_min, int64_t now)
{
	int64_t dt = now - e->stamp;

	if (dt <= 0)
		return; /* the clock went back: keep the counts */
	e->fails = limiter_decayed_fails(e, now);
	if (e->fails < 0.01f)
		e->fails = 0;
	if (rate_per_min > 0) {
		double drain = (double)dt * rate_per_min / 60000.0;

		e->rate = drain >= e->rate ? 0 : (float)(e->rate - drain);
	}
	e->stamp = now;
}

/* --- counter tables -------------------------------------------------------- */

static size_t
limiter_round(size_t n, size_t def)
{
	size_t unit = LIMITER_SHARDS * LIMITER_WAYS;

	if (n == 0)
		n = def;
	return (n + unit - 1) / unit * unit;
}

static void
limiter_table_init(struct limiter *l, struct limiter_table *t, size_t slots, bool by_age)
{
	t->nbuckets = slots / LIMITER_SHARDS / LIMITER_WAYS;
	t->slots = xcalloc(slots, sizeof(*t->slots));
	t->by_age = by_age;
	for (size_t i = 0; i < LIMITER_SHARDS; i++)
		pthread_mutex_init(&t->shards[i].mu, NULL);
	l->memory += slots * sizeof(*t->slots);
}

static void
limiter_table_free(struct limiter_table *t)
{
	for (size_t i = 0; i < LIMITER_SHARDS; i++)
		pthread_mutex_destroy(&t->shards[i].mu);
	free(t->slots);
}

/* How much a slot is worth keeping (the smallest is evicted). */
static double
limiter_score(const struct limiter_table *t, const struct limiter_entry *e, int64_t now)
{
	if (t->by_age)
		return (double)e->stamp;
	if (e->conns > 0)
		return 1e30;
	return (double)limiter_decayed_fails(e, now) + (double)e->rate;
}

/* The slot of key h, created (in place of the least useful one) when
 * create; NULL otherwise when absent. The caller holds the shard. */
static struct limiter_entry *
limiter_find(struct limiter_table *t, uint64_t h, bool create, int64_t now)
{
	struct limiter_entry *b = &t->slots[limiter_bucket_of(t->nbuckets, h) * LIMITER_WAYS],
	                     *victim = NULL;
	double vscore = 0;

	for (int i = 0; i < LIMITER_WAYS; i++) {
		if (b[i].key == h)
			return &b[i];
	}
	if (!create)
		return NULL;
	for (int i = 0; i < LIMITER_WAYS; i++) {
		double sc;

		if (b[i].key == 0) {
			victim = &b[i];
			break;
		}
		sc = limiter_score(t, &b[i], now);
		if (victim == NULL || sc < vscore) {
			victim = &b[i];
			vscore = sc;
		}
	}
	memset(victim, 0, sizeof(*victim));
	victim->key = h;
	victim->stamp = now;
	return victim;
}

/* --- addresses --------------------------------------------------------------- */

static const unsigned char limiter_v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool
limiter_addr_is_v4(const struct limiter_addr *a)
{
	return memcmp(a->a, limiter_v4_prefix, 12) == 0;
}

int
limiter_addr_from_sockaddr(const struct sockaddr *sa, struct limiter_addr *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	if (sa->sa_family == AF_INET) {
		memcpy(a_r->a, limiter_v4_prefix, 12);
		memcpy(a_r->a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(a_r->a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

void
limiter_mask(struct limiter_addr *a, unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? prefix - i * 8 : 0;

		a->a[i] &= (unsigned char)(0xff00u >> keep);
	}
}

int
limiter_addr_parse(const char *s, struct limiter_addr *a_r, unsigned *prefix_r)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long p;
	char *end;
	bool v4;

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(a_r, 0, sizeof(*a_r));
	if (inet_pton(AF_INET, host, a_r->a + 12) == 1) {
		memcpy(a_r->a, limiter_v4_prefix, 12);
		v4 = true;
	} else if (inet_pton(AF_INET6, host, a_r->a) == 1) {
		v4 = false;
	} else {
		return -1;
	}
	p = v4 ? 32 : 128;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		errno = 0;
		p = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || p > (v4 ? 32u : 128u))
			return -1;
	}
	*prefix_r = (unsigned)p + (v4 ? 96 : 0);
	limiter_mask(a_r, *prefix_r);
	return 0;
}

void
limiter_addr_format(const struct limiter_addr *a, unsigned prefix, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];
	bool v4 = limiter_addr_is_v4(a) && prefix >= 96;
	unsigned p = v4 ? prefix - 96 : prefix;

	if (v4)
		inet_ntop(AF_INET, a->a + 12, host, sizeof(host));
	else
		inet_ntop(AF_INET6, a->a, host, sizeof(host));
	if (p == (v4 ? 32u : 128u))
		snprintf(out, outlen, "%s", host);
	else
		snprintf(out, outlen, "%s/%u", host, p);
}

bool
limiter_is_allowed(const struct conf *c, const struct limiter_addr *a)
{
	bool v4 = limiter_addr_is_v4(a);

	for (size_t i = 0; i < c->nallow; i++) {
		const struct conf_cidr *n = &c->allow[i];

		if (n->family == AF_INET && v4 && conf_cidr_contains(n, AF_INET, a->a + 12))
			return true;
		if (n->family == AF_INET6 && conf_cidr_contains(n, AF_INET6, a->a))
			return true;
	}
	return false;
}

static unsigned
limiter_net_prefix(const struct conf *c, const struct limiter_addr *a)
{
	return limiter_addr_is_v4(a) ? 96 + c->net_prefix_v4 : c->net_prefix_v6;
}

/* --- lifecycle ------------------------------------------------------------- */

struct limiter *
limiter_new(const struct limiter_sizes *sizes)
{
	struct limiter *l = xcalloc(1, sizeof(*l));
	struct limiter_sizes none = {0, 0, 0, 0, 0};
	size_t nbans;

	if (sizes == NULL)
		sizes = &none;
	if (getrandom(&l->k0, sizeof(l->k0), 0) != sizeof(l->k0) ||
	    getrandom(&l->k1, sizeof(l->k1), 0) != sizeof(l->k1)) {
		/* a predictable key only lets clients aim at buckets */
		l->k0 = (uint64_t)limiter_now_ms() * 0x9e3779b97f4a7c15ULL;
		l->k1 = (uint64_t)(uintptr_t)l * 0xbf58476d1ce4e5b9ULL;
	}
	l->memory = sizeof(*l);
	limiter_table_init(l, &l->ips, limiter_round(sizes->ips, LIMITER_DEFAULT_IPS), false);
	limiter_table_init(l, &l->nets, limiter_round(sizes->nets, LIMITER_DEFAULT_NETS), false);
	limiter_table_init(
	    l, &l->accounts, limiter_round(sizes->accounts, LIMITER_DEFAULT_ACCOUNTS), false);
	limiter_table_init(l, &l->good, limiter_round(sizes->good, LIMITER_DEFAULT_GOOD), true);
	nbans = limiter_round(sizes->bans, LIMITER_DEFAULT_BANS);
	l->bans.nbuckets = nbans / LIMITER_SHARDS / LIMITER_WAYS;
	l->bans.slots = xcalloc(nbans, sizeof(*l->bans.slots));
	for (size_t i = 0; i < LIMITER_SHARDS; i++)
		pthread_mutex_init(&l->bans.shards[i].mu, NULL);
	l->memory += nbans * sizeof(*l->bans.slots);
	pthread_mutex_init(&l->pmu, NULL);
	pthread_cond_init(&l->pcond, NULL);
	return l;
}

void
limiter_free(struct limiter *l)
{
	if (l == NULL)
		return;
	limiter_persist_stop(l);
	limiter_table_free(&l->ips);
	limiter_table_free(&l->nets);
	limiter_table_free(&l->accounts);
	limiter_table_free(&l->good);
	for (size_t i = 0; i < LIMITER_SHARDS; i++)
		pthread_mutex_destroy(&l->bans.shards[i].mu);
	free(l->bans.slots);
	pthread_mutex_destroy(&l->pmu);
	pthread_cond_destroy(&l->pcond);
	free(l);
}

size_t
limiter_memory(const struct limiter *l)
{
	return l->memory;
}

/* --- known-good clients and bans --------------------------------------------- */

/* IPv6 clients rotate privacy addresses inside their /64 (RFC 8981): a
 * known-good IPv6 client is its /64. */
static struct limiter_addr
limiter_good_addr(const struct limiter_addr *a)
{
	struct limiter_addr m = *a;

	if (!limiter_addr_is_v4(a))
		limiter_mask(&m, 64);
	return m;
}

static uint64_t
limiter_good_hash(
    const struct limiter *l, const char *account, size_t len, const struct limiter_addr *a)
{
	unsigned char k[24];
	struct limiter_addr m = limiter_good_addr(a);
	uint64_t ha = limiter_siphash(l, 3, account, len, true);

	memcpy(k, &ha, 8);
	memcpy(k + 8, m.a, 16);
	return limiter_siphash(l, 4, k, sizeof(k), false);
}

/* The client alone, known-good for at least one account: its own key space
 * (salt 5) in the table of pairs, stamped with the latest of its successes. */
static uint64_t
limiter_good_client_hash(const struct limiter *l, const struct limiter_addr *a)
{
	struct limiter_addr m = limiter_good_addr(a);

	return limiter_siphash(l, 5, m.a, 16, false);
}

static bool
limiter_good_known(struct limiter *l, uint64_t g, int64_t now)
{
	struct limiter_shard *sh = limiter_shard_of(l->good.shards, g);
	struct limiter_entry *e;
	bool known;

	pthread_mutex_lock(&sh->mu);
	e = limiter_find(&l->good, g, false, now);
	known = e != NULL && now - e->stamp <= LIMITER_GOOD_TTL_MS;
	pthread_mutex_unlock(&sh->mu);
	return known;
}

static void
limiter_good_stamp(struct limiter *l, uint64_t g, int64_t now)
{
	struct limiter_shard *sh = limiter_shard_of(l->good.shards, g);
	struct limiter_entry *e;

	pthread_mutex_lock(&sh->mu);
	e = limiter_find(&l->good, g, true, now);
	e->stamp = now;
	pthread_mutex_unlock(&sh->mu);
}

/*
 * Whether the bans covering a keep it out. An automatic network ban
 * (auth_failures_per_net) must not lock out the real users of a shared
 * network (an office, a campus, a carrier NAT) because someone else there
 * guesses passwords, just as the account throttle lets known-good clients
 * through: such a ban lets in a client known-good for some account (account
 * NULL: at connect, before the account is known), and then only for the
 * accounts it is known-good for. A ban of the address itself, or a manual
 * ban, keeps everyone out.
 */
static bool
limiter_ban_blocks(struct limiter *l, const struct limiter_addr *a, const char *account, size_t len,
    int64_t now, int64_t *until_r)
{
	unsigned kinds = limiter_bans_kinds(l, a, now, until_r);

	if (kinds == 0)
		return false;
	if (kinds & LIMITER_BANS_HARD)
		return true;
	if (account == NULL)
		return !limiter_good_known(l, limiter_good_client_hash(l, a), now);
	return len == 0 || !limiter_good_known(l, limiter_good_hash(l, account, len, a), now);
}

bool
limiter_is_banned(struct limiter *l, const struct conf *c, const struct limiter_addr *a,
    int64_t now, int64_t *until_r)
{
	if (until_r != NULL)
		*until_r = 0;
	if (limiter_is_allowed(c, a))
		return false;
	return limiter_ban_blocks(l, a, NULL, 0, now, until_r);
}

bool
limiter_auth_banned(struct limiter *l, const struct conf *c, const char *account, size_t len,
    const struct limiter_addr *a, int64_t now)
{
	if (limiter_is_allowed(c, a))
		return false;
	return limiter_ban_blocks(l, a, account != NULL ? account : "", len, now, NULL);
}

/* --- connections ------------------------------------------------------------ */

enum limiter_verdict
limiter_connect(struct limiter *l, const struct conf *c, const struct limiter_addr *a, int64_t now)
{
	bool allowed = limiter_is_allowed(c, a), over = false;
	uint64_t h = limiter_siphash(l, 1, a->a, 16, false);
	struct limiter_shard *sh = limiter_shard_of(l->ips.shards, h);
	struct limiter_entry *e;
	unsigned total;

	if (!allowed && limiter_ban_blocks(l, a, NULL, 0, now, NULL))
		return LIMITER_BANNED;
	total = __atomic_add_fetch(&l->conns, 1, __ATOMIC_RELAXED);
	if (total > c->connections) {
		__atomic_sub_fetch(&l->conns, 1, __ATOMIC_RELAXED);
		return LIMITER_TOO_MANY;
	}
	/* allowlisted clients are counted too (limiter_disconnect cannot know
	 * whether the allowlist changed since), but never refused */
	pthread_mutex_lock(&sh->mu);
	e = limiter_find(&l->ips, h, true, now);
	limiter_decay(e, c->connection_rate_per_ip, now);
	if (!allowed &&
	    (e->conns >= c->connections_per_ip ||
	        e->rate + 1.0f > (float)c->connection_rate_per_ip))
		over = true;
	/* refused attempts fill the bucket too (up to its size), so a flood
	 * stays refused until it stops */
	if (e->rate + 1.0f <= (float)c->connection_rate_per_ip || !over)
		e->rate += 1.0f;
	if (!over)
		e->conns++;
	pthread_mutex_unlock(&sh->mu);
	if (over) {
		__atomic_sub_fetch(&l->conns, 1, __ATOMIC_RELAXED);
		return LIMITER_TOO_MANY;
	}
	return LIMITER_OK;
}

void
limiter_disconnect(struct limiter *l, const struct limiter_addr *a)
{
	uint64_t h = limiter_siphash(l, 1, a->a, 16, false);
	struct limiter_shard *sh = limiter_shard_of(l->ips.shards, h);
	struct limiter_entry *e;

	__atomic_sub_fetch(&l->conns, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&sh->mu);
	/* absent only if all 8 slots of the bucket had open connections and
	 * one was taken (limiter.h): then there is nothing to decrement */
	e = limiter_find(&l->ips, h, false, 0);
	if (e != NULL && e->conns > 0)
		e->conns--;
	pthread_mutex_unlock(&sh->mu);
}

unsigned
limiter_connections(const struct limiter *l)
{
	return __atomic_load_n(&l->conns, __ATOMIC_RELAXED);
}

/* --- authentication ---------------------------------------------------------- */

/* Adds one failure to key h of table t (when add) and returns the decayed
 * count; reset clears it after reading (the key has just been banned). */
static float
limiter_count(
    struct limiter_table *t, uint64_t h, bool add, int64_t now, unsigned threshold, bool *hit_r)
{
	struct limiter_shard *sh = limiter_shard_of(t->shards, h);
	struct limiter_entry *e;
	float f = 0;

	pthread_mutex_lock(&sh->mu);
	e = limiter_find(t, h, add, now);
	if (e != NULL) {
		limiter_decay(e, 0, now);
		if (add)
			e->fails += 1.0f;
		f = e->fails;
		/* exponential decay makes N quick failures count N - a little:
		 * round to the nearest whole failure */
		if (hit_r != NULL && threshold > 0 && f + 0.5f >= (float)threshold) {
			*hit_r = true;
			e->fails = 0; /* the ban takes over; after it, N more */
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return f;
}

bool
limiter_auth_throttled(struct limiter *l, const struct conf *c, const char *account, size_t len,
    const struct limiter_addr *a, int64_t now)
{
	uint64_t h;
	float f;

	if (len == 0 || limiter_is_allowed(c, a))
		return false;
	h = limiter_siphash(l, 3, account, len, true);
	f = limiter_count(&l->accounts, h, false, now, 0, NULL);
	if (f + 0.5f < (float)c->auth_failures_per_account)
		return false;
	return !limiter_good_known(l, limiter_good_hash(l, account, len, a), now);
}

static unsigned
limiter_tarpit_ms(float fails)
{
	unsigned n = (unsigned)(fails + 0.5f), d = LIMITER_TARPIT_FIRST_MS;

	if (n == 0)
		return 0;
	for (unsigned i = 1; i < n && d < LIMITER_TARPIT_MAX_MS; i++)
		d *= 2;
	return d > LIMITER_TARPIT_MAX_MS ? LIMITER_TARPIT_MAX_MS : d;
}

void
limiter_auth_failed(struct limiter *l, const struct conf *c, const char *account, size_t len,
    const struct limiter_addr *a, int64_t now, struct limiter_fail *r)
{
	struct limiter_addr net = *a;
	unsigned netprefix = limiter_net_prefix(c, a);
	bool ip_hit = false, net_hit = false;
	float f;

	memset(r, 0, sizeof(*r));
	if (l->hooks != NULL)
		l->hooks->auth_failed(
		    l->hooks_arg, c, account, len, a, limiter_is_allowed(c, a), now);
	if (len > 0) {
		(void)limiter_count(
		    &l->accounts, limiter_siphash(l, 3, account, len, true), true, now, 0, NULL);
	}
	if (limiter_is_allowed(c, a))
		return;
	f = limiter_count(&l->ips, limiter_siphash(l, 1, a->a, 16, false), true, now,
	    c->auth_failures_per_ip, &ip_hit);
	limiter_mask(&net, netprefix);
	(void)limiter_count(&l->nets, limiter_siphash(l, 2, net.a, 16, false), true, now,
	    c->auth_failures_per_net, &net_hit);
	if (net_hit) {
		(void)limiter_bans_put(
		    l, &net, netprefix, 0, c->ban_time, LIMITER_REASON_AUTH_NET, now, &r->ban);
		r->new_ban = true;
	}
	if (ip_hit) {
		/* reported in preference: the more specific ban */
		(void)limiter_bans_put(
		    l, a, 128, 0, c->ban_time, LIMITER_REASON_AUTH_IP, now, &r->ban);
		r->new_ban = true;
	}
	/* a new network ban lets a known-good (account, client) pair through,
	 * like the older ones (limiter_ban_blocks) */
	r->banned = ip_hit || limiter_ban_blocks(l, a, account, len, now, NULL);
	if (!r->banned)
		r->delay_ms = limiter_tarpit_ms(f);
}

void
limiter_auth_ok(
    struct limiter *l, const char *account, size_t len, const struct limiter_addr *a, int64_t now)
{
	if (len == 0)
		return;
	limiter_good_set(l, account, len, a, now);
	if (l->hooks != NULL)
		l->hooks->auth_ok(l->hooks_arg, account, len, a, now);
}

void
limiter_good_set(
    struct limiter *l, const char *account, size_t len, const struct limiter_addr *a, int64_t stamp)
{
	if (len == 0)
		return;
	limiter_good_stamp(l, limiter_good_hash(l, account, len, a), stamp);
	limiter_good_stamp(l, limiter_good_client_hash(l, a), stamp);
}

void
limiter_set_hooks(struct limiter *l, const struct limiter_hooks *hooks, void *arg)
{
	l->hooks = hooks;
	l->hooks_arg = arg;
}

void
limiter_account_raise(struct limiter *l, const char *account, size_t len, double fails, int64_t now)
{
	uint64_t h;
	struct limiter_shard *sh;
	struct limiter_entry *e;

	if (len == 0 || !(fails > 0))
		return;
	h = limiter_siphash(l, 3, account, len, true);
	sh = limiter_shard_of(l->accounts.shards, h);
	pthread_mutex_lock(&sh->mu);
	e = limiter_find(&l->accounts, h, true, now);
	limiter_decay(e, 0, now);
	if (e->fails < (float)fails)
		e->fails = (float)fails;
	pthread_mutex_unlock(&sh->mu);
}
