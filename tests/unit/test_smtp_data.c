/*
 * Unit tests for smtp/smtp_data: DATA framing, dot-unstuffing, SMTP smuggling
 * look-alikes and bare CR/LF counting. Every case is fed whole, one byte at a
 * time and split at every point; all must give the same output, size, bare
 * count, end flag and number of consumed bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_data.h"

#define S(x) x, sizeof(x) - 1

struct sink {
	char data[4096];
	size_t len;
	size_t calls;
};

static void
sink_cb(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	assert_true(n > 0);
	assert_true(s->len + n <= sizeof(s->data));
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->calls++;
}

struct result {
	struct sink out;
	uint64_t size;
	uint64_t bare;
	bool done;
	size_t consumed;
};

/* Feeds the first piece of split bytes, then the rest step bytes at a time
 * (step 0: all at once), stopping at the end like a session would. */
static void
run(const char *in, size_t len, size_t split, size_t step, struct result *r)
{
	struct smtp_data d;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d);
	while (off < len && !d.done) {
		size_t n = off == 0 ? split : (step == 0 ? len - off : step);
		size_t c;

		if (n > len - off)
			n = len - off;
		c = smtp_data_feed(&d, in + off, n, sink_cb, &r->out);
		assert_true(c <= n);
		if (!d.done)
			assert_int_equal(c, n);
		off += c;
	}
	/* Once done, nothing more is consumed. */
	if (d.done)
		assert_int_equal(smtp_data_feed(&d, "x\r\n", 3, sink_cb, &r->out), 0);
	r->size = d.size;
	r->bare = d.bare;
	r->done = d.done;
	r->consumed = off;
	assert_int_equal(r->size, r->out.len);
}

static void
assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->out.len, b->out.len);
	assert_memory_equal(a->out.data, b->out.data, a->out.len);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->bare, b->bare);
	assert_int_equal(a->done, b->done);
	assert_int_equal(a->consumed, b->consumed);
}

static const struct {
	const char *in;
	size_t len;
	const char *out;
	size_t outlen;
	uint64_t bare;
	bool done;
	size_t consumed;
} data_cases[] = {
    /* plain messages; the CRLF before "." belongs to the message */
    {S("hello\r\n.\r\n"), S("hello\r\n"), 0, true, 10},
    {S("a\r\nb\r\n.\r\n"), S("a\r\nb\r\n"), 0, true, 9},
    {S(".\r\n"), S(""), 0, true, 3}, /* empty message */
    {S("\r\n.\r\n"), S("\r\n"), 0, true, 5},
    {S(""), S(""), 0, false, 0},
    {S("abc\r\n"), S("abc\r\n"), 0, false, 5},
    {S("abc\r\n."), S("abc\r\n"), 0, false, 6}, /* dot held back */
    {S("abc\r\n.\r"), S("abc\r\n"), 0, false, 7},
    /* dot-unstuffing (4.5.2) */
    {S("..\r\n.\r\n"), S(".\r\n"), 0, true, 7},
    {S("..a\r\n.b\r\n...\r\n.\r\n"), S(".a\r\nb\r\n..\r\n"), 0, true, 17},
    {S("a.b\r\n a\r\n.\r\n"), S("a.b\r\n a\r\n"), 0, true, 12}, /* not at BOL */
    {S("x\r\n. \r\n.\r\n"), S("x\r\n \r\n"), 0, true, 10},
    /* pipelined bytes after the end are left for the command parser */
    {S("x\r\n.\r\nQUIT\r\n"), S("x\r\n"), 0, true, 6},
    {S(".\r\nMAIL FROM:<a@b>\r\n"), S(""), 0, true, 3},
    {S("x\r\n.\r\n.\r\n"), S("x\r\n"), 0, true, 6},
    /* SMTP smuggling look-alikes: none of these ends the data */
    {S("a\n.\nb\r\n.\r\n"), S("a\n.\nb\r\n"), 2, true, 10},
    {S("a\r.\rb\r\n.\r\n"), S("a\r.\rb\r\n"), 2, true, 10},
    {S("a\r\n.\nb\r\n.\r\n"), S("a\r\n\nb\r\n"), 1, true, 11},
    {S("a\n.\r\nb\r\n.\r\n"), S("a\n.\r\nb\r\n"), 1, true, 11},
    {S("a\r.\r\nb\r\n.\r\n"), S("a\r.\r\nb\r\n"), 1, true, 11},
    {S("a\n.\n"), S("a\n.\n"), 2, false, 4},
    {S("a\r.\r"), S("a\r.\r"), 1, false, 4}, /* last CR not yet counted */
    {S("a\r\n.\n"), S("a\r\n\n"), 1, false, 5},
    {S("a\n.\r\n"), S("a\n.\r\n"), 1, false, 5},
    {S(".\n.\r\n"), S("\n.\r\n"), 1, false, 5},
    {S(".\r.\r\n"), S("\r.\r\n"), 1, false, 5},
    {S(".\r\r\n.\r\n"), S("\r\r\n"), 1, true, 7},
    {S("x\r\n.\r\r\n.\r\n"), S("x\r\n\r\r\n"), 1, true, 10},
    /* bare CR / LF anywhere, counted but passed through */
    {S("\r\r\n.\r\n"), S("\r\r\n"), 1, true, 6},
    {S("a\nb\r\n.\r\n"), S("a\nb\r\n"), 1, true, 8},
    {S("a\rb\r\n.\r\n"), S("a\rb\r\n"), 1, true, 8},
    {S("\n\r\n.\r\n"), S("\n\r\n"), 1, true, 6},
    {S("\r\r\r\n.\r\n"), S("\r\r\r\n"), 2, true, 7},
    {S("\n\n\n\r\n.\r\n"), S("\n\n\n\r\n"), 3, true, 8},
    {S("a\r"), S("a\r"), 0, false, 2}, /* may still become CRLF */
    /* NUL and 8-bit bytes are content */
    {S("\0\xff\r\n.\r\n"), S("\0\xff\r\n"), 0, true, 7},
};

