/*
 * conf: INI parser and validator for smtpgate.conf (DESIGN 5.2).
 *
 * The parser is line based and has no I/O of its own beyond reading the
 * file once: conf_parse_text() takes the text, so tests and the fuzz target
 * drive it directly. A header is looked up in the section kinds of
 * conf_table.c and a key in the rows of its section; the row's setter
 * validates the value and reports errors through the parse context, which
 * adds file:line. What no single key can check (required keys, keys that
 * depend on each other, files to read) is checked once the whole file is
 * read, by conf_validate().
 */
#include "conf/conf_priv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define CONF_FILE_MAX (1024 * 1024)
#define CONF_LINE_MAX 8192

void
conf_error(struct conf_parse *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
}

int
conf_parse_duration(const char *s, unsigned *seconds_r)
{
	unsigned long long v = 0, mul = 1;
	const char *q = s;

	if (!isdigit((unsigned char)*q))
		return -1;
	while (isdigit((unsigned char)*q)) {
		v = v * 10 + (unsigned)(*q - '0');
		if (v > UINT_MAX)
			return -1;
		q++;
	}
	switch (*q) {
	case '\0':
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -1;
	}
	if (*q != '\0' && q[1] != '\0')
		return -1;
	if (v * mul > UINT_MAX)
		return -1;
	*seconds_r = (unsigned)(v * mul);
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *bytes_r)
{
	uint64_t v = 0, mul = 1;
	const char *q = s;

	if (!isdigit((unsigned char)*q))
		return -1;
	while (isdigit((unsigned char)*q)) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (unsigned)(*q - '0');
		q++;
	}
	switch (*q) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1024;
		break;
	case 'M':
		mul = 1024 * 1024;
		break;
	case 'G':
		mul = 1024ULL * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*q != '\0' && q[1] != '\0')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*bytes_r = v * mul;
	return 0;
}

int
conf_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len_r)
{
	char host[256];
	const char *colon, *port;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	unsigned long pn;
	char *end;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		port = rb + 2;
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	if (!isdigit((unsigned char)port[0]))
		return -1;
	errno = 0;
	pn = strtoul(port, &end, 10);
	if (errno != 0 || *end != '\0' || pn > 65535)
		return -1;
	if (s[0] != '[' && (hl == 0 || strcmp(host, "*") == 0)) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons((uint16_t)pn);
		*len_r = sizeof(*sin);
		return 0;
	}
	if (s[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pn);
		*len_r = sizeof(*sin);
		return 0;
	}
	if (s[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pn);
		*len_r = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
conf_parse_cidr(const char *s, struct conf_cidr *r)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long pre;
	char *end;

	memset(r, 0, sizeof(*r));
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, r->addr) == 1) {
		r->family = AF_INET;
		r->prefix = 32;
	} else if (inet_pton(AF_INET6, host, r->addr) == 1) {
		r->family = AF_INET6;
		r->prefix = 128;
	} else {
		return -1;
	}
	if (slash != NULL) {
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		errno = 0;
		pre = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || pre > r->prefix)
			return -1;
		r->prefix = (unsigned)pre;
	}
	return 0;
}

bool
conf_cidr_contains(const struct conf_cidr *net, int family, const void *addr)
{
	const unsigned char *a = addr;
	unsigned bits = net->prefix, i;

	if (family != net->family)
		return false;
	for (i = 0; bits >= 8; i++, bits -= 8) {
		if (a[i] != net->addr[i])
			return false;
	}
	if (bits > 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits));

		if ((a[i] & mask) != (net->addr[i] & mask))
			return false;
	}
	return true;
}

static char *
conf_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* [NAME] or [NAME ARG]: the section kinds are conf_table_sections. */
static int
conf_section(struct conf_parse *p, char *s)
{
	char *close = strchr(s, ']'), *name, *arg;
	const struct conf_section *sec;
	unsigned bit;

	if (close == NULL || conf_trim(close + 1)[0] != '\0') {
		conf_error(p, "malformed section header");
		return -1;
	}
	*close = '\0';
	name = conf_trim(s + 1);
	arg = name + strcspn(name, " \t");
	if (*arg != '\0') {
		*arg++ = '\0';
		arg = conf_trim(arg);
	}
	p->sec = conf_table_section(name);
	p->obj = NULL;
	p->sec_arg = "";
	sec = p->sec;
	if (sec != NULL && sec->arg == CONF_SEC_NAMED)
		return sec->open(p, name, arg);
	if (*arg != '\0') {
		conf_error(p, "[%s] takes no name", name);
		return -1;
	}
	if (sec == NULL) {
		conf_error(p, "unknown section [%s]", name);
		return -1;
	}
	bit = 1u << (sec - conf_table_sections);
	if ((p->seen & bit) != 0) {
		conf_error(p, "section [%s] appears twice", name);
		return -1;
	}
	p->seen |= bit;
	p->obj = p->c;
	if (sec->defaults_at_open)
		conf_table_defaults(p, sec->keys, p->c);
	return sec->open != NULL ? sec->open(p, name, arg) : 0;
}

