/*
 * dns_resolve: libunbound wrapper (see dns_resolve.h).
 *
 * Each query is ub_resolve_async on a threaded context, then poll() on
 * ub_fd until the callback has run or the deadline passed (ub_cancel). After
 * DNS_TIMEOUTS_MAX timeouts the resolver is taken as unreachable and later
 * queries fail at once, so a dead resolver costs seconds, not minutes.
 *
 * With --resolver every question goes to that server, including names that
 * unbound answers locally by default (RFC 6761 test., the documentation
 * reverse zones): a lab resolver may serve them, and the user asked for it.
 */
#include "dns/dns_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "lib/xalloc.h"

#define DNS_NAME_TEXT_MAX 1024 /* 255 bytes, each at most "\DDD" */

struct dns_resolver {
	struct ub_ctx *ctx;
	char *anchor;
	char *forwarder;
	double timeout;
	int timeouts;
};

/* Names unbound answers itself unless told otherwise (its default local
 * zones that a lab or a split-horizon resolver may really serve). */
static const char *const dns_special_zones[] = {
    "test.",
    "invalid.",
    "home.arpa.",
    "2.0.192.in-addr.arpa.",
    "100.51.198.in-addr.arpa.",
    "113.0.203.in-addr.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.",
};

static const char *const dns_root_anchors[] = {
    "/usr/share/dns/root.key", /* dns-root-data */
    "/var/lib/unbound/root.key", /* unbound-anchor */
    "/etc/unbound/root.key",
};

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NODATA:
		return "nodata";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_SERVFAIL:
		return "servfail";
	case DNS_TIMEOUT:
		return "timeout";
	case DNS_BOGUS:
		return "bogus";
	}
	return "?";
}

const char *
dns_security_name(enum dns_security s)
{
	switch (s) {
	case DNS_SECURE:
		return "secure";
	case DNS_SEC_BOGUS:
		return "bogus";
	default:
		return "insecure";
	}
}

const char *
dns_type_name(int type)
{
	switch (type) {
	case DNS_TYPE_A:
		return "A";
	case DNS_TYPE_CNAME:
		return "CNAME";
	case DNS_TYPE_PTR:
		return "PTR";
	case DNS_TYPE_MX:
		return "MX";
	case DNS_TYPE_TXT:
		return "TXT";
	case DNS_TYPE_AAAA:
		return "AAAA";
	case DNS_TYPE_TLSA:
		return "TLSA";
	}
	return "?";
}

/* "ADDR" -> "ADDR"; "ADDR:PORT" -> "ADDR@PORT"; "[V6]:PORT" -> "V6@PORT";
 * a bare IPv6 address stays as it is. Returns NULL when malformed. */
static char *
dns_forwarder_parse(const char *s)
{
	char host[128], *out = NULL;
	const char *port = NULL, *colon;
	unsigned char tmp[16];
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL)
			return NULL;
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host))
			return NULL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return NULL;
	} else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return NULL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon + 1;
	} else {
		if (strlen(s) >= sizeof(host))
			return NULL;
		snprintf(host, sizeof(host), "%s", s);
	}
	if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1)
		return NULL;
	if (port != NULL) {
		char *end;
		long p = strtol(port, &end, 10);

		if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
			return NULL;
		if (asprintf(&out, "%s@%ld", host, p) == -1)
			abort();
		return out;
	}
	return xstrdup(host);
}

