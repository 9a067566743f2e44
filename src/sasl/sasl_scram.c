/*
 * sasl_scram: SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants (RFC 5802,
 * RFC 7677) on GNU SASL's server side, from stored keys only.
 *
 * libgsasl asks for the salt, iteration count and keys synchronously inside
 * gsasl_step() on the client-first message, but our keys come from the
 * authdb asynchronously (DESIGN 1). So the client-first message is parsed
 * here first (sasl_scram_parse_first: enough to get the user name and to
 * check the GS2 header), the step ends in SASL_NEED_KEYS, and only when the
 * session has handed over the keys (sasl_set_keys) does sasl_resume() give
 * the saved message to gsasl, with every property it will ask for already
 * set on the Gsasl_session: no gsasl callback ever runs (the one installed
 * answers GSASL_NO_CALLBACK).
 *
 * States: 0 new; 1 empty challenge sent, waiting for client-first; 2 keys
 * asked for; 3 server-first sent; 4 server-final ("v=") sent in a 334,
 * waiting for the client's empty response (RFC 4954 4 carries no data with
 * 235); 5 ended.
 *
 * Checks made here before gsasl sees a message, so that the log can say
 * what was wrong: the GS2 header against the mechanism (RFC 5802 6: "p="
 * on a non-PLUS mechanism, "n"/"y" on -PLUS, "y" when a -PLUS variant was
 * advertised, an unknown or unavailable channel binding type), and in the
 * client-final message the c= value (GS2 header plus channel binding data)
 * and the nonce. gsasl repeats them and checks the proof.
 *
 * Several credentials per user (app passwords). All SCRAM credentials of a
 * user share one salt and iteration count per hash (`smtpgate user` derives
 * them so), and the authdb hands over every active one with the announced
 * salt as a candidate (struct sasl_keys cand[]). At client-final, before
 * gsasl sees it, sasl_scram_match finds the candidate the proof was made
 * with (RFC 5802 3: ClientKey = ClientProof XOR HMAC(StoredKey_i,
 * AuthMessage), a match when H(ClientKey) == StoredKey_i), always over
 * SASL_SCRAM_CAND_MAX slots (unused ones with dummy keys) and without an
 * early exit, so the work does not depend on how many credentials the user
 * has, or whether the user exists. Only then are GSASL_SCRAM_STOREDKEY and
 * GSASL_SCRAM_SERVERKEY set, to the matching candidate's: gsasl 2.2 reads
 * them in its client-final step (lib/scram/server.c, step 1), not before,
 * so gsasl still checks the proof again and computes the server signature.
 *
 * Threads: one Gsasl handle for the process, made once (pthread_once);
 * gsasl keeps no mutable state in it after gsasl_init, and each exchange
 * has its own Gsasl_session, used by one loop thread only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "sasl/sasl.h"
#include "sasl/sasl_priv.h"
#include "sasl/sasl_scram.h"

#define SASL_SCRAM_MSG_MAX 12288 /* RFC 4954 4: SASL_LINE_MAX decoded is less */
/*
 * RFC 5802 sets no length on the client's nonce; clients send 18 to 64
 * characters. A longer one would only grow server-first (which echoes it)
 * and the AuthMessage, so it is refused as too long (501 5.5.2), as is a
 * client-first or client-final message past what its attributes can need:
 * GS2 header and user (SASL_USER_MAX, each byte escaped as "=2C" at worst),
 * the nonce, and channel binding data of SASL_CB_DATA_MAX in base64.
 */
#define SASL_SCRAM_NONCE_MAX 256
#define SASL_SCRAM_FIRST_MAX (2 * 3 * SASL_USER_MAX + SASL_SCRAM_NONCE_MAX + 256)
#define SASL_SCRAM_FINAL_MAX (SASL_SCRAM_FIRST_MAX + 2 * SASL_SCRAM_NONCE_MAX)

enum sasl_scram_hash {
	SASL_SCRAM_SHA1,
	SASL_SCRAM_SHA256,
};

