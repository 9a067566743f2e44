/*
 * smtp_cmd: command recognition (RFC 5321 4.1.1) and argument parsing for
 * MAIL, RCPT (4.1.2 with RFC 6531 for UTF-8), BDAT (RFC 3030), EHLO/HELO and
 * AUTH (RFC 4954). Pure: bytes in, a parsed struct or a reply id out.
 *
 * Every parser takes (p, len), never reads past len and treats NUL as an
 * ordinary (invalid) byte. The only output storage is the caller's struct:
 * struct smtp_path holds the address inline, so nothing is allocated. Its
 * domain pointer points into its own addr array: the struct must not be
 * copied by value without resetting it.
 *
 * Strictness: paths need their angle brackets and must match the 4.1.2
 * grammar (no empty labels, no ".." in dot-strings, hyphens only inside
 * labels, IPv4 / IPv6 address literals only). Interoperability: verbs and
 * keywords in any case, spaces after "FROM:"/"TO:" (seen from deployed
 * clients), several spaces between parameters, trailing white space.
 */
#include "smtp/smtp_cmd.h"

#include <string.h>

/* Where a path parser stands in its input. */
struct smtp_cmd_cur {
	const unsigned char *p;
	size_t len;
	size_t pos;
};

static const struct {
	const char *name;
	enum smtp_verb verb;
	bool takes_arg;
} smtp_cmd_verbs[] = {
    {"EHLO", SMTP_VERB_EHLO, true},
    {"HELO", SMTP_VERB_HELO, true},
    {"STARTTLS", SMTP_VERB_STARTTLS, false},
    {"AUTH", SMTP_VERB_AUTH, true},
    {"MAIL", SMTP_VERB_MAIL, true},
    {"RCPT", SMTP_VERB_RCPT, true},
    {"DATA", SMTP_VERB_DATA, false},
    {"BDAT", SMTP_VERB_BDAT, true},
    {"RSET", SMTP_VERB_RSET, false},
    {"NOOP", SMTP_VERB_NOOP, true},
    {"QUIT", SMTP_VERB_QUIT, false},
    {"VRFY", SMTP_VERB_VRFY, true},
    {"EXPN", SMTP_VERB_EXPN, true},
    {"HELP", SMTP_VERB_HELP, true},
};

static int
smtp_cmd_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

static bool
smtp_cmd_is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
smtp_cmd_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
smtp_cmd_is_hex(int c)
{
	return smtp_cmd_is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* Case-insensitive comparison of p[0..n) with the upper-case word w. */
static bool
smtp_cmd_is_word(const char *p, size_t n, const char *w)
{
	size_t wl = strlen(w);

	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++)
		if (smtp_cmd_upper((unsigned char)p[i]) != w[i])
			return false;
	return true;
}

/* Drops leading SP and trailing SP/HTAB from *p and *n. */
static void
smtp_cmd_trim(const char **p, size_t *n)
{
	while (*n > 0 && (*p)[0] == ' ') {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
		(*n)--;
}

/*
 * The length of the well-formed UTF-8 sequence (RFC 3629 4) at p[0..n) whose
 * first byte is not ASCII, or 0 when it is malformed: overlong forms,
 * surrogates, code points above U+10FFFF and truncated sequences. C1 controls
 * (U+0080..U+009F) are refused too: they belong in no address or name.
 */
static size_t
smtp_cmd_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		need = 1;
		if (p[0] == 0xc2)
			lo = 0xa0; /* not a C1 control */
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 2;
		if (p[0] == 0xe0)
			lo = 0xa0; /* not overlong */
		else if (p[0] == 0xed)
			hi = 0x9f; /* not a surrogate */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 3;
		if (p[0] == 0xf0)
			lo = 0x90; /* not overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f; /* not above U+10FFFF */
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i <= need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need + 1;
}

