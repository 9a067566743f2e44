/*
 * sender: does an authenticated user own a sender address?
 *
 * An address is compared as (local part, domain): split at its last '@'
 * (a quoted local part may itself contain '@'), the local part unquoted
 * when it is a quoted string, both halves compared ASCII-case-insensitively.
 * Patterns come from the senders= field of the passwd file, validated when
 * written by `smtpgate user senders`; here a malformed pattern simply never
 * matches.
 */
#include "policy/sender.h"

#include <stdio.h>
#include <string.h>

#include "smtp/smtp_cmd.h"

struct sender_addr {
	char local[SMTP_ADDR_MAX + 1];
	size_t local_len;
	const char *domain; /* into the caller's string */
	size_t domain_len;
};

static char
sender_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
sender_eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		if (sender_lower(a[i]) != sender_lower(b[i]))
			return false;
	}
	return true;
}

/* Splits p[0..len) into local part (unquoted) and domain. -1 when it is not
 * local@domain with both halves non-empty. */
static int
sender_split(const char *p, size_t len, struct sender_addr *a)
{
	const char *at = NULL;

	for (size_t i = len; i-- > 0;) {
		if (p[i] == '@') {
			at = p + i;
			break;
		}
	}
	if (at == NULL || at == p || at + 1 == p + len)
		return -1;
	a->domain = at + 1;
	a->domain_len = (size_t)(p + len - a->domain);
	a->local_len = 0;
	if (p[0] == '"' && at - p >= 2 && at[-1] == '"') {
		/* RFC 5321 4.1.2 Quoted-string: "\" quotes the next byte */
		for (const char *q = p + 1; q < at - 1; q++) {
			if (*q == '\\' && q + 1 < at - 1)
				q++;
			if (a->local_len >= SMTP_ADDR_MAX)
				return -1;
			a->local[a->local_len++] = *q;
		}
	} else {
		if ((size_t)(at - p) > SMTP_ADDR_MAX)
			return -1;
		memcpy(a->local, p, (size_t)(at - p));
		a->local_len = (size_t)(at - p);
	}
	if (a->local_len == 0)
		return -1;
	a->local[a->local_len] = '\0';
	return 0;
}

/* One pattern p[0..len) against the split address a. */
static bool
sender_pattern_matches(const char *p, size_t len, const struct sender_addr *a)
{
	struct sender_addr pa;

	if (len >= 2 && p[0] == '@')
		return sender_eq_nocase(p + 1, len - 1, a->domain, a->domain_len);
	if (sender_split(p, len, &pa) == -1)
		return false;
	return sender_eq_nocase(pa.local, pa.local_len, a->local, a->local_len) &&
	    sender_eq_nocase(pa.domain, pa.domain_len, a->domain, a->domain_len);
}

bool
sender_owns(const char *login, const char *patterns, const char *address)
{
	struct sender_addr a, la;
	const char *p, *end, *comma;

	if (address == NULL || sender_split(address, strlen(address), &a) == -1)
		return false;
	if (login != NULL && sender_split(login, strlen(login), &la) == 0 &&
	    sender_eq_nocase(la.local, la.local_len, a.local, a.local_len) &&
	    sender_eq_nocase(la.domain, la.domain_len, a.domain, a.domain_len))
		return true;
	if (patterns == NULL)
		return false;
	for (p = patterns; *p != '\0'; p = *comma != '\0' ? comma + 1 : comma) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		end = comma;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > p && sender_pattern_matches(p, (size_t)(end - p), &a))
			return true;
	}
	return false;
}

bool
sender_envelope_is_allowed(const char *login, const char *patterns, const char *address)
{
	if (address != NULL && address[0] == '\0')
		return true;
	return sender_owns(login, patterns, address);
}

int
sender_pattern_check(const char *pattern, const char **errstr_r)
{
	size_t len = strlen(pattern);
	const char *at = strchr(pattern, '@');

	for (const char *p = pattern; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c == 0x7f || c == ',' || c == ':' || c == '"') {
			*errstr_r =
			    "a pattern has no white space, control characters, ',', ':' or '\"'";
			return -1;
		}
	}
	if (len > SMTP_ADDR_MAX) {
		*errstr_r = "a pattern has at most 320 bytes";
		return -1;
	}
	if (at == NULL || strchr(at + 1, '@') != NULL || at[1] == '\0') {
		*errstr_r = "a pattern is an address (local@domain) or @domain";
		return -1;
	}
	if ((size_t)(at - pattern) > SMTP_LOCAL_MAX || strlen(at + 1) > SMTP_DOMAIN_MAX) {
		*errstr_r = "local part at most 64 bytes, domain at most 255 (RFC 5321 4.5.3.1)";
		return -1;
	}
	if (at[1] == '.' || pattern[len - 1] == '.' || strstr(at, "..") != NULL) {
		*errstr_r = "bad domain in pattern";
		return -1;
	}
	return 0;
}

/* Appends s to out[*n..outlen) with non-printable bytes as '?'. false when
 * it did not fit (out is cut there). */
static bool
sender_text_append(char *out, size_t outlen, size_t *n, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (*n + 1 >= outlen)
			return false;
		out[(*n)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[*n] = '\0';
	return true;
}

void
sender_reject_text(
    const char *login, const char *patterns, const char *header_addr, char *out, size_t outlen)
{
	/* room kept for the ")" and a "..." after a cut list */
	size_t n = 0, lim = outlen > 8 ? outlen - 5 : outlen, items = 0;
	const char *p, *end, *comma;
	bool fits;

	if (outlen == 0)
		return;
	out[0] = '\0';
	fits = sender_text_append(out, lim, &n, "Sender address rejected: not owned by user ",
	           strlen("Sender address rejected: not owned by user ")) &&
	    sender_text_append(out, lim, &n, login, strlen(login));
	if (fits && header_addr != NULL) {
		fits = sender_text_append(out, lim, &n, " (header From: ", 15) &&
		    sender_text_append(out, lim, &n, header_addr, strlen(header_addr)) &&
		    sender_text_append(out, lim, &n, "; allowed: ", 11);
	} else if (fits) {
		fits = sender_text_append(out, lim, &n, " (allowed: ", 11);
	}
	if (fits && strchr(login, '@') != NULL) {
		fits = sender_text_append(out, lim, &n, login, strlen(login));
		items++;
	}
	for (p = patterns != NULL ? patterns : ""; fits && *p != '\0';
	     p = *comma != '\0' ? comma + 1 : comma) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		end = comma;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == p)
			continue;
		if (items++ > 0)
			fits = sender_text_append(out, lim, &n, ", ", 2);
		if (fits)
			fits = sender_text_append(out, lim, &n, p, (size_t)(end - p));
	}
	if (fits && items == 0)
		fits = sender_text_append(out, lim, &n, "none", 4);
	if (!fits)
		(void)sender_text_append(out, outlen, &n, "...", 3);
	(void)sender_text_append(out, outlen, &n, ")", 1);
}
