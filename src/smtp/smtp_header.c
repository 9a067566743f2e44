/*
 * smtp_header: From: addresses out of a streamed header section.
 *
 * Two layers. The line machine (smtp_header_feed) splits the stream into
 * header fields with their continuation lines, keeps only the value of a
 * From: field (unfolded: each CRLF before white space dropped, RFC 5322
 * 2.2.3) in a bounded buffer, and hands it to the mailbox-list parser
 * (smtp_header_parse_from) when the field ends: at the next field, at the
 * empty line, or at smtp_header_finish. The mailbox-list parser is one
 * pass over a complete value with a small state per mailbox.
 *
 * States of the line machine: LINE_START (first byte of a line decides:
 * LF = end of header section, white space = continuation, else a field
 * name), NAME (up to ':'), VALUE (up to LF), DONE (ignores everything).
 */
#include "smtp/smtp_header.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

static bool
smtp_header_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char
smtp_header_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void
smtp_header_init(struct smtp_header *h)
{
	memset(h, 0, sizeof(*h));
	h->state = SMTP_HEADER_LINE_START;
	buf_init(&h->field, SMTP_HEADER_FIELD_MAX);
}

void
smtp_header_clear(struct smtp_header *h)
{
	if (h == NULL)
		return;
	buf_free(&h->field);
	for (size_t i = 0; i < h->naddrs; i++)
		free(h->addrs[i]);
	free(h->addrs);
	memset(h, 0, sizeof(*h));
}

/* --- the mailbox-list parser ------------------------------------------------ */

/* Is p[0..len) an addr-spec: local@domain, both non-empty, no white space or
 * control bytes outside a quoted local part, at most SMTP_ADDR_MAX? */
static bool
smtp_header_addr_is_valid(const char *p, size_t len)
{
	bool quoted = false;
	const char *at = NULL;

	if (len == 0 || len > SMTP_ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (quoted) {
			if (c == '\\' && i + 1 < len)
				c = (unsigned char)p[++i];
			else if (c == '"')
				quoted = false;
			if ((c < ' ' && c != '\t') || c == 0x7f)
				return false; /* RFC 5322 3.2.4 qtext, quoted-pair: no controls */
			continue;
		}
		if (c == '"') {
			quoted = true;
			continue;
		}
		if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' ||
		    c == ',' || c == ';' || c == ':' || c == '\\')
			return false;
		if (c == '@')
			at = p + i;
	}
	return !quoted && at != NULL && at != p && at + 1 < p + len;
}

struct smtp_header_mbox {
	char bare[SMTP_ADDR_MAX + 1]; /* tokens outside <>, comments dropped */
	size_t barelen;
	bool bare_long;
	bool bare_ws; /* white space or a comment between two tokens */
	bool pending_ws;
	bool has_angle;
	bool after_angle; /* '>' seen: only CFWS may follow */
	char angle[SMTP_ADDR_MAX + 1];
	size_t anglelen;
	bool angle_long;
};

static void
smtp_header_bare_add(struct smtp_header_mbox *m, const char *p, size_t n)
{
	if (m->pending_ws && m->barelen > 0)
		m->bare_ws = true;
	m->pending_ws = false;
	if (m->barelen + n > SMTP_ADDR_MAX) {
		m->bare_long = true;
		return;
	}
	memcpy(m->bare + m->barelen, p, n);
	m->barelen += n;
}

/* Skips a comment starting at p[*i] == '(' (nested, quoted-pairs). -1 when
 * it does not end. */
static int
smtp_header_skip_comment(const char *p, size_t len, size_t *i)
{
	unsigned depth = 0;

	for (; *i < len; (*i)++) {
		if (p[*i] == '\\') {
			(*i)++;
		} else if (p[*i] == '(') {
			depth++;
		} else if (p[*i] == ')') {
			if (--depth == 0)
				return 0;
		}
	}
	return -1;
}

/* The end of a quoted string starting at p[start] == '"': index of the
 * closing quote, or -1. */
static int
smtp_header_skip_quoted(const char *p, size_t len, size_t *i)
{
	for ((*i)++; *i < len; (*i)++) {
		if (p[*i] == '\\')
			(*i)++;
		else if (p[*i] == '"')
			return 0;
	}
	return -1;
}

/* The angle address p[*i] == '<' up to '>' into m->angle, white space and
 * comments dropped, an obs-route (RFC 5322 4.4: "@a,@b:") removed. */
