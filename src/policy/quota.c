/*
 * quota: per-user sending quotas over a rolling day (quota.h).
 *
 * Each shard is a mutex and a chained hash table of struct quota_user, at
 * most QUOTA_USERS / QUOTA_SHARDS users (locked users may go beyond, so a
 * lock is never forgotten). A user holds 24 hourly message buckets (each
 * tagged with its hour, so a stale bucket reads as 0) and an array of
 * recipient hashes with the hour each was last used; expired ones are
 * dropped whenever the array is scanned. Hours are time_t / 3600.
 * Invariant: a user's recipient array never holds more than
 * recipients_per_day + 1 live entries.
 */
#include "policy/quota.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"

#define QUOTA_BUCKETS 256 /* hash chains per shard */
#define QUOTA_SHARD_USERS (QUOTA_USERS / QUOTA_SHARDS)
#define QUOTA_EVICT_SAMPLE 32

struct quota_rcpt {
	uint64_t hash;
	uint32_t hour;
};

struct quota_user {
	char *name;
	uint64_t hash;
	uint32_t hour[QUOTA_HOURS]; /* the hour bucket i counts */
	uint32_t count[QUOTA_HOURS];
	struct quota_rcpt *rcpts;
	size_t nrcpts, caprcpts;
	uint32_t last_hour; /* of the last activity: eviction order */
	bool locked;
	struct quota_user *next;
};

struct quota_shard {
	_Alignas(64) pthread_mutex_t lock;
	struct quota_user *buckets[QUOTA_BUCKETS];
	size_t nusers;
};

struct quota {
	unsigned messages; /* atomic: limits may change on SIGHUP */
	unsigned recipients;
	struct quota_shard shards[QUOTA_SHARDS];
};

/* FNV-1a 64 of s, lower-cased (addresses and user names compare without
 * case here: a quota is not a place for case games). */
static uint64_t
quota_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint32_t
quota_hour(time_t now)
{
	return now < 0 ? 0 : (uint32_t)(now / 3600);
}

/* Whether something counted in hour h is still inside the day ending now. */
static bool
quota_is_live(uint32_t h, uint32_t now_hour)
{
	return h <= now_hour && now_hour - h < QUOTA_HOURS;
}

struct quota *
quota_new(unsigned messages_per_day, unsigned recipients_per_day)
{
	struct quota *q = xcalloc(1, sizeof(*q));

	q->messages = messages_per_day;
	q->recipients = recipients_per_day;
	for (size_t i = 0; i < QUOTA_SHARDS; i++)
		pthread_mutex_init(&q->shards[i].lock, NULL);
	return q;
}

static void
quota_user_free(struct quota_user *u)
{
	free(u->name);
	free(u->rcpts);
	free(u);
}

void
quota_free(struct quota *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < QUOTA_SHARDS; i++) {
		struct quota_shard *sh = &q->shards[i];

		for (size_t b = 0; b < QUOTA_BUCKETS; b++) {
			struct quota_user *u, *next;

			for (u = sh->buckets[b]; u != NULL; u = next) {
				next = u->next;
				quota_user_free(u);
			}
		}
		pthread_mutex_destroy(&sh->lock);
	}
	free(q);
}

void
quota_set_limits(struct quota *q, unsigned messages_per_day, unsigned recipients_per_day)
{
	__atomic_store_n(&q->messages, messages_per_day, __ATOMIC_RELAXED);
	__atomic_store_n(&q->recipients, recipients_per_day, __ATOMIC_RELAXED);
}

bool
quota_is_enabled(const struct quota *q)
{
	return q != NULL &&
	    (__atomic_load_n(&q->messages, __ATOMIC_RELAXED) != 0 ||
	        __atomic_load_n(&q->recipients, __ATOMIC_RELAXED) != 0);
}

static struct quota_shard *
quota_shard(struct quota *q, uint64_t h)
{
	return &q->shards[h % QUOTA_SHARDS];
}