struct sasl_scram_state {
	Gsasl_session *gs;
	char *first; /* client-first-message, NUL-terminated */
	size_t firstlen;
	size_t gs2len; /* its gs2-header, up to and including the second ',' */
	char cbflag;
	enum sasl_cb_type cbtype; /* for cbflag 'p' */
	char *nonce; /* the combined nonce of server-first */
	char *server_first; /* server-first-message as gsasl made it (AuthMessage) */
	size_t server_firstlen;
	int matched; /* the candidate whose proof matched, or -1 */
};

static pthread_once_t sasl_gsasl_once = PTHREAD_ONCE_INIT;
static Gsasl *sasl_gsasl;

static int
sasl_gsasl_cb(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
	/* every property is set before gsasl_step: nothing to answer here */
	return GSASL_NO_CALLBACK;
}

static void
sasl_gsasl_init(void)
{
	if (gsasl_init(&sasl_gsasl) != GSASL_OK) {
		sasl_gsasl = NULL;
		return;
	}
	gsasl_callback_set(sasl_gsasl, sasl_gsasl_cb);
}

static bool
sasl_scram_is_plus(const struct sasl_exchange *x)
{
	return (x->mech->flags & SASL_F_PLUS) != 0;
}

static bool
sasl_scram_is_sha1(const struct sasl_exchange *x)
{
	return x->mech->variant == SASL_SCRAM_SHA1;
}

/* Decodes a saslname (RFC 5802 5.1) of n bytes into out (max bytes). */
static int
sasl_scram_saslname(const char *p, size_t n, char *out, size_t max, size_t *len_r)
{
	size_t o = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == ',' || c == '\0')
			return -1;
		if (c == '=') {
			if (i + 2 >= n)
				return -1;
			if (p[i + 1] == '2' && p[i + 2] == 'C')
				c = ',';
			else if (p[i + 1] == '3' && p[i + 2] == 'D')
				c = '=';
			else
				return -1;
			i += 2;
		}
		if (o >= max)
			return -1;
		out[o++] = c;
	}
	*len_r = o;
	return 0;
}

static bool
sasl_scram_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The end of the field starting at p: the next ',' or end. */
static const char *
sasl_scram_field_end(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return c != NULL ? c : end;
}

int
sasl_scram_parse_first(
    const char *msg, size_t len, struct sasl_scram_first *r, const char **errstr_r)
{
	const char *p = msg, *end = msg + len, *f;
	char authzid[SASL_USER_MAX + 1];
	size_t zlen = 0;

	memset(r, 0, sizeof(*r));
	*errstr_r = "malformed client-first message";
	if (len == 0) {
		*errstr_r = "empty client-first message";
		return -1;
	}
	if (len > SASL_SCRAM_MSG_MAX || memchr(msg, '\0', len) != NULL) {
		*errstr_r = "NUL byte or over-long client-first message";
		return -1;
	}
	/* gs2-cbind-flag */
	if (end - p >= 2 && (p[0] == 'n' || p[0] == 'y') && p[1] == ',') {
		r->cbflag = p[0];
		p += 2;
	} else if (end - p >= 2 && p[0] == 'p' && p[1] == '=') {
		r->cbflag = 'p';
		p += 2;
		f = sasl_scram_field_end(p, end);
		if (f == p || f == end) {
			*errstr_r = "bad channel binding name";
			return -1;
		}
		for (const char *q = p; q < f; q++) {
			if (!sasl_scram_is_alpha(*q) && !(*q >= '0' && *q <= '9') && *q != '.' &&
			    *q != '-') {
				*errstr_r = "bad channel binding name";
				return -1;
			}
		}
		r->cbname = p;
		r->cbnamelen = (size_t)(f - p);
		p = f + 1;
	} else {
		*errstr_r = "bad GS2 channel binding flag";
		return -1;
	}
	/* [ authzid ] "," */
	if (end - p >= 2 && p[0] == 'a' && p[1] == '=') {
		p += 2;
		f = sasl_scram_field_end(p, end);
		if (f == end ||
		    sasl_scram_saslname(p, (size_t)(f - p), authzid, SASL_USER_MAX, &zlen) == -1) {
			*errstr_r = "bad authzid";
			return -1;
		}
		r->has_authzid = true;
		p = f;
	}
	if (p >= end || *p != ',') {
		*errstr_r = "bad GS2 header";
		return -1;
	}
	p++;
	r->bare = p;
	r->barelen = (size_t)(end - p);
	/* RFC 5802 5.1: "m" is reserved; a server must fail on it */
	if (end - p >= 2 && p[0] == 'm' && p[1] == '=') {
		*errstr_r = "unsupported mandatory extension m=";
		return -1;
	}
	if (end - p < 2 || p[0] != 'n' || p[1] != '=') {
		*errstr_r = "no username attribute";
		return -1;
	}
	p += 2;
	f = sasl_scram_field_end(p, end);
	if (sasl_scram_saslname(p, (size_t)(f - p), r->user, SASL_USER_MAX, &r->userlen) == -1) {
		*errstr_r = "bad username";
		return -1;
	}
	r->user[r->userlen] = '\0';
	p = f;
	if (end - p < 3 || p[0] != ',' || p[1] != 'r' || p[2] != '=') {
		*errstr_r = "no nonce attribute";
		return -1;
	}
	p += 3;
	f = sasl_scram_field_end(p, end);
	if (f == p) {
		*errstr_r = "empty nonce";
		return -1;
	}
	for (const char *q = p; q < f; q++) {
		/* printable = %x21-2B / %x2D-7E */
		if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e) {
			*errstr_r = "bad nonce";
			return -1;
		}
	}
	r->nonce = p;
	r->noncelen = (size_t)(f - p);
	p = f;
	/* extensions: "," ALPHA "=" 1*value-char */
	while (p < end) {
		p++; /* the ',' */
		f = sasl_scram_field_end(p, end);
		if (f - p < 3 || !sasl_scram_is_alpha(p[0]) || p[1] != '=') {
			*errstr_r = "bad extension attribute";
			return -1;
		}
		p = f;
	}
	/* RFC 4616-like rule: no proxy login, an authzid must name the user */
	if (r->has_authzid && (zlen != r->userlen || memcmp(authzid, r->user, zlen) != 0)) {
		*errstr_r = "authzid differs from the user";
		return -1;
	}
	*errstr_r = NULL;
	return 0;
}

