/*
 * tls: server-side SSL_CTX set-up. One SSL_CTX per configured certificate
 * (same settings on each); the first is the default and the servername
 * callback switches to the first whose leaf certificate matches the SNI
 * name (X509_check_host, wildcards per RFC 6125).
 */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "lib/vault.h"
#include "lib/xalloc.h"
#include "net/tls_ticket.h"

#define TLS_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
#define TLS_DEFAULT_GROUPS "X25519:P-256:P-384"

struct tls_server {
	int refs;
	size_t n;
	SSL_CTX **ctx;
	X509 **leaf; /* borrowed from ctx */
};

static void
tls_err(char *err, size_t errlen, const char *file, int line, const char *what)
{
	char ossl[256] = "";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	ERR_clear_error();
	snprintf(err, errlen, "%s:%d: %s%s%s", file, line, what, ossl[0] ? ": " : "", ossl);
}

/* An encrypted key is an error, never a prompt on the terminal. */
static int
tls_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static void
tls_cert_problem(const struct conf *c, const struct conf_cert *cc, enum conf_cert_problem pr,
    int errnum, char *err, size_t errlen)
{
	char what[2400];

	ERR_clear_error();
	conf_cert_describe(c, cc, pr, errnum, what, sizeof(what));
	snprintf(err, errlen, "%s; fix: %s", what, conf_cert_fix(pr));
}

/* OpenSSL's reasons ("system lib", "no start line") say little: the file
 * either cannot be opened (errno says why) or holds nothing usable. */
static void
tls_cert_err(
    const struct conf *c, const struct conf_cert *cc, bool is_key, char *err, size_t errlen)
{
	int fd = vault_open(is_key ? cc->key : cc->cert, O_RDONLY | O_CLOEXEC);
	FILE *fp = fd != -1 ? fdopen(fd, "r") : NULL;
	EVP_PKEY *key = NULL;

	if (fp == NULL) {
		if (fd != -1)
			close(fd);
		tls_cert_problem(c, cc,
		    is_key ? CONF_CERT_KEY_UNREADABLE : CONF_CERT_CERT_UNREADABLE, errno, err,
		    errlen);
		return;
	}
	/* SSL_CTX_use_PrivateKey_file also fails on a key that does not match */
	if (is_key)
		key = PEM_read_PrivateKey(fp, NULL, tls_no_passphrase_cb, NULL);
	fclose(fp);
	if (key != NULL)
		tls_cert_problem(c, cc, CONF_CERT_KEY_MISMATCH, 0, err, errlen);
	else
		tls_cert_problem(
		    c, cc, is_key ? CONF_CERT_KEY_NO_PEM : CONF_CERT_CERT_NO_PEM, 0, err, errlen);
	EVP_PKEY_free(key);
}

/* SSL_CTX_use_certificate_chain_file, through the vault (lib/vault.h): the
 * leaf, then every certificate after it as the chain. 1 / 0. */
static int
tls_use_chain(SSL_CTX *ctx, const char *path)
{
	int fd = (ERR_clear_error(), vault_open(path, O_RDONLY | O_CLOEXEC));
	BIO *b = fd != -1 ? BIO_new_fd(fd, BIO_CLOSE) : NULL;
	X509 *x = b != NULL ? PEM_read_bio_X509_AUX(b, NULL, tls_no_passphrase_cb, NULL) : NULL;
	int ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1 &&
	    SSL_CTX_clear_chain_certs(ctx) == 1;

	X509_free(x);
	while (ok) {
		X509 *ca = PEM_read_bio_X509(b, NULL, tls_no_passphrase_cb, NULL);

		if (ca == NULL)
			break;
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			ok = 0;
		}
	}
	if (ok) {
		/* the end of the file is the only error allowed after the leaf */
		unsigned long e = ERR_peek_last_error();

		if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
			ERR_clear_error();
		else if (e != 0)
			ok = 0;
	}
	if (b != NULL)
		BIO_free(b);
	else if (fd != -1)
		close(fd);
	return ok;
}

