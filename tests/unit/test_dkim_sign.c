/*
 * Unit tests for relay/dkim_sign: the relaxed canonicalizers (RFC 6376
 * 3.4.2, 3.4.4; the example of 3.4.5 included), table-driven, the body one
 * also fed one byte at a time and split at every point; the header
 * splitter; and whole signatures with a fixed key and t= against known
 * output. The known RSA field was produced by this signer and checked
 * once with dkimpy (dkim.verify) and is deterministic (PKCS#1 v1.5), so a
 * change in canonicalization, h= selection, folding or signing shows here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "relay/dkim_sign.h"

#define S(s) s, sizeof(s) - 1

/* test-only keys, made with openssl genpkey for this file */
static const char test_rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAMtCE+hwhb/E2wsO\n"
    "q1z3lZOSa5xVwwSwn2FWSfjI5yc1BKLVU5t5nPnq5ntouPxkqoDn/HHFcM+1VwyS\n"
    "cLOPDcbJd1HN7UFYWSid7cNcfqlKhG4gS2j0GTgE3MAJ57HRh3KezzlaTELTEu0q\n"
    "iwWuH8y5IJGTBr4GefiZnD5NY3jRAgMBAAECgYEAqUtePYoLPNEACNOtE3/8C7A3\n"
    "BT3Bc1SRS4eNkTP0pAla1S2Nt7+xac+nLT7qZP6LrVaMQ07KSZam7IfEaypJs75M\n"
    "Z91eOFGzCGBWJ+DrIi5yFuqpTW/G7aFlS719davPLSwR8n1kvPkxCL4YMMUCIaXM\n"
    "XYrpyIPHcsgeFbbDEWECQQDyEaG/ELjMOk1/mJ8kARX+fyoWqEOmF08WsHnd/9Uz\n"
    "iXhRG7zVTtGLU3DaTj0V8XEmnNgtAruG0zOXKGt7FVW9AkEA1vSm+sUOtwHtuKxH\n"
    "IHlIoI742LPQH2Xmc93kXaGX0g4H+47RjKz0IJjcPl/GcN3W3mVuTtxAfbgqkMkF\n"
    "I7xupQJALtL0S6YraO3aMdVO60L+gyUL+igANe+KT+RBHo0vK3HrAR1xcH13kRDJ\n"
    "4qCBtm3mqkZqloJRzemqsBGUgNGGrQJBAKc588G5lkYHiRIXbMo1sKvALpYf5XTX\n"
    "yJ4xbNzuvvbalZk9tYY0c0P8x7L6vZ3G58dir5tIPB/SK8Mxr/7qNEUCQQC48Kfe\n"
    "0ZNGBpdBjoQiENNMoaOWmvgyevwiIGOqSRQmLZuzZIJzJHyYRfv+sv6H7bO/sjEz\n"
    "Zxaxt5p8To20YbV6\n"
    "-----END PRIVATE KEY-----\n";
static const char test_ed25519_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIsf/hR1kiflaf8myj9eudEsznsEXXV+CL3/2cIFZBVE\n"
    "-----END PRIVATE KEY-----\n";

struct hcanon {
	const char *in, *want;
};

static const struct hcanon header_cases[] = {
    /* RFC 6376 3.4.5 */
    {"A: X", "a:X\r\n"},
    {"B : Y\t\r\n\tZ  ", "b:Y Z\r\n"},
    {"Subject:   a  \t b\r\n  c", "subject:a b c\r\n"},
    {"X-Empty:", "x-empty:\r\n"},
    {"X-Empty:  \t ", "x-empty:\r\n"},
    {"MIXED-Case:Value", "mixed-case:Value\r\n"},
    {"To: a\n b", "to:a b\r\n"},
    {"K: a\rb", "k:a\rb\r\n"},
};