int
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd_r, enum smtp_reply_id *err_r)
{
	size_t wl = 0, i;
	const char *a;
	size_t al;
	bool takes_arg = false;

	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->arg = line + len;
	cmd_r->arglen = 0;
	*err_r = SMTP_R_SYNTAX;

	/* A command line is text: NUL, and CR or LF inside it, are refused so
	 * that nothing downstream (logs, a relay) can be confused by them. */
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			goto fail;
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (wl < len && line[wl] != ' ')
		wl++;
	for (i = 0; i < sizeof(smtp_cmd_verbs) / sizeof(smtp_cmd_verbs[0]); i++) {
		if (smtp_cmd_is_word(line, wl, smtp_cmd_verbs[i].name)) {
			cmd_r->verb = smtp_cmd_verbs[i].verb;
			takes_arg = smtp_cmd_verbs[i].takes_arg;
			break;
		}
	}
	if (cmd_r->verb == SMTP_VERB_UNKNOWN)
		goto fail;

	a = line + wl;
	al = len - wl;
	while (al > 0 && a[0] == ' ') {
		a++;
		al--;
	}
	*err_r = SMTP_R_ARG_SYNTAX;
	if (cmd_r->verb == SMTP_VERB_MAIL || cmd_r->verb == SMTP_VERB_RCPT) {
		/* 4.1.1.2, 4.1.1.3: the keyword is part of the command. */
		const char *kw = cmd_r->verb == SMTP_VERB_MAIL ? "FROM:" : "TO:";
		size_t kl = strlen(kw);

		if (al < kl || !smtp_cmd_is_word(a, kl, kw))
			goto fail;
		a += kl;
		al -= kl;
		/* "MAIL FROM: <a@b>" is not 4.1.2 but common (old Outlook). */
		while (al > 0 && a[0] == ' ') {
			a++;
			al--;
		}
	}
	if (!takes_arg && al > 0)
		goto fail;
	cmd_r->arg = a;
	cmd_r->arglen = al;
	return 0;
fail:
	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->arg = line;
	cmd_r->arglen = 0;
	return -1;
}

/*
 * Consumes one character that may appear in an address part: an ASCII byte
 * for which ok() holds, or a well-formed non-ASCII UTF-8 sequence, which
 * sets *non_ascii (whether that is allowed is decided once, at the end). Returns false, consuming nothing, when the
 * next character is neither.
 */
static bool
smtp_cmd_take_char(struct smtp_cmd_cur *c, bool (*ok)(int), bool *non_ascii)
{
	size_t n;

	if (c->pos >= c->len)
		return false;
	if (c->p[c->pos] < 0x80) {
		if (!ok(c->p[c->pos]))
			return false;
		c->pos++;
		return true;
	}
	n = smtp_cmd_utf8_len(c->p + c->pos, c->len - c->pos);
	if (n == 0)
		return false;
	c->pos += n;
	*non_ascii = true;
	return true;
}