/* key = value: the row of the key in the current section sets it. */
static int
conf_line(struct conf_parse *p, char *s)
{
	const struct conf_key *row;
	char *eq, *k, *v, *cmt;

	s = conf_trim(s);
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return conf_section(p, s);
	eq = strchr(s, '=');
	if (eq == NULL) {
		conf_error(p, "expected key = value");
		return -1;
	}
	*eq = '\0';
	k = conf_trim(s);
	v = eq + 1;
	/* an inline comment starts at " ;" or " #" */
	for (cmt = v; *cmt; cmt++) {
		if ((*cmt == ';' || *cmt == '#') &&
		    (cmt == v || cmt[-1] == ' ' || cmt[-1] == '\t')) {
			*cmt = '\0';
			break;
		}
	}
	v = conf_trim(v);
	if (*k == '\0') {
		conf_error(p, "missing key before '='");
		return -1;
	}
	row = p->sec != NULL ? conf_table_key(p->sec, k) : NULL;
	if (*v == '\0' && (row == NULL || (row->flags & CONF_KEY_EMPTY_OK) == 0)) {
		conf_error(p, "%s: missing value", k);
		return -1;
	}
	if (p->sec == NULL) {
		conf_error(p, "key \"%s\" outside any section", k);
		return -1;
	}
	if (row == NULL) {
		conf_error(p, "unknown key \"%s\" in [%s%s%s]", k, p->sec->name,
		    p->sec_arg[0] != '\0' ? " " : "", p->sec_arg);
		return -1;
	}
	return conf_table_set(p, row, v);
}

/* What [auth] mechanisms may list (sasl/sasl.c has the cores). */
static const char *const conf_known_mechanisms[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN", "LOGIN", "CRAM-MD5", "OAUTHBEARER", "XOAUTH2",
    NULL};

/* Every [listen NAME]: an address of its own, and settings that can work. */
static int
conf_validate_listens(struct conf_parse *p)
{
	struct conf *c = p->c;

	if (c->nlistens == 0) {
		conf_error(p, "no [listen NAME] section: nothing to serve");
		return -1;
	}
	for (size_t i = 0; i < c->nlistens; i++) {
		struct conf_listen *l = &c->listens[i];

		p->line = l->line;
		if (l->address == NULL) {
			conf_error(p, "[listen %s] has no address", l->name);
			return -1;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->listens[j].address, l->address) == 0) {
				conf_error(p, "[listen %s] uses the address of [listen %s]",
				    l->name, c->listens[j].name);
				return -1;
			}
		}
		if (l->proxy_protocol && l->nproxy_from == 0) {
			conf_error(p,
			    "[listen %s]: proxy_protocol = yes needs proxy_from (the load balancers that may send the header)",
			    l->name);
			return -1;
		}
		if (l->auth == CONF_AUTH_OFF && l->relay == CONF_RELAY_AUTHENTICATED) {
			conf_error(p,
			    "[listen %s]: auth = off with relay = authenticated accepts no mail; use relay = local",
			    l->name);
			return -1;
		}
	}
	return 0;
}

/* [tls] pairs, [admin] and [oauth]. */
static int
conf_validate_tls_admin_oauth(struct conf_parse *p)
{
	struct conf *c = p->c;

	for (size_t i = 0; i < c->ncerts; i++) {
		p->line = c->certs[i].line;
		if (c->certs[i].cert == NULL || c->certs[i].key == NULL) {
			conf_error(p, "[tls] every cert needs a key and every key a cert");
			return -1;
		}
	}
	if (c->admin_auth_line != 0 && c->admin_token_file == NULL) {
		p->line = c->admin_auth_line;
		conf_error(p,
		    "[admin] auth needs token_file (without a token the admin API has no "
		    "authentication at all)");
		return -1;
	}
	if (c->admin_token_file != NULL && (p->without & CONF_WITHOUT_ADMIN_TOKEN) == 0 &&
	    conf_admin_token_load(p) == -1)
		return -1;
	if (c->oauth_line != 0) {
		p->line = c->oauth_line;
		if (c->oauth_jwks == NULL && c->oauth_introspection == NULL) {
			conf_error(
			    p, "[oauth] needs jwks (a file or an https:// URL) or introspection");
			return -1;
		}
		if (c->oauth_issuer == NULL || c->oauth_audience == NULL) {
			conf_error(p, "[oauth] needs issuer and audience");
			return -1;
		}
	}
	return 0;
}