static enum sasl_status
sasl_scram_fail(struct sasl_exchange *x, enum sasl_status st, const char *why)
{
	x->errstr = why;
	x->state = 5;
	return st;
}

/* Checks the GS2 header of the client-first message against the mechanism
 * and the channel binding available (RFC 5802 6). */
static enum sasl_status
sasl_scram_check_gs2(struct sasl_exchange *x, const struct sasl_scram_first *f)
{
	struct sasl_scram_state *st = x->scram;

	if (!sasl_scram_is_plus(x)) {
		if (f->cbflag == 'p')
			return sasl_scram_fail(
			    x, SASL_MALFORMED, "channel binding requested on a non-PLUS mechanism");
		/* "y": the client could bind but thinks the server cannot; we
		 * advertised -PLUS, so someone removed it: a downgrade */
		if (f->cbflag == 'y' && x->ctx.plus_offered)
			return sasl_scram_fail(
			    x, SASL_MALFORMED, "downgrade: flag y while -PLUS was offered");
		return SASL_CONTINUE;
	}
	if (f->cbflag != 'p')
		return sasl_scram_fail(
		    x, SASL_MALFORMED, "-PLUS mechanism without channel binding");
	if (f->cbnamelen == strlen("tls-exporter") &&
	    memcmp(f->cbname, "tls-exporter", f->cbnamelen) == 0)
		st->cbtype = SASL_CB_TLS_EXPORTER;
	else if (f->cbnamelen == strlen("tls-unique") &&
	    memcmp(f->cbname, "tls-unique", f->cbnamelen) == 0)
		st->cbtype = SASL_CB_TLS_UNIQUE;
	else
		return sasl_scram_fail(x, SASL_FAILED, "unsupported channel binding type");
	if (x->ctx.cblen[st->cbtype] == 0)
		return sasl_scram_fail(
		    x, SASL_FAILED, "channel binding type not available on this TLS session");
	return SASL_CONTINUE;
}

