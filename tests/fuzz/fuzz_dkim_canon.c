/*
 * libFuzzer target: the DKIM relaxed canonicalizers of relay/dkim_sign.
 * The input is split as a message (dkim_sign_split); every field is
 * canonicalized (dkim_sign_canon_header) and the body is canonicalized
 * whole, one byte at a time and split at a point the first two bytes
 * choose. abort() when the three bodies differ or an invariant of the
 * relaxed forms does not hold: CRLF line ends only, no WSP before a CRLF,
 * no run of two WSP, no empty line at the end, no TAB at all.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "relay/dkim_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_dkim_collect_cb(void *arg, const char *p, size_t n)
{
	if (buf_append(arg, p, n) == -1)
		abort();
}

static void
fuzz_dkim_body(const char *in, size_t len, size_t first, size_t step, struct buf *out)
{
	struct dkim_body st;
	size_t off = 0, n = first;

	buf_init(out, 4 * len + 16);
	dkim_sign_body_init(&st, fuzz_dkim_collect_cb, out);
	while (off < len) {
		if (n > len - off)
			n = len - off;
		dkim_sign_body_feed(&st, in + off, n);
		off += n;
		n = step > 0 ? step : 1;
	}
	dkim_sign_body_finish(&st);
}

/* Relaxed output: only CRLF line ends (a CR may stand alone), no TAB, no
 * two SP in a row, no SP before a CRLF. */
static void
fuzz_dkim_check(const char *p, size_t n, bool body)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\t')
			abort();
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			abort();
		if (p[i] == ' ' && i + 1 < n && p[i + 1] == ' ')
			abort();
		if (p[i] == ' ' && i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			abort();
	}
	if (body && n > 0 && (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n'))
		abort();
	if (body && n >= 4 && memcmp(p + n - 4, "\r\n\r\n", 4) == 0 &&
	    !(n >= 5 && p[n - 5] == '\r'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct dkim_field *f = NULL;
	size_t nf = 0, body_off = 0, split = 0;
	const char *err = NULL;
	struct buf a, b, c, h;

	if (size > 2)
		split = ((size_t)data[0] << 8 | data[1]) % size;
	if (dkim_sign_split(in, size, &f, &nf, &body_off, &err) == 0) {
		buf_init(&h, 8 * size + 16);
		for (size_t i = 0; i < nf; i++) {
			size_t before = h.len;

			if (f[i].raw < in || f[i].raw + f[i].len > in + body_off ||
			    f[i].namelen == 0)
				abort();
			if (dkim_sign_canon_header(f[i].raw, f[i].len, &h) == -1)
				abort();
			fuzz_dkim_check(h.data + before, h.len - before, false);
		}
		buf_free(&h);
		free(f);
	} else if (err == NULL) {
		abort();
	}
	fuzz_dkim_body(in, size, size + 1, size + 1, &a);
	fuzz_dkim_body(in, size, 1, 1, &b);
	fuzz_dkim_body(in, size, split, size + 1, &c);
	if (a.len != b.len || a.len != c.len ||
	    (a.len > 0 &&
	        (memcmp(a.data, b.data, a.len) != 0 || memcmp(a.data, c.data, a.len) != 0)))
		abort();
	fuzz_dkim_check(a.data, a.len, true);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	return 0;
}
