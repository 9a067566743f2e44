/*
 * pwscheme: verification and generation of the passwd-file schemes.
 *
 * Every primitive comes from a library: PBKDF2 and HMAC from OpenSSL
 * (PKCS5_PBKDF2_HMAC, HMAC, EVP_Digest), Argon2id from libsodium
 * (crypto_pwhash_str*), SHA512-CRYPT and BLF-CRYPT from libxcrypt (crypt_r,
 * crypt_gensalt_rn). Comparisons of derived values use CRYPTO_memcmp.
 * Intermediate secrets (SaltedPassword, ClientKey, crypt outputs, password
 * copies) are wiped with explicit_bzero before their storage goes away.
 */
#include "auth/pwscheme.h"

#include <crypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "lib/base64.h"
#include "lib/hex.h"
#include "lib/xalloc.h"

static const char *const pwscheme_names[] = {
    [PWSCHEME_SCRAM_SHA256] = "SCRAM-SHA-256",
    [PWSCHEME_SCRAM_SHA1] = "SCRAM-SHA-1",
    [PWSCHEME_ARGON2ID] = "ARGON2ID",
    [PWSCHEME_SHA512_CRYPT] = "SHA512-CRYPT",
    [PWSCHEME_BLF_CRYPT] = "BLF-CRYPT",
    [PWSCHEME_CRAM_MD5] = "CRAM-MD5",
};

#define PWSCHEME_NSCHEMES (sizeof(pwscheme_names) / sizeof(pwscheme_names[0]))
#define PWSCHEME_BCRYPT_LEN 60 /* "$2b$NN$" + 22 salt + 31 hash */
#define PWSCHEME_ARGON2_PREFIX "$argon2id$"
#define PWSCHEME_CRAM_PREFIX "$k$"

static pthread_once_t pwscheme_sodium_once = PTHREAD_ONCE_INIT;
static int pwscheme_sodium_status;

static void
pwscheme_sodium_init(void)
{
	pwscheme_sodium_status = sodium_init() < 0 ? -1 : 0;
}

static int
pwscheme_sodium_ready(void)
{
	pthread_once(&pwscheme_sodium_once, pwscheme_sodium_init);
	return pwscheme_sodium_status;
}

const char *
pwscheme_name(enum pwscheme s)
{
	if ((size_t)s >= PWSCHEME_NSCHEMES)
		return "UNKNOWN";
	return pwscheme_names[s];
}

int
pwscheme_from_name(const char *name, size_t len, enum pwscheme *s_r)
{
	for (size_t i = 0; i < PWSCHEME_NSCHEMES; i++) {
		if (strlen(pwscheme_names[i]) == len &&
		    strncasecmp(name, pwscheme_names[i], len) == 0) {
			*s_r = (enum pwscheme)i;
			return 0;
		}
	}
	return -1;
}

static bool
pwscheme_is_scram(enum pwscheme s)
{
	return s == PWSCHEME_SCRAM_SHA256 || s == PWSCHEME_SCRAM_SHA1;
}

/* OpenSSL 3 looks up (fetches) an algorithm's implementation on every
 * one-shot call (PKCS5_PBKDF2_HMAC, HMAC, EVP_Digest with EVP_sha256()):
 * tens of microseconds per check with a cheap iteration count. So the
 * digests and the PBKDF2 KDF are fetched once, and HMAC contexts made once
 * per digest (0: SHA-1, 1: SHA-256) are copied per call. Read-only after
 * the once; NULL where a fetch failed (the one-shot calls are the
 * fallback). PBKDF2 has no context copy before OpenSSL 3.2, and naming its
 * digest fetches the digest again: each thread keeps its own PBKDF2
 * context per digest, made once with the digest and mode set
 * (pwscheme_kdf_ctx), its password copy wiped after each use. */
static pthread_once_t pwscheme_algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *pwscheme_mds[2];
static EVP_KDF *pwscheme_kdf;
static EVP_MAC_CTX *pwscheme_macs[2];
static pthread_key_t pwscheme_kdf_key; /* struct pwscheme_kdf_ctxs, freed with the thread */
static bool pwscheme_kdf_key_ok;

struct pwscheme_kdf_ctxs {
	EVP_KDF_CTX *c[2];
};

