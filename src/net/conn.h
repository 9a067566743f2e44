/*
 * conn: one accepted connection, server side: the socket, its TLS layer
 * (implicit, or switched on by STARTTLS), timeouts, and what is pending in
 * each direction. Its owner (a session) sees bytes in, bytes out and a few
 * events; it never touches the socket or the event library.
 *
 * Callbacks run from the loop that owns the connection, never inline from
 * a conn_* call. The owner may call any conn_* function inside them,
 * including conn_free (the connection is then not touched again).
 *
 * Input: bytes read stay in the connection until the owner drains them;
 * read_cb says there are new ones. Output: conn_write queues bytes (the
 * queue has no limit of its own: the owner bounds it, see conn_out_len);
 * drained_cb says everything queued has left.
 */
#ifndef SG_NET_CONN_H
#define SG_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

struct conn;
struct loop;

enum conn_event {
	CONN_TLS_READY, /* the TLS handshake is done */
	CONN_EOF, /* the peer closed its side */
	CONN_ERROR, /* a socket or TLS error (conn_error_text says which) */
	CONN_READ_TIMEOUT, /* reading, and nothing came for the timeout */
	CONN_WRITE_TIMEOUT, /* output pending, and the peer took none of it */
};

struct conn_ops {
	void (*read_cb)(void *arg); /* new input */
	void (*drained_cb)(void *arg); /* all queued output has been written */
	void (*event_cb)(void *arg, enum conn_event ev);
};

/* A plain connection on fd (taken), reading at once. NULL on failure (fd is
 * then closed). */
struct conn *conn_new(struct loop *l, int fd, const struct conn_ops *ops, void *arg);
/* Starts the server side of TLS with ssl (taken, even on failure). Input
 * buffered before it is discarded, as RFC 3207 4.2 asks (CVE-2011-0411:
 * nothing pipelined after STARTTLS may be read as if it came over TLS);
 * queued output should have drained first. CONN_TLS_READY follows. */
int conn_start_tls(struct conn *c, SSL *ssl) __attribute__((warn_unused_result));
/* Closes the connection and frees it; NULL is a no-op. TLS ends with a
 * close_notify (RFC 8446 6.1, so that the peer can tell a complete close
 * from a truncation) unless the connection broke: an error, or a write
 * timeout (a peer that reads nothing would not read that either). */
void conn_free(struct conn *c);

/* The idle timeout in each direction, in seconds. */
void conn_set_timeout(struct conn *c, int seconds);
/* Stops or resumes reading from the socket (input already read stays). */
void conn_read_pause(struct conn *c);
void conn_read_resume(struct conn *c);
/* Stops everything (reading, writing, timeouts): the connection is dead
 * to its owner, which frees it later. */
void conn_stop(struct conn *c);

size_t conn_in_len(struct conn *c);
/* The first n input bytes (n <= conn_in_len), contiguous; valid until the
 * next conn_in_drain or return to the loop. */
const char *conn_in_pullup(struct conn *c, size_t n);
/* Up to niov pieces of the input, in order, without copying; returns how
 * many were filled. Valid like conn_in_pullup's. */
size_t conn_in_peek(struct conn *c, struct iovec *iov, size_t niov);
void conn_in_drain(struct conn *c, size_t n);

void conn_write(struct conn *c, const void *p, size_t n);
size_t conn_out_len(struct conn *c);

/* The TLS session once conn_start_tls has run, else NULL. */
SSL *conn_ssl(const struct conn *c);
bool conn_is_tls(const struct conn *c);
/* After CONN_ERROR: a short static or per-connection text of the error
 * (OpenSSL's reason, or "connection error"); valid until conn_free. */
const char *conn_error_text(struct conn *c);
/* Whether the last CONN_ERROR came with a TLS error (as opposed to a plain
 * socket error). */
bool conn_error_is_tls(const struct conn *c);

#endif
