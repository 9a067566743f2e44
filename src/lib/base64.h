/*
 * base64: RFC 4648 standard alphabet with padding, strict decoding (no
 * whitespace, no junk, canonical padding) as SMTP AUTH (RFC 4954 4) needs.
 * base64url: the URL-safe alphabet without padding (RFC 4648 5, RFC 7515 2)
 * as JWS compact serialisation uses it, also strict: no '=', no '+' or '/',
 * no junk, zero pad bits, so each byte string has exactly one accepted form.
 */
#ifndef SG_LIB_BASE64_H
#define SG_LIB_BASE64_H

#include <stddef.h>

#include "lib/buf.h"

/* Decoded size upper bound for n encoded characters. */
#define BASE64_DECODED_MAX(n) (((n) / 4) * 3 + 3)
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

int base64_encode(const void *p, size_t n, struct buf *out) __attribute__((warn_unused_result));
/* Appends the decoded bytes to out. Returns -1 on malformed input or when out
 * would exceed its limit; out is left as it was then. */
int base64_decode(const char *p, size_t n, struct buf *out) __attribute__((warn_unused_result));

/* Unpadded encoded length of n bytes in base64url. */
#define BASE64URL_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))

/* Appends the unpadded base64url form of p to out. */
int base64url_encode(const void *p, size_t n, struct buf *out) __attribute__((warn_unused_result));
/* Appends the decoded bytes to out. Returns -1 on padding, characters outside
 * the URL-safe alphabet, an impossible length (n % 4 == 1), non-zero pad bits,
 * or when out would exceed its limit; out is left as it was then. */
int base64url_decode(const char *p, size_t n, struct buf *out) __attribute__((warn_unused_result));

#endif