/* SSL_CTX_use_PrivateKey_file (PEM), through the vault. 1 / 0. */
static int
tls_use_key(SSL_CTX *ctx, const char *path)
{
	int fd = vault_open(path, O_RDONLY | O_CLOEXEC);
	BIO *b = fd != -1 ? BIO_new_fd(fd, BIO_CLOSE) : NULL;
	EVP_PKEY *k =
	    b != NULL ? PEM_read_bio_PrivateKey(b, NULL, tls_no_passphrase_cb, NULL) : NULL;
	int ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1;

	EVP_PKEY_free(k);
	if (b != NULL)
		BIO_free(b);
	else if (fd != -1)
		close(fd);
	return ok;
}

static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL || t->n < 2)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < t->n; i++) {
		if (X509_check_host(t->leaf[i], name, 0, 0, NULL) == 1) {
			if (i > 0)
				SSL_set_SSL_CTX(ssl, t->ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	/* no match: keep the default certificate; the client decides */
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
tls_ctx_new(const struct conf *c, struct tls_server *t, const struct conf_cert *cc, char *err,
    size_t errlen)
{
	static const unsigned char sid_ctx[] = "smtpgate";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_err(err, errlen, c->path, cc->line, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, c->tls_min_version);
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	        SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* one ticket is enough for SMTP clients and halves the post-handshake work */
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, c->tls_ciphers ? c->tls_ciphers : TLS_DEFAULT_CIPHERS) !=
	    1) {
		tls_err(err, errlen, c->path, cc->line, "[tls] ciphers: no usable cipher");
		goto fail;
	}
	if (SSL_CTX_set1_groups_list(ctx, TLS_DEFAULT_GROUPS) != 1) {
		tls_err(err, errlen, c->path, cc->line, "cannot set key exchange groups");
		goto fail;
	}
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase_cb);
	if (tls_use_chain(ctx, cc->cert) != 1) {
		tls_cert_err(c, cc, false, err, errlen);
		goto fail;
	}
	if (tls_use_key(ctx, cc->key) != 1) {
		tls_cert_err(c, cc, true, err, errlen);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_cert_problem(c, cc, CONF_CERT_KEY_MISMATCH, 0, err, errlen);
		goto fail;
	}
	/* a cluster's nodes share their ticket keys: a session resumes on any */
	if (c->cluster && tls_ticket_install(ctx) == -1) {
		tls_err(err, errlen, c->path, cc->line, "cannot set the session ticket keys");
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_server *
tls_server_new(const struct conf *c, char *err, size_t errlen)
{
	struct tls_server *t;

	if (c->ncerts == 0) {
		snprintf(err, errlen, "%s: [tls] has no cert and key", c->path);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->refs = 1;
	t->ctx = xcalloc(c->ncerts, sizeof(*t->ctx));
	t->leaf = xcalloc(c->ncerts, sizeof(*t->leaf));
	for (size_t i = 0; i < c->ncerts; i++) {
		t->ctx[i] = tls_ctx_new(c, t, &c->certs[i], err, errlen);
		if (t->ctx[i] == NULL)
			goto fail;
		t->n++;
		t->leaf[i] = SSL_CTX_get0_certificate(t->ctx[i]);
	}
	return t;
fail:
	tls_server_unref(t);
	return NULL;
}

void
tls_server_ref(struct tls_server *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void
tls_server_unref(struct tls_server *t)
{
	if (t == NULL || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		SSL_CTX_free(t->ctx[i]);
	free(t->ctx);
	free(t->leaf);
	free(t);
}

SSL *
tls_server_ssl_new(struct tls_server *t)
{
	return SSL_new(t->ctx[0]);
}

const char *
tls_version_name(const SSL *ssl)
{
	return SSL_get_version(ssl);
}

const char *
tls_cipher_name(const SSL *ssl)
{
	return SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
}
