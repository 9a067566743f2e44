/*
 * client_priv: what the client's own files share and nothing else sees: the
 * layout of struct client, the I/O helpers of client_io.c and the GNU SASL
 * driver of client_sasl.c.
 */
#ifndef SG_CLIENT_CLIENT_PRIV_H
#define SG_CLIENT_CLIENT_PRIV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "client/client.h"
#include "smtp/smtp_reply_parse.h"

struct client {
	struct client_conf conf; /* strings owned (copies) */
	int timeout_ms;
	int fd; /* -1 when closed */
	SSL_CTX *ctx; /* own or shared (ref held) */
	SSL *ssl; /* NULL before TLS */
	struct buf rbuf; /* raw bytes read, not yet parsed (CLIENT_READ_BUF_MAX) */
	struct smtp_reply_parser parser;
	struct client_error err;
	struct client_reply reply;
	struct client_caps caps;
	struct client_tls_info tls;
	char peer[80];
	unsigned char cb[64]; /* channel binding data of this TLS session */
	size_t cblen;
	bool cb_exporter;
	bool greeted;
};

long long client_now_ms(void);
void client_set_error(struct client *c, enum client_err kind, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void client_close(struct client *c);
/* Reads into c->rbuf before the deadline: >0 bytes, 0 EOF, -1 error (set). */
ssize_t client_read_some(struct client *c, long long deadline, const char *what);
int client_write_all(struct client *c, const char *p, size_t n, const char *what);
int client_tls_handshake(struct client *c);

struct client_gsasl;

/*
 * Starts the client side of mech (SCRAM-*, CRAM-MD5) in GNU SASL. cb/cblen
 * is the channel binding data for -PLUS (exporter: TLS 1.3, else unique),
 * NULL for the others (then "n": no binding claimed, RFC 5802 6). NULL on
 * failure with a static reason in *errstr_r.
 */
struct client_gsasl *client_gsasl_start(const char *mech, const char *user, const char *pass,
    size_t passlen, const unsigned char *cb, size_t cblen, int cb_exporter, const char **errstr_r);
/* One step: in_b64 is the server's challenge (base64, "" for none). *out_b64
 * gets a malloc'd response (caller wipes and frees). 1: more steps expected,
 * 0: the mechanism is complete (server proof checked), -1: failure. */
int client_gsasl_step(
    struct client_gsasl *g, const char *in_b64, char **out_b64, const char **errstr_r);
void client_gsasl_free(struct client_gsasl *g);

#endif
