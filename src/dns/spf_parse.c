/*
 * spf_parse: RFC 7208 record parser (see spf_parse.h).
 *
 * The record is split on SP into terms (RFC 7208 12: terms = *( 1*SP (
 * directive / modifier ) )); each term is checked against its ABNF rule.
 * A domain-spec may end in a dual-cidr-length; since a macro-literal may
 * itself contain '/', the cidr suffix is taken from the end (as every
 * implementation does). Nothing here touches DNS; the returned strings are
 * malloc'd copies owned by the record.
 */
#include "dns/spf_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strdist.h"
#include "lib/xalloc.h"

static const struct {
	const char *name;
	enum spf_kind kind;
} spf_mechanisms[] = {
    {"all", SPF_ALL},
    {"include", SPF_INCLUDE},
    {"a", SPF_A},
    {"mx", SPF_MX},
    {"ptr", SPF_PTR},
    {"ip4", SPF_IP4},
    {"ip6", SPF_IP6},
    {"exists", SPF_EXISTS},
};

const char *
spf_kind_name(enum spf_kind k)
{
	switch (k) {
	case SPF_ALL:
		return "all";
	case SPF_INCLUDE:
		return "include";
	case SPF_A:
		return "a";
	case SPF_MX:
		return "mx";
	case SPF_PTR:
		return "ptr";
	case SPF_IP4:
		return "ip4";
	case SPF_IP6:
		return "ip6";
	case SPF_EXISTS:
		return "exists";
	case SPF_REDIRECT:
		return "redirect";
	case SPF_EXP:
		return "exp";
	case SPF_UNKNOWN_MODIFIER:
		return "modifier";
	}
	return "?";
}

static bool
spf_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
spf_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
spf_is_alnum(char c)
{
	return spf_is_alpha(c) || spf_is_digit(c);
}

bool
spf_is_record(const char *p, size_t len)
{
	/* RFC 7208 4.5: "v=spf1" exactly, then SP or the end of the record */
	if (len < 6 || strncasecmp(p, "v=spf1", 6) != 0)
		return false;
	return len == 6 || p[6] == ' ';
}

bool
spf_is_near_record(const char *p, size_t len, const char **why_r)
{
	char squeezed[8];
	size_t lead = 0, nw = 0, ns = 0;

	if (spf_is_record(p, len))
		return false;
	while (lead < len && (p[lead] == ' ' || p[lead] == '\t'))
		lead++;
	if (lead > 0 && spf_is_record(p + lead, len - lead)) {
		*why_r = "it starts with white space before \"v=spf1\"";
		return true;
	}
	if (lead < len && p[lead] == '"' && spf_is_record(p + lead + 1, len - lead - 1)) {
		*why_r = "it is wrapped in quote characters (a DNS form that took the quotes "
		         "as part of the text)";
		return true;
	}
	if (len - lead > 6 && strncasecmp(p + lead, "v=spf1", 6) == 0) {
		*why_r = "\"v=spf1\" is not followed by a space (RFC 7208 4.5)";
		return true;
	}
	/* "v = spf1", "v=spf 1": the version with white space inside */
	for (size_t i = lead; i < len && ns < sizeof(squeezed) - 1 && i < lead + 12; i++) {
		if (p[i] != ' ' && p[i] != '\t')
			squeezed[ns++] = (char)tolower((unsigned char)p[i]);
	}
	squeezed[ns] = '\0';
	if (ns >= 6 && memcmp(squeezed, "v=spf1", 6) == 0) {
		*why_r = "the version \"v=spf1\" has white space inside";
		return true;
	}
	/* a typo in the first word ("v=spf2", "v=sfp1", "spf1", "v:spf1"); the
	 * Sender ID records ("spf2.0/...", RFC 4406) are something else */
	while (lead + nw < len && p[lead + nw] != ' ' && p[lead + nw] != '\t')
		nw++;
	if (nw >= 6 && strncasecmp(p + lead, "spf2.0", 6) == 0)
		return false;
	if (nw >= 3 && strdist_osa(p + lead, nw, "v=spf1", 6) <= 2 &&
	    (memchr(p + lead, 's', nw) || memchr(p + lead, 'S', nw)) &&
	    (memchr(p + lead, 'f', nw) || memchr(p + lead, 'F', nw))) {
		*why_r = "its version is not \"v=spf1\" (a typo?)";
		return true;
	}
	return false;
}

