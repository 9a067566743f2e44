/*
 * conf_cluster: the [cluster] section (state shared by the nodes of a
 * cluster in Redis): the redis URL, its parser, and redis_password_file,
 * read once per load like [admin] token_file (conf_secret.c; the parent reads it; the smtp
 * process gets the copy the parent checked, lib/vault.h). The password is
 * kept in struct conf until conf_free wipes it; it never appears in a
 * message.
 */
#include "conf/conf_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xalloc.h"

#define CONF_C(f) offsetof(struct conf, f)
#define CONF_CLUSTER_PASSWORD_MAX 512

static int conf_cluster_set_redis(
    struct conf_parse *p, const struct conf_key *k, void *obj, const char *v);
static int conf_cluster_set_prefix(
    struct conf_parse *p, const struct conf_key *k, void *obj, const char *v);

/* Every key needs a restart: the connection and the names of the shared
 * keys are made once. */
const struct conf_key conf_cluster_keys[] = {
    {CONF_KEY("redis", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_C(cluster_redis),
        .set = conf_cluster_set_redis},
    {CONF_KEY("redis_password_file", CONF_T_PATH, NULL, CONF_RESTART),
        .off = CONF_C(cluster_password_file), .flags = CONF_KEY_LINE,
        .line_off = CONF_C(cluster_password_line)},
    {CONF_KEY("key_prefix", CONF_T_STRING, "smtpgate:", CONF_RESTART),
        .off = CONF_C(cluster_prefix), .set = conf_cluster_set_prefix},
    {CONF_KEY("node", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_C(cluster_node)},
    {.name = NULL},
};

int
conf_cluster_open(struct conf_parse *p, const char *name, const char *arg)
{
	(void)name;
	(void)arg;
	p->c->cluster_line = p->line;
	return 0;
}

static int
conf_redis_url_port(const char *s, size_t len, unsigned *port_r)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port_r = (unsigned)v;
	return 0;
}

static int
conf_redis_url_tcp(const char *s, struct conf_redis_url *u, const char **errstr_r)
{
	const char *slash = strchr(s, '/'), *end = slash != NULL ? slash : s + strlen(s);
	const char *colon, *hb = s, *he;

	if (*s == '[') {
		he = memchr(s, ']', (size_t)(end - s));
		if (he == NULL) {
			*errstr_r = "an IPv6 address needs its closing ]";
			return -1;
		}
		hb = s + 1;
		colon = he + 1 < end ? he + 1 : NULL;
		if (colon != NULL && *colon != ':') {
			*errstr_r = "expected :PORT after the ]";
			return -1;
		}
	} else {
		colon = memchr(s, ':', (size_t)(end - s));
		he = colon != NULL ? colon : end;
	}
	if (he == hb || (size_t)(he - hb) > CONF_REDIS_HOST_MAX) {
		*errstr_r = "expected a host name or address after redis://";
		return -1;
	}
	for (const char *q = hb; q < he; q++) {
		if (!isalnum((unsigned char)*q) && strchr("-._:", *q) == NULL) {
			*errstr_r = "the host holds a character that no host name or address has";
			return -1;
		}
	}
	memcpy(u->host, hb, (size_t)(he - hb));
	u->host[he - hb] = '\0';
	u->port = 6379;
	if (colon != NULL && conf_redis_url_port(colon + 1, (size_t)(end - colon - 1), &u->port)) {
		*errstr_r = "the port must be a number from 1 to 65535";
		return -1;
	}
	if (slash != NULL) {
		unsigned long db = 0;
		size_t n = strlen(slash + 1);

		if (n == 0 || n > 5) {
			*errstr_r = "expected a database number after the /";
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)slash[1 + i])) {
				*errstr_r = "expected a database number after the /";
				return -1;
			}
			db = db * 10 + (unsigned long)(slash[1 + i] - '0');
		}
		if (db > 65535) {
			*errstr_r = "the database number is too large";
			return -1;
		}
		u->db = (unsigned)db;
	}
	return 0;
}