static bool
smtp_cmd_is_atext(int ch)
{
	/* RFC 5322 3.2.3 atext, as referenced by RFC 5321 4.1.2 */
	return smtp_cmd_is_alpha(ch) || smtp_cmd_is_digit(ch) ||
	    (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

static bool
smtp_cmd_is_qtext(int ch)
{
	/* RFC 5321 4.1.2 qtextSMTP: %d32-33 / %d35-91 / %d93-126 */
	return ch >= 32 && ch <= 126 && ch != '"' && ch != '\\';
}

static bool
smtp_cmd_is_let_dig(int ch)
{
	return smtp_cmd_is_alpha(ch) || smtp_cmd_is_digit(ch);
}

static bool
smtp_cmd_is_ldh(int ch)
{
	return smtp_cmd_is_let_dig(ch) || ch == '-';
}

/* Local-part = Dot-string / Quoted-string (4.1.2, RFC 6531 3.3). */
static int
smtp_cmd_parse_local(struct smtp_cmd_cur *c, bool *non_ascii)
{
	if (c->pos < c->len && c->p[c->pos] == '"') {
		c->pos++;
		for (;;) {
			if (c->pos >= c->len)
				return -1;
			if (c->p[c->pos] == '"') {
				c->pos++;
				return 0;
			}
			if (c->p[c->pos] == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (c->pos + 1 >= c->len || c->p[c->pos + 1] < 32 ||
				    c->p[c->pos + 1] > 126)
					return -1;
				c->pos += 2;
				continue;
			}
			if (!smtp_cmd_take_char(c, smtp_cmd_is_qtext, non_ascii))
				return -1;
		}
	}
	/* Dot-string = Atom *("." Atom); Atom = 1*atext */
	for (;;) {
		if (!smtp_cmd_take_char(c, smtp_cmd_is_atext, non_ascii))
			return -1;
		while (smtp_cmd_take_char(c, smtp_cmd_is_atext, non_ascii))
			;
		if (c->pos >= c->len || c->p[c->pos] != '.')
			return 0;
		c->pos++;
	}
}

/* Snum 3("." Snum), Snum = 1*3DIGIT with a value of 0..255 (4.1.3). */
static bool
smtp_cmd_is_ipv4(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t d = 0;

		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		while (i < n && smtp_cmd_is_digit(p[i]) && d < 3) {
			v = v * 10 + (unsigned)(p[i] - '0');
			i++;
			d++;
		}
		if (d == 0 || v > 255)
			return false;
	}
	return i == n;
}

/*
 * IPv6-addr (4.1.3): 8 groups, or at most 6 around one "::", or the same
 * with the last two groups written as an IPv4 address (6 groups before it, or
 * at most 4 around "::").
 */
static bool
smtp_cmd_is_ipv6(const unsigned char *p, size_t n)
{
	size_t i = 0, groups = 0;
	bool comp = false, v4 = false;

	if (n >= 2 && p[0] == ':' && p[1] == ':') {
		comp = true;
		i = 2;
	} else if (n >= 1 && p[0] == ':') {
		return false;
	}
	while (i < n) {
		size_t start = i, d = 0;

		while (i < n && smtp_cmd_is_hex(p[i]) && d < 5) {
			i++;
			d++;
		}
		if (i < n && p[i] == '.') {
			/* The rest must be the IPv4 part. */
			if (!smtp_cmd_is_ipv4(p + start, n - start))
				return false;
			v4 = true;
			i = n;
			break;
		}
		if (d == 0 || d > 4)
			return false;
		groups++;
		if (i == n)
			break;
		if (p[i] != ':')
			return false;
		i++;
		if (i < n && p[i] == ':') {
			if (comp)
				return false;
			comp = true;
			i++;
			if (i == n)
				break;
		} else if (i == n) {
			return false; /* a single trailing ':' */
		}
	}
	if (v4)
		return comp ? groups <= 4 : groups == 6;
	return comp ? groups <= 6 : groups == 8;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]"
 * (4.1.3). General-address-literal needs an IANA-registered tag and none but
 * IPv6 exists, so it is refused.
 */
static int
smtp_cmd_parse_literal(struct smtp_cmd_cur *c)
{
	const unsigned char *p = c->p + c->pos + 1;
	size_t n = 0;

	while (c->pos + 1 + n < c->len && p[n] != ']')
		n++;
	if (c->pos + 1 + n >= c->len)
		return -1;
	if (n > 5 && smtp_cmd_is_word((const char *)p, 5, "IPV6:")) {
		if (!smtp_cmd_is_ipv6(p + 5, n - 5))
			return -1;
	} else if (!smtp_cmd_is_ipv4(p, n)) {
		return -1;
	}
	c->pos += n + 2;
	return 0;
}

/*
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
 * (4.1.2), or a U-label (RFC 6531 3.3) when UTF-8 is allowed. An ASCII label
 * is at most 63 octets (RFC 1035 2.3.4). Stops at the first byte that cannot
 * continue the domain; the caller checks what follows.
 */
static int
smtp_cmd_parse_domain(struct smtp_cmd_cur *c, bool allow_literal, bool *non_ascii)
{
	if (c->pos < c->len && c->p[c->pos] == '[') {
		if (!allow_literal)
			return -1;
		return smtp_cmd_parse_literal(c);
	}
	for (;;) {
		size_t start = c->pos;
		bool label_utf8 = false;

		while (smtp_cmd_take_char(c, smtp_cmd_is_ldh, &label_utf8))
			;
		if (c->pos == start || c->p[start] == '-' || c->p[c->pos - 1] == '-')
			return -1;
		if (!label_utf8 && c->pos - start > 63)
			return -1;
		if (label_utf8)
			*non_ascii = true;
		if (c->pos >= c->len || c->p[c->pos] != '.')
			return 0;
		c->pos++;
	}
}

/*
 * Parses "<" [ A-d-l ":" ] Mailbox ">" / "<>" (4.1.2) at the start of the
 * cursor into p. is_rcpt: <postmaster> without a domain is allowed
 * (4.5.1), <> is not. Leaves the cursor after ">".
 */
static int
smtp_cmd_parse_path(struct smtp_cmd_cur *c, bool is_rcpt, struct smtp_path *p)
{
	size_t lstart, lend, dstart, dend;

	if (c->pos >= c->len || c->p[c->pos] != '<')
		return -1;
	c->pos++;
	if (c->pos < c->len && c->p[c->pos] == '>') {
		if (is_rcpt)
			return -1;
		c->pos++;
		p->addr[0] = '\0';
		p->local_len = 0;
		p->domain = p->addr;
		return 0;
	}
	if (c->pos < c->len && c->p[c->pos] == '@') {
		/* A-d-l = At-domain *( "," At-domain ): parsed, then dropped. */
		for (;;) {
			c->pos++;
			if (smtp_cmd_parse_domain(c, false, &p->non_ascii) < 0)
				return -1;
			if (c->pos + 1 < c->len && c->p[c->pos] == ',' && c->p[c->pos + 1] == '@') {
				c->pos++;
				continue;
			}
			if (c->pos >= c->len || c->p[c->pos] != ':')
				return -1;
			c->pos++;
			break;
		}
	}

	lstart = c->pos;
	if (smtp_cmd_parse_local(c, &p->non_ascii) < 0)
		return -1;
	lend = c->pos;
	if (lend - lstart > SMTP_LOCAL_MAX)
		return -1;
	if (c->pos < c->len && c->p[c->pos] == '>' && is_rcpt &&
	    smtp_cmd_is_word((const char *)c->p + lstart, lend - lstart, "POSTMASTER")) {
		/* 4.5.1: <Postmaster> in any case, no domain. */
		memcpy(p->addr, c->p + lstart, lend - lstart);
		p->addr[lend - lstart] = '\0';
		p->local_len = lend - lstart;
		p->domain = p->addr + p->local_len;
		c->pos++;
		return 0;
	}
	if (c->pos >= c->len || c->p[c->pos] != '@')
		return -1;
	c->pos++;
	dstart = c->pos;
	if (smtp_cmd_parse_domain(c, true, &p->non_ascii) < 0)
		return -1;
	dend = c->pos;
	if (dend - dstart > SMTP_DOMAIN_MAX)
		return -1;
	if (c->pos >= c->len || c->p[c->pos] != '>')
		return -1;
	c->pos++;

	memcpy(p->addr, c->p + lstart, lend - lstart);
	p->local_len = lend - lstart;
	p->addr[p->local_len] = '@';
	memcpy(p->addr + p->local_len + 1, c->p + dstart, dend - dstart);
	p->addr[p->local_len + 1 + (dend - dstart)] = '\0';
	p->domain = p->addr + p->local_len + 1;
	return 0;
}

static bool
smtp_cmd_is_value_char(int ch)
{
	/* esmtp-value = 1*(%d33-60 / %d62-126) (4.1.2) */
	return ch >= 33 && ch <= 126 && ch != '=';
}

/* xtext (RFC 3461 4): "!".."~" except "+" and "=", or "+" 2HEXDIG (upper). */
static bool
smtp_cmd_is_xtext(const unsigned char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '+') {
			for (size_t k = 1; k <= 2; k++)
				if (i + k >= n ||
				    !(smtp_cmd_is_digit(v[i + k]) ||
				        (v[i + k] >= 'A' && v[i + k] <= 'F')))
					return false;
			i += 2;
		} else if (v[i] < 33 || v[i] > 126 || v[i] == '=') {
			return false;
		}
	}
	return true;
}