static enum sasl_status
sasl_scram_first(struct sasl_exchange *x, const char *in, size_t inlen)
{
	struct sasl_scram_first f;
	const char *why;
	enum sasl_status s;

	if (inlen > SASL_SCRAM_FIRST_MAX)
		return sasl_scram_fail(x, SASL_TOO_LONG, "client-first message too long");
	if (sasl_scram_parse_first(in, inlen, &f, &why) == -1)
		return sasl_scram_fail(x, SASL_MALFORMED, why);
	if (f.noncelen > SASL_SCRAM_NONCE_MAX)
		return sasl_scram_fail(x, SASL_TOO_LONG, "client nonce too long");
	x->scram = xcalloc(1, sizeof(*x->scram));
	x->scram->cbflag = f.cbflag;
	if ((s = sasl_scram_check_gs2(x, &f)) != SASL_CONTINUE)
		return s;
	x->scram->first = xstrndup(in, inlen);
	x->scram->firstlen = inlen;
	x->scram->gs2len = (size_t)(f.bare - in);
	sasl_set_user(x, f.user, f.userlen);
	x->keys_kind = sasl_scram_is_sha1(x) ? SASL_KEYS_SCRAM_SHA1 : SASL_KEYS_SCRAM_SHA256;
	x->state = 2;
	return SASL_NEED_KEYS;
}

static int
sasl_scram_set_b64(Gsasl_session *gs, Gsasl_property prop, const unsigned char *p, size_t n)
{
	struct buf b;
	int r = -1;

	buf_init(&b, 2 * SASL_SCRAM_SALT_MAX + 8);
	buf_set_secret(&b);
	if (base64_encode(p, n, &b) == 0 && buf_append(&b, "", 1) == 0 &&
	    gsasl_property_set(gs, prop, b.data) == GSASL_OK)
		r = 0;
	buf_free(&b);
	return r;
}

/* Starts gsasl with the keys and feeds it the saved client-first message. */
static enum sasl_status
sasl_scram_resume(struct sasl_exchange *x, struct buf *out)
{
	struct sasl_scram_state *st = x->scram;
	const struct sasl_keys *k = &x->keys;
	char iter[16], *gout = NULL, *n, *e;
	size_t goutlen = 0, want = sasl_scram_is_sha1(x) ? 20 : 32;
	int rc;

	if (x->state != 2 || st == NULL || !x->has_keys)
		return sasl_scram_fail(x, SASL_MALFORMED, "resume without keys");
	pthread_once(&sasl_gsasl_once, sasl_gsasl_init);
	if (sasl_gsasl == NULL)
		return sasl_scram_fail(x, SASL_FAILED, "gsasl_init failed");
	if (k->keylen != want || k->saltlen == 0 || k->saltlen > SASL_SCRAM_SALT_MAX ||
	    k->iter == 0 || k->ncand > SASL_SCRAM_CAND_MAX)
		return sasl_scram_fail(x, SASL_FAILED, "stored keys do not fit the mechanism");
	if (k->ncand == 0) {
		/* the single unnamed pair: candidate 0 */
		memset(&x->keys.cand[0], 0, sizeof(x->keys.cand[0]));
		memcpy(x->keys.cand[0].stored_key, k->stored_key, k->keylen);
		memcpy(x->keys.cand[0].server_key, k->server_key, k->keylen);
		x->keys.ncand = 1;
	}
	st->matched = -1;
	if (gsasl_server_start(sasl_gsasl, x->mech->name, &st->gs) != GSASL_OK)
		return sasl_scram_fail(x, SASL_FAILED, "gsasl_server_start failed");
	snprintf(iter, sizeof(iter), "%u", k->iter);
	/* StoredKey and ServerKey are set at client-final, once the proof
	 * tells which candidate they are (sasl_scram_final) */
	if (gsasl_property_set(st->gs, GSASL_SCRAM_ITER, iter) != GSASL_OK ||
	    sasl_scram_set_b64(st->gs, GSASL_SCRAM_SALT, k->salt, k->saltlen) == -1)
		return sasl_scram_fail(x, SASL_FAILED, "gsasl_property_set failed");
	if (st->cbflag == 'p' &&
	    sasl_scram_set_b64(st->gs,
	        st->cbtype == SASL_CB_TLS_EXPORTER ? GSASL_CB_TLS_EXPORTER : GSASL_CB_TLS_UNIQUE,
	        x->ctx.cb[st->cbtype], x->ctx.cblen[st->cbtype]) == -1)
		return sasl_scram_fail(x, SASL_FAILED, "gsasl_property_set failed");
	rc = gsasl_step(st->gs, st->first, st->firstlen, &gout, &goutlen);
	if (rc != GSASL_NEEDS_MORE) {
		gsasl_free(gout);
		/* e.g. a user name that fails SASLprep */
		return sasl_scram_fail(x, SASL_MALFORMED,
		    rc == GSASL_MECHANISM_PARSE_ERROR ? "gsasl: client-first parse error"
		                                      : "gsasl refused client-first");
	}
	/* remember the combined nonce: server-first is "r=NONCE,s=...,i=..." */
	if (goutlen < 2 || memcmp(gout, "r=", 2) != 0 || (e = memchr(gout, ',', goutlen)) == NULL) {
		gsasl_free(gout);
		return sasl_scram_fail(x, SASL_FAILED, "gsasl: unexpected server-first");
	}
	n = xstrndup(gout + 2, (size_t)(e - gout - 2));
	free(st->nonce);
	st->nonce = n;
	/* part of the AuthMessage the proof is checked against */
	free(st->server_first);
	st->server_first = xstrndup(gout, goutlen);
	st->server_firstlen = goutlen;
	if (buf_append(out, gout, goutlen) == -1) {
		gsasl_free(gout);
		return sasl_scram_fail(x, SASL_FAILED, "challenge too long");
	}
	gsasl_free(gout);
	x->state = 3;
	return SASL_CONTINUE;
}

