/*
 * conf_table: the key table of smtpgate.conf. One setter per value type,
 * shared by every row of that type; the rows of [server], [listen NAME],
 * [tls], [auth], [domains], [limits] and [oauth] (conf_admin.c, conf_relay.c
 * and conf_dkim.c hold the rows of their sections); and the list of section
 * kinds that conf.c looks headers up in.
 *
 * A row's default is written as in the file and stored by the row's own
 * setter, so a default cannot differ from the same value written out, and
 * doc/smtpgate.conf.5.md is checked against the rows (test_conf_table.c).
 * Setters report errors with conf_error(), which adds file:line.
 */
#include "conf/conf_priv.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

/* TLS1_2_VERSION / TLS1_3_VERSION without pulling OpenSSL into this layer */
#define CONF_TLS1_2 0x0303
#define CONF_TLS1_3 0x0304

#define CONF_FIELD(obj, off, type) ((type *)(void *)((char *)(obj) + (off)))
#define CONF_C(f) offsetof(struct conf, f)
#define CONF_L(f) offsetof(struct conf_listen, f)

/* an ENUM row stores through an int */
_Static_assert(sizeof(enum conf_tls_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_auth_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_relay_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_verify) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_admin_auth) == sizeof(int), "enum size");

/* The value of the word v among words, or -1 (values are never negative). */
static int
conf_table_word(const struct conf_word *words, const char *v)
{
	for (size_t i = 0; words != NULL && words[i].word != NULL; i++) {
		if (strcasecmp(v, words[i].word) == 0)
			return words[i].value;
	}
	return -1;
}

int
conf_table_set_string(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	char **dst = CONF_FIELD(obj, k->off, char *);

	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

int
conf_table_set_path(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	char **dst = CONF_FIELD(obj, k->off, char *);

	free(*dst);
	*dst = fs_path_join(p->c->dir, v);
	return 0;
}

/* BOOL and ENUM: "KEY: expected a, b or c, got ..." names the words that
 * are not aliases. */
static int
conf_table_set_words(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	char list[256] = "";
	size_t n = 0, len = 0;
	int val = conf_table_word(k->words, v);

	if (val != -1) {
		if (k->type == CONF_T_BOOL)
			*CONF_FIELD(obj, k->off, bool) = val != 0;
		else
			*CONF_FIELD(obj, k->off, int) = val;
		return 0;
	}
	for (size_t i = 0; k->words[i].word != NULL; i++)
		n += !k->words[i].alias;
	for (size_t i = 0, j = 0; k->words[i].word != NULL; i++) {
		if (k->words[i].alias)
			continue;
		j++;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
		    j == 1       ? ""
		        : j == n ? " or "
		                 : ", ",
		    k->words[i].word);
		if (len >= sizeof(list))
			abort(); /* the rows' words are short */
	}
	conf_error(p, "%s: expected %s, got \"%s\"", k->name, list, v);
	return -1;
}

/* UINT and INT: a number from lo to hi, or one of the row's words. */
static int
conf_table_set_number(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	int word = conf_table_word(k->words, v);
	unsigned long n;
	char *end;

	if (word != -1) {
		n = (unsigned long)word;
	} else {
		errno = 0;
		n = strtoul(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 || n < k->lo ||
		    n > k->hi) {
			conf_error(p, "%s: expected a number from %llu to %llu, got \"%s\"",
			    k->name, k->lo, k->hi, v);
			return -1;
		}
	}
	if (k->type == CONF_T_INT)
		*CONF_FIELD(obj, k->off, int) = (int)n;
	else
		*CONF_FIELD(obj, k->off, unsigned) = (unsigned)n;
	return 0;
}

static int
conf_table_set_duration(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	unsigned s;

	if (conf_parse_duration(v, &s) == -1 || s < k->lo || s > k->hi) {
		conf_error(p, "%s: expected a duration such as %s, got \"%s\"", k->name,
		    k->eg != NULL ? k->eg : "90s, 10m or 1h", v);
		return -1;
	}
	*CONF_FIELD(obj, k->off, unsigned) = s;
	return 0;
}

