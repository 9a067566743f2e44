/*
 * qfile: one queued message as the delivery side sees it: the file in
 * queue/ opened and flock()ed (the lock `smtpgate queue del|hold` also
 * takes, so neither acts on a message the other is working on), its
 * envelope, its body mapped read-only, and its delivery state
 * (doc/spool.md: attempts, next-try, warned, rcpt-status).
 *
 * Writes follow the spool's rules: a changed envelope is a whole new file
 * (body copied, new envelope, new trailer and checksum) written in
 * incoming/, fsync'd, locked, renamed over queue/ID, then queue/ fsync'd;
 * a message leaves the queue by unlink + fsync of queue/.
 */
#ifndef SG_QUEUE_QFILE_H
#define SG_QUEUE_QFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/envelope.h"
#include "queue/queue.h"

enum qfile_state {
	QFILE_PENDING, /* never tried */
	QFILE_DEFERRED, /* a transient failure: retried */
	QFILE_HELD, /* needs an admin (535/534/530, no STARTTLS/AUTH): `queue flush` */
	QFILE_SENT, /* final: accepted by the next hop */
	QFILE_FAILED, /* final: refused or expired; the DSN (if any) is queued */
};

struct qfile_rcpt {
	enum qfile_state state;
	int code; /* last reply code; 0: none (connection trouble) */
	char enh[16]; /* "" when none */
	long long when; /* seconds since the epoch of the last result */
	char *text; /* the reason: reply line or error; owned; NULL when pending */
};

struct qfile {
	char id[QUEUE_ID_MAX];
	int fd; /* open and flock()ed */
	uint64_t body_len;
	const char *body; /* mapped; body_len bytes */
	void *map;
	size_t map_len;
	struct envelope *env;
	unsigned attempts;
	long long next_try; /* seconds since the epoch; 0: none; QFILE_NEVER: held */
	long long warned; /* seconds since the epoch the delay DSN was queued; 0: none */
	struct qfile_rcpt *rcpt; /* env->nrcpts */
};

#define QFILE_NEVER 0x7fffffffffffLL /* next-try of a message waiting for an admin */

/* Opens and locks queue/ID (spool_fd: the spool) without waiting and reads
 * it. -1 with errno: ENOENT gone (deleted, held), EBUSY locked by someone
 * else, EBADMSG unreadable (errstr_r says why). */
int qfile_open(int spool_fd, const char *id, struct qfile **q_r, const char **errstr_r)
    __attribute__((warn_unused_result));
/* Closes and unlocks; q may be NULL. */
void qfile_close(struct qfile *q);
/* Writes the delivery state durably (new file, rename over, fsync). */
int qfile_save(struct qfile *q, int spool_fd) __attribute__((warn_unused_result));
/* Removes the message from the queue durably. */
int qfile_remove(struct qfile *q, int spool_fd) __attribute__((warn_unused_result));
/* Queues a new message (a DSN) durably; its id goes to id_r. */
int qfile_create(int spool_fd, const char *body, size_t len, const struct queue_envelope *env,
    char id_r[QUEUE_ID_MAX]) __attribute__((warn_unused_result));

void qfile_set(struct qfile_rcpt *r, enum qfile_state state, int code, const char *enh,
    long long when, const char *text);
bool qfile_is_final(enum qfile_state s);
const char *qfile_state_name(enum qfile_state s);

/* Pure: parses the delivery state fields of an envelope into the arrays
 * (rcpt has nrcpts entries). Unparsable values are ignored (pending, 0).
 * warned_r may be NULL. */
void qfile_parse_state(const struct envelope *e, unsigned *attempts_r, long long *next_try_r,
    long long *warned_r, struct qfile_rcpt *rcpt);
/* Pure: the envelope text of e with the delivery state replaced (warned 0:
 * no warned field). */
int qfile_encode(const struct envelope *e, unsigned attempts, long long next_try, long long warned,
    const struct qfile_rcpt *rcpt, struct buf *out) __attribute__((warn_unused_result));

#endif