/* Checks c= and r= of client-final (RFC 5802 7) so the log can tell a
 * channel binding or nonce mismatch from a wrong proof. */
static enum sasl_status
sasl_scram_check_final(struct sasl_exchange *x, const char *in, size_t inlen)
{
	struct sasl_scram_state *st = x->scram;
	const char *p = in, *end = in + inlen, *f;
	struct buf cb;
	size_t cblen = st->cbflag == 'p' ? x->ctx.cblen[st->cbtype] : 0;
	bool same;

	if (inlen > SASL_SCRAM_FINAL_MAX)
		return sasl_scram_fail(x, SASL_TOO_LONG, "client-final message too long");
	if (memchr(in, '\0', inlen) != NULL || end - p < 2 || memcmp(p, "c=", 2) != 0)
		return sasl_scram_fail(
		    x, SASL_MALFORMED, "client-final: no channel binding attribute");
	p += 2;
	f = sasl_scram_field_end(p, end);
	buf_init(&cb, SASL_SCRAM_MSG_MAX);
	if (base64_decode(p, (size_t)(f - p), &cb) == -1) {
		buf_free(&cb);
		return sasl_scram_fail(x, SASL_MALFORMED, "client-final: bad base64 in c=");
	}
	same = cb.len == st->gs2len + cblen && memcmp(cb.data, st->first, st->gs2len) == 0 &&
	    (cblen == 0 || memcmp(cb.data + st->gs2len, x->ctx.cb[st->cbtype], cblen) == 0);
	buf_free(&cb);
	if (!same)
		return sasl_scram_fail(x, SASL_FAILED, "channel binding mismatch");
	p = f;
	if (end - p < 3 || memcmp(p, ",r=", 3) != 0)
		return sasl_scram_fail(x, SASL_MALFORMED, "client-final: no nonce attribute");
	p += 3;
	f = sasl_scram_field_end(p, end);
	if ((size_t)(f - p) != strlen(st->nonce) || memcmp(p, st->nonce, (size_t)(f - p)) != 0)
		return sasl_scram_fail(x, SASL_FAILED, "nonce mismatch");
	return SASL_CONTINUE;
}

/*
 * Which candidate made the proof of client-final in/inlen (RFC 5802 3):
 * for each, ClientSignature = HMAC(StoredKey_i, AuthMessage), ClientKey =
 * ClientProof XOR ClientSignature, a match when H(ClientKey) == StoredKey_i.
 * AuthMessage = client-first-message-bare "," server-first-message ","
 * client-final-message-without-proof. Always SASL_SCRAM_CAND_MAX rounds
 * (dummy keys past ncand), no early exit, CRYPTO_memcmp: the same work for
 * any user. *match_r: the first matching index, or -1. SASL_CONTINUE, or
 * the failure to return.
 */