static int
conf_table_set_size(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	static const char units[] = "kMG";
	unsigned long long lo = k->lo;
	uint64_t n;
	char least[32];
	int u = -1;

	if (conf_parse_size(v, &n) == 0 && n >= k->lo) {
		*CONF_FIELD(obj, k->off, uint64_t) = n;
		return 0;
	}
	while (u < 2 && lo >= 1024 && lo % 1024 == 0) {
		lo /= 1024;
		u++;
	}
	snprintf(least, sizeof(least), "%llu%.*s", lo, u >= 0 ? 1 : 0, u >= 0 ? units + u : "");
	conf_error(p, "%s: expected a size of at least %s such as %s, got \"%s\"", k->name, least,
	    k->eg != NULL ? k->eg : "25M", v);
	return -1;
}

static int
conf_table_set_address(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	if (conf_parse_address(v, CONF_FIELD(obj, k->off2, struct sockaddr_storage),
	        CONF_FIELD(obj, k->off3, socklen_t)) == -1) {
		conf_error(p, "%s: \"%s\" is not HOST:PORT or [V6]:PORT with a numeric address",
		    k->name, v);
		return -1;
	}
	return conf_table_set_string(p, k, obj, v);
}

void
conf_table_list_set(char ***arr, size_t *n, const char *v, bool upper)
{
	char *copy = xstrdup(v), *tok, *save = NULL;

	for (size_t i = 0; i < *n; i++)
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

int
conf_table_set_list(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	conf_table_list_set(CONF_FIELD(obj, k->off, char **), CONF_FIELD(obj, k->off2, size_t), v,
	    (k->flags & CONF_KEY_UPPER) != 0);
	return 0;
}

/* A list of networks: "allow = 127.0.0.0/8 ::1" ([limits]), "proxy_from =
 * 192.0.2.10 192.0.2.11" ([listen]); an empty value is an empty list. */
static int
conf_table_set_cidrs(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf_cidr **list = CONF_FIELD(obj, k->off, struct conf_cidr *);
	size_t *n = CONF_FIELD(obj, k->off2, size_t);
	char *copy = xstrdup(v), *tok, *save = NULL;

	free(*list);
	*list = NULL;
	*n = 0;
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		*list = xrealloc(*list, (*n + 1) * sizeof(**list));
		if (conf_parse_cidr(tok, &(*list)[*n]) == -1) {
			conf_error(
			    p, "%s: \"%s\" is not an address or ADDRESS/PREFIX", k->name, tok);
			free(copy);
			return -1;
		}
		(*n)++;
	}
	free(copy);
	return 0;
}

/* The shared setter of each type. */
static conf_set_fn *const conf_table_setters[] = {
    [CONF_T_STRING] = conf_table_set_string,
    [CONF_T_PATH] = conf_table_set_path,
    [CONF_T_BOOL] = conf_table_set_words,
    [CONF_T_ENUM] = conf_table_set_words,
    [CONF_T_UINT] = conf_table_set_number,
    [CONF_T_INT] = conf_table_set_number,
    [CONF_T_DURATION] = conf_table_set_duration,
    [CONF_T_SIZE] = conf_table_set_size,
    [CONF_T_ADDRESS] = conf_table_set_address,
    [CONF_T_LIST] = conf_table_set_list,
    [CONF_T_CIDRS] = conf_table_set_cidrs,
};

static int
conf_table_store(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	return (k->set != NULL ? k->set : conf_table_setters[k->type])(p, k, obj, v);
}

/* Custom setters: keys with rules beyond their type. */

static int
conf_table_set_hostname(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	for (const char *q = v; *q; q++) {
		if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-') {
			conf_error(p, "hostname: \"%s\" is not a host name", v);
			return -1;
		}
	}
	return conf_table_set_string(p, k, obj, v);
}

/* "stderr" (exactly) or a file */
static int
conf_table_set_log(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	if (strcmp(v, "stderr") == 0)
		return conf_table_set_string(p, k, obj, v);
	return conf_table_set_path(p, k, obj, v);
}

/* [tls] cert and key repeat: the n-th key pairs with the n-th cert, and a
 * pair's line is that of whichever of the two came first. */
static int
conf_table_set_cert(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf *c = p->c;
	bool is_key = k->off == offsetof(struct conf_cert, key);
	size_t *nth = is_key ? &p->nkeys_key : &p->nkeys_cert;

	if (*nth >= c->ncerts) {
		c->certs = xrealloc(c->certs, (c->ncerts + 1) * sizeof(*c->certs));
		memset(&c->certs[c->ncerts], 0, sizeof(*c->certs));
		c->certs[c->ncerts].line = p->line;
		c->ncerts++;
	}
	if (is_key)
		c->certs[*nth].key_line = p->line;
	else
		c->certs[*nth].cert_line = p->line;
	return conf_table_set_path(p, k, &c->certs[(*nth)++], v);
}

