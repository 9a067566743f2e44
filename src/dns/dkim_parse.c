/*
 * dkim_parse: tag-list and DKIM key record parser (see dkim_parse.h).
 *
 *   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  = ALPHA *ALNUMPUNC          ALNUMPUNC = ALPHA / DIGIT / "_"
 *   tag-value = [ tval *( 1*(WSP / FWS) tval ) ]
 *   tval      = 1*VALCHAR                 VALCHAR = %x21-3A / %x3C-7E
 *
 * White space (SP, HTAB, CRLF followed by WSP) may also trail the last ";",
 * as it often does in published records. The key's p= is base64 with FWS
 * allowed anywhere (RFC 6376 3.6.1); it is decoded strictly otherwise.
 */
#include "dns/dkim_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

static bool
dkim_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
dkim_is_alnumpunc(char c)
{
	return dkim_is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* Skips FWS at p[*i]: [*WSP CRLF] 1*WSP, or plain WSP. */
static void
dkim_skip_fws(const char *p, size_t len, size_t *i)
{
	for (;;) {
		if (*i < len && (p[*i] == ' ' || p[*i] == '\t')) {
			(*i)++;
		} else if (*i + 2 < len && p[*i] == '\r' && p[*i + 1] == '\n' &&
		    (p[*i + 2] == ' ' || p[*i + 2] == '\t')) {
			*i += 3;
		} else {
			return;
		}
	}
}

static bool
dkim_name_eq(const char *a, size_t alen, const char *b, size_t blen, bool icase)
{
	if (alen != blen)
		return false;
	return icase ? strncasecmp(a, b, alen) == 0 : memcmp(a, b, alen) == 0;
}

int
dkim_taglist_parse(
    const char *p, size_t len, bool icase, struct dkim_taglist *tl, struct dkim_parse_error *err_r)
{
	size_t i = 0;

	tl->n = 0;
	err_r->errstr = NULL;
	err_r->off = err_r->len = 0;
	while (i < len) {
		struct dkim_tag *t;
		size_t s = i, vend;

		dkim_skip_fws(p, len, &i);
		if (i == len && tl->n > 0)
			break; /* white space after the final ";" */
		s = i; /* errors name the tag-spec without its leading FWS */
		if (tl->n >= DKIM_TAGS_MAX) {
			err_r->errstr = "too many tags";
			goto fail_at;
		}
		t = &tl->v[tl->n];
		t->off = s;
		t->name = p + i;
		if (i >= len || !dkim_is_alpha(p[i])) {
			err_r->errstr =
			    i < len && p[i] == ';' ? "empty tag (\";;\")" : "tag name expected";
			goto fail_at;
		}
		while (i < len && dkim_is_alnumpunc(p[i]))
			i++;
		t->name_len = (size_t)(p + i - t->name);
		dkim_skip_fws(p, len, &i);
		if (i >= len || p[i] != '=') {
			err_r->errstr = "\"=\" expected after the tag name";
			goto fail_at;
		}
		i++;
		dkim_skip_fws(p, len, &i);
		t->value = p + i;
		vend = i;
		while (i < len && p[i] != ';') {
			unsigned char c = (unsigned char)p[i];

			if (c == ' ' || c == '\t' || c == '\r') {
				size_t k = i;

				dkim_skip_fws(p, len, &k);
				if (k == i) {
					err_r->errstr = "bare CR or LF in the value";
					goto fail_at;
				}
				i = k;
				continue;
			}
			if (c < 0x21 || c > 0x7e) {
				err_r->errstr = "character outside printable ASCII in the value";
				goto fail_at;
			}
			i++;
			vend = i;
		}
		t->value_len = vend - (size_t)(t->value - p);
		t->len = i - s;
		for (size_t k = 0; k < tl->n; k++) {
			if (dkim_name_eq(
			        tl->v[k].name, tl->v[k].name_len, t->name, t->name_len, icase)) {
				err_r->errstr = "tag appears more than once";
				goto fail_at;
			}
		}
		tl->n++;
		if (i < len)
			i++; /* the ";" */
		continue;
	fail_at:
		/* the offending tag-spec: from s to the next ";" */
		while (i < len && p[i] != ';')
			i++;
		if (i == s && i < len)
			i++; /* an empty tag: name its ";" */
		err_r->off = s;
		err_r->len = i - s;
		return -1;
	}
	if (tl->n == 0) {
		err_r->errstr = "no tags";
		return -1;
	}
	return 0;
}

const struct dkim_tag *
dkim_taglist_get(const struct dkim_taglist *tl, const char *name, bool icase)
{
	for (size_t i = 0; i < tl->n; i++) {
		if (dkim_name_eq(tl->v[i].name, tl->v[i].name_len, name, strlen(name), icase))
			return &tl->v[i];
	}
	return NULL;
}

/* Calls fn for each colon-separated item of a value, with white space
 * around the items removed. Returns false when an item is empty. */
static bool
dkim_list_each(const struct dkim_tag *t, bool (*fn)(void *arg, const char *p, size_t n), void *arg)
{
	size_t i = 0;
	const char *v = t->value;
	size_t len = t->value_len;

	while (i <= len) {
		size_t s, e;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
			i++;
		s = i;
		while (i < len && v[i] != ':')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\n'))
			e--;
		if (e == s || !fn(arg, v + s, e - s))
			return false;
		i++;
	}
	return true;
}

static bool
dkim_token_eq(const char *p, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(p, s, n) == 0;
}

struct dkim_hashes {
	bool sha1, sha256;
};

static bool
dkim_hash_cb(void *arg, const char *p, size_t n)
{
	struct dkim_hashes *h = arg;

	if (dkim_token_eq(p, n, "sha1"))
		h->sha1 = true;
	else if (dkim_token_eq(p, n, "sha256"))
		h->sha256 = true;
	return true; /* unknown algorithms are ignored (RFC 6376 3.6.1) */
}

static bool
dkim_flag_cb(void *arg, const char *p, size_t n)
{
	struct dkim_key_record *r = arg;

	if (dkim_token_eq(p, n, "y"))
		r->testing = true;
	else if (dkim_token_eq(p, n, "s"))
		r->strict = true;
	return true; /* unknown flags are ignored */
}

static bool
dkim_service_cb(void *arg, const char *p, size_t n)
{
	bool *email = arg;

	if (dkim_token_eq(p, n, "*") || dkim_token_eq(p, n, "email"))
		*email = true;
	return true;
}

static void
dkim_err_tag(struct dkim_parse_error *err_r, const struct dkim_tag *t, const char *errstr)
{
	err_r->errstr = errstr;
	err_r->off = t->off;
	err_r->len = t->len;
}

int
dkim_key_parse(const char *p, size_t len, struct dkim_key_record *r, struct dkim_parse_error *err_r)
{
	struct dkim_taglist tl;
	const struct dkim_tag *t;
	struct buf b64, key;

	memset(r, 0, sizeof(*r));
	memcpy(r->key_type, "rsa", 4);
	if (dkim_taglist_parse(p, len, false, &tl, err_r) == -1)
		return -1;
	/* RFC 6376 3.6.1: v=, if present, is first and exactly "DKIM1" */
	t = dkim_taglist_get(&tl, "v", false);
	if (t != NULL && t != &tl.v[0]) {
		dkim_err_tag(err_r, t, "\"v=\" must be the first tag");
		return -1;
	}
	if (t != NULL && !dkim_token_eq(t->value, t->value_len, "DKIM1")) {
		dkim_err_tag(err_r, t, "\"v=\" must be \"DKIM1\"");
		return -1;
	}
	if ((t = dkim_taglist_get(&tl, "h", false)) != NULL) {
		struct dkim_hashes h = {false, false};

		if (!dkim_list_each(t, dkim_hash_cb, &h)) {
			dkim_err_tag(err_r, t, "empty item in the \"h=\" list");
			return -1;
		}
		r->sha1_only = h.sha1 && !h.sha256;
		if (!h.sha1 && !h.sha256) {
			dkim_err_tag(err_r, t, "\"h=\" lists no known hash (sha256)");
			return -1;
		}
	}
	if ((t = dkim_taglist_get(&tl, "k", false)) != NULL) {
		if (dkim_token_eq(t->value, t->value_len, "rsa"))
			memcpy(r->key_type, "rsa", 4);
		else if (dkim_token_eq(t->value, t->value_len, "ed25519"))
			memcpy(r->key_type, "ed25519", 8);
		else {
			dkim_err_tag(err_r, t, "unknown key type (\"rsa\" or \"ed25519\")");
			return -1;
		}
	}
	if ((t = dkim_taglist_get(&tl, "s", false)) != NULL) {
		bool email = false;

		if (!dkim_list_each(t, dkim_service_cb, &email)) {
			dkim_err_tag(err_r, t, "empty item in the \"s=\" list");
			return -1;
		}
		if (!email) {
			dkim_err_tag(err_r, t, "\"s=\" does not include \"email\" or \"*\"");
			return -1;
		}
	}
	if ((t = dkim_taglist_get(&tl, "t", false)) != NULL &&
	    !dkim_list_each(t, dkim_flag_cb, r)) {
		dkim_err_tag(err_r, t, "empty item in the \"t=\" list");
		return -1;
	}
	if ((t = dkim_taglist_get(&tl, "p", false)) == NULL) {
		err_r->errstr = "\"p=\" (the public key) is required";
		err_r->off = 0;
		err_r->len = len;
		return -1;
	}
	if (t->value_len == 0) {
		r->revoked = true; /* RFC 6376 3.6.1: empty p= means revoked */
		return 0;
	}
	buf_init(&b64, 2 * DKIM_KEY_MAX);
	buf_init(&key, DKIM_KEY_MAX);
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue; /* FWS inside base64string */
		if (buf_append(&b64, &c, 1) == -1)
			break;
	}
	if (b64.len == 0 || base64_decode(b64.data, b64.len, &key) == -1) {
		buf_free(&b64);
		buf_free(&key);
		dkim_err_tag(err_r, t, "\"p=\" is not valid base64 (or is too long)");
		return -1;
	}
	r->key = xmemdup(key.data, key.len);
	r->key_len = key.len;
	buf_free(&b64);
	buf_free(&key);
	return 0;
}

