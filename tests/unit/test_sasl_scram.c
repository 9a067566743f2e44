/*
 * Unit tests for the SCRAM (RFC 5802, RFC 7677) and CRAM-MD5 (RFC 2195)
 * mechanisms. gsasl makes its own server nonce, so the RFC exchanges cannot
 * be replayed byte for byte; instead the test's own client (OpenSSL) is
 * first checked against the RFC's proof and signature for the RFC's
 * messages, then drives our mechanism with the RFC's user, password, salt,
 * iteration count and client nonce, and must get the right server
 * signature back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "sasl/sasl.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_mech.h"
#include "sasl/sasl_plain.h"
#include "sasl/sasl_scram.h"

#define S(lit) lit, sizeof(lit) - 1

struct vec {
	const char *mech;
	const EVP_MD *(*md)(void);
	const char *salt_b64;
	const char *cnonce;
	const char *server_first; /* the RFC's */
	const char *final_noproof; /* the RFC's */
	const char *proof_b64; /* the RFC's */
	const char *verifier_b64; /* the RFC's */
};

static const struct vec rfc5802 = {
    "SCRAM-SHA-1",
    EVP_sha1,
    "QSXCR+Q6sek8bf92",
    "fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static const struct vec rfc7677 = {
    "SCRAM-SHA-256",
    EVP_sha256,
    "W22ZaJ0SNY7soEsUEjb6gQ==",
    "rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

/* --- a small SCRAM client made of OpenSSL calls ---------------------------- */

struct client_keys {
	unsigned char client_key[EVP_MAX_MD_SIZE], stored_key[EVP_MAX_MD_SIZE],
	    server_key[EVP_MAX_MD_SIZE];
	unsigned len;
};

static void
client_derive(const EVP_MD *md, const char *pw, const unsigned char *salt, size_t saltlen,
    unsigned iter, struct client_keys *k)
{
	unsigned char salted[EVP_MAX_MD_SIZE];
	unsigned n;

	k->len = (unsigned)EVP_MD_get_size(md);
	assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)saltlen, (int)iter, md,
	                     (int)k->len, salted),
	    1);
	assert_non_null(HMAC(
	    md, salted, (int)k->len, (const unsigned char *)"Client Key", 10, k->client_key, &n));
	assert_non_null(HMAC(
	    md, salted, (int)k->len, (const unsigned char *)"Server Key", 10, k->server_key, &n));
	assert_int_equal(EVP_Digest(k->client_key, k->len, k->stored_key, &n, md, NULL), 1);
}

/* proof and server signature (base64, NUL-terminated) for auth message am */
static void
client_proof(const EVP_MD *md, const struct client_keys *k, const char *am, char *proof,
    size_t prooflen, char *sig, size_t siglen)
{
	unsigned char csig[EVP_MAX_MD_SIZE], p[EVP_MAX_MD_SIZE], ssig[EVP_MAX_MD_SIZE];
	unsigned n;
	struct buf b;

	assert_non_null(
	    HMAC(md, k->stored_key, (int)k->len, (const unsigned char *)am, strlen(am), csig, &n));
	for (unsigned i = 0; i < k->len; i++)
		p[i] = k->client_key[i] ^ csig[i];
	assert_non_null(
	    HMAC(md, k->server_key, (int)k->len, (const unsigned char *)am, strlen(am), ssig, &n));
	buf_init(&b, 256);
	assert_int_equal(base64_encode(p, k->len, &b), 0);
	snprintf(proof, prooflen, "%.*s", (int)b.len, b.data);
	buf_reset(&b);
	assert_int_equal(base64_encode(ssig, k->len, &b), 0);
	snprintf(sig, siglen, "%.*s", (int)b.len, b.data);
	buf_free(&b);
}

static size_t
b64dec(const char *s, unsigned char *out, size_t max)
{
	struct buf b;
	size_t n;

	buf_init(&b, 1024);
	assert_int_equal(base64_decode(s, strlen(s), &b), 0);
	assert_true(b.len <= max);
	memcpy(out, b.data, b.len);
	n = b.len;
	buf_free(&b);
	return n;
}

