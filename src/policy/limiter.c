/*
 * limiter: connection limits, AUTH failure counts, bans and known-good
 * (account, client) pairs, shared by all loop threads (see limiter.h for
 * the structures and their error bounds).
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

#include <jansson.h>

#include "conf/conf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define LIMITER_WAYS 8
#define LIMITER_SHARD_BITS 6 /* LIMITER_SHARDS == 1 << LIMITER_SHARD_BITS */
#define LIMITER_DEFAULT_IPS 65536
#define LIMITER_DEFAULT_NETS 16384
#define LIMITER_DEFAULT_ACCOUNTS 32768
#define LIMITER_DEFAULT_GOOD 32768
#define LIMITER_DEFAULT_BANS 16384
#define LIMITER_BANS_STATE_MAX (16 * 1024 * 1024) /* bytes of a state file */

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
	struct limiter_entry
	    *slots; /* shard s, bucket b: slots[(s * nbuckets + b) * LIMITER_WAYS] */
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

	/* the persister thread */
	pthread_mutex_t pmu;
	pthread_cond_t pcond;
	pthread_t pthread;
	bool prunning, pstop;
	uint64_t psaved; /* generation at limiter_persist_start */
	char *ppath;
};

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
static uint64_t
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

static struct limiter_shard *
limiter_shard_of(struct limiter_shard *shards, uint64_t h)
{
	return &shards[h >> (64 - LIMITER_SHARD_BITS)];
}

