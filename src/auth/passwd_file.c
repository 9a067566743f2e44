/*
 * passwd_file: parse, edit and rewrite the credentials file.
 *
 * Parsing is strict: every line is either blank, a comment ('#' first), or
 * a credential whose user name, scheme and known extra fields are valid;
 * the first bad line fails the whole file with "file:line: message", so a
 * typo never silently locks a user out or lets one in. Rewriting is
 * canonical (Dovecot's positional layout, extra fields in the 8th field)
 * and keeps comments, blank lines, positional fields, unknown extra keys
 * and their order.
 *
 * Ownership: the passwd_file owns the entries array and every string in
 * it; an entry's data points into its own password string.
 */
#include "auth/passwd_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define PASSWD_TIME_DIGITS_MAX 18 /* fits int64_t */

static bool
passwd_is_ws_or_ctl(unsigned char c)
{
	return c <= ' ' || c == 0x7f;
}

bool
passwd_user_is_valid(const char *user, size_t len)
{
	if (len == 0 || len > PASSWD_USER_MAX || user[0] == '#')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (user[i] == ':' || passwd_is_ws_or_ctl((unsigned char)user[i]))
			return false;
	}
	return true;
}

static bool
passwd_is_time(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > PASSWD_TIME_DIGITS_MAX)
		return false;
	return strspn(v, "0123456789") == n;
}

/* Checks one extra field; known keys get their values checked too. */
static int
passwd_field_check(const char *key, const char *value, const char **errstr_r)
{
	struct pwscheme_scram k;

	if (key[0] == '\0') {
		*errstr_r = "empty extra field key";
		return -1;
	}
	for (const char *p = key; *p != '\0'; p++) {
		if (*p == ':' || *p == '=' || passwd_is_ws_or_ctl((unsigned char)*p)) {
			*errstr_r = "bad character in extra field key";
			return -1;
		}
	}
	for (const char *p = value; p != NULL && *p != '\0'; p++) {
		if (*p == ':' || passwd_is_ws_or_ctl((unsigned char)*p)) {
			*errstr_r = "bad character in extra field value";
			return -1;
		}
	}
	if (strcmp(key, "locked") == 0) {
		if (value == NULL || (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)) {
			*errstr_r = "locked must be yes or no";
			return -1;
		}
	} else if (strcmp(key, "created") == 0 || strcmp(key, "expires") == 0) {
		if (value == NULL || !passwd_is_time(value)) {
			*errstr_r = "created and expires must be a UNIX time (seconds)";
			return -1;
		}
	} else if (strcmp(key, "label") == 0) {
		if (value == NULL || value[0] == '\0' || strlen(value) > PASSWD_LABEL_MAX) {
			*errstr_r = "label must have 1 to 64 characters";
			return -1;
		}
	} else if (strcmp(key, "scram1") == 0) {
		const char *e;

		if (value == NULL ||
		    pwscheme_scram_parse(PWSCHEME_SCRAM_SHA1, value, &k, &e) == -1) {
			*errstr_r = "scram1 must be SCRAM-SHA-1 keys ITER,SALT,STOREDKEY,SERVERKEY";
			return -1;
		}
	}
	return 0;
}

static void
passwd_entry_clear(struct passwd_entry *e)
{
	free(e->raw);
	free(e->user);
	if (e->password != NULL)
		xfree_secret_str(e->password);
	for (size_t i = 0; i < PASSWD_NPOSITIONAL; i++)
		free(e->positional[i]);
	for (size_t i = 0; i < e->nextra; i++) {
		free(e->extra[i].key);
		free(e->extra[i].value);
	}
	free(e->extra);
	memset(e, 0, sizeof(*e));
}

const char *
passwd_entry_get(const struct passwd_entry *e, const char *key)
{
	for (size_t i = 0; i < e->nextra; i++) {
		if (strcmp(e->extra[i].key, key) == 0)
			return e->extra[i].value != NULL ? e->extra[i].value : "";
	}
	return NULL;
}