static void
keys_for(const struct vec *v, const char *pw, struct sasl_keys *sk)
{
	struct client_keys k;

	memset(sk, 0, sizeof(*sk));
	sk->saltlen = b64dec(v->salt_b64, sk->salt, sizeof(sk->salt));
	sk->iter = 4096;
	client_derive(v->md(), pw, sk->salt, sk->saltlen, 4096, &k);
	memcpy(sk->stored_key, k.stored_key, k.len);
	memcpy(sk->server_key, k.server_key, k.len);
	sk->keylen = k.len;
}

/* The RFC's own messages: our client gives the RFC's proof and signature. */
static void
check_client_against_rfc(const struct vec *v)
{
	struct client_keys k;
	unsigned char salt[64];
	size_t saltlen = b64dec(v->salt_b64, salt, sizeof(salt));
	char am[512], proof[128], sig[128];

	client_derive(v->md(), "pencil", salt, saltlen, 4096, &k);
	snprintf(am, sizeof(am), "n=user,r=%s,%s,%s", v->cnonce, v->server_first, v->final_noproof);
	client_proof(v->md(), &k, am, proof, sizeof(proof), sig, sizeof(sig));
	assert_string_equal(proof, v->proof_b64);
	assert_string_equal(sig, v->verifier_b64);
}

static void
test_rfc_client(void **state)
{
	check_client_against_rfc(&rfc5802);
	check_client_against_rfc(&rfc7677);
}

struct run {
	const char *mech;
	const char *gs2; /* GS2 header to send */
	const char *cbind_extra; /* bytes appended to the GS2 header in c= (channel binding) */
	size_t cbind_extralen;
	bool plus_offered;
	const unsigned char *cb; /* server's tls-exporter data */
	size_t cblen;
	const char *pw; /* the client's password */
	bool user_known;
	bool tamper_nonce;
	/* app passwords: the keys handed over are these candidates, all with
	 * the vector's salt (none: the single pair of "pencil") */
	const char *const *cands;
	size_t ncands;
	const char *want_label; /* after SASL_DONE: the matched candidate's */
};

/* Runs a whole exchange; returns the final status, the server signature
 * checked when the exchange got that far. */
