/*
 * tls_ticket: see tls_ticket.h. The callback copies the key it needs under
 * the mutex and wipes the copy after use, so a key replaced meanwhile is
 * never read half-written.
 */
#include "net/tls_ticket.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static pthread_mutex_t tls_ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_ticket_key tls_ticket_ring[TLS_TICKET_KEYS];
static size_t tls_ticket_n;

void
tls_ticket_set(const struct tls_ticket_key *keys, size_t n)
{
	if (n == 0)
		return;
	if (n > TLS_TICKET_KEYS)
		n = TLS_TICKET_KEYS;
	pthread_mutex_lock(&tls_ticket_lock);
	OPENSSL_cleanse(tls_ticket_ring, sizeof(tls_ticket_ring));
	memcpy(tls_ticket_ring, keys, n * sizeof(*keys));
	tls_ticket_n = n;
	pthread_mutex_unlock(&tls_ticket_lock);
}

int
tls_ticket_key_from(const unsigned char *raw, size_t len, struct tls_ticket_key *k)
{
	if (len != TLS_TICKET_KEY_LEN)
		return -1;
	memcpy(k->name, raw, TLS_TICKET_NAME_LEN);
	memcpy(k->aes, raw + TLS_TICKET_NAME_LEN, TLS_TICKET_AES_LEN);
	memcpy(k->hmac, raw + TLS_TICKET_NAME_LEN + TLS_TICKET_AES_LEN, TLS_TICKET_HMAC_LEN);
	return 0;
}

void
tls_ticket_current_name(unsigned char name[TLS_TICKET_NAME_LEN])
{
	pthread_mutex_lock(&tls_ticket_lock);
	memcpy(name, tls_ticket_ring[0].name, TLS_TICKET_NAME_LEN);
	pthread_mutex_unlock(&tls_ticket_lock);
}

/* The key to encrypt with (enc) or the one named name; its index, -1 none. */
static int
tls_ticket_find(bool enc, const unsigned char *name, struct tls_ticket_key *k)
{
	int at = -1;

	pthread_mutex_lock(&tls_ticket_lock);
	for (size_t i = 0; i < tls_ticket_n && at == -1; i++) {
		if (enc || memcmp(tls_ticket_ring[i].name, name, TLS_TICKET_NAME_LEN) == 0)
			at = (int)i;
	}
	if (at != -1)
		*k = tls_ticket_ring[at];
	pthread_mutex_unlock(&tls_ticket_lock);
	return at;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: 1 done, 2 (decrypt) done and
 * renew the ticket, 0 no key (a full handshake), -1 error. */
static int
tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ticket_key k;
	OSSL_PARAM params[3];
	int at, rc = -1;

	(void)ssl;
	at = tls_ticket_find(enc != 0, name, &k);
	if (at == -1)
		return 0;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(name, k.name, TLS_TICKET_NAME_LEN);
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
		    EVP_MAC_CTX_set_params(hctx, params) != 1)
			goto out;
		rc = 1;
	} else {
		if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
		    EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
			goto out;
		rc = at == 0 ? 1 : 2;
	}
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int
tls_ticket_install(SSL_CTX *ctx)
{
	pthread_mutex_lock(&tls_ticket_lock);
	if (tls_ticket_n == 0) {
		if (RAND_bytes((unsigned char *)&tls_ticket_ring[0], sizeof(tls_ticket_ring[0])) !=
		    1) {
			pthread_mutex_unlock(&tls_ticket_lock);
			return -1;
		}
		tls_ticket_n = 1;
	}
	pthread_mutex_unlock(&tls_ticket_lock);
	return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb) == 1 ? 0 : -1;
}