static int
conf_table_set_mechanisms(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	p->mechanisms_line = p->line;
	return conf_table_set_list(p, k, obj, v);
}

/* file:PATH (PATH resolved), dovecot:SOCKET (SOCKET resolved) or
 * pgsql:CONNINFO (as written; it may hold a password, so no message shows
 * more of the value than its prefix) */
static int
conf_table_set_backend(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf *c = obj;
	const char *kind = strncmp(v, "file:", 5) == 0 ? "file:"
	    : strncmp(v, "dovecot:", 8) == 0           ? "dovecot:"
	    : strncmp(v, "pgsql:", 6) == 0             ? "pgsql:"
	                                               : NULL;
	char *path;
	size_t len;

	if (kind == NULL || v[strlen(kind)] == '\0') {
		conf_error(p,
		    "backend: expected file:PATH, dovecot:SOCKET or pgsql:CONNINFO, got \"%.*s...\"",
		    (int)strcspn(v, ":"), v);
		return -1;
	}
	free(c->backend);
	if (strcmp(kind, "pgsql:") == 0) {
		c->backend = xstrdup(v);
		return 0;
	}
	path = fs_path_join(c->dir, v + strlen(kind));
	len = strlen(kind) + strlen(path) + 1;
	c->backend = xmalloc(len);
	snprintf(c->backend, len, "%s%s", kind, path);
	free(path);
	return 0;
}

/* an https:// URL, or a file; never http:// */
static int
conf_table_set_jwks(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	if (strncmp(v, "https://", 8) == 0)
		return conf_table_set_string(p, k, obj, v);
	if (strncmp(v, "http://", 7) == 0) {
		conf_error(p, "jwks: keys must come over https, got \"%s\"", v);
		return -1;
	}
	return conf_table_set_path(p, k, obj, v);
}

static int
conf_table_set_https(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	if (strncmp(v, "https://", 8) != 0) {
		conf_error(p, "%s: expected an https:// URL, got \"%s\"", k->name, v);
		return -1;
	}
	return conf_table_set_string(p, k, obj, v);
}

/* The words of the rows. */
static const struct conf_word conf_table_auto[] = {{.word = "auto", .value = 0}, {.word = NULL}};
static const struct conf_word conf_table_on_off[] = {
    {.word = "on", .value = 1}, {.word = "off", .value = 0}, {.word = NULL}};
static const struct conf_word conf_table_yes_no[] = {{.word = "yes", .value = 1},
    {.word = "no", .value = 0}, {.word = "on", .value = 1, .alias = true},
    {.word = "off", .value = 0, .alias = true}, {.word = NULL}};
const struct conf_word conf_table_tls_modes[] = {{.word = "starttls", .value = CONF_TLS_STARTTLS},
    {.word = "implicit", .value = CONF_TLS_IMPLICIT}, {.word = "none", .value = CONF_TLS_NONE},
    {.word = NULL}};
static const struct conf_word conf_table_auth_modes[] = {
    {.word = "required", .value = CONF_AUTH_REQUIRED},
    {.word = "optional", .value = CONF_AUTH_OPTIONAL}, {.word = "off", .value = CONF_AUTH_OFF},
    {.word = NULL}};
static const struct conf_word conf_table_relay_modes[] = {
    {.word = "authenticated", .value = CONF_RELAY_AUTHENTICATED},
    {.word = "local", .value = CONF_RELAY_LOCAL}, {.word = NULL}};
static const struct conf_word conf_table_tls_versions[] = {
    {.word = "1.2", .value = CONF_TLS1_2}, {.word = "1.3", .value = CONF_TLS1_3}, {.word = NULL}};
static const struct conf_word conf_table_ban_actions[] = {
    {.word = "reply", .value = 0}, {.word = "close", .value = 1}, {.word = NULL}};
static const struct conf_word conf_table_quota_actions[] = {
    {.word = "tempfail", .value = 0}, {.word = "reject", .value = 1}, {.word = NULL}};