static struct quota_user **
quota_slot(struct quota_shard *sh, uint64_t h)
{
	return &sh->buckets[(h / QUOTA_SHARDS) % QUOTA_BUCKETS];
}

/* Caller holds sh->lock. */
static struct quota_user *
quota_find(struct quota_shard *sh, uint64_t h, const char *user)
{
	for (struct quota_user *u = *quota_slot(sh, h); u != NULL; u = u->next) {
		if (u->hash == h && strcasecmp(u->name, user) == 0)
			return u;
	}
	return NULL;
}

static void
quota_unlink(struct quota_shard *sh, struct quota_user *victim)
{
	struct quota_user **pp = quota_slot(sh, victim->hash);

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			sh->nusers--;
			quota_user_free(victim);
			return;
		}
	}
}

/* Forgets the unlocked user idle the longest among the first
 * QUOTA_EVICT_SAMPLE met from bucket start on (an approximate LRU that
 * keeps the cost of a new user bounded); false if all of them are locked. */
static bool
quota_evict(struct quota_shard *sh, size_t start)
{
	struct quota_user *victim = NULL;
	size_t seen = 0;

	for (size_t k = 0; k < QUOTA_BUCKETS && seen < QUOTA_EVICT_SAMPLE; k++) {
		struct quota_user *u = sh->buckets[(start + k) % QUOTA_BUCKETS];

		for (; u != NULL && seen < QUOTA_EVICT_SAMPLE; u = u->next, seen++) {
			if (!u->locked && (victim == NULL || u->last_hour < victim->last_hour))
				victim = u;
		}
	}
	if (victim == NULL)
		return false;
	quota_unlink(sh, victim);
	return true;
}

/* Finds or adds user; NULL when the shard is full of locked users (then
 * the user goes uncounted: failing open beats refusing every user). */
static struct quota_user *
quota_get(struct quota_shard *sh, uint64_t h, const char *user, bool force)
{
	struct quota_user *u = quota_find(sh, h, user), **slot;

	if (u != NULL)
		return u;
	if (sh->nusers >= QUOTA_SHARD_USERS &&
	    !quota_evict(sh, (h / QUOTA_SHARDS) % QUOTA_BUCKETS) && !force)
		return NULL;
	u = xcalloc(1, sizeof(*u));
	u->name = xstrdup(user);
	u->hash = h;
	slot = quota_slot(sh, h);
	u->next = *slot;
	*slot = u;
	sh->nusers++;
	return u;
}

static unsigned
quota_messages_in(const struct quota_user *u, uint32_t now_hour)
{
	unsigned n = 0;

	for (size_t i = 0; i < QUOTA_HOURS; i++) {
		if (quota_is_live(u->hour[i], now_hour))
			n += u->count[i];
	}
	return n;
}

/* Drops expired recipients; returns the index of hash, or -1. */
static long
quota_rcpts_scan(struct quota_user *u, uint64_t hash, uint32_t now_hour)
{
	long found = -1;

	for (size_t i = 0; i < u->nrcpts;) {
		if (!quota_is_live(u->rcpts[i].hour, now_hour)) {
			u->rcpts[i] = u->rcpts[--u->nrcpts];
			continue;
		}
		if (u->rcpts[i].hash == hash)
			found = (long)i;
		i++;
	}
	return found;
}

static void
quota_rcpts_add(struct quota_user *u, uint64_t hash, uint32_t hour)
{
	if (u->nrcpts == u->caprcpts) {
		u->caprcpts = u->caprcpts == 0 ? 8 : u->caprcpts * 2;
		u->rcpts = xrealloc(u->rcpts, u->caprcpts * sizeof(*u->rcpts));
	}
	u->rcpts[u->nrcpts].hash = hash;
	u->rcpts[u->nrcpts].hour = hour;
	u->nrcpts++;
}