/* SIZE value (RFC 1870 3): 1*20DIGIT. A value past 2^64-1 is kept as
 * UINT64_MAX so that it is refused as too large (552), not as bad syntax. */
static bool
smtp_cmd_parse_size(const unsigned char *v, size_t n, uint64_t *size_r)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!smtp_cmd_is_digit(v[i]))
			return false;
		unsigned d = (unsigned)(v[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			x = UINT64_MAX; /* and stays there */
		else
			x = x * 10 + d;
	}
	*size_r = x;
	return true;
}

/*
 * Mail-parameters = esmtp-param *(SP esmtp-param) (4.1.2), after the path.
 * is_rcpt: none is supported. Errors: SMTP_R_ARG_SYNTAX for a malformed
 * parameter or value, SMTP_R_PARAM_UNKNOWN for an unknown or repeated one.
 */
static int
smtp_cmd_parse_params(
    struct smtp_cmd_cur *c, bool is_rcpt, struct smtp_path *p, enum smtp_reply_id *err_r)
{
	bool seen_body = false;

	if (c->pos < c->len && c->p[c->pos] != ' ') {
		/* "<a@b>x": the path is not properly ended. */
		*err_r = is_rcpt ? SMTP_R_RCPT_SYNTAX : SMTP_R_SENDER_SYNTAX;
		return -1;
	}
	for (;;) {
		const unsigned char *k, *v = NULL;
		size_t kl = 0, vl = 0;
		bool dummy = false;

		while (c->pos < c->len && c->p[c->pos] == ' ')
			c->pos++;
		if (c->pos >= c->len)
			return 0;
		*err_r = SMTP_R_ARG_SYNTAX;
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		k = c->p + c->pos;
		if (!smtp_cmd_is_let_dig(k[0]))
			return -1;
		while (c->pos < c->len && smtp_cmd_is_ldh(c->p[c->pos])) {
			c->pos++;
			kl++;
		}
		if (c->pos < c->len && c->p[c->pos] == '=') {
			c->pos++;
			v = c->p + c->pos;
			/* RFC 6531 3.3: esmtp-value =/ UTF8-non-ascii */
			while (smtp_cmd_take_char(c, smtp_cmd_is_value_char, &dummy))
				;
			vl = (size_t)(c->p + c->pos - v);
			if (vl == 0)
				return -1;
		}
		if (c->pos < c->len && c->p[c->pos] != ' ')
			return -1;

		*err_r = SMTP_R_PARAM_UNKNOWN;
		if (is_rcpt)
			return -1;
		if (smtp_cmd_is_word((const char *)k, kl, "SIZE")) {
			if (p->has_size)
				return -1;
			*err_r = SMTP_R_ARG_SYNTAX;
			if (v == NULL || !smtp_cmd_parse_size(v, vl, &p->size))
				return -1;
			p->has_size = true;
		} else if (smtp_cmd_is_word((const char *)k, kl, "BODY")) {
			/* RFC 6152 2 */
			if (seen_body)
				return -1;
			seen_body = true;
			*err_r = SMTP_R_ARG_SYNTAX;
			if (v != NULL && smtp_cmd_is_word((const char *)v, vl, "7BIT"))
				p->body = SMTP_BODY_7BIT;
			else if (v != NULL && smtp_cmd_is_word((const char *)v, vl, "8BITMIME"))
				p->body = SMTP_BODY_8BITMIME;
			else
				return -1;
		} else if (smtp_cmd_is_word((const char *)k, kl, "SMTPUTF8")) {
			/* RFC 6531 3.4: no value */
			if (p->smtputf8)
				return -1;
			*err_r = SMTP_R_ARG_SYNTAX;
			if (v != NULL)
				return -1;
			p->smtputf8 = true;
		} else if (smtp_cmd_is_word((const char *)k, kl, "AUTH")) {
			/* RFC 4954 5: AUTH=<mailbox as xtext> or <>; ignored. */
			if (p->has_auth)
				return -1;
			*err_r = SMTP_R_ARG_SYNTAX;
			if (v == NULL || !smtp_cmd_is_xtext(v, vl))
				return -1;
			p->has_auth = true;
		} else {
			return -1;
		}
	}
}