void
dkim_key_record_free(struct dkim_key_record *r)
{
	free(r->key);
	r->key = NULL;
	r->key_len = 0;
}

int
dkim_key_bits(const struct dkim_key_record *r, const char **errstr_r)
{
	const unsigned char *q;
	EVP_PKEY *pk;
	int bits;

	*errstr_r = NULL;
	if (r->revoked || r->key == NULL) {
		*errstr_r = "no key (revoked)";
		return -1;
	}
	if (strcmp(r->key_type, "ed25519") == 0) {
		/* RFC 8463 4.2: the raw 32-byte public key, not an SPKI */
		if (r->key_len != 32) {
			*errstr_r = "an ed25519 key is 32 bytes";
			return -1;
		}
		return 256;
	}
	q = r->key;
	pk = d2i_PUBKEY(NULL, &q, (long)r->key_len);
	if (pk == NULL || q != r->key + r->key_len) {
		EVP_PKEY_free(pk);
		*errstr_r = "\"p=\" is not a DER SubjectPublicKeyInfo";
		return -1;
	}
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pk);
		*errstr_r = "\"p=\" holds a key that is not RSA, but k=rsa";
		return -1;
	}
	bits = EVP_PKEY_get_bits(pk);
	EVP_PKEY_free(pk);
	return bits;
}