static enum sasl_status
sasl_scram_match(struct sasl_exchange *x, const char *in, size_t inlen, int *match_r)
{
	struct sasl_scram_state *st = x->scram;
	const struct sasl_keys *k = &x->keys;
	const EVP_MD *md = sasl_scram_is_sha1(x) ? EVP_sha1() : EVP_sha256();
	const char *p;
	unsigned char proof[SASL_KEY_MAX], sig[EVP_MAX_MD_SIZE], h[EVP_MAX_MD_SIZE];
	unsigned char dummy[SASL_KEY_MAX];
	unsigned int siglen, hlen;
	struct buf am, b;
	int match = -1;
	enum sasl_status r = SASL_CONTINUE;

	*match_r = -1;
	/* the proof is the last attribute (RFC 5802 7); no earlier value can
	 * hold a ',' so the first ",p=" starts it */
	p = memmem(in, inlen, ",p=", 3);
	if (p == NULL)
		return sasl_scram_fail(x, SASL_MALFORMED, "client-final: no proof attribute");
	buf_init(&b, 2 * SASL_KEY_MAX);
	buf_set_secret(&b);
	if (base64_decode(p + 3, inlen - (size_t)(p + 3 - in), &b) == -1 || b.len != k->keylen) {
		buf_free(&b);
		return sasl_scram_fail(x, SASL_MALFORMED, "client-final: bad proof");
	}
	memcpy(proof, b.data, b.len);
	buf_free(&b);
	buf_init(&am, 3 * SASL_SCRAM_MSG_MAX);
	buf_set_secret(&am);
	if (buf_append(&am, st->first + st->gs2len, st->firstlen - st->gs2len) == -1 ||
	    buf_append(&am, ",", 1) == -1 ||
	    buf_append(&am, st->server_first, st->server_firstlen) == -1 ||
	    buf_append(&am, ",", 1) == -1 || buf_append(&am, in, (size_t)(p - in)) == -1) {
		r = sasl_scram_fail(x, SASL_FAILED, "AuthMessage too long");
		goto fail;
	}
	memset(dummy, 0x5c, sizeof(dummy));
	for (size_t i = 0; i < SASL_SCRAM_CAND_MAX; i++) {
		bool real = i < k->ncand;
		const unsigned char *sk = real ? k->cand[i].stored_key : dummy;
		int eq;

		if (HMAC(md, sk, (int)k->keylen, (const unsigned char *)am.data, am.len, sig,
		        &siglen) == NULL ||
		    siglen != k->keylen) {
			r = sasl_scram_fail(x, SASL_FAILED, "HMAC failed");
			goto fail;
		}
		for (size_t j = 0; j < k->keylen; j++)
			sig[j] ^= proof[j];
		if (EVP_Digest(sig, k->keylen, h, &hlen, md, NULL) != 1 || hlen != k->keylen) {
			r = sasl_scram_fail(x, SASL_FAILED, "digest failed");
			goto fail;
		}
		eq = CRYPTO_memcmp(h, sk, k->keylen) == 0;
		if (eq && real && match == -1)
			match = (int)i;
	}
	*match_r = match;
fail:
	explicit_bzero(proof, sizeof(proof));
	explicit_bzero(sig, sizeof(sig));
	explicit_bzero(h, sizeof(h));
	buf_free(&am);
	return r;
}

