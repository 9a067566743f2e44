/*
 * conf_dkim: the [dkim DOMAIN] sections (one per signing domain):
 *
 *   selector = NAME                    (required)
 *   key = FILE                         (required; PEM, RSA >= 1024 bits or
 *                                       Ed25519; mode 0600 or stricter)
 *   headers = NAME NAME ...            (what h= may list; From always)
 *
 * conf.c finds the section and the rows of conf_dkim_keys, and calls
 * conf_dkim_validate() at the end, whose messages come back without
 * file:line, which conf.c adds. The private key is read here, once per load
 * (start and SIGHUP), into an OpenSSL EVP_PKEY that conf_dkim_free frees (OpenSSL
 * wipes key material when it frees it); the PEM text is read by OpenSSL's
 * own BIO, so no copy of it is left in our buffers, and it is never logged.
 */
#include "conf/conf_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/vault.h"
#include "lib/xalloc.h"

/* RFC 6376 5.4.1's list, less the ones that change in transit or mean little */
#define CONF_DKIM_HEADERS_DEFAULT                                                                  \
	"from to cc subject date message-id reply-to in-reply-to references mime-version "         \
	"content-type content-transfer-encoding"

void
conf_dkim_free(struct conf_dkim *d)
{
	if (d == NULL)
		return;
	free(d->domain);
	free(d->selector);
	free(d->key_path);
	for (size_t i = 0; i < d->nheaders; i++)
		free(d->headers[i]);
	free(d->headers);
	EVP_PKEY_free(d->key);
	free(d);
}

/* RFC 5322 2.2: a field name is printable US-ASCII except ':' */
static bool
conf_dkim_is_field_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < 33 || *s > 126 || *s == ':')
			return false;
	}
	return true;
}

/* From first and once, then the names of v, lower-cased, each once. */
static int
conf_dkim_set_headers(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	struct conf_dkim *d = obj;
	char *copy = xstrdup(v), *save = NULL, *t;
	int rc = -1;

	for (size_t i = 0; i < d->nheaders; i++)
		free(d->headers[i]);
	free(d->headers);
	d->headers = NULL;
	d->nheaders = 0;
	/* From first: RFC 6376 5.4 requires it in every signature */
	d->headers = xcalloc(1, sizeof(*d->headers));
	d->headers[d->nheaders++] = xstrdup("from");
	for (t = strtok_r(copy, " \t,:", &save); t != NULL; t = strtok_r(NULL, " \t,:", &save)) {
		bool dup = false;

		if (!conf_dkim_is_field_name(t)) {
			conf_error(p, "headers: \"%s\" is not a header field name", t);
			goto fail;
		}
		if (strcasecmp(t, "dkim-signature") == 0) {
			conf_error(p, "headers: DKIM-Signature cannot be signed");
			goto fail;
		}
		for (char *s = t; *s != '\0'; s++)
			*s = (char)tolower((unsigned char)*s);
		for (size_t i = 0; i < d->nheaders; i++)
			dup = dup || strcmp(d->headers[i], t) == 0;
		if (dup)
			continue;
		d->headers = xrealloc(d->headers, (d->nheaders + 1) * sizeof(*d->headers));
		d->headers[d->nheaders++] = xstrdup(t);
	}
	rc = 0;
fail:
	free(copy);
	return rc;
}

/* RFC 6376 3.1: selector = sub-domain *( "." sub-domain ) */
static int
conf_dkim_set_selector(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v)
{
	for (const char *s = v; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_') {
			conf_error(p, "selector: \"%s\" is not a DNS label", v);
			return -1;
		}
	}
	return conf_table_set_string(p, k, obj, v);
}

#define CONF_D(f) offsetof(struct conf_dkim, f)

/* A SIGHUP loads (so checks) the keys again, but delivery keeps signing
 * with the configuration it started with. */
