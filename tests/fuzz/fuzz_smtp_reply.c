/*
 * libFuzzer target: smtp_reply_parse over a stream of replies, fed whole and
 * one byte at a time; the sequences of outcomes (hashed: result, code,
 * enhanced code, flags, text) must be identical, and no reply may hold more
 * than the limits allow. abort() when not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_smtp_reply_hash(uint64_t *h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*h ^= ((const unsigned char *)p)[i];
		*h *= 0x100000001b3ULL;
	}
}

/* Parses replies from data in chunks of step bytes (0: as much as given)
 * until an error or the end. */
static uint64_t
fuzz_smtp_reply_run(const uint8_t *data, size_t size, size_t step)
{
	struct smtp_reply_parser p;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t off = 0;

	smtp_reply_parser_init(&p);
	while (off < size) {
		size_t n = size - off, used = 0;
		enum smtp_reply_parse_result r;

		if (step > 0 && n > step)
			n = step;
		r = smtp_reply_parse_feed(&p, (const char *)data + off, n, &used);
		if (used > n)
			abort();
		off += used;
		if (r == SMTP_REPLY_PARSE_MORE)
			continue;
		fuzz_smtp_reply_hash(&h, &r, sizeof(r));
		fuzz_smtp_reply_hash(&h, &off, sizeof(off));
		if (r == SMTP_REPLY_PARSE_ERROR)
			break;
		if (p.nlines == 0 || p.nlines > SMTP_REPLY_LINES_MAX ||
		    p.text.len > SMTP_REPLY_SIZE_MAX || p.code < 200 || p.code > 559)
			abort();
		fuzz_smtp_reply_hash(&h, &p.code, sizeof(p.code));
		fuzz_smtp_reply_hash(&h, p.enh, strlen(p.enh));
		fuzz_smtp_reply_hash(&h, &p.flags, sizeof(p.flags));
		for (size_t i = 0; i < p.nlines; i++) {
			size_t ln;
			const char *l = smtp_reply_parse_line(&p, i, &ln);

			if (ln > SMTP_REPLY_LINE_MAX)
				abort();
			fuzz_smtp_reply_hash(&h, l, ln);
		}
		smtp_reply_parser_reset(&p);
	}
	smtp_reply_parser_free(&p);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_smtp_reply_run(data, size, 0) != fuzz_smtp_reply_run(data, size, 1))
		abort();
	return 0;
}
