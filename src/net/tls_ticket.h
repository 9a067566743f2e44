/*
 * tls_ticket: the session ticket keys of a cluster ([cluster]), so that a
 * TLS session made on one node resumes on another (RFC 5077, RFC 8446
 * 4.6.1). One process-wide key ring: the first key encrypts new tickets,
 * every key decrypts (a ticket under an older key is accepted and renewed).
 * cluster/ fills it from Redis; until then, and while Redis is down, it
 * holds the keys it had, or a random one of this process.
 *
 * Without [cluster] nothing is installed: OpenSSL's own keys (per process)
 * stay. The keys are secrets: wiped when dropped, never logged.
 *
 * Thread safety: every function from any thread (one mutex).
 */
#ifndef SG_NET_TLS_TICKET_H
#define SG_NET_TLS_TICKET_H

#include <stddef.h>

#include <openssl/ssl.h>

#define TLS_TICKET_NAME_LEN 16
#define TLS_TICKET_AES_LEN 32 /* AES-256-CBC */
#define TLS_TICKET_HMAC_LEN 32 /* HMAC-SHA256 */
#define TLS_TICKET_KEY_LEN (TLS_TICKET_NAME_LEN + TLS_TICKET_AES_LEN + TLS_TICKET_HMAC_LEN)
#define TLS_TICKET_KEYS 3 /* the current one and two before it */

struct tls_ticket_key {
	unsigned char name[TLS_TICKET_NAME_LEN];
	unsigned char aes[TLS_TICKET_AES_LEN];
	unsigned char hmac[TLS_TICKET_HMAC_LEN];
};

/* Makes ctx use the ring (and the ring a random key if it has none). -1
 * when OpenSSL refuses. */
int tls_ticket_install(SSL_CTX *ctx) __attribute__((warn_unused_result));
/* Replaces the ring with keys[0..n) (n <= TLS_TICKET_KEYS, keys[0] the
 * current one); the old keys are wiped. n 0: nothing changes. */
void tls_ticket_set(const struct tls_ticket_key *keys, size_t n);
/* A key of TLS_TICKET_KEY_LEN raw bytes (name, AES key, HMAC key) into k.
 * -1 when len is not that. */
int tls_ticket_key_from(const unsigned char *raw, size_t len, struct tls_ticket_key *k)
    __attribute__((warn_unused_result));
/* The name of the current key (tests, logs: names are not secret). */
void tls_ticket_current_name(unsigned char name[TLS_TICKET_NAME_LEN]);

#endif