static void
test_data_cases(void **state)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const char *in = data_cases[i].in;
		size_t len = data_cases[i].len;
		struct result whole, part;

		run(in, len, len, 0, &whole);
		if (whole.out.len != data_cases[i].outlen ||
		    memcmp(whole.out.data, data_cases[i].out, whole.out.len) != 0)
			fail_msg("case %zu: output differs (%zu bytes, want %zu)", i, whole.out.len,
			    data_cases[i].outlen);
		assert_int_equal(whole.bare, data_cases[i].bare);
		assert_int_equal(whole.done, data_cases[i].done);
		assert_int_equal(whole.consumed, data_cases[i].consumed);
		run(in, len, 1, 1, &part);
		assert_same(&whole, &part);
		for (size_t k = 1; k < len; k++) {
			run(in, len, k, 0, &part);
			assert_same(&whole, &part);
		}
	}
}

static void
test_data_batches_output(void **state)
{
	/* Output comes in runs, not byte by byte, when input arrives whole. */
	static const char msg[] = "Subject: x\r\n\r\nline one\r\n..dot\r\nline two\r\n.\r\n";
	struct result r;

	run(msg, sizeof(msg) - 1, sizeof(msg) - 1, 0, &r);
	assert_true(r.done);
	assert_int_equal(r.out.calls, 2);
	assert_int_equal(r.out.len, sizeof(msg) - 1 - 1 - 3);
}

static void
count_cb(void *arg, const char *p, size_t n)
{
	*(uint64_t *)arg += n;
}

static void
test_data_large_message(void **state)
{
	/* 100 lines of 998 bytes each, every 10th dot-stuffed, fed in 333-byte
	 * reads, then pipelined commands. */
	size_t cap = 100 * 1000 + 16;
	char *in = malloc(cap);
	size_t len = 0, off = 0;
	uint64_t want = 0, got = 0;
	struct smtp_data d;

	assert_non_null(in);
	for (int l = 0; l < 100; l++) {
		memset(in + len, l % 10 == 0 ? '.' : 'x', 998);
		memcpy(in + len + 998, "\r\n", 2);
		len += 1000;
		want += l % 10 == 0 ? 999 : 1000;
	}
	memcpy(in + len, ".\r\nQUIT\r\n", 9);
	len += 9;
	smtp_data_init(&d);
	while (off < len && !d.done) {
		size_t n = len - off < 333 ? len - off : 333;

		off += smtp_data_feed(&d, in + off, n, count_cb, &got);
	}
	assert_true(d.done);
	assert_int_equal(off, len - 6);
	assert_int_equal(d.size, want);
	assert_int_equal(got, want);
	assert_int_equal(d.bare, 0);
	free(in);
}

static const struct {
	const char *chunks[4];
	uint64_t bare;
} bare_cases[] = {
    {{"a\r\nb", NULL}, 0},
    {{"a\rb", NULL}, 1},
    {{"a\nb", NULL}, 1},
    {{"a\r", "\nb", NULL}, 0}, /* CRLF across a chunk boundary */
    {{"a\r", "b", NULL}, 1},
    {{"a\r", "\r", "\n", NULL}, 1},
    {{"a\r", NULL}, 1}, /* trailing CR of the last chunk */
    {{"\r\r\n", NULL}, 1},
    {{"\n", "\n", NULL}, 2},
    {{"", "", NULL}, 0},
    {{"\r\n", "\r\n", NULL}, 0},
};

static void
test_bare_chunks(void **state)
{
	for (size_t i = 0; i < sizeof(bare_cases) / sizeof(bare_cases[0]); i++) {
		struct smtp_bare b, bb;

		smtp_bare_init(&b);
		smtp_bare_init(&bb);
		for (int k = 0; bare_cases[i].chunks[k] != NULL; k++) {
			const char *c = bare_cases[i].chunks[k];

			smtp_bare_feed(&b, c, strlen(c));
			for (size_t j = 0; j < strlen(c); j++)
				smtp_bare_feed(&bb, c + j, 1);
		}
		smtp_bare_finish(&b);
		smtp_bare_finish(&bb);
		assert_int_equal(b.bare, bare_cases[i].bare);
		assert_int_equal(bb.bare, bare_cases[i].bare);
		/* finish is idempotent */
		smtp_bare_finish(&b);
		assert_int_equal(b.bare, bare_cases[i].bare);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_data_cases),
	    cmocka_unit_test(test_data_batches_output),
	    cmocka_unit_test(test_data_large_message),
	    cmocka_unit_test(test_bare_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