/* What [auth] mechanisms offers when not given (conf.c: PLAIN LOGIN with
 * a dovecot backend). */
#define CONF_TABLE_MECHANISMS                                                                      \
	"SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN"
/* as net/tls.c applies it when [tls] ciphers is not given */
#define CONF_TABLE_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

static const struct conf_key conf_table_server[] = {
    {CONF_KEY("hostname", CONF_T_STRING, "localhost", CONF_RELOAD), .off = CONF_C(hostname),
        .set = conf_table_set_hostname},
    {CONF_KEY("spool", CONF_T_PATH, "spool", CONF_RESTART), .off = CONF_C(spool)},
    {CONF_KEY("threads", CONF_T_INT, "auto", CONF_RESTART), .off = CONF_C(threads), .lo = 1,
        .hi = 256, .words = conf_table_auto},
    /* SIGHUP reopens the log file it started with */
    {CONF_KEY("log", CONF_T_PATH, "stderr", CONF_RESTART), .off = CONF_C(log),
        .set = conf_table_set_log},
    /* the unprivileged processes' user, when started as root (server/privdrop.h) */
    {CONF_KEY("user", CONF_T_STRING, "smtpgate", CONF_RESTART), .off = CONF_C(user)},
    {.name = NULL},
};

/* SIGHUP refuses a new address (or a new set of listeners); the other keys
 * apply to new connections. */
static const struct conf_key conf_table_listen[] = {
    {CONF_KEY("address", CONF_T_ADDRESS, NULL, CONF_RESTART), .off = CONF_L(address),
        .off2 = CONF_L(addr), .off3 = CONF_L(addrlen)},
    {CONF_KEY("tls", CONF_T_ENUM, "starttls", CONF_RELOAD), .off = CONF_L(tls),
        .words = conf_table_tls_modes},
    {CONF_KEY("auth", CONF_T_ENUM, "required", CONF_RELOAD), .off = CONF_L(auth),
        .words = conf_table_auth_modes},
    {CONF_KEY("relay", CONF_T_ENUM, "authenticated", CONF_RELOAD), .off = CONF_L(relay),
        .words = conf_table_relay_modes},
    {CONF_KEY("sender_binding", CONF_T_BOOL, "on", CONF_RELOAD), .off = CONF_L(sender_binding),
        .words = conf_table_on_off},
    {CONF_KEY("proxy_protocol", CONF_T_BOOL, "no", CONF_RELOAD), .off = CONF_L(proxy_protocol),
        .words = conf_table_yes_no},
    {CONF_KEY("proxy_from", CONF_T_CIDRS, NULL, CONF_RELOAD), .off = CONF_L(proxy_from),
        .off2 = CONF_L(nproxy_from)},
    {.name = NULL},
};

static const struct conf_key conf_table_tls[] = {
    {CONF_KEY("cert", CONF_T_PATH, NULL, CONF_RELOAD), .off = offsetof(struct conf_cert, cert),
        .set = conf_table_set_cert},
    {CONF_KEY("key", CONF_T_PATH, NULL, CONF_RELOAD), .off = offsetof(struct conf_cert, key),
        .set = conf_table_set_cert},
    {CONF_KEY("min_version", CONF_T_ENUM, "1.2", CONF_RELOAD), .off = CONF_C(tls_min_version),
        .words = conf_table_tls_versions},
    {CONF_KEY("ciphers", CONF_T_STRING, CONF_TABLE_CIPHERS, CONF_RELOAD),
        .off = CONF_C(tls_ciphers), .flags = CONF_KEY_DEF_BY_USER},
    {.name = NULL},
};