static int
smtp_header_angle(const char *p, size_t len, size_t *i, struct smtp_header_mbox *m)
{
	size_t start;

	for ((*i)++; *i < len && p[*i] != '>'; (*i)++) {
		char c = p[*i];

		if (smtp_header_is_wsp(c))
			continue;
		if (c == '(') {
			if (smtp_header_skip_comment(p, len, i) == -1)
				return -1;
			continue;
		}
		if (c == '<')
			return -1;
		start = *i;
		if (c == '"' && smtp_header_skip_quoted(p, len, i) == -1)
			return -1;
		if (m->anglelen + (*i - start + 1) > SMTP_ADDR_MAX) {
			m->angle_long = true;
			continue;
		}
		memcpy(m->angle + m->anglelen, p + start, *i - start + 1);
		m->anglelen += *i - start + 1;
	}
	if (*i >= len)
		return -1;
	m->angle[m->anglelen] = '\0';
	if (m->anglelen > 0 && m->angle[0] == '@') {
		char *colon = strchr(m->angle, ':');

		if (colon == NULL)
			return -1;
		m->anglelen -= (size_t)(colon + 1 - m->angle);
		memmove(m->angle, colon + 1, m->anglelen + 1);
	}
	m->has_angle = true;
	m->after_angle = true;
	return 0;
}

/* The end of one mailbox: its addr-spec to add_cb. An empty element (RFC
 * 5322 4.4 obs-mbox-list, or an empty group) adds nothing. */
static int
smtp_header_mbox_end(struct smtp_header_mbox *m,
    int (*add_cb)(void *arg, const char *addr, size_t addrlen), void *arg)
{
	int r = 0;

	if (m->has_angle) {
		if (m->angle_long || !smtp_header_addr_is_valid(m->angle, m->anglelen))
			r = -1;
		else
			r = add_cb(arg, m->angle, m->anglelen);
	} else if (m->barelen > 0 || m->bare_long) {
		/* no angle brackets: the whole mailbox is one addr-spec; words
		 * separated by white space are a display name without an address */
		m->bare[m->barelen] = '\0';
		if (m->bare_long || m->bare_ws || !smtp_header_addr_is_valid(m->bare, m->barelen))
			r = -1;
		else
			r = add_cb(arg, m->bare, m->barelen);
	}
	memset(m, 0, sizeof(*m));
	return r;
}

int
smtp_header_parse_from(const char *p, size_t len,
    int (*add_cb)(void *arg, const char *addr, size_t addrlen), void *arg)
{
	struct smtp_header_mbox m;
	bool in_group = false;
	size_t start;

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (smtp_header_is_wsp(c) || c == '\r' || c == '\n') {
			m.pending_ws = true;
			continue;
		}
		if (c == '(') {
			if (smtp_header_skip_comment(p, len, &i) == -1)
				return -1;
			m.pending_ws = true;
			continue;
		}
		if (c == ',' || (c == ';' && in_group)) {
			if (smtp_header_mbox_end(&m, add_cb, arg) == -1)
				return -1;
			if (c == ';')
				in_group = false;
			continue;
		}
		if (m.after_angle)
			return -1; /* text after <addr> */
		if (c == '<') {
			if (smtp_header_angle(p, len, &i, &m) == -1)
				return -1;
			continue;
		}
		if (c == ':') {
			/* RFC 5322 3.4 group: the phrase before ':' is its name */
			if (in_group || m.has_angle)
				return -1;
			memset(&m, 0, sizeof(m));
			in_group = true;
			continue;
		}
		if (c == ';' || c == '>' || c == ')' || c == '\\')
			return -1;
		start = i;
		if (c == '"') {
			if (smtp_header_skip_quoted(p, len, &i) == -1)
				return -1;
		} else {
			while (i + 1 < len && strchr(" \t\r\n(),;:<>\"\\", p[i + 1]) == NULL)
				i++;
		}
		smtp_header_bare_add(&m, p + start, i - start + 1);
	}
	if (in_group)
		return -1; /* RFC 5322 3.4: a group ends with ';' */
	return smtp_header_mbox_end(&m, add_cb, arg);
}

/* --- the line machine ------------------------------------------------------ */

