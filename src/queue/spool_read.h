/*
 * spool_read: reading message files (doc/spool.md "Message file"), shared
 * by the queue command, start-up recovery and the delivery scheduler. Where
 * the files are and how they are opened and locked is spool.h's. Nothing
 * here writes to the spool.
 */
#ifndef SG_QUEUE_SPOOL_READ_H
#define SG_QUEUE_SPOOL_READ_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"

/* One message file as read from the spool; env is owned. */
struct spool_read_msg {
	char id[QUEUE_ID_MAX];
	uint64_t body_len;
	uint64_t env_len;
	uint64_t file_size;
	struct envelope *env;
};

/* Reads the trailer and envelope of the message file open at fd, without
 * checking the checksum. -1 with a static message in errstr_r. */
int spool_read_envelope(int fd, struct spool_read_msg *m_r, const char **errstr_r)
    __attribute__((warn_unused_result));
/* Checks the whole file: size, trailer, SHA-256 over everything it covers,
 * that the envelope parses and that its id is id. -1 with errstr_r set. */
int spool_read_verify(int fd, const char *id, const char **errstr_r)
    __attribute__((warn_unused_result));
/* Appends the header section of the body (up to the empty line, or max
 * bytes) to out. -1 with errno set. */
int spool_read_headers(int fd, uint64_t body_len, size_t max, struct buf *out)
    __attribute__((warn_unused_result));
void spool_read_clear(struct spool_read_msg *m);

#endif