static void
quota_fill(struct quota_counts *r, struct quota_user *u, uint32_t now_hour)
{
	if (r == NULL)
		return;
	r->messages = u != NULL ? quota_messages_in(u, now_hour) : 0;
	r->recipients = 0;
	if (u != NULL) {
		(void)quota_rcpts_scan(u, 0, now_hour);
		r->recipients = (unsigned)u->nrcpts;
	}
}

enum quota_verdict
quota_check_mail(struct quota *q, const char *user, time_t now, struct quota_counts *counts_r)
{
	unsigned limit = __atomic_load_n(&q->messages, __ATOMIC_RELAXED);
	uint64_t h = quota_hash(user);
	struct quota_shard *sh = quota_shard(q, h);
	uint32_t hour = quota_hour(now);
	enum quota_verdict v = QUOTA_OK;
	struct quota_user *u;

	pthread_mutex_lock(&sh->lock);
	u = quota_find(sh, h, user);
	if (u != NULL && u->locked) {
		v = QUOTA_LOCKED;
	} else if (u != NULL && limit != 0 && quota_messages_in(u, hour) >= limit) {
		u->locked = true;
		v = QUOTA_EXCEEDED;
	}
	quota_fill(counts_r, u, hour);
	pthread_mutex_unlock(&sh->lock);
	return v;
}

void
quota_count_message(struct quota *q, const char *user, time_t now)
{
	uint64_t h = quota_hash(user);
	struct quota_shard *sh = quota_shard(q, h);
	uint32_t hour = quota_hour(now);
	struct quota_user *u;
	size_t i = hour % QUOTA_HOURS;

	pthread_mutex_lock(&sh->lock);
	u = quota_get(sh, h, user, false);
	if (u != NULL) {
		if (u->hour[i] != hour) {
			u->hour[i] = hour;
			u->count[i] = 0;
		}
		u->count[i]++;
		u->last_hour = hour;
	}
	pthread_mutex_unlock(&sh->lock);
}

void
quota_raise_messages(struct quota *q, const char *user, unsigned messages, time_t now)
{
	uint64_t h = quota_hash(user);
	struct quota_shard *sh = quota_shard(q, h);
	uint32_t hour = quota_hour(now);
	struct quota_user *u;
	size_t i = hour % QUOTA_HOURS;
	unsigned have;

	pthread_mutex_lock(&sh->lock);
	u = quota_get(sh, h, user, false);
	if (u != NULL && (have = quota_messages_in(u, hour)) < messages) {
		if (u->hour[i] != hour) {
			u->hour[i] = hour;
			u->count[i] = 0;
		}
		u->count[i] += messages - have;
		u->last_hour = hour;
	}
	pthread_mutex_unlock(&sh->lock);
}

enum quota_verdict
quota_check_rcpt(
    struct quota *q, const char *user, const char *rcpt, time_t now, struct quota_counts *counts_r)
{
	unsigned limit = __atomic_load_n(&q->recipients, __ATOMIC_RELAXED);
	uint64_t h = quota_hash(user), rh = quota_hash(rcpt);
	struct quota_shard *sh = quota_shard(q, h);
	uint32_t hour = quota_hour(now);
	enum quota_verdict v = QUOTA_OK;
	struct quota_user *u;
	long at;

	pthread_mutex_lock(&sh->lock);
	u = quota_get(sh, h, user, false);
	if (u == NULL)
		goto out;
	if (u->locked) {
		v = QUOTA_LOCKED;
		goto out;
	}
	u->last_hour = hour;
	at = quota_rcpts_scan(u, rh, hour);
	if (at >= 0) {
		u->rcpts[at].hour = hour;
	} else if (limit != 0 && u->nrcpts >= limit) {
		u->locked = true;
		v = QUOTA_EXCEEDED;
	} else {
		quota_rcpts_add(u, rh, hour);
	}
out:
	quota_fill(counts_r, u, hour);
	pthread_mutex_unlock(&sh->lock);
	return v;
}

