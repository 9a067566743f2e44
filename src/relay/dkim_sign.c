/*
 * dkim_sign: DKIM signing (dkim_sign.h).
 *
 * What is signed (RFC 6376 5.4): the configured header names, each listed
 * in h= once per instance present in the message (so every instance is
 * covered, selected bottom-up as RFC 6376 5.4.2 says), and From: once more
 * than it is present ("over-signing": a From: added later in transit makes
 * the signature fail instead of slipping in above it). The header data is
 * the relaxed form of the selected instances in h= order, then the relaxed
 * DKIM-Signature field with an empty b= and no final CRLF (RFC 6376 3.7).
 *
 * rsa-sha256 signs that data with RSASSA-PKCS1-v1_5 over SHA-256; for
 * ed25519-sha256 the data is hashed with SHA-256 and the 32-byte hash is
 * signed with PureEdDSA Ed25519 (RFC 8463 3). bh= is SHA-256 of the
 * relaxed body.
 */
#include "relay/dkim_sign.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "conf/conf.h"
#include "lib/base64.h"
#include "lib/xalloc.h"
#include "smtp/smtp_header.h"

static bool
dkim_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int
dkim_sign_split(const char *msg, size_t len, struct dkim_field **fields_r, size_t *nfields_r,
    size_t *body_off_r, const char **errstr_r)
{
	struct dkim_field *v = NULL;
	size_t n = 0, off = 0;

	*fields_r = NULL;
	*nfields_r = 0;
	while (off < len) {
		const char *line = msg + off, *lf = memchr(line, '\n', len - off);
		size_t linelen = lf != NULL ? (size_t)(lf - line) : len - off;
		size_t next = off + linelen + (lf != NULL ? 1 : 0);
		size_t textlen = linelen > 0 && line[linelen - 1] == '\r' ? linelen - 1 : linelen;

		if (textlen == 0) {
			/* RFC 5322 2.1: the empty line ends the header section */
			*body_off_r = next;
			goto done;
		}
		if (dkim_is_wsp(line[0])) {
			/* RFC 5322 2.2.3: a continuation of the field above */
			if (n == 0) {
				*errstr_r = "the header section starts with a continuation line";
				goto fail;
			}
			v[n - 1].len = (size_t)(line + textlen - v[n - 1].raw);
		} else {
			const char *colon = memchr(line, ':', textlen);
			size_t namelen;

			if (colon == NULL || colon == line) {
				*errstr_r = "a header line is neither a field nor a continuation";
				goto fail;
			}
			namelen = (size_t)(colon - line);
			while (namelen > 0 && dkim_is_wsp(line[namelen - 1]))
				namelen--;
			for (size_t i = 0; i < namelen; i++) {
				if (line[i] < 33 || line[i] > 126) {
					*errstr_r = "a header field name holds invalid characters";
					goto fail;
				}
			}
			if (n == DKIM_SIGN_FIELDS_MAX) {
				*errstr_r = "too many header fields";
				goto fail;
			}
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n].raw = line;
			v[n].len = textlen;
			v[n].namelen = namelen;
			n++;
		}
		off = next;
	}
	*body_off_r = len;
done:
	*fields_r = v;
	*nfields_r = n;
	return 0;
fail:
	free(v);
	return -1;
}

int
dkim_sign_canon_header(const char *raw, size_t len, struct buf *out)
{
	const char *colon = memchr(raw, ':', len);
	size_t namelen, i;
	bool wsp = false, content = false;

	if (colon == NULL)
		return -1;
	namelen = (size_t)(colon - raw);
	/* RFC 6376 3.4.2: the name in lower case, WSP before the colon deleted */
	while (namelen > 0 && dkim_is_wsp(raw[namelen - 1]))
		namelen--;
	for (i = 0; i < namelen; i++) {
		char c = (char)tolower((unsigned char)raw[i]);

		if (buf_append(out, &c, 1) == -1)
			return -1;
	}
	if (buf_append(out, ":", 1) == -1)
		return -1;
	/* unfold (delete CRLF), runs of WSP become one SP, WSP at both ends of
	 * the value deleted */
	for (i = (size_t)(colon - raw) + 1; i < len; i++) {
		char c = raw[i];

		if (c == '\r' && i + 1 < len && raw[i + 1] == '\n')
			continue;
		if (c == '\n')
			continue;
		if (dkim_is_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && content && buf_append(out, " ", 1) == -1)
			return -1;
		wsp = false;
		content = true;
		if (buf_append(out, &c, 1) == -1)
			return -1;
	}
	return buf_append(out, "\r\n", 2);
}

