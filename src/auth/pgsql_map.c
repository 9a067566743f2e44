/*
 * pgsql_map: see pgsql_map.h. The checks of the values are the passwd
 * file's own (passwd_file_add, passwd_entry_set): a row is taken only if
 * the same line would be, after the SQL forms of a boolean, a time and a
 * list are turned into the file's.
 */
#include "auth/pgsql_map.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/passwd_file.h"

#define PGSQL_MAP_TIME_MAX 20 /* digits of a UNIX time kept */

static const char *const pgsql_map_names[PGSQL_MAP_NCOLS] = {
    [PGSQL_MAP_CREDENTIAL] = "credential",
    [PGSQL_MAP_LOGIN] = "login",
    [PGSQL_MAP_LABEL] = "label",
    [PGSQL_MAP_SENDERS] = "senders",
    [PGSQL_MAP_LOCKED] = "locked",
    [PGSQL_MAP_EXPIRES] = "expires",
    [PGSQL_MAP_CREATED] = "created",
    [PGSQL_MAP_SCRAM1] = "scram1",
};

const char *
pgsql_map_col_name(enum pgsql_map_col i)
{
	return i < PGSQL_MAP_NCOLS ? pgsql_map_names[i] : "";
}

int
pgsql_map_columns(struct pgsql_map *m_r, const char *const *names, size_t n, const char **errstr_r)
{
	for (size_t j = 0; j < PGSQL_MAP_NCOLS; j++)
		m_r->col[j] = -1;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < PGSQL_MAP_NCOLS; j++) {
			if (strcmp(names[i], pgsql_map_names[j]) != 0)
				continue;
			if (m_r->col[j] != -1) {
				*errstr_r = "the query returns two columns of one name";
				return -1;
			}
			m_r->col[j] = (int)i;
		}
	}
	if (m_r->col[PGSQL_MAP_CREDENTIAL] == -1) {
		*errstr_r = "the query returns no credential column";
		return -1;
	}
	return 0;
}