static int
smtp_cmd_parse_path_params(const char *arg, size_t len, bool is_rcpt, bool smtputf8,
    struct smtp_path *p_r, enum smtp_reply_id *err_r)
{
	struct smtp_cmd_cur c;

	memset(p_r, 0, sizeof(*p_r));
	p_r->domain = p_r->addr;
	p_r->body = SMTP_BODY_7BIT;
	smtp_cmd_trim(&arg, &len);
	c.p = (const unsigned char *)arg;
	c.len = len;
	c.pos = 0;
	*err_r = is_rcpt ? SMTP_R_RCPT_SYNTAX : SMTP_R_SENDER_SYNTAX;
	if (smtp_cmd_parse_path(&c, is_rcpt, p_r) < 0)
		goto fail;
	if (smtp_cmd_parse_params(&c, is_rcpt, p_r, err_r) < 0)
		goto fail;
	if (!is_rcpt)
		smtputf8 = p_r->smtputf8;
	if (p_r->non_ascii && !smtputf8) {
		/* RFC 6531 3.2: UTF-8 only in an SMTPUTF8 transaction */
		*err_r = SMTP_R_SMTPUTF8_REQUIRED;
		goto fail;
	}
	return 0;
fail:
	memset(p_r, 0, sizeof(*p_r));
	p_r->domain = p_r->addr;
	return -1;
}

