/*
 * pwscheme: password schemes of the passwd file (DESIGN 5.3), in Dovecot's
 * "{SCHEME}data" notation. Verification and generation only; every hash is
 * computed by a library (OpenSSL PBKDF2/HMAC, libsodium Argon2id, libxcrypt
 * crypt), never by code of ours.
 *
 *   {SCRAM-SHA-256}ITER,SALT,STOREDKEY,SERVERKEY   RFC 5803 values, base64,
 *   {SCRAM-SHA-1}ITER,SALT,STOREDKEY,SERVERKEY     Dovecot's comma form
 *   {ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$...  libsodium/PHC string
 *   {SHA512-CRYPT}$6$[rounds=N$]SALT$HASH          crypt(3)
 *   {BLF-CRYPT}$2b$NN$...  ($2a$, $2y$ verified)    crypt(3)
 *   {CRAM-MD5}$k$HEX       the HMAC-MD5 key (RFC 2104: the password, or its
 *                          MD5 when longer than 64 bytes) in lower-case hex;
 *                          PLAINTEXT-EQUIVALENT, for CRAM-MD5 only. Dovecot's
 *                          {CRAM-MD5} (64 hex digits of HMAC-MD5 context
 *                          state) is refused: OpenSSL cannot import it.
 *
 * Passwords are byte strings (they may contain NUL; the crypt schemes cannot
 * represent one and never match such a password). No normalisation is done:
 * SASLprep (RFC 4013, asked for by RFC 5802 5.1) is not applied, so a SCRAM
 * client that does apply it and a password that SASLprep changes (non-ASCII
 * spaces, soft hyphens, compatibility characters) will not match. ASCII
 * passwords are unaffected.
 *
 * All functions are thread-safe (they keep no state).
 */
#ifndef SG_AUTH_PWSCHEME_H
#define SG_AUTH_PWSCHEME_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

enum pwscheme {
	PWSCHEME_SCRAM_SHA256,
	PWSCHEME_SCRAM_SHA1,
	PWSCHEME_ARGON2ID,
	PWSCHEME_SHA512_CRYPT,
	PWSCHEME_BLF_CRYPT,
	PWSCHEME_CRAM_MD5,
};

#define PWSCHEME_SCRAM_ITER_DEFAULT 4096 /* RFC 7677 4 and RFC 5802 5.1: at least 4096 */
#define PWSCHEME_SCRAM_ITER_MAX 10000000
#define PWSCHEME_SCRAM_SALT_LEN 16 /* generated salts */
#define PWSCHEME_SCRAM_SALT_MAX 128 /* accepted salts, decoded */
#define PWSCHEME_SCRAM_KEY_MAX 32 /* SHA-256 output */
#define PWSCHEME_BLF_COST 10
#define PWSCHEME_PASSWORD_MAX 4096 /* longer passwords never match */
#define PWSCHEME_CRAM_KEY_MAX 64 /* HMAC-MD5 block size (RFC 2104 2) */

/* SCRAM stored keys (RFC 5802 3): what a SCRAM mechanism needs. */
struct pwscheme_scram {
	enum pwscheme scheme; /* PWSCHEME_SCRAM_SHA256 or PWSCHEME_SCRAM_SHA1 */
	unsigned iter;
	unsigned char salt[PWSCHEME_SCRAM_SALT_MAX];
	size_t saltlen;
	unsigned char stored_key[PWSCHEME_SCRAM_KEY_MAX];
	unsigned char server_key[PWSCHEME_SCRAM_KEY_MAX];
	size_t keylen; /* 32 for SHA-256, 20 for SHA-1 */
};

/* "SCRAM-SHA-256" etc.; a static string. */
const char *pwscheme_name(enum pwscheme s);
/* Parses a scheme name (case-insensitive, without braces). */
int pwscheme_from_name(const char *name, size_t len, enum pwscheme *s_r)
    __attribute__((warn_unused_result));

/*
 * Splits "{SCHEME}data": *data_r points into cred (valid as long as cred).
 * Also checks that data is well formed for the scheme. -1 with a static
 * message in *errstr_r.
 */
int pwscheme_split(const char *cred, enum pwscheme *s_r, const char **data_r, const char **errstr_r)
    __attribute__((warn_unused_result));
/* Checks that data (without the prefix) is well formed for s. */
int pwscheme_check_data(enum pwscheme s, const char *data, const char **errstr_r)
    __attribute__((warn_unused_result));

/*
 * Verifies password against data (without the prefix) in constant time with
 * respect to the stored value. 0 with *match_r set; -1 when data is malformed
 * or the library fails (then *match_r is false).
 */
int pwscheme_verify(enum pwscheme s, const char *data, const char *password, size_t passlen,
    bool *match_r) __attribute__((warn_unused_result));

/*
 * Appends the data for a new credential (without the "{SCHEME}" prefix) to
 * out: random salt, default cost. out should be a secret-free buffer; the
 * result is a one-way hash.
 */
int pwscheme_generate_data(enum pwscheme s, const char *password, size_t passlen, struct buf *out)
    __attribute__((warn_unused_result));
/* The same with the "{SCHEME}" prefix. */
int pwscheme_generate(enum pwscheme s, const char *password, size_t passlen, struct buf *out)
    __attribute__((warn_unused_result));

/* Parses SCRAM data "ITER,SALT,STOREDKEY,SERVERKEY" of scheme s (SCRAM only). */
int pwscheme_scram_parse(enum pwscheme s, const char *data, struct pwscheme_scram *k_r,
    const char **errstr_r) __attribute__((warn_unused_result));
/* Appends "ITER,SALT,STOREDKEY,SERVERKEY" for k to out. */
int pwscheme_scram_format(const struct pwscheme_scram *k, struct buf *out)
    __attribute__((warn_unused_result));
/*
 * Derives the stored keys of password for the given salt and iterations
 * (RFC 5802 3): SaltedPassword = Hi(password, salt, iter),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey),
 * ServerKey = HMAC(SaltedPassword, "Server Key"). client_key_r, if not NULL,
 * receives ClientKey (keylen bytes; the caller wipes it).
 */
int pwscheme_scram_derive(enum pwscheme s, const char *password, size_t passlen,
    const unsigned char *salt, size_t saltlen, unsigned iter, struct pwscheme_scram *k_r,
    unsigned char *client_key_r) __attribute__((warn_unused_result));
/* The HMAC-MD5 key of {CRAM-MD5} data into key (PWSCHEME_CRAM_KEY_MAX
 * bytes); the caller wipes it. 0 / -1. */
int pwscheme_cram_key(const char *data, unsigned char *key, size_t *keylen_r)
    __attribute__((warn_unused_result));
/* PBKDF2-HMAC (RFC 8018 5.2) with the hash of SCRAM scheme s, any output length. */
int pwscheme_pbkdf2(enum pwscheme s, const char *password, size_t passlen,
    const unsigned char *salt, size_t saltlen, unsigned iter, unsigned char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