static const struct conf_key conf_table_auth[] = {
    {CONF_KEY("mechanisms", CONF_T_LIST, CONF_TABLE_MECHANISMS, CONF_RELOAD),
        .off = CONF_C(mechanisms), .off2 = CONF_C(nmechanisms), .flags = CONF_KEY_UPPER,
        .set = conf_table_set_mechanisms},
    /* SIGHUP re-reads the passwd file the server started with */
    {CONF_KEY("backend", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_C(backend),
        .set = conf_table_set_backend},
    /* 0: authdb picks the number */
    {CONF_KEY("workers", CONF_T_INT, NULL, CONF_RESTART), .off = CONF_C(auth_workers), .lo = 1,
        .hi = 64},
    {CONF_KEY("queue", CONF_T_INT, "256", CONF_RESTART), .off = CONF_C(auth_queue), .lo = 1,
        .hi = 100000},
    {.name = NULL},
};

static const struct conf_key conf_table_domains[] = {
    {CONF_KEY("local", CONF_T_LIST, NULL, CONF_RELOAD), .off = CONF_C(local_domains),
        .off2 = CONF_C(nlocal_domains)},
    {.name = NULL},
};

#define CONF_LIMIT(name, def, min, max)                                                            \
	{                                                                                          \
		CONF_KEY(#name, CONF_T_UINT, def, CONF_RELOAD), .off = CONF_C(name), .lo = min,    \
		                                                .hi = max                          \
	}
#define CONF_LIMIT_DURATION(name, def)                                                             \
	{                                                                                          \
		CONF_KEY(#name, CONF_T_DURATION, def, CONF_RELOAD), .off = CONF_C(name), .lo = 1,  \
		                                                    .hi = UINT_MAX                 \
	}

static const struct conf_key conf_table_limits[] = {
    {CONF_KEY("message_size", CONF_T_SIZE, "25M", CONF_RELOAD), .off = CONF_C(message_size),
        .lo = 1024, .eg = "25M"},
    /* RFC 5321 4.5.3.1.8: at least 100 must be accepted */
    CONF_LIMIT(recipients, "100", 1, 100000),
    CONF_LIMIT(errors, "10", 1, 1000),
    CONF_LIMIT_DURATION(timeout_command, "5m"), /* RFC 5321 4.5.3.2.7: 5 minutes */
    CONF_LIMIT_DURATION(timeout_data, "10m"),
    CONF_LIMIT_DURATION(shutdown_grace, "30s"),
    CONF_LIMIT(connections, "2000", 1, 1000000),
    CONF_LIMIT(connections_per_ip, "20", 1, 1000000),
    CONF_LIMIT(connection_rate_per_ip, "60", 1, 1000000),
    CONF_LIMIT(commands, "10000", 10, 10000000),
    CONF_LIMIT(auth_failures_per_ip, "10", 1, 1000000),
    CONF_LIMIT(auth_failures_per_net, "50", 1, 1000000),
    CONF_LIMIT(net_prefix_v4, "24", 8, 32),
    CONF_LIMIT(net_prefix_v6, "64", 16, 128),
    CONF_LIMIT(auth_failures_per_account, "20", 1, 1000000),
    CONF_LIMIT_DURATION(ban_time, "10m"),
    {CONF_KEY("ban_action", CONF_T_BOOL, "reply", CONF_RELOAD), .off = CONF_C(ban_silent),
        .words = conf_table_ban_actions},
    {CONF_KEY("allow", CONF_T_CIDRS, "127.0.0.0/8 ::1", CONF_RELOAD), .off = CONF_C(allow),
        .off2 = CONF_C(nallow), .flags = CONF_KEY_EMPTY_OK},
    CONF_LIMIT(quota_messages_per_day, "1000", 0, 100000000),
    CONF_LIMIT(quota_recipients_per_day, "500", 0, 100000000),
    {CONF_KEY("quota_action", CONF_T_BOOL, "tempfail", CONF_RELOAD), .off = CONF_C(quota_reject),
        .words = conf_table_quota_actions},
    {.name = NULL},
};

/* SIGHUP re-reads a jwks file (or fetches the URL again) but applies no
 * changed key. */
static const struct conf_key conf_table_oauth[] = {
    {CONF_KEY("jwks", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_C(oauth_jwks),
        .set = conf_table_set_jwks},
    {CONF_KEY("jwks_ca", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_C(oauth_jwks_ca)},
    {CONF_KEY("issuer", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_C(oauth_issuer)},
    {CONF_KEY("audience", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_C(oauth_audience)},
    {CONF_KEY("user_claim", CONF_T_STRING, "email", CONF_RESTART), .off = CONF_C(oauth_user_claim)},
    {CONF_KEY("introspection", CONF_T_STRING, NULL, CONF_RESTART),
        .off = CONF_C(oauth_introspection), .set = conf_table_set_https},
    {CONF_KEY("introspection_ca", CONF_T_PATH, NULL, CONF_RESTART),
        .off = CONF_C(oauth_introspection_ca)},
    {CONF_KEY("introspection_client", CONF_T_STRING, NULL, CONF_RESTART),
        .off = CONF_C(oauth_introspection_client)},
    {CONF_KEY("introspection_secret_file", CONF_T_PATH, NULL, CONF_RESTART),
        .off = CONF_C(oauth_introspection_secret_file)},
    {.name = NULL},
};

/* [listen NAME], once per NAME (compared exactly) */
static int
conf_table_listen_open(struct conf_parse *p, const char *name, const char *arg)
{
	struct conf *c = p->c;
	struct conf_listen *l;

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
	l = &c->listens[c->nlistens++];
	memset(l, 0, sizeof(*l));
	l->name = xstrdup(arg);
	l->line = p->line;
	conf_table_defaults(p, conf_table_listen, l);
	p->obj = l;
	p->sec_arg = l->name;
	return 0;
}

static int
conf_table_oauth_open(struct conf_parse *p, const char *name, const char *arg)
{
	p->c->oauth_line = p->line;
	return 0;
}

const struct conf_section conf_table_sections[] = {
    {.name = "server", .arg = CONF_SEC_ONCE, .keys = conf_table_server},
    {.name = "listen",
        .arg = CONF_SEC_NAMED,
        .keys = conf_table_listen,
        .open = conf_table_listen_open},
    {.name = "tls", .arg = CONF_SEC_ONCE, .keys = conf_table_tls},
    {.name = "auth", .arg = CONF_SEC_ONCE, .keys = conf_table_auth},
    {.name = "domains", .arg = CONF_SEC_ONCE, .keys = conf_table_domains},
    {.name = "limits", .arg = CONF_SEC_ONCE, .keys = conf_table_limits},
    {.name = "oauth",
        .arg = CONF_SEC_ONCE,
        .keys = conf_table_oauth,
        .open = conf_table_oauth_open},
    /* [admin] address has a default only when the section is there */
    {.name = "admin",
        .arg = CONF_SEC_ONCE,
        .keys = conf_admin_keys,
        .open = conf_admin_open,
        .defaults_at_open = true},
    {.name = "cluster", .arg = CONF_SEC_ONCE, .keys = conf_cluster_keys, .open = conf_cluster_open},
    {.name = "relay",
        .arg = CONF_SEC_NAMED,
        .keys = conf_route_keys,
        .open = conf_route_open_relay},
    {.name = "route",
        .arg = CONF_SEC_NAMED,
        .keys = conf_route_keys,
        .open = conf_route_open_domain},
    {.name = "dkim", .arg = CONF_SEC_NAMED, .keys = conf_dkim_keys, .open = conf_dkim_open},
    {.name = "sql", .arg = CONF_SEC_ONCE, .keys = conf_sql_keys, .open = conf_sql_open},
    {.name = NULL},
};

const struct conf_section *
conf_table_section(const char *name)
{
	for (const struct conf_section *s = conf_table_sections; s->name != NULL; s++) {
		if (strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

const struct conf_key *
conf_table_key(const struct conf_section *sec, const char *name)
{
	for (const struct conf_key *k = sec->keys; k->name != NULL; k++) {
		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

int
conf_table_set(struct conf_parse *p, const struct conf_key *k, const char *v)
{
	if (conf_table_store(p, k, p->obj, v) == -1)
		return -1;
	if ((k->flags & CONF_KEY_SEEN) != 0)
		*CONF_FIELD(p->obj, k->seen_off, bool) = true;
	if ((k->flags & CONF_KEY_LINE) != 0)
		*CONF_FIELD(p->obj, k->line_off, int) = p->line;
	return 0;
}

void
conf_table_defaults(struct conf_parse *p, const struct conf_key *keys, void *obj)
{
	int line = p->line;

	p->line = 0;
	for (const struct conf_key *k = keys; k->name != NULL; k++) {
		if (k->def == NULL || (k->flags & CONF_KEY_DEF_BY_USER) != 0)
			continue;
		if (conf_table_store(p, k, obj, k->def) == -1)
			abort(); /* a row's default is not a value of its type */
	}
	p->line = line;
}

void
conf_table_each(
    void (*cb)(const struct conf_section *sec, const struct conf_key *k, void *arg), void *arg)
{
	for (const struct conf_section *s = conf_table_sections; s->name != NULL; s++) {
		for (const struct conf_key *k = s->keys; k->name != NULL; k++)
			cb(s, k, arg);
	}
}