static void
pwscheme_kdf_ctxs_free(void *arg)
{
	struct pwscheme_kdf_ctxs *k = arg;

	for (int i = 0; i < 2; i++)
		EVP_KDF_CTX_free(k->c[i]);
	free(k);
}

static void
pwscheme_algs_init(void)
{
	static const char *const names[2] = {"SHA1", "SHA256"};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);

	for (int i = 0; i < 2; i++) {
		OSSL_PARAM ps[2] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_ALG_PARAM_DIGEST, (char *)names[i], 0),
		    OSSL_PARAM_construct_end()};

		pwscheme_mds[i] = EVP_MD_fetch(NULL, names[i], NULL);
		if (mac != NULL && (pwscheme_macs[i] = EVP_MAC_CTX_new(mac)) != NULL &&
		    EVP_MAC_CTX_set_params(pwscheme_macs[i], ps) != 1) {
			EVP_MAC_CTX_free(pwscheme_macs[i]);
			pwscheme_macs[i] = NULL;
		}
	}
	pwscheme_kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_PBKDF2, NULL);
	pwscheme_kdf_key_ok = pthread_key_create(&pwscheme_kdf_key, pwscheme_kdf_ctxs_free) == 0;
	/* the contexts hold their own references */
	EVP_MAC_free(mac);
}

static int
pwscheme_alg(enum pwscheme s)
{
	pthread_once(&pwscheme_algs_once, pwscheme_algs_init);
	return s == PWSCHEME_SCRAM_SHA1 ? 0 : 1;
}

