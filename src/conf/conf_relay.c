/*
 * conf_relay: the [relay] and [route DOMAIN] sections: where
 * accepted mail goes and how the client authenticates there.
 *
 *   route = smarthost HOST:PORT | mx | lmtp /path/socket | lmtp HOST:PORT
 *   tls = starttls | implicit | none        verify = peer+host | peer | none
 *   ca = FILE   auth = MECH | none   credentials = FILE (mode 0600 or stricter)
 *   retry_min, retry_max, expire, delay_warning, concurrency, token_ttl, timeout
 *   (mx) resolver, dnssec_anchor, dane, mta_sts, mx_port, mta_sts_port
 *
 * The rows of conf_route_keys serve both section kinds; conf.c finds the
 * section and the row, and calls conf_route_validate() at the end, whose
 * messages come back without file:line, which conf.c adds. Nothing here
 * reads the credentials file: only its mode is checked, so a secret never
 * sits in a struct conf. Delivery keeps the configuration it started with:
 * every key needs a restart.
 */
#include "conf/conf_priv.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

/* Mechanisms a route may name (the client runs them; client_sasl_mechs). */
static const char *const conf_route_mechs[] = {"PLAIN", "LOGIN", "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", NULL};

void
conf_route_free(struct conf_route *r)
{
	if (r == NULL)
		return;
	free(r->domain);
	free(r->host);
	free(r->port);
	free(r->unix_path);
	free(r->ca);
	free(r->auth);
	free(r->credentials);
	free(r->resolver);
	free(r->dnssec_anchor);
	free(r->mx_port);
	free(r->mta_sts_port);
	free(r);
}

/* "host:port", "[v6]:port"; port required. */
static int
conf_route_hostport(struct conf_route *r, const char *v)
{
	const char *colon;
	size_t hlen;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		colon = close + 1;
		v++;
		hlen = (size_t)(close - v);
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || memchr(v, ':', (size_t)(colon - v)) != NULL)
			return -1;
		hlen = (size_t)(colon - v);
	}
	if (hlen == 0 || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
		return -1;
	for (size_t i = 0; i < hlen; i++) {
		if (isspace((unsigned char)v[i]))
			return -1;
	}
	free(r->host);
	free(r->port);
	r->host = xstrndup(v, hlen);
	r->port = xstrdup(colon + 1);
	return 0;
}

static int
conf_route_set_route(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf_route *r = obj;
	const char *arg = v + strcspn(v, " \t");

	while (*arg == ' ' || *arg == '\t')
		arg++;
	free(r->unix_path);
	r->unix_path = NULL;
	if (strncasecmp(v, "smarthost", 9) == 0 && (v[9] == ' ' || v[9] == '\t')) {
		r->kind = CONF_ROUTE_SMARTHOST;
		if (conf_route_hostport(r, arg) == 0)
			return 0;
	} else if (strcasecmp(v, "mx") == 0) {
		r->kind = CONF_ROUTE_MX;
		return 0;
	} else if (strncasecmp(v, "lmtp", 4) == 0 && (v[4] == ' ' || v[4] == '\t')) {
		r->kind = CONF_ROUTE_LMTP;
		if (arg[0] == '/' || arg[0] == '.') {
			r->unix_path = fs_path_join(p->c->dir, arg);
			return 0;
		}
		if (conf_route_hostport(r, arg) == 0)
			return 0;
	}
	conf_error(p,
	    "route: expected smarthost HOST:PORT, mx, lmtp /path/socket or lmtp HOST:PORT, "
	    "got \"%s\"",
	    v);
	return -1;
}

/* a mechanism of conf_route_mechs (stored in its canonical case) or none */
static int
conf_route_set_auth(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf_route *r = obj;

	free(r->auth);
	r->auth = NULL;
	if (strcasecmp(v, "none") == 0)
		return 0;
	for (size_t i = 0; conf_route_mechs[i] != NULL; i++) {
		if (strcasecmp(v, conf_route_mechs[i]) == 0) {
			r->auth = xstrdup(conf_route_mechs[i]);
			return 0;
		}
	}
	conf_error(p,
	    "auth: expected PLAIN, LOGIN, SCRAM-SHA-256(-PLUS), SCRAM-SHA-1, CRAM-MD5, "
	    "XOAUTH2, OAUTHBEARER or none, got \"%s\"",
	    v);
	return -1;
}

