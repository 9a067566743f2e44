/*
 * smtp_reply_parse: a pure, incremental parser of server replies (RFC 5321
 * 4.2), for the outbound client (delivery and probe). Bytes go in as they
 * arrive, in any split; one complete reply comes out, and the bytes after it
 * (pipelined replies) are left to the caller.
 *
 * Accepted: "CODE-text" lines followed by one "CODE text" (or bare "CODE")
 * line, CODE three digits with the first 2..5 and the second 0..5 (RFC 5321
 * 4.2: 1xx is not an SMTP reply). Tolerated but flagged: NUL bytes, lines
 * ended by a bare LF, lines whose code differs from the first line's (the
 * final line's code wins). Refused (SMTP_REPLY_PARSE_ERROR, with a static
 * errstr): a line that is not "CODE[ -]...", and every limit below, which
 * bounds the memory a hostile server can make us use.
 *
 * The enhanced status code (RFC 3463: class.subject.detail, class equal to
 * the reply's first digit) is taken from the first line that carries one.
 */
#ifndef SG_SMTP_SMTP_REPLY_PARSE_H
#define SG_SMTP_SMTP_REPLY_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define SMTP_REPLY_LINE_MAX 4096 /* RFC 5321 4.5.3.1.5: reply line at least 512 with CRLF */
#define SMTP_REPLY_LINES_MAX 1000 /* lines of one reply (EHLO has a dozen) */
#define SMTP_REPLY_SIZE_MAX 65536 /* bytes of one reply, CRLFs included */
#define SMTP_REPLY_ENH_MAX 11 /* "5.123.123": RFC 3463 2, 1..3 digits per field */

enum smtp_reply_flag {
	SMTP_REPLY_F_NUL = 1 << 0, /* a NUL byte in a line */
	SMTP_REPLY_F_BARE_LF = 1 << 1, /* a line ended by LF without CR */
	SMTP_REPLY_F_CODE_MISMATCH = 1 << 2, /* lines with different codes (RFC 5321 4.2.1) */
	SMTP_REPLY_F_BARE_CR = 1 << 3, /* a CR inside a line */
};

enum smtp_reply_parse_result {
	SMTP_REPLY_PARSE_MORE, /* every byte consumed; the reply is not complete */
	SMTP_REPLY_PARSE_DONE, /* a complete reply; *consumed_r bytes belong to it */
	SMTP_REPLY_PARSE_ERROR, /* malformed or over a limit: see errstr; stop reading */
};

/* Layout public so it can live on the stack; use the functions below. */
struct smtp_reply_parser {
	int code; /* final line's code, once DONE */
	int first_code;
	char enh[SMTP_REPLY_ENH_MAX + 1]; /* "" when none */
	unsigned flags; /* enum smtp_reply_flag */
	size_t nlines;
	size_t total; /* raw bytes of this reply so far */
	struct buf text; /* each line's text after "CODE-", joined by '\n' */
	char head[4]; /* first bytes of the current line */
	size_t linelen; /* bytes of the current line so far, line end excluded */
	bool cr; /* the last byte was CR */
	bool last; /* the current line is the final one ("CODE " or "CODE") */
	bool done;
	const char *errstr;
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);
void smtp_reply_parser_free(struct smtp_reply_parser *p);
/* Starts a new reply (after DONE), keeping the storage. */
void smtp_reply_parser_reset(struct smtp_reply_parser *p);

/*
 * Feeds data. *consumed_r is set to the bytes used: all of them for MORE,
 * up to and including the final line's LF for DONE, up to the offending
 * byte for ERROR. After DONE or ERROR call reset before feeding again.
 */
enum smtp_reply_parse_result smtp_reply_parse_feed(
    struct smtp_reply_parser *p, const char *data, size_t len, size_t *consumed_r);

/* After DONE. Line i's text (after "CODE-"/"CODE "), not NUL-terminated,
 * valid until the next feed or reset. i < p->nlines. */
const char *smtp_reply_parse_line(const struct smtp_reply_parser *p, size_t i, size_t *len_r);

/* The static name of a flag set ("NUL byte, bare LF"), for findings. */
const char *smtp_reply_flag_names(unsigned flags, char *out, size_t outlen);

/* Pure: the RFC 3463 enhanced code at the start of text/len (followed by a
 * space or the end), whose class must equal code's first digit. Copies it
 * into enh_r (size SMTP_REPLY_ENH_MAX + 1) and returns its length, or 0. */
size_t smtp_reply_parse_enh(int code, const char *text, size_t len, char *enh_r);

#endif