/* locked: 1 yes, 0 no, -1 neither */
static int
pgsql_map_locked(const char *v)
{
	static const char *const yes[] = {"t", "true", "yes", "y", "on", "1"};
	static const char *const no[] = {"f", "false", "no", "n", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* A UNIX time in seconds, a fraction cut ("1700000000.5"), into out. */
static int
pgsql_map_time(const char *v, char *out, size_t outlen)
{
	size_t n = strspn(v, "0123456789");

	if (n == 0 || n > PGSQL_MAP_TIME_MAX || n >= outlen ||
	    (v[n] != '\0' && (v[n] != '.' || strspn(v + n + 1, "0123456789") != strlen(v + n + 1))))
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* senders: patterns separated by commas or white space, into out as the
 * file writes them (commas). -1 when it does not fit. */
static int
pgsql_map_senders(const char *v, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = v; *p != '\0';) {
		size_t n;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		n = strcspn(p, ", \t\r\n\f\v");
		if (n == 0)
			break;
		if (o + (o > 0) + n + 1 > outlen)
			return -1;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return 0;
}

/* The extra fields of the row into e. */
static int
pgsql_map_extras(struct passwd_entry *e, const struct pgsql_map *m, const char *const *values,
    const char **errstr_r)
{
	char buf[8192];
	const char *v;
	int c;

#define PGSQL_MAP_VAL(i) (m->col[i] >= 0 ? values[m->col[i]] : NULL)
	if ((v = PGSQL_MAP_VAL(PGSQL_MAP_LABEL)) != NULL && v[0] != '\0' &&
	    passwd_entry_set(e, "label", v, errstr_r) == -1)
		return -1;
	if ((v = PGSQL_MAP_VAL(PGSQL_MAP_SENDERS)) != NULL) {
		if (pgsql_map_senders(v, buf, sizeof(buf)) == -1) {
			*errstr_r = "senders is too long";
			return -1;
		}
		if (buf[0] != '\0' && passwd_entry_set(e, "senders", buf, errstr_r) == -1)
			return -1;
	}
	if ((v = PGSQL_MAP_VAL(PGSQL_MAP_LOCKED)) != NULL) {
		if ((c = pgsql_map_locked(v)) == -1) {
			*errstr_r = "locked must be a boolean";
			return -1;
		}
		if (c == 1 && passwd_entry_set(e, "locked", "yes", errstr_r) == -1)
			return -1;
	}
	if ((v = PGSQL_MAP_VAL(PGSQL_MAP_EXPIRES)) != NULL) {
		if (pgsql_map_time(v, buf, sizeof(buf)) == -1) {
			*errstr_r = "expires must be a UNIX time (extract(epoch from ...))";
			return -1;
		}
		if (passwd_entry_set(e, "expires", buf, errstr_r) == -1)
			return -1;
	}
	if ((v = PGSQL_MAP_VAL(PGSQL_MAP_CREATED)) != NULL) {
		if (pgsql_map_time(v, buf, sizeof(buf)) == -1) {
			*errstr_r = "created must be a UNIX time (extract(epoch from ...))";
			return -1;
		}
		if (passwd_entry_set(e, "created", buf, errstr_r) == -1)
			return -1;
	}
	if ((v = PGSQL_MAP_VAL(PGSQL_MAP_SCRAM1)) != NULL && v[0] != '\0' &&
	    passwd_entry_set(e, "scram1", v, errstr_r) == -1)
		return -1;
#undef PGSQL_MAP_VAL
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

int
pgsql_map_row(struct passwd_file *pf, const struct pgsql_map *m, const char *login,
    const char *const *values, const char **errstr_r)
{
	const char *user = m->col[PGSQL_MAP_LOGIN] >= 0 ? values[m->col[PGSQL_MAP_LOGIN]] : login;
	const char *cred = values[m->col[PGSQL_MAP_CREDENTIAL]];
	struct passwd_entry *e;

	if (user == NULL) {
		*errstr_r = "login is NULL";
		return -1;
	}
	if (cred == NULL) {
		*errstr_r = "credential is NULL";
		return -1;
	}
	if ((e = passwd_file_add(pf, user, cred, errstr_r)) == NULL)
		return -1;
	if (pgsql_map_extras(e, m, values, errstr_r) == -1) {
		passwd_file_remove(pf, pf->nentries - 1);
		return -1;
	}
	return 0;
}

/* Appends n bytes of s to out[*o..outlen-1), NUL-terminated, cut to fit. */
static void
pgsql_map_put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + 1 >= outlen)
		return;
	if (n > outlen - 1 - *o)
		n = outlen - 1 - *o;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
}

/* postgresql://[user[:password]@]host.../db?key=value&... */
static void
pgsql_map_redact_uri(const char *s, size_t schemelen, char *out, size_t outlen, size_t *o)
{
	const char *auth = s + schemelen, *q;
	size_t alen = strcspn(auth, "/?"), ulen = 0;

	pgsql_map_put(out, outlen, o, s, schemelen);
	for (size_t i = 0; i < alen; i++) {
		if (auth[i] == '@')
			ulen = i + 1; /* the last '@' ends the user info */
	}
	if (ulen > 0 && (q = memchr(auth, ':', ulen)) != NULL) {
		pgsql_map_put(out, outlen, o, auth, (size_t)(q - auth));
		pgsql_map_put(out, outlen, o, ":***@", 5);
		auth += ulen;
		alen -= ulen;
	}
	pgsql_map_put(out, outlen, o, auth, alen);
	s = auth + alen;
	pgsql_map_put(out, outlen, o, s, strcspn(s, "?")); /* the path */
	for (s += strcspn(s, "?"); *s != '\0';) {
		size_t n = strcspn(s + 1, "&") + 1; /* with its leading '?' or '&' */

		if (strncmp(s + 1, "password=", 9) == 0) {
			pgsql_map_put(out, outlen, o, s, 10);
			pgsql_map_put(out, outlen, o, "***", 3);
		} else {
			pgsql_map_put(out, outlen, o, s, n);
		}
		s += n;
	}
}

void
pgsql_map_redact(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0) {
		pgsql_map_redact_uri(s, s[8] == 'q' ? 13 : 11, out, outlen, &o);
		return;
	}
	while (*s != '\0') {
		const char *key, *val;
		size_t klen, vlen;

		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		key = s;
		klen = strcspn(s, "= \t\r\n");
		s += klen;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '=')
			s++;
		while (isspace((unsigned char)*s))
			s++;
		val = s;
		if (*s == '\'') {
			for (s++; *s != '\0' && *s != '\''; s++) {
				if (*s == '\\' && s[1] != '\0')
					s++;
			}
			if (*s == '\'')
				s++;
		} else {
			while (*s != '\0' && !isspace((unsigned char)*s))
				s++;
		}
		vlen = (size_t)(s - val);
		if (o > 0)
			pgsql_map_put(out, outlen, &o, " ", 1);
		pgsql_map_put(out, outlen, &o, key, klen);
		pgsql_map_put(out, outlen, &o, "=", 1);
		if (klen == 8 && strncmp(key, "password", 8) == 0)
			pgsql_map_put(out, outlen, &o, "***", 3);
		else
			pgsql_map_put(out, outlen, &o, val, vlen);
	}
}
