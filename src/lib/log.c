/*
 * log: JSON-lines logger. The target fd is shared by all threads; each line is
 * built in memory and written with one write(2) on an O_APPEND descriptor.
 *
 * Fields come as a jansson pack format and its arguments, but are packed here
 * (log_pack_*), not by json_vpack_ex: jansson refuses a string that is not
 * UTF-8 and then drops every field of the event, so a peer could take the
 * user, result and client out of its own failed login by sending one
 * byte 0xff. Every string argument goes through log_escape instead, and a
 * malformed argument (a NULL string) costs that one field, not the event.
 *
 * Escaped form (log.h): valid UTF-8 is kept; each byte of an invalid
 * sequence and NUL become the four characters \xHH; a backslash followed by
 * 'x' becomes \x5c, so every "\x" in a logged string is an escape and the
 * original bytes can be recovered exactly.
 */
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"

#define LOG_PACK_DEPTH_MAX 8 /* nested {} and [] in one format */

static int log_fd = 2;
static char *log_path;
static enum log_level log_min = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = {"debug", "info", "notice", "warning", "error", "alert"};

const char *
log_level_name(enum log_level level)
{
	return log_names[level];
}

int
log_open(const char *target)
{
	int fd;

	if (target == NULL || strcmp(target, "stderr") == 0) {
		log_fd = 2;
		return 0;
	}
	fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	pthread_mutex_lock(&log_lock);
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	free(log_path);
	log_path = strdup(target);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
log_use_fd(int fd)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd > 2) {
		/* dup2 keeps the descriptor number stable for concurrent writers */
		(void)dup2(fd, log_fd);
		close(fd);
	} else {
		log_fd = fd;
	}
	free(log_path);
	log_path = NULL;
	pthread_mutex_unlock(&log_lock);
}

int
log_dup_fd(void)
{
	int fd;

	pthread_mutex_lock(&log_lock);
	fd = log_fd > 2 ? fcntl(log_fd, F_DUPFD_CLOEXEC, 3) : -1;
	pthread_mutex_unlock(&log_lock);
	return fd;
}

void
log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return;
	pthread_mutex_lock(&log_lock);
	/* dup2 keeps the descriptor number stable for concurrent writers */
	dup2(fd, log_fd);
	close(fd);
	pthread_mutex_unlock(&log_lock);
}

void
log_set_level(enum log_level min)
{
	log_min = min;
}

/* --- escaping ----------------------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at p (1..4), or 0 when p[0] does not
 * start one: RFC 3629 4 (the Unicode Standard's table 3-7), so no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. That is what jansson
 * accepts; anything looser would make json_stringn fail.
 */
static size_t
log_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0; /* continuation byte, C0/C1 (overlong ASCII), F5..FF */
	if (n < len)
		return 0;
	/* the second byte's range is what rules out overlongs, surrogates and
	 * values past U+10FFFF */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return len;
}

int
log_escape(const char *p, size_t n, size_t max, struct buf *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;

	while (i < n) {
		size_t k = log_utf8_len(u + i, n - i);
		bool esc = k == 0 || u[i] == '\0' || (u[i] == '\\' && i + 1 < n && u[i + 1] == 'x');
		char e[4] = {'\\', 'x', hex[u[i] >> 4], hex[u[i] & 15]};

		if (esc)
			k = 1;
		if (out->len + (esc ? sizeof(e) : k) > max)
			return -1;
		if (buf_append(out, esc ? e : p + i, esc ? sizeof(e) : k) == -1)
			return -1;
		i += k;
	}
	return 0;
}

/* Escapes p[0..n) onto out (limit LOG_STRING_MAX + 3); a string that does
 * not fit is cut after whole characters and ends in "...". -1 when cut. */
static int
log_escape_cut(const char *p, size_t n, struct buf *out)
{
	if (log_escape(p, n, LOG_STRING_MAX, out) == 0)
		return 0;
	(void)!buf_append(out, "...", 3);
	return -1;
}