/* [relay], [route DOMAIN] and [dkim DOMAIN]: conf_relay.c, conf_dkim.c. */
static int
conf_validate_delivery(struct conf_parse *p)
{
	struct conf *c = p->c;
	char msg[512];

	for (size_t i = 0; i <= c->nroutes; i++) {
		struct conf_route *r = i < c->nroutes ? c->routes[i] : c->relay;

		if (r == NULL)
			continue;
		p->line = r->line;
		if (conf_route_validate(r, msg, sizeof(msg)) == -1) {
			conf_error(p, "[%s%s] %s", r->domain != NULL ? "route " : "relay",
			    r->domain != NULL ? r->domain : "", msg);
			return -1;
		}
	}
	for (size_t i = 0; i < c->ndkims; i++) {
		if (conf_dkim_validate(c->dkims[i], (p->without & CONF_WITHOUT_DKIM_KEYS) == 0,
		        &p->line, msg, sizeof(msg)) == -1) {
			conf_error(p, "[dkim %s] %s", c->dkims[i]->domain, msg);
			return -1;
		}
	}
	return 0;
}

/* [auth] mechanisms against the backend and [oauth]. */
static int
conf_validate_mechanisms(struct conf_parse *p)
{
	struct conf *c = p->c;

	if (conf_backend_dovecot(c) != NULL && p->mechanisms_line == 0) {
		/* not given: with Dovecot only the plaintext mechanisms can be
		 * verified, whatever the default list holds */
		conf_table_list_set(&c->mechanisms, &c->nmechanisms, "PLAIN LOGIN", true);
	}
	for (size_t i = 0; i < c->nmechanisms && conf_backend_dovecot(c) != NULL; i++) {
		/* Dovecot's auth-client protocol verifies passwords; it never hands
		 * out the stored keys SCRAM (and the secret CRAM-MD5) need here, and
		 * cannot carry our TLS channel binding (doc/dovecot.md). */
		if (strncmp(c->mechanisms[i], "SCRAM-", 6) == 0 ||
		    strcmp(c->mechanisms[i], "CRAM-MD5") == 0) {
			p->line = p->mechanisms_line;
			conf_error(p,
			    "[auth] mechanisms: %s needs stored credentials, which backend = dovecot:SOCKET cannot provide (use PLAIN LOGIN, or backend = file:PATH)",
			    c->mechanisms[i]);
			return -1;
		}
	}
	p->line = p->mechanisms_line;
	for (size_t i = 0; i < c->nmechanisms; i++) {
		bool known = false;

		for (size_t j = 0; conf_known_mechanisms[j] != NULL; j++)
			known = known || strcmp(c->mechanisms[i], conf_known_mechanisms[j]) == 0;
		if (!known) {
			conf_error(p,
			    "[auth] mechanisms: %s is not supported (supported: SCRAM-SHA-256-PLUS "
			    "SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5 "
			    "OAUTHBEARER XOAUTH2)",
			    c->mechanisms[i]);
			return -1;
		}
		if ((strcmp(c->mechanisms[i], "OAUTHBEARER") == 0 ||
		        strcmp(c->mechanisms[i], "XOAUTH2") == 0) &&
		    c->oauth_jwks == NULL && c->oauth_introspection == NULL) {
			conf_error(p,
			    "[auth] mechanisms: %s needs an [oauth] section with jwks or introspection",
			    c->mechanisms[i]);
			return -1;
		}
	}
	return 0;
}

/* What no single key can check, once the whole file is read. */
static int
conf_validate(struct conf_parse *p)
{
	struct conf *c = p->c;
	bool need_tls = false;

	p->line = 0;
	if (conf_validate_listens(p) == -1 || conf_validate_tls_admin_oauth(p) == -1 ||
	    conf_validate_delivery(p) == -1 || conf_cluster_validate(p) == -1)
		return -1;
	p->line = 0;
	for (size_t i = 0; i < c->nlistens; i++)
		need_tls = need_tls || c->listens[i].tls != CONF_TLS_NONE;
	if (need_tls && c->ncerts == 0) {
		conf_error(p, "a listener uses TLS but [tls] has no cert and key");
		return -1;
	}
	if (conf_validate_mechanisms(p) == -1 || conf_sql_validate(p) == -1)
		return -1;
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].auth != CONF_AUTH_OFF && c->backend == NULL) {
			p->line = c->listens[i].line;
			conf_error(p, "[listen %s] uses auth but [auth] has no backend",
			    c->listens[i].name);
			return -1;
		}
	}
	return 0;
}

