/*
 * smtp_data: DATA framing (RFC 5321 4.1.1.4, 4.5.2) and bare CR/LF counting.
 * Pure and incremental.
 *
 * A line is what a CRLF ends, and nothing else: a bare LF or a bare CR is
 * ordinary (counted) message content and never starts a line. Hence the end
 * of data is exactly CRLF "." CRLF; "\n.\n", "\r.\r", "\r\n.\n" and "\n.\r\n"
 * are not ends (SMTP smuggling). The CRLF before the final "." belongs to the
 * message; DATA starts at the beginning of a line (the DATA command's CRLF).
 *
 * States (d->state):
 *   BOL     at the beginning of a line
 *   DOT     BOL then ".", the dot held back
 *   DOT_CR  BOL then "." CR, both held back (LF next would end the data)
 *   TEXT    inside a line
 *   CR      inside a line just after a CR (bare unless LF follows)
 *   DONE    the end was seen; further input is not consumed
 * The only bytes held across calls are the "." and "." CR of DOT/DOT_CR, so
 * every other byte is passed to the output callback in the call that
 * consumed it, and the output is the same however the input is split.
 *
 * Dot-stuffing (4.5.2): a line starting with "." and having other characters
 * loses that first ".". "Other characters" includes a bare CR or LF, as those
 * do not end the line.
 */
#include "smtp/smtp_data.h"

enum {
	SMTP_DATA_BOL,
	SMTP_DATA_DOT,
	SMTP_DATA_DOT_CR,
	SMTP_DATA_TEXT,
	SMTP_DATA_CR,
	SMTP_DATA_DONE,
};

void
smtp_data_init(struct smtp_data *d)
{
	d->state = SMTP_DATA_BOL;
	d->size = 0;
	d->bare = 0;
	d->done = false;
}

static void
smtp_data_emit(struct smtp_data *d, const char *p, size_t n, smtp_data_out_cb *out, void *arg)
{
	if (n == 0)
		return;
	d->size += n;
	out(arg, p, n);
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, smtp_data_out_cb *out, void *arg)
{
	size_t i = 0, run = 0; /* in[run .. i) is pending verbatim output */
	char c;

	if (d->done)
		return 0;
	while (i < len) {
		c = in[i];
		switch (d->state) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				/* Held back: a stuffing dot or the end. */
				smtp_data_emit(d, in + run, i - run, out, arg);
				run = i + 1;
				d->state = SMTP_DATA_DOT;
				i++;
				continue;
			}
			d->state = SMTP_DATA_TEXT;
			continue; /* the same byte as text */
		case SMTP_DATA_DOT:
			if (c == '\r') {
				run = i + 1;
				d->state = SMTP_DATA_DOT_CR;
				i++;
				continue;
			}
			/* Other characters follow: the dot was stuffing. */
			run = i;
			d->state = SMTP_DATA_TEXT;
			continue;
		case SMTP_DATA_DOT_CR:
			if (c == '\n') {
				/* CRLF "." CRLF: the end (4.1.1.4). */
				d->state = SMTP_DATA_DONE;
				d->done = true;
				return i + 1;
			}
			/* "." CR x: the dot was stuffing, the CR is bare. */
			d->bare++;
			smtp_data_emit(d, "\r", 1, out, arg);
			run = i;
			d->state = SMTP_DATA_TEXT;
			continue;
		case SMTP_DATA_TEXT:
			if (c == '\r')
				d->state = SMTP_DATA_CR;
			else if (c == '\n')
				d->bare++; /* bare LF: content, not a line end */
			i++;
			continue;
		case SMTP_DATA_CR:
			if (c == '\n') {
				d->state = SMTP_DATA_BOL;
				i++;
				continue;
			}
			d->bare++; /* the previous CR was bare */
			d->state = SMTP_DATA_TEXT;
			continue; /* the same byte as text (it may be a CR) */
		default:
			/* SMTP_DATA_DONE is caught above; nothing else exists. */
			return i;
		}
	}
	smtp_data_emit(d, in + run, i - run, out, arg);
	return len;
}

void
smtp_bare_init(struct smtp_bare *b)
{
	b->prev_cr = false;
	b->bare = 0;
}

void
smtp_bare_feed(struct smtp_bare *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b->prev_cr) {
			b->prev_cr = false;
			if (p[i] == '\n')
				continue;
			b->bare++; /* CR not followed by LF */
		}
		if (p[i] == '\r')
			b->prev_cr = true;
		else if (p[i] == '\n')
			b->bare++;
	}
}

void
smtp_bare_finish(struct smtp_bare *b)
{
	if (b->prev_cr)
		b->bare++;
	b->prev_cr = false;
}
