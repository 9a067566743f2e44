/*
 * smtp_reply_parse: incremental parser of SMTP/LMTP server replies (see the
 * header). A byte-at-a-time state machine: the first four bytes of each line
 * are checked as they arrive (so garbage such as a TLS record is refused at
 * its first byte), the rest of the line is appended to the text buffer, and
 * every limit is checked before anything grows.
 *
 * Invariants: total <= SMTP_REPLY_SIZE_MAX, linelen <= SMTP_REPLY_LINE_MAX,
 * nlines <= SMTP_REPLY_LINES_MAX; a CR is held back (p->cr) until the next
 * byte says whether it ends the line or is a bare CR inside it.
 */
#include "smtp/smtp_reply_parse.h"

#include <stdio.h>
#include <string.h>

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->text, SMTP_REPLY_SIZE_MAX);
}

void
smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	buf_free(&p->text);
}

void
smtp_reply_parser_reset(struct smtp_reply_parser *p)
{
	struct buf keep = p->text;

	buf_reset(&keep);
	memset(p, 0, sizeof(*p));
	p->text = keep;
}

static bool
smtp_reply_head_ok(const char *h, size_t n)
{
	/* RFC 5321 4.2: 2yz..5yz, second digit 0..5 */
	if (n >= 1 && (h[0] < '2' || h[0] > '5'))
		return false;
	if (n >= 2 && (h[1] < '0' || h[1] > '5'))
		return false;
	if (n >= 3 && (h[2] < '0' || h[2] > '9'))
		return false;
	if (n >= 4 && h[3] != ' ' && h[3] != '-')
		return false;
	return true;
}

static bool
smtp_reply_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

size_t
smtp_reply_parse_enh(int code, const char *text, size_t len, char *enh_r)
{
	size_t i = 0, field = 0, digits = 0;

	/* RFC 3463 2: class "." subject "." detail; class is 2, 4 or 5 and
	 * equals the reply's class (RFC 2034 4). */
	if (len < 5 || text[0] != (char)('0' + code / 100) ||
	    (text[0] != '2' && text[0] != '4' && text[0] != '5'))
		return 0;
	for (i = 0; i < len && i <= SMTP_REPLY_ENH_MAX; i++) {
		char c = text[i];

		if (c == ' ')
			break;
		if (c == '.') {
			if (digits == 0 || field == 2)
				return 0;
			field++;
			digits = 0;
			continue;
		}
		if (!smtp_reply_is_digit(c) || ++digits > (field == 0 ? 1u : 3u))
			return 0;
	}
	if (field != 2 || digits == 0 || i > SMTP_REPLY_ENH_MAX || (i < len && text[i] != ' '))
		return 0;
	memcpy(enh_r, text, i);
	enh_r[i] = '\0';
	return i;
}

const char *
smtp_reply_parse_line(const struct smtp_reply_parser *p, size_t i, size_t *len_r)
{
	const char *s, *end;

	if (p->text.data == NULL) {
		*len_r = 0;
		return "";
	}
	s = p->text.data;
	end = s + p->text.len;
	for (; i > 0; i--) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		if (nl == NULL) {
			*len_r = 0;
			return end;
		}
		s = nl + 1;
	}
	const char *nl = memchr(s, '\n', (size_t)(end - s));

	*len_r = nl == NULL ? (size_t)(end - s) : (size_t)(nl - s);
	return s;
}

const char *
smtp_reply_flag_names(unsigned flags, char *out, size_t outlen)
{
	static const struct {
		unsigned f;
		const char *name;
	} names[] = {
	    {SMTP_REPLY_F_NUL, "NUL byte"},
	    {SMTP_REPLY_F_BARE_LF, "bare LF line end"},
	    {SMTP_REPLY_F_BARE_CR, "bare CR"},
	    {SMTP_REPLY_F_CODE_MISMATCH, "lines with different codes"},
	};
	size_t used = 0;

	if (outlen == 0)
		return out;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n;

		if ((flags & names[i].f) == 0)
			continue;
		n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", names[i].name);
		if (n < 0 || (size_t)n >= outlen - used)
			break;
		used += (size_t)n;
	}
	return out;
}