int
conf_redis_url_parse(const char *s, struct conf_redis_url *u, const char **errstr_r)
{
	memset(u, 0, sizeof(*u));
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;

		if (path[0] != '/') {
			*errstr_r = "unix:PATH needs an absolute path";
			return -1;
		}
		if (strlen(path) >= sizeof(u->path)) {
			*errstr_r = "the socket path is longer than a unix socket allows";
			return -1;
		}
		strcpy(u->path, path);
		return 0;
	}
	if (strncmp(s, "redis://", 8) != 0) {
		*errstr_r = "expected redis://HOST:PORT[/DB] or unix:PATH";
		return -1;
	}
	if (strchr(s + 8, '@') != NULL) {
		*errstr_r = "no password in the URL (it would show in logs and ps): use "
		            "redis_password_file";
		return -1;
	}
	return conf_redis_url_tcp(s + 8, u, errstr_r);
}

static int
conf_cluster_set_redis(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	const char *e;

	if (conf_redis_url_parse(v, &p->c->cluster_url, &e) == -1) {
		conf_error(p, "[cluster] redis: %s: %s", v, e);
		return -1;
	}
	p->c->cluster = true;
	return conf_table_set_string(p, k, obj, v);
}

/* The prefix names keys and the channel: printable, no space. */
static int
conf_cluster_set_prefix(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64) {
		conf_error(p, "[cluster] key_prefix: 1 to 64 characters");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isgraph((unsigned char)v[i])) {
			conf_error(p, "[cluster] key_prefix: no spaces or control characters");
			return -1;
		}
	}
	return conf_table_set_string(p, k, obj, v);
}

/* Reads redis_password_file (conf_secret_read): its first line, the
 * trailing newline and CR stripped. */
static int
conf_cluster_password_load(struct conf_parse *p)
{
	struct conf *c = p->c;
	const char *path = c->cluster_password_file;
	char text[CONF_CLUSTER_PASSWORD_MAX + 2];
	size_t len = 0;
	int rc = -1;

	p->line = c->cluster_password_line;
	if (conf_secret_read(p, "[cluster] redis_password_file", path, text, sizeof(text), &len) ==
	    -1)
		return -1;
	if (memchr(text, '\n', len) != NULL)
		len = (size_t)((char *)memchr(text, '\n', len) - text);
	if (len > 0 && text[len - 1] == '\r')
		len--;
	if (len == 0 || len > CONF_CLUSTER_PASSWORD_MAX || memchr(text, '\0', len) != NULL) {
		conf_error(p,
		    "[cluster] redis_password_file: %s: expected the password on the first line "
		    "(1 to %d bytes of text)",
		    path, CONF_CLUSTER_PASSWORD_MAX);
		goto fail;
	}
	c->cluster_password = xstrndup(text, len);
	rc = 0;
fail:
	explicit_bzero(text, sizeof(text));
	return rc;
}

int
conf_cluster_validate(struct conf_parse *p)
{
	struct conf *c = p->c;
	char host[256];

	if (c->cluster_line == 0)
		return 0;
	if (!c->cluster) {
		p->line = c->cluster_line;
		conf_error(p, "[cluster] needs redis = redis://HOST:PORT[/DB] or unix:PATH");
		return -1;
	}
	if (c->cluster_node == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			snprintf(
			    host, sizeof(host), "%s", c->hostname != NULL ? c->hostname : "node");
		host[sizeof(host) - 1] = '\0';
		c->cluster_node = xstrdup(host);
	}
	if (c->cluster_password_file != NULL && conf_cluster_password_load(p) == -1)
		return -1;
	return 0;
}

void
conf_cluster_free(struct conf *c)
{
	free(c->cluster_redis);
	free(c->cluster_password_file);
	if (c->cluster_password != NULL) {
		explicit_bzero(c->cluster_password, strlen(c->cluster_password));
		free(c->cluster_password);
	}
	free(c->cluster_prefix);
	free(c->cluster_node);
}
