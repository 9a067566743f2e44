/*
 * buf: bounded growable buffer. Invariant: len <= max, len < cap when data is
 * not NULL (room for the trailing NUL).
 */
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define BUF_MIN_CAP 64

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_set_secret(struct buf *b)
{
	b->secret = true;
}

static void
buf_release(struct buf *b)
{
	if (b->data != NULL && b->secret)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->cap = 0;
}

void
buf_free(struct buf *b)
{
	buf_release(b);
	b->len = 0;
}

void
buf_reset(struct buf *b)
{
	if (b->data != NULL) {
		if (b->secret)
			explicit_bzero(b->data, b->len);
		b->data[0] = '\0';
	}
	b->len = 0;
}

void
buf_shrink(struct buf *b)
{
	if (b->len == 0)
		buf_release(b);
}

static int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	char *n;

	if (extra > b->max - b->len)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : BUF_MIN_CAP;
	while (ncap < need)
		ncap *= 2;
	if (b->secret) {
		/* realloc could leave a copy of the secret behind */
		n = xmalloc(ncap);
		if (b->data != NULL) {
			memcpy(n, b->data, b->len + 1);
			explicit_bzero(b->data, b->cap);
			free(b->data);
		}
	} else {
		n = xrealloc(b->data, ncap);
	}
	b->data = n;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || buf_reserve(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->secret)
		explicit_bzero(b->data + b->len, n);
	b->data[b->len] = '\0';
}

char *
buf_strdup(const struct buf *b)
{
	if (b->data == NULL)
		return xstrdup("");
	return xstrndup(b->data, b->len);
}
