/*
 * dmarc_parse: RFC 7489 record parser (see dmarc_parse.h). The tag-list
 * layer is dkim_parse's (RFC 7489 6.4 borrows RFC 6376's form); here each
 * tag's value is checked against its rule:
 *
 *   v=DMARC1 (first, case-sensitive)   p/sp/np = none / quarantine / reject
 *   rua/ruf = dmarc-uri *( "," dmarc-uri )
 *   dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
 *   adkim/aspf = r / s     pct = 0..100     ri = 1*DIGIT
 *   fo = ( "0" / "1" / "d" / "s" ) *( ":" ...)     rf = keyword *( ":" keyword )
 */
#include "dns/dmarc_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/strdist.h"
#include "lib/xalloc.h"

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	default:
		return "unset";
	}
}

bool
dmarc_is_record(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i >= len || p[i] != 'v')
		return false;
	i++;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i >= len || p[i] != '=')
		return false;
	i++;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (len - i < 6 || memcmp(p + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	return i == len || p[i] == ';' || p[i] == ' ' || p[i] == '\t';
}

static bool
dmarc_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* What is wrong with a version tag name=value (tag number nth), or NULL
 * when it is not meant as DMARC's version. */
static const char *
dmarc_near_version(const char *name, size_t nlen, const char *value, size_t vlen, size_t nth)
{
	char sq[STRDIST_WORD_MAX] = {0};
	size_t ns = 0;

	for (size_t i = 0; i < vlen; i++) {
		if (dmarc_is_wsp(value[i]))
			continue;
		if (ns == sizeof(sq))
			return NULL;
		sq[ns++] = value[i];
	}
	if (vlen > 6 && memcmp(value, "DMARC1", 6) == 0 &&
	    !((value[6] >= '0' && value[6] <= '9') || (value[6] >= 'a' && value[6] <= 'z') ||
	        (value[6] >= 'A' && value[6] <= 'Z')))
		return "\"v=DMARC1\" is not followed by \";\" (RFC 7489 6.4)";
	if (strdist_osa(sq, ns, "DMARC1", 6) > 2 || ns < 4 ||
	    (strncasecmp(sq, "DMARC", 5) != 0 && strncasecmp(sq, "DMAR", 4) != 0 &&
	        (ns < 5 || strncasecmp(sq + ns - 5, "MARC1", 5) != 0) &&
	        !(nlen == 1 && (name[0] == 'v' || name[0] == 'V'))))
		return NULL;
	if (ns == 6 && strncasecmp(sq, "DMARC1", 6) == 0) {
		if (!(nlen == 1 && name[0] == 'v'))
			return "the version tag is not written \"v\" (lower case): \"v=DMARC1\"";
		if (ns != vlen)
			return "the version \"DMARC1\" has white space inside";
		if (memcmp(sq, "DMARC1", 6) != 0)
			return "the version must be \"DMARC1\" in capitals (RFC 7489 6.4: it is "
			       "case-sensitive)";
		if (nth > 0)
			return "\"v=DMARC1\" is not the first tag (RFC 7489 6.3: it must be)";
		return NULL;
	}
	return "its version is not \"DMARC1\" (a typo?)";
}

bool
dmarc_is_near_record(const char *p, size_t len, const char **why_r)
{
	size_t i = 0, nth = 0;
	bool dmarc_tags = false;

	if (dmarc_is_record(p, len))
		return false;
	while (i < len && dmarc_is_wsp(p[i]))
		i++;
	if (i < len && p[i] == '"' && dmarc_is_record(p + i + 1, len - i - 1)) {
		*why_r = "it is wrapped in quote characters (a DNS form that took the quotes as "
		         "part of the text)";
		return true;
	}
	while (i < len) {
		size_t s = i, e, ns, ne, vs, ve;
		const char *eq, *why;

		while (i < len && p[i] != ';')
			i++;
		e = i++;
		eq = memchr(p + s, '=', e - s);
		if (eq == NULL) {
			nth++;
			continue;
		}
		ns = s;
		ne = (size_t)(eq - p);
		vs = ne + 1;
		ve = e;
		while (ns < ne && dmarc_is_wsp(p[ns]))
			ns++;
		while (ne > ns && dmarc_is_wsp(p[ne - 1]))
			ne--;
		while (vs < ve && dmarc_is_wsp(p[vs]))
			vs++;
		while (ve > vs && dmarc_is_wsp(p[ve - 1]))
			ve--;
		why = dmarc_near_version(p + ns, ne - ns, p + vs, ve - vs, nth);
		if (why != NULL) {
			*why_r = why;
			return true;
		}
#define DMARC_NAME_IS(x) (ne - ns == strlen(x) && strncasecmp(p + ns, x, ne - ns) == 0)
#define DMARC_VALUE_IS(x) (ve - vs == strlen(x) && strncasecmp(p + vs, x, ve - vs) == 0)
		if ((DMARC_NAME_IS("p") || DMARC_NAME_IS("sp")) &&
		    (DMARC_VALUE_IS("none") || DMARC_VALUE_IS("quarantine") ||
		        DMARC_VALUE_IS("reject")))
			dmarc_tags = true;
		if ((DMARC_NAME_IS("rua") || DMARC_NAME_IS("ruf")) && ve - vs > 7 &&
		    strncasecmp(p + vs, "mailto:", 7) == 0)
			dmarc_tags = true;
#undef DMARC_NAME_IS
#undef DMARC_VALUE_IS
		nth++;
	}
	if (dmarc_tags) {
		*why_r = "it has DMARC tags but does not start with \"v=DMARC1\"";
		return true;
	}
	return false;
}

static bool
dmarc_value_is(const struct dkim_tag *t, const char *s)
{
	return t->value_len == strlen(s) && strncasecmp(t->value, s, t->value_len) == 0;
}

static int
dmarc_policy_parse(const struct dkim_tag *t, enum dmarc_policy *p)
{
	if (dmarc_value_is(t, "none"))
		*p = DMARC_POLICY_NONE;
	else if (dmarc_value_is(t, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (dmarc_value_is(t, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* Checks one URI (RFC 3986 characters, a scheme, something after it; for
 * mailto: an address with one "@" and a dotted domain). */
static bool
dmarc_uri_is_valid(const char *p, size_t n)
{
	size_t i = 0, at = 0, ats = 0;

	if (n == 0 || !((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
		return false;
	while (i < n && p[i] != ':') {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '+' || c == '-' || c == '.'))
			return false;
		i++;
	}
	if (i >= n || i + 1 == n)
		return false;
	for (size_t k = i + 1; k < n; k++) {
		unsigned char c = (unsigned char)p[k];

		/* unreserved / reserved / "%" HEXDIG HEXDIG; "," and "!" in a
		 * DMARC URI must be percent-encoded (RFC 7489 6.2) */
		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}!,", c) != NULL)
			return false;
		if (c == '%' &&
		    (k + 2 >= n || !strchr("0123456789abcdefABCDEF", p[k + 1]) ||
		        !strchr("0123456789abcdefABCDEF", p[k + 2]) || p[k + 1] == '\0' ||
		        p[k + 2] == '\0'))
			return false;
		if (c == '@') {
			ats++;
			at = k;
		}
	}
	if (i == 6 && strncasecmp(p, "mailto", 6) == 0) {
		const char *dom;
		size_t dlen;

		if (ats != 1 || at == i + 1 || at + 1 >= n)
			return false;
		dom = p + at + 1;
		dlen = n - at - 1;
		if (memchr(dom, '?', dlen) != NULL)
			dlen = (size_t)((const char *)memchr(dom, '?', dlen) - dom);
		if (dlen == 0 || memchr(dom, '.', dlen) == NULL || dom[0] == '.' ||
		    dom[dlen - 1] == '.')
			return false;
	}
	return true;
}

/* rua/ruf: dmarc-uri *( *WSP "," *WSP dmarc-uri ) */
static int
dmarc_uris_parse(const struct dkim_tag *t, char **out, size_t *n_r)
{
	size_t i = 0;
	const char *v = t->value;
	size_t len = t->value_len;

	while (i <= len) {
		size_t s, e, u;

		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		/* the size limit: "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] */
		u = e;
		for (size_t k = s; k < e; k++) {
			if (v[k] == '!') {
				size_t d = k + 1;

				u = k;
				while (d < e && v[d] >= '0' && v[d] <= '9')
					d++;
				if (d == k + 1)
					return -1;
				if (d < e && strchr("kmgt", v[d]) != NULL)
					d++;
				if (d != e)
					return -1;
				break;
			}
		}
		if (!dmarc_uri_is_valid(v + s, u - s) || *n_r >= DMARC_URIS_MAX)
			return -1;
		out[(*n_r)++] = xstrndup(v + s, u - s);
		i++;
	}
	return 0;
}

/* fo and rf: colon-separated items, each accepted by ok(). */
static int
dmarc_colon_list(
    const struct dkim_tag *t, bool (*ok)(const char *p, size_t n), char *out, size_t outsz)
{
	size_t i = 0, o = 0;
	const char *v = t->value;
	size_t len = t->value_len;

	while (i <= len) {
		size_t s, e;

		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		s = i;
		while (i < len && v[i] != ':' && v[i] != ' ' && v[i] != '\t')
			i++;
		e = i;
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i < len && v[i] != ':')
			return -1;
		if (!ok(v + s, e - s))
			return -1;
		if (out != NULL) {
			if (o + (e - s) + 2 > outsz)
				return -1;
			if (o > 0)
				out[o++] = ':';
			memcpy(out + o, v + s, e - s);
			o += e - s;
			out[o] = '\0';
		}
		i++;
	}
	return 0;
}

static bool
dmarc_fo_ok(const char *p, size_t n)
{
	return n == 1 && strchr("01ds", p[0]) != NULL && p[0] != '\0';
}

static bool
dmarc_keyword_ok(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '-'))
			return false;
	}
	return true;
}

static int
dmarc_digits(const struct dkim_tag *t, unsigned long max, unsigned long *v)
{
	*v = 0;
	if (t->value_len == 0 || t->value_len > 10)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (t->value[i] < '0' || t->value[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned long)(t->value[i] - '0');
	}
	return *v <= max ? 0 : -1;
}

static void
dmarc_unknown_add(struct dmarc_record *r, const struct dkim_tag *t)
{
	struct buf b;

	buf_init(&b, 512);
	if ((r->unknown == NULL || buf_printf(&b, "%s, ", r->unknown) == 0) &&
	    buf_append(&b, t->name, t->name_len) == 0) {
		free(r->unknown);
		r->unknown = buf_strdup(&b);
	}
	buf_free(&b);
}

int
dmarc_parse(const char *p, size_t len, struct dmarc_record *r, struct dkim_parse_error *err_r)
{
	struct dkim_taglist tl;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	r->adkim = r->aspf = 'r';
	r->ri = 86400;
	if (dkim_taglist_parse(p, len, true, &tl, err_r) == -1)
		return -1;
	for (size_t i = 0; i < tl.n; i++) {
		const struct dkim_tag *t = &tl.v[i];
		const char *errstr = NULL;
		unsigned long v;

#define DMARC_IS(s) (t->name_len == strlen(s) && strncasecmp(t->name, s, t->name_len) == 0)
		if (i == 0) {
			/* RFC 7489 6.3: v=DMARC1 is the first tag */
			if (!DMARC_IS("v") || t->value_len != 6 ||
			    memcmp(t->value, "DMARC1", 6) != 0)
				errstr = "the record must start with \"v=DMARC1\"";
		} else if (DMARC_IS("v")) {
			errstr = "\"v=\" must be the first tag";
		} else if (DMARC_IS("p")) {
			if (dmarc_policy_parse(t, &r->p) == -1)
				errstr = "\"p=\" must be none, quarantine or reject";
		} else if (DMARC_IS("sp")) {
			if (dmarc_policy_parse(t, &r->sp) == -1)
				errstr = "\"sp=\" must be none, quarantine or reject";
		} else if (DMARC_IS("np")) {
			if (dmarc_policy_parse(t, &r->np) == -1)
				errstr = "\"np=\" must be none, quarantine or reject";
		} else if (DMARC_IS("adkim") || DMARC_IS("aspf")) {
			if (!dmarc_value_is(t, "r") && !dmarc_value_is(t, "s"))
				errstr = "alignment mode must be \"r\" (relaxed) or \"s\" (strict)";
			else if (DMARC_IS("adkim"))
				r->adkim = (char)(t->value[0] | 0x20);
			else
				r->aspf = (char)(t->value[0] | 0x20);
		} else if (DMARC_IS("pct")) {
			if (dmarc_digits(t, 100, &v) == -1)
				errstr = "\"pct=\" must be a whole number from 0 to 100";
			else
				r->pct = (int)v;
		} else if (DMARC_IS("ri")) {
			if (dmarc_digits(t, 0xffffffffUL, &v) == -1)
				errstr = "\"ri=\" must be a number of seconds";
			else
				r->ri = v;
		} else if (DMARC_IS("rua")) {
			if (dmarc_uris_parse(t, r->rua, &r->n_rua) == -1)
				errstr = "\"rua=\" must be a comma-separated list of URIs such as "
				         "mailto:dmarc@example.com";
		} else if (DMARC_IS("ruf")) {
			if (dmarc_uris_parse(t, r->ruf, &r->n_ruf) == -1)
				errstr = "\"ruf=\" must be a comma-separated list of URIs such as "
				         "mailto:dmarc@example.com";
		} else if (DMARC_IS("fo")) {
			if (dmarc_colon_list(t, dmarc_fo_ok, r->fo, sizeof(r->fo)) == -1)
				errstr = "\"fo=\" must be 0, 1, d or s, separated by \":\"";
		} else if (DMARC_IS("rf")) {
			if (dmarc_colon_list(t, dmarc_keyword_ok, NULL, 0) == -1)
				errstr = "\"rf=\" must be report formats (afrf) separated by \":\"";
		} else if (DMARC_IS("psd")) {
			if (!dmarc_value_is(t, "y") && !dmarc_value_is(t, "n") &&
			    !dmarc_value_is(t, "u"))
				errstr = "\"psd=\" must be y, n or u";
		} else if (DMARC_IS("t")) {
			if (!dmarc_value_is(t, "y") && !dmarc_value_is(t, "n"))
				errstr = "\"t=\" must be y or n";
		} else {
			dmarc_unknown_add(r, t);
		}
#undef DMARC_IS
		if (errstr != NULL) {
			err_r->errstr = errstr;
			err_r->off = t->off;
			err_r->len = t->len;
			return -1;
		}
	}
	if (r->p == DMARC_POLICY_UNSET) {
		/* RFC 7489 6.3: p is required in a policy record */
		err_r->errstr = "\"p=\" (the policy) is required";
		err_r->off = 0;
		err_r->len = len;
		return -1;
	}
	return 0;
}

void
dmarc_record_free(struct dmarc_record *r)
{
	for (size_t i = 0; i < r->n_rua; i++)
		free(r->rua[i]);
	for (size_t i = 0; i < r->n_ruf; i++)
		free(r->ruf[i]);
	free(r->unknown);
	memset(r, 0, sizeof(*r));
}