static void
dkim_body_put(struct dkim_body *b, const char *p, size_t n)
{
	if (b->outlen + n > sizeof(b->out)) {
		b->emit_cb(b->arg, b->out, b->outlen);
		b->outlen = 0;
	}
	memcpy(b->out + b->outlen, p, n);
	b->outlen += n;
}

void
dkim_sign_body_init(struct dkim_body *b, void (*emit_cb)(void *, const char *, size_t), void *arg)
{
	memset(b, 0, sizeof(*b));
	b->emit_cb = emit_cb;
	b->arg = arg;
}

/* One byte of line content (not WSP, not a line end). */
static void
dkim_body_content(struct dkim_body *b, char c)
{
	/* empty lines are only kept when content follows them (RFC 6376 3.4.4:
	 * "ignore all empty lines at the end of the message body") */
	for (; b->empty_lines > 0; b->empty_lines--)
		dkim_body_put(b, "\r\n", 2);
	/* "reduce all sequences of WSP within a line to a single SP" */
	if (b->wsp)
		dkim_body_put(b, " ", 1);
	b->wsp = false;
	b->line_content = true;
	dkim_body_put(b, &c, 1);
}

static void
dkim_body_eol(struct dkim_body *b)
{
	/* "ignore all whitespace at the end of lines" */
	b->wsp = false;
	if (b->line_content)
		dkim_body_put(b, "\r\n", 2);
	else
		b->empty_lines++;
	b->line_content = false;
}

void
dkim_sign_body_feed(struct dkim_body *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				dkim_body_eol(b);
				continue;
			}
			dkim_body_content(b, '\r'); /* a bare CR is content */
		}
		if (c == '\r')
			b->cr = true;
		else if (c == '\n')
			dkim_body_eol(b);
		else if (dkim_is_wsp(c))
			b->wsp = true;
		else
			dkim_body_content(b, c);
	}
}

void
dkim_sign_body_finish(struct dkim_body *b)
{
	if (b->cr) {
		b->cr = false;
		dkim_body_content(b, '\r');
	}
	/* RFC 6376 3.4.4: a non-empty body gets a final CRLF if it lacks one */
	if (b->line_content)
		dkim_body_eol(b);
	/* an empty body (or one of empty lines only) stays empty: RFC 6376
	 * 3.4.4 adds a CRLF only to a non-empty body (simple, 3.4.3, differs) */
	if (b->outlen > 0)
		b->emit_cb(b->arg, b->out, b->outlen);
	b->outlen = 0;
	b->empty_lines = 0;
}

struct dkim_select {
	const char *domain;
	size_t domainlen;
	bool mixed;
};

const struct conf_dkim *
dkim_sign_select(const struct conf *c, const char *msg, size_t len)
{
	struct smtp_header h;
	const struct conf_dkim *d = NULL;
	const char *dom = NULL;
	size_t domlen = 0;

	if (c->ndkims == 0)
		return NULL;
	smtp_header_init(&h);
	smtp_header_feed(&h, msg, len);
	smtp_header_finish(&h);
	if (smtp_header_result(&h) != SMTP_HEADER_FROM_OK || h.nfrom != 1 || h.naddrs == 0)
		goto out;
	for (size_t i = 0; i < h.naddrs; i++) {
		const char *at = strrchr(h.addrs[i], '@');
		size_t l;

		if (at == NULL)
			goto out;
		l = strlen(at + 1);
		if (dom != NULL && (l != domlen || strncasecmp(dom, at + 1, l) != 0))
			goto out;
		dom = at + 1;
		domlen = l;
	}
	d = conf_dkim_for(c, dom, domlen);
out:
	smtp_header_clear(&h);
	return d;
}