static enum sasl_status
sasl_scram_final(struct sasl_exchange *x, const char *in, size_t inlen, struct buf *out)
{
	struct sasl_scram_state *st = x->scram;
	const struct sasl_scram_cand *c;
	char *gout = NULL;
	size_t goutlen = 0;
	enum sasl_status s;
	int rc, match;

	if ((s = sasl_scram_check_final(x, in, inlen)) != SASL_CONTINUE)
		return s;
	if ((s = sasl_scram_match(x, in, inlen, &match)) != SASL_CONTINUE)
		return s;
	/* an unknown user's fake keys match nothing; never succeed anyway */
	if (match < 0 || !x->user_known)
		return sasl_scram_fail(x, SASL_FAILED, "proof mismatch");
	/* gsasl 2.2 reads these at client-final (its step 1): the matched
	 * candidate's, so gsasl checks the proof again and signs */
	c = &x->keys.cand[match];
	if (sasl_scram_set_b64(st->gs, GSASL_SCRAM_STOREDKEY, c->stored_key, x->keys.keylen) ==
	        -1 ||
	    sasl_scram_set_b64(st->gs, GSASL_SCRAM_SERVERKEY, c->server_key, x->keys.keylen) == -1)
		return sasl_scram_fail(x, SASL_FAILED, "gsasl_property_set failed");
	rc = gsasl_step(st->gs, in, inlen, &gout, &goutlen);
	if (rc != GSASL_OK) {
		gsasl_free(gout);
		if (rc == GSASL_MECHANISM_PARSE_ERROR || rc == GSASL_BASE64_ERROR)
			return sasl_scram_fail(x, SASL_MALFORMED, "client-final: parse error");
		return sasl_scram_fail(x, SASL_FAILED, "proof mismatch");
	}
	if (buf_append(out, gout, goutlen) == -1) {
		gsasl_free(gout);
		return sasl_scram_fail(x, SASL_FAILED, "challenge too long");
	}
	gsasl_free(gout);
	st->matched = match;
	x->state = 4;
	return SASL_CONTINUE;
}

static enum sasl_status
sasl_scram_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	switch (x->state) {
	case 0:
		if (!has_input) {
			/* RFC 4954 4: empty challenge; the client sends client-first */
			x->state = 1;
			return SASL_CONTINUE;
		}
		return sasl_scram_first(x, in, inlen);
	case 1:
		if (!has_input)
			break;
		return sasl_scram_first(x, in, inlen);
	case 3:
		if (!has_input)
			break;
		return sasl_scram_final(x, in, inlen, out);
	case 4:
		/* the answer to our 334 carrying "v=": must be empty */
		if (!has_input || inlen != 0)
			return sasl_scram_fail(x, SASL_MALFORMED, "data after server-final");
		x->state = 5;
		return SASL_DONE;
	default:
		break;
	}
	return sasl_scram_fail(x, SASL_MALFORMED, "unexpected step");
}

static void
sasl_scram_free(struct sasl_exchange *x)
{
	struct sasl_scram_state *st = x->scram;

	if (st == NULL)
		return;
	if (st->gs != NULL)
		gsasl_finish(st->gs);
	free(st->first);
	free(st->nonce);
	free(st->server_first);
	free(st);
	x->scram = NULL;
}

bool
sasl_matched_cred(const struct sasl_exchange *x, const char **label_r, const char **created_r)
{
	const struct sasl_scram_state *st = x->scram;

	*label_r = *created_r = "";
	if (st == NULL || x->state != 5 || st->matched < 0 ||
	    (size_t)st->matched >= x->keys.ncand || x->errstr != NULL)
		return false;
	*label_r = x->keys.cand[st->matched].label;
	*created_r = x->keys.cand[st->matched].created;
	return true;
}

#define SASL_SCRAM_MECH(var, mname, mflags, v)                                                     \
	const struct sasl_mech var = {                                                             \
	    .name = mname,                                                                         \
	    .flags = mflags,                                                                       \
	    .variant = v,                                                                          \
	    .step = sasl_scram_step,                                                               \
	    .resume = sasl_scram_resume,                                                           \
	    .free = sasl_scram_free,                                                               \
	}

SASL_SCRAM_MECH(sasl_scram_mech_sha1, "SCRAM-SHA-1", 0, SASL_SCRAM_SHA1);
SASL_SCRAM_MECH(sasl_scram_mech_sha1_plus, "SCRAM-SHA-1-PLUS", SASL_F_PLUS, SASL_SCRAM_SHA1);
SASL_SCRAM_MECH(sasl_scram_mech_sha256, "SCRAM-SHA-256", 0, SASL_SCRAM_SHA256);
SASL_SCRAM_MECH(sasl_scram_mech_sha256_plus, "SCRAM-SHA-256-PLUS", SASL_F_PLUS, SASL_SCRAM_SHA256);
