/* Unit tests for lib/base64: RFC 4648 section 10 vectors and strictness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/base64.h"

static const struct {
	const char *plain;
	const char *enc;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void
test_rfc4648_vectors(void **state)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct buf b;

		buf_init(&b, 1024);
		assert_int_equal(base64_encode(vectors[i].plain, strlen(vectors[i].plain), &b), 0);
		assert_int_equal(b.len, strlen(vectors[i].enc));
		if (b.len > 0)
			assert_memory_equal(b.data, vectors[i].enc, b.len);
		buf_reset(&b);
		assert_int_equal(base64_decode(vectors[i].enc, strlen(vectors[i].enc), &b), 0);
		assert_int_equal(b.len, strlen(vectors[i].plain));
		if (b.len > 0)
			assert_memory_equal(b.data, vectors[i].plain, b.len);
		buf_free(&b);
	}
}

static void
test_binary_with_nul(void **state)
{
	/* AUTH PLAIN: "\0user\0pass" */
	const char enc[] = "AHVzZXIAcGFzcw==";
	struct buf b;

	buf_init(&b, 64);
	assert_int_equal(base64_decode(enc, strlen(enc), &b), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "\0user\0pass", 10);
	buf_free(&b);
}

static void
test_rejects_malformed(void **state)
{
	static const char *const bad[] = {
	    "Zg=", /* length not a multiple of 4 */
	    "Zg", /* missing padding */
	    "Z===", /* too much padding */
	    "Zh==", /* non-zero pad bits */
	    "Zm9=", /* non-zero pad bits */
	    "Zm 9v", /* white space */
	    "Zm9v\r\n", /* line break */
	    "Zg==Zg==", /* data after padding */
	    "Zm=v", /* '=' in the middle */
	    "Zm9*", /* outside the alphabet */
	    "=Zm9",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b;

		buf_init(&b, 64);
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), &b), -1);
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
}

static void
test_decode_respects_limit(void **state)
{
	struct buf b;

	buf_init(&b, 5);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, &b), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(base64_decode("Zm9vYg==", 8, &b), 0);
	assert_int_equal(b.len, 4);
	buf_free(&b);
}

static void
test_roundtrip_all_bytes(void **state)
{
	unsigned char all[256];
	struct buf e, d;

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(all); n++) {
		buf_init(&e, 1024);
		buf_init(&d, 1024);
		assert_int_equal(base64_encode(all, n, &e), 0);
		assert_int_equal(e.len, BASE64_ENCODED_LEN(n));
		assert_int_equal(base64_decode(e.data ? e.data : "", e.len, &d), 0);
		assert_int_equal(d.len, n);
		if (n > 0)
			assert_memory_equal(d.data, all, n);
		buf_free(&e);
		buf_free(&d);
	}
}

/* RFC 4648 section 10 vectors without padding, and bytes that differ
 * between the two alphabets ("+/" vs "-_"). */
static const struct {
	const char *plain;
	size_t len;
	const char *enc;
} url_vectors[] = {
    {"", 0, ""},
    {"f", 1, "Zg"},
    {"fo", 2, "Zm8"},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy"},
    {"\xfb\xff\xbf", 3, "-_-_"},
    {"\x00\x00", 2, "AAA"},
    {"{\"alg\":\"RS256\"}", 15, "eyJhbGciOiJSUzI1NiJ9"},
};

static void
test_url_vectors(void **state)
{
	for (size_t i = 0; i < sizeof(url_vectors) / sizeof(url_vectors[0]); i++) {
		struct buf b;

		buf_init(&b, 1024);
		assert_int_equal(base64url_encode(url_vectors[i].plain, url_vectors[i].len, &b), 0);
		assert_int_equal(b.len, strlen(url_vectors[i].enc));
		assert_int_equal(b.len, BASE64URL_ENCODED_LEN(url_vectors[i].len));
		if (b.len > 0)
			assert_memory_equal(b.data, url_vectors[i].enc, b.len);
		buf_reset(&b);
		assert_int_equal(
		    base64url_decode(url_vectors[i].enc, strlen(url_vectors[i].enc), &b), 0);
		assert_int_equal(b.len, url_vectors[i].len);
		if (b.len > 0)
			assert_memory_equal(b.data, url_vectors[i].plain, b.len);
		buf_free(&b);
	}
}

static void
test_url_rejects_malformed(void **state)
{
	static const char *const bad[] = {
	    "Zg==", /* padding is not allowed in JWS */
	    "Zm8=", /* padding */
	    "Z", /* impossible length (1 mod 4) */
	    "Zm9vY", /* impossible length */
	    "Zh", /* non-zero pad bits */
	    "Zm9", /* non-zero pad bits */
	    "+/+/", /* standard alphabet */
	    "Zm 9v", /* white space */
	    "Zm9v\n", /* line break */
	    "Zm9v.", /* a JWS separator */
	    "Zm\0v", /* NUL */
	};
	static const size_t badlen[] = {4, 4, 1, 5, 2, 3, 4, 5, 5, 5, 4};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b;

		buf_init(&b, 64);
		assert_int_equal(base64url_decode(bad[i], badlen[i], &b), -1);
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
}

static void
test_url_limit_and_append(void **state)
{
	struct buf b;

	buf_init(&b, 5);
	assert_int_equal(base64url_decode("Zm9vYmFy", 8, &b), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(base64url_decode("Zm9vYg", 6, &b), 0);
	assert_int_equal(b.len, 4);
	/* a failed decode leaves what was there */
	assert_int_equal(base64url_decode("Zm9v", 4, &b), -1);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "foob", 4);
	buf_free(&b);
	buf_init(&b, 5);
	assert_int_equal(base64url_encode("foobar", 6, &b), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_url_roundtrip_all_bytes(void **state)
{
	unsigned char all[256];
	struct buf e, d;

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= sizeof(all); n++) {
		buf_init(&e, 1024);
		buf_init(&d, 1024);
		assert_int_equal(base64url_encode(all, n, &e), 0);
		assert_int_equal(e.len, BASE64URL_ENCODED_LEN(n));
		for (size_t k = 0; k < e.len; k++)
			assert_null(strchr("+/=", e.data[k]));
		assert_int_equal(base64url_decode(e.data ? e.data : "", e.len, &d), 0);
		assert_int_equal(d.len, n);
		if (n > 0)
			assert_memory_equal(d.data, all, n);
		buf_free(&e);
		buf_free(&d);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors),
	    cmocka_unit_test(test_binary_with_nul),
	    cmocka_unit_test(test_rejects_malformed),
	    cmocka_unit_test(test_decode_respects_limit),
	    cmocka_unit_test(test_roundtrip_all_bytes),
	    cmocka_unit_test(test_url_vectors),
	    cmocka_unit_test(test_url_rejects_malformed),
	    cmocka_unit_test(test_url_limit_and_append),
	    cmocka_unit_test(test_url_roundtrip_all_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
