/*
 * Unit tests for auth/pwscheme with published vectors: RFC 6070 (PBKDF2-
 * HMAC-SHA1), RFC 5802 5 and RFC 7677 3 (SCRAM example exchanges: the
 * proofs and server signatures are recomputed from our stored keys), the
 * SHA512-crypt specification's example, the crypt_blowfish test vectors and
 * the Argon2 reference implementation's argon2id vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/pwscheme.h"
#include "lib/base64.h"

static size_t
unhex(const char *hex, unsigned char *out)
{
	size_t n = 0;

	for (; hex[0] != '\0' && hex[1] != '\0'; hex += 2) {
		unsigned v;

		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		out[n++] = (unsigned char)v;
	}
	return n;
}

static size_t
unb64(const char *s, unsigned char *out)
{
	struct buf b;
	size_t n;

	buf_init(&b, 256);
	assert_int_equal(base64_decode(s, strlen(s), &b), 0);
	memcpy(out, b.data, b.len);
	n = b.len;
	buf_free(&b);
	return n;
}

/* RFC 6070 2 (the 16777216-iteration vector is left out for time). */
static void
test_pbkdf2_rfc6070(void **state)
{
	static const struct {
		const char *p;
		size_t plen;
		const char *s;
		size_t slen;
		unsigned c;
		const char *dk;
	} v[] = {
	    {"password", 8, "salt", 4, 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
	    {"password", 8, "salt", 4, 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
	    {"password", 8, "salt", 4, 4096, "4b007901b765489abead49d926f721d065a429c1"},
	    {"passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36, 4096,
	        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
	    {"pass\0word", 9, "sa\0lt", 5, 4096, "56fa6aa75548099dcc37d7f03425e0c3"},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char want[64], got[64];
		size_t n = unhex(v[i].dk, want);

		assert_int_equal(pwscheme_pbkdf2(PWSCHEME_SCRAM_SHA1, v[i].p, v[i].plen,
		                     (const unsigned char *)v[i].s, v[i].slen, v[i].c, got, n),
		    0);
		assert_memory_equal(got, want, n);
	}
}

/*
 * Replays the server side of an RFC example exchange from stored keys only:
 * ClientSignature = HMAC(StoredKey, AuthMessage); the client's proof p= XOR
 * ClientSignature must give a ClientKey whose hash is StoredKey, and our
 * own ClientKey XOR ClientSignature must be the RFC's p=. ServerSignature =
 * HMAC(ServerKey, AuthMessage) must be the RFC's v=.
 */
static void
scram_check_exchange(enum pwscheme s, const char *salt_b64, const char *auth_message,
    const char *proof_b64, const char *verifier_b64)
{
	const EVP_MD *md = s == PWSCHEME_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
	unsigned char salt[64], client_key[64], proof[64], sig[64], want[64], h[64];
	struct pwscheme_scram k, parsed;
	unsigned int n;
	size_t saltlen = unb64(salt_b64, salt), plen;
	const char *errstr;
	bool match;
	struct buf b;

	assert_int_equal(
	    pwscheme_scram_derive(s, "pencil", 6, salt, saltlen, 4096, &k, client_key), 0);
	/* ClientProof := ClientKey XOR HMAC(StoredKey, AuthMessage) */
	assert_non_null(HMAC(md, k.stored_key, (int)k.keylen, (const unsigned char *)auth_message,
	    strlen(auth_message), sig, &n));
	assert_int_equal(n, k.keylen);
	plen = unb64(proof_b64, want);
	assert_int_equal(plen, k.keylen);
	for (size_t i = 0; i < k.keylen; i++)
		proof[i] = client_key[i] ^ sig[i];
	assert_memory_equal(proof, want, k.keylen);
	/* server side: recover ClientKey from the proof and hash it */
	for (size_t i = 0; i < k.keylen; i++)
		proof[i] = want[i] ^ sig[i];
	assert_int_equal(EVP_Digest(proof, k.keylen, h, &n, md, NULL), 1);
	assert_memory_equal(h, k.stored_key, k.keylen);
	/* ServerSignature := HMAC(ServerKey, AuthMessage) */
	assert_non_null(HMAC(md, k.server_key, (int)k.keylen, (const unsigned char *)auth_message,
	    strlen(auth_message), sig, &n));
	assert_int_equal(unb64(verifier_b64, want), k.keylen);
	assert_memory_equal(sig, want, k.keylen);

	/* the stored form round-trips and verifies the plaintext */
	buf_init(&b, 1024);
	assert_int_equal(pwscheme_scram_format(&k, &b), 0);
	assert_int_equal(strncmp(b.data, "4096,", 5), 0);
	assert_int_equal(pwscheme_scram_parse(s, b.data, &parsed, &errstr), 0);
	assert_int_equal(parsed.iter, 4096);
	assert_int_equal(parsed.saltlen, saltlen);
	assert_memory_equal(parsed.stored_key, k.stored_key, k.keylen);
	assert_memory_equal(parsed.server_key, k.server_key, k.keylen);
	assert_int_equal(pwscheme_verify(s, b.data, "pencil", 6, &match), 0);
	assert_true(match);
	assert_int_equal(pwscheme_verify(s, b.data, "pencil!", 7, &match), 0);
	assert_false(match);
	buf_free(&b);
}

/* RFC 5802 5: SCRAM-SHA-1, user "user", password "pencil". */
static void
test_scram_sha1_rfc5802(void **state)
{
	scram_check_exchange(PWSCHEME_SCRAM_SHA1, "QSXCR+Q6sek8bf92",
	    "n=user,r=fyko+d2lbbFgONRv9qkxdawL,"
	    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,"
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

/* RFC 7677 3: SCRAM-SHA-256, user "user", password "pencil". */
static void
test_scram_sha256_rfc7677(void **state)
{
	scram_check_exchange(PWSCHEME_SCRAM_SHA256, "W22ZaJ0SNY7soEsUEjb6gQ==",
	    "n=user,r=rOprNGfwEbeRWgbNEkqO,"
	    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
	    "i=4096,"
	    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

static void
check_cred(const char *cred, const char *pw, bool want)
{
	enum pwscheme s;
	const char *data, *errstr = NULL;
	bool match;

	if (pwscheme_split(cred, &s, &data, &errstr) != 0)
		fail_msg("%s: %s", cred, errstr);
	assert_int_equal(pwscheme_verify(s, data, pw, strlen(pw), &match), 0);
	if (match != want)
		fail_msg("%s with \"%s\": match %d", cred, pw, match);
}

/* Drepper's SHA-crypt specification, SHA-512 test 1. */
static void
test_sha512_crypt_vector(void **state)
{
	const char *c = "{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3u"
	                "BnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";

	check_cred(c, "Hello world!", true);
	check_cred(c, "Hello world", false);
	check_cred(c, "", false);
}

/* crypt_blowfish (Openwall) test vectors, also in libxcrypt's tests. */
static void
test_blf_crypt_vectors(void **state)
{
	check_cred(
	    "{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", true);
	check_cred("{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK",
	    "U*U*", true);
	check_cred("{BLF-CRYPT}$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a",
	    "U*U*U", true);
	check_cred("{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*V",
	    false);
}

/* phc-winner-argon2 src/test.c, Argon2id v=19, "password" / "somesalt". */
static void
test_argon2id_vectors(void **state)
{
	check_cred(
	    "{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
	    "password", true);
	check_cred(
	    "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	    "password", true);
	check_cred(
	    "{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
	    "passwore", false);
}

/* Generated credentials of every scheme verify, and only their password. */
static void
test_generate_roundtrip(void **state)
{
	static const enum pwscheme all[] = {PWSCHEME_SCRAM_SHA256, PWSCHEME_SCRAM_SHA1,
	    PWSCHEME_ARGON2ID, PWSCHEME_SHA512_CRYPT, PWSCHEME_BLF_CRYPT};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct buf a, b;

		buf_init(&a, 1024);
		buf_init(&b, 1024);
		assert_int_equal(pwscheme_generate(all[i], "correct horse", 13, &a), 0);
		assert_int_equal(pwscheme_generate(all[i], "correct horse", 13, &b), 0);
		/* random salts: two hashes of one password differ */
		assert_string_not_equal(a.data, b.data);
		assert_null(strstr(a.data, "correct"));
		assert_null(strchr(a.data, ':'));
		check_cred(a.data, "correct horse", true);
		check_cred(a.data, "correct horsE", false);
		buf_free(&a);
		buf_free(&b);
	}
}

static void
test_scram_defaults(void **state)
{
	struct pwscheme_scram k;
	const char *errstr;
	struct buf b;

	buf_init(&b, 1024);
	assert_int_equal(pwscheme_generate_data(PWSCHEME_SCRAM_SHA256, "x", 1, &b), 0);
	assert_int_equal(pwscheme_scram_parse(PWSCHEME_SCRAM_SHA256, b.data, &k, &errstr), 0);
	assert_int_equal(k.iter, 4096);
	assert_int_equal(k.saltlen, 16);
	assert_int_equal(k.keylen, 32);
	/* SHA-1 keys are 20 bytes: SHA-256 data is not valid SCRAM-SHA-1 data */
	assert_int_equal(pwscheme_scram_parse(PWSCHEME_SCRAM_SHA1, b.data, &k, &errstr), -1);
	buf_free(&b);
}

static void
test_rejects_malformed(void **state)
{
	static const char *const bad[] = {"", "plain", "{PLAIN}secret", "{SCRAM-SHA-256}",
	    "{SCRAM-SHA-256}4096", "{SCRAM-SHA-256}0,c2FsdA==,AAAA,AAAA",
	    "{SCRAM-SHA-256}4096,c2FsdA==,AAAA,AAAA", "{SCRAM-SHA-256}x096,c2FsdA==,AAAA,AAAA",
	    "{SCRAM-SHA-1}4096,,AAAA,AAAA",
	    "{SCRAM-SHA-1}4096,c2FsdA==,AAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAA=,",
	    "{ARGON2ID}$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$x", "{SHA512-CRYPT}$5$abc$def",
	    "{SHA512-CRYPT}$6$salt:x$y",
	    "{BLF-CRYPT}$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
	    "{BLF-CRYPT}$2b$05$short", "{SCRAM-SHA-256", "SCRAM-SHA-256}x"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum pwscheme s;
		const char *data, *errstr = NULL;

		if (pwscheme_split(bad[i], &s, &data, &errstr) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(errstr);
	}
	/* well-formed SHA-1 keys (20 bytes) are accepted */
	{
		enum pwscheme s;
		const char *data, *errstr;

		assert_int_equal(
		    pwscheme_split("{scram-sha-1}4096,c2FsdA==,"
		                   "AAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		        &s, &data, &errstr),
		    0);
		assert_int_equal(s, PWSCHEME_SCRAM_SHA1);
	}
}

/* pwscheme_verify on its own: malformed data is -1 (a library or file
 * failure, never a plain mismatch), and a password longer than
 * PWSCHEME_PASSWORD_MAX is 0 and no match whatever the data. */
static bool
pwscheme_is_crypt(enum pwscheme s)
{
	return s == PWSCHEME_SHA512_CRYPT || s == PWSCHEME_BLF_CRYPT;
}

static void
test_verify_bounds(void **state)
{
	static const struct {
		enum pwscheme s;
		const char *data;
	} bad[] = {
	    {PWSCHEME_SCRAM_SHA256, "4096,c2FsdA==,AAAA,AAAA"},
	    {PWSCHEME_SCRAM_SHA256, "0,c2FsdA==,AAAA,AAAA"},
	    {PWSCHEME_SCRAM_SHA1, "4096,,AAAA,AAAA"},
	    {PWSCHEME_SHA512_CRYPT, "$5$abc$def"},
	    {PWSCHEME_ARGON2ID, "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$x"},
	};
	static const enum pwscheme all[] = {
	    PWSCHEME_SCRAM_SHA256, PWSCHEME_SCRAM_SHA1, PWSCHEME_SHA512_CRYPT, PWSCHEME_BLF_CRYPT};
	char *longpw = malloc(PWSCHEME_PASSWORD_MAX + 2);
	bool match;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		match = true;
		assert_int_equal(pwscheme_verify(bad[i].s, bad[i].data, "pw", 2, &match), -1);
		assert_false(match);
	}
	assert_non_null(longpw);
	memset(longpw, 'x', PWSCHEME_PASSWORD_MAX + 1);
	longpw[PWSCHEME_PASSWORD_MAX + 1] = '\0';
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		/* SCRAM takes any length; crypt(3) less than 512 bytes (libxcrypt) */
		size_t max = pwscheme_is_crypt(all[i]) ? 511 : PWSCHEME_PASSWORD_MAX;
		struct buf b;
		const char *data;
		enum pwscheme s;
		const char *errstr;

		buf_init(&b, 1024);
		/* the longest password that is checked verifies */
		assert_int_equal(pwscheme_generate(all[i], longpw, max, &b), 0);
		assert_int_equal(pwscheme_split(b.data, &s, &data, &errstr), 0);
		assert_int_equal(pwscheme_verify(s, data, longpw, max, &match), 0);
		assert_true(match);
		/* one byte over PWSCHEME_PASSWORD_MAX is refused before any
		 * hashing, whatever the data holds */
		match = true;
		assert_int_equal(
		    pwscheme_verify(s, data, longpw, PWSCHEME_PASSWORD_MAX + 1, &match), 0);
		assert_false(match);
		buf_free(&b);
	}
	free(longpw);
}

static void
test_nul_in_password(void **state)
{
	struct buf b;
	enum pwscheme s;
	const char *data, *errstr;
	bool match;

	/* SCRAM keeps every byte; crypt cannot and never matches */
	buf_init(&b, 1024);
	assert_int_equal(pwscheme_generate(PWSCHEME_SCRAM_SHA256, "a\0b", 3, &b), 0);
	assert_int_equal(pwscheme_split(b.data, &s, &data, &errstr), 0);
	assert_int_equal(pwscheme_verify(s, data, "a\0b", 3, &match), 0);
	assert_true(match);
	assert_int_equal(pwscheme_verify(s, data, "a", 1, &match), 0);
	assert_false(match);
	buf_free(&b);
	assert_int_equal(
	    pwscheme_verify(PWSCHEME_SHA512_CRYPT,
	        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
	        "Hello world!\0x", 14, &match),
	    0);
	assert_false(match);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pbkdf2_rfc6070),
	    cmocka_unit_test(test_scram_sha1_rfc5802),
	    cmocka_unit_test(test_scram_sha256_rfc7677),
	    cmocka_unit_test(test_sha512_crypt_vector),
	    cmocka_unit_test(test_blf_crypt_vectors),
	    cmocka_unit_test(test_argon2id_vectors),
	    cmocka_unit_test(test_generate_roundtrip),
	    cmocka_unit_test(test_scram_defaults),
	    cmocka_unit_test(test_rejects_malformed),
	    cmocka_unit_test(test_verify_bounds),
	    cmocka_unit_test(test_nul_in_password),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
