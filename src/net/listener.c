/*
 * listener: SO_REUSEPORT listening sockets and per-connection socket options.
 */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LISTENER_BACKLOG 1024

void
listener_format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
			return;
		}
		a = &s6->sin6_addr;
	} else if (sa->sa_family == AF_INET) {
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		snprintf(out, outlen, "unknown");
		return;
	}
	if (inet_ntop(sa->sa_family, a, out, (socklen_t)outlen) == NULL)
		snprintf(out, outlen, "unknown");
}

int
listener_socket(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
{
	char addr[64];
	int fd, on = 1;

	listener_format_addr(sa, addr, sizeof(addr));
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket for %s: %s", addr, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) {
		snprintf(err, errlen, "setsockopt on %s: %s", addr, strerror(errno));
		goto fail;
	}
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) {
		snprintf(err, errlen, "IPV6_V6ONLY on %s: %s", addr, strerror(errno));
		goto fail;
	}
	if (bind(fd, sa, len) == -1) {
		snprintf(err, errlen, "cannot bind %s port %d: %s", addr,
		    ntohs(((const struct sockaddr_in *)sa)->sin_port), strerror(errno));
		goto fail;
	}
	if (listen(fd, LISTENER_BACKLOG) == -1) {
		snprintf(err, errlen, "listen on %s: %s", addr, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

void
listener_tune_conn(int fd)
{
	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
}
