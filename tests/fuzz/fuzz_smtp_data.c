/*
 * libFuzzer target: smtp_data_feed over the input whole, split at a point the
 * first two bytes choose, and one byte at a time. Output bytes, size, bare
 * count, end flag and consumed count must be identical; abort() when not.
 * smtp_bare gets the same treatment.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_smtp_data_run {
	char *out; /* at most as long as the input */
	size_t outlen;
	size_t cap;
	struct smtp_data d;
	size_t consumed;
};

static void
fuzz_smtp_data_out_cb(void *arg, const char *p, size_t n)
{
	struct fuzz_smtp_data_run *r = arg;

	if (n == 0 || r->outlen + n > r->cap)
		abort();
	memcpy(r->out + r->outlen, p, n);
	r->outlen += n;
}

/* Feeds in[0..len) as pieces of at most step bytes after a first piece of
 * first bytes, stopping at the end of data. */
static void
fuzz_smtp_data_run(
    struct fuzz_smtp_data_run *r, const char *in, size_t len, size_t first, size_t step)
{
	size_t off = 0;
	bool is_first = true;

	smtp_data_init(&r->d);
	r->outlen = 0;
	while (off < len && !r->d.done) {
		size_t n = is_first ? first : step;
		size_t c;

		is_first = false;
		if (n > len - off)
			n = len - off;
		c = smtp_data_feed(&r->d, in + off, n, fuzz_smtp_data_out_cb, r);
		if (c > n || (!r->d.done && c != n))
			abort();
		off += c;
	}
	if (r->d.done && smtp_data_feed(&r->d, "\r\n", 2, fuzz_smtp_data_out_cb, r) != 0)
		abort();
	r->consumed = off;
	if (r->d.size != r->outlen || r->outlen > r->consumed)
		abort();
}

static void
fuzz_smtp_data_same(const struct fuzz_smtp_data_run *a, const struct fuzz_smtp_data_run *b)
{
	if (a->outlen != b->outlen || memcmp(a->out, b->out, a->outlen) != 0 ||
	    a->d.size != b->d.size || a->d.bare != b->d.bare || a->d.done != b->d.done ||
	    a->consumed != b->consumed)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_smtp_data_run whole, split, bytes;
	struct smtp_bare b1, b2, b3;
	const char *in;
	size_t split_at = 0;

	if (size >= 2) {
		split_at = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
	}
	in = (const char *)data;
	split_at = size > 0 ? split_at % (size + 1) : 0;
	whole.cap = split.cap = bytes.cap = size;
	whole.out = xmalloc(size + 1);
	split.out = xmalloc(size + 1);
	bytes.out = xmalloc(size + 1);

	fuzz_smtp_data_run(&whole, in, size, size, size);
	fuzz_smtp_data_run(&split, in, size, split_at, size);
	fuzz_smtp_data_run(&bytes, in, size, 1, 1);
	fuzz_smtp_data_same(&whole, &split);
	fuzz_smtp_data_same(&whole, &bytes);

	/* BDAT: bare CR/LF counting across the same split */
	smtp_bare_init(&b1);
	smtp_bare_init(&b2);
	smtp_bare_init(&b3);
	smtp_bare_feed(&b1, in, size);
	smtp_bare_feed(&b2, in, split_at);
	smtp_bare_feed(&b2, in + split_at, size - split_at);
	for (size_t i = 0; i < size; i++)
		smtp_bare_feed(&b3, in + i, 1);
	smtp_bare_finish(&b1);
	smtp_bare_finish(&b2);
	smtp_bare_finish(&b3);
	if (b1.bare != b2.bare || b1.bare != b3.bare || b1.bare > size)
		abort();

	free(whole.out);
	free(split.out);
	free(bytes.out);
	return 0;
}
