/*
 * sendquota: what the server does with the sending quotas of
 * policy/quota.h: the replies, the `alert` event, putting
 * an over-quota account's queued mail on hold, the locked-accounts state
 * file, and the [admin] routes that undo a lock.
 *
 * When an account goes over (at MAIL or RCPT) the session gets 452 4.7.1
 * (550 5.7.1 with [limits] quota_action = reject), an `alert` event is
 * logged with user, counts and client, and a job for the sendquota thread
 * (never a loop) moves every message of the account (envelope auth-user)
 * from queue/ to hold/ and rewrites the state file SPOOL/quota-locks (one
 * user per line). New submissions of the account are refused until it is
 * unlocked; the lock survives restarts through the state file. The counts
 * themselves live in memory only: a restart starts a new day.
 *
 * Unlocking: `POST /quota/unlock?user=U` on the admin listener (what
 * `smtpgate user unlock U -c FILE` does), or removing the user from the
 * state file (what that command does when the server does not answer): the
 * thread checks the file every SENDQUOTA_POLL_S seconds and on SIGHUP.
 * Held messages stay held: `smtpgate queue release ID` sends them.
 */
#ifndef SG_SERVER_SENDQUOTA_H
#define SG_SERVER_SENDQUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp/smtp_reply.h"

struct admin;
struct cluster;
struct conf;
struct loop;
struct obs;
struct sendquota;

#define SENDQUOTA_POLL_S 2

/* Loads the state file and starts the thread. NULL with a message in err. */
struct sendquota *sendquota_new(const struct conf *c, struct obs *obs, char *err, size_t errlen);
void sendquota_free(struct sendquota *sq);

/* With [cluster]: counts and holds shared through cl (before it starts).
 * Unset before cl is freed: cluster_free first. */
void sendquota_set_cluster(struct sendquota *sq, struct cluster *cl);

/* Before sendquota_check_mail with [cluster]: asks for the account's count
 * of every node; done(arg) runs on loop within CLUSTER_QUOTA_WAIT_MS, the
 * answer (if any) already in the local count. false: nothing to wait for
 * (no cluster, Redis down, no quota): check at once. */
bool sendquota_fetch(struct sendquota *sq, const struct conf *c, const char *user,
    struct loop *loop, void (*done)(void *arg), void *arg);

/* What every node counted for a recipient (sendquota_rcpt_fetch). */
struct sendquota_shared {
	bool over; /* new, and the day's distinct recipients reach the limit */
	bool held;
	unsigned distinct;
};

/* Before sendquota_check_rcpt with [cluster] and a recipient quota: counts
 * rcpt among the account's recipients of the day on every node; done(arg,
 * answer) runs on loop within CLUSTER_QUOTA_WAIT_MS, answer NULL when
 * Redis did not answer in time (decide locally). false: nothing to wait
 * for: check at once, locally. */
bool sendquota_rcpt_fetch(struct sendquota *sq, const struct conf *c, const char *user,
    const char *rcpt, struct loop *loop,
    void (*done)(void *arg, const struct sendquota_shared *answer), void *arg);

/* At MAIL and RCPT of an authenticated session (c: the session's
 * snapshot). SMTP_R_OK, or the reply to give. shared: the answer of
 * sendquota_rcpt_fetch, NULL to decide from this node's count. */
enum smtp_reply_id sendquota_check_mail(struct sendquota *sq, const struct conf *c,
    const char *user, const char *client, uint64_t session);
enum smtp_reply_id sendquota_check_rcpt(struct sendquota *sq, const struct conf *c,
    const char *user, const char *rcpt, const char *client, uint64_t session,
    const struct sendquota_shared *shared);
/* Before committing: SMTP_R_OK, or the reply when user got locked during
 * the transaction. */
enum smtp_reply_id sendquota_check_data(
    struct sendquota *sq, const struct conf *c, const char *user);
/* A message of user was accepted. */
void sendquota_count_message(struct sendquota *sq, const char *user);

/* Re-reads the state file soon (SIGHUP). */
void sendquota_reload(struct sendquota *sq);
/* POST /quota/unlock?user=U, GET /quota (the locked accounts, JSON). */
void sendquota_admin_routes(struct sendquota *sq, struct admin *a);

/* For the command line with the server stopped: removes user from the
 * state file of spool. 1 removed, 0 was not there, -1 error (errno). */
int sendquota_file_unlock(const char *spool, const char *user);

#endif