static void
test_canon_header(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		const struct hcanon *c = &header_cases[i];

		buf_reset(&b);
		assert_int_equal(dkim_sign_canon_header(c->in, strlen(c->in), &b), 0);
		if (b.len != strlen(c->want) || memcmp(b.data, c->want, b.len) != 0)
			fail_msg("case %zu: got \"%s\"", i, b.data);
	}
	buf_free(&b);
	/* a full buffer is an error, not a truncation */
	buf_init(&b, 4);
	assert_int_equal(dkim_sign_canon_header(S("Subject: long"), &b), -1);
	buf_free(&b);
}

struct bcanon {
	const char *in, *want;
};

static const struct bcanon body_cases[] = {
    /* RFC 6376 3.4.5 */
    {" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"},
    {"", ""},
    {"\r\n", ""},
    {"\r\n\r\n \t\r\n", ""},
    {"abc", "abc\r\n"},
    {"abc  ", "abc\r\n"},
    {"a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n"},
    {"a \r\n \r\nb", "a\r\n\r\nb\r\n"},
    {"\t\tx\t\ty\t\t\r\n", " x y\r\n"},
    {"lf\nonly\n\n", "lf\r\nonly\r\n"},
    {"bare\rcr\r\n", "bare\rcr\r\n"},
    {"end cr\r", "end cr\r\r\n"},
    {".dot\r\n..\r\n", ".dot\r\n..\r\n"},
};

static void
collect_cb(void *arg, const char *p, size_t n)
{
	assert_int_equal(buf_append(arg, p, n), 0);
}

static void
body_check(size_t i, const char *in, size_t len, size_t split, size_t step)
{
	const struct bcanon *c = &body_cases[i];
	struct dkim_body st;
	struct buf out;

	buf_init(&out, 1 << 16);
	dkim_sign_body_init(&st, collect_cb, &out);
	if (step > 0) {
		for (size_t k = 0; k < len; k += step)
			dkim_sign_body_feed(&st, in + k, len - k < step ? len - k : step);
	} else {
		dkim_sign_body_feed(&st, in, split);
		dkim_sign_body_feed(&st, in + split, len - split);
	}
	dkim_sign_body_finish(&st);
	if (out.len != strlen(c->want) || (out.len > 0 && memcmp(out.data, c->want, out.len) != 0))
		fail_msg("case %zu (split %zu, step %zu): got \"%s\"", i, split, step,
		    out.len > 0 ? out.data : "");
	buf_free(&out);
}

static void
test_canon_body(void **state)
{
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const char *in = body_cases[i].in;
		size_t len = strlen(in);

		body_check(i, in, len, 0, 1); /* one byte at a time */
		body_check(i, in, len, 0, len + 1); /* whole */
		for (size_t split = 0; split <= len; split++)
			body_check(i, in, len, split, 0);
	}
}