const struct conf_key conf_dkim_keys[] = {
    {CONF_KEY("selector", CONF_T_STRING, NULL, CONF_RESTART), .off = CONF_D(selector),
        .set = conf_dkim_set_selector},
    /* its line: the key's errors name it */
    {CONF_KEY("key", CONF_T_PATH, NULL, CONF_RESTART), .off = CONF_D(key_path),
        .flags = CONF_KEY_LINE, .line_off = CONF_D(key_line)},
    {CONF_KEY("headers", CONF_T_LIST, CONF_DKIM_HEADERS_DEFAULT, CONF_RESTART),
        .off = CONF_D(headers), .off2 = CONF_D(nheaders), .set = conf_dkim_set_headers},
    {.name = NULL},
};

/* [dkim DOMAIN], once per domain */
int
conf_dkim_open(struct conf_parse *p, const char *name, const char *arg)
{
	struct conf *c = p->c;
	struct conf_dkim *d;

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
	d = xcalloc(1, sizeof(*d));
	d->domain = xstrdup(arg);
	for (char *s = d->domain; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
	d->line = p->line;
	conf_table_defaults(p, conf_dkim_keys, d);
	c->dkims = xrealloc(c->dkims, (c->ndkims + 1) * sizeof(*c->dkims));
	c->dkims[c->ndkims++] = d;
	p->obj = d;
	p->sec_arg = d->domain;
	return 0;
}

/* Reads the PEM private key: a regular file of mode 0600 or stricter (as
 * [relay] credentials), RSA of at least CONF_DKIM_RSA_MIN bits or Ed25519. */
static int
conf_dkim_load(struct conf_dkim *d, char *msg, size_t msglen)
{
	const char *path = d->key_path;
	struct stat st;
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	int fd = -1, rc = -1;

	fd = vault_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(msg, msglen, "key: %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0177) != 0) {
		snprintf(msg, msglen,
		    "key: %s must be a regular file of mode 0600 or stricter (it is %04o): chmod "
		    "600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto fail;
	}
	if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL)
		abort();
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (pk == NULL) {
		snprintf(msg, msglen,
		    "key: %s: not a PEM private key (unencrypted PKCS#8 or PKCS#1)", path);
		goto fail;
	}
	if (EVP_PKEY_is_a(pk, "RSA")) {
		d->alg = CONF_DKIM_RSA_SHA256;
		d->key_bits = EVP_PKEY_get_bits(pk);
		if (d->key_bits < CONF_DKIM_RSA_MIN) {
			snprintf(msg, msglen,
			    "key: %s: RSA key of %d bits; RFC 8301 3.2 requires at least %d", path,
			    d->key_bits, CONF_DKIM_RSA_MIN);
			goto fail;
		}
	} else if (EVP_PKEY_is_a(pk, "ED25519")) {
		d->alg = CONF_DKIM_ED25519_SHA256;
		d->key_bits = EVP_PKEY_get_bits(pk);
	} else {
		snprintf(msg, msglen, "key: %s: a %s key; DKIM signs with RSA or Ed25519", path,
		    EVP_PKEY_get0_type_name(pk) != NULL ? EVP_PKEY_get0_type_name(pk) : "unknown");
		goto fail;
	}
	d->key = pk;
	pk = NULL;
	rc = 0;
fail:
	EVP_PKEY_free(pk);
	BIO_free(bio);
	if (fd != -1)
		close(fd);
	return rc;
}

int
conf_dkim_validate(struct conf_dkim *d, bool load_key, int *line_r, char *msg, size_t msglen)
{
	*line_r = d->line;
	if (d->selector == NULL) {
		snprintf(
		    msg, msglen, "needs selector (the DNS name SELECTOR._domainkey.%s)", d->domain);
		return -1;
	}
	if (d->key_path == NULL) {
		snprintf(msg, msglen, "needs key (a PEM private key file)");
		return -1;
	}
	*line_r = d->key_line;
	return load_key ? conf_dkim_load(d, msg, msglen) : 0;
}

const struct conf_dkim *
conf_dkim_for(const struct conf *c, const char *domain, size_t len)
{
	for (size_t i = 0; i < c->ndkims; i++) {
		if (strlen(c->dkims[i]->domain) == len &&
		    strncasecmp(c->dkims[i]->domain, domain, len) == 0)
			return c->dkims[i];
	}
	return NULL;
}