/* Appends s[0..n) to the field being written, folding ("CRLF TAB") first if
 * it would not fit on the line; sep: a space before it when not folded. */
static int
dkim_fold(struct buf *b, size_t *col, const char *s, size_t n, bool sep)
{
	if (*col + (sep ? 1 : 0) + n > DKIM_SIGN_LINE_MAX) {
		if (buf_append(b, "\r\n\t", 3) == -1)
			return -1;
		*col = 1;
	} else if (sep) {
		if (buf_append(b, " ", 1) == -1)
			return -1;
		(*col)++;
	}
	if (buf_append(b, s, n) == -1)
		return -1;
	*col += n;
	return 0;
}

/* Appends base64 text, broken across lines as it needs (RFC 6376 3.5: FWS
 * may appear anywhere in b= and bh=). */
static int
dkim_fold_b64(struct buf *b, size_t *col, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = *col < DKIM_SIGN_LINE_MAX ? DKIM_SIGN_LINE_MAX - *col : 0;
		size_t k = n < room ? n : room;

		if (k == 0) {
			if (buf_append(b, "\r\n\t", 3) == -1)
				return -1;
			*col = 1;
			continue;
		}
		if (buf_append(b, s, k) == -1)
			return -1;
		*col += k;
		s += k;
		n -= k;
	}
	return 0;
}

static void
dkim_body_hash_cb(void *arg, const char *p, size_t n)
{
	if (EVP_DigestUpdate(arg, p, n) != 1)
		abort();
}

static bool
dkim_name_is(const struct dkim_field *f, const char *name)
{
	return strlen(name) == f->namelen && strncasecmp(f->raw, name, f->namelen) == 0;
}

