/*
 * base64: encoder and strict decoder (RFC 4648 section 4). The decoder
 * refuses characters outside the alphabet, misplaced or missing padding,
 * and non-zero pad bits, so each byte string has exactly one accepted form.
 */
#include "lib/base64.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The two alphabets of RFC 4648: standard (4) with padding, URL-safe (5)
 * without (RFC 7515 2). Everything else is shared. */
struct base64_variant {
	const char *alphabet;
	char c62, c63;
	bool padded;
};

static const struct base64_variant base64_std = {
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", '+', '/', true};
static const struct base64_variant base64_url = {
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", '-', '_', false};

static int
base64_value(const struct base64_variant *v, unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)v->c62)
		return 62;
	if (c == (unsigned char)v->c63)
		return 63;
	return -1;
}

/* Undoes a partial append after a failure (wiping secret bytes). */
static int
base64_undo(struct buf *out, size_t start)
{
	if (out->data != NULL) {
		if (out->secret)
			explicit_bzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return -1;
}

static int
base64_encode_variant(const struct base64_variant *v, const void *p, size_t n, struct buf *out)
{
	const unsigned char *s = p;
	const char *a = v->alphabet;
	size_t start = out->len, i, rest, len;
	char q[4];

	for (i = 0; i + 2 < n; i += 3) {
		q[0] = a[s[i] >> 2];
		q[1] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		q[2] = a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		q[3] = a[s[i + 2] & 63];
		if (buf_append(out, q, 4) == -1)
			return base64_undo(out, start);
	}
	rest = n - i;
	if (rest == 0)
		return 0;
	q[0] = a[s[i] >> 2];
	if (rest == 1) {
		q[1] = a[(s[i] & 3) << 4];
		q[2] = q[3] = '=';
	} else {
		q[1] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		q[2] = a[(s[i + 1] & 15) << 2];
		q[3] = '=';
	}
	len = v->padded ? 4 : rest + 1;
	if (buf_append(out, q, len) == -1)
		return base64_undo(out, start);
	return 0;
}

/*
 * Strict decoding: characters outside the alphabet, white space, misplaced
 * or (for the padded form) missing padding, and non-zero bits after the last
 * byte are all refused, so each byte string has exactly one accepted form.
 */
static int
base64_decode_variant(const struct base64_variant *v, const char *p, size_t n, struct buf *out)
{
	size_t start = out->len, i, k, m;
	unsigned char o[3];
	int val[4];

	if (v->padded ? n % 4 != 0 : n % 4 == 1)
		return -1;
	for (i = 0; i < n; i += 4) {
		m = n - i < 4 ? n - i : 4; /* characters of this quantum */
		val[0] = val[1] = val[2] = val[3] = 0;
		if (v->padded && i + 4 == n) {
			/* '=' only at the end of the last quantum, at most two */
			if (p[i + 3] == '=')
				m = p[i + 2] == '=' ? 2 : 3;
		}
		for (k = 0; k < m; k++) {
			val[k] = base64_value(v, (unsigned char)p[i + k]);
			if (val[k] < 0)
				return base64_undo(out, start);
		}
		if (m < 2 || (m == 2 && (val[1] & 15) != 0) || (m == 3 && (val[2] & 3) != 0))
			return base64_undo(out, start);
		o[0] = (unsigned char)((val[0] << 2) | (val[1] >> 4));
		o[1] = (unsigned char)(((val[1] & 15) << 4) | (val[2] >> 2));
		o[2] = (unsigned char)(((val[2] & 3) << 6) | val[3]);
		if (buf_append(out, o, m - 1) == -1)
			return base64_undo(out, start);
	}
	return 0;
}

int
base64_encode(const void *p, size_t n, struct buf *out)
{
	return base64_encode_variant(&base64_std, p, n, out);
}

int
base64_decode(const char *p, size_t n, struct buf *out)
{
	return base64_decode_variant(&base64_std, p, n, out);
}

int
base64url_encode(const void *p, size_t n, struct buf *out)
{
	return base64_encode_variant(&base64_url, p, n, out);
}

int
base64url_decode(const char *p, size_t n, struct buf *out)
{
	return base64_decode_variant(&base64_url, p, n, out);
}
