/*
 * limiter_bans: the ban table of the limiter (limiter_priv.h): exact
 * (network, prefix) entries with their expiry, offence count and reason,
 * sharded and 8-way like the counters; the lookup a connect makes for each
 * prefix length in use; the list, the JSON state file (bans.json: load and
 * save) and the persister thread that saves it off the loops within about
 * a second of each change.
 *
 * Invariants: a slot is free when used is 0; nbans counts the used slots
 * (no lookup while it is 0); every change bumps generation, the
 * persister's cue. An expired ban stays as a remembered offence for
 * LIMITER_OFFENCE_MEMORY_MS so that the next one doubles.
 */
#include "policy/limiter_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define LIMITER_BANS_STATE_MAX (16 * 1024 * 1024) /* bytes of a state file */

/* --- bans ------------------------------------------------------------------ */

static int limiter_bans_drop(struct limiter *l, const struct limiter_addr *a, unsigned prefix);

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
int
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

unsigned
limiter_bans_kinds(struct limiter *l, const struct limiter_addr *a, int64_t now, int64_t *until_r)
{
	unsigned kinds = 0;

	if (__atomic_load_n(&l->nbans, __ATOMIC_RELAXED) == 0)
		return 0;
	for (unsigned w = 0; w < 3; w++) {
		uint64_t bits = __atomic_load_n(&l->prefixes[w], __ATOMIC_RELAXED);

		while (bits != 0) {
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
				kinds |= prefix < 128 && e->reason == LIMITER_REASON_AUTH_NET
				    ? LIMITER_BANS_NET
				    : LIMITER_BANS_HARD;
				if (until_r != NULL && e->until > *until_r)
					*until_r = e->until;
			}
			pthread_mutex_unlock(&sh->mu);
		}
	}
	return kinds;
}

bool
limiter_bans_lookup(struct limiter *l, const struct limiter_addr *a, int64_t now, int64_t *until_r)
{
	if (until_r != NULL)
		*until_r = 0;
	return limiter_bans_kinds(l, a, now, until_r) != 0;
}

int
limiter_ban_add(struct limiter *l, const struct limiter_addr *a, unsigned prefix, unsigned seconds,
    enum limiter_reason reason, int64_t now)
{
	struct limiter_addr m = *a;
	struct limiter_ban b;

	if (prefix > 128)
		return -1;
	limiter_mask(&m, prefix);
	if (limiter_bans_put(l, &m, prefix, seconds > 0 ? seconds : 1, 0, reason, now, &b) == -1)
		return -1;
	if (l->hooks != NULL)
		l->hooks->ban_added(l->hooks_arg, &b, now);
	return 0;
}

int
limiter_ban_del(struct limiter *l, const struct limiter_addr *a, unsigned prefix)
{
	char address[LIMITER_ADDR_STRLEN];
	struct limiter_addr m = *a;

	if (prefix > 128 || limiter_bans_drop(l, a, prefix) == -1)
		return -1;
	if (l->hooks != NULL) {
		limiter_mask(&m, prefix);
		limiter_addr_format(&m, prefix, address, sizeof(address));
		l->hooks->ban_deleted(l->hooks_arg, address, limiter_now_ms());
	}
	return 0;
}

int
limiter_ban_forget(struct limiter *l, const char *address)
{
	struct limiter_addr a;
	unsigned prefix;

	if (limiter_addr_parse(address, &a, &prefix) == -1)
		return -1;
	return limiter_bans_drop(l, &a, prefix);
}

int
limiter_ban_set(struct limiter *l, const struct limiter_ban *b)
{
	struct limiter_addr a;
	unsigned prefix;
	uint64_t h;
	struct limiter_shard *sh;
	struct limiter_bans_entry *e;

	if (limiter_addr_parse(b->address, &a, &prefix) == -1)
		return -1;
	h = limiter_bans_hash(l, &a, prefix);
	sh = limiter_shard_of(l->bans.shards, h);
	pthread_mutex_lock(&sh->mu);
	e = limiter_bans_find(l, h, &a, prefix);
	if (e == NULL) {
		e = limiter_bans_slot(l, h, b->last_ms);
		if (!e->used)
			__atomic_add_fetch(&l->nbans, 1, __ATOMIC_RELAXED);
		memset(e, 0, sizeof(*e));
		memcpy(e->addr, a.a, 16);
		e->prefix = (uint8_t)prefix;
		e->used = 1;
	}
	e->until = b->until_ms;
	e->last = b->last_ms;
	e->offences = b->offences;
	e->reason = (uint8_t)b->reason;
	pthread_mutex_unlock(&sh->mu);
	limiter_bans_prefix_mark(l, prefix);
	__atomic_add_fetch(&l->generation, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Lifts (a, prefix) and forgets its offences. 0, or -1 when there was none. */
static int
limiter_bans_drop(struct limiter *l, const struct limiter_addr *a, unsigned prefix)
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