/* A body larger than the canonicalizer's own buffer. */
static void
test_canon_body_large(void **state)
{
	size_t n = 20000;
	char *in = malloc(n);
	struct dkim_body st;
	struct buf out;

	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		in[i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : (char)('a' + i % 26);
	buf_init(&out, 1 << 20);
	dkim_sign_body_init(&st, collect_cb, &out);
	dkim_sign_body_feed(&st, in, n);
	dkim_sign_body_finish(&st);
	assert_int_equal(out.len, n);
	assert_memory_equal(out.data, in, n);
	buf_free(&out);
	free(in);
}

static void
test_split(void **state)
{
	struct dkim_field *f;
	size_t n, off;
	const char *err = NULL;
	static const char m1[] = "A: 1\r\nB : 2\r\n\tmore\r\n  and more\r\nC:3\r\n\r\nbody\r\n";
	static const char m2[] = "A: 1\r\nB: 2\r\n";
	static const char m3[] = "A: 1\nB: 2\n\nbody";

	assert_int_equal(dkim_sign_split(S(m1), &f, &n, &off, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(f[0].len, 4);
	assert_int_equal(f[1].namelen, 1);
	assert_int_equal(f[1].len, strlen("B : 2\r\n\tmore\r\n  and more"));
	assert_memory_equal(f[2].raw, "C:3", 3);
	assert_string_equal(m1 + off, "body\r\n");
	free(f);
	/* no empty line: all header, empty body */
	assert_int_equal(dkim_sign_split(S(m2), &f, &n, &off, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(off, sizeof(m2) - 1);
	free(f);
	assert_int_equal(dkim_sign_split(S(m3), &f, &n, &off, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(m3 + off, "body");
	free(f);
	/* not signed: a continuation first, a line without a colon, a bad name */
	assert_int_equal(dkim_sign_split(S(" x\r\nA: 1\r\n\r\n"), &f, &n, &off, &err), -1);
	assert_non_null(err);
	assert_int_equal(dkim_sign_split(S("A: 1\r\nnot a field\r\n\r\n"), &f, &n, &off, &err), -1);
	assert_int_equal(dkim_sign_split(S(": x\r\n\r\n"), &f, &n, &off, &err), -1);
	assert_int_equal(dkim_sign_split(S("B\x01: x\r\n\r\n"), &f, &n, &off, &err), -1);
}

static EVP_PKEY *
load_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pk;

	assert_non_null(bio);
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(pk);
	return pk;
}

static char *default_headers[] = {"from", "to", "cc", "subject", "date", "message-id", "reply-to",
    "in-reply-to", "references", "mime-version", "content-type", "content-transfer-encoding",
    "received"};

static const char test_msg[] = "Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
                               "From: Alice <alice@example.test>\r\n"
                               "To: bob@example.net\r\n"
                               "Subject: a folded\r\n\tsubject  line \r\n"
                               "Received: from c by a; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
                               "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
                               "X-Unsigned: yes\r\n"
                               "\r\n"
                               "Hello  world \r\n\r\n";

static const char want_rsa[] =
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test; s=unit;\r\n"
    "\tt=1767225600; h=from:from:to:subject:date:received:received; bh=yGIXoM91E1DiK\r\n"
    "\tjvCBcC8NlWyw54TdfMQ08sdtwtOO4I=; b=w4DQ+aSwzdmlyJ30QGgm9H58fuvJfvX1/eK8JQGX8y\r\n"
    "\tYSzqqroUd4hjZS5p26tWY3ordTJln8BGUNOCgM0L9MASM8BjIJJ2oqukH5TbQFAtkKe2qlKu3mMoi\r\n"
    "\tC7t4se6eHCv2CiRJ0qkAFIP0FFXGt8IRBU5KESmoYIZoTOCDHoQo=\r\n";

static void
test_sign_rsa_known(void **state)
{
	struct conf_dkim d = {.domain = "example.test",
	    .selector = "unit",
	    .alg = CONF_DKIM_RSA_SHA256,
	    .headers = default_headers,
	    .nheaders = sizeof(default_headers) / sizeof(default_headers[0])};
	struct buf out;
	const char *err = NULL;

	d.key = load_key(test_rsa_pem);
	buf_init(&out, DKIM_SIGN_SIG_MAX);
	assert_int_equal(dkim_sign(&d, S(test_msg), 1767225600, &out, &err), 0);
	if (out.len != strlen(want_rsa) || memcmp(out.data, want_rsa, out.len) != 0)
		fail_msg("got:\n%s", out.data);
	/* every line within 78 columns, CRLF-ended */
	for (const char *p = out.data, *e; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		assert_true(e - p <= DKIM_SIGN_LINE_MAX);
	/* another time, another signature */
	buf_reset(&out);
	assert_int_equal(dkim_sign(&d, S(test_msg), 1767225601, &out, &err), 0);
	assert_true(strstr(out.data, "t=1767225601;") != NULL);
	assert_true(out.len != strlen(want_rsa) || memcmp(out.data, want_rsa, out.len) != 0);
	buf_free(&out);
	EVP_PKEY_free(d.key);
}

/* Ed25519 (RFC 8463 3): the signature is over SHA-256 of the header data;
 * check it with the public key against data rebuilt here. */
static void
test_sign_ed25519_verifies(void **state)
{
	char *hdrs[] = {"from", "subject"};
	struct conf_dkim d = {.domain = "example.test",
	    .selector = "ed",
	    .alg = CONF_DKIM_ED25519_SHA256,
	    .headers = hdrs,
	    .nheaders = 2};
	static const char msg[] = "From: a@example.test\r\nSubject: x\r\n\r\nhi\r\n";
	struct buf out, data;
	unsigned char raw[128];
	const char *err = NULL, *b;
	unsigned char hash[32];
	unsigned hashlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *unfolded;
	size_t k = 0;

	d.key = load_key(test_ed25519_pem);
	buf_init(&out, DKIM_SIGN_SIG_MAX);
	buf_init(&data, 4096);
	assert_int_equal(dkim_sign(&d, S(msg), 1767225600, &out, &err), 0);
	assert_true(strncmp(out.data, "DKIM-Signature: v=1; a=ed25519-sha256;", 38) == 0);
	assert_non_null(strstr(out.data, "h=from:from:subject;"));
	/* the header data: from, (absent from), subject, then the field with b= empty */
	/* relaxed (RFC 6376 3.4.2): unfolded, the folding TAB one SP */
	unfolded = calloc(1, out.len + 1);
	assert_non_null(unfolded);
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] == '\r' || out.data[i] == '\n')
			continue;
		unfolded[k++] = out.data[i] == '\t' ? ' ' : out.data[i];
	}
	b = strstr(unfolded, " b=");
	assert_non_null(b);
	assert_int_equal(buf_append_str(&data, "from:a@example.test\r\nsubject:x\r\n"), 0);
	assert_int_equal(buf_append_str(&data, "dkim-signature:"), 0);
	assert_int_equal(buf_append(&data, unfolded + 16, (size_t)(b + 3 - unfolded - 16)), 0);
	/* the values without their white space: bh= of "hi\r\n", and b= */
	k = 0;
	for (size_t i = 0; unfolded[i] != '\0'; i++) {
		if (unfolded[i] != ' ')
			unfolded[k++] = unfolded[i];
	}
	unfolded[k] = '\0';
	assert_non_null(strstr(unfolded, ";bh=RHI91NDg1Go8f6isolS2HCe2tXiflhd+gsgHAECfFTU=;"));
	b = strstr(unfolded, ";b=");
	assert_non_null(b);
	assert_int_equal(EVP_Digest(data.data, data.len, hash, &hashlen, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)b + 3, (int)strlen(b + 3)),
	    66); /* 64 bytes, the decoder counts the padding */
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, d.key), 1);
	assert_int_equal(EVP_DigestVerify(md, raw, 64, hash, hashlen), 1);
	/* and not over the data itself (that would be a different scheme) */
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, d.key), 1);
	assert_int_not_equal(
	    EVP_DigestVerify(md, raw, 64, (unsigned char *)data.data, data.len), 1);
	EVP_MD_CTX_free(md);
	free(unfolded);
	buf_free(&out);
	buf_free(&data);
	EVP_PKEY_free(d.key);
}

/* A message whose header cannot be split is refused, with a reason. */
static void
test_sign_refuses_bad_header(void **state)
{
	char *hdrs[] = {"from"};
	struct conf_dkim d = {.domain = "example.test",
	    .selector = "x",
	    .alg = CONF_DKIM_ED25519_SHA256,
	    .headers = hdrs,
	    .nheaders = 1};
	struct buf out;
	const char *err = NULL;

	d.key = load_key(test_ed25519_pem);
	buf_init(&out, DKIM_SIGN_SIG_MAX);
	assert_int_equal(
	    dkim_sign(&d, S("From: a@example.test\r\nno colon here\r\n\r\n"), 1, &out, &err), -1);
	assert_non_null(err);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	EVP_PKEY_free(d.key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_canon_header),
	    cmocka_unit_test(test_canon_body),
	    cmocka_unit_test(test_canon_body_large),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_sign_rsa_known),
	    cmocka_unit_test(test_sign_ed25519_verifies),
	    cmocka_unit_test(test_sign_refuses_bad_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
