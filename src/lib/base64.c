/*
 * base64: encoder and strict decoder (RFC 4648 section 4). The decoder
 * refuses characters outside the alphabet, misplaced or missing padding,
 * and non-zero pad bits, so each byte string has exactly one accepted form.
 */
#include "lib/base64.h"

#include <stdint.h>
#include <string.h>

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_encode(const void *p, size_t n, struct buf *out)
{
	const unsigned char *s = p;
	char q[4];
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		q[0] = base64_alphabet[s[i] >> 2];
		q[1] = base64_alphabet[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		q[2] = base64_alphabet[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		q[3] = base64_alphabet[s[i + 2] & 63];
		if (buf_append(out, q, 4) == -1)
			return -1;
	}
	if (n - i == 1) {
		q[0] = base64_alphabet[s[i] >> 2];
		q[1] = base64_alphabet[(s[i] & 3) << 4];
		q[2] = q[3] = '=';
		if (buf_append(out, q, 4) == -1)
			return -1;
	} else if (n - i == 2) {
		q[0] = base64_alphabet[s[i] >> 2];
		q[1] = base64_alphabet[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		q[2] = base64_alphabet[(s[i + 1] & 15) << 2];
		q[3] = '=';
		if (buf_append(out, q, 4) == -1)
			return -1;
	}
	return 0;
}

int
base64_decode(const char *p, size_t n, struct buf *out)
{
	size_t start = out->len, i;
	unsigned char o[3];
	int v[4], k, pad;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		pad = 0;
		for (k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)p[i + k];

			if (c == '=' && i + 4 == n && k >= 2) {
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad > 0)
				goto fail; /* data after '=' */
			v[k] = base64_value(c);
			if (v[k] < 0)
				goto fail;
		}
		if (pad == 2 && (v[1] & 15) != 0)
			goto fail;
		if (pad == 1 && (v[2] & 3) != 0)
			goto fail;
		o[0] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		o[1] = (unsigned char)(((v[1] & 15) << 4) | (v[2] >> 2));
		o[2] = (unsigned char)(((v[2] & 3) << 6) | v[3]);
		if (buf_append(out, o, (size_t)(3 - pad)) == -1)
			goto fail;
	}
	return 0;
fail:
	if (out->data != NULL) {
		if (out->secret)
			explicit_bzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return -1;
}

static const char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
base64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
base64url_encode(const void *p, size_t n, struct buf *out)
{
	const unsigned char *s = p;
	size_t start = out->len, i;
	char q[4];

	for (i = 0; i + 2 < n; i += 3) {
		q[0] = base64url_alphabet[s[i] >> 2];
		q[1] = base64url_alphabet[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		q[2] = base64url_alphabet[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		q[3] = base64url_alphabet[s[i + 2] & 63];
		if (buf_append(out, q, 4) == -1)
			goto fail;
	}
	if (n - i == 1) {
		q[0] = base64url_alphabet[s[i] >> 2];
		q[1] = base64url_alphabet[(s[i] & 3) << 4];
		if (buf_append(out, q, 2) == -1)
			goto fail;
	} else if (n - i == 2) {
		q[0] = base64url_alphabet[s[i] >> 2];
		q[1] = base64url_alphabet[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		q[2] = base64url_alphabet[(s[i + 1] & 15) << 2];
		if (buf_append(out, q, 3) == -1)
			goto fail;
	}
	return 0;
fail:
	if (out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	return -1;
}

int
base64url_decode(const char *p, size_t n, struct buf *out)
{
	size_t start = out->len, i, k, m;
	unsigned char o[3];
	int v[4];

	/* RFC 7515 appendix C: the unpadded length is never 1 modulo 4 */
	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i += 4) {
		m = n - i < 4 ? n - i : 4;
		v[0] = v[1] = v[2] = v[3] = 0;
		for (k = 0; k < m; k++) {
			v[k] = base64url_value((unsigned char)p[i + k]);
			if (v[k] < 0)
				goto fail;
		}
		/* the bits after the last full byte must be zero (canonical form) */
		if (m == 2 && (v[1] & 15) != 0)
			goto fail;
		if (m == 3 && (v[2] & 3) != 0)
			goto fail;
		o[0] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		o[1] = (unsigned char)(((v[1] & 15) << 4) | (v[2] >> 2));
		o[2] = (unsigned char)(((v[2] & 3) << 6) | v[3]);
		if (buf_append(out, o, m - 1) == -1)
			goto fail;
	}
	return 0;
fail:
	if (out->data != NULL) {
		if (out->secret)
			explicit_bzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return -1;
}
