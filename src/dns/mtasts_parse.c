/*
 * mtasts_parse: MTA-STS and TLS-RPT record and policy parsers (see
 * mtasts_parse.h).
 *
 * Both TXT records share one shape (RFC 8461 3.1, RFC 8460 3):
 *   record = version 1*( *WSP ";" *WSP field ) [ *WSP ";" *WSP ]
 *   field  = name "=" value      name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   value  = 1*(%x21-3A / %x3C / %x3E-7E)
 * The policy file is lines of "key: value" ending in LF or CRLF.
 */
#include "dns/mtasts_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"

static bool
mtasts_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
mtasts_has_version(const char *p, size_t len, const char *v)
{
	size_t n = strlen(v);

	if (len < n || memcmp(p, v, n) != 0)
		return false;
	return len == n || p[n] == ';' || p[n] == ' ' || p[n] == '\t';
}

bool
mtasts_is_record(const char *p, size_t len)
{
	return mtasts_has_version(p, len, "v=STSv1");
}

bool
tlsrpt_is_record(const char *p, size_t len)
{
	return mtasts_has_version(p, len, "v=TLSRPTv1");
}

typedef const char *(*mtasts_field_cb)(
    void *arg, const char *name, size_t nlen, const char *val, size_t vlen);

/* Splits a record after its version into fields and calls cb for each. */
static const char *
mtasts_fields(const char *p, size_t len, const char *version, mtasts_field_cb cb, void *arg)
{
	size_t i = strlen(version);
	size_t nfields = 0;

	if (!mtasts_has_version(p, len, version))
		return "the record must start with the version";
	while (i < len) {
		size_t ns, ne, vs;
		const char *errstr;

		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i >= len)
			break;
		if (p[i] != ';')
			return "\";\" expected between fields";
		i++;
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i >= len)
			break; /* the optional final delimiter */
		ns = i;
		while (
		    i < len && (mtasts_is_alnum(p[i]) || (i > ns && strchr("_-.", p[i]) && p[i])))
			i++;
		ne = i;
		if (ne == ns || ne - ns > 32)
			return "bad field name";
		if (i >= len || p[i] != '=')
			return "\"=\" expected after a field name";
		i++;
		vs = i;
		while (i < len && p[i] != ';' && p[i] != ' ' && p[i] != '\t') {
			unsigned char c = (unsigned char)p[i];

			if (c < 0x21 || c > 0x7e || c == '=')
				return "bad character in a field value";
			i++;
		}
		if (i == vs)
			return "empty field value";
		errstr = cb(arg, p + ns, ne - ns, p + vs, i - vs);
		if (errstr != NULL)
			return errstr;
		nfields++;
	}
	if (nfields == 0)
		return "no field after the version";
	return NULL;
}

struct mtasts_txt {
	char *id;
	bool seen;
};

static const char *
mtasts_txt_cb(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct mtasts_txt *t = arg;

	if (nlen != 2 || memcmp(name, "id", 2) != 0)
		return NULL; /* extensions are ignored */
	if (t->seen)
		return "\"id=\" appears more than once";
	if (vlen > MTASTS_ID_MAX)
		return "\"id=\" is longer than 32 characters";
	for (size_t i = 0; i < vlen; i++) {
		if (!mtasts_is_alnum(val[i]))
			return "\"id=\" must be letters and digits only";
	}
	memcpy(t->id, val, vlen);
	t->id[vlen] = '\0';
	t->seen = true;
	return NULL;
}

int
mtasts_record_parse(const char *p, size_t len, char id_r[MTASTS_ID_MAX + 1], const char **errstr_r)
{
	struct mtasts_txt t = {id_r, false};

	id_r[0] = '\0';
	*errstr_r = mtasts_fields(p, len, "v=STSv1", mtasts_txt_cb, &t);
	if (*errstr_r == NULL && !t.seen)
		*errstr_r = "\"id=\" is required";
	return *errstr_r == NULL ? 0 : -1;
}

