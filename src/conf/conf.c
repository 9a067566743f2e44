/*
 * conf: INI parser and validator for smtpgate.conf (DESIGN 5.2).
 *
 * The parser is line based and has no I/O of its own beyond reading the
 * file once: conf_parse_text() takes the text, so tests and the fuzz target
 * drive it directly. Each key is handled by a row of a table that names its
 * section; the row's setter validates the value and reports errors through
 * the parse context, which adds file:line.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define CONF_FILE_MAX (1024 * 1024)
#define CONF_LINE_MAX 8192

/* TLS1_2_VERSION / TLS1_3_VERSION without pulling OpenSSL into this layer */
#define CONF_TLS1_2 0x0303
#define CONF_TLS1_3 0x0304

struct conf_parse {
	struct conf *c;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	enum {
		SEC_NONE,
		SEC_SERVER,
		SEC_LISTEN,
		SEC_TLS,
		SEC_AUTH,
		SEC_DOMAINS,
		SEC_LIMITS,
		SEC_OAUTH,
		SEC_ADMIN,
		SEC_RELAY, /* [relay] and [route DOMAIN]: conf_relay.c */
		SEC_DKIM, /* [dkim DOMAIN]: conf_dkim.c */
	} sec;
	struct conf_listen *listen; /* current [listen NAME] */
	struct conf_route *route; /* current [relay] or [route DOMAIN] */
	struct conf_dkim *dkim; /* current [dkim DOMAIN] */
	int mechanisms_line; /* [auth] mechanisms, for errors naming it */
	size_t nkeys_cert, nkeys_key;
	bool seen_server, seen_tls, seen_auth, seen_domains, seen_limits, seen_oauth, seen_admin;
};

static void conf_error(struct conf_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
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

static bool
conf_is_word(const char *s, const char *w)
{
	return strcasecmp(s, w) == 0;
}

static void
conf_str_set(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static void
conf_path_set(struct conf_parse *p, char **dst, const char *v)
{
	free(*dst);
	*dst = fs_path_join(p->c->dir, v);
}

/* Splits v on white space into a fresh array (lower-cased if lower). */
static void
conf_list_set(char ***arr, size_t *n, const char *v, bool upper)
{
	char *copy = xstrdup(v), *tok, *save = NULL;
	size_t i;

	for (i = 0; i < *n; i++)
		free((*arr)[i]);
	free(*arr);
	*arr = NULL;
	*n = 0;
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		for (char *q = tok; *q; q++)
			*q =
			    (char)(upper ? toupper((unsigned char)*q) : tolower((unsigned char)*q));
		*arr = xrealloc(*arr, (*n + 1) * sizeof(char *));
		(*arr)[(*n)++] = xstrdup(tok);
	}
	free(copy);
}

static int
conf_set_uint(
    struct conf_parse *p, const char *key, const char *v, unsigned lo, unsigned hi, unsigned *dst)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 || n < lo || n > hi) {
		conf_error(p, "%s: expected a number from %u to %u, got \"%s\"", key, lo, hi, v);
		return -1;
	}
	*dst = (unsigned)n;
	return 0;
}

static int
conf_set_duration(struct conf_parse *p, const char *key, const char *v, unsigned *dst)
{
	if (conf_parse_duration(v, dst) == -1 || *dst == 0) {
		conf_error(p, "%s: expected a duration such as 90s, 10m or 1h, got \"%s\"", key, v);
		return -1;
	}
	return 0;
}

static int
conf_key_server(struct conf_parse *p, const char *k, const char *v)
{
	struct conf *c = p->c;
	unsigned n;

	if (strcmp(k, "hostname") == 0) {
		for (const char *q = v; *q; q++) {
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-') {
				conf_error(p, "hostname: \"%s\" is not a host name", v);
				return -1;
			}
		}
		conf_str_set(&c->hostname, v);
	} else if (strcmp(k, "spool") == 0) {
		conf_path_set(p, &c->spool, v);
	} else if (strcmp(k, "threads") == 0) {
		if (conf_is_word(v, "auto")) {
			c->threads = 0;
		} else {
			if (conf_set_uint(p, k, v, 1, 256, &n) == -1)
				return -1;
			c->threads = (int)n;
		}
	} else if (strcmp(k, "log") == 0) {
		if (strcmp(v, "stderr") == 0)
			conf_str_set(&c->log, v);
		else
			conf_path_set(p, &c->log, v);
	} else {
		conf_error(p, "unknown key \"%s\" in [server]", k);
		return -1;
	}
	return 0;
}