static size_t
limiter_bucket_of(size_t nbuckets, uint64_t h)
{
	return (size_t)(h >> (64 - LIMITER_SHARD_BITS)) * nbuckets +
	    (size_t)(h & 0xffffffffu) % nbuckets;
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

static void
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

/* --- bans ------------------------------------------------------------------ */

static uint64_t
limiter_bans_hash(const struct limiter *l, const struct limiter_addr *masked, unsigned prefix)
{
	unsigned char k[17];

	memcpy(k, masked->a, 16);
	k[16] = (unsigned char)prefix;
	return limiter_siphash(l, 5, k, sizeof(k), false);
}

/* The ban slot of (masked, prefix), or NULL; the caller holds the shard. */
static struct limiter_bans_entry *
limiter_bans_find(struct limiter *l, uint64_t h, const struct limiter_addr *masked, unsigned prefix)
{
	struct limiter_bans_entry *b =
	    &l->bans.slots[limiter_bucket_of(l->bans.nbuckets, h) * LIMITER_WAYS];

	for (int i = 0; i < LIMITER_WAYS; i++) {
		if (b[i].used && b[i].prefix == prefix && memcmp(b[i].addr, masked->a, 16) == 0)
			return &b[i];
	}
	return NULL;
}

/* A free slot for a new ban: an empty one, else an expired one with the
 * oldest offence, else the ban that ends first. */
static struct limiter_bans_entry *
limiter_bans_slot(struct limiter *l, uint64_t h, int64_t now)
{
	struct limiter_bans_entry *b =
	    &l->bans.slots[limiter_bucket_of(l->bans.nbuckets, h) * LIMITER_WAYS];
	struct limiter_bans_entry *v = NULL;

	for (int i = 0; i < LIMITER_WAYS; i++) {
		if (!b[i].used)
			return &b[i];
	}
	for (int i = 0; i < LIMITER_WAYS; i++) {
		if (b[i].until <= now && (v == NULL || b[i].last < v->last))
			v = &b[i];
	}
	if (v != NULL)
		return v;
	for (int i = 0; i < LIMITER_WAYS; i++) {
		if (v == NULL || b[i].until < v->until)
			v = &b[i];
	}
	return v;
}

static void
limiter_bans_prefix_mark(struct limiter *l, unsigned prefix)
{
	__atomic_fetch_or(&l->prefixes[prefix / 64], 1ULL << (prefix % 64), __ATOMIC_RELAXED);
}

static void
limiter_bans_to_public(const struct limiter_bans_entry *e, struct limiter_ban *r)
{
	struct limiter_addr a;

	memcpy(a.a, e->addr, 16);
	limiter_addr_format(&a, e->prefix, r->address, sizeof(r->address));
	r->until_ms = e->until;
	r->last_ms = e->last;
	r->offences = e->offences;
	r->reason = (enum limiter_reason)e->reason;
}

/* Stores or updates (masked, prefix). seconds == 0: the grown length from
 * base_s (doubling per remembered offence, at most LIMITER_BAN_MAX_S). */
static int
limiter_bans_put(struct limiter *l, const struct limiter_addr *masked, unsigned prefix,
    unsigned seconds, unsigned base_s, enum limiter_reason reason, int64_t now,
    struct limiter_ban *r)
{
	uint64_t h = limiter_bans_hash(l, masked, prefix);
	struct limiter_shard *sh = limiter_shard_of(l->bans.shards, h);
	struct limiter_bans_entry *e;
	int64_t until;

	pthread_mutex_lock(&sh->mu);
	e = limiter_bans_find(l, h, masked, prefix);
	if (e == NULL) {
		e = limiter_bans_slot(l, h, now);
		if (!e->used)
			__atomic_add_fetch(&l->nbans, 1, __ATOMIC_RELAXED);
		memset(e, 0, sizeof(*e));
		memcpy(e->addr, masked->a, 16);
		e->prefix = (uint8_t)prefix;
		e->used = 1;
	} else if (now - e->last > LIMITER_OFFENCE_MEMORY_MS) {
		e->offences = 0;
	}
	e->offences++;
	if (seconds == 0) {
		uint64_t s = base_s > 0 ? base_s : 1;

		for (unsigned i = 1; i < e->offences && s < LIMITER_BAN_MAX_S; i++)
			s *= 2;
		seconds = s > LIMITER_BAN_MAX_S ? LIMITER_BAN_MAX_S : (unsigned)s;
		until = now + (int64_t)seconds * 1000;
		if (e->until > until)
			until = e->until; /* never shorten a ban in force */
	} else {
		until = now + (int64_t)seconds * 1000; /* manual: exactly as asked */
	}
	e->until = until;
	e->last = now;
	e->reason = (uint8_t)reason;
	if (r != NULL)
		limiter_bans_to_public(e, r);
	pthread_mutex_unlock(&sh->mu);
	limiter_bans_prefix_mark(l, prefix);
	__atomic_add_fetch(&l->generation, 1, __ATOMIC_RELEASE);
	return 0;
}

static bool
limiter_bans_lookup(struct limiter *l, const struct limiter_addr *a, int64_t now, int64_t *until_r)
{
	bool hit = false;

	if (__atomic_load_n(&l->nbans, __ATOMIC_RELAXED) == 0)
		return false;
	for (unsigned w = 0; w < 3 && !hit; w++) {
		uint64_t bits = __atomic_load_n(&l->prefixes[w], __ATOMIC_RELAXED);

		while (bits != 0 && !hit) {
			unsigned prefix = w * 64 + (unsigned)__builtin_ctzll(bits);
			struct limiter_addr m = *a;
			struct limiter_bans_entry *e;
			struct limiter_shard *sh;
			uint64_t h;

			bits &= bits - 1;
			if (prefix > 128)
				break;
			limiter_mask(&m, prefix);
			h = limiter_bans_hash(l, &m, prefix);
			sh = limiter_shard_of(l->bans.shards, h);
			pthread_mutex_lock(&sh->mu);
			e = limiter_bans_find(l, h, &m, prefix);
			if (e != NULL && e->until > now) {
				hit = true;
				if (until_r != NULL)
					*until_r = e->until;
			}
			pthread_mutex_unlock(&sh->mu);
		}
	}
	return hit;
}

bool
limiter_is_banned(struct limiter *l, const struct conf *c, const struct limiter_addr *a,
    int64_t now, int64_t *until_r)
{
	if (limiter_is_allowed(c, a))
		return false;
	return limiter_bans_lookup(l, a, now, until_r);
}

int
limiter_ban_add(struct limiter *l, const struct limiter_addr *a, unsigned prefix, unsigned seconds,
    enum limiter_reason reason, int64_t now)
{
	struct limiter_addr m = *a;

	if (prefix > 128)
		return -1;
	limiter_mask(&m, prefix);
	return limiter_bans_put(l, &m, prefix, seconds > 0 ? seconds : 1, 0, reason, now, NULL);
}

int
limiter_ban_del(struct limiter *l, const struct limiter_addr *a, unsigned prefix)
{
	struct limiter_addr m = *a;
	struct limiter_bans_entry *e;
	struct limiter_shard *sh;
	uint64_t h;

	if (prefix > 128)
		return -1;
	limiter_mask(&m, prefix);
	h = limiter_bans_hash(l, &m, prefix);
	sh = limiter_shard_of(l->bans.shards, h);
	pthread_mutex_lock(&sh->mu);
	e = limiter_bans_find(l, h, &m, prefix);
	if (e != NULL) {
		memset(e, 0, sizeof(*e));
		__atomic_sub_fetch(&l->nbans, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&sh->mu);
	if (e == NULL)
		return -1;
	__atomic_add_fetch(&l->generation, 1, __ATOMIC_RELEASE);
	return 0;
}

static int
limiter_bans_cmp(const void *x, const void *y)
{
	const struct limiter_ban *a = x, *b = y;

	return strcmp(a->address, b->address);
}

struct limiter_ban *
limiter_ban_list(struct limiter *l, int64_t now, bool all, size_t *n_r)
{
	struct limiter_ban *r = NULL;
	size_t n = 0, cap = 0;

	for (size_t s = 0; s < LIMITER_SHARDS; s++) {
		struct limiter_bans_entry *b = &l->bans.slots[s * l->bans.nbuckets * LIMITER_WAYS];

		pthread_mutex_lock(&l->bans.shards[s].mu);
		for (size_t i = 0; i < l->bans.nbuckets * LIMITER_WAYS; i++) {
			if (!b[i].used || (!all && b[i].until <= now))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				r = xrealloc(r, cap * sizeof(*r));
			}
			limiter_bans_to_public(&b[i], &r[n++]);
		}
		pthread_mutex_unlock(&l->bans.shards[s].mu);
	}
	if (n > 1)
		qsort(r, n, sizeof(*r), limiter_bans_cmp);
	*n_r = n;
	return r;
}

size_t
limiter_bans_active(struct limiter *l, int64_t now)
{
	size_t n = 0;

	if (__atomic_load_n(&l->nbans, __ATOMIC_RELAXED) == 0)
		return 0;
	for (size_t s = 0; s < LIMITER_SHARDS; s++) {
		struct limiter_bans_entry *b = &l->bans.slots[s * l->bans.nbuckets * LIMITER_WAYS];

		pthread_mutex_lock(&l->bans.shards[s].mu);
		for (size_t i = 0; i < l->bans.nbuckets * LIMITER_WAYS; i++)
			n += b[i].used && b[i].until > now;
		pthread_mutex_unlock(&l->bans.shards[s].mu);
	}
	return n;
}

uint64_t
limiter_ban_generation(const struct limiter *l)
{
	return __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE);
}