/* a file, or "none": no DNSSEC validation (so no DANE) */
static int
conf_route_set_anchor(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf_route *r = obj;

	if (strcasecmp(v, "none") == 0) {
		free(r->dnssec_anchor);
		r->dnssec_anchor = xstrdup("none");
		return 0;
	}
	return conf_table_set_path(p, k, obj, v);
}

static const struct conf_word conf_route_verifies[] = {
    {.word = "peer+host", .value = CONF_VERIFY_PEER_HOST},
    {.word = "peer", .value = CONF_VERIFY_PEER}, {.word = "none", .value = CONF_VERIFY_NONE},
    {.word = NULL}};
/* dane and mta_sts set no_dane and no_mta_sts */
static const struct conf_word conf_route_yes_no_inverted[] = {
    {.word = "yes", .value = 0}, {.word = "no", .value = 1}, {.word = NULL}};

#define CONF_R(f) offsetof(struct conf_route, f)
#define CONF_ROUTE_DURATION(name, def, min)                                                        \
	{                                                                                          \
		CONF_KEY(#name, CONF_T_DURATION, def, CONF_RESTART),                               \
		    .off = CONF_R(name), .lo = min, .hi = UINT_MAX, .eg = "30s, 10m, 1h or 5d"     \
	}

const struct conf_key conf_route_keys[] = {
    /* sets kind, and host and port or unix_path */
    {CONF_KEY("route", CONF_T_STRING, NULL, CONF_RESTART), .flags = CONF_KEY_SEEN,
        .seen_off = CONF_R(route_set), .set = conf_route_set_route},
    /* seen: conf_route_validate makes lmtp plain unless tls is given, and
     * the environment (SMTPENABLESTARTTLS, ...) fills what is not given */
    {CONF_KEY("tls", CONF_T_ENUM, "starttls", CONF_RESTART), .off = CONF_R(tls),
        .flags = CONF_KEY_SEEN, .words = conf_table_tls_modes, .seen_off = CONF_R(tls_set)},
    {CONF_KEY("verify", CONF_T_ENUM, "peer+host", CONF_RESTART), .off = CONF_R(verify),
        .flags = CONF_KEY_SEEN, .words = conf_route_verifies, .seen_off = CONF_R(verify_set)},
    {CONF_KEY("ca", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_R(ca)},
    {CONF_KEY("auth", CONF_T_STRING, "none", CONF_RESTART), .off = CONF_R(auth),
        .flags = CONF_KEY_SEEN, .seen_off = CONF_R(auth_set), .set = conf_route_set_auth},
    {CONF_KEY("credentials", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_R(credentials)},
    /* 50m: OAuth access tokens usually live 1h */
    CONF_ROUTE_DURATION(token_ttl, "50m", 1),
    CONF_ROUTE_DURATION(retry_min, "1m", 1),
    CONF_ROUTE_DURATION(retry_max, "1h", 1),
    /* RFC 5321 4.5.4.1: at least 4-5 days */
    CONF_ROUTE_DURATION(expire, "5d", 1),
    /* off, as Postfix's delay_warning_time: a warning about mail that is
     * still on its way worries users who read it as a failure; operators
     * opt in */
    CONF_ROUTE_DURATION(delay_warning, "0", 0),
    /* connections per destination */
    {CONF_KEY("concurrency", CONF_T_UINT, "10", CONF_RESTART), .off = CONF_R(concurrency), .lo = 1,
        .hi = 1000},
    /* RFC 5321 4.5.3.2: 5 minutes for most replies */
    CONF_ROUTE_DURATION(timeout, "5m", 1),
    /* route = mx (relay/route_mx.c): unset, /etc/resolv.conf's servers */
    {CONF_KEY("resolver", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_R(resolver)},
    /* unset, the system's root key */
    {CONF_KEY("dnssec_anchor", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_R(dnssec_anchor),
        .set = conf_route_set_anchor},
    {CONF_KEY("dane", CONF_T_BOOL, "yes", CONF_RESTART), .off = CONF_R(no_dane),
        .words = conf_route_yes_no_inverted},
    {CONF_KEY("mta_sts", CONF_T_BOOL, "yes", CONF_RESTART), .off = CONF_R(no_mta_sts),
        .words = conf_route_yes_no_inverted},
    /* tests and labs only */
    {CONF_KEY("mx_port", CONF_T_STRING, "25", CONF_RESTART), .off = CONF_R(mx_port),
        .flags = CONF_KEY_DEF_BY_USER},
    {CONF_KEY("mta_sts_port", CONF_T_STRING, "443", CONF_RESTART), .off = CONF_R(mta_sts_port),
        .flags = CONF_KEY_DEF_BY_USER},
    {.name = NULL},
};

static struct conf_route *
conf_route_new(struct conf_parse *p, const char *domain)
{
	struct conf_route *r = xcalloc(1, sizeof(*r));

	if (domain != NULL) {
		r->domain = xstrdup(domain);
		for (char *q = r->domain; *q; q++)
			*q = (char)tolower((unsigned char)*q);
	}
	r->line = p->line;
	conf_table_defaults(p, conf_route_keys, r);
	p->obj = r;
	p->sec_arg = r->domain != NULL ? r->domain : "";
	return r;
}

/* [relay], once */
int
conf_route_open_relay(struct conf_parse *p, const char *name, const char *arg)
{
	struct conf *c = p->c;

	if (*arg != '\0' || c->relay != NULL) {
		conf_error(p,
		    *arg != '\0' ? "[relay] takes no name (per domain: [route DOMAIN])"
		                 : "section [relay] appears twice");
		return -1;
	}
	c->relay = conf_route_new(p, NULL);
	return 0;
}

/* [route DOMAIN], once per domain */
int
conf_route_open_domain(struct conf_parse *p, const char *name, const char *arg)
{
	struct conf *c = p->c;

	if (*arg == '\0' || strchr(arg, '@') != NULL) {
		conf_error(p, "[route] needs a domain: [route example.net]");
		return -1;
	}
	for (size_t i = 0; i < c->nroutes; i++) {
		if (strcasecmp(c->routes[i]->domain, arg) == 0) {
			conf_error(p, "[route %s] appears twice (first at line %d)", arg,
			    c->routes[i]->line);
			return -1;
		}
	}
	c->routes = xrealloc(c->routes, (c->nroutes + 1) * sizeof(*c->routes));
	c->routes[c->nroutes++] = conf_route_new(p, arg);
	return 0;
}

int
conf_route_validate(struct conf_route *r, char *msg, size_t msglen)
{
	struct stat st;

	if (!r->route_set) {
		snprintf(msg, msglen, "no route = (smarthost HOST:PORT, mx or lmtp ...)");
		return -1;
	}
	if (r->kind == CONF_ROUTE_LMTP && !r->tls_set)
		r->tls = CONF_TLS_NONE; /* local mailboxes: LMTP is plain by default */
	if (r->tls == CONF_TLS_NONE && r->kind != CONF_ROUTE_LMTP) {
		snprintf(
		    msg, msglen, "tls = none is only for lmtp routes (use starttls or implicit)");
		return -1;
	}
	if (r->kind == CONF_ROUTE_LMTP && r->unix_path != NULL && r->tls != CONF_TLS_NONE) {
		snprintf(msg, msglen, "lmtp over a unix socket takes no tls (tls = none)");
		return -1;
	}
	if (r->retry_max < r->retry_min) {
		snprintf(msg, msglen, "retry_max (%us) is shorter than retry_min (%us)",
		    r->retry_max, r->retry_min);
		return -1;
	}
	/* a warning due when the message already expired would never be sent */
	if (r->delay_warning != 0 && r->delay_warning >= r->expire) {
		snprintf(msg, msglen,
		    "delay_warning (%us) is not shorter than expire (%us): no warning could be "
		    "sent (delay_warning = 0 turns it off)",
		    r->delay_warning, r->expire);
		return -1;
	}
	if (r->auth != NULL && r->kind == CONF_ROUTE_MX) {
		snprintf(msg, msglen, "auth is for smarthost and lmtp routes, not mx");
		return -1;
	}
	if (r->credentials != NULL) {
		if (r->auth == NULL) {
			snprintf(msg, msglen,
			    "credentials given but auth = none (set auth = PLAIN, ...)");
			return -1;
		}
		if (stat(r->credentials, &st) == -1) {
			snprintf(
			    msg, msglen, "credentials: %s: %s", r->credentials, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode) || (st.st_mode & 0177) != 0) {
			snprintf(msg, msglen,
			    "credentials: %s must be a file of mode 0600 or stricter (it is %04o): "
			    "chmod 600 %s",
			    r->credentials, (unsigned)(st.st_mode & 07777), r->credentials);
			return -1;
		}
	}
	return 0;
}

const struct conf_route *
conf_route_for(const struct conf *c, const char *domain)
{
	for (size_t i = 0; domain != NULL && i < c->nroutes; i++) {
		if (strcasecmp(c->routes[i]->domain, domain) == 0)
			return c->routes[i];
	}
	return c->relay;
}