static enum sasl_status
run_exchange(const struct vec *v, const struct run *r, const char **why_r)
{
	struct sasl_exchange *x = sasl_new(sasl_mech_find(r->mech));
	struct sasl_context ctx;
	struct sasl_keys sk;
	struct client_keys ck;
	struct buf out, cb;
	char first[256], final[512], am[1024], proof[128], sig[128], snonce[256];
	enum sasl_status st;
	const char *comma;

	assert_non_null(x);
	memset(&ctx, 0, sizeof(ctx));
	ctx.hostname = "mail.example.test";
	ctx.plus_offered = r->plus_offered;
	if (r->cb != NULL) {
		memcpy(ctx.cb[SASL_CB_TLS_EXPORTER], r->cb, r->cblen);
		ctx.cblen[SASL_CB_TLS_EXPORTER] = r->cblen;
	}
	sasl_set_context(x, &ctx);
	buf_init(&out, 4096);
	*why_r = "";

	assert_int_equal(sasl_step(x, NULL, 0, false, &out), SASL_CONTINUE);
	assert_int_equal(out.len, 0);
	snprintf(first, sizeof(first), "%sn=user,r=%s", r->gs2, v->cnonce);
	st = sasl_step(x, first, strlen(first), true, &out);
	if (st != SASL_NEED_KEYS)
		goto done;
	assert_string_equal(sasl_user(x), "user");
	assert_int_equal(sasl_keys_kind(x),
	    strncmp(r->mech, "SCRAM-SHA-1", 11) == 0 ? SASL_KEYS_SCRAM_SHA1
	                                             : SASL_KEYS_SCRAM_SHA256);
	keys_for(v, "pencil", &sk);
	for (size_t i = 0; i < r->ncands; i++) {
		client_derive(v->md(), r->cands[i], sk.salt, sk.saltlen, 4096, &ck);
		memcpy(sk.cand[i].stored_key, ck.stored_key, ck.len);
		memcpy(sk.cand[i].server_key, ck.server_key, ck.len);
		snprintf(sk.cand[i].label, sizeof(sk.cand[i].label), "cand%zu", i);
		snprintf(sk.cand[i].created, sizeof(sk.cand[i].created), "%zu", 1000 + i);
	}
	sk.ncand = r->ncands;
	sasl_set_keys(x, &sk, r->user_known ? "user@canonical" : NULL);
	st = sasl_resume(x, &out);
	if (st != SASL_CONTINUE)
		goto done;
	/* server-first: r=<cnonce><snonce>,s=<salt>,i=4096 */
	assert_true(out.len > 2 && memcmp(out.data, "r=", 2) == 0);
	comma = memchr(out.data, ',', out.len);
	assert_non_null(comma);
	snprintf(snonce, sizeof(snonce), "%.*s", (int)(comma - out.data - 2), out.data + 2);
	assert_int_equal(strncmp(snonce, v->cnonce, strlen(v->cnonce)), 0);
	assert_true(strlen(snonce) > strlen(v->cnonce));
	{
		char tail[64];

		snprintf(tail, sizeof(tail), ",s=%s,i=4096", v->salt_b64);
		assert_int_equal(strlen(comma), strlen(tail));
		assert_memory_equal(comma, tail, strlen(tail));
	}
	/* client-final */
	buf_init(&cb, 512);
	{
		char raw[256];
		size_t n = strlen(r->gs2);

		memcpy(raw, r->gs2, n);
		if (r->cbind_extralen > 0)
			memcpy(raw + n, r->cbind_extra, r->cbind_extralen);
		assert_int_equal(base64_encode(raw, n + r->cbind_extralen, &cb), 0);
	}
	if (r->tamper_nonce)
		snonce[strlen(snonce) - 1] ^= 1;
	snprintf(final, sizeof(final), "c=%.*s,r=%s", (int)cb.len, cb.data, snonce);
	buf_free(&cb);
	snprintf(am, sizeof(am), "n=user,r=%s,%.*s,%s", v->cnonce, (int)out.len, out.data, final);
	client_derive(v->md(), r->pw, sk.salt, sk.saltlen, 4096, &ck);
	client_proof(v->md(), &ck, am, proof, sizeof(proof), sig, sizeof(sig));
	snprintf(final + strlen(final), sizeof(final) - strlen(final), ",p=%s", proof);
	buf_reset(&out);
	st = sasl_step(x, final, strlen(final), true, &out);
	if (st != SASL_CONTINUE)
		goto done;
	/* server-final in a 334, then an empty response gives DONE */
	assert_true(out.len == 2 + strlen(sig));
	assert_memory_equal(out.data, "v=", 2);
	assert_memory_equal(out.data + 2, sig, strlen(sig));
	st = sasl_step(x, "", 0, true, &out);
	if (st == SASL_DONE) {
		const char *label, *created;

		assert_string_equal(sasl_user(x), "user@canonical");
		assert_true(sasl_matched_cred(x, &label, &created));
		if (r->want_label != NULL)
			assert_string_equal(label, r->want_label);
	}
done:
	*why_r = sasl_errstr(x);
	buf_free(&out);
	sasl_free(x);
	return st;
}

static const unsigned char cb_exporter[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const unsigned char cb_wrong[32] = {32, 31, 30};

static void
test_rfc_exchanges(void **state)
{
	const char *why;
	struct run r = {.gs2 = "n,,", .pw = "pencil", .user_known = true};

	r.mech = "SCRAM-SHA-1";
	assert_int_equal(run_exchange(&rfc5802, &r, &why), SASL_DONE);
	r.mech = "SCRAM-SHA-256";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
}

static void
test_wrong_password_and_unknown_user(void **state)
{
	const char *why;
	struct run r = {.mech = "SCRAM-SHA-256", .gs2 = "n,,", .pw = "pencil2", .user_known = true};

	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "proof mismatch");
	/* unknown user: even the right proof for the keys given fails */
	r.pw = "pencil";
	r.user_known = false;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "proof mismatch");
}