static const EVP_MD *
pwscheme_md(enum pwscheme s)
{
	const EVP_MD *md = pwscheme_mds[pwscheme_alg(s)];

	if (md != NULL)
		return md;
	return s == PWSCHEME_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

/* HMAC(s's digest, key, data) into out (the digest's size, *outlen_r):
 * 0, or -1. */
static int
pwscheme_hmac(enum pwscheme s, const unsigned char *key, size_t keylen, const unsigned char *data,
    size_t datalen, unsigned char *out, unsigned int *outlen_r)
{
	EVP_MAC_CTX *tmpl = pwscheme_macs[pwscheme_alg(s)];
	EVP_MAC_CTX *c;
	size_t n = 0;
	int r = -1;

	if (tmpl == NULL)
		return HMAC(pwscheme_md(s), key, (int)keylen, data, datalen, out, outlen_r) != NULL
		    ? 0
		    : -1;
	if ((c = EVP_MAC_CTX_dup(tmpl)) == NULL)
		return -1;
	if (EVP_MAC_init(c, key, keylen, NULL) == 1 && EVP_MAC_update(c, data, datalen) == 1 &&
	    EVP_MAC_final(c, out, &n, EVP_MAX_MD_SIZE) == 1) {
		*outlen_r = (unsigned int)n;
		r = 0;
	}
	EVP_MAC_CTX_free(c);
	return r;
}

/* Characters of crypt(3) strings: the crypt base64 alphabet, '$', and the
 * "rounds=N" parameter. Anything else (':' or space above all) is malformed. */
static bool
pwscheme_is_crypt_text(const char *p)
{
	for (; *p != '\0'; p++) {
		if (strchr("./$=", *p) == NULL && !(*p >= '0' && *p <= '9') &&
		    !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
			return false;
	}
	return true;
}

static int
pwscheme_b64_field(const char *p, size_t n, unsigned char *out, size_t max, size_t *len_r)
{
	struct buf b;
	int r = -1;

	buf_init(&b, max);
	if (n == 0 || base64_decode(p, n, &b) == -1)
		goto fail;
	memcpy(out, b.data, b.len);
	*len_r = b.len;
	r = 0;
fail:
	buf_free(&b);
	return r;
}

int
pwscheme_scram_parse(
    enum pwscheme s, const char *data, struct pwscheme_scram *k_r, const char **errstr_r)
{
	const char *f[4], *end;
	size_t flen[4], n, want;
	unsigned long iter;
	char *ep;

	memset(k_r, 0, sizeof(*k_r));
	if (!pwscheme_is_scram(s)) {
		*errstr_r = "not a SCRAM scheme";
		return -1;
	}
	k_r->scheme = s;
	want = (size_t)EVP_MD_get_size(pwscheme_md(s));
	/* ITER,SALT,STOREDKEY,SERVERKEY (Dovecot's passwd-file form; RFC 5803
	 * writes the same values as ITER:SALT$STOREDKEY:SERVERKEY) */
	for (int i = 0; i < 4; i++) {
		f[i] = data;
		end = i < 3 ? strchr(data, ',') : data + strlen(data);
		if (end == NULL) {
			*errstr_r = "SCRAM data must be ITER,SALT,STOREDKEY,SERVERKEY";
			return -1;
		}
		flen[i] = (size_t)(end - data);
		data = end + (i < 3 ? 1 : 0);
	}
	if (strchr(f[3], ',') != NULL) {
		*errstr_r = "SCRAM data must be ITER,SALT,STOREDKEY,SERVERKEY";
		return -1;
	}
	if (flen[0] == 0 || flen[0] > 9 || f[0][0] < '1' || f[0][0] > '9') {
		*errstr_r = "bad SCRAM iteration count";
		return -1;
	}
	iter = strtoul(f[0], &ep, 10);
	if (ep != f[0] + flen[0] || iter > PWSCHEME_SCRAM_ITER_MAX) {
		*errstr_r = "bad SCRAM iteration count";
		return -1;
	}
	k_r->iter = (unsigned)iter;
	if (pwscheme_b64_field(f[1], flen[1], k_r->salt, sizeof(k_r->salt), &k_r->saltlen) == -1) {
		*errstr_r = "bad SCRAM salt (base64, at most 128 bytes)";
		return -1;
	}
	if (pwscheme_b64_field(f[2], flen[2], k_r->stored_key, sizeof(k_r->stored_key), &n) == -1 ||
	    n != want) {
		*errstr_r = "bad SCRAM stored key (base64 of the hash size)";
		return -1;
	}
	if (pwscheme_b64_field(f[3], flen[3], k_r->server_key, sizeof(k_r->server_key), &n) == -1 ||
	    n != want) {
		*errstr_r = "bad SCRAM server key (base64 of the hash size)";
		return -1;
	}
	k_r->keylen = want;
	return 0;
}

int
pwscheme_scram_format(const struct pwscheme_scram *k, struct buf *out)
{
	if (buf_printf(out, "%u,", k->iter) == -1 ||
	    base64_encode(k->salt, k->saltlen, out) == -1 || buf_append(out, ",", 1) == -1 ||
	    base64_encode(k->stored_key, k->keylen, out) == -1 || buf_append(out, ",", 1) == -1 ||
	    base64_encode(k->server_key, k->keylen, out) == -1)
		return -1;
	return 0;
}

/* A PBKDF2 context for s with its digest and mode set: this thread's own
 * (*own_r true: kept), or, when it cannot be kept, a new one the caller
 * frees. NULL on failure. */
static EVP_KDF_CTX *
pwscheme_kdf_ctx(enum pwscheme s, bool *own_r)
{
	int i = pwscheme_alg(s), pkcs5 = 1;
	struct pwscheme_kdf_ctxs *k = NULL;
	EVP_KDF_CTX *c;
	/* PKCS5_PBKDF2_HMAC's mode: no SP 800-132 lower bounds (1 iteration,
	 * short salts and keys are the stored keys' business, checked elsewhere) */
	OSSL_PARAM ps[3] = {OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5),
	    OSSL_PARAM_construct_utf8_string(
	        OSSL_KDF_PARAM_DIGEST, (char *)(i == 0 ? "SHA1" : "SHA256"), 0),
	    OSSL_PARAM_construct_end()};

	*own_r = false;
	if (pwscheme_kdf_key_ok) {
		k = pthread_getspecific(pwscheme_kdf_key);
		if (k != NULL && k->c[i] != NULL) {
			*own_r = true;
			return k->c[i];
		}
	}
	if ((c = EVP_KDF_CTX_new(pwscheme_kdf)) == NULL)
		return NULL;
	if (EVP_KDF_CTX_set_params(c, ps) != 1) {
		EVP_KDF_CTX_free(c);
		return NULL;
	}
	if (pwscheme_kdf_key_ok && k == NULL && (k = calloc(1, sizeof(*k))) != NULL &&
	    pthread_setspecific(pwscheme_kdf_key, k) != 0) {
		free(k);
		k = NULL;
	}
	if (k != NULL) {
		k->c[i] = c;
		*own_r = true;
	}
	return c;
}

int
pwscheme_pbkdf2(enum pwscheme s, const char *password, size_t passlen, const unsigned char *salt,
    size_t saltlen, unsigned iter, unsigned char *out, size_t outlen)
{
	EVP_KDF_CTX *c;
	OSSL_PARAM ps[4];
	bool own;
	int r;

	if (!pwscheme_is_scram(s) || passlen > INT_MAX || saltlen > INT_MAX || outlen > INT_MAX ||
	    iter == 0 || iter > INT_MAX)
		return -1;
	(void)pwscheme_alg(s);
	/* OpenSSL wants a non-NULL pointer even for an empty password */
	if (pwscheme_kdf == NULL)
		return PKCS5_PBKDF2_HMAC(passlen > 0 ? password : "", (int)passlen, salt,
		           (int)saltlen, (int)iter, pwscheme_md(s), (int)outlen, out) == 1
		    ? 0
		    : -1;
	if ((c = pwscheme_kdf_ctx(s, &own)) == NULL)
		return -1;
	ps[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_PASSWORD, (void *)(passlen > 0 ? password : ""), passlen);
	ps[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	ps[2] = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iter);
	ps[3] = OSSL_PARAM_construct_end();
	r = EVP_KDF_derive(c, out, outlen, ps) == 1 ? 0 : -1;
	if (!own) {
		EVP_KDF_CTX_free(c);
		return r;
	}
	/* the kept context holds a copy of the password until it is set
	 * again: an empty one replaces it (the copy is cleansed and freed) */
	ps[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)"", 0);
	ps[1] = OSSL_PARAM_construct_end();
	if (EVP_KDF_CTX_set_params(c, ps) != 1) {
		/* cannot wipe it: the context goes (freeing cleanses it), a new
		 * one is made next time */
		struct pwscheme_kdf_ctxs *k = pthread_getspecific(pwscheme_kdf_key);

		k->c[pwscheme_alg(s)] = NULL;
		EVP_KDF_CTX_free(c);
	}
	return r;
}