int
smtp_parse_mail(const char *arg, size_t len, struct smtp_path *p_r, enum smtp_reply_id *err_r)
{
	return smtp_cmd_parse_path_params(arg, len, false, false, p_r, err_r);
}

int
smtp_parse_rcpt(
    const char *arg, size_t len, bool smtputf8, struct smtp_path *p_r, enum smtp_reply_id *err_r)
{
	return smtp_cmd_parse_path_params(arg, len, true, smtputf8, p_r, err_r);
}

int
smtp_parse_bdat(
    const char *arg, size_t len, uint64_t *size_r, bool *last_r, enum smtp_reply_id *err_r)
{
	uint64_t x = 0;
	size_t i = 0;

	*size_r = 0;
	*last_r = false;
	*err_r = SMTP_R_ARG_SYNTAX;
	smtp_cmd_trim(&arg, &len);
	/* bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] (RFC 3030 2) */
	if (len == 0 || !smtp_cmd_is_digit((unsigned char)arg[0]))
		return -1;
	while (i < len && smtp_cmd_is_digit((unsigned char)arg[i])) {
		unsigned d = (unsigned)(arg[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -1; /* a chunk that cannot be framed */
		x = x * 10 + d;
		i++;
	}
	if (i < len) {
		if (arg[i] != ' ')
			return -1;
		while (i < len && arg[i] == ' ')
			i++;
		if (!smtp_cmd_is_word(arg + i, len - i, "LAST"))
			return -1;
		*last_r = true;
	}
	*size_r = x;
	return 0;
}

int
smtp_parse_helo(const char *arg, size_t len, enum smtp_reply_id *err_r)
{
	*err_r = SMTP_R_ARG_SYNTAX;
	smtp_cmd_trim(&arg, &len);
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)arg[i] < 33 || (unsigned char)arg[i] > 126)
			return -1;
	return 0;
}

int
smtp_parse_auth(const char *arg, size_t len, char mech_r[SMTP_MECH_MAX + 1], const char **ir_r,
    size_t *irlen_r, enum smtp_reply_id *err_r)
{
	size_t i = 0, start;

	mech_r[0] = '\0';
	*ir_r = NULL;
	*irlen_r = 0;
	*err_r = SMTP_R_ARG_SYNTAX;
	smtp_cmd_trim(&arg, &len);
	/* sasl-mech = 1*20mech-char; mech-char = UPPER-ALPHA / DIGIT / "-" / "_"
	 * (RFC 4422 3.1); matched in any case as clients send it. */
	while (i < len && arg[i] != ' ') {
		int ch = (unsigned char)arg[i];

		if (i >= SMTP_MECH_MAX ||
		    !(smtp_cmd_is_alpha(ch) || smtp_cmd_is_digit(ch) || ch == '-' || ch == '_'))
			goto fail;
		mech_r[i] = (char)smtp_cmd_upper(ch);
		i++;
	}
	if (i == 0)
		goto fail;
	mech_r[i] = '\0';
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return 0;
	/* initial-response = base64 / "=" (RFC 4954 4): one token of printable
	 * ASCII; its decoding (and 501 5.5.2) is the caller's. */
	start = i;
	for (; i < len; i++)
		if ((unsigned char)arg[i] < 33 || (unsigned char)arg[i] > 126)
			goto fail;
	*ir_r = arg + start;
	*irlen_r = len - start;
	return 0;
fail:
	mech_r[0] = '\0';
	return -1;
}