/* App passwords: several candidates share the salt; the proof picks one. */
static void
test_candidates(void **state)
{
	static const char *const two[] = {"main password", "pencil"};
	static const char *const none[] = {"main password", "app password"};
	static const char *const dup[] = {"pencil", "pencil"};
	const char *all[16];
	const char *why;
	struct run r = {.mech = "SCRAM-SHA-256", .gs2 = "n,,", .pw = "pencil", .user_known = true};

	/* two candidates with the same salt: the second matches, and the
	 * server signature (checked by run_exchange) is made with its key */
	r.cands = two;
	r.ncands = 2;
	r.want_label = "cand1";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
	r.mech = "SCRAM-SHA-1";
	assert_int_equal(run_exchange(&rfc5802, &r, &why), SASL_DONE);
	/* the first candidate too (the main password) */
	r.mech = "SCRAM-SHA-256";
	r.pw = "main password";
	r.want_label = "cand0";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
	/* no candidate matches: a wrong password */
	r.pw = "pencil";
	r.cands = none;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "proof mismatch");
	/* an unknown user's keys never succeed, even matching */
	r.cands = two;
	r.user_known = false;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "proof mismatch");
	r.user_known = true;
	/* the same keys twice: the first one is named */
	r.cands = dup;
	r.want_label = "cand0";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
	/* every candidate is checked: a match in the last slot of a full set,
	 * and none when that slot is not handed over */
	for (size_t i = 0; i < 16; i++)
		all[i] = i == 15 ? "pencil" : "other";
	r.cands = all;
	r.ncands = 16;
	r.want_label = "cand15";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
	r.ncands = 15;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "proof mismatch");
}

/* Without candidates (ncand 0), the single pair counts as one, unnamed. */
static void
test_candidates_single_pair(void **state)
{
	const char *why;
	struct run r = {.mech = "SCRAM-SHA-256",
	    .gs2 = "n,,",
	    .pw = "pencil",
	    .user_known = true,
	    .want_label = ""};

	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
}

static void
test_nonce_mismatch(void **state)
{
	const char *why;
	struct run r = {.mech = "SCRAM-SHA-256",
	    .gs2 = "n,,",
	    .pw = "pencil",
	    .user_known = true,
	    .tamper_nonce = true};

	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "nonce mismatch");
}

static void
test_channel_binding(void **state)
{
	const char *why;
	struct run r = {.mech = "SCRAM-SHA-256-PLUS",
	    .gs2 = "p=tls-exporter,,",
	    .cbind_extra = (const char *)cb_exporter,
	    .cbind_extralen = sizeof(cb_exporter),
	    .plus_offered = true,
	    .cb = cb_exporter,
	    .cblen = sizeof(cb_exporter),
	    .pw = "pencil",
	    .user_known = true};

	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
	r.mech = "SCRAM-SHA-1-PLUS";
	assert_int_equal(run_exchange(&rfc5802, &r, &why), SASL_DONE);
	/* the client binds to another channel (a man in the middle) */
	r.mech = "SCRAM-SHA-256-PLUS";
	r.cbind_extra = (const char *)cb_wrong;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	assert_string_equal(why, "channel binding mismatch");
	/* tls-unique asked for, but only tls-exporter exists (TLS 1.3) */
	r.gs2 = "p=tls-unique,,";
	r.cbind_extra = (const char *)cb_exporter;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	/* an unknown type */
	r.gs2 = "p=tls-server-end-point,,";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_FAILED);
	/* -PLUS without binding */
	r.gs2 = "n,,";
	r.cbind_extralen = 0;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_MALFORMED);
	r.gs2 = "y,,";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_MALFORMED);
}

static void
test_downgrade(void **state)
{
	const char *why;
	struct run r = {.mech = "SCRAM-SHA-256",
	    .gs2 = "y,,",
	    .plus_offered = true,
	    .pw = "pencil",
	    .user_known = true};

	/* RFC 5802 6: "y" while -PLUS was offered: someone removed it */
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_MALFORMED);
	assert_string_equal(why, "downgrade: flag y while -PLUS was offered");
	/* without -PLUS on offer, "y" is fine */
	r.plus_offered = false;
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_DONE);
	/* "p=" on a non-PLUS mechanism */
	r.gs2 = "p=tls-exporter,,";
	assert_int_equal(run_exchange(&rfc7677, &r, &why), SASL_MALFORMED);
}