/* RFC 5802 3, up to StoredKey: SaltedPassword := Hi(Normalize(password),
 * salt, i) (PBKDF2 with HMAC as the PRF and dkLen the hash size, keylen),
 * ClientKey := HMAC(SaltedPassword, "Client Key"), StoredKey := H(ClientKey),
 * each keylen bytes into the caller's buffers (which it wipes). 0 / -1. */
static int
pwscheme_scram_client(enum pwscheme s, const char *password, size_t passlen,
    const unsigned char *salt, size_t saltlen, unsigned iter, size_t keylen, unsigned char *salted,
    unsigned char *client_key, unsigned char *stored_key)
{
	unsigned int n = 0, m = 0;

	if (pwscheme_pbkdf2(s, password, passlen, salt, saltlen, iter, salted, keylen) == -1)
		return -1;
	if (pwscheme_hmac(
	        s, salted, keylen, (const unsigned char *)"Client Key", 10, client_key, &n) == -1 ||
	    n != keylen)
		return -1;
	if (EVP_Digest(client_key, keylen, stored_key, &m, pwscheme_md(s), NULL) != 1 ||
	    m != keylen)
		return -1;
	return 0;
}

int
pwscheme_scram_derive(enum pwscheme s, const char *password, size_t passlen,
    const unsigned char *salt, size_t saltlen, unsigned iter, struct pwscheme_scram *k_r,
    unsigned char *client_key_r)
{
	unsigned char salted[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	size_t keylen;
	int r = -1;

	if (!pwscheme_is_scram(s) || saltlen > sizeof(k_r->salt))
		return -1;
	keylen = (size_t)EVP_MD_get_size(pwscheme_md(s));
	memset(k_r, 0, sizeof(*k_r));
	k_r->scheme = s;
	k_r->iter = iter;
	memcpy(k_r->salt, salt, saltlen);
	k_r->saltlen = saltlen;
	k_r->keylen = keylen;
	if (pwscheme_scram_client(s, password, passlen, salt, saltlen, iter, keylen, salted,
	        client_key, k_r->stored_key) == -1)
		goto fail;
	if (pwscheme_hmac(s, salted, keylen, (const unsigned char *)"Server Key", 10,
	        k_r->server_key, &n) == -1 ||
	    n != keylen)
		goto fail;
	if (client_key_r != NULL)
		memcpy(client_key_r, client_key, keylen);
	r = 0;
fail:
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(client_key, sizeof(client_key));
	return r;
}

static int
pwscheme_check_bcrypt(const char *data)
{
	/* $2a$ / $2b$ / $2y$, two-digit cost 04..31, '$', 53 characters */
	if (strlen(data) != PWSCHEME_BCRYPT_LEN || data[0] != '$' || data[1] != '2' ||
	    strchr("aby", data[2]) == NULL || data[2] == '\0' || data[3] != '$' || data[4] < '0' ||
	    data[4] > '3' || data[5] < '0' || data[5] > '9' || data[6] != '$')
		return -1;
	if (atoi(data + 4) < 4 || atoi(data + 4) > 31)
		return -1;
	for (const char *p = data + 7; *p != '\0'; p++) {
		if (*p == '$' || *p == '=')
			return -1;
	}
	return pwscheme_is_crypt_text(data + 7) ? 0 : -1;
}

int
pwscheme_cram_key(const char *data, unsigned char *key, size_t *keylen_r)
{
	size_t n;

	if (strncmp(data, PWSCHEME_CRAM_PREFIX, strlen(PWSCHEME_CRAM_PREFIX)) != 0)
		return -1;
	data += strlen(PWSCHEME_CRAM_PREFIX);
	n = strlen(data);
	if (n == 0 || n % 2 != 0 || n / 2 > PWSCHEME_CRAM_KEY_MAX)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(data[2 * i], false), lo = hex_digit(data[2 * i + 1], false);

		if (hi < 0 || lo < 0) {
			explicit_bzero(key, i);
			return -1;
		}
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	*keylen_r = n / 2;
	return 0;
}

/* RFC 2104 2: a key longer than the block is replaced by its hash. */
static int
pwscheme_cram_derive(const char *password, size_t passlen, unsigned char *key, size_t *keylen_r)
{
	unsigned int n = 0;

	if (passlen == 0)
		return -1;
	if (passlen <= PWSCHEME_CRAM_KEY_MAX) {
		memcpy(key, password, passlen);
		*keylen_r = passlen;
		return 0;
	}
	if (EVP_Digest(password, passlen, key, &n, EVP_md5(), NULL) != 1)
		return -1;
	*keylen_r = n;
	return 0;
}

int
pwscheme_check_data(enum pwscheme s, const char *data, const char **errstr_r)
{
	unsigned char key[PWSCHEME_CRAM_KEY_MAX];
	size_t keylen;
	struct pwscheme_scram k;
	int r;

	switch (s) {
	case PWSCHEME_SCRAM_SHA256:
	case PWSCHEME_SCRAM_SHA1:
		r = pwscheme_scram_parse(s, data, &k, errstr_r);
		explicit_bzero(&k, sizeof(k));
		return r;
	case PWSCHEME_ARGON2ID:
		if (strncmp(data, PWSCHEME_ARGON2_PREFIX, strlen(PWSCHEME_ARGON2_PREFIX)) != 0 ||
		    strlen(data) >= crypto_pwhash_argon2id_STRBYTES) {
			*errstr_r = "ARGON2ID data must be a $argon2id$ string";
			return -1;
		}
		for (const char *p = data; *p != '\0'; p++) {
			if (*p <= ' ' || *p == ':' || *p > '~') {
				*errstr_r = "ARGON2ID data must be a $argon2id$ string";
				return -1;
			}
		}
		return 0;
	case PWSCHEME_SHA512_CRYPT:
		if (strncmp(data, "$6$", 3) != 0 || strlen(data) >= CRYPT_OUTPUT_SIZE ||
		    !pwscheme_is_crypt_text(data) || strrchr(data, '$') == data + 2) {
			*errstr_r = "SHA512-CRYPT data must be a $6$ crypt string";
			return -1;
		}
		return 0;
	case PWSCHEME_BLF_CRYPT:
		if (pwscheme_check_bcrypt(data) == -1) {
			*errstr_r = "BLF-CRYPT data must be a $2b$ (or $2a$, $2y$) crypt string";
			return -1;
		}
		return 0;
	case PWSCHEME_CRAM_MD5:
		if (pwscheme_cram_key(data, key, &keylen) == -1) {
			*errstr_r = strlen(data) == 32 * 2
			    ? "CRAM-MD5 data must be $k$ and the key in hex (Dovecot's "
			      "HMAC-context form is not supported; set the password again)"
			    : "CRAM-MD5 data must be $k$ and the key in lower-case hex";
			return -1;
		}
		explicit_bzero(key, sizeof(key));
		return 0;
	}
	*errstr_r = "unknown scheme";
	return -1;
}

int
pwscheme_split(const char *cred, enum pwscheme *s_r, const char **data_r, const char **errstr_r)
{
	const char *close;

	if (cred[0] != '{' || (close = strchr(cred, '}')) == NULL) {
		*errstr_r = "password must start with {SCHEME}";
		return -1;
	}
	if (pwscheme_from_name(cred + 1, (size_t)(close - cred - 1), s_r) == -1) {
		*errstr_r = "unsupported password scheme (supported: SCRAM-SHA-256, SCRAM-SHA-1, "
		            "ARGON2ID, SHA512-CRYPT, BLF-CRYPT, CRAM-MD5)";
		return -1;
	}
	*data_r = close + 1;
	return pwscheme_check_data(*s_r, *data_r, errstr_r);
}

static int
pwscheme_verify_crypt(const char *data, const char *password, size_t passlen, bool *match_r)
{
	struct crypt_data *cd = NULL;
	char *pw = NULL;
	const char *out;
	size_t n = strlen(data);
	int r = -1;

	/* crypt(3) takes a C string: a password with a NUL cannot match */
	if (memchr(password, '\0', passlen) != NULL)
		return 0;
	pw = xstrndup(password, passlen);
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_r(pw, data, cd);
	/* libxcrypt fails with NULL or a string starting with '*' */
	if (out == NULL || out[0] == '*')
		goto fail;
	*match_r = strlen(out) == n && CRYPTO_memcmp(out, data, n) == 0;
	r = 0;
fail:
	xfree_secret(cd, sizeof(*cd));
	xfree_secret(pw, passlen + 1);
	return r;
}

int
pwscheme_verify(
    enum pwscheme s, const char *data, const char *password, size_t passlen, bool *match_r)
{
	struct pwscheme_scram stored;
	unsigned char salted[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE],
	    stored_key[EVP_MAX_MD_SIZE];
	char str[crypto_pwhash_argon2id_STRBYTES];
	unsigned char key[PWSCHEME_CRAM_KEY_MAX], want[PWSCHEME_CRAM_KEY_MAX];
	size_t keylen, wantlen;
	const char *errstr;
	int r = -1;

	*match_r = false;
	/* SCRAM data is checked by its parse, below: once */
	if (!pwscheme_is_scram(s)) {
		if (pwscheme_check_data(s, data, &errstr) == -1)
			return -1;
		if (passlen > PWSCHEME_PASSWORD_MAX)
			return 0;
	}
	switch (s) {
	case PWSCHEME_SCRAM_SHA256:
	case PWSCHEME_SCRAM_SHA1:
		if (pwscheme_scram_parse(s, data, &stored, &errstr) == -1)
			return -1;
		if (passlen > PWSCHEME_PASSWORD_MAX) {
			r = 0;
		} else if (pwscheme_scram_client(s, password, passlen, stored.salt, stored.saltlen,
		               stored.iter, stored.keylen, salted, client_key, stored_key) == 0) {
			/* a check needs StoredKey only (not ServerKey) */
			*match_r = CRYPTO_memcmp(stored.stored_key, stored_key, stored.keylen) == 0;
			r = 0;
		}
		explicit_bzero(&stored, sizeof(stored));
		explicit_bzero(salted, sizeof(salted));
		explicit_bzero(client_key, sizeof(client_key));
		explicit_bzero(stored_key, sizeof(stored_key));
		return r;
	case PWSCHEME_ARGON2ID:
		if (pwscheme_sodium_ready() == -1)
			return -1;
		/* the API reads a crypto_pwhash_STRBYTES array */
		memset(str, 0, sizeof(str));
		memcpy(str, data, strlen(data));
		*match_r = crypto_pwhash_str_verify(str, password, passlen) == 0;
		return 0;
	case PWSCHEME_SHA512_CRYPT:
	case PWSCHEME_BLF_CRYPT:
		return pwscheme_verify_crypt(data, password, passlen, match_r);
	case PWSCHEME_CRAM_MD5:
		if (pwscheme_cram_key(data, want, &wantlen) == -1)
			return -1;
		if (pwscheme_cram_derive(password, passlen, key, &keylen) == 0) {
			*match_r = keylen == wantlen && CRYPTO_memcmp(key, want, keylen) == 0;
			explicit_bzero(key, sizeof(key));
		}
		explicit_bzero(want, sizeof(want));
		return 0;
	}
	return -1;
}

static int
pwscheme_generate_crypt(
    const char *prefix, unsigned long cost, const char *password, size_t passlen, struct buf *out)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	char *pw = NULL;
	const char *h;
	int r = -1;

	if (memchr(password, '\0', passlen) != NULL)
		return -1;
	/* NULL random bytes: libxcrypt reads the system's random source */
	if (crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof(setting)) == NULL)
		return -1;
	pw = xstrndup(password, passlen);
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_r(pw, setting, cd);
	if (h == NULL || h[0] == '*')
		goto fail;
	if (buf_append_str(out, h) == -1)
		goto fail;
	r = 0;