int
passwd_entry_set(struct passwd_entry *e, const char *key, const char *value, const char **errstr_r)
{
	if (passwd_field_check(key, value, errstr_r) == -1)
		return -1;
	for (size_t i = 0; i < e->nextra; i++) {
		if (strcmp(e->extra[i].key, key) == 0) {
			free(e->extra[i].value);
			e->extra[i].value = value != NULL ? xstrdup(value) : NULL;
			return 0;
		}
	}
	e->extra = xrealloc(e->extra, (e->nextra + 1) * sizeof(*e->extra));
	e->extra[e->nextra].key = xstrdup(key);
	e->extra[e->nextra].value = value != NULL ? xstrdup(value) : NULL;
	e->nextra++;
	return 0;
}

void
passwd_entry_unset(struct passwd_entry *e, const char *key)
{
	for (size_t i = 0; i < e->nextra; i++) {
		if (strcmp(e->extra[i].key, key) == 0) {
			free(e->extra[i].key);
			free(e->extra[i].value);
			memmove(&e->extra[i], &e->extra[i + 1],
			    (e->nextra - i - 1) * sizeof(*e->extra));
			e->nextra--;
			return;
		}
	}
}

bool
passwd_entry_is_locked(const struct passwd_entry *e)
{
	const char *v = passwd_entry_get(e, "locked");

	return v != NULL && strcmp(v, "yes") == 0;
}

bool
passwd_entry_is_expired(const struct passwd_entry *e, int64_t now)
{
	const char *v = passwd_entry_get(e, "expires");

	return v != NULL && strtoll(v, NULL, 10) <= now;
}

bool
passwd_entry_is_active(const struct passwd_entry *e, int64_t now)
{
	return e->raw == NULL && !passwd_entry_is_locked(e) && !passwd_entry_is_expired(e, now);
}

int
passwd_entry_scram_keys(const struct passwd_entry *e, enum pwscheme s, struct pwscheme_scram *k_r)
{
	const char *errstr, *v;

	if (e->raw != NULL)
		return -1;
	if (e->scheme == s)
		return pwscheme_scram_parse(s, e->data, k_r, &errstr);
	if (s == PWSCHEME_SCRAM_SHA1 && (v = passwd_entry_get(e, "scram1")) != NULL)
		return pwscheme_scram_parse(s, v, k_r, &errstr);
	return -1;
}

int
passwd_entry_set_password(struct passwd_entry *e, const char *password, const char **errstr_r)
{
	enum pwscheme s;
	const char *data;
	char *copy = xstrdup(password);

	if (pwscheme_split(copy, &s, &data, errstr_r) == -1) {
		xfree_secret_str(copy);
		return -1;
	}
	if (e->password != NULL)
		xfree_secret_str(e->password);
	e->password = copy;
	e->scheme = s;
	e->data = data;
	return 0;
}