static const struct {
	const char *msg;
	size_t len;
	int ok;
	const char *user;
} first_cases[] = {
    {S("n,,n=user,r=abc"), 0, "user"},
    {S("y,,n=user,r=abc"), 0, "user"},
    {S("p=tls-exporter,,n=user,r=abc"), 0, "user"},
    {S("n,a=user,n=user,r=abc"), 0, "user"},
    {S("n,,n=a=2Cb=3Dc,r=abc"), 0, "a,b=c"},
    {S("n,,n=user,r=abc,x=ext"), 0, "user"},
    {S("n,a=other,n=user,r=abc"), -1, NULL}, /* proxy login */
    {S("n,,m=ext,n=user,r=abc"), -1, NULL}, /* mandatory extension */
    {S("n,,n=,r=abc"), -1, NULL}, /* empty user */
    {S("n,,n=us=er,r=abc"), -1, NULL}, /* bad escape */
    {S("n,,n=user=2,r=abc"), -1, NULL}, /* truncated escape */
    {S("n,,n=user,r="), -1, NULL}, /* empty nonce */
    {S("n,,n=user,r=a b"), -1, NULL}, /* space in nonce */
    {S("n,,n=user"), -1, NULL}, /* no nonce */
    {S("n,,r=abc,n=user"), -1, NULL}, /* order */
    {S("x,,n=user,r=abc"), -1, NULL}, /* bad flag */
    {S("p=,,n=user,r=abc"), -1, NULL}, /* empty cb name */
    {S("p=tls_unique,,n=user,r=abc"), -1, NULL}, /* bad cb name */
    {S("n,n=user,r=abc"), -1, NULL}, /* no second comma */
    {S("n,,n=us\0er,r=abc"), -1, NULL}, /* NUL */
    {S("n,,n=user,r=abc,"), -1, NULL}, /* empty extension */
    {S("n,,n=user,r=abc,1=x"), -1, NULL}, /* extension name */
    {S(""), -1, NULL},
    {S("n"), -1, NULL},
    {S("n,,"), -1, NULL},
};

static void
test_parse_first(void **state)
{
	for (size_t i = 0; i < sizeof(first_cases) / sizeof(first_cases[0]); i++) {
		struct sasl_scram_first f;
		const char *why;
		int r = sasl_scram_parse_first(first_cases[i].msg, first_cases[i].len, &f, &why);

		if (r != first_cases[i].ok)
			fail_msg("case %zu: got %d (%s)", i, r, r == -1 ? why : "");
		if (r == 0) {
			assert_string_equal(f.user, first_cases[i].user);
			assert_int_equal(f.userlen, strlen(first_cases[i].user));
			assert_int_equal(f.noncelen, 3);
		} else {
			assert_non_null(why);
		}
	}
}

/* Every prefix of valid messages is parsed without harm (byte by byte). */
static void
test_parse_first_prefixes(void **state)
{
	static const char msg[] = "p=tls-exporter,a=a=2Cb,n=a=2Cb,r=fyko+d2lbbFgONRv9qkxdawL,e=x";
	struct sasl_scram_first f;
	const char *why;

	for (size_t n = 0; n < sizeof(msg) - 1; n++) {
		int r = sasl_scram_parse_first(msg, n, &f, &why);

		/* only prefixes that end inside the nonce or extension can be whole */
		if (r == 0)
			assert_true(n > strlen("p=tls-exporter,a=a=2Cb,n=a=2Cb,r="));
	}
	assert_int_equal(sasl_scram_parse_first(msg, sizeof(msg) - 1, &f, &why), 0);
	assert_string_equal(f.user, "a,b");
	assert_true(f.has_authzid);
	assert_int_equal(f.cbflag, 'p');
	assert_int_equal(f.cbnamelen, strlen("tls-exporter"));
}

/* Malformed messages through the mechanism end the exchange with a reason. */
static void
test_malformed_steps(void **state)
{
	static const char *const finals[] = {
	    "", "c=biws", "r=x,c=biws,p=abc", "c=!!!!,r=x,p=abc", "c=biws,p=abc"};
	struct sasl_keys sk;

	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		struct sasl_exchange *x = sasl_new(sasl_mech_find("SCRAM-SHA-256"));
		struct buf out;
		enum sasl_status st;

		buf_init(&out, 4096);
		assert_int_equal(sasl_step(x, S("n,,n=user,r=abc"), true, &out), SASL_NEED_KEYS);
		keys_for(&rfc7677, "pencil", &sk);
		sasl_set_keys(x, &sk, "user");
		assert_int_equal(sasl_resume(x, &out), SASL_CONTINUE);
		st = sasl_step(x, finals[i], strlen(finals[i]), true, &out);
		if (st != SASL_MALFORMED && st != SASL_FAILED)
			fail_msg("final %zu: status %d", i, st);
		assert_true(sasl_errstr(x)[0] != '\0');
		/* nothing more is accepted */
		assert_int_equal(sasl_step(x, S("x"), true, &out), SASL_MALFORMED);
		buf_free(&out);
		sasl_free(x);
	}
}