fail:
	xfree_secret(cd, sizeof(*cd));
	xfree_secret(pw, passlen + 1);
	return r;
}

int
pwscheme_generate_data(enum pwscheme s, const char *password, size_t passlen, struct buf *out)
{
	unsigned char salt[PWSCHEME_SCRAM_SALT_LEN];
	char str[crypto_pwhash_argon2id_STRBYTES];
	struct pwscheme_scram k;
	unsigned char key[PWSCHEME_CRAM_KEY_MAX];
	size_t keylen;
	int r = -1;

	if (passlen > PWSCHEME_PASSWORD_MAX)
		return -1;
	switch (s) {
	case PWSCHEME_SCRAM_SHA256:
	case PWSCHEME_SCRAM_SHA1:
		if (RAND_bytes(salt, sizeof(salt)) != 1)
			return -1;
		if (pwscheme_scram_derive(s, password, passlen, salt, sizeof(salt),
		        PWSCHEME_SCRAM_ITER_DEFAULT, &k, NULL) == 0)
			r = pwscheme_scram_format(&k, out);
		explicit_bzero(&k, sizeof(k));
		return r;
	case PWSCHEME_ARGON2ID:
		if (pwscheme_sodium_ready() == -1)
			return -1;
		if (crypto_pwhash_str_alg(str, password, passlen,
		        crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
		        crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
		        crypto_pwhash_ALG_ARGON2ID13) != 0)
			return -1;
		return buf_append_str(out, str);
	case PWSCHEME_SHA512_CRYPT:
		/* cost 0: libxcrypt's default (5000 rounds, not written out) */
		return pwscheme_generate_crypt("$6$", 0, password, passlen, out);
	case PWSCHEME_BLF_CRYPT:
		return pwscheme_generate_crypt("$2b$", PWSCHEME_BLF_COST, password, passlen, out);
	case PWSCHEME_CRAM_MD5:
		if (pwscheme_cram_derive(password, passlen, key, &keylen) == -1)
			return -1;
		r = buf_append_str(out, PWSCHEME_CRAM_PREFIX);
		for (size_t i = 0; i < keylen && r == 0; i++)
			r = buf_printf(out, "%02x", key[i]);
		explicit_bzero(key, sizeof(key));
		return r;
	}
	return -1;
}

int
pwscheme_generate(enum pwscheme s, const char *password, size_t passlen, struct buf *out)
{
	size_t len = out->len;

	if (buf_printf(out, "{%s}", pwscheme_name(s)) == -1 ||
	    pwscheme_generate_data(s, password, passlen, out) == -1) {
		out->len = len;
		out->data[len] = '\0';
		return -1;
	}
	return 0;
}
