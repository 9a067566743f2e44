/*
 * listener: SO_REUSEPORT listening sockets and per-connection socket options.
 *
 * SO_REUSEPORT lets the loop threads of one server share an address, but it
 * lets any other process of the same user join the group too, and the kernel
 * then splits the connections (and the mail) between them without a word.
 * listener_check_unused() closes that gap before the sockets are bound: a
 * probe socket without SO_REUSEPORT cannot bind where anyone listens, so
 * EADDRINUSE means the address is taken, and /proc names the holder.
 */
#include "net/listener.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
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

/* The listening socket of /proc/net/tcp{,6} that overlaps sa, if any. */
struct listener_holder {
	unsigned long inode;
	unsigned uid;
	pid_t pid; /* -1 when /proc does not show it (another user's process) */
	char comm[32];
};

/* hex is an address as /proc/net/tcp prints it: the 32-bit words of the
 * address in network order, each printed as a host-order number. */
static bool
listener_proc_addr(const char *hex, void *out, size_t len)
{
	uint32_t words[4];
	size_t n = len / 4;

	if (strlen(hex) != n * 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		char w[9];

		memcpy(w, hex + i * 8, 8);
		w[8] = '\0';
		words[i] = (uint32_t)strtoul(w, NULL, 16);
	}
	memcpy(out, words, len);
	return true;
}

/* Whether a listening socket at hex:port of family fam overlaps sa: the same
 * port, and the same address or a wildcard on either side. A v6 wildcard
 * may be dual-stack (/proc does not show IPV6_V6ONLY), so it counts for v4. */
static bool
listener_proc_overlaps(int fam, const char *hex, unsigned port, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		struct in6_addr a6;
		struct in_addr a;

		if (port != ntohs(sin->sin_port))
			return false;
		if (fam == AF_INET6)
			return listener_proc_addr(hex, &a6, sizeof(a6)) &&
			    IN6_IS_ADDR_UNSPECIFIED(&a6);
		return listener_proc_addr(hex, &a, sizeof(a)) &&
		    (a.s_addr == htonl(INADDR_ANY) || sin->sin_addr.s_addr == htonl(INADDR_ANY) ||
		        a.s_addr == sin->sin_addr.s_addr);
	} else if (sa->sa_family == AF_INET6 && fam == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		struct in6_addr a6;

		return port == ntohs(sin6->sin6_port) && listener_proc_addr(hex, &a6, sizeof(a6)) &&
		    (IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ||
		        memcmp(&a6, &sin6->sin6_addr, sizeof(a6)) == 0);
	}
	return false;
}

/* Finds the listening socket that overlaps sa in one /proc/net table. */
static bool
listener_proc_find(const char *table, int fam, const struct sockaddr *sa, struct listener_holder *h)
{
	char line[512], hex[40];
	unsigned port, state, uid;
	unsigned long inode;
	bool found = false;
	FILE *fp = fopen(table, "r");

	if (fp == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %u %*d %lu", hex,
		        &port, &state, &uid, &inode) != 5)
			continue;
		if (state != 0x0A /* TCP_LISTEN */ || !listener_proc_overlaps(fam, hex, port, sa))
			continue;
		h->inode = inode;
		h->uid = uid;
		found = true;
	}
	fclose(fp);
	return found;
}

/* The process with a descriptor on socket inode h->inode, where /proc lets
 * us see it (our own processes, or all of them as root). */
static void
listener_proc_pid(struct listener_holder *h)
{
	char want[64], path[PATH_MAX], link[64];
	struct dirent *pe, *fe;
	DIR *proc = opendir("/proc"), *fds;
	FILE *fp;

	h->pid = -1;
	if (proc == NULL)
		return;
	snprintf(want, sizeof(want), "socket:[%lu]", h->inode);
	while (h->pid == -1 && (pe = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)pe->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		if ((fds = opendir(path)) == NULL)
			continue; /* gone, or not ours to see */
		while ((fe = readdir(fds)) != NULL) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", pe->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) == 0) {
				h->pid = (pid_t)strtol(pe->d_name, NULL, 10);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	if (h->pid == -1)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)h->pid);
	if ((fp = fopen(path, "r")) != NULL) {
		if (fgets(h->comm, sizeof(h->comm), fp) != NULL)
			h->comm[strcspn(h->comm, "\n")] = '\0';
		fclose(fp);
	}
}

/* " (held by pid 1234, smtpgate)" or " (held by a process of uid 1001)", or
 * "" when /proc does not tell. */
static void
listener_describe_holder(const struct sockaddr *sa, char *out, size_t outlen)
{
	struct listener_holder h = {.pid = -1};

	out[0] = '\0';
	if (!listener_proc_find("/proc/net/tcp", AF_INET, sa, &h) &&
	    !listener_proc_find("/proc/net/tcp6", AF_INET6, sa, &h))
		return;
	listener_proc_pid(&h);
	if (h.pid != -1)
		snprintf(out, outlen, " (held by pid %ld, %s, uid %u)", (long)h.pid,
		    h.comm[0] != '\0' ? h.comm : "?", h.uid);
	else
		snprintf(out, outlen, " (held by a process of uid %u)", h.uid);
}

/* A kernel without IPv6 has no AF_INET6 sockets (EAFNOSUPPORT); with IPv6
 * disabled by sysctl, [::] still binds (and stays silent) but an IPv6
 * address such as [::1] does not exist (EADDRNOTAVAIL). Either way the fix is
 * in the configuration, not in the server. */
static const char *
listener_no_v6_hint(const struct sockaddr *sa, int e)
{
	if (sa->sa_family != AF_INET6)
		return "";
	if (e == EAFNOSUPPORT)
		return " (this host has no IPv6: remove this listener)";
	if (e == EADDRNOTAVAIL)
		return " (no interface has this IPv6 address: is IPv6 disabled on this host?)";
	return "";
}

/* Binds a socket without SO_REUSEPORT to sa and closes it again: if that
 * fails with EADDRINUSE, someone else listens there, and our SO_REUSEPORT
 * sockets would either fail too or silently share the connections with it. */
static int
listener_check_one(const struct conf_listen *l, char *err, size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr;
	char holder[128];
	int fd, on = 1, rc = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "[listen %s] (line %d): socket for %s: %s%s", l->name,
		    l->line, l->address, strerror(errno), listener_no_v6_hint(sa, errno));
		return -1;
	}
	/* SO_REUSEADDR only passes over TIME_WAIT connections of an earlier
	 * run; a listening socket still makes the bind fail */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, sa, l->addrlen) == -1) {
		int e = errno;

		rc = -1;
		if (e == EADDRINUSE) {
			listener_describe_holder(sa, holder, sizeof(holder));
			snprintf(err, errlen,
			    "[listen %s] (line %d): address %s is already in use by another "
			    "process%s: stop it (an older smtpgate?) or choose another address",
			    l->name, l->line, l->address, holder);
		} else {
			snprintf(err, errlen, "[listen %s] (line %d): cannot bind address %s: %s%s",
			    l->name, l->line, l->address, strerror(e), listener_no_v6_hint(sa, e));
		}
	}
	close(fd);
	return rc;
}

int
listener_check_unused(const struct conf *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		if (listener_check_one(&c->listens[i], err, errlen) == -1)
			return -1;
	}
	return 0;
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
