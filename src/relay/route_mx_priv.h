/*
 * route_mx_priv: what the files of route_mx share and nothing else sees:
 * the layout of struct route_mx, one look-up call and the reason helpers
 * (route_mx.c), and the MTA-STS entry points the plan and new/free use
 * (route_mx_sts.c).
 */
#ifndef SG_RELAY_ROUTE_MX_PRIV_H
#define SG_RELAY_ROUTE_MX_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "dns/dns_resolve.h"
#include "dns/mtasts_parse.h"
#include "relay/route_mx.h"

#define ROUTE_MX_POOL_MAX 16 /* idle resolvers kept */

struct route_mx_sts_entry {
	char domain[ROUTE_MX_NAME_MAX];
	char id[MTASTS_ID_MAX + 1];
	enum route_mx_sts_mode mode;
	unsigned long max_age;
	time_t fetched;
	char *mx[MTASTS_MX_MAX];
	size_t n_mx;
};

struct route_mx {
	struct route_mx_conf conf; /* strings owned */
	struct route_mx_ops ops; /* the real ones where conf had NULL */
	unsigned port;
	SSL_CTX *ctx;
	pthread_mutex_t pool_lock;
	struct dns_resolver *pool[ROUTE_MX_POOL_MAX];
	size_t npool;
	pthread_mutex_t sts_lock;
	struct route_mx_sts_entry *sts;
	size_t nsts;
	pthread_mutex_t disk_lock;
	size_t ndisk; /* policy files in conf.sts_cache_dir (an estimate between scans) */
	time_t disk_scanned; /* the last route_mx_sts_scan */
};

/* One look-up: the injected one, or the resolver of this call. */
struct route_mx_call {
	struct route_mx *mx;
	struct dns_resolver *r;
	bool timed_out; /* r gave up on a query: not pooled again (it now fails fast) */
};

/* --- route_mx.c ------------------------------------------------------------- */

/* A resolver from the pool (or a new one); NULL with err. */
struct dns_resolver *route_mx_resolver_get(struct route_mx *mx, char *err, size_t errlen);
/* Back to the pool (freed when it is full); r may be NULL. */
void route_mx_resolver_put(struct route_mx *mx, struct dns_resolver *r);
void route_mx_query(struct route_mx_call *q, const char *name, int type, struct dns_answer *a);
/* The status of a, or why it is bogus. */
const char *route_mx_answer_text(const struct dns_answer *a);
/* snprintf where cutting a long reason short is fine */
void route_mx_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends "; " and the text to the reason in buf (as far as it fits). */
void route_mx_note(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- route_mx_sts.c ---------------------------------------------------------- */

/* RFC 8461 3 and 5: the policy in force for the plan's domain; sets
 * plan->sts_* and each host's sts_match. */
void route_mx_sts_apply(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan);
/* Counts the policy files on disk, removes expired, corrupt and stale
 * temporary ones. Under disk_lock (or before any thread runs). */
void route_mx_sts_scan(struct route_mx *mx, time_t now);
void route_mx_sts_entry_clear(struct route_mx_sts_entry *e);

#endif
