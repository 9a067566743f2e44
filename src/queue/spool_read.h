/*
 * spool_read: the read side of the spool (doc/spool.md), shared by the
 * queue command, start-up recovery and (later) the delivery scheduler.
 * Nothing here writes to the spool.
 */
#ifndef SG_QUEUE_SPOOL_READ_H
#define SG_QUEUE_SPOOL_READ_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"

/* Folders of the spool directory. */
#define SPOOL_INCOMING "incoming" /* being received; never acknowledged */
#define SPOOL_QUEUE "queue" /* committed, waiting for delivery */
#define SPOOL_HOLD "hold" /* committed, held by the operator */
#define SPOOL_CORRUPT "corrupt" /* failed validation at start-up; kept for inspection */
#define SPOOL_LOCK "lock" /* flock()ed by the server that owns the spool */

/* One message file as read from the spool; env is owned. */
struct spool_msg {
	char id[QUEUE_ID_MAX];
	uint64_t body_len;
	uint64_t env_len;
	uint64_t file_size;
	struct envelope *env;
};

/* The ids (names with the shape of a queue id) in spool/folder, sorted, so
 * in arrival order. *ids_r is NULL when there are none. -1 with errno set. */
int spool_list(const char *spool, const char *folder, char ***ids_r, size_t *n_r)
    __attribute__((warn_unused_result));
void spool_list_free(char **ids, size_t n);

/* Reads the trailer and envelope of the message file open at fd, without
 * checking the checksum. -1 with a static message in errstr_r. */
int spool_read_envelope(int fd, struct spool_msg *m_r, const char **errstr_r)
    __attribute__((warn_unused_result));
/* Checks the whole file: size, trailer, SHA-256 over everything it covers,
 * that the envelope parses and that its id is id. -1 with errstr_r set. */
int spool_verify(int fd, const char *id, const char **errstr_r) __attribute__((warn_unused_result));
/* Appends the header section of the body (up to the empty line, or max
 * bytes) to out. -1 with errno set. */
int spool_read_headers(int fd, uint64_t body_len, size_t max, struct buf *out)
    __attribute__((warn_unused_result));
void spool_msg_clear(struct spool_msg *m);

/* Opens the message id in the queue or hold folder and returns the fd; its
 * folder name goes to folder_r. -1 with errno set (ENOENT when it is in neither, EINVAL when id
 * is not an id). */
int spool_open_msg(const char *spool, const char *id, const char **folder_r)
    __attribute__((warn_unused_result));

#endif
