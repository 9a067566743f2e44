/*
 * conf_relay: the [relay] and [route DOMAIN] sections (issue 5): where
 * accepted mail goes and how the client authenticates there.
 *
 *   route = smarthost HOST:PORT | mx | lmtp /path/socket | lmtp HOST:PORT
 *   tls = starttls | implicit | none        verify = peer+host | peer | none
 *   ca = FILE   auth = MECH | none   credentials = FILE (mode 0600 or stricter)
 *   retry_min, retry_max, expire, delay_warning, concurrency, token_ttl, timeout
 *   (mx) resolver, dnssec_anchor, dane, mta_sts, mx_port, mta_sts_port
 *
 * conf.c owns the section headers and calls conf_route_key() per key and
 * conf_route_validate() at the end; messages come back without file:line,
 * which conf.c adds. Nothing here reads the credentials file: only its mode
 * is checked, so a secret never sits in a struct conf.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define CONF_ROUTE_RETRY_MIN 60 /* 1m */
#define CONF_ROUTE_RETRY_MAX 3600 /* 1h */
#define CONF_ROUTE_EXPIRE (5 * 86400) /* 5d (RFC 5321 4.5.4.1: at least 4-5 days) */
/* off, as Postfix's delay_warning_time: a warning about mail that is still on
 * its way worries users who read it as a failure; operators opt in */
#define CONF_ROUTE_DELAY_WARNING 0
#define CONF_ROUTE_CONCURRENCY 10
#define CONF_ROUTE_TOKEN_TTL 3000 /* 50m: OAuth access tokens usually live 1h */
#define CONF_ROUTE_TIMEOUT 300 /* RFC 5321 4.5.3.2: 5 minutes for most replies */

/* Mechanisms a route may name (the client runs them; client_sasl_mechs). */
static const char *const conf_route_mechs[] = {"PLAIN", "LOGIN", "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", NULL};

struct conf_route *
conf_route_new(const char *domain, int line)
{
	struct conf_route *r = xcalloc(1, sizeof(*r));

	if (domain != NULL) {
		r->domain = xstrdup(domain);
		for (char *q = r->domain; *q; q++)
			*q = (char)tolower((unsigned char)*q);
	}
	r->line = line;
	r->tls = CONF_TLS_STARTTLS;
	r->verify = CONF_VERIFY_PEER_HOST;
	r->retry_min = CONF_ROUTE_RETRY_MIN;
	r->retry_max = CONF_ROUTE_RETRY_MAX;
	r->expire = CONF_ROUTE_EXPIRE;
	r->delay_warning = CONF_ROUTE_DELAY_WARNING;
	r->concurrency = CONF_ROUTE_CONCURRENCY;
	r->token_ttl = CONF_ROUTE_TOKEN_TTL;
	r->timeout = CONF_ROUTE_TIMEOUT;
	return r;
}

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
conf_route_set_route(struct conf_route *r, const char *dir, const char *v, char *msg, size_t msglen)
{
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
			r->unix_path = fs_path_join(dir, arg);
			return 0;
		}
		if (conf_route_hostport(r, arg) == 0)
			return 0;
	}
	snprintf(msg, msglen,
	    "route: expected smarthost HOST:PORT, mx, lmtp /path/socket or lmtp HOST:PORT, "
	    "got \"%s\"",
	    v);
	return -1;
}

static int
conf_route_duration(
    const char *k, const char *v, bool zero_ok, unsigned *dst, char *msg, size_t msglen)
{
	if (conf_parse_duration(v, dst) == -1 || (*dst == 0 && !zero_ok)) {
		snprintf(msg, msglen,
		    "%s: expected a duration such as 30s, 10m, 1h or 5d, got \"%s\"", k, v);
		return -1;
	}
	return 0;
}

static int
conf_route_uint(
    const char *k, const char *v, unsigned lo, unsigned hi, unsigned *dst, char *msg, size_t msglen)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 || n < lo || n > hi) {
		snprintf(
		    msg, msglen, "%s: expected a number from %u to %u, got \"%s\"", k, lo, hi, v);
		return -1;
	}
	*dst = (unsigned)n;
	return 0;
}