struct tlsrpt_txt {
	char **rua;
	size_t *n;
	bool seen;
};

static const char *
tlsrpt_txt_cb(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct tlsrpt_txt *t = arg;
	size_t i = 0;

	if (nlen != 3 || memcmp(name, "rua", 3) != 0)
		return NULL;
	if (t->seen)
		return "\"rua=\" appears more than once";
	t->seen = true;
	/* tlsrpt-uri *( *WSP "," *WSP tlsrpt-uri ); the field value has no
	 * white space here, so the list is split on "," */
	while (i <= vlen) {
		size_t s = i;

		while (i < vlen && val[i] != ',')
			i++;
		if (i == s)
			return "empty URI in \"rua=\"";
		if (!((i - s > 7 && strncasecmp(val + s, "mailto:", 7) == 0 &&
		          memchr(val + s, '@', i - s) != NULL) ||
		        (i - s > 8 && strncasecmp(val + s, "https://", 8) == 0)))
			return "\"rua=\" URIs must be mailto:address or https://...";
		if (*t->n >= TLSRPT_RUA_MAX)
			return "too many URIs in \"rua=\"";
		t->rua[(*t->n)++] = xstrndup(val + s, i - s);
		i++;
	}
	return NULL;
}

int
tlsrpt_record_parse(
    const char *p, size_t len, char *rua[TLSRPT_RUA_MAX], size_t *n_rua_r, const char **errstr_r)
{
	struct tlsrpt_txt t = {rua, n_rua_r, false};

	*n_rua_r = 0;
	*errstr_r = mtasts_fields(p, len, "v=TLSRPTv1", tlsrpt_txt_cb, &t);
	if (*errstr_r == NULL && !t.seen)
		*errstr_r = "\"rua=\" is required";
	return *errstr_r == NULL ? 0 : -1;
}

/* A policy mx pattern: an optional "*." then a host name of LDH labels. */
static bool
mtasts_pattern_is_valid(const char *p, size_t n)
{
	size_t lab = 0, labels = 0;

	if (n >= 2 && p[0] == '*' && p[1] == '.') {
		p += 2;
		n -= 2;
	}
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '.') {
			if (lab == 0)
				return false;
			lab = 0;
			labels++;
		} else if (mtasts_is_alnum(p[i]) || p[i] == '-' || p[i] == '_') {
			if (++lab > 63)
				return false;
		} else {
			return false;
		}
	}
	return labels >= 1 && (lab > 0 || p[n - 1] == '.');
}

void
mtasts_policy_free(struct mtasts_policy *p)
{
	for (size_t i = 0; i < p->n_mx; i++)
		free(p->mx[i]);
	memset(p, 0, sizeof(*p));
}

