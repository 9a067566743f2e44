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
/* Formats the peer address of a connection ("192.0.2.1", "2001:db8::1"). */
void listener_format_addr(const struct sockaddr *sa, char *out, size_t outlen);
/* Sets TCP_NODELAY (DESIGN 3: TLS 1.3 after-ticket writes otherwise wait
 * for a delayed ACK) and keepalive. */
void listener_tune_conn(int fd);

#endif
