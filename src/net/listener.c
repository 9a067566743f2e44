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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/loop.h"

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

struct listener_accept {
	struct evconnlistener *ev;
	listener_accept_cb *cb;
	void *arg;
};

static void
listener_accept_ev_cb(
    struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener_accept *la = arg;

	la->cb(la->arg, fd, sa);
}

static void
listener_accept_error_cb(struct evconnlistener *ev, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: log and keep going; libevent retries */
	log_event(LOG_ERR, "accept_error", 0, "{s:s}", "error", evutil_socket_error_to_string(e));
}

struct listener_accept *
listener_accept_new(struct loop *l, int fd, listener_accept_cb *cb, void *arg)
{
	struct listener_accept *la = xcalloc(1, sizeof(*la));

	la->cb = cb;
	la->arg = arg;
	la->ev = evconnlistener_new(
	    loop_base(l), listener_accept_ev_cb, la, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (la->ev == NULL) {
		close(fd);
		free(la);
		return NULL;
	}
	evconnlistener_set_error_cb(la->ev, listener_accept_error_cb);
	return la;
}

void
listener_accept_free(struct listener_accept *la)
{
	if (la == NULL)
		return;
	evconnlistener_free(la->ev);
	free(la);
}
