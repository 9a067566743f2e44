/*
 * envelope: encoder and strict parser of the envelope text, and the trailer
 * line of spool files (format in doc/spool.md).
 *
 * Invariants: the encoder only emits lines the parser accepts, and for any
 * input strings the output has exactly one line per field: every byte below
 * 0x20, 0x7f and '%' is escaped as %XX. The parser rejects raw control bytes,
 * malformed escapes and %00, so a decoded value never holds a NUL.
 */
#include "queue/envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/xalloc.h"

static const char envelope_hex[] = "0123456789abcdef";

static bool
envelope_must_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%';
}

static int
envelope_put_value(struct buf *out, const char *v)
{
	static const char upper[] = "0123456789ABCDEF";
	const char *p, *run;

	if (v == NULL)
		v = "";
	for (p = run = v; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[3];

		if (!envelope_must_escape(c))
			continue;
		if (buf_append(out, run, (size_t)(p - run)) == -1)
			return -1;
		esc[0] = '%';
		esc[1] = upper[c >> 4];
		esc[2] = upper[c & 15];
		if (buf_append(out, esc, 3) == -1)
			return -1;
		run = p + 1;
	}
	return buf_append(out, run, (size_t)(p - run));
}

static int
envelope_put(struct buf *out, const char *key, const char *value)
{
	if (buf_append_str(out, key) == -1 || buf_append(out, ": ", 2) == -1 ||
	    envelope_put_value(out, value) == -1 || buf_append(out, "\n", 1) == -1)
		return -1;
	return 0;
}

int
envelope_append_field(struct buf *out, const char *key, const char *value)
{
	return envelope_put(out, key, value);
}

int
envelope_encode(const char *id, const struct queue_envelope *env, struct buf *out)
{
	char num[32];

	snprintf(num, sizeof(num), "%d", ENVELOPE_VERSION);
	if (envelope_put(out, "smtpgate-envelope", num) == -1 || envelope_put(out, "id", id) == -1)
		goto fail;
	snprintf(num, sizeof(num), "%lld", (long long)env->arrival);
	if (envelope_put(out, "arrival", num) == -1 ||
	    envelope_put(out, "sender", env->sender) == -1)
		goto fail;
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (envelope_put(out, "rcpt", env->rcpts[i]) == -1)
			goto fail;
	}
	if (env->auth_user != NULL && envelope_put(out, "auth-user", env->auth_user) == -1)
		goto fail;
	if (envelope_put(out, "client-addr", env->client_addr) == -1 ||
	    envelope_put(out, "helo", env->helo) == -1 ||
	    envelope_put(out, "smtputf8", env->smtputf8 ? "yes" : "no") == -1 ||
	    envelope_put(out, "body", env->body_8bit ? "8bitmime" : "7bit") == -1)
		goto fail;
	return 0;
fail:
	return -1;
}

/* Decodes a value; NULL on a raw control byte, a bad escape or %00. */
static char *
envelope_decode(const char *p, size_t len)
{
	char *r = xmalloc(len + 1), *o = r;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int hi, lo;

		if (c < 0x20 || c == 0x7f)
			goto fail;
		if (c != '%') {
			*o++ = (char)c;
			continue;
		}
		if (i + 2 >= len)
			goto fail;
		hi = hex_digit(p[i + 1], true);
		lo = hex_digit(p[i + 2], true);
		if (hi == -1 || lo == -1 || (hi == 0 && lo == 0))
			goto fail;
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return r;
fail:
	free(r);
	return NULL;
}

static bool
envelope_key_is_valid(const char *p, size_t len)
{
	if (len == 0 || len > ENVELOPE_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return false;
	}
	return true;
}