const char *
limiter_reason_name(enum limiter_reason r)
{
	switch (r) {
	case LIMITER_REASON_AUTH_IP:
		return "auth_failures_per_ip";
	case LIMITER_REASON_AUTH_NET:
		return "auth_failures_per_net";
	case LIMITER_REASON_MANUAL:
		break;
	}
	return "manual";
}

static enum limiter_reason
limiter_bans_reason_parse(const char *s)
{
	if (strcmp(s, "auth_failures_per_ip") == 0)
		return LIMITER_REASON_AUTH_IP;
	if (strcmp(s, "auth_failures_per_net") == 0)
		return LIMITER_REASON_AUTH_NET;
	return LIMITER_REASON_MANUAL;
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

	if (!allowed && limiter_bans_lookup(l, a, now, NULL))
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

static uint64_t
limiter_good_hash(
    const struct limiter *l, const char *account, size_t len, const struct limiter_addr *a)
{
	unsigned char k[24];
	struct limiter_addr m = *a;
	uint64_t ha = limiter_siphash(l, 3, account, len, true);

	/* IPv6 clients rotate privacy addresses inside their /64 (RFC 8981) */
	if (!limiter_addr_is_v4(a))
		limiter_mask(&m, 64);
	memcpy(k, &ha, 8);
	memcpy(k + 8, m.a, 16);
	return limiter_siphash(l, 4, k, sizeof(k), false);
}

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
	uint64_t h, g;
	struct limiter_shard *sh;
	struct limiter_entry *e;
	float f;
	bool known;

	if (len == 0 || limiter_is_allowed(c, a))
		return false;
	h = limiter_siphash(l, 3, account, len, true);
	f = limiter_count(&l->accounts, h, false, now, 0, NULL);
	if (f + 0.5f < (float)c->auth_failures_per_account)
		return false;
	g = limiter_good_hash(l, account, len, a);
	sh = limiter_shard_of(l->good.shards, g);
	pthread_mutex_lock(&sh->mu);
	e = limiter_find(&l->good, g, false, now);
	known = e != NULL && now - e->stamp <= LIMITER_GOOD_TTL_MS;
	pthread_mutex_unlock(&sh->mu);
	return !known;
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
	r->banned = r->new_ban || limiter_bans_lookup(l, a, now, NULL);
	if (!r->banned)
		r->delay_ms = limiter_tarpit_ms(f);
}

