/*
 * smtp_line: splits the command stream into lines (RFC 5321 2.3.8). Pure.
 *
 * A line ends at CRLF; a bare LF is also accepted as a command terminator
 * (the CR, if any, is not part of the line). Bare LF handling inside DATA is
 * smtp_data's job, not this one's. A line longer than max (terminator
 * excluded) is reported once as SMTP_LINE_TOO_LONG and then skipped up to and
 * including its terminator, so the session can answer 500 5.5.6 and go on.
 */
#ifndef SG_SMTP_SMTP_LINE_H
#define SG_SMTP_SMTP_LINE_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_CMD_LINE_MAX 2048 /* RFC 5321 4.5.3.1.4: at least 512 incl. CRLF */
#define SMTP_TEXT_LINE_MAX 998 /* RFC 5321 4.5.3.1.6: 1000 incl. CRLF */
#define SASL_LINE_MAX 12288 /* RFC 4954 4: at least 12288 */

enum smtp_line_result {
	SMTP_LINE_NEED_MORE, /* no complete line yet; *consumed_r bytes may be dropped */
	SMTP_LINE_OK, /* *line_r and *len_r hold one line without terminator */
	SMTP_LINE_TOO_LONG, /* the line exceeded max; skipping it */
};

struct smtp_line {
	size_t max;
	bool skipping; /* inside an over-long line, discarding to its end */
	bool reported; /* SMTP_LINE_TOO_LONG already returned for it */
};

void smtp_line_init(struct smtp_line *s, size_t max);
/*
 * Looks at in[0..len) (the unconsumed input). Sets *consumed_r to the number
 * of bytes the caller must drop from the front of its input before calling
 * again (the line and its terminator for SMTP_LINE_OK; skipped bytes
 * otherwise). For SMTP_LINE_OK, *line_r points into in and *len_r excludes
 * the terminator; valid until the caller drops the bytes.
 */
enum smtp_line_result smtp_line_next(struct smtp_line *s, const char *in, size_t len,
    const char **line_r, size_t *len_r, size_t *consumed_r);

#endif
