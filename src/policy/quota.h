/*
 * quota: sending quotas per authenticated user: messages
 * and distinct recipients per rolling day, and the "over quota" lock.
 *
 * The day is the last 24 whole clock hours: counts are kept in 24 hourly
 * buckets, so a message sent at 10:20 stops counting at 10:00 the next day
 * (between 23 and 24 hours later). A rolling window has no midnight reset
 * for an attacker to straddle (a calendar day lets 2x the quota through
 * around midnight).
 *
 * Messages are checked at MAIL (refused when the user already sent the
 * quota) and counted when accepted (quota_count_message); recipients are
 * checked and counted at RCPT: an address already seen in the window is
 * free, a new one beyond the quota is refused. The first refusal locks the
 * user (QUOTA_EXCEEDED, once); a locked user is refused everything
 * (QUOTA_LOCKED) until quota_unlock, which also resets the counts.
 *
 * Memory is bounded: at most QUOTA_USERS users are tracked (when full, the
 * least recently active unlocked user of a sample of 32 is forgotten) and each keeps at most
 * recipients_per_day + 1 recipient hashes (12 bytes each). Thread-safe:
 * users are spread over QUOTA_SHARDS mutexes by a hash of the name, so loop
 * threads rarely meet on one lock. The clock is a parameter (tests).
 */
#ifndef SG_POLICY_QUOTA_H
#define SG_POLICY_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define QUOTA_SHARDS 64
#define QUOTA_USERS (64 * 1024) /* tracked users, all shards together */
#define QUOTA_HOURS 24

struct quota;

enum quota_verdict {
	QUOTA_OK,
	QUOTA_EXCEEDED, /* this call went over: the user is locked from now on */
	QUOTA_LOCKED, /* already locked */
};

struct quota_counts {
	unsigned messages; /* in the window */
	unsigned recipients; /* distinct, in the window */
};

/* 0 for a limit means none. */
struct quota *quota_new(unsigned messages_per_day, unsigned recipients_per_day);
void quota_free(struct quota *q);
/* New limits (SIGHUP); counts and locks stay. */
void quota_set_limits(struct quota *q, unsigned messages_per_day, unsigned recipients_per_day);
bool quota_is_enabled(const struct quota *q);

/* At MAIL: may user start another message? counts_r (may be NULL) gets
 * the counts. */
enum quota_verdict quota_check_mail(
    struct quota *q, const char *user, time_t now, struct quota_counts *counts_r);
/* After a message of user was accepted. */
void quota_count_message(struct quota *q, const char *user, time_t now);
/* Raises user's count of messages in the window to at least messages (the
 * count of every node of a cluster, which includes this one's): the
 * difference goes into the current hour. Never lowers it. */
void quota_raise_messages(struct quota *q, const char *user, unsigned messages, time_t now);
/* At RCPT: may user send to rcpt (compared without case)? Counts it. */
/* RCPT decided from the shared state of a cluster: over says the
 * recipient is new and every node's distinct recipients of the day
 * already reach the limit; distinct is that count. A locked user stays
 * QUOTA_LOCKED; over locks (QUOTA_EXCEEDED); otherwise rcpt is noted
 * here and the local count raised to distinct (so a fallback to the local
 * count, Redis gone, starts from every node's count). */
enum quota_verdict quota_rcpt_shared(struct quota *q, const char *user, const char *rcpt, bool over,
    unsigned distinct, time_t now, struct quota_counts *counts_r);
enum quota_verdict quota_check_rcpt(
    struct quota *q, const char *user, const char *rcpt, time_t now, struct quota_counts *counts_r);

bool quota_is_locked(struct quota *q, const char *user);
/* Locks user (the state file at start). */
void quota_lock(struct quota *q, const char *user);
/* Unlocks user and forgets its counts. Returns whether it was locked. */
bool quota_unlock(struct quota *q, const char *user);
/* The locked users (malloc'd array of malloc'd names, sorted); returns the
 * count. Free with quota_users_free. */
size_t quota_locked_users(struct quota *q, char ***users_r);
void quota_users_free(char **users, size_t n);

#endif
