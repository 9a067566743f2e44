/*
 * client_transcript: the record of a conversation as the probe shows it.
 * Entries are escaped when added (control bytes and non-ASCII as \xHH), so
 * a hostile server cannot inject terminal sequences or break JSON, and the
 * record is bounded (CLIENT_TRANSCRIPT_MAX_ENTRIES / _BYTES) whatever the
 * server sends. Commands are redacted before they get here: AUTH payloads
 * never enter a transcript (client_transcript_redact).
 */
#include "client/client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/xalloc.h"

static long long
client_transcript_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
client_transcript_init(struct client_transcript *t)
{
	memset(t, 0, sizeof(*t));
	t->start_ms = client_transcript_now_ms();
}

void
client_transcript_free(struct client_transcript *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].text);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

int
client_escape(const char *p, size_t n, size_t max, struct buf *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t lim = n > max ? max : n;

	for (size_t i = 0; i < lim; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			if (buf_append(out, &p[i], 1) == -1)
				return -1;
		} else if (ch == '\\') {
			if (buf_append_str(out, "\\\\") == -1)
				return -1;
		} else {
			char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};

			if (buf_append(out, e, 4) == -1)
				return -1;
		}
	}
	if (n > max && buf_append_str(out, "...") == -1)
		return -1;
	return 0;
}

void
client_transcript_add(struct client_transcript *t, char dir, const char *p, size_t n)
{
	struct buf b;

	if (t == NULL)
		return;
	if (t->n >= CLIENT_TRANSCRIPT_MAX_ENTRIES || t->bytes >= CLIENT_TRANSCRIPT_MAX_BYTES) {
		t->truncated = true;
		return;
	}
	buf_init(&b, 4 * CLIENT_TRANSCRIPT_LINE_MAX + 8);
	if (client_escape(p, n, CLIENT_TRANSCRIPT_LINE_MAX, &b) == -1) {
		buf_free(&b);
		return;
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n].dir = dir;
	t->v[t->n].ms = client_transcript_now_ms() - t->start_ms;
	t->v[t->n].text = buf_strdup(&b);
	t->bytes += b.len;
	t->n++;
	buf_free(&b);
}

void
client_transcript_addf(struct client_transcript *t, char dir, const char *fmt, ...)
{
	char line[CLIENT_TRANSCRIPT_LINE_MAX];
	va_list ap;
	int n;

	if (t == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	client_transcript_add(
	    t, dir, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

int
client_transcript_redact(const char *line, size_t len, bool in_auth, struct buf *out)
{
	size_t sp1, sp2;

	if (in_auth)
		return buf_append_str(out, "<redacted>");
	/* "AUTH MECH [initial-response]" (RFC 4954 4) */
	if (len >= 5 && strncasecmp(line, "AUTH ", 5) == 0) {
		sp1 = 4;
		for (sp2 = sp1 + 1; sp2 < len && line[sp2] != ' '; sp2++)
			;
		if (sp2 < len) {
			if (buf_append(out, line, sp2) == -1 ||
			    buf_append_str(out, " <redacted>") == -1)
				return -1;
			return 0;
		}
	}
	return buf_append(out, line, len);
}