struct dns_resolver *
dns_resolver_new(const struct dns_resolver_opts *o, char *err, size_t errlen)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	const char *anchor = NULL;
	int rc;

	r->timeout = o->timeout > 0 ? o->timeout : 5.0;
	r->ctx = ub_ctx_create();
	if (r->ctx == NULL) {
		snprintf(err, errlen, "cannot create the resolver context");
		goto fail;
	}
	if ((rc = ub_ctx_async(r->ctx, 1)) != 0) {
		snprintf(err, errlen, "resolver: %s", ub_strerror(rc));
		goto fail;
	}
	if (o->resolver != NULL) {
		r->forwarder = dns_forwarder_parse(o->resolver);
		if (r->forwarder == NULL) {
			snprintf(err, errlen,
			    "bad --resolver \"%s\" (ADDR, ADDR:PORT or [V6]:PORT)", o->resolver);
			goto fail;
		}
		/* unbound refuses to query loopback addresses by default */
		if ((rc = ub_ctx_set_option(r->ctx, "do-not-query-localhost:", "no")) != 0 ||
		    (rc = ub_ctx_set_fwd(r->ctx, r->forwarder)) != 0) {
			snprintf(err, errlen, "resolver %s: %s", o->resolver, ub_strerror(rc));
			goto fail;
		}
	} else if ((rc = ub_ctx_resolvconf(r->ctx, NULL)) != 0) {
		snprintf(err, errlen, "cannot read /etc/resolv.conf: %s", ub_strerror(rc));
		goto fail;
	}
	if (o->trust_anchor != NULL && strcmp(o->trust_anchor, "none") != 0) {
		if (access(o->trust_anchor, R_OK) != 0) {
			snprintf(
			    err, errlen, "trust anchor %s: %s", o->trust_anchor, strerror(errno));
			goto fail;
		}
		anchor = o->trust_anchor;
	} else if (o->trust_anchor == NULL) {
		for (size_t i = 0; i < sizeof(dns_root_anchors) / sizeof(dns_root_anchors[0]);
		     i++) {
			if (access(dns_root_anchors[i], R_OK) == 0) {
				anchor = dns_root_anchors[i];
				break;
			}
		}
	}
	if (anchor != NULL) {
		if ((rc = ub_ctx_add_ta_file(r->ctx, anchor)) != 0) {
			snprintf(err, errlen, "trust anchor %s: %s", anchor, ub_strerror(rc));
			goto fail;
		}
		r->anchor = xstrdup(anchor);
	}
	if (r->forwarder != NULL) {
		/* these finalize the context, so they come last */
		for (size_t i = 0; i < sizeof(dns_special_zones) / sizeof(dns_special_zones[0]);
		     i++) {
			(void)ub_ctx_zone_remove(r->ctx, dns_special_zones[i]);
			if ((rc = ub_ctx_zone_add(r->ctx, dns_special_zones[i], "transparent")) !=
			    0) {
				snprintf(err, errlen, "resolver: %s", ub_strerror(rc));
				goto fail;
			}
		}
	}
	return r;
fail:
	dns_resolver_free(r);
	return NULL;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	free(r->anchor);
	free(r->forwarder);
	free(r);
}

const char *
dns_resolver_anchor(const struct dns_resolver *r)
{
	return r->anchor;
}

const char *
dns_resolver_forwarder(const struct dns_resolver *r)
{
	return r->forwarder;
}

size_t
dns_name_to_text(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, total = 0;

	if (outsz < 2)
		return 0;
	for (;;) {
		size_t l;

		if (i >= len)
			return 0;
		l = p[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > len || (total += l + 1) > 255)
			return 0; /* compression pointers never appear here */
		for (size_t k = 0; k < l; k++) {
			unsigned char c = p[i + k];
			int n;

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*') {
				if (o + 2 > outsz)
					return 0;
				out[o++] = (char)c;
				continue;
			}
			n = snprintf(out + o, outsz - o, "\\%03u", c);
			if (n < 0 || (size_t)n >= outsz - o)
				return 0;
			o += (size_t)n;
		}
		i += l;
		if (o + 2 > outsz)
			return 0;
		out[o++] = '.';
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return i;
}

char *
dns_printable(const char *p, size_t len)
{
	char *out = xmalloc(4 * len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c <= 0x7e && c != '\\') {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, 5, "\\%03u", c);
			o += 4;
		}
	}
	out[o] = '\0';
	return out;
}

static void
dns_rr_set(struct dns_rr *rr, const char *text, size_t len)
{
	rr->text = xmalloc(len + 1);
	memcpy(rr->text, text, len);
	rr->text[len] = '\0';
	rr->len = len;
}

/* Decodes one rdata; returns false when it is malformed. */
static bool
dns_rdata_decode(int type, const unsigned char *d, size_t len, struct dns_rr *rr)
{
	char name[DNS_NAME_TEXT_MAX];

	switch (type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA: {
		char addr[INET6_ADDRSTRLEN];
		int af = type == DNS_TYPE_A ? AF_INET : AF_INET6;

		if (len != (type == DNS_TYPE_A ? 4u : 16u) ||
		    inet_ntop(af, d, addr, sizeof(addr)) == NULL)
			return false;
		dns_rr_set(rr, addr, strlen(addr));
		return true;
	}
	case DNS_TYPE_MX:
		if (len < 3 || dns_name_to_text(d + 2, len - 2, name, sizeof(name)) != len - 2)
			return false;
		rr->pref = (unsigned)(d[0] << 8 | d[1]);
		dns_rr_set(rr, name, strlen(name));
		return true;
	case DNS_TYPE_PTR:
	case DNS_TYPE_CNAME:
		if (dns_name_to_text(d, len, name, sizeof(name)) != len)
			return false;
		dns_rr_set(rr, name, strlen(name));
		return true;
	case DNS_TYPE_TXT: {
		/* RFC 7208 3.3: the strings of one record are concatenated */
		char *t = xmalloc(len + 1);
		size_t i = 0, o = 0;

		while (i < len) {
			size_t l = d[i++];

			if (i + l > len) {
				free(t);
				return false;
			}
			memcpy(t + o, d + i, l);
			o += l;
			i += l;
		}
		t[o] = '\0';
		rr->text = t;
		rr->len = o;
		return true;
	}
	case DNS_TYPE_TLSA: {
		char *hex;

		if (len < 3)
			return false;
		rr->usage = d[0];
		rr->selector = d[1];
		rr->mtype = d[2];
		rr->data_len = len - 3;
		hex = xmalloc(2 * (len - 3) + 1);
		for (size_t i = 3; i < len; i++)
			snprintf(hex + 2 * (i - 3), 3, "%02x", d[i]);
		hex[2 * (len - 3)] = '\0';
		rr->text = hex;
		rr->len = 2 * (len - 3);
		return true;
	}
	}
	return false;
}

