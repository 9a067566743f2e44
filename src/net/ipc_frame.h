/*
 * ipc_frame: the one message format between smtpgate's processes (DESIGN
 * 2.1), a pure codec with no I/O. A frame is a 16-byte header and a
 * payload:
 *
 *   u32 type   (1..IPC_TYPE_MAX; what the payload means is the receiver's
 *               dispatch table's business, server/privsep_msg.h)
 *   u32 len    (payload bytes; header + payload at most IPC_FRAME_MAX)
 *   u64 id     (request id: an answer carries its request's id)
 *
 * all big-endian. The payload is a sequence of fields, each a u32 (4 bytes)
 * or a byte string (u32 length, then the bytes); the message type fixes
 * their order. A frame from another process is as hostile as a client's
 * bytes: every length is checked against what is left and against the
 * receiver's own limit, and a bad frame ends the channel it came on (the
 * receiver closes it; the sender is the one that loses).
 */
#ifndef SG_NET_IPC_FRAME_H
#define SG_NET_IPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_FRAME_HDR 16
#define IPC_FRAME_MAX 65536 /* header included */
#define IPC_PAYLOAD_MAX (IPC_FRAME_MAX - IPC_FRAME_HDR)
#define IPC_TYPE_MAX 255

enum ipc_parse {
	IPC_PARSE_MORE, /* the frame is not complete: read more, parse again */
	IPC_PARSE_OK, /* *f is the frame; it used IPC_FRAME_HDR + f->len bytes */
	IPC_PARSE_BAD, /* not a frame (type 0 or above IPC_TYPE_MAX, len too big) */
};

struct ipc_frame {
	uint32_t type;
	uint64_t id;
	const unsigned char *payload; /* points into the parsed buffer */
	size_t len;
};

/*
 * Parses the frame at the start of buf (len bytes, any split: a prefix of
 * a frame is MORE, never BAD, unless its header already is). BAD is known
 * as soon as the header is complete.
 */
enum ipc_parse ipc_frame_parse(const unsigned char *buf, size_t len, struct ipc_frame *f);

/* Reading a payload's fields. A read past the end, or a string longer than
 * the caller's limit, sets bad; later reads then fail too. */
struct ipc_reader {
	const unsigned char *p;
	size_t len, pos;
	bool bad;
};

void ipc_reader_init(struct ipc_reader *r, const struct ipc_frame *f);
/* 0 / -1. */
int ipc_get_u32(struct ipc_reader *r, uint32_t *v);
/* A byte string of at most max bytes; *data_r points into the frame. */
int ipc_get_bytes(struct ipc_reader *r, size_t max, const unsigned char **data_r, size_t *len_r);
/* A byte string without NUL of at most max bytes, copied into out (max + 1
 * bytes) and NUL-terminated. */
int ipc_get_str(struct ipc_reader *r, char *out, size_t max);
/* True when every field was read and nothing is left: a frame with bytes
 * after its last field is as bad as a short one. */
bool ipc_reader_done(const struct ipc_reader *r);

/* Building a frame in a fixed buffer. A field that does not fit sets
 * overflow; ipc_out_end then fails. */
struct ipc_out {
	unsigned char buf[IPC_FRAME_MAX];
	size_t len;
	bool overflow;
};

void ipc_out_begin(struct ipc_out *o, uint32_t type, uint64_t id);
void ipc_put_u32(struct ipc_out *o, uint32_t v);
void ipc_put_bytes(struct ipc_out *o, const void *data, size_t len);
void ipc_put_str(struct ipc_out *o, const char *s); /* NULL is "" */
/* Writes the length into the header: 0, or -1 when a field did not fit. */
int ipc_out_end(struct ipc_out *o) __attribute__((warn_unused_result));

#endif