void
limiter_auth_ok(
    struct limiter *l, const char *account, size_t len, const struct limiter_addr *a, int64_t now)
{
	uint64_t g;
	struct limiter_shard *sh;
	struct limiter_entry *e;

	if (len == 0)
		return;
	g = limiter_good_hash(l, account, len, a);
	sh = limiter_shard_of(l->good.shards, g);
	pthread_mutex_lock(&sh->mu);
	e = limiter_find(&l->good, g, true, now);
	e->stamp = now;
	pthread_mutex_unlock(&sh->mu);
}

/* --- the state file ---------------------------------------------------------- */

char *
limiter_bans_json(struct limiter *l, int64_t now, bool all)
{
	size_t n;
	struct limiter_ban *b = limiter_ban_list(l, now, all, &n);
	json_t *arr = json_array(), *doc;
	char *s;

	for (size_t i = 0; i < n; i++) {
		int64_t left = b[i].until_ms > now ? (b[i].until_ms - now + 999) / 1000 : 0;

		json_array_append_new(arr,
		    json_pack("{s:s, s:I, s:I, s:I, s:i, s:s}", "address", b[i].address, "until",
		        (json_int_t)(b[i].until_ms / 1000), "seconds", (json_int_t)left, "last",
		        (json_int_t)(b[i].last_ms / 1000), "offences", (int)b[i].offences, "reason",
		        limiter_reason_name(b[i].reason)));
	}
	free(b);
	doc = json_pack("{s:i, s:o}", "version", 1, "bans", arr);
	s = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (s == NULL)
		abort();
	return s;
}

int
limiter_bans_save(struct limiter *l, const char *path, int64_t now)
{
	char *s = limiter_bans_json(l, now, true);
	int rc = fs_write_atomic(path, s, strlen(s), 0600);

	free(s);
	return rc;
}

