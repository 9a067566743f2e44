/*
 * listener: listening sockets. Each loop thread binds its own socket per
 * configured listener with SO_REUSEPORT, so the kernel spreads connections
 * over threads without a shared accept lock (DESIGN 3).
 */
#ifndef SG_NET_LISTENER_H
#define SG_NET_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

/* A non-blocking, close-on-exec listening socket bound to sa, or -1 with a
 * message in err. */
int listener_socket(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen);
/* Before the SO_REUSEPORT sockets of c's listeners are bound: -1 with a
 * message in err (the listener, its config line and, where /proc tells,
 * the pid and name of the holder) when another process already listens on
 * one of the addresses, which SO_REUSEPORT would otherwise let share them. */
struct conf;
int listener_check_unused(const struct conf *c, char *err, size_t errlen);
/* Formats the peer address of a connection ("192.0.2.1", "2001:db8::1"). */
void listener_format_addr(const struct sockaddr *sa, char *out, size_t outlen);
/* Sets TCP_NODELAY (DESIGN 3: TLS 1.3 after-ticket writes otherwise wait
 * for a delayed ACK) and keepalive. */
void listener_tune_conn(int fd);

/*
 * Accepting on a listening socket, on one loop (net/loop.h). accept_cb gets
 * each new connection: fd (non-blocking, owned by the callee) and the peer.
 * Errors of accept(2) (EMFILE and the like) are logged as "accept_error"
 * and accepting goes on.
 */
struct loop;
struct listener_accept;

typedef void listener_accept_cb(void *arg, int fd, const struct sockaddr *sa);

/* Takes fd; NULL if the loop cannot watch it (fd is then closed). */
struct listener_accept *listener_accept_new(
    struct loop *l, int fd, listener_accept_cb *cb, void *arg);
/* Stops accepting and closes the socket. */
void listener_accept_free(struct listener_accept *la);

#endif