int
conf_route_key(
    struct conf_route *r, const char *dir, const char *k, const char *v, char *msg, size_t msglen)
{
	if (strcmp(k, "route") == 0) {
		r->route_set = true;
		return conf_route_set_route(r, dir, v, msg, msglen);
	}
	if (strcmp(k, "tls") == 0) {
		if (strcasecmp(v, "starttls") == 0)
			r->tls = CONF_TLS_STARTTLS;
		else if (strcasecmp(v, "implicit") == 0)
			r->tls = CONF_TLS_IMPLICIT;
		else if (strcasecmp(v, "none") == 0)
			r->tls = CONF_TLS_NONE;
		else {
			snprintf(
			    msg, msglen, "tls: expected starttls, implicit or none, got \"%s\"", v);
			return -1;
		}
		r->tls_set = true;
		return 0;
	}
	if (strcmp(k, "verify") == 0) {
		if (strcasecmp(v, "peer+host") == 0)
			r->verify = CONF_VERIFY_PEER_HOST;
		else if (strcasecmp(v, "peer") == 0)
			r->verify = CONF_VERIFY_PEER;
		else if (strcasecmp(v, "none") == 0)
			r->verify = CONF_VERIFY_NONE;
		else {
			snprintf(
			    msg, msglen, "verify: expected peer+host, peer or none, got \"%s\"", v);
			return -1;
		}
		r->verify_set = true;
		return 0;
	}
	if (strcmp(k, "ca") == 0) {
		free(r->ca);
		r->ca = fs_path_join(dir, v);
		return 0;
	}
	if (strcmp(k, "auth") == 0) {
		free(r->auth);
		r->auth = NULL;
		r->auth_set = true;
		if (strcasecmp(v, "none") == 0)
			return 0;
		for (size_t i = 0; conf_route_mechs[i] != NULL; i++) {
			if (strcasecmp(v, conf_route_mechs[i]) == 0) {
				r->auth = xstrdup(conf_route_mechs[i]);
				return 0;
			}
		}
		snprintf(msg, msglen,
		    "auth: expected PLAIN, LOGIN, SCRAM-SHA-256(-PLUS), SCRAM-SHA-1, CRAM-MD5, "
		    "XOAUTH2, OAUTHBEARER or none, got \"%s\"",
		    v);
		return -1;
	}
	if (strcmp(k, "credentials") == 0) {
		free(r->credentials);
		r->credentials = fs_path_join(dir, v);
		return 0;
	}
	if (strcmp(k, "retry_min") == 0)
		return conf_route_duration(k, v, false, &r->retry_min, msg, msglen);
	if (strcmp(k, "retry_max") == 0)
		return conf_route_duration(k, v, false, &r->retry_max, msg, msglen);
	if (strcmp(k, "expire") == 0)
		return conf_route_duration(k, v, false, &r->expire, msg, msglen);
	if (strcmp(k, "delay_warning") == 0)
		return conf_route_duration(k, v, true, &r->delay_warning, msg, msglen);
	if (strcmp(k, "token_ttl") == 0)
		return conf_route_duration(k, v, false, &r->token_ttl, msg, msglen);
	if (strcmp(k, "timeout") == 0)
		return conf_route_duration(k, v, false, &r->timeout, msg, msglen);
	if (strcmp(k, "resolver") == 0 || strcmp(k, "mx_port") == 0 ||
	    strcmp(k, "mta_sts_port") == 0) {
		char **dst = k[0] == 'r' ? &r->resolver
		    : k[1] == 'x'        ? &r->mx_port
		                         : &r->mta_sts_port;

		free(*dst);
		*dst = xstrdup(v);
		return 0;
	}
	if (strcmp(k, "dnssec_anchor") == 0) {
		free(r->dnssec_anchor);
		r->dnssec_anchor =
		    strcasecmp(v, "none") == 0 ? xstrdup("none") : fs_path_join(dir, v);
		return 0;
	}
	if (strcmp(k, "dane") == 0 || strcmp(k, "mta_sts") == 0) {
		bool *dst = k[0] == 'd' ? &r->no_dane : &r->no_mta_sts;

		if (strcasecmp(v, "yes") == 0)
			*dst = false;
		else if (strcasecmp(v, "no") == 0)
			*dst = true;
		else {
			snprintf(msg, msglen, "%s: expected yes or no, got \"%s\"", k, v);
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "concurrency") == 0)
		return conf_route_uint(k, v, 1, 1000, &r->concurrency, msg, msglen);
	snprintf(msg, msglen, "unknown key \"%s\" in [%s%s]", k, r->domain ? "route " : "relay",
	    r->domain ? r->domain : "");
	return -1;
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
