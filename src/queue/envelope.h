/*
 * envelope: the text form of a message's envelope and the fixed trailer that
 * closes every spool file (doc/spool.md). Pure: bytes in, bytes out, no I/O.
 *
 * The envelope is versioned, line-based "key: value\n" text. Values are
 * percent-escaped (bytes below 0x20, 0x7f and '%' become %XX), so no field
 * can contain a line break, a NUL or anything that would read as another
 * line. Unknown keys are kept in order (extra), so a reader of this version
 * passes through fields added later (delivery state).
 */
#ifndef SG_QUEUE_ENVELOPE_H
#define SG_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"

/* What a message was accepted with: the session fills it, the spool file
 * keeps it (pointers are borrowed for the call that takes it). */
struct queue_envelope {
	const char *sender; /* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	const char *auth_user; /* NULL when not authenticated */
	const char *client_addr; /* "203.0.113.5" or "2001:db8::1" */
	const char *helo;
	bool smtputf8;
	bool body_8bit; /* BODY=8BITMIME */
	time_t arrival;
};

#define ENVELOPE_VERSION 1
#define ENVELOPE_MAX (16u * 1024 * 1024) /* bytes of envelope text a reader accepts */
#define ENVELOPE_KEY_MAX 64

/* "%%smtpgate 1 body=<16 hex> env=<8 hex> sha256=" <64 hex> "\n" */
#define ENVELOPE_TRAILER_PREFIX_LEN 55
#define ENVELOPE_TRAILER_LEN 120
#define ENVELOPE_HASH_LEN 32

struct envelope_field {
	char *key;
	char *value;
};

/* A parsed envelope; every string is owned by it and NUL-terminated. */
struct envelope {
	unsigned version;
	char *id;
	time_t arrival;
	char *sender; /* "" for the null sender */
	char **rcpts;
	size_t nrcpts;
	char *auth_user; /* NULL when not authenticated */
	char *client_addr;
	char *helo;
	bool smtputf8;
	bool body_8bit;
	struct envelope_field *extra; /* keys this version does not know */
	size_t nextra;
};

/* Appends the envelope text of message id to out. -1 if out's limit is hit. */
int envelope_encode(const char *id, const struct queue_envelope *env, struct buf *out)
    __attribute__((warn_unused_result));
/* Appends one "key: value\n" line, the value escaped as the format says
 * (delivery state: attempts, next-try, rcpt-status). -1 if out's limit is hit. */
int envelope_append_field(struct buf *out, const char *key, const char *value)
    __attribute__((warn_unused_result));
/* Parses envelope text. NULL with a static message in errstr_r when it is
 * malformed. */
struct envelope *envelope_parse(const char *p, size_t len, const char **errstr_r);
void envelope_free(struct envelope *e);

/* Writes the trailer bytes covered by the checksum (no NUL). */
void envelope_trailer_prefix(
    uint64_t body_len, uint64_t env_len, char out[ENVELOPE_TRAILER_PREFIX_LEN]);
/* Writes the rest of the trailer: the hash in hex and "\n". */
void envelope_trailer_suffix(const unsigned char hash[ENVELOPE_HASH_LEN],
    char out[ENVELOPE_TRAILER_LEN - ENVELOPE_TRAILER_PREFIX_LEN]);
/* Parses the ENVELOPE_TRAILER_LEN bytes at p. -1 if they are not a trailer. */
int envelope_trailer_parse(const char *p, uint64_t *body_len_r, uint64_t *env_len_r,
    unsigned char hash_r[ENVELOPE_HASH_LEN]) __attribute__((warn_unused_result));

#endif