/* The line just ended (its LF consumed). DONE when it was the final one. */
static enum smtp_reply_parse_result
smtp_reply_end_line(struct smtp_reply_parser *p)
{
	int code;

	if (p->linelen < 3) {
		p->errstr = "reply line shorter than a reply code";
		return SMTP_REPLY_PARSE_ERROR;
	}
	code = (p->head[0] - '0') * 100 + (p->head[1] - '0') * 10 + (p->head[2] - '0');
	if (p->nlines == 0)
		p->first_code = code;
	else if (code != p->first_code)
		p->flags |= SMTP_REPLY_F_CODE_MISMATCH;
	if (++p->nlines > SMTP_REPLY_LINES_MAX) {
		p->errstr = "more than "
		            "1000"
		            " lines in one reply";
		return SMTP_REPLY_PARSE_ERROR;
	}
	p->last = p->linelen == 3 || p->head[3] == ' ';
	p->linelen = 0;
	p->cr = false;
	if (!p->last) {
		if (buf_append(&p->text, "\n", 1) == -1) {
			p->errstr = "reply too large";
			return SMTP_REPLY_PARSE_ERROR;
		}
		return SMTP_REPLY_PARSE_MORE;
	}
	p->code = code;
	p->done = true;
	for (size_t i = 0; i < p->nlines; i++) {
		size_t n;
		const char *s = smtp_reply_parse_line(p, i, &n);

		if (smtp_reply_parse_enh(code, s, n, p->enh) > 0)
			break;
	}
	return SMTP_REPLY_PARSE_DONE;
}

/* One byte of line content (not a line end). */
static enum smtp_reply_parse_result
smtp_reply_byte(struct smtp_reply_parser *p, char c)
{
	if (++p->linelen > SMTP_REPLY_LINE_MAX) {
		p->errstr = "reply line longer than 4096 bytes";
		return SMTP_REPLY_PARSE_ERROR;
	}
	if (c == '\0')
		p->flags |= SMTP_REPLY_F_NUL;
	if (p->linelen <= 4) {
		p->head[p->linelen - 1] = c;
		if (!smtp_reply_head_ok(p->head, p->linelen)) {
			p->errstr = "not an SMTP reply line (no 3-digit code)";
			return SMTP_REPLY_PARSE_ERROR;
		}
		return SMTP_REPLY_PARSE_MORE;
	}
	if (buf_append(&p->text, &c, 1) == -1) {
		p->errstr = "reply too large";
		return SMTP_REPLY_PARSE_ERROR;
	}
	return SMTP_REPLY_PARSE_MORE;
}

enum smtp_reply_parse_result
smtp_reply_parse_feed(struct smtp_reply_parser *p, const char *data, size_t len, size_t *consumed_r)
{
	enum smtp_reply_parse_result r = SMTP_REPLY_PARSE_MORE;
	size_t i;

	*consumed_r = 0;
	if (p->done || p->errstr != NULL) {
		p->errstr = p->errstr != NULL ? p->errstr : "reply parser not reset";
		return SMTP_REPLY_PARSE_ERROR;
	}
	for (i = 0; i < len; i++) {
		char c = data[i];

		if (++p->total > SMTP_REPLY_SIZE_MAX) {
			p->errstr = "reply larger than 65536 bytes";
			r = SMTP_REPLY_PARSE_ERROR;
			break;
		}
		if (c == '\n') {
			if (!p->cr)
				p->flags |= SMTP_REPLY_F_BARE_LF;
			r = smtp_reply_end_line(p);
			if (r != SMTP_REPLY_PARSE_MORE) {
				i++;
				break;
			}
			continue;
		}
		if (p->cr) {
			/* the held-back CR was inside the line */
			p->cr = false;
			p->flags |= SMTP_REPLY_F_BARE_CR;
			r = smtp_reply_byte(p, '\r');
			if (r != SMTP_REPLY_PARSE_MORE)
				break;
		}
		if (c == '\r') {
			p->cr = true;
			continue;
		}
		r = smtp_reply_byte(p, c);
		if (r != SMTP_REPLY_PARSE_MORE)
			break;
	}
	*consumed_r = r == SMTP_REPLY_PARSE_ERROR ? i : (r == SMTP_REPLY_PARSE_DONE ? i : len);
	return r;
}