/* The defaults of the sections whose keys fill struct conf itself. */
static void
conf_defaults(struct conf_parse *p)
{
	for (const struct conf_section *s = conf_table_sections; s->name != NULL; s++) {
		if (s->arg == CONF_SEC_ONCE && !s->defaults_at_open)
			conf_table_defaults(p, s->keys, p->c);
	}
}

static struct conf *
conf_parse_without(const char *file, char *text, unsigned without, char *err, size_t errlen)
{
	struct conf_parse p;
	struct conf *c = xcalloc(1, sizeof(*c));
	char *line = text, *nl;

	memset(&p, 0, sizeof(p));
	p.c = c;
	p.file = file;
	p.err = err;
	p.errlen = errlen;
	p.sec_arg = "";
	p.without = without;
	c->path = xstrdup(file);
	c->dir = fs_dirname(file);
	conf_defaults(&p);
	while (line != NULL && *line != '\0') {
		p.line++;
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strlen(line) > CONF_LINE_MAX) {
			conf_error(&p, "line longer than %d characters", CONF_LINE_MAX);
			goto fail;
		}
		if (conf_line(&p, line) == -1)
			goto fail;
		line = nl != NULL ? nl + 1 : NULL;
	}
	if (conf_validate(&p) == -1)
		goto fail;
	return c;
fail:
	conf_free(c);
	return NULL;
}
struct conf *
conf_parse_text(const char *file, char *text, char *err, size_t errlen)
{
	return conf_parse_without(file, text, 0, err, errlen);
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	return conf_load_without(path, 0, err, errlen);
}

struct conf *
conf_load_without(const char *path, unsigned without, char *err, size_t errlen)
{
	struct conf *c;
	size_t len;
	char *text = fs_read_file(path, CONF_FILE_MAX, &len);

	if (text == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(text);
		return NULL;
	}
	c = conf_parse_without(path, text, without, err, errlen);
	free(text);
	return c;
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->dir);
	free(c->hostname);
	free(c->spool);
	free(c->log);
	free(c->user);
	for (size_t i = 0; i < c->nlistens; i++) {
		free(c->listens[i].name);
		free(c->listens[i].address);
		free(c->listens[i].proxy_from);
	}
	free(c->listens);
	for (size_t i = 0; i < c->ncerts; i++) {
		free(c->certs[i].cert);
		free(c->certs[i].key);
	}
	free(c->certs);
	free(c->tls_ciphers);
	for (size_t i = 0; i < c->nmechanisms; i++)
		free(c->mechanisms[i]);
	free(c->mechanisms);
	if (c->backend != NULL) /* a pgsql conninfo may hold a password */
		explicit_bzero(c->backend, strlen(c->backend));
	free(c->backend);
	free(c->sql_query);
	free(c->sql_password_file);
	free(c->oauth_jwks);
	free(c->oauth_issuer);
	free(c->oauth_audience);
	free(c->oauth_user_claim);
	free(c->oauth_introspection);
	free(c->allow);
	free(c->admin_address);
	free(c->admin_token_file);
	conf_cluster_free(c);
	if (c->admin_token != NULL) {
		explicit_bzero(c->admin_token, strlen(c->admin_token));
		free(c->admin_token);
	}
	free(c->oauth_jwks_ca);
	free(c->oauth_introspection_ca);
	free(c->oauth_introspection_client);
	free(c->oauth_introspection_secret_file);
	for (size_t i = 0; i < c->nlocal_domains; i++)
		free(c->local_domains[i]);
	free(c->local_domains);
	conf_route_free(c->relay);
	for (size_t i = 0; i < c->nroutes; i++)
		conf_route_free(c->routes[i]);
	free(c->routes);
	for (size_t i = 0; i < c->ndkims; i++)
		conf_dkim_free(c->dkims[i]);
	free(c->dkims);
	free(c);
}

const char *
conf_backend_dovecot(const struct conf *c)
{
	if (c->backend != NULL && strncmp(c->backend, "dovecot:", 8) == 0)
		return c->backend + 8;
	return NULL;
}

const char *
conf_backend_pgsql(const struct conf *c)
{
	if (c->backend != NULL && strncmp(c->backend, "pgsql:", 6) == 0)
		return c->backend + 6;
	return NULL;
}

const char *
conf_backend_file(const struct conf *c)
{
	if (c->backend != NULL && strncmp(c->backend, "file:", 5) == 0)
		return c->backend + 5;
	return NULL;
}

bool
conf_is_local_domain(const struct conf *c, const char *domain, size_t len)
{
	for (size_t i = 0; i < c->nlocal_domains; i++) {
		if (strlen(c->local_domains[i]) == len &&
		    strncasecmp(c->local_domains[i], domain, len) == 0)
			return true;
	}
	return false;
}
