/*
 * route_mx: the shared MX router and the sessions its plans lead to (see
 * route_mx.h for the rules and how delivery calls it). The plan itself is
 * built in route_mx_plan.c, the MTA-STS policy in force in route_mx_sts.c;
 * route_mx_priv.h is what the three share.
 *
 * State shared by the worker threads, each part under its own lock:
 * - a pool of dns_resolvers (a libunbound context is used by one thread at
 *   a time; each keeps its cache between deliveries);
 * - the MTA-STS cache: domain -> {id, mode, mx patterns, fetched at,
 *   max_age}, at most ROUTE_MX_STS_CACHE_MAX entries in memory (expired ones
 *   go first, then the one that expires first), and, with a cache folder,
 *   one file per domain on disk (at most ROUTE_MX_STS_DISK_MAX; evicted
 *   entries stay there and are read back on a miss). The fetch and the
 *   disk I/O run without sts_lock; disk_lock guards only the file count.
 * - one SSL_CTX with DANE enabled, given to every client (ref counted).
 * A plan owns its TLSA data; nothing in it points into the shared state.
 */
#include "relay/route_mx.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "lib/xalloc.h"
#include "relay/route_mx_priv.h"

/* ---- names ---------------------------------------------------------------- */

const char *
route_mx_tls_name(enum route_mx_tls t)
{
	switch (t) {
	case ROUTE_MX_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case ROUTE_MX_TLS_DANE:
		return "dane";
	case ROUTE_MX_TLS_ENCRYPT:
		return "encrypt";
	case ROUTE_MX_TLS_STS:
		return "mta-sts";
	}
	return "?";
}

const char *
route_mx_sts_mode_name(enum route_mx_sts_mode m)
{
	switch (m) {
	case ROUTE_MX_STS_NONE:
		return "none";
	case ROUTE_MX_STS_TESTING:
		return "testing";
	case ROUTE_MX_STS_ENFORCE:
		return "enforce";
	}
	return "?";
}

/* ---- the real look-ups -------------------------------------------------------- */

static time_t
route_mx_real_now(void *arg)
{
	(void)arg;
	return time(NULL);
}

static uint32_t
route_mx_real_random(void *arg, uint32_t n)
{
	(void)arg;
	return n > 1 ? arc4random_uniform(n) : 0;
}

struct dns_resolver *
route_mx_resolver_get(struct route_mx *mx, char *err, size_t errlen)
{
	struct dns_resolver *r = NULL;
	struct dns_resolver_opts o = {
	    mx->conf.resolver, mx->conf.dnssec_anchor, mx->conf.dns_timeout};

	pthread_mutex_lock(&mx->pool_lock);
	if (mx->npool > 0)
		r = mx->pool[--mx->npool];
	pthread_mutex_unlock(&mx->pool_lock);
	if (r == NULL)
		r = dns_resolver_new(&o, err, errlen);
	return r;
}

void
route_mx_resolver_put(struct route_mx *mx, struct dns_resolver *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&mx->pool_lock);
	if (mx->npool < ROUTE_MX_POOL_MAX) {
		mx->pool[mx->npool++] = r;
		r = NULL;
	}
	pthread_mutex_unlock(&mx->pool_lock);
	dns_resolver_free(r);
}

void
route_mx_query(struct route_mx_call *q, const char *name, int type, struct dns_answer *a)
{
	if (q->mx->conf.ops != NULL && q->mx->conf.ops->query != NULL) {
		memset(a, 0, sizeof(*a));
		q->mx->conf.ops->query(q->mx->conf.ops->arg, name, type, a);
		return;
	}
	dns_query(q->r, name, type, a);
	if (a->status == DNS_TIMEOUT)
		q->timed_out = true;
}

/* ---- new/free ----------------------------------------------------------------- */