/* A list of networks: "allow = 127.0.0.0/8 ::1" ([limits]), "proxy_from =
 * 192.0.2.10 192.0.2.11" ([listen]); an empty value is an empty list. */
static int
conf_cidrs_set(
    struct conf_parse *p, const char *k, const char *v, struct conf_cidr **list, size_t *n)
{
	char *copy = xstrdup(v), *tok, *save = NULL;

	free(*list);
	*list = NULL;
	*n = 0;
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		*list = xrealloc(*list, (*n + 1) * sizeof(**list));
		if (conf_parse_cidr(tok, &(*list)[*n]) == -1) {
			conf_error(p, "%s: \"%s\" is not an address or ADDRESS/PREFIX", k, tok);
			free(copy);
			return -1;
		}
		(*n)++;
	}
	free(copy);
	return 0;
}

static int
conf_key_listen(struct conf_parse *p, const char *k, const char *v)
{
	struct conf_listen *l = p->listen;

	if (strcmp(k, "address") == 0) {
		if (conf_parse_address(v, &l->addr, &l->addrlen) == -1) {
			conf_error(p,
			    "address: \"%s\" is not HOST:PORT or [V6]:PORT with a numeric address",
			    v);
			return -1;
		}
		conf_str_set(&l->address, v);
	} else if (strcmp(k, "tls") == 0) {
		if (conf_is_word(v, "starttls"))
			l->tls = CONF_TLS_STARTTLS;
		else if (conf_is_word(v, "implicit"))
			l->tls = CONF_TLS_IMPLICIT;
		else if (conf_is_word(v, "none"))
			l->tls = CONF_TLS_NONE;
		else {
			conf_error(p, "tls: expected starttls, implicit or none, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "auth") == 0) {
		if (conf_is_word(v, "required"))
			l->auth = CONF_AUTH_REQUIRED;
		else if (conf_is_word(v, "optional"))
			l->auth = CONF_AUTH_OPTIONAL;
		else if (conf_is_word(v, "off"))
			l->auth = CONF_AUTH_OFF;
		else {
			conf_error(p, "auth: expected required, optional or off, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "relay") == 0) {
		if (conf_is_word(v, "authenticated"))
			l->relay = CONF_RELAY_AUTHENTICATED;
		else if (conf_is_word(v, "local"))
			l->relay = CONF_RELAY_LOCAL;
		else {
			conf_error(p, "relay: expected authenticated or local, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "sender_binding") == 0) {
		if (conf_is_word(v, "on"))
			l->sender_binding = true;
		else if (conf_is_word(v, "off"))
			l->sender_binding = false;
		else {
			conf_error(p, "sender_binding: expected on or off, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "proxy_protocol") == 0) {
		if (conf_is_word(v, "yes") || conf_is_word(v, "on"))
			l->proxy_protocol = true;
		else if (conf_is_word(v, "no") || conf_is_word(v, "off"))
			l->proxy_protocol = false;
		else {
			conf_error(p, "proxy_protocol: expected yes or no, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "proxy_from") == 0) {
		return conf_cidrs_set(p, k, v, &l->proxy_from, &l->nproxy_from);
	} else {
		conf_error(p, "unknown key \"%s\" in [listen %s]", k, l->name);
		return -1;
	}
	return 0;
}

static int
conf_key_tls(struct conf_parse *p, const char *k, const char *v)
{
	struct conf *c = p->c;

	if (strcmp(k, "cert") == 0) {
		if (p->nkeys_cert >= c->ncerts) {
			c->certs = xrealloc(c->certs, (c->ncerts + 1) * sizeof(*c->certs));
			memset(&c->certs[c->ncerts], 0, sizeof(*c->certs));
			c->certs[c->ncerts].line = p->line;
			c->ncerts++;
		}
		conf_path_set(p, &c->certs[p->nkeys_cert++].cert, v);
	} else if (strcmp(k, "key") == 0) {
		if (p->nkeys_key >= c->ncerts) {
			c->certs = xrealloc(c->certs, (c->ncerts + 1) * sizeof(*c->certs));
			memset(&c->certs[c->ncerts], 0, sizeof(*c->certs));
			c->certs[c->ncerts].line = p->line;
			c->ncerts++;
		}
		conf_path_set(p, &c->certs[p->nkeys_key++].key, v);
	} else if (strcmp(k, "min_version") == 0) {
		if (strcmp(v, "1.2") == 0)
			c->tls_min_version = CONF_TLS1_2;
		else if (strcmp(v, "1.3") == 0)
			c->tls_min_version = CONF_TLS1_3;
		else {
			conf_error(p, "min_version: expected 1.2 or 1.3, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "ciphers") == 0) {
		conf_str_set(&c->tls_ciphers, v);
	} else {
		conf_error(p, "unknown key \"%s\" in [tls]", k);
		return -1;
	}
	return 0;
}

static int
conf_key_auth(struct conf_parse *p, const char *k, const char *v)
{
	struct conf *c = p->c;
	unsigned n;

	if (strcmp(k, "mechanisms") == 0) {
		conf_list_set(&c->mechanisms, &c->nmechanisms, v, true);
		p->mechanisms_line = p->line;
	} else if (strcmp(k, "backend") == 0) {
		const char *kind = strncmp(v, "file:", 5) == 0 ? "file:"
		    : strncmp(v, "dovecot:", 8) == 0           ? "dovecot:"
		                                               : NULL;

		if (kind == NULL || v[strlen(kind)] == '\0') {
			conf_error(
			    p, "backend: expected file:PATH or dovecot:SOCKET, got \"%s\"", v);
			return -1;
		}
		free(c->backend);
		{
			char *path = fs_path_join(c->dir, v + strlen(kind));
			size_t len = strlen(kind) + strlen(path) + 1;

			c->backend = xmalloc(len);
			snprintf(c->backend, len, "%s%s", kind, path);
			free(path);
		}
	} else if (strcmp(k, "workers") == 0) {
		if (conf_set_uint(p, k, v, 1, 64, &n) == -1)
			return -1;
		c->auth_workers = (int)n;
	} else if (strcmp(k, "queue") == 0) {
		if (conf_set_uint(p, k, v, 1, 100000, &n) == -1)
			return -1;
		c->auth_queue = (int)n;
	} else {
		conf_error(p, "unknown key \"%s\" in [auth]", k);
		return -1;
	}
	return 0;
}

static int
conf_key_domains(struct conf_parse *p, const char *k, const char *v)
{
	if (strcmp(k, "local") == 0) {
		conf_list_set(&p->c->local_domains, &p->c->nlocal_domains, v, false);
		return 0;
	}
	conf_error(p, "unknown key \"%s\" in [domains]", k);
	return -1;
}

static int
conf_key_oauth(struct conf_parse *p, const char *k, const char *v)
{
	struct conf *c = p->c;

	if (strcmp(k, "jwks") == 0) {
		if (strncmp(v, "https://", 8) == 0)
			conf_str_set(&c->oauth_jwks, v);
		else if (strncmp(v, "http://", 7) == 0) {
			conf_error(p, "jwks: keys must come over https, got \"%s\"", v);
			return -1;
		} else
			conf_path_set(p, &c->oauth_jwks, v);
	} else if (strcmp(k, "issuer") == 0) {
		conf_str_set(&c->oauth_issuer, v);
	} else if (strcmp(k, "audience") == 0) {
		conf_str_set(&c->oauth_audience, v);
	} else if (strcmp(k, "user_claim") == 0) {
		conf_str_set(&c->oauth_user_claim, v);
	} else if (strcmp(k, "jwks_ca") == 0) {
		conf_path_set(p, &c->oauth_jwks_ca, v);
	} else if (strcmp(k, "introspection_ca") == 0) {
		conf_path_set(p, &c->oauth_introspection_ca, v);
	} else if (strcmp(k, "introspection_client") == 0) {
		conf_str_set(&c->oauth_introspection_client, v);
	} else if (strcmp(k, "introspection_secret_file") == 0) {
		conf_path_set(p, &c->oauth_introspection_secret_file, v);
	} else if (strcmp(k, "introspection") == 0) {
		if (strncmp(v, "https://", 8) != 0) {
			conf_error(p, "introspection: expected an https:// URL, got \"%s\"", v);
			return -1;
		}
		conf_str_set(&c->oauth_introspection, v);
	} else {
		conf_error(p, "unknown key \"%s\" in [oauth]", k);
		return -1;
	}
	return 0;
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

static int
conf_key_admin(struct conf_parse *p, const char *k, const char *v)
{
	struct conf *c = p->c;

	if (strcmp(k, "address") == 0) {
		if (conf_parse_address(v, &c->admin_addr, &c->admin_addrlen) == -1) {
			conf_error(p,
			    "address: \"%s\" is not HOST:PORT or [V6]:PORT with a numeric address",
			    v);
			return -1;
		}
		conf_str_set(&c->admin_address, v);
		return 0;
	}
	if (strcmp(k, "token_file") == 0) {
		conf_path_set(p, &c->admin_token_file, v);
		c->admin_token_line = p->line;
		return 0;
	}
	if (strcmp(k, "auth") == 0) {
		if (conf_is_word(v, "changes"))
			c->admin_auth = CONF_ADMIN_AUTH_CHANGES;
		else if (conf_is_word(v, "all"))
			c->admin_auth = CONF_ADMIN_AUTH_ALL;
		else {
			conf_error(p, "auth: expected changes or all, got \"%s\"", v);
			return -1;
		}
		c->admin_auth_line = p->line;
		return 0;
	}
	conf_error(p, "unknown key \"%s\" in [admin]", k);
	return -1;
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
 * "/" ) *"=": what an Authorization: Bearer header can carry as is. */
static bool
conf_is_b64token(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (isalnum((unsigned char)p[i]) || strchr("-._~+/", p[i]) != NULL))
		i++;
	if (i == 0)
		return false;
	while (i < len && p[i] == '=')
		i++;
	return i == len;
}

int
conf_admin_token_parse(const char *text, size_t len, char **token_r, const char **errstr_r)
{
	const char *nl = memchr(text, '\n', len), *b = text, *e;

	*token_r = NULL;
	if (memchr(text, '\0', len) != NULL) {
		*errstr_r = "the file holds a NUL byte (binary?): expected one line of text";
		return -1;
	}
	e = nl != NULL ? nl : text + len;
	while (b < e && (*b == ' ' || *b == '\t' || *b == '\r'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (b == e) {
		*errstr_r = "the first line is empty: expected the token there";
		return -1;
	}
	if (!conf_is_b64token(b, (size_t)(e - b))) {
		*errstr_r = "the token may only hold letters, digits and -._~+/ (then = padding), "
		            "e.g. the output of openssl rand -hex 32";
		return -1;
	}
	if ((size_t)(e - b) < CONF_ADMIN_TOKEN_MIN) {
		*errstr_r = "the token is shorter than 32 characters: make a new one, e.g. "
		            "openssl rand -hex 32";
		return -1;
	}
	if ((size_t)(e - b) > CONF_ADMIN_TOKEN_MAX) {
		*errstr_r = "the token is longer than 512 characters";
		return -1;
	}
	*token_r = xstrndup(b, (size_t)(e - b));
	return 0;
}

/* Reads [admin] token_file once: a regular file of mode 0600 or stricter
 * (like [relay] credentials: a secret must never come from a file others can
 * read), opened without blocking on a FIFO and checked again once open. */
static int
conf_admin_token_load(struct conf_parse *p)
{
	struct conf *c = p->c;
	const char *path = c->admin_token_file, *e;
	char text[CONF_ADMIN_TOKEN_FILE_MAX + 1];
	struct stat st, fst;
	ssize_t n;
	size_t len = 0;
	int fd = -1, rc = -1;

	p->line = c->admin_token_line;
	if (stat(path, &st) == -1) {
		conf_error(p, "[admin] token_file: %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0177) != 0) {
		conf_error(p,
		    "[admin] token_file: %s must be a regular file of mode 0600 or stricter (it is "
		    "%s%04o): chmod 600 %s",
		    path, S_ISREG(st.st_mode) ? "" : "not a regular file, mode ",
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &fst) == -1) {
		conf_error(p, "[admin] token_file: %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino || !S_ISREG(fst.st_mode) ||
	    (fst.st_mode & 0177) != 0) {
		conf_error(p, "[admin] token_file: %s changed while it was read: try again", path);
		goto fail;
	}
	while (len < sizeof(text) && (n = read(fd, text + len, sizeof(text) - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			conf_error(p, "[admin] token_file: %s: %s", path, strerror(errno));
			goto fail;
		}
		len += (size_t)n;
	}
	if (len > CONF_ADMIN_TOKEN_FILE_MAX) {
		conf_error(p, "[admin] token_file: %s is larger than %d bytes: expected one token",
		    path, CONF_ADMIN_TOKEN_FILE_MAX);
		goto fail;
	}
	if (conf_admin_token_parse(text, len, &c->admin_token, &e) == -1) {
		conf_error(p, "[admin] token_file: %s: %s", path, e);
		goto fail;
	}
	rc = 0;
fail:
	explicit_bzero(text, sizeof(text));
	if (fd != -1)
		close(fd);
	return rc;
}

static int
conf_key_limits(struct conf_parse *p, const char *k, const char *v)
{
	struct conf *c = p->c;

	if (strcmp(k, "message_size") == 0) {
		if (conf_parse_size(v, &c->message_size) == -1 || c->message_size < 1024) {
			conf_error(p,
			    "message_size: expected a size of at least 1k such as 25M, got \"%s\"",
			    v);
			return -1;
		}
	} else if (strcmp(k, "recipients") == 0) {
		/* RFC 5321 4.5.3.1.8: at least 100 must be accepted */
		return conf_set_uint(p, k, v, 1, 100000, &c->recipients);
	} else if (strcmp(k, "errors") == 0) {
		return conf_set_uint(p, k, v, 1, 1000, &c->errors);
	} else if (strcmp(k, "timeout_command") == 0) {
		return conf_set_duration(p, k, v, &c->timeout_command);
	} else if (strcmp(k, "timeout_data") == 0) {
		return conf_set_duration(p, k, v, &c->timeout_data);
	} else if (strcmp(k, "shutdown_grace") == 0) {
		return conf_set_duration(p, k, v, &c->shutdown_grace);
	} else if (strcmp(k, "connections") == 0) {
		return conf_set_uint(p, k, v, 1, 1000000, &c->connections);
	} else if (strcmp(k, "connections_per_ip") == 0) {
		return conf_set_uint(p, k, v, 1, 1000000, &c->connections_per_ip);
	} else if (strcmp(k, "connection_rate_per_ip") == 0) {
		return conf_set_uint(p, k, v, 1, 1000000, &c->connection_rate_per_ip);
	} else if (strcmp(k, "commands") == 0) {
		return conf_set_uint(p, k, v, 10, 10000000, &c->commands);
	} else if (strcmp(k, "auth_failures_per_ip") == 0) {
		return conf_set_uint(p, k, v, 1, 1000000, &c->auth_failures_per_ip);
	} else if (strcmp(k, "auth_failures_per_net") == 0) {
		return conf_set_uint(p, k, v, 1, 1000000, &c->auth_failures_per_net);
	} else if (strcmp(k, "net_prefix_v4") == 0) {
		return conf_set_uint(p, k, v, 8, 32, &c->net_prefix_v4);
	} else if (strcmp(k, "net_prefix_v6") == 0) {
		return conf_set_uint(p, k, v, 16, 128, &c->net_prefix_v6);
	} else if (strcmp(k, "auth_failures_per_account") == 0) {
		return conf_set_uint(p, k, v, 1, 1000000, &c->auth_failures_per_account);
	} else if (strcmp(k, "ban_time") == 0) {
		return conf_set_duration(p, k, v, &c->ban_time);
	} else if (strcmp(k, "ban_action") == 0) {
		if (conf_is_word(v, "reply"))
			c->ban_silent = false;
		else if (conf_is_word(v, "close"))
			c->ban_silent = true;
		else {
			conf_error(p, "ban_action: expected reply or close, got \"%s\"", v);
			return -1;
		}
	} else if (strcmp(k, "allow") == 0) {
		return conf_cidrs_set(p, k, v, &c->allow, &c->nallow);
	} else if (strcmp(k, "quota_messages_per_day") == 0) {
		return conf_set_uint(p, k, v, 0, 100000000, &c->quota_messages_per_day);
	} else if (strcmp(k, "quota_recipients_per_day") == 0) {
		return conf_set_uint(p, k, v, 0, 100000000, &c->quota_recipients_per_day);
	} else if (strcmp(k, "quota_action") == 0) {
		if (conf_is_word(v, "tempfail"))
			c->quota_reject = false;
		else if (conf_is_word(v, "reject"))
			c->quota_reject = true;
		else {
			conf_error(p, "quota_action: expected tempfail or reject, got \"%s\"", v);
			return -1;
		}
	} else {
		conf_error(p, "unknown key \"%s\" in [limits]", k);
		return -1;
	}
	return 0;
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

/* [relay] (once) or [route DOMAIN] (once per domain). */
static int
conf_section_route(struct conf_parse *p, const char *name, const char *arg)
{
	struct conf *c = p->c;

	if (strcmp(name, "relay") == 0) {
		if (*arg != '\0' || c->relay != NULL) {
			conf_error(p,
			    *arg != '\0' ? "[relay] takes no name (per domain: [route DOMAIN])"
			                 : "section [relay] appears twice");
			return -1;
		}
		c->relay = p->route = conf_route_new(NULL, p->line);
	} else {
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
		c->routes[c->nroutes++] = p->route = conf_route_new(arg, p->line);
	}
	p->sec = SEC_RELAY;
	return 0;
}

/* [dkim DOMAIN] (once per domain). */
static int
conf_section_dkim(struct conf_parse *p, const char *arg)
{
	struct conf *c = p->c;

	if (*arg == '\0' || strchr(arg, '@') != NULL || strchr(arg, ' ') != NULL) {
		conf_error(p, "[dkim] needs a domain: [dkim example.net]");
		return -1;
	}
	for (size_t i = 0; i < c->ndkims; i++) {
		if (strcasecmp(c->dkims[i]->domain, arg) == 0) {
			conf_error(p, "[dkim %s] appears twice (first at line %d)", arg,
			    c->dkims[i]->line);
			return -1;
		}
	}
	c->dkims = xrealloc(c->dkims, (c->ndkims + 1) * sizeof(*c->dkims));
	c->dkims[c->ndkims++] = p->dkim = conf_dkim_new(arg, p->line);
	p->sec = SEC_DKIM;
	return 0;
}

static int
conf_section(struct conf_parse *p, char *s)
{
	char *close = strchr(s, ']'), *name, *arg;
	struct conf *c = p->c;

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
	p->listen = NULL;
	p->route = NULL;
	p->dkim = NULL;
	if (strcmp(name, "relay") == 0 || strcmp(name, "route") == 0)
		return conf_section_route(p, name, arg);
	if (strcmp(name, "dkim") == 0)
		return conf_section_dkim(p, arg);
	if (strcmp(name, "listen") == 0) {
		if (*arg == '\0') {
			conf_error(p, "[listen] needs a name: [listen submission]");
			return -1;
		}
		for (size_t i = 0; i < c->nlistens; i++) {
			if (strcmp(c->listens[i].name, arg) == 0) {
				conf_error(p, "[listen %s] appears twice (first at line %d)", arg,
				    c->listens[i].line);
				return -1;
			}
		}
		c->listens = xrealloc(c->listens, (c->nlistens + 1) * sizeof(*c->listens));
		p->listen = &c->listens[c->nlistens++];
		memset(p->listen, 0, sizeof(*p->listen));
		p->listen->name = xstrdup(arg);
		p->listen->line = p->line;
		p->listen->tls = CONF_TLS_STARTTLS;
		p->listen->auth = CONF_AUTH_REQUIRED;
		p->listen->relay = CONF_RELAY_AUTHENTICATED;
		p->listen->sender_binding = true;
		p->sec = SEC_LISTEN;
		return 0;
	}
	if (*arg != '\0') {
		conf_error(p, "[%s] takes no name", name);
		return -1;
	}
	bool *seen = NULL;
	if (strcmp(name, "server") == 0) {
		p->sec = SEC_SERVER;
		seen = &p->seen_server;
	} else if (strcmp(name, "tls") == 0) {
		p->sec = SEC_TLS;
		seen = &p->seen_tls;
	} else if (strcmp(name, "auth") == 0) {
		p->sec = SEC_AUTH;
		seen = &p->seen_auth;
	} else if (strcmp(name, "domains") == 0) {
		p->sec = SEC_DOMAINS;
		seen = &p->seen_domains;
	} else if (strcmp(name, "limits") == 0) {
		p->sec = SEC_LIMITS;
		seen = &p->seen_limits;
	} else if (strcmp(name, "admin") == 0) {
		p->sec = SEC_ADMIN;
		seen = &p->seen_admin;
		p->c->admin = true;
		p->c->admin_line = p->line;
	} else if (strcmp(name, "oauth") == 0) {
		p->sec = SEC_OAUTH;
		seen = &p->seen_oauth;
		p->c->oauth_line = p->line;
	} else {
		conf_error(p, "unknown section [%s]", name);
		return -1;
	}
	if (*seen) {
		conf_error(p, "section [%s] appears twice", name);
		return -1;
	}
	*seen = true;
	return 0;
}

static int
conf_line(struct conf_parse *p, char *s)
{
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
	if (*v == '\0' && !(p->sec == SEC_LIMITS && strcmp(k, "allow") == 0)) {
		conf_error(p, "%s: missing value", k);
		return -1;
	}
	switch (p->sec) {
	case SEC_NONE:
		conf_error(p, "key \"%s\" outside any section", k);
		return -1;
	case SEC_SERVER:
		return conf_key_server(p, k, v);
	case SEC_LISTEN:
		return conf_key_listen(p, k, v);
	case SEC_TLS:
		return conf_key_tls(p, k, v);
	case SEC_AUTH:
		return conf_key_auth(p, k, v);
	case SEC_DOMAINS:
		return conf_key_domains(p, k, v);
	case SEC_LIMITS:
		return conf_key_limits(p, k, v);
	case SEC_OAUTH:
		return conf_key_oauth(p, k, v);
	case SEC_ADMIN:
		return conf_key_admin(p, k, v);
	case SEC_RELAY: {
		char msg[512];

		if (conf_route_key(p->route, p->c->dir, k, v, msg, sizeof(msg)) == -1) {
			conf_error(p, "%s", msg);
			return -1;
		}
		return 0;
	}
	case SEC_DKIM: {
		char msg[512];

		if (conf_dkim_key(p->dkim, p->c->dir, k, v, p->line, msg, sizeof(msg)) == -1) {
			conf_error(p, "%s", msg);
			return -1;
		}
		return 0;
	}
	}
	return -1;
}

/* What [auth] mechanisms may list (sasl/sasl.c has the cores). */
static const char *const conf_known_mechanisms[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN", "LOGIN", "CRAM-MD5", "OAUTHBEARER", "XOAUTH2",
    NULL};
#define CONF_MECHANISMS_DEFAULT                                                                    \
	"SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN"

static int
conf_validate(struct conf_parse *p)
{
	struct conf *c = p->c;
	bool need_tls = false;

	p->line = 0;
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
		if (l->tls != CONF_TLS_NONE)
			need_tls = true;
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
	for (size_t i = 0; i < c->ncerts; i++) {
		p->line = c->certs[i].line;
		if (c->certs[i].cert == NULL || c->certs[i].key == NULL) {
			conf_error(p, "[tls] every cert needs a key and every key a cert");
			return -1;
		}
	}
	if (c->admin && c->admin_address == NULL) {
		c->admin_address = xstrdup("127.0.0.1:8025");
		if (conf_parse_address(c->admin_address, &c->admin_addr, &c->admin_addrlen) == -1)
			abort();
	}
	if (c->admin_auth_line != 0 && c->admin_token_file == NULL) {
		p->line = c->admin_auth_line;
		conf_error(p,
		    "[admin] auth needs token_file (without a token the admin API has no "
		    "authentication at all)");
		return -1;
	}
	if (c->admin_token_file != NULL && conf_admin_token_load(p) == -1)
		return -1;
	if (p->seen_oauth) {
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
	for (size_t i = 0; i <= c->nroutes; i++) {
		struct conf_route *r = i < c->nroutes ? c->routes[i] : c->relay;
		char msg[512];

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
		char msg[512];

		if (conf_dkim_validate(c->dkims[i], &p->line, msg, sizeof(msg)) == -1) {
			conf_error(p, "[dkim %s] %s", c->dkims[i]->domain, msg);
			return -1;
		}
	}
	p->line = 0;
	if (need_tls && c->ncerts == 0) {
		conf_error(p, "a listener uses TLS but [tls] has no cert and key");
		return -1;
	}
	if (conf_backend_dovecot(c) != NULL && p->mechanisms_line == 0) {
		/* not given: with Dovecot only the plaintext mechanisms can be
		 * verified, whatever the default list holds */
		conf_list_set(&c->mechanisms, &c->nmechanisms, "PLAIN LOGIN", true);
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

static void
conf_defaults(struct conf *c)
{
	c->hostname = xstrdup("localhost");
	c->spool = fs_path_join(c->dir, "spool");
	c->log = xstrdup("stderr");
	c->tls_min_version = CONF_TLS1_2;
	c->message_size = 25 * 1024 * 1024;
	c->recipients = 100;
	c->errors = 10;
	c->timeout_command = 300; /* RFC 5321 4.5.3.2.7: server timeout 5 minutes */
	c->timeout_data = 600;
	c->shutdown_grace = 30;
	c->auth_queue = 256;
	conf_list_set(&c->mechanisms, &c->nmechanisms, CONF_MECHANISMS_DEFAULT, true);
	c->oauth_user_claim = xstrdup("email");
	c->connections = 2000;
	c->connections_per_ip = 20;
	c->connection_rate_per_ip = 60;
	c->commands = 10000;
	c->auth_failures_per_ip = 10;
	c->auth_failures_per_net = 50;
	c->net_prefix_v4 = 24;
	c->net_prefix_v6 = 64;
	c->auth_failures_per_account = 20;
	c->ban_time = 600;
	c->quota_messages_per_day = 1000;
	c->quota_recipients_per_day = 500;
	c->nallow = 2;
	c->allow = xcalloc(2, sizeof(*c->allow));
	if (conf_parse_cidr("127.0.0.0/8", &c->allow[0]) == -1 ||
	    conf_parse_cidr("::1", &c->allow[1]) == -1)
		abort();
}

struct conf *
conf_parse_text(const char *file, char *text, char *err, size_t errlen)
{
	struct conf_parse p;
	struct conf *c = xcalloc(1, sizeof(*c));
	char *line = text, *nl;

	memset(&p, 0, sizeof(p));
	p.c = c;
	p.file = file;
	p.err = err;
	p.errlen = errlen;
	c->path = xstrdup(file);
	c->dir = fs_dirname(file);
	conf_defaults(c);
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
conf_load(const char *path, char *err, size_t errlen)
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
	c = conf_parse_text(path, text, err, errlen);
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
	free(c->backend);
	free(c->oauth_jwks);
	free(c->oauth_issuer);
	free(c->oauth_audience);
	free(c->oauth_user_claim);
	free(c->oauth_introspection);
	free(c->allow);
	free(c->admin_address);
	free(c->admin_token_file);
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
