/*
 * probe_resolve: the addresses of the probe's HOST: the system's resolver
 * (getaddrinfo), or with --resolver libunbound forwarding to that server
 * (so a test's or a split-horizon server answers). A name without address
 * is name-unresolvable.
 */
#include "diag/probe_priv.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>

static void
probe_resolve_addr(struct probe *p, int family, const void *a, unsigned port)
{
	struct sockaddr_storage *ss;

	if (p->naddrs == PROBE_ADDRS_MAX)
		return;
	ss = &p->addrs[p->naddrs];
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, a, 4);
		p->addrlens[p->naddrs++] = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, a, 16);
		p->addrlens[p->naddrs++] = sizeof(*s6);
	}
}

/* A and AAAA of the host through the given resolver (libunbound, forwarding
 * to it, so a test's or a split-horizon server answers). */
static int
probe_resolve_unbound(struct probe *p, unsigned port)
{
	const struct probe_opts *o = p->o;
	struct ub_ctx *ctx = ub_ctx_create();
	char fwd[300], addr[260];
	const char *colon;
	int rc = -1;

	if (ctx == NULL)
		return -1;
	/* "ADDR", "ADDR:PORT", "[V6]:PORT" -> unbound's "ADDR@PORT" */
	if (o->resolver[0] == '[') {
		const char *end = strchr(o->resolver, ']');

		if (end == NULL || (size_t)(end - o->resolver - 1) >= sizeof(addr))
			goto bad;
		snprintf(addr, sizeof(addr), "%.*s", (int)(end - o->resolver - 1), o->resolver + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strchr(o->resolver, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address */
		snprintf(addr, sizeof(addr), "%.*s",
		    colon ? (int)(colon - o->resolver) : (int)strlen(o->resolver), o->resolver);
	}
	snprintf(fwd, sizeof(fwd), "%s%s%s", addr, colon ? "@" : "", colon ? colon + 1 : "");
	/* the given server answers everything: also loopback servers, and the
	 * names libunbound would otherwise answer itself (RFC 6761 "test.",
	 * RFC 8375 "home.arpa.": lab and test setups use them) */
	if (ub_ctx_set_option(ctx, "do-not-query-localhost:", "no") != 0 ||
	    ub_ctx_set_fwd(ctx, fwd) != 0)
		goto bad;
	(void)ub_ctx_zone_remove(ctx, "test.");
	(void)ub_ctx_zone_remove(ctx, "home.arpa.");
	client_transcript_addf(&p->t, CLIENT_T_INFO, "resolving %s with %s", o->host, fwd);
	for (int k = 0; k < 2; k++) {
		struct ub_result *res = NULL;
		int type = k == 0 ? 1 : 28; /* A, AAAA */

		int err = ub_resolve(ctx, o->host, type, 1, &res);

		if (err != 0 || res == NULL) {
			client_transcript_addf(&p->t, CLIENT_T_INFO, "%s lookup failed: %s",
			    type == 1 ? "A" : "AAAA", ub_strerror(err));
			ub_resolve_free(res);
			continue;
		}
		if (!res->havedata)
			client_transcript_addf(&p->t, CLIENT_T_INFO, "%s: no %s record (rcode %d)",
			    o->host, type == 1 ? "A" : "AAAA", res->rcode);
		for (int i = 0; res->havedata && res->data[i] != NULL; i++) {
			if (type == 1 && res->len[i] == 4)
				probe_resolve_addr(p, AF_INET, res->data[i], port);
			else if (type == 28 && res->len[i] == 16)
				probe_resolve_addr(p, AF_INET6, res->data[i], port);
		}
		ub_resolve_free(res);
	}
	rc = p->naddrs > 0 ? 0 : -1;
	if (rc == -1)
		probe_add(p, "name-unresolvable", "no A or AAAA record for %s from the resolver %s",
		    o->host, o->resolver);
	ub_ctx_delete(ctx);
	return rc;
bad:
	fprintf(stderr, "smtpgate probe: bad --resolver \"%s\"\n", o->resolver);
	p->local_error = true;
	ub_ctx_delete(ctx);
	return -1;
}

int
probe_resolve(struct probe *p)
{
	struct addrinfo hints, *res = NULL;
	unsigned char tmp[16];
	unsigned port = (unsigned)strtoul(p->port, NULL, 10);
	int rc;

	if (p->o->resolver != NULL && inet_pton(AF_INET, p->o->host, tmp) != 1 &&
	    inet_pton(AF_INET6, p->o->host, tmp) != 1)
		return probe_resolve_unbound(p, port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(p->o->host, p->port, &hints, &res);
	if (rc != 0) {
		probe_add(
		    p, "name-unresolvable", "cannot resolve %s: %s", p->o->host, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL && p->naddrs < PROBE_ADDRS_MAX;
	     ai = ai->ai_next) {
		memcpy(&p->addrs[p->naddrs], ai->ai_addr, ai->ai_addrlen);
		p->addrlens[p->naddrs++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
}