/*
 * macro-expand = ( "%{" macro-letter transformers *delimiter "}" )
 *                / "%%" / "%_" / "%-"
 * Returns the length of the expansion at p, or 0 when it is malformed.
 */
static size_t
spf_macro_expand_len(const char *p, size_t len, bool exp)
{
	size_t i, digits = 0;
	const char *letters = exp ? "slodiphcrtv" : "slodiphv";
	char l;

	if (len < 2 || p[0] != '%')
		return 0;
	if (p[1] == '%' || p[1] == '_' || p[1] == '-')
		return 2;
	if (p[1] != '{' || len < 4)
		return 0;
	l = p[2];
	if (l >= 'A' && l <= 'Z')
		l = (char)(l - 'A' + 'a'); /* upper case asks for URL escaping */
	if (strchr(letters, l) == NULL || l == '\0')
		return 0;
	i = 3;
	while (i < len && spf_is_digit(p[i])) {
		/* RFC 7208 7.3: a DIGIT transformer is non-zero */
		if (digits == 0 && p[i] == '0')
			return 0;
		if (++digits > 3)
			return 0;
		i++;
	}
	if (i < len && (p[i] == 'r' || p[i] == 'R'))
		i++;
	while (i < len && strchr(".-+,/_=", p[i]) != NULL && p[i] != '\0')
		i++;
	if (i >= len || p[i] != '}')
		return 0;
	return i + 1;
}

bool
spf_macro_string_is_valid(const char *p, size_t len, bool exp)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%') {
			size_t n = spf_macro_expand_len(p + i, len - i, exp);

			if (n == 0)
				return false;
			i += n;
			continue;
		}
		/* macro-literal = %x21-24 / %x26-7E */
		if (c < 0x21 || c > 0x7e)
			return false;
		i++;
	}
	return true;
}

/*
 * toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 */
static bool
spf_toplabel_is_valid(const char *p, size_t len)
{
	bool alpha = false, hyphen = false;

	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (spf_is_alpha(p[i]))
			alpha = true;
		else if (p[i] == '-')
			hyphen = true;
		else if (!spf_is_digit(p[i]))
			return false;
	}
	if (!hyphen)
		return alpha;
	return spf_is_alnum(p[0]) && spf_is_alnum(p[len - 1]);
}

bool
spf_domain_spec_is_valid(const char *p, size_t len)
{
	size_t end = len, dot;

	if (len == 0 || !spf_macro_string_is_valid(p, len, false))
		return false;
	/* domain-end = ( "." toplabel ["."] ) / macro-expand */
	if (p[len - 1] == '}')
		return memchr(p, '%', len) != NULL; /* closes a macro-expand, checked above */
	if (len >= 2 && p[len - 2] == '%' && strchr("%_-", p[len - 1]) != NULL) {
		/* "%%" or "%_" or "%-" at the end, unless its '%' is itself the
		 * second half of an escaped "%%" (then the last char is literal) */
		size_t k = len - 2, pct = 0;

		while (k < len && p[k] == '%') {
			pct++;
			if (k == 0)
				break;
			k--;
		}
		if (pct % 2 == 1)
			return true;
	}
	if (p[end - 1] == '.')
		end--; /* the optional trailing dot */
	dot = end;
	while (dot > 0 && p[dot - 1] != '.')
		dot--;
	if (dot == 0)
		return false; /* one label: no "." toplabel */
	if (!spf_toplabel_is_valid(p + dot, end - dot))
		return false;
	/* The literal part names DNS labels: no empty label, none over 63 */
	if (memchr(p, '%', len) == NULL) {
		size_t lab = 0;

		if (end > 253)
			return false;
		for (size_t i = 0; i < end; i++) {
			if (p[i] == '.') {
				if (lab == 0)
					return false;
				lab = 0;
			} else if (++lab > 63) {
				return false;
			}
		}
	}
	return true;
}

/* Parses a cidr length "0" / %x31-39 0*(maxdigits-1)DIGIT with value <= max.
 * Returns the value or -1. */