int
limiter_bans_load(struct limiter *l, const char *path, int64_t now, char *err, size_t errlen)
{
	size_t len, i;
	char *text = fs_read_file(path, LIMITER_BANS_STATE_MAX, &len);
	json_error_t je;
	json_t *doc, *bans, *b;

	if (text == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (doc == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	bans = json_object_get(doc, "bans");
	if (!json_is_array(bans)) {
		snprintf(err, errlen, "%s: no \"bans\" array", path);
		json_decref(doc);
		return -1;
	}
	json_array_foreach(bans, i, b)
	{
		const char *addr = NULL, *reason = "manual";
		json_int_t until = 0, last = 0;
		int offences = 1;
		struct limiter_addr a;
		unsigned prefix;
		uint64_t h;
		struct limiter_shard *sh;
		struct limiter_bans_entry *e;

		if (json_unpack(b, "{s:s, s:I, s?I, s?i, s?s}", "address", &addr, "until", &until,
		        "last", &last, "offences", &offences, "reason", &reason) == -1 ||
		    limiter_addr_parse(addr, &a, &prefix) == -1) {
			snprintf(err, errlen, "%s: bans[%zu]: bad entry", path, i);
			json_decref(doc);
			return -1;
		}
		if (last == 0)
			last = until;
		if (until * 1000 <= now && now - last * 1000 > LIMITER_OFFENCE_MEMORY_MS)
			continue; /* forgotten */
		h = limiter_bans_hash(l, &a, prefix);
		sh = limiter_shard_of(l->bans.shards, h);
		pthread_mutex_lock(&sh->mu);
		e = limiter_bans_find(l, h, &a, prefix);
		if (e == NULL) {
			e = limiter_bans_slot(l, h, now);
			if (!e->used)
				__atomic_add_fetch(&l->nbans, 1, __ATOMIC_RELAXED);
		}
		memset(e, 0, sizeof(*e));
		memcpy(e->addr, a.a, 16);
		e->prefix = (uint8_t)prefix;
		e->used = 1;
		e->until = (int64_t)until * 1000;
		e->last = (int64_t)last * 1000;
		e->offences = offences > 0 ? (uint32_t)offences : 1;
		e->reason = (uint8_t)limiter_bans_reason_parse(reason);
		pthread_mutex_unlock(&sh->mu);
		limiter_bans_prefix_mark(l, prefix);
	}
	json_decref(doc);
	__atomic_add_fetch(&l->generation, 1, __ATOMIC_RELEASE);
	return 0;
}

static void
limiter_bans_persist_save(struct limiter *l, uint64_t *saved)
{
	uint64_t g = limiter_ban_generation(l);

	if (g == *saved)
		return;
	if (limiter_bans_save(l, l->ppath, limiter_now_ms()) == -1) {
		log_event(LOG_ERR, "ban_state", 0, "{s:s, s:s}", "path", l->ppath, "error",
		    strerror(errno));
		return; /* tried again at the next change or tick */
	}
	*saved = g;
}

static void *
limiter_bans_persist_main(void *arg)
{
	struct limiter *l = arg;
	uint64_t saved = l->psaved;

	pthread_mutex_lock(&l->pmu);
	while (!l->pstop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&l->pcond, &l->pmu, &ts);
		pthread_mutex_unlock(&l->pmu);
		limiter_bans_persist_save(l, &saved);
		pthread_mutex_lock(&l->pmu);
	}
	pthread_mutex_unlock(&l->pmu);
	limiter_bans_persist_save(l, &saved);
	return NULL;
}

void
limiter_persist_start(struct limiter *l, const char *path)
{
	if (l->prunning)
		return;
	l->ppath = xstrdup(path);
	l->pstop = false;
	/* what is in the table now is what was just loaded: saved already */
	l->psaved = limiter_ban_generation(l);
	if (pthread_create(&l->pthread, NULL, limiter_bans_persist_main, l) != 0)
		abort();
	l->prunning = true;
}

void
limiter_persist_stop(struct limiter *l)
{
	if (!l->prunning)
		return;
	pthread_mutex_lock(&l->pmu);
	l->pstop = true;
	pthread_cond_signal(&l->pcond);
	pthread_mutex_unlock(&l->pmu);
	pthread_join(l->pthread, NULL);
	l->prunning = false;
	free(l->ppath);
	l->ppath = NULL;
}