json_t *
log_json_string(const char *p, size_t n)
{
	struct buf b;
	json_t *s;

	buf_init(&b, LOG_STRING_MAX + 3);
	(void)log_escape_cut(p, n, &b);
	s = json_stringn(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return s;
}

/* --- packing ------------------------------------------------------------------- */

/*
 * The subset of jansson's pack format the callers use, with jansson's
 * meaning: { } [ ] objects and arrays; s (const char *), s# (with an int
 * length), s% (with a size_t length), each optionally followed by + / +# /
 * +% to append more; s? (NULL: null) and s* (NULL: the member is left out);
 * n, b (int), i (int), I (json_int_t), f (double); o (a json_t *, reference
 * stolen), O (reference taken), o? O? o* O*. Spaces, ',' and ':' are
 * ignored.
 */
struct log_pack {
	const char *fmt; /* next format character */
	va_list *ap;
	const char *errstr; /* the first problem; the event is still logged */
	bool stop; /* the format is broken: arguments can no longer be read */
};

static void
log_pack_error(struct log_pack *lp, const char *errstr)
{
	if (lp->errstr == NULL)
		lp->errstr = errstr;
}

static char
log_pack_next(struct log_pack *lp)
{
	while (*lp->fmt == ' ' || *lp->fmt == '\t' || *lp->fmt == '\n' || *lp->fmt == ',' ||
	    *lp->fmt == ':')
		lp->fmt++;
	return *lp->fmt;
}

/* Reads one length argument after '#' (int) or '%' (size_t). */
static size_t
log_pack_len(struct log_pack *lp, char t)
{
	int i;

	if (t == '%')
		return va_arg(*lp->ap, size_t);
	i = va_arg(*lp->ap, int);
	return i > 0 ? (size_t)i : 0;
}

/*
 * A string specifier at lp->fmt ('s' already skipped): its pieces joined
 * (before escaping, so a sequence split between pieces is judged whole),
 * then escaped onto out. *null_r: an argument was NULL. *mod_r: '?', '*' or 0.
 */
static void
log_pack_str(struct log_pack *lp, struct buf *out, bool *null_r, char *mod_r)
{
	struct buf raw;
	bool cut = false;

	*null_r = false;
	*mod_r = 0;
	if (*lp->fmt == '?' || *lp->fmt == '*')
		*mod_r = *lp->fmt++;
	buf_init(&raw, LOG_STRING_MAX);
	for (;;) {
		const char *s = va_arg(*lp->ap, const char *);
		size_t n = 0;
		char t = *lp->fmt;

		if (t == '#' || t == '%') {
			lp->fmt++;
			n = log_pack_len(lp, t);
		} else if (s != NULL) {
			n = strlen(s);
		}
		if (s == NULL) {
			*null_r = true;
		} else if (!cut && n > raw.max - raw.len) {
			cut = true;
			(void)!buf_append(&raw, s, raw.max - raw.len);
		} else if (!cut && buf_append(&raw, s, n) == -1) {
			cut = true;
		}
		if (*lp->fmt != '+')
			break;
		lp->fmt++;
	}
	if (!*null_r) {
		if (log_escape_cut(raw.data, raw.len, out) == -1)
			cut = true; /* "..." appended */
		else if (cut)
			(void)!buf_append(out, "...", 3);
		if (cut)
			log_pack_error(lp, "a string was cut at " LOG_STRING_MAX_TEXT " bytes");
	}
	buf_free(&raw);
}

static json_t *log_pack_value(struct log_pack *lp, int depth, bool *skip_r);

/* A member key: a string specifier; NULL for a broken format. */
static char *
log_pack_key(struct log_pack *lp)
{
	struct buf b;
	bool null;
	char mod, *key;

	if (log_pack_next(lp) != 's') {
		log_pack_error(lp, "bad format: expected a key");
		lp->stop = true;
		return NULL;
	}
	lp->fmt++;
	buf_init(&b, LOG_STRING_MAX + 3);
	log_pack_str(lp, &b, &null, &mod);
	key = null || mod != 0 ? NULL : buf_strdup(&b);
	buf_free(&b);
	if (key == NULL) {
		log_pack_error(lp, "NULL or optional key");
		lp->stop = true;
	}
	return key;
}

static json_t *
log_pack_container(struct log_pack *lp, int depth, char close)
{
	json_t *c = close == '}' ? json_object() : json_array();

	if (depth >= LOG_PACK_DEPTH_MAX) {
		log_pack_error(lp, "bad format: nested too deep");
		lp->stop = true;
		return c;
	}
	while (!lp->stop) {
		char *key = NULL;
		json_t *v;
		bool skip;

		if (log_pack_next(lp) == close) {
			lp->fmt++;
			return c;
		}
		if (*lp->fmt == '\0') {
			log_pack_error(lp, "bad format: unterminated");
			lp->stop = true;
			break;
		}
		if (close == '}' && (key = log_pack_key(lp)) == NULL)
			break;
		v = log_pack_value(lp, depth + 1, &skip);
		if (!skip && v != NULL) {
			if (close == '}')
				json_object_set_new(c, key, v);
			else
				json_array_append_new(c, v);
		} else {
			json_decref(v);
		}
		free(key);
	}
	return c;
}

/* A json_t argument (o, O and their ? and * forms). */
static json_t *
log_pack_json(struct log_pack *lp, char t, bool *skip_r)
{
	json_t *v = va_arg(*lp->ap, json_t *);
	char mod = 0;

	if (*lp->fmt == '?' || *lp->fmt == '*')
		mod = *lp->fmt++;
	if (v == NULL) {
		if (mod == '*')
			*skip_r = true;
		else if (mod != '?')
			log_pack_error(lp, "NULL object");
		return json_null();
	}
	return t == 'O' ? json_incref(v) : v;
}

/* The value at lp->fmt; NULL only after a broken format. *skip_r: a NULL
 * s* or o* (leave the member out). */
static json_t *
log_pack_value(struct log_pack *lp, int depth, bool *skip_r)
{
	char t = log_pack_next(lp);

	*skip_r = false;
	lp->fmt++;
	switch (t) {
	case '{':
		return log_pack_container(lp, depth, '}');
	case '[':
		return log_pack_container(lp, depth, ']');
	case 's': {
		struct buf b;
		bool null;
		char mod;
		json_t *v;

		buf_init(&b, LOG_STRING_MAX + 3);
		log_pack_str(lp, &b, &null, &mod);
		if (null) {
			if (mod == '*')
				*skip_r = true;
			else if (mod != '?')
				log_pack_error(lp, "NULL string");
			v = json_null();
		} else {
			v = json_stringn(b.data != NULL ? b.data : "", b.len);
		}
		buf_free(&b);
		return v;
	}
	case 'n':
		return json_null();
	case 'b':
		return json_boolean(va_arg(*lp->ap, int));
	case 'i':
		return json_integer(va_arg(*lp->ap, int));
	case 'I':
		return json_integer(va_arg(*lp->ap, json_int_t));
	case 'f':
		return json_real(va_arg(*lp->ap, double));
	case 'o':
	case 'O':
		return log_pack_json(lp, t, skip_r);
	default:
		lp->fmt--;
		log_pack_error(lp, "bad format: unknown specifier");
		lp->stop = true;
		return NULL;
	}
}

/* Packs the fields into obj, member by member. */
static void
log_pack_fields(json_t *obj, const char *fields, va_list *ap)
{
	struct log_pack lp = {.fmt = fields, .ap = ap};
	json_t *extra;

	if (log_pack_next(&lp) != '{') {
		json_object_set_new(obj, "log_error", json_string("bad format: not an object"));
		return;
	}
	lp.fmt++;
	extra = log_pack_container(&lp, 0, '}');
	if (!lp.stop && log_pack_next(&lp) != '\0')
		log_pack_error(&lp, "bad format: text after the object");
	json_object_update(obj, extra);
	json_decref(extra);
	if (lp.errstr != NULL)
		json_object_set_new(obj, "log_error", json_string(lp.errstr));
}

/* --- events ------------------------------------------------------------------------ */

void
log_event(enum log_level level, const char *event, uint64_t session, const char *fields, ...)
{
	struct timeval tv;
	struct tm tm;
	char ts[64];
	json_t *obj = NULL;
	va_list ap;
	char *line;
	size_t len;

	if (level < log_min) {
		/* o arguments are owned by the event: release them */
		if (fields != NULL && strchr(fields, 'o') != NULL) {
			obj = json_object();
			va_start(ap, fields);
			log_pack_fields(obj, fields, &ap);
			va_end(ap);
			json_decref(obj);
		}
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (long)(tv.tv_usec / 1000) % 1000);
	obj = json_object();
	json_object_set_new(obj, "ts", json_string(ts));
	json_object_set_new(obj, "level", json_string(log_names[level]));
	json_object_set_new(obj, "event", log_json_string(event, strlen(event)));
	if (session != 0)
		json_object_set_new(obj, "session", json_integer((json_int_t)session));
	if (fields != NULL) {
		va_start(ap, fields);
		log_pack_fields(obj, fields, &ap);
		va_end(ap);
	}
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (line == NULL)
		return;
	len = strlen(line);
	line[len] = '\n'; /* overwrite the NUL; json_dumps gives len+1 bytes */
	(void)!write(log_fd, line, len + 1);
	free(line);
}
