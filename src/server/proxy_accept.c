/*
 * proxy_accept: reads the PROXY protocol header of a new connection on a
 * loop thread, then hands the connection to the session (proxy_accept.h).
 *
 * A connection waiting for its header is a struct proxy_conn on its
 * worker's list (w->proxy_conns), so shutdown can close it; it is not a
 * session yet: no greeting, no limiter count, no "connect" log.
 *
 * The header is read with MSG_PEEK and then exactly the bytes the parser
 * used are taken off the socket: whatever follows it (the client's first
 * command, a TLS ClientHello on an implicit-TLS listener) stays in the
 * kernel for the session's own bufferevent. Until the header is complete
 * every byte belongs to it (proxy_proto.h), so nothing is peeked twice and
 * the read event does not spin on data already seen.
 *
 * Refusals (peer not in proxy_from, malformed header, timeout, close) log
 * a "proxy_reject" event, count smtpgate_proxy_rejects_total{reason}, and
 * close without a byte sent: the peer is a balancer (which logs the close)
 * or someone who should not learn what listens here. With [cluster], a
 * peer not in proxy_from is also noted in Redis for `smtpgate audit`.
 */
#include "server/proxy_accept.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cluster/cluster.h"
#include "conf/conf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/proxy_proto.h"
#include "server/obs.h"
#include "server/server.h"
#include "server/session.h"

/* Bytes looked at per read; any size works, the parser keeps its state. */
#define PROXY_ACCEPT_PEEK 512

struct proxy_conn {
	struct proxy_conn *prev, *next; /* w->proxy_conns */
	struct worker *w;
	struct server_snap *snap;
	size_t li;
	int fd;
	struct sockaddr_storage peer; /* the balancer */
	char peer_str[64];
	struct loop_io *read_io;
	struct loop_timer *timer; /* one deadline for the whole header */
	struct proxy_proto pp;
};

/* Whether sa (an IPv4-mapped IPv6 address counts as IPv4) is in proxy_from. */
static bool
proxy_accept_is_allowed(const struct conf_listen *l, const struct sockaddr *sa)
{
	const unsigned char *a;
	int family = sa->sa_family;

	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		a = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			a += 12;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < l->nproxy_from; i++) {
		if (conf_cidr_contains(&l->proxy_from[i], family, a))
			return true;
	}
	return false;
}

/* Unlinks and frees pc; closes its socket unless it went to a session. */
static void
proxy_conn_free(struct proxy_conn *pc, bool close_fd)
{
	struct worker *w = pc->w;

	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		w->proxy_conns = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	loop_io_free(pc->read_io);
	loop_timer_free(pc->timer);
	if (close_fd) {
		close(pc->fd);
		server_snap_put(pc->snap);
	}
	free(pc);
}

static void
proxy_accept_log_reject(struct worker *w, const char *client, const char *listener,
    const char *metric, const char *reason)
{
	log_event(LOG_NOTICE, "proxy_reject", 0, "{s:s, s:s, s:s}", "client", client, "listener",
	    listener, "reason", reason);
	obs_proxy_reject(w->srv->obs, metric);
}

static void
proxy_accept_reject(struct proxy_conn *pc, const char *metric, const char *reason)
{
	proxy_accept_log_reject(
	    pc->w, pc->peer_str, pc->snap->conf->listens[pc->li].name, metric, reason);
	proxy_conn_free(pc, true);
}

/* The header is in: the session starts with the client it names (PROXY),
 * or with the balancer itself (LOCAL: its health check; v1 UNKNOWN). */
static void
proxy_accept_done(struct proxy_conn *pc)
{
	struct worker *w = pc->w;
	struct server_snap *snap = pc->snap;
	struct sockaddr_storage client, peer = pc->peer;
	size_t li = pc->li;
	int fd = pc->fd;

	client = pc->pp.result.command == PROXY_PROTO_PROXY ? pc->pp.result.src : pc->peer;
	proxy_conn_free(pc, false);
	if (__atomic_load_n(&w->srv->shutting_down, __ATOMIC_RELAXED)) {
		close(fd);
		server_snap_put(snap);
		return;
	}
	session_start(
	    w, snap, li, fd, (const struct sockaddr *)&client, (const struct sockaddr *)&peer);
}

static void
proxy_accept_timeout_cb(void *arg)
{
	proxy_accept_reject(arg, "timeout", "no complete PROXY protocol header in time");
}

static void
proxy_accept_read_cb(void *arg)
{
	struct proxy_conn *pc = arg;
	unsigned char buf[PROXY_ACCEPT_PEEK];
	enum proxy_proto_status st;
	int fd = pc->fd;
	size_t used;
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		proxy_accept_reject(pc, "closed",
		    n == 0 ? "connection closed before the PROXY protocol header ended"
		           : strerror(errno));
		return;
	}
	st = proxy_proto_feed(&pc->pp, buf, (size_t)n, &used);
	if (st == PROXY_PROTO_ERROR) {
		proxy_accept_reject(pc, "malformed", pc->pp.errstr);
		return;
	}
	/* take the header's bytes only (the peek above guarantees they are there) */
	if (recv(fd, buf, used, 0) != (ssize_t)used) {
		proxy_accept_reject(pc, "closed", "cannot read the PROXY protocol header");
		return;
	}
	if (st == PROXY_PROTO_DONE)
		proxy_accept_done(pc);
}

void
proxy_accept_start(
    struct worker *w, struct server_snap *snap, size_t li, int fd, const struct sockaddr *sa)
{
	const struct conf *c = snap->conf;
	const struct conf_listen *l = &c->listens[li];
	long timeout_s = PROXY_ACCEPT_TIMEOUT_S;
	struct proxy_conn *pc;

	if (!proxy_accept_is_allowed(l, sa)) {
		char peer[64];

		listener_format_addr(sa, peer, sizeof(peer));
		proxy_accept_log_reject(w, peer, l->name, "not_allowed", "not in proxy_from");
		/* a balancer missing from proxy_from shows in `smtpgate audit` */
		if (w->srv->cluster != NULL)
			cluster_proxy_refused(w->srv->cluster, l->name, peer);
		close(fd);
		server_snap_put(snap);
		return;
	}
	pc = xcalloc(1, sizeof(*pc));
	pc->w = w;
	pc->snap = snap;
	pc->li = li;
	pc->fd = fd;
	memcpy(&pc->peer, sa,
	    sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	listener_format_addr(sa, pc->peer_str, sizeof(pc->peer_str));
	proxy_proto_init(&pc->pp);
	pc->next = w->proxy_conns;
	if (pc->next != NULL)
		pc->next->prev = pc;
	w->proxy_conns = pc;
	if (c->timeout_command < PROXY_ACCEPT_TIMEOUT_S)
		timeout_s = c->timeout_command;
	pc->read_io = loop_io_new(w->loop, fd, proxy_accept_read_cb, pc);
	pc->timer = loop_timer_new(w->loop, proxy_accept_timeout_cb, pc);
	loop_timer_add(pc->timer, timeout_s * 1000);
}

void
proxy_accept_close_all(struct worker *w)
{
	while (w->proxy_conns != NULL)
		proxy_conn_free(w->proxy_conns, true);
}