static bool
envelope_key_is(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

/* Sets a single-valued field; a second occurrence is an error. */
static int
envelope_set_once(char **field, char *v)
{
	if (*field != NULL) {
		free(v);
		return -1;
	}
	*field = v;
	return 0;
}

static int
envelope_parse_bool(const char *v, const char *yes, const char *no, bool *r)
{
	if (strcmp(v, yes) == 0)
		*r = true;
	else if (strcmp(v, no) == 0)
		*r = false;
	else
		return -1;
	return 0;
}

struct envelope *
envelope_parse(const char *p, size_t len, const char **errstr_r)
{
	struct envelope *e = xcalloc(1, sizeof(*e));
	char *arrival = NULL, *smtputf8 = NULL, *body = NULL, *end;
	const char *line = p, *nl, *colon, *errstr = "malformed envelope";
	size_t lineno = 0;
	long long ll;

	if (len > ENVELOPE_MAX) {
		errstr = "envelope too large";
		goto fail;
	}
	while (line < p + len) {
		const char *k;
		size_t klen;
		char *v;
		int r;

		nl = memchr(line, '\n', (size_t)(p + len - line));
		if (nl == NULL) {
			errstr = "envelope line without a line end";
			goto fail;
		}
		colon = memchr(line, ':', (size_t)(nl - line));
		if (colon == NULL || colon + 1 == nl || colon[1] != ' ') {
			errstr = "envelope line is not \"key: value\"";
			goto fail;
		}
		k = line;
		klen = (size_t)(colon - line);
		if (!envelope_key_is_valid(k, klen)) {
			errstr = "bad envelope key";
			goto fail;
		}
		v = envelope_decode(colon + 2, (size_t)(nl - colon - 2));
		if (v == NULL) {
			errstr = "bad envelope value (control byte or bad %-escape)";
			goto fail;
		}
		line = nl + 1;
		if (lineno++ == 0) {
			if (!envelope_key_is(k, klen, "smtpgate-envelope")) {
				free(v);
				errstr = "not an smtpgate envelope";
				goto fail;
			}
			if (strcmp(v, "1") != 0) {
				free(v);
				errstr = "unsupported envelope version";
				goto fail;
			}
			e->version = 1;
			free(v);
			continue;
		}
		r = 0;
		if (envelope_key_is(k, klen, "smtpgate-envelope")) {
			free(v);
			r = -1;
		} else if (envelope_key_is(k, klen, "id")) {
			r = envelope_set_once(&e->id, v);
		} else if (envelope_key_is(k, klen, "arrival")) {
			r = envelope_set_once(&arrival, v);
		} else if (envelope_key_is(k, klen, "sender")) {
			r = envelope_set_once(&e->sender, v);
		} else if (envelope_key_is(k, klen, "rcpt")) {
			e->rcpts = xrealloc(e->rcpts, (e->nrcpts + 1) * sizeof(*e->rcpts));
			e->rcpts[e->nrcpts++] = v;
		} else if (envelope_key_is(k, klen, "auth-user")) {
			r = envelope_set_once(&e->auth_user, v);
		} else if (envelope_key_is(k, klen, "client-addr")) {
			r = envelope_set_once(&e->client_addr, v);
		} else if (envelope_key_is(k, klen, "helo")) {
			r = envelope_set_once(&e->helo, v);
		} else if (envelope_key_is(k, klen, "smtputf8")) {
			r = envelope_set_once(&smtputf8, v);
		} else if (envelope_key_is(k, klen, "body")) {
			r = envelope_set_once(&body, v);
		} else {
			e->extra = xrealloc(e->extra, (e->nextra + 1) * sizeof(*e->extra));
			e->extra[e->nextra].key = xstrndup(k, klen);
			e->extra[e->nextra++].value = v;
		}
		if (r == -1) {
			errstr = "duplicate envelope field";
			goto fail;
		}
	}
	if (e->version == 0 || e->id == NULL || arrival == NULL || e->sender == NULL ||
	    e->nrcpts == 0) {
		errstr = "envelope lacks a required field (id, arrival, sender, rcpt)";
		goto fail;
	}
	errno = 0;
	ll = strtoll(arrival, &end, 10);
	if (arrival[0] < '0' || arrival[0] > '9' || *end != '\0' || errno != 0) {
		errstr = "bad envelope arrival";
		goto fail;
	}
	e->arrival = (time_t)ll;
	if (e->client_addr == NULL)
		e->client_addr = xstrdup("");
	if (e->helo == NULL)
		e->helo = xstrdup("");
	if ((smtputf8 != NULL && envelope_parse_bool(smtputf8, "yes", "no", &e->smtputf8) == -1) ||
	    (body != NULL && envelope_parse_bool(body, "8bitmime", "7bit", &e->body_8bit) == -1)) {
		errstr = "bad envelope smtputf8 or body";
		goto fail;
	}
	free(arrival);
	free(smtputf8);
	free(body);
	return e;
fail:
	free(arrival);
	free(smtputf8);
	free(body);
	envelope_free(e);
	if (errstr_r != NULL)
		*errstr_r = errstr;
	return NULL;
}

void
envelope_free(struct envelope *e)
{
	if (e == NULL)
		return;
	free(e->id);
	free(e->sender);
	for (size_t i = 0; i < e->nrcpts; i++)
		free(e->rcpts[i]);
	free(e->rcpts);
	free(e->auth_user);
	free(e->client_addr);
	free(e->helo);
	for (size_t i = 0; i < e->nextra; i++) {
		free(e->extra[i].key);
		free(e->extra[i].value);
	}
	free(e->extra);
	free(e);
}

void
envelope_trailer_prefix(uint64_t body_len, uint64_t env_len, char out[ENVELOPE_TRAILER_PREFIX_LEN])
{
	char tmp[ENVELOPE_TRAILER_PREFIX_LEN + 1];

	snprintf(tmp, sizeof(tmp),
	    "%%%%smtpgate 1 body=%016" PRIx64 " env=%08" PRIx64 " sha256=", body_len,
	    env_len & 0xffffffffu);
	memcpy(out, tmp, ENVELOPE_TRAILER_PREFIX_LEN);
}

void
envelope_trailer_suffix(const unsigned char hash[ENVELOPE_HASH_LEN],
    char out[ENVELOPE_TRAILER_LEN - ENVELOPE_TRAILER_PREFIX_LEN])
{
	for (size_t i = 0; i < ENVELOPE_HASH_LEN; i++) {
		out[2 * i] = envelope_hex[hash[i] >> 4];
		out[2 * i + 1] = envelope_hex[hash[i] & 15];
	}
	out[2 * ENVELOPE_HASH_LEN] = '\n';
}

/* Parses exactly n lower-case hex digits. */
static int
envelope_parse_hex(const char *p, size_t n, uint64_t *r)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		int d = hex_digit(p[i], true);

		if (d == -1 || (p[i] >= 'A' && p[i] <= 'F'))
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*r = v;
	return 0;
}

int
envelope_trailer_parse(const char *p, uint64_t *body_len_r, uint64_t *env_len_r,
    unsigned char hash_r[ENVELOPE_HASH_LEN])
{
	uint64_t b;

	if (memcmp(p, "%%smtpgate 1 body=", 18) != 0 || memcmp(p + 34, " env=", 5) != 0 ||
	    memcmp(p + 47, " sha256=", 8) != 0 || p[ENVELOPE_TRAILER_LEN - 1] != '\n')
		return -1;
	if (envelope_parse_hex(p + 18, 16, body_len_r) == -1 ||
	    envelope_parse_hex(p + 39, 8, env_len_r) == -1)
		return -1;
	for (size_t i = 0; i < ENVELOPE_HASH_LEN; i++) {
		if (envelope_parse_hex(p + ENVELOPE_TRAILER_PREFIX_LEN + 2 * i, 2, &b) == -1)
			return -1;
		hash_r[i] = (unsigned char)b;
	}
	return 0;
}
