/*
 * audit_cluster: see audit_cluster.h.
 *
 * Whether a registration of this node's name is this node's own: the
 * record names the host and the real path of the configuration of the
 * instance that made it, so the node itself (running beside the audit, or
 * just restarted: the record lives CLUSTER_NODE_TTL_S) matches, and
 * another host, or another configuration on this host, does not.
 */
#include "diag/audit_cluster.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "cluster/cluster.h"
#include "cluster/cluster_sync.h"
#include "conf/conf.h"

static bool
audit_cluster_is_self(const struct conf *c, const struct cluster_msg_node *n)
{
	char host[256], *real;
	bool self;

	if (n->host[0] == '\0')
		return true; /* an older node's record: it cannot tell */
	if (gethostname(host, sizeof(host)) == -1)
		return true;
	host[sizeof(host) - 1] = '\0';
	if (strcmp(host, n->host) != 0)
		return false;
	real = realpath(c->path, NULL);
	self = strcmp(n->path, c->path) == 0 || (real != NULL && strcmp(n->path, real) == 0);
	free(real);
	return self;
}

static void
audit_cluster_name(const struct conf *c, const struct cluster_sync_audit *a, struct findings *f)
{
	const char *prefix = c->cluster_prefix != NULL ? c->cluster_prefix : "smtpgate:";

	if (a->registered && !audit_cluster_is_self(c, &a->holder))
		findings_add(f, "cluster-node-name-clash",
		    "[cluster] (%s:%d) node = %s: %snode:%s is held by a live node on host %s "
		    "(pid %ld, configuration %s)",
		    c->path, c->cluster_line, c->cluster_node, prefix, c->cluster_node,
		    a->holder.host, a->holder.pid, a->holder.path[0] ? a->holder.path : "unknown");
	else if (a->clash)
		findings_add(f, "cluster-node-name-clash",
		    "[cluster] (%s:%d) node = %s: %sclash lists it (two live nodes registered "
		    "this name in the last %d s)",
		    c->path, c->cluster_line, c->cluster_node, prefix, CLUSTER_NODE_TTL_S * 4);
}

static void
audit_cluster_prefix(const struct conf *c, const struct cluster_sync_audit *a, struct findings *f)
{
	char list[CLUSTER_SYNC_AUDIT_PREFIXES * 132] = "";
	size_t len = 0;

	if (a->ours > 0 || a->nprefixes == 0)
		return;
	for (size_t i = 0; i < a->nprefixes; i++) {
		int r = snprintf(
		    list + len, sizeof(list) - len, "%s\"%s\"", i ? ", " : "", a->prefixes[i]);

		if (r < 0 || (size_t)r >= sizeof(list) - len)
			break;
		len += (size_t)r;
	}
	findings_add(f, "cluster-prefix-not-shared",
	    "[cluster] (%s:%d) key_prefix = \"%s\": no node is registered under it in %s, %u %s "
	    "under %s",
	    c->path, c->cluster_line,
	    c->cluster_prefix != NULL ? c->cluster_prefix : "smtpgate:", c->cluster_redis,
	    a->others, a->others == 1 ? "is" : "are", list);
}

/* ADDR in l's proxy_from (as proxy_accept judges it). */
static bool
audit_cluster_in_proxy_from(const struct conf_listen *l, const char *addr)
{
	unsigned char a[16];
	int family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;

	if (inet_pton(family, addr, a) != 1)
		return false;
	for (size_t i = 0; i < l->nproxy_from; i++) {
		if (conf_cidr_contains(&l->proxy_from[i], family, a))
			return true;
	}
	return false;
}

/* One finding per listener: the peers it refused (a few named). */
static void
audit_cluster_refused(
    const struct conf *c, time_t now, const struct cluster_sync_audit *a, struct findings *f)
{
	for (size_t j = 0; j < c->nlistens; j++) {
		const struct conf_listen *l = &c->listens[j];
		char list[512] = "", when[32] = "";
		unsigned n = 0;
		size_t len = 0;
		time_t last = 0;
		struct tm tm;

		if (!l->proxy_protocol)
			continue;
		for (size_t i = 0; i < a->nrefused; i++) {
			const struct cluster_msg_refused *r = &a->refused[i];
			int w;

			/* a peer the configuration now lets in was fixed since */
			if (now - (time_t)r->last_s > AUDIT_CLUSTER_REFUSED_S ||
			    strcmp(l->name, r->listener) != 0 ||
			    audit_cluster_in_proxy_from(l, r->address))
				continue;
			if ((time_t)r->last_s > last)
				last = (time_t)r->last_s;
			if (n++ >= 8)
				continue;
			w = snprintf(
			    list + len, sizeof(list) - len, "%s%s", len ? ", " : "", r->address);
			if (w > 0 && (size_t)w < sizeof(list) - len)
				len += (size_t)w;
		}
		if (n == 0)
			continue;
		gmtime_r(&last, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		findings_add(f, "cluster-proxy-from-missing",
		    "[listen %s] (%s): node %s refused connections from %s%s, not in proxy_from "
		    "(%u address%s, the last at %s)",
		    l->name, c->path, c->cluster_node, list, n > 8 ? " ..." : "", n,
		    n == 1 ? "" : "es", when);
	}
}

void
audit_cluster(const struct conf *c, time_t now, struct findings *f)
{
	struct cluster_sync_audit *a;
	struct cluster_sync *cs;
	enum cluster_sync_fail why;
	char err[1024];

	if (!c->cluster)
		return;
	cs = cluster_sync_connect(c, &why, err, sizeof(err));
	if (cs == NULL) {
		findings_add(f,
		    why == CLUSTER_SYNC_FAIL_AUTH ? "cluster-redis-auth-failed"
		                                  : "cluster-redis-unreachable",
		    "[cluster] (%s:%d) redis = %s%s: %s", c->path,
		    why == CLUSTER_SYNC_FAIL_AUTH && c->cluster_password_line > 0
		        ? c->cluster_password_line
		        : c->cluster_line,
		    c->cluster_redis,
		    c->cluster_password_file == NULL ? " (no redis_password_file)" : "", err);
		return;
	}
	a = malloc(sizeof(*a));
	if (a == NULL) {
		cluster_sync_close(cs);
		return;
	}
	if (cluster_sync_audit(cs, c->cluster_node, a, err, sizeof(err)) == -1) {
		findings_add(f, "cluster-redis-unreachable", "[cluster] (%s:%d) redis = %s: %s",
		    c->path, c->cluster_line, c->cluster_redis, err);
	} else {
		audit_cluster_name(c, a, f);
		audit_cluster_prefix(c, a, f);
		audit_cluster_refused(c, now, a, f);
	}
	free(a);
	cluster_sync_close(cs);
}