/* Parses the space-separated extra fields in f into e. */
static int
passwd_parse_extra(struct passwd_entry *e, char *f, const char **errstr_r)
{
	char *tok, *save = NULL, *eq;

	for (tok = strtok_r(f, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		eq = strchr(tok, '=');
		if (eq != NULL)
			*eq = '\0';
		if (passwd_entry_get(e, tok) != NULL) {
			*errstr_r = "duplicate extra field";
			return -1;
		}
		if (passwd_entry_set(e, tok, eq != NULL ? eq + 1 : NULL, errstr_r) == -1)
			return -1;
	}
	return 0;
}

/* Parses one credential line (NUL-terminated, modified in place). */
static int
passwd_parse_line(struct passwd_entry *e, char *line, const char **errstr_r)
{
	char *f, *next;
	size_t i;

	for (char *p = line; *p != '\0'; p++) {
		/* white space is allowed only as the separator of extra fields */
		if ((unsigned char)*p < ' ' || *p == 0x7f) {
			*errstr_r = "control character in line";
			return -1;
		}
	}
	next = strchr(line, ':');
	if (next == NULL) {
		*errstr_r = "expected user:{SCHEME}data";
		return -1;
	}
	*next++ = '\0';
	if (!passwd_user_is_valid(line, strlen(line))) {
		*errstr_r = "bad user name (1 to 320 bytes, no ':', white space or control "
		            "characters)";
		return -1;
	}
	e->user = xstrdup(line);
	f = next;
	next = strchr(f, ':');
	if (next != NULL)
		*next++ = '\0';
	if (f[0] == '\0') {
		*errstr_r = "empty password field";
		return -1;
	}
	if (strchr(f, ' ') != NULL) {
		*errstr_r = "white space in password field";
		return -1;
	}
	if (passwd_entry_set_password(e, f, errstr_r) == -1)
		return -1;
	for (i = 0; i < PASSWD_NPOSITIONAL; i++)
		e->positional[i] = xstrdup("");
	/* fields 3..7 are positional unless they hold key=value; 8 and later
	 * are Dovecot's extra fields */
	for (i = 0; next != NULL; i++) {
		f = next;
		next = strchr(f, ':');
		if (next != NULL)
			*next++ = '\0';
		if (i < PASSWD_NPOSITIONAL && strchr(f, '=') == NULL) {
			if (strchr(f, ' ') != NULL && i != 2 /* gecos */) {
				*errstr_r = "white space in a positional field";
				return -1;
			}
			free(e->positional[i]);
			e->positional[i] = xstrdup(f);
		} else if (passwd_parse_extra(e, f, errstr_r) == -1) {
			return -1;
		}
	}
	return 0;
}

void
passwd_file_free(struct passwd_file *pf)
{
	if (pf == NULL)
		return;
	for (size_t i = 0; i < pf->nentries; i++)
		passwd_entry_clear(&pf->entries[i]);
	free(pf->entries);
	free(pf->path);
	free(pf);
}

static struct passwd_entry *
passwd_file_append(struct passwd_file *pf)
{
	struct passwd_entry *e;

	pf->entries = xrealloc(pf->entries, (pf->nentries + 1) * sizeof(*pf->entries));
	e = &pf->entries[pf->nentries++];
	memset(e, 0, sizeof(*e));
	return e;
}

struct passwd_file *
passwd_file_parse_text(const char *file, const char *text, size_t len, char *err, size_t errlen)
{
	struct passwd_file *pf = xcalloc(1, sizeof(*pf));
	const char *p = text, *end, *nl, *errstr;
	struct passwd_entry *e;
	char *line = NULL;
	int lineno = 0;
	size_t n;

	pf->path = xstrdup(file);
	pf->mode = 0600;
	if (len == 0) /* text may be NULL then */
		return pf;
	end = text + len;
	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		line = xstrndup(p, n);
		p += n + (nl != NULL ? 1 : 0);
		if (strlen(line) != n) {
			errstr = "NUL byte in line";
			goto fail;
		}
		/* CRLF files; a comment's trailing CRs would not survive a rewrite */
		while (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		e = passwd_file_append(pf);
		e->line = lineno;
		if (strspn(line, " \t") == n || line[0] == '#') {
			e->raw = line;
			line = NULL;
			continue;
		}
		if (passwd_parse_line(e, line, &errstr) == -1)
			goto fail;
		xfree_secret_str(line);
		line = NULL;
	}
	return pf;
fail:
	snprintf(err, errlen, "%s:%d: %s", file, lineno, errstr);
	xfree_secret_str(line);
	passwd_file_free(pf);
	return NULL;
}

struct passwd_file *
passwd_file_load(const char *path, bool missing_ok, char *err, size_t errlen)
{
	struct passwd_file *pf;
	struct stat st;
	size_t len;
	char *text;

	text = fs_read_file(path, PASSWD_FILE_MAX, &len);
	if (text == NULL) {
		if (errno == ENOENT && missing_ok) {
			pf = xcalloc(1, sizeof(*pf));
			pf->path = xstrdup(path);
			pf->mode = 0600;
			return pf;
		}
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	pf = passwd_file_parse_text(path, text, len, err, errlen);
	xfree_secret(text, len + 1);
	if (pf == NULL)
		return NULL;
	pf->exists = true;
	if (stat(path, &st) == 0)
		pf->mode = st.st_mode & 07777;
	return pf;
}

int
passwd_file_format(const struct passwd_file *pf, struct buf *out)
{
	for (size_t i = 0; i < pf->nentries; i++) {
		const struct passwd_entry *e = &pf->entries[i];
		size_t npos = 0;

		if (e->raw != NULL) {
			if (buf_printf(out, "%s\n", e->raw) == -1)
				return -1;
			continue;
		}
		if (buf_printf(out, "%s:%s", e->user, e->password) == -1)
			return -1;
		for (size_t j = 0; j < PASSWD_NPOSITIONAL; j++) {
			if (e->positional[j] != NULL && e->positional[j][0] != '\0')
				npos = j + 1;
		}
		if (e->nextra > 0)
			npos = PASSWD_NPOSITIONAL;
		for (size_t j = 0; j < npos; j++) {
			if (buf_printf(
			        out, ":%s", e->positional[j] != NULL ? e->positional[j] : "") == -1)
				return -1;
		}
		for (size_t j = 0; j < e->nextra; j++) {
			if (buf_printf(out, "%c%s%s%s", j == 0 ? ':' : ' ', e->extra[j].key,
			        e->extra[j].value != NULL ? "=" : "",
			        e->extra[j].value != NULL ? e->extra[j].value : "") == -1)
				return -1;
		}
		if (buf_append(out, "\n", 1) == -1)
			return -1;
	}
	return 0;
}

int
passwd_file_save(const struct passwd_file *pf, char *err, size_t errlen)
{
	struct buf b;
	int r = -1, saved = 0;

	buf_init(&b, PASSWD_FILE_MAX);
	buf_set_secret(&b);
	if (passwd_file_format(pf, &b) == -1) {
		saved = EFBIG;
		snprintf(err, errlen, "%s: file would exceed %d bytes", pf->path, PASSWD_FILE_MAX);
		goto fail;
	}
	if (fs_write_atomic(pf->path, b.data, b.len, pf->mode) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: cannot write: %s", pf->path, strerror(errno));
		goto fail;
	}
	r = 0;
fail:
	buf_free(&b);
	if (r == -1)
		errno = saved;
	return r;
}

struct passwd_entry *
passwd_file_next(const struct passwd_file *pf, const char *user, size_t userlen, size_t *pos)
{
	for (; *pos < pf->nentries; (*pos)++) {
		struct passwd_entry *e = &pf->entries[*pos];

		if (e->raw == NULL && strlen(e->user) == userlen &&
		    memcmp(e->user, user, userlen) == 0) {
			(*pos)++;
			return e;
		}
	}
	return NULL;
}

bool
passwd_file_has_user(const struct passwd_file *pf, const char *user)
{
	size_t pos = 0;

	return passwd_file_next(pf, user, strlen(user), &pos) != NULL;
}

struct passwd_entry *
passwd_file_add(
    struct passwd_file *pf, const char *user, const char *password, const char **errstr_r)
{
	struct passwd_entry *e;

	if (!passwd_user_is_valid(user, strlen(user))) {
		*errstr_r = "bad user name (1 to 320 bytes, no ':', white space or control "
		            "characters, not starting with '#')";
		return NULL;
	}
	e = passwd_file_append(pf);
	e->user = xstrdup(user);
	for (size_t i = 0; i < PASSWD_NPOSITIONAL; i++)
		e->positional[i] = xstrdup("");
	if (passwd_entry_set_password(e, password, errstr_r) == -1) {
		passwd_entry_clear(e);
		pf->nentries--;
		return NULL;
	}
	return e;
}

void
passwd_file_remove(struct passwd_file *pf, size_t i)
{
	if (i >= pf->nentries)
		return;
	passwd_entry_clear(&pf->entries[i]);
	memmove(
	    &pf->entries[i], &pf->entries[i + 1], (pf->nentries - i - 1) * sizeof(*pf->entries));
	pf->nentries--;
}
