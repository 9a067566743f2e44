/*
 * libFuzzer target: smtp_header over the input whole, split at a point the
 * first two bytes choose, and one byte at a time. The verdict and the
 * addresses must be identical; every address must be a NUL-free string of
 * at most SMTP_ADDR_MAX bytes; abort() when not.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_smtp_header_run(struct smtp_header *h, const char *in, size_t len, size_t first, size_t step)
{
	size_t off = 0, n = first;

	smtp_header_init(h);
	while (off < len) {
		if (n > len - off)
			n = len - off;
		smtp_header_feed(h, in + off, n);
		off += n;
		n = step > 0 ? step : 1;
	}
	smtp_header_finish(h);
	if (!smtp_header_is_done(h))
		abort();
}

static void
fuzz_smtp_header_same(const struct smtp_header *a, const struct smtp_header *b)
{
	if (smtp_header_result(a) != smtp_header_result(b) || a->naddrs != b->naddrs ||
	    a->nfrom != b->nfrom)
		abort();
	for (size_t i = 0; i < a->naddrs; i++) {
		if (strcmp(a->addrs[i], b->addrs[i]) != 0 || strlen(a->addrs[i]) == 0 ||
		    strlen(a->addrs[i]) > SMTP_ADDR_MAX || strchr(a->addrs[i], '@') == NULL)
			abort();
	}
	if (a->naddrs > SMTP_HEADER_ADDRS_MAX)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_header whole, split, bytes;
	size_t split_at = 0;
	const char *in;

	if (size >= 2) {
		split_at = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
	}
	in = (const char *)data;
	split_at = size > 0 ? split_at % (size + 1) : 0;
	fuzz_smtp_header_run(&whole, in, size, size, size);
	fuzz_smtp_header_run(&split, in, size, split_at, size);
	fuzz_smtp_header_run(&bytes, in, size, 1, 1);
	fuzz_smtp_header_same(&whole, &split);
	fuzz_smtp_header_same(&whole, &bytes);
	smtp_header_clear(&whole);
	smtp_header_clear(&split);
	smtp_header_clear(&bytes);
	return 0;
}
