/*
 * conf_admin: the [admin] section (the operator's HTTP listener) and its
 * token_file, read once per load (start and SIGHUP). The token is kept in
 * struct conf until conf_free wipes it; it never appears in a message.
 */
#include "conf/conf_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define CONF_A(f) offsetof(struct conf, f)

static const struct conf_word conf_admin_auths[] = {
    {.word = "changes", .value = CONF_ADMIN_AUTH_CHANGES},
    {.word = "all", .value = CONF_ADMIN_AUTH_ALL}, {.word = NULL}};

/* SIGHUP applies token_file (and new contents) and auth; a new address
 * (or adding or removing the section) needs a restart. */
const struct conf_key conf_admin_keys[] = {
    {CONF_KEY("address", CONF_T_ADDRESS, "127.0.0.1:8025", CONF_RESTART),
        .off = CONF_A(admin_address), .off2 = CONF_A(admin_addr), .off3 = CONF_A(admin_addrlen)},
    {CONF_KEY("token_file", CONF_T_PATH, NULL, CONF_RELOAD), .off = CONF_A(admin_token_file),
        .flags = CONF_KEY_LINE, .line_off = CONF_A(admin_token_line)},
    /* its line: "auth needs token_file" names it */
    {CONF_KEY("auth", CONF_T_ENUM, "changes", CONF_RELOAD), .off = CONF_A(admin_auth),
        .flags = CONF_KEY_LINE, .words = conf_admin_auths, .line_off = CONF_A(admin_auth_line)},
    {.name = NULL},
};

int
conf_admin_open(struct conf_parse *p, const char *name, const char *arg)
{
	p->c->admin = true;
	p->c->admin_line = p->line;
	return 0;
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
 * "/" ) *"=": what an Authorization: Bearer header can carry as is. */
static bool
conf_admin_is_b64token(const char *p, size_t len)
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
	if (!conf_admin_is_b64token(b, (size_t)(e - b))) {
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

/* Reads [admin] token_file once (conf_secret_read). */
int
conf_admin_token_load(struct conf_parse *p)
{
	struct conf *c = p->c;
	const char *path = c->admin_token_file, *e;
	char text[CONF_ADMIN_TOKEN_FILE_MAX + 1];
	size_t len = 0;
	int rc = -1;

	p->line = c->admin_token_line;
	if (conf_secret_read(p, "[admin] token_file", path, text, sizeof(text), &len) == -1)
		return -1;
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
	return rc;
}