/* A nonce or message longer than SCRAM needs ends the exchange as too long
 * (501 5.5.2), before any key lookup, and at the limits it is accepted:
 * server-first, which echoes the nonce, stays small. */
static void
test_too_long(void **state)
{
	static const struct {
		size_t nonce; /* client nonce length */
		size_t ext; /* extension value length */
		enum sasl_status want;
	} cases[] = {
	    {1, 0, SASL_NEED_KEYS},
	    {256, 0, SASL_NEED_KEYS},
	    {257, 0, SASL_TOO_LONG},
	    {9202, 0, SASL_TOO_LONG},
	    {12000, 0, SASL_TOO_LONG},
	    {24, 1800, SASL_NEED_KEYS},
	    {24, 12000, SASL_TOO_LONG},
	};
	struct sasl_keys sk;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sasl_exchange *x = sasl_new(sasl_mech_find("SCRAM-SHA-256"));
		struct buf in, out;

		buf_init(&in, 32768);
		buf_init(&out, 12288);
		assert_int_equal(buf_append_str(&in, "n,,n=user,r="), 0);
		for (size_t k = 0; k < cases[i].nonce; k++)
			assert_int_equal(buf_append(&in, "N", 1), 0);
		if (cases[i].ext > 0) {
			assert_int_equal(buf_append_str(&in, ",x="), 0);
			for (size_t k = 0; k < cases[i].ext; k++)
				assert_int_equal(buf_append(&in, "e", 1), 0);
		}
		if (sasl_step(x, in.data, in.len, true, &out) != cases[i].want)
			fail_msg("case %zu: not status %d", i, cases[i].want);
		if (cases[i].want == SASL_TOO_LONG) {
			assert_true(strstr(sasl_errstr(x), "too long") != NULL);
		} else {
			keys_for(&rfc7677, "pencil", &sk);
			sasl_set_keys(x, &sk, "user");
			assert_int_equal(sasl_resume(x, &out), SASL_CONTINUE);
			assert_true(out.len < 512);
		}
		buf_free(&in);
		buf_free(&out);
		sasl_free(x);
	}
}

/* A client-final message past what its attributes can hold is too long. */
static void
test_final_too_long(void **state)
{
	struct sasl_exchange *x = sasl_new(sasl_mech_find("SCRAM-SHA-256"));
	struct sasl_keys sk;
	struct buf in, out;

	buf_init(&in, 32768);
	buf_init(&out, 12288);
	assert_int_equal(sasl_step(x, S("n,,n=user,r=abc"), true, &out), SASL_NEED_KEYS);
	keys_for(&rfc7677, "pencil", &sk);
	sasl_set_keys(x, &sk, "user");
	assert_int_equal(sasl_resume(x, &out), SASL_CONTINUE);
	assert_int_equal(buf_append_str(&in, "c=biws,r=abc"), 0);
	for (size_t k = 0; k < 12000; k++)
		assert_int_equal(buf_append(&in, "r", 1), 0);
	assert_int_equal(buf_append_str(&in, ",p=AAAA"), 0);
	assert_int_equal(sasl_step(x, in.data, in.len, true, &out), SASL_TOO_LONG);
	buf_free(&in);
	buf_free(&out);
	sasl_free(x);
}

/* --- CRAM-MD5 -------------------------------------------------------------- */

static void
test_cram_rfc2195(void **state)
{
	static const char ch[] = "<1896.697170952@postoffice.reston.mci.net>";
	unsigned char mac[16], d[16];
	unsigned n;
	const char *u;
	size_t ul;

	/* the RFC's example, checked with OpenSSL */
	assert_non_null(HMAC(
	    EVP_md5(), "tanstaaftanstaaf", 16, (const unsigned char *)ch, strlen(ch), mac, &n));
	assert_int_equal(
	    sasl_cram_parse_response(S("tim b913a602c7eda7a495b4e6e7334d3890"), &u, &ul, d), 0);
	assert_int_equal(ul, 3);
	assert_memory_equal(u, "tim", 3);
	assert_memory_equal(d, mac, 16);
	/* malformed responses */
	assert_int_equal(
	    sasl_cram_parse_response(S("tim b913a602c7eda7a495b4e6e7334d389"), &u, &ul, d), -1);
	assert_int_equal(
	    sasl_cram_parse_response(S("tim B913A602C7EDA7A495B4E6E7334D3890"), &u, &ul, d), -1);
	assert_int_equal(
	    sasl_cram_parse_response(S("timb913a602c7eda7a495b4e6e7334d3890x"), &u, &ul, d), -1);
	assert_int_equal(sasl_cram_parse_response(S(""), &u, &ul, d), -1);
}