static int
spf_cidr_parse(const char *p, size_t len, int max)
{
	int v = 0;

	if (len == 0 || len > 3 || (len > 1 && p[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!spf_is_digit(p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Strips a trailing "/digits" from p[0..*len) into *v; returns false when a
 * slash-digits suffix is present but malformed. */
static bool
spf_strip_cidr(const char *p, size_t *len, int max, bool dbl, int *v)
{
	size_t i = *len;

	while (i > 0 && spf_is_digit(p[i - 1]))
		i--;
	if (i == 0 || p[i - 1] != '/')
		return true;
	if (dbl && (i < 2 || p[i - 2] != '/'))
		return true;
	*v = spf_cidr_parse(p + i, *len - i, max);
	if (*v < 0)
		return false;
	*len = i - (dbl ? 2 : 1);
	return true;
}

static char *
spf_dup(const char *p, size_t len)
{
	return xstrndup(p, len);
}

/* Parses one term p[0..len) into t. Returns NULL or a static error. */
static const char *
spf_term_parse(const char *p, size_t len, struct spf_term *t)
{
	size_t i = 0, nlen, alen;
	const char *arg;
	bool colon = false;
	char q = '+';

	/* modifier = name "=" ...; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
	if (spf_is_alpha(p[0])) {
		size_t k = 1;

		while (k < len && (spf_is_alnum(p[k]) || strchr("-_.", p[k]) != NULL))
			k++;
		if (k < len && p[k] == '=') {
			const char *v = p + k + 1;
			size_t vlen = len - k - 1;

			t->qualifier = 0;
			if (k == 8 && strncasecmp(p, "redirect", 8) == 0)
				t->kind = SPF_REDIRECT;
			else if (k == 3 && strncasecmp(p, "exp", 3) == 0)
				t->kind = SPF_EXP;
			else
				t->kind = SPF_UNKNOWN_MODIFIER;
			if (t->kind == SPF_UNKNOWN_MODIFIER) {
				if (!spf_macro_string_is_valid(v, vlen, false))
					return "bad macro-string in modifier value";
				t->name = spf_dup(p, k);
			} else if (!spf_domain_spec_is_valid(v, vlen)) {
				return "bad domain-spec";
			}
			t->domain = spf_dup(v, vlen);
			return NULL;
		}
	}
	if (strchr("+-~?", p[0]) != NULL) {
		q = p[0];
		i = 1;
	}
	t->qualifier = q;
	nlen = 0;
	while (i + nlen < len && spf_is_alnum(p[i + nlen]))
		nlen++;
	t->kind = SPF_UNKNOWN_MODIFIER;
	for (size_t m = 0; m < sizeof(spf_mechanisms) / sizeof(spf_mechanisms[0]); m++) {
		if (strlen(spf_mechanisms[m].name) == nlen &&
		    strncasecmp(p + i, spf_mechanisms[m].name, nlen) == 0) {
			t->kind = spf_mechanisms[m].kind;
			break;
		}
	}
	if (t->kind == SPF_UNKNOWN_MODIFIER) {
		t->qualifier = 0;
		return "unknown mechanism";
	}
	i += nlen;
	arg = p + i;
	alen = len - i;
	if (alen > 0 && arg[0] == ':') {
		colon = true;
		arg++;
		alen--;
	} else if (alen > 0 && arg[0] != '/') {
		return "unknown mechanism";
	}

	switch (t->kind) {
	case SPF_ALL:
		if (alen > 0 || colon)
			return "\"all\" takes no argument";
		return NULL;
	case SPF_INCLUDE:
	case SPF_EXISTS:
		if (!colon)
			return "a domain-spec is required (\":domain\")";
		if (!spf_domain_spec_is_valid(arg, alen))
			return "bad domain-spec";
		t->domain = spf_dup(arg, alen);
		return NULL;
	case SPF_PTR:
		if (!colon && alen > 0)
			return "\"ptr\" takes no cidr length";
		if (colon && !spf_domain_spec_is_valid(arg, alen))
			return "bad domain-spec";
		if (colon)
			t->domain = spf_dup(arg, alen);
		return NULL;
	case SPF_A:
	case SPF_MX:
		/* [ ":" domain-spec ] [ dual-cidr-length ] */
		if (!spf_strip_cidr(arg, &alen, 128, true, &t->cidr6))
			return "bad ip6-cidr-length (\"//0\" to \"//128\")";
		if (!spf_strip_cidr(arg, &alen, 32, false, &t->cidr4))
			return "bad ip4-cidr-length (\"/0\" to \"/32\")";
		if (!colon && alen > 0)
			return "unknown mechanism";
		if (colon && !spf_domain_spec_is_valid(arg, alen))
			return "bad domain-spec";
		if (colon)
			t->domain = spf_dup(arg, alen);
		return NULL;
	case SPF_IP4:
	case SPF_IP6: {
		unsigned char addr[16];
		char tmp[64];
		bool v4 = t->kind == SPF_IP4;

		if (!colon)
			return "an address is required (\":network\")";
		if (!spf_strip_cidr(arg, &alen, v4 ? 32 : 128, false, v4 ? &t->cidr4 : &t->cidr6))
			return v4 ? "bad ip4-cidr-length (\"/0\" to \"/32\")"
			          : "bad ip6-cidr-length (\"/0\" to \"/128\")";
		if (alen == 0 || alen >= sizeof(tmp))
			return v4 ? "bad IPv4 network" : "bad IPv6 network";
		memcpy(tmp, arg, alen);
		tmp[alen] = '\0';
		if (inet_pton(v4 ? AF_INET : AF_INET6, tmp, addr) != 1)
			return v4 ? "bad IPv4 network" : "bad IPv6 network";
		t->domain = spf_dup(arg, alen);
		return NULL;
	}
	default:
		return "unknown mechanism";
	}
}

void
spf_record_free(struct spf_record *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->terms[i].domain);
		free(r->terms[i].name);
		free(r->terms[i].text);
	}
	free(r->terms);
	r->terms = NULL;
	r->n = 0;
}

int
spf_parse(const char *p, size_t len, struct spf_record *r, struct spf_parse_error *err_r)
{
	size_t i = 6;
	bool redirect = false, exp = false;

	r->terms = NULL;
	r->n = 0;
	err_r->errstr = NULL;
	err_r->off = 0;
	err_r->len = 0;
	if (!spf_is_record(p, len)) {
		err_r->errstr = "not an SPF record (\"v=spf1\" first)";
		while (err_r->len < len && p[err_r->len] != ' ')
			err_r->len++; /* names the first word */
		return -1;
	}
	while (i < len) {
		size_t s, e;
		struct spf_term *t;
		const char *errstr;

		if (p[i] == ' ') {
			i++;
			continue;
		}
		s = i;
		while (i < len && p[i] != ' ')
			i++;
		e = i;
		err_r->off = s;
		err_r->len = e - s;
		for (size_t k = s; k < e; k++) {
			unsigned char c = (unsigned char)p[k];

			/* RFC 7208 12: terms are separated by SP only;
			 * everything else is visible ASCII */
			if (c < 0x21 || c > 0x7e) {
				err_r->errstr = c == '\t'
				    ? "tab between terms (only spaces allowed)"
				    : "character outside printable ASCII";
				return -1;
			}
		}
		if (r->n >= SPF_TERMS_MAX) {
			err_r->errstr = "too many terms";
			return -1;
		}
		r->terms = xrealloc(r->terms, (r->n + 1) * sizeof(*r->terms));
		t = &r->terms[r->n++];
		memset(t, 0, sizeof(*t));
		t->cidr4 = t->cidr6 = -1;
		t->text = spf_dup(p + s, e - s);
		errstr = spf_term_parse(p + s, e - s, t);
		if (errstr != NULL) {
			err_r->errstr = errstr;
			return -1;
		}
		/* RFC 7208 6: redirect and exp at most once each */
		if (t->kind == SPF_REDIRECT) {
			if (redirect) {
				err_r->errstr = "\"redirect\" appears more than once";
				return -1;
			}
			redirect = true;
		} else if (t->kind == SPF_EXP) {
			if (exp) {
				err_r->errstr = "\"exp\" appears more than once";
				return -1;
			}
			exp = true;
		}
	}
	err_r->off = err_r->len = 0;
	return 0;
}

bool
spf_term_is_lookup(const struct spf_term *t)
{
	switch (t->kind) {
	case SPF_INCLUDE:
	case SPF_A:
	case SPF_MX:
	case SPF_PTR:
	case SPF_EXISTS:
	case SPF_REDIRECT:
		return true;
	default:
		return false;
	}
}

bool
spf_term_has_macro(const struct spf_term *t)
{
	return t->domain != NULL && strchr(t->domain, '%') != NULL;
}
