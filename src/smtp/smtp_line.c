/*
 * smtp_line: splits the command stream into lines (RFC 5321 2.3.8). Pure.
 *
 * The caller owns the input buffer; this module only looks at it and says how
 * many bytes to drop. State kept between calls is only whether we are inside
 * an over-long line being discarded; everything else is recomputed from the
 * unconsumed input, so the result does not depend on how the input was split.
 *
 * Invariant: SMTP_LINE_NEED_MORE is returned only when the unconsumed rest
 * holds no complete line (after dropping *consumed_r bytes, calling again
 * without new input gives NEED_MORE with nothing consumed). An over-long line
 * is reported exactly once, whether it arrives whole or a byte at a time.
 */
#include "smtp/smtp_line.h"

#include <string.h>

void
smtp_line_init(struct smtp_line *s, size_t max)
{
	s->max = max;
	s->skipping = false;
	s->reported = false;
}

enum smtp_line_result
smtp_line_next(struct smtp_line *s, const char *in, size_t len, const char **line_r, size_t *len_r,
    size_t *consumed_r)
{
	const char *lf;
	size_t skipped = 0, n;

	*line_r = NULL;
	*len_r = 0;
	*consumed_r = 0;

	if (s->skipping) {
		lf = len > 0 ? memchr(in, '\n', len) : NULL;
		if (lf == NULL) {
			/* Still inside the over-long line: drop everything. */
			*consumed_r = len;
			return SMTP_LINE_NEED_MORE;
		}
		skipped = (size_t)(lf - in) + 1;
		s->skipping = false;
		s->reported = false;
		/* Go on with what follows, so NEED_MORE keeps meaning "no line". */
		in += skipped;
		len -= skipped;
	}

	lf = len > 0 ? memchr(in, '\n', len) : NULL;
	if (lf != NULL) {
		n = (size_t)(lf - in);
		*consumed_r = skipped + n + 1;
		/* CRLF or bare LF; the CR is not part of the line. */
		if (n > 0 && in[n - 1] == '\r')
			n--;
		if (n > s->max)
			/* Complete but too long: reported now, already dropped. */
			return SMTP_LINE_TOO_LONG;
		*line_r = in;
		*len_r = n;
		return SMTP_LINE_OK;
	}

	/*
	 * No terminator yet. A trailing CR may be the first half of CRLF, so it
	 * does not count against the limit until we know.
	 */
	n = len;
	if (n > 0 && in[n - 1] == '\r')
		n--;
	if (n > s->max) {
		s->skipping = true;
		s->reported = true;
		*consumed_r = skipped + len;
		return SMTP_LINE_TOO_LONG;
	}
	*consumed_r = skipped;
	return SMTP_LINE_NEED_MORE;
}
