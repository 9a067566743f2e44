/*
 * libFuzzer target: smtp_line over the input whole and one byte at a time
 * (accumulating like a session), with a limit taken from the first byte. The
 * two transcripts (hashed) must be identical; abort() when not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "smtp/smtp_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_smtp_line_log {
	uint64_t hash; /* FNV-1a over (kind, length, bytes) of every result */
	size_t events;
};

static void
fuzz_smtp_line_hash(struct fuzz_smtp_line_log *l, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		l->hash ^= ((const unsigned char *)p)[i];
		l->hash *= 0x100000001b3ULL;
	}
}

/* Takes every line out of acc[0..*len), dropping what was consumed. */
static void
fuzz_smtp_line_drain(struct smtp_line *s, char *acc, size_t *len, struct fuzz_smtp_line_log *l)
{
	for (;;) {
		const char *line;
		size_t n, consumed;
		enum smtp_line_result r = smtp_line_next(s, acc, *len, &line, &n, &consumed);
		char kind = (char)r;

		if (consumed > *len)
			abort();
		if (r == SMTP_LINE_OK && (n > s->max || line < acc || line + n > acc + *len))
			abort();
		if (r != SMTP_LINE_NEED_MORE) {
			if (consumed == 0)
				abort(); /* no progress: a caller would loop forever */
			fuzz_smtp_line_hash(l, &kind, 1);
			fuzz_smtp_line_hash(l, &n, sizeof(n));
			if (r == SMTP_LINE_OK)
				fuzz_smtp_line_hash(l, line, n);
			l->events++;
		}
		memmove(acc, acc + consumed, *len - consumed);
		*len -= consumed;
		if (r == SMTP_LINE_NEED_MORE)
			return;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_smtp_line_log whole = {0xcbf29ce484222325ULL, 0}, bytes = whole;
	struct smtp_line s;
	size_t max, len = 0, rest_whole;
	char *acc;

	if (size == 0)
		return 0;
	/* small limits exercise the over-long path; 0xff means the real one */
	max = data[0] == 0xff ? SMTP_CMD_LINE_MAX : data[0] % 64;
	data++;
	size--;
	acc = xmalloc(size + 1);

	smtp_line_init(&s, max);
	memcpy(acc, data, size);
	len = size;
	fuzz_smtp_line_drain(&s, acc, &len, &whole);
	rest_whole = len;

	smtp_line_init(&s, max);
	len = 0;
	for (size_t i = 0; i < size; i++) {
		acc[len++] = (char)data[i];
		fuzz_smtp_line_drain(&s, acc, &len, &bytes);
		if (len > max + 1)
			abort(); /* the session buffer stays bounded */
	}
	if (whole.hash != bytes.hash || whole.events != bytes.events || rest_whole != len)
		abort();
	free(acc);
	return 0;
}