static enum sasl_status
cram_run(const char *secret, const char *client_secret, bool known, char *challenge, size_t chlen)
{
	struct sasl_exchange *x = sasl_new(sasl_mech_find("CRAM-MD5"));
	struct sasl_context ctx;
	struct sasl_keys k;
	struct buf out;
	unsigned char mac[16];
	unsigned n;
	char resp[128];
	enum sasl_status st;

	memset(&ctx, 0, sizeof(ctx));
	ctx.hostname = "mail.example.test";
	ctx.now = 697170952;
	sasl_set_context(x, &ctx);
	buf_init(&out, 1024);
	assert_int_equal(sasl_step(x, NULL, 0, false, &out), SASL_CONTINUE);
	snprintf(challenge, chlen, "%.*s", (int)out.len, out.data);
	assert_non_null(HMAC(EVP_md5(), client_secret, (int)strlen(client_secret),
	    (const unsigned char *)out.data, out.len, mac, &n));
	n = (unsigned)snprintf(resp, sizeof(resp), "tim ");
	for (int i = 0; i < 16; i++)
		n += (unsigned)snprintf(resp + n, sizeof(resp) - n, "%02x", mac[i]);
	assert_int_equal(sasl_step(x, resp, n, true, &out), SASL_NEED_KEYS);
	assert_string_equal(sasl_user(x), "tim");
	assert_int_equal(sasl_keys_kind(x), SASL_KEYS_CRAM_MD5);
	memset(&k, 0, sizeof(k));
	memcpy(k.secret, secret, strlen(secret));
	k.secretlen = strlen(secret);
	sasl_set_keys(x, &k, known ? "tim" : NULL);
	st = sasl_resume(x, &out);
	buf_free(&out);
	sasl_free(x);
	return st;
}

static void
test_cram_exchange(void **state)
{
	char c1[256], c2[256];

	assert_int_equal(
	    cram_run("tanstaaftanstaaf", "tanstaaftanstaaf", true, c1, sizeof(c1)), SASL_DONE);
	/* RFC 2195 2: "<random.time@hostname>", unique */
	assert_int_equal(c1[0], '<');
	assert_non_null(strstr(c1, ".697170952@mail.example.test>"));
	assert_int_equal(cram_run("tanstaaftanstaaf", "wrong", true, c2, sizeof(c2)), SASL_FAILED);
	assert_string_not_equal(c1, c2);
	assert_int_equal(
	    cram_run("tanstaaftanstaaf", "tanstaaftanstaaf", false, c2, sizeof(c2)), SASL_FAILED);
}

static void
test_cram_initial_response(void **state)
{
	struct sasl_exchange *x = sasl_new(sasl_mech_find("CRAM-MD5"));
	struct buf out;

	buf_init(&out, 1024);
	assert_int_equal(sasl_step(x, S("tim 00"), true, &out), SASL_MALFORMED);
	buf_free(&out);
	sasl_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_client),
	    cmocka_unit_test(test_rfc_exchanges),
	    cmocka_unit_test(test_wrong_password_and_unknown_user),
	    cmocka_unit_test(test_candidates),
	    cmocka_unit_test(test_candidates_single_pair),
	    cmocka_unit_test(test_nonce_mismatch),
	    cmocka_unit_test(test_channel_binding),
	    cmocka_unit_test(test_downgrade),
	    cmocka_unit_test(test_parse_first),
	    cmocka_unit_test(test_parse_first_prefixes),
	    cmocka_unit_test(test_malformed_steps),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_final_too_long),
	    cmocka_unit_test(test_cram_rfc2195),
	    cmocka_unit_test(test_cram_exchange),
	    cmocka_unit_test(test_cram_initial_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
