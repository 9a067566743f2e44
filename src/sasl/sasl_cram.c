/*
 * sasl_cram: CRAM-MD5 (RFC 2195), a weak legacy mechanism offered only when
 * listed in [auth] mechanisms. The server needs the HMAC-MD5 key, which is
 * plaintext-equivalent (doc/passwd.5.md {CRAM-MD5}).
 *
 * States: 0 new (an initial response is refused: the server speaks first);
 * 1 challenge sent; 2 keys asked for; 3 ended.
 *
 * The challenge is "<RANDOM.TIME@HOSTNAME>" (RFC 2195 2: unique, a
 * msg-id): 64 random bits from OpenSSL, the time and hostname from the
 * session's context, so no two challenges repeat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lib/hex.h"
#include "lib/xalloc.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_priv.h"

int
sasl_cram_parse_response(
    const char *msg, size_t len, const char **user_r, size_t *userlen_r, unsigned char digest_r[16])
{
	const char *sp;
	size_t ulen;

	/* user SP digest: the digest is the last 32 bytes (the user may hold spaces) */
	if (len < 34 || len - 33 > SASL_USER_MAX)
		return -1;
	sp = msg + len - 33;
	if (*sp != ' ')
		return -1;
	ulen = (size_t)(sp - msg);
	if (memchr(msg, '\0', ulen) != NULL)
		return -1;
	for (size_t i = 0; i < 16; i++) {
		int hi = hex_digit(sp[1 + 2 * i], false), lo = hex_digit(sp[2 + 2 * i], false);

		if (hi < 0 || lo < 0)
			return -1;
		digest_r[i] = (unsigned char)(hi << 4 | lo);
	}
	*user_r = msg;
	*userlen_r = ulen;
	return 0;
}

static enum sasl_status
sasl_cram_end(struct sasl_exchange *x, enum sasl_status s, const char *why)
{
	x->errstr = why;
	x->state = 3;
	return s;
}

static enum sasl_status
sasl_cram_step(
    struct sasl_exchange *x, const char *in, size_t inlen, bool has_input, struct buf *out)
{
	unsigned long long rnd;
	const char *user;
	size_t ulen;
	int n;
	char *ch;

	switch (x->state) {
	case 0:
		if (has_input)
			return sasl_cram_end(x, SASL_MALFORMED, "initial response to CRAM-MD5");
		if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
			return sasl_cram_end(x, SASL_FAILED, "RAND_bytes failed");
		n = snprintf(NULL, 0, "<%llu.%lld@%s>", rnd, x->ctx.now,
		    x->hostname != NULL ? x->hostname : "localhost");
		ch = xmalloc((size_t)n + 1);
		snprintf(ch, (size_t)n + 1, "<%llu.%lld@%s>", rnd, x->ctx.now,
		    x->hostname != NULL ? x->hostname : "localhost");
		free(x->cram_challenge);
		x->cram_challenge = ch;
		if (buf_append_str(out, ch) == -1)
			return sasl_cram_end(x, SASL_FAILED, "challenge too long");
		x->state = 1;
		return SASL_CONTINUE;
	case 1:
		if (!has_input ||
		    sasl_cram_parse_response(in, inlen, &user, &ulen, x->cram_digest) == -1 ||
		    ulen == 0)
			return sasl_cram_end(x, SASL_MALFORMED, "malformed CRAM-MD5 response");
		sasl_set_user(x, user, ulen);
		x->keys_kind = SASL_KEYS_CRAM_MD5;
		x->state = 2;
		return SASL_NEED_KEYS;
	default:
		return sasl_cram_end(x, SASL_MALFORMED, "unexpected step");
	}
}

static enum sasl_status
sasl_cram_resume(struct sasl_exchange *x, struct buf *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	bool match;

	if (x->state != 2 || !x->has_keys)
		return sasl_cram_end(x, SASL_MALFORMED, "resume without keys");
	if (x->keys.secretlen == 0 || x->keys.secretlen > SASL_KEY_MAX ||
	    HMAC(EVP_md5(), x->keys.secret, (int)x->keys.secretlen,
	        (const unsigned char *)x->cram_challenge, strlen(x->cram_challenge), mac,
	        &maclen) == NULL ||
	    maclen != 16)
		return sasl_cram_end(x, SASL_FAILED, "HMAC-MD5 failed");
	match = CRYPTO_memcmp(mac, x->cram_digest, 16) == 0;
	explicit_bzero(mac, sizeof(mac));
	if (!match || !x->user_known)
		return sasl_cram_end(x, SASL_FAILED, "digest mismatch");
	x->state = 3;
	return SASL_DONE;
}

static void
sasl_cram_free(struct sasl_exchange *x)
{
	free(x->cram_challenge);
	x->cram_challenge = NULL;
}

const char *
sasl_cram_challenge(const struct sasl_exchange *x)
{
	return x->mech == &sasl_cram_mech && x->cram_challenge != NULL ? x->cram_challenge : "";
}

int
sasl_cram_restore(struct sasl_exchange *x, const char *chal, size_t len)
{
	if (x->mech != &sasl_cram_mech || x->state != 0 || len < 2 || len > 1024 ||
	    chal[0] != '<' || chal[len - 1] != '>')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)chal[i] < 0x20 || (unsigned char)chal[i] > 0x7e)
			return -1;
	}
	free(x->cram_challenge);
	x->cram_challenge = xstrndup(chal, len);
	x->state = 1;
	return 0;
}

const struct sasl_mech sasl_cram_mech = {
    .name = "CRAM-MD5",
    .flags = SASL_F_WEAK,
    .step = sasl_cram_step,
    .resume = sasl_cram_resume,
    .free = sasl_cram_free,
};