int
mtasts_policy_parse(
    const char *text, size_t len, struct mtasts_policy *p, const char **errstr_r, size_t *line_r)
{
	size_t i = 0, line = 0;
	bool version = false, mode = false, max_age = false;

	memset(p, 0, sizeof(*p));
	*errstr_r = NULL;
	*line_r = 0;
	while (i < len) {
		size_t s = i, e, ks, ke, vs, ve;

		line++;
		*line_r = line;
		while (i < len && text[i] != '\n')
			i++;
		e = i;
		if (i < len)
			i++;
		if (e > s && text[e - 1] == '\r')
			e--;
		/* sts-policy-field = key ":" *WSP value *WSP */
		ks = s;
		while (ks < e && (text[ks] == ' ' || text[ks] == '\t'))
			ks++;
		if (ks == e)
			continue; /* blank line */
		ke = ks;
		while (ke < e && text[ke] != ':')
			ke++;
		if (ke == e) {
			*errstr_r = "a line without \"key: value\"";
			goto fail;
		}
		vs = ke + 1;
		while (vs < e && (text[vs] == ' ' || text[vs] == '\t'))
			vs++;
		ve = e;
		while (ve > vs && (text[ve - 1] == ' ' || text[ve - 1] == '\t'))
			ve--;
		for (size_t k = ks; k < e; k++) {
			unsigned char c = (unsigned char)text[k];

			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				*errstr_r = "control character in the policy";
				goto fail;
			}
		}
#define MTASTS_KEY(s) (ke - ks == strlen(s) && memcmp(text + ks, s, ke - ks) == 0)
		if (MTASTS_KEY("version")) {
			if (version) {
				*errstr_r = "\"version\" appears more than once";
				goto fail;
			}
			version = true;
			if (ve - vs != 5 || memcmp(text + vs, "STSv1", 5) != 0) {
				*errstr_r = "\"version\" must be STSv1";
				goto fail;
			}
		} else if (MTASTS_KEY("mode")) {
			if (mode) {
				*errstr_r = "\"mode\" appears more than once";
				goto fail;
			}
			mode = true;
			if (ve - vs >= sizeof(p->mode)) {
				*errstr_r = "\"mode\" must be enforce, testing or none";
				goto fail;
			}
			memcpy(p->mode, text + vs, ve - vs);
			p->mode[ve - vs] = '\0';
			if (strcmp(p->mode, "enforce") != 0 && strcmp(p->mode, "testing") != 0 &&
			    strcmp(p->mode, "none") != 0) {
				*errstr_r = "\"mode\" must be enforce, testing or none";
				goto fail;
			}
		} else if (MTASTS_KEY("max_age")) {
			unsigned long v = 0;

			if (max_age) {
				*errstr_r = "\"max_age\" appears more than once";
				goto fail;
			}
			max_age = true;
			if (ve == vs || ve - vs > 10) {
				*errstr_r = "\"max_age\" must be 0 to 31557600 seconds";
				goto fail;
			}
			for (size_t k = vs; k < ve; k++) {
				if (text[k] < '0' || text[k] > '9') {
					*errstr_r = "\"max_age\" must be 0 to 31557600 seconds";
					goto fail;
				}
				v = v * 10 + (unsigned long)(text[k] - '0');
			}
			if (v > MTASTS_MAX_AGE_MAX) {
				*errstr_r = "\"max_age\" must be 0 to 31557600 seconds";
				goto fail;
			}
			p->max_age = v;
		} else if (MTASTS_KEY("mx")) {
			if (!mtasts_pattern_is_valid(text + vs, ve - vs)) {
				*errstr_r = "bad \"mx\" pattern (host name or *.domain)";
				goto fail;
			}
			if (p->n_mx >= MTASTS_MX_MAX) {
				*errstr_r = "too many \"mx\" lines";
				goto fail;
			}
			p->mx[p->n_mx++] = xstrndup(text + vs, ve - vs);
		}
#undef MTASTS_KEY
		/* other keys are extensions: ignored (RFC 8461 3.2) */
	}
	*line_r = 0;
	if (!version)
		*errstr_r = "\"version: STSv1\" is missing";
	else if (!mode)
		*errstr_r = "\"mode\" is missing";
	else if (!max_age)
		*errstr_r = "\"max_age\" is missing";
	else if (p->n_mx == 0 && strcmp(p->mode, "none") != 0)
		*errstr_r = "no \"mx\" line";
	if (*errstr_r != NULL)
		goto fail;
	return 0;
fail:
	return -1;
}

static size_t
mtasts_len_nodot(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool
mtasts_mx_matches(const char *pattern, const char *host)
{
	size_t pl = mtasts_len_nodot(pattern), hl = mtasts_len_nodot(host);

	if (pl >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = memchr(host, '.', hl);

		/* the wildcard stands for exactly one label */
		if (dot == NULL || dot == host)
			return false;
		dot++;
		return (size_t)(host + hl - dot) == pl - 2 &&
		    strncasecmp(dot, pattern + 2, pl - 2) == 0;
	}
	return pl == hl && strncasecmp(pattern, host, pl) == 0;
}