enum quota_verdict
quota_rcpt_shared(struct quota *q, const char *user, const char *rcpt, bool over, unsigned distinct,
    time_t now, struct quota_counts *counts_r)
{
	unsigned limit = __atomic_load_n(&q->recipients, __ATOMIC_RELAXED);
	uint64_t h = quota_hash(user), rh = quota_hash(rcpt);
	struct quota_shard *sh = quota_shard(q, h);
	uint32_t hour = quota_hour(now);
	enum quota_verdict v = QUOTA_OK;
	struct quota_user *u;
	long at;

	pthread_mutex_lock(&sh->lock);
	u = quota_get(sh, h, user, over);
	if (u == NULL)
		goto out;
	if (u->locked) {
		v = QUOTA_LOCKED;
		goto out;
	}
	u->last_hour = hour;
	if (over) {
		u->locked = true;
		v = QUOTA_EXCEEDED;
		goto out;
	}
	/* kept within limit + 1 entries (the invariant): a recipient the
	 * other nodes counted is one of the stand-ins below, or beyond */
	at = quota_rcpts_scan(u, rh, hour);
	if (at >= 0)
		u->rcpts[at].hour = hour;
	else if (limit == 0 || u->nrcpts <= limit)
		quota_rcpts_add(u, rh, hour);
	if (limit != 0 && distinct > limit)
		distinct = limit;
	/* stand-ins for the recipients only other nodes have seen: hashes of
	 * names no address can have (they hold '\n') */
	for (unsigned k = 0; u->nrcpts < distinct && k < distinct; k++) {
		char stand[64];

		snprintf(stand, sizeof(stand), "\n%u\n%u", hour, k);
		if (quota_rcpts_scan(u, quota_hash(stand), hour) < 0)
			quota_rcpts_add(u, quota_hash(stand), hour);
	}
out:
	quota_fill(counts_r, u, hour);
	pthread_mutex_unlock(&sh->lock);
	return v;
}

bool
quota_is_locked(struct quota *q, const char *user)
{
	uint64_t h = quota_hash(user);
	struct quota_shard *sh = quota_shard(q, h);
	struct quota_user *u;
	bool locked;

	pthread_mutex_lock(&sh->lock);
	u = quota_find(sh, h, user);
	locked = u != NULL && u->locked;
	pthread_mutex_unlock(&sh->lock);
	return locked;
}

void
quota_lock(struct quota *q, const char *user)
{
	uint64_t h = quota_hash(user);
	struct quota_shard *sh = quota_shard(q, h);

	pthread_mutex_lock(&sh->lock);
	quota_get(sh, h, user, true)->locked = true;
	pthread_mutex_unlock(&sh->lock);
}

bool
quota_unlock(struct quota *q, const char *user)
{
	uint64_t h = quota_hash(user);
	struct quota_shard *sh = quota_shard(q, h);
	struct quota_user *u;
	bool was = false;

	pthread_mutex_lock(&sh->lock);
	u = quota_find(sh, h, user);
	if (u != NULL) {
		was = u->locked;
		quota_unlink(sh, u); /* the counts go too: a fresh day */
	}
	pthread_mutex_unlock(&sh->lock);
	return was;
}

static int
quota_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
quota_locked_users(struct quota *q, char ***users_r)
{
	char **v = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < QUOTA_SHARDS; i++) {
		struct quota_shard *sh = &q->shards[i];

		pthread_mutex_lock(&sh->lock);
		for (size_t b = 0; b < QUOTA_BUCKETS; b++) {
			for (struct quota_user *u = sh->buckets[b]; u != NULL; u = u->next) {
				if (!u->locked)
					continue;
				if (n == cap) {
					cap = cap == 0 ? 8 : cap * 2;
					v = xrealloc(v, cap * sizeof(*v));
				}
				v[n++] = xstrdup(u->name);
			}
		}
		pthread_mutex_unlock(&sh->lock);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), quota_cmp_names);
	*users_r = v;
	return n;
}

void
quota_users_free(char **users, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(users[i]);
	free(users);
}