static char *
route_mx_strdup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct route_mx *
route_mx_new(const struct route_mx_conf *rc, char *err, size_t errlen)
{
	struct route_mx *mx = xcalloc(1, sizeof(*mx));
	const struct route_mx_ops *ops = rc->ops;

	mx->conf = *rc;
	mx->conf.resolver = route_mx_strdup(rc->resolver);
	mx->conf.dnssec_anchor = route_mx_strdup(rc->dnssec_anchor);
	mx->conf.port = xstrdup(rc->port != NULL ? rc->port : ROUTE_MX_PORT_DEFAULT);
	mx->conf.cafile = route_mx_strdup(rc->cafile);
	mx->conf.sts_port = route_mx_strdup(rc->sts_port);
	mx->conf.helo = route_mx_strdup(rc->helo);
	mx->conf.sts_cache_dir = route_mx_strdup(rc->sts_cache_dir);
	if (mx->conf.dns_timeout <= 0)
		mx->conf.dns_timeout = ROUTE_MX_DNS_TIMEOUT_DEFAULT;
	if (mx->conf.sts_timeout <= 0)
		mx->conf.sts_timeout = ROUTE_MX_STS_TIMEOUT_DEFAULT;
	mx->ops.now = ops != NULL && ops->now != NULL ? ops->now : route_mx_real_now;
	mx->ops.random = ops != NULL && ops->random != NULL ? ops->random : route_mx_real_random;
	mx->ops.arg = ops != NULL ? ops->arg : NULL;
	pthread_mutex_init(&mx->pool_lock, NULL);
	pthread_mutex_init(&mx->sts_lock, NULL);
	pthread_mutex_init(&mx->disk_lock, NULL);
	{
		char *end;
		long p = strtol(mx->conf.port, &end, 10);

		if (*end != '\0' || p < 1 || p > 65535) {
			snprintf(err, errlen, "mx_port %s: not a port number", mx->conf.port);
			goto fail;
		}
		mx->port = (unsigned)p;
		if (mx->conf.sts_port != NULL &&
		    ((p = strtol(mx->conf.sts_port, &end, 10)) < 1 || p > 65535 || *end != '\0')) {
			snprintf(
			    err, errlen, "mta_sts_port %s: not a port number", mx->conf.sts_port);
			goto fail;
		}
	}
	mx->ctx = SSL_CTX_new(TLS_client_method());
	if (mx->ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		goto fail;
	}
	SSL_CTX_set_options(mx->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_min_proto_version(mx->ctx, TLS1_2_VERSION); /* DESIGN 4 */
	if (SSL_CTX_dane_enable(mx->ctx) <= 0) {
		snprintf(err, errlen, "cannot enable DANE in the TLS context");
		goto fail;
	}
	if (mx->conf.cafile != NULL) {
		if (SSL_CTX_load_verify_locations(mx->ctx, mx->conf.cafile, NULL) != 1) {
			snprintf(err, errlen, "cannot load CA file %s", mx->conf.cafile);
			goto fail;
		}
	} else {
		(void)SSL_CTX_set_default_verify_paths(mx->ctx);
	}
	if (ops == NULL || ops->query == NULL) {
		/* a bad resolver or anchor is a configuration error: found now */
		struct dns_resolver *r = route_mx_resolver_get(mx, err, errlen);

		if (r == NULL)
			goto fail;
		route_mx_resolver_put(mx, r);
	}
	if (mx->conf.sts_cache_dir != NULL)
		route_mx_sts_scan(mx, mx->ops.now(mx->ops.arg));
	return mx;
fail:
	route_mx_free(mx);
	return NULL;
}

void
route_mx_free(struct route_mx *mx)
{
	if (mx == NULL)
		return;
	for (size_t i = 0; i < mx->npool; i++)
		dns_resolver_free(mx->pool[i]);
	for (size_t i = 0; i < mx->nsts; i++)
		route_mx_sts_entry_clear(&mx->sts[i]);
	free(mx->sts);
	SSL_CTX_free(mx->ctx);
	pthread_mutex_destroy(&mx->pool_lock);
	pthread_mutex_destroy(&mx->sts_lock);
	pthread_mutex_destroy(&mx->disk_lock);
	free((char *)mx->conf.resolver);
	free((char *)mx->conf.dnssec_anchor);
	free((char *)mx->conf.port);
	free((char *)mx->conf.cafile);
	free((char *)mx->conf.sts_port);
	free((char *)mx->conf.helo);
	free((char *)mx->conf.sts_cache_dir);
	free(mx);
}

/* ---- helpers -------------------------------------------------------------------- */

void
route_mx_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

void
route_mx_note(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 3 >= size)
		return;
	if (used > 0) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	(void)vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

const char *
route_mx_answer_text(const struct dns_answer *a)
{
	return a->status == DNS_BOGUS && a->why_bogus != NULL ? a->why_bogus
	                                                      : dns_status_name(a->status);
}

/* ---- sessions ------------------------------------------------------------------- */

void
route_mx_client_conf(const struct route_mx *mx, const struct route_mx_plan *plan,
    const struct route_mx_host *h, struct client_conf *cc_r)
{
	(void)plan;
	memset(cc_r, 0, sizeof(*cc_r));
	cc_r->host = h->name;
	cc_r->port = mx->conf.port;
	cc_r->tls = CLIENT_TLS_STARTTLS;
	cc_r->sni = h->name;
	cc_r->verify_host = h->name;
	cc_r->ssl_ctx = mx->ctx;
	cc_r->helo = mx->conf.helo;
	cc_r->timeout_ms = mx->conf.timeout_ms;
	switch (h->tls) {
	case ROUTE_MX_TLS_DANE:
		cc_r->verify = CLIENT_VERIFY_PEER_HOST;
		cc_r->dane = h->tlsa;
		cc_r->ndane = h->ntlsa;
		cc_r->dane_base = h->tlsa_base;
		break;
	case ROUTE_MX_TLS_STS:
		cc_r->verify = CLIENT_VERIFY_PEER_HOST;
		break;
	case ROUTE_MX_TLS_ENCRYPT:
	case ROUTE_MX_TLS_OPPORTUNISTIC:
		cc_r->verify = CLIENT_VERIFY_NONE;
		break;
	}
}

static void
route_mx_fail(struct route_mx_attempt *at, struct client *c, const char *step, bool *all_5xx)
{
	const struct client_error *e = client_error(c);
	const struct client_reply *r = client_reply(c);
	bool perm = e->kind == CLIENT_E_REPLY && r->code >= 500 && r->code < 600;

	if (!perm)
		*all_5xx = false;
	if (e->kind == CLIENT_E_REPLY)
		route_mx_fmt(at->reason, sizeof(at->reason), "%s[%s]: %s: %s", at->host, at->addr,
		    step, r->line);
	else
		route_mx_fmt(at->reason, sizeof(at->reason), "%s[%s]: %s: %s", at->host, at->addr,
		    step, e->detail);
}

/* What the attempt says about the session c to host h it returns. */
static void
route_mx_opened(
    struct route_mx_attempt *at, struct client *c, const struct route_mx_host *h, bool plain)
{
	const struct client_tls_info *ti = client_tls_info(c);

	at->tls_active = client_is_tls(c);
	at->verified = at->tls_active &&
	    (h->tls == ROUTE_MX_TLS_DANE         ? ti->dane_matched
	            : h->tls == ROUTE_MX_TLS_STS ? ti->verified
	                                         : false);
	if (ti->dane_matched)
		snprintf(at->dane_match, sizeof(at->dane_match), "%u %u %u at depth %d",
		    ti->dane_usage, ti->dane_selector, ti->dane_mtype, ti->dane_depth);
	at->reason[0] = '\0';
	if (plain)
		snprintf(
		    at->reason, sizeof(at->reason), "plaintext after a failed STARTTLS handshake");
	at->transient = true;
}

struct client *
route_mx_open(struct route_mx *mx, const struct route_mx_plan *plan, struct route_mx_cursor *cur,
    struct route_mx_attempt *at_r)
{
	bool all_5xx = true, tried = false;

	memset(at_r, 0, sizeof(*at_r));
	for (; cur->host < plan->nhosts; cur->host++, cur->addr = 0, cur->plain_retry = false) {
		const struct route_mx_host *h = &plan->hosts[cur->host];
		bool required = h->tls != ROUTE_MX_TLS_OPPORTUNISTIC;

		snprintf(at_r->host, sizeof(at_r->host), "%s", h->name);
		at_r->tls = h->tls;
		if (h->skip) {
			if (!tried)
				snprintf(at_r->reason, sizeof(at_r->reason), "%s: not used: %s",
				    h->name, h->reason);
			all_5xx = false;
			continue;
		}
		while (cur->addr < h->naddrs) {
			const struct route_mx_addr *ad = &h->addrs[cur->addr];
			struct client_conf cc;
			struct client *c;
			bool plain = cur->plain_retry;

			tried = true;
			snprintf(at_r->addr, sizeof(at_r->addr), "%s", ad->text);
			route_mx_client_conf(mx, plan, h, &cc);
			c = client_new(&cc);
			cur->plain_retry = false;
			cur->addr++; /* moved back below for the plaintext retry */
			if (client_connect_addr(c, (const struct sockaddr *)&ad->ss, ad->sslen) ==
			    -1) {
				route_mx_fail(at_r, c, "connect", &all_5xx);
				goto next;
			}
			if (client_greeting(c) == -1) {
				route_mx_fail(at_r, c, "greeting", &all_5xx);
				goto next;
			}
			if (client_ehlo(c) == -1) {
				route_mx_fail(at_r, c, "EHLO", &all_5xx);
				goto next;
			}
			if (!client_caps(c)->starttls) {
				if (required) {
					all_5xx = false;
					snprintf(at_r->reason, sizeof(at_r->reason),
					    "%s[%s]: STARTTLS not offered but required (%s)",
					    h->name, ad->text, route_mx_tls_name(h->tls));
					goto next;
				}
			} else if (!plain) {
				if (client_starttls(c) == -1) {
					route_mx_fail(at_r, c,
					    h->tls == ROUTE_MX_TLS_DANE      ? "STARTTLS (DANE)"
					        : h->tls == ROUTE_MX_TLS_STS ? "STARTTLS (MTA-STS)"
					                                     : "STARTTLS",
					    &all_5xx);
					if (!required) {
						/* opportunistic: once more, in plaintext */
						cur->addr--;
						cur->plain_retry = true;
					}
					goto next;
				}
				if (client_ehlo(c) == -1) {
					route_mx_fail(at_r, c, "EHLO after STARTTLS", &all_5xx);
					goto next;
				}
			}
			route_mx_opened(at_r, c, h, plain);
			return c;
		next:
			client_disconnect(c);
			client_free(c);
		}
	}
	at_r->transient = !(tried && all_5xx);
	if (at_r->reason[0] == '\0')
		snprintf(at_r->reason, sizeof(at_r->reason), "no MX host left to try for %s",
		    plan->domain);
	return NULL;
}