struct dns_pending {
	bool done;
	int err;
	struct ub_result *result;
};

static void
dns_query_cb(void *arg, int err, struct ub_result *result)
{
	struct dns_pending *q = arg;

	q->done = true;
	q->err = err;
	q->result = result;
}

static double
dns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
dns_query(struct dns_resolver *r, const char *name, int type, struct dns_answer *a)
{
	struct dns_pending q = {false, 0, NULL};
	struct ub_result *res;
	double deadline;
	int id, rc;

	memset(a, 0, sizeof(*a));
	a->status = DNS_SERVFAIL;
	if (r->timeouts >= DNS_TIMEOUTS_MAX) {
		a->status = DNS_TIMEOUT;
		return;
	}
	rc = ub_resolve_async(r->ctx, name, type, 1 /* IN */, &q, dns_query_cb, &id);
	if (rc != 0) {
		a->why_bogus = xstrdup(ub_strerror(rc));
		return;
	}
	deadline = dns_now() + r->timeout;
	while (!q.done) {
		struct pollfd pfd = {ub_fd(r->ctx), POLLIN, 0};
		double left = deadline - dns_now();

		if (left <= 0) {
			(void)ub_cancel(r->ctx, id);
			r->timeouts++;
			a->status = DNS_TIMEOUT;
			return;
		}
		if (poll(&pfd, 1, (int)(left * 1000) + 1) == -1 && errno != EINTR)
			break;
		if (ub_process(r->ctx) != 0)
			break;
	}
	if (!q.done) {
		(void)ub_cancel(r->ctx, id);
		return;
	}
	res = q.result;
	if (q.err != 0 || res == NULL) {
		a->why_bogus = xstrdup(ub_strerror(q.err));
		ub_resolve_free(res);
		return;
	}
	a->rcode = res->rcode;
	a->security = res->bogus ? DNS_SEC_BOGUS : res->secure ? DNS_SECURE : DNS_INSECURE;
	if (res->why_bogus != NULL)
		a->why_bogus = xstrdup(res->why_bogus);
	if (res->bogus)
		a->status = DNS_BOGUS;
	else if (res->nxdomain)
		a->status = DNS_NXDOMAIN;
	else if (res->rcode != 0)
		a->status = DNS_SERVFAIL;
	else if (!res->havedata)
		a->status = DNS_NODATA;
	else
		a->status = DNS_OK;
	if (res->canonname != NULL && res->qname != NULL &&
	    strcasecmp(res->canonname, res->qname) != 0) {
		size_t cl = strlen(res->canonname), ql = strlen(res->qname);

		/* "name" and "name." are the same name */
		if (!(cl == ql + 1 && strncasecmp(res->canonname, res->qname, ql) == 0) &&
		    !(ql == cl + 1 && strncasecmp(res->canonname, res->qname, cl) == 0))
			a->canonname = xstrdup(res->canonname);
	}
	for (size_t i = 0; a->status == DNS_OK && res->data[i] != NULL && a->n < DNS_RR_MAX; i++) {
		memset(&a->rr[a->n], 0, sizeof(a->rr[a->n]));
		if (dns_rdata_decode(type, (const unsigned char *)res->data[i], (size_t)res->len[i],
		        &a->rr[a->n]))
			a->n++;
	}
	if (a->status == DNS_OK && a->n == 0)
		a->status = DNS_NODATA;
	ub_resolve_free(res);
}

void
dns_answer_free(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->rr[i].text);
	free(a->why_bogus);
	free(a->canonname);
	memset(a, 0, sizeof(*a));
}
