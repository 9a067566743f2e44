/*
 * tls: server TLS contexts built from [tls] (DESIGN 5.2, 4): TLS 1.2 floor
 * (1.3 selectable), the full chain served, several certificates chosen by
 * SNI, AEAD-only TLS 1.2 ciphers, SSL_OP_IGNORE_UNEXPECTED_EOF, and
 * SSL_MODE_RELEASE_BUFFERS so idle sessions hold no record buffers.
 *
 * A tls_server is immutable and reference counted: SIGHUP builds a new one
 * and sessions keep the one they started with until they end.
 */
#ifndef SG_NET_TLS_H
#define SG_NET_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct conf;
struct tls_server;

/* Loads every cert/key pair of c (checking that each key matches its
 * certificate). NULL with "file:line: message" in err on failure. */
struct tls_server *tls_server_new(const struct conf *c, char *err, size_t errlen);
void tls_server_ref(struct tls_server *t);
void tls_server_unref(struct tls_server *t);
/* A new SSL in server mode; SNI picks the certificate during the handshake. */
SSL *tls_server_ssl_new(struct tls_server *t);

/* "TLSv1.3", "TLS_AES_256_GCM_SHA384" of an established connection. */
const char *tls_version_name(const SSL *ssl);
const char *tls_cipher_name(const SSL *ssl);

#endif