int
dkim_sign(const struct conf_dkim *d, const char *msg, size_t len, long long now, struct buf *out,
    const char **errstr_r)
{
	struct dkim_field *f = NULL;
	size_t nf = 0, body_off = 0, col = 0, siglen = 0;
	struct buf hdata, sig, b64, tok;
	unsigned char bh[EVP_MAX_MD_SIZE], hash[EVP_MAX_MD_SIZE], *raw = NULL;
	unsigned bhlen = 0, hashlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct dkim_body body;
	size_t *used = NULL;
	bool first = true;
	int rc = -1;

	buf_init(&hdata, DKIM_SIGN_HEADER_MAX);
	buf_init(&sig, DKIM_SIGN_SIG_MAX);
	buf_init(&b64, DKIM_SIGN_SIG_MAX);
	buf_init(&tok, DKIM_SIGN_SIG_MAX);
	if (md == NULL)
		abort();
	if (dkim_sign_split(msg, len, &f, &nf, &body_off, errstr_r) == -1)
		goto fail;

	/* bh= (RFC 6376 3.7 step 1) */
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		abort();
	dkim_sign_body_init(&body, dkim_body_hash_cb, md);
	dkim_sign_body_feed(&body, msg + body_off, len - body_off);
	dkim_sign_body_finish(&body);
	if (EVP_DigestFinal_ex(md, bh, &bhlen) != 1)
		abort();

	/* the field up to "b=", and the header data in h= order */
	*errstr_r = "the DKIM-Signature field would be too large";
	if (buf_printf(&sig, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed;",
	        d->alg == CONF_DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256") == -1)
		goto fail;
	col = sig.len;
	if (buf_printf(&tok, "d=%s;", d->domain) == -1 ||
	    dkim_fold(&sig, &col, tok.data, tok.len, true) == -1)
		goto fail;
	buf_reset(&tok);
	if (buf_printf(&tok, "s=%s;", d->selector) == -1 ||
	    dkim_fold(&sig, &col, tok.data, tok.len, true) == -1)
		goto fail;
	buf_reset(&tok);
	if (buf_printf(&tok, "t=%lld;", now) == -1 ||
	    dkim_fold(&sig, &col, tok.data, tok.len, true) == -1)
		goto fail;
	used = xcalloc(d->nheaders, sizeof(*used));
	for (size_t i = 0; i < d->nheaders; i++) {
		size_t count = 0, times;
		bool from = strcmp(d->headers[i], "from") == 0;

		for (size_t j = 0; j < nf; j++)
			count += dkim_name_is(&f[j], d->headers[i]);
		/* every instance, bottom-up (RFC 6376 5.4.2); From once more */
		times = count + (from ? 1 : 0);
		for (size_t k = 0; k < times; k++) {
			size_t seen = 0;

			buf_reset(&tok);
			if (buf_printf(&tok, "%s%s%s", first ? "h=" : "", d->headers[i],
			        i + 1 == d->nheaders && k + 1 == times ? ";" : ":") == -1 ||
			    dkim_fold(&sig, &col, tok.data, tok.len, first) == -1)
				goto fail;
			first = false;
			for (size_t j = nf; j-- > 0;) {
				if (!dkim_name_is(&f[j], d->headers[i]) || seen++ != used[i])
					continue;
				used[i]++;
				*errstr_r = "the header section is too large to sign";
				if (dkim_sign_canon_header(f[j].raw, f[j].len, &hdata) == -1)
					goto fail;
				*errstr_r = "the DKIM-Signature field would be too large";
				break;
			}
		}
	}
	if (sig.data[sig.len - 1] == ':') {
		/* the last configured names were absent: end h= */
		sig.data[sig.len - 1] = ';';
	}
	if (base64_encode(bh, bhlen, &b64) == -1 || dkim_fold(&sig, &col, "bh=", 3, true) == -1 ||
	    dkim_fold_b64(&sig, &col, b64.data, b64.len) == -1 ||
	    dkim_fold(&sig, &col, ";", 1, false) == -1 ||
	    dkim_fold(&sig, &col, "b=", 2, true) == -1)
		goto fail;

	/* RFC 6376 3.7: the signature field itself, b= empty, no final CRLF */
	*errstr_r = "the header section is too large to sign";
	if (dkim_sign_canon_header(sig.data, sig.len, &hdata) == -1)
		goto fail;
	hdata.len -= 2;
	EVP_MD_CTX_reset(md);
	*errstr_r = "signing failed";
	if (d->alg == CONF_DKIM_RSA_SHA256) {
		if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, d->key) != 1 ||
		    EVP_DigestSign(
		        md, NULL, &siglen, (const unsigned char *)hdata.data, hdata.len) != 1)
			goto fail;
		raw = xmalloc(siglen);
		if (EVP_DigestSign(
		        md, raw, &siglen, (const unsigned char *)hdata.data, hdata.len) != 1)
			goto fail;
	} else {
		/* RFC 8463 3: Ed25519 signs the SHA-256 hash of the header data */
		if (EVP_Digest(hdata.data, hdata.len, hash, &hashlen, EVP_sha256(), NULL) != 1)
			abort();
		if (EVP_DigestSignInit(md, NULL, NULL, NULL, d->key) != 1 ||
		    EVP_DigestSign(md, NULL, &siglen, hash, hashlen) != 1)
			goto fail;
		raw = xmalloc(siglen);
		if (EVP_DigestSign(md, raw, &siglen, hash, hashlen) != 1)
			goto fail;
	}
	buf_reset(&b64);
	*errstr_r = "the DKIM-Signature field would be too large";
	if (base64_encode(raw, siglen, &b64) == -1 ||
	    dkim_fold_b64(&sig, &col, b64.data, b64.len) == -1 ||
	    buf_append(&sig, "\r\n", 2) == -1 || buf_append(out, sig.data, sig.len) == -1)
		goto fail;
	rc = 0;
fail:
	EVP_MD_CTX_free(md);
	free(raw);
	free(used);
	free(f);
	buf_free(&hdata);
	buf_free(&sig);
	buf_free(&b64);
	buf_free(&tok);
	return rc;
}