static int
smtp_header_add_cb(void *arg, const char *addr, size_t addrlen)
{
	struct smtp_header *h = arg;

	if (h->naddrs >= SMTP_HEADER_ADDRS_MAX)
		return -1;
	h->addrs = xrealloc(h->addrs, (h->naddrs + 1) * sizeof(*h->addrs));
	h->addrs[h->naddrs++] = xstrndup(addr, addrlen);
	return 0;
}

/* The field in progress has ended. */
static void
smtp_header_field_end(struct smtp_header *h)
{
	if (!h->in_from)
		return;
	h->in_from = false;
	if (!h->bad &&
	    smtp_header_parse_from(h->field.data, h->field.len, smtp_header_add_cb, h) == -1)
		h->bad = true;
	buf_reset(&h->field);
	buf_shrink(&h->field);
}

static void
smtp_header_end(struct smtp_header *h)
{
	smtp_header_field_end(h);
	h->state = SMTP_HEADER_DONE;
}

static void
smtp_header_value(struct smtp_header *h, const char *p, size_t n)
{
	if (h->in_from && !h->bad && buf_append(&h->field, p, n) == -1)
		h->bad = true; /* over SMTP_HEADER_FIELD_MAX */
}

/* A field name byte (RFC 5322 3.6.8 ftext: printable US-ASCII but ':'). */
static void
smtp_header_name_byte(struct smtp_header *h, char c)
{
	unsigned char u = (unsigned char)c;

	if (c == ':') {
		h->in_from = h->namelen > 0 && !h->name_long && h->namelen == 4 &&
		    strncmp(h->name, "from", 4) == 0;
		if (h->namelen == 0) {
			smtp_header_end(h);
			return;
		}
		if (h->in_from) {
			h->nfrom++;
			buf_reset(&h->field);
		}
		h->state = SMTP_HEADER_VALUE;
		return;
	}
	if (smtp_header_is_wsp(c)) {
		h->name_ws = true; /* RFC 5322 4.5.1 obs: WSP before ':' */
		return;
	}
	if (u < 33 || u > 126 || h->name_ws) {
		/* not a header field: the header section is over */
		smtp_header_end(h);
		return;
	}
	if (h->namelen >= SMTP_HEADER_NAME_MAX) {
		h->name_long = true;
		return;
	}
	h->name[h->namelen++] = smtp_header_lower(c);
}

void
smtp_header_feed(struct smtp_header *h, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && h->state != SMTP_HEADER_DONE) {
		char c = p[i];

		if (c == '\r') {
			/* CR is dropped: LF alone ends lines here */
			i++;
			continue;
		}
		switch (h->state) {
		case SMTP_HEADER_LINE_START:
			if (c == '\n') {
				smtp_header_end(h); /* the empty line */
			} else if (smtp_header_is_wsp(c)) {
				smtp_header_value(h, &c, 1); /* unfolded */
				h->state = SMTP_HEADER_VALUE;
			} else {
				smtp_header_field_end(h);
				h->namelen = 0;
				h->name_long = false;
				h->name_ws = false;
				h->state = SMTP_HEADER_NAME;
				smtp_header_name_byte(h, c);
			}
			i++;
			break;
		case SMTP_HEADER_NAME:
			if (c == '\n')
				smtp_header_end(h); /* a line without ':' */
			else
				smtp_header_name_byte(h, c);
			i++;
			break;
		case SMTP_HEADER_VALUE: {
			size_t run = i;

			while (run < n && p[run] != '\r' && p[run] != '\n')
				run++;
			smtp_header_value(h, p + i, run - i);
			i = run;
			if (i < n && p[i] == '\n') {
				h->state = SMTP_HEADER_LINE_START;
				i++;
			}
			break;
		}
		case SMTP_HEADER_DONE:
			break;
		}
	}
}

void
smtp_header_finish(struct smtp_header *h)
{
	if (h->state != SMTP_HEADER_DONE)
		smtp_header_end(h);
}

bool
smtp_header_is_done(const struct smtp_header *h)
{
	return h->state == SMTP_HEADER_DONE;
}

enum smtp_header_from
smtp_header_result(const struct smtp_header *h)
{
	if (h->bad)
		return SMTP_HEADER_FROM_BAD;
	if (h->nfrom == 0)
		return SMTP_HEADER_FROM_NONE;
	if (h->naddrs == 0)
		return SMTP_HEADER_FROM_BAD; /* From: with no address (an empty group) */
	return SMTP_HEADER_FROM_OK;
}
