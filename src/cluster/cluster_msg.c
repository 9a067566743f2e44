/*
 * cluster_msg: see cluster_msg.h.
 */
#include "cluster/cluster_msg.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/hex.h"

void
cluster_msg_hex(const char *account, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	if (len > CLUSTER_MSG_ACCOUNT_MAX)
		len = CLUSTER_MSG_ACCOUNT_MAX;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)tolower((unsigned char)account[i]);

		out[2 * i] = digits[ch >> 4];
		out[2 * i + 1] = digits[ch & 15];
	}
	out[2 * len] = '\0';
}

int
cluster_msg_unhex(const char *hex, char *out, size_t *len_r)
{
	size_t n = strlen(hex);

	if (n % 2 != 0 || n / 2 > CLUSTER_MSG_ACCOUNT_MAX)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i], false), lo = hex_digit(hex[2 * i + 1], false);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (char)(hi * 16 + lo);
	}
	out[n / 2] = '\0';
	*len_r = n / 2;
	return 0;
}

int
cluster_msg_key(char *out, size_t outlen, const char *prefix, const char *a, const char *b)
{
	int n = snprintf(out, outlen, "%s%s%s", prefix, a, b != NULL ? b : "");

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

double
cluster_msg_decay(double fails, int64_t stamp, int64_t now, int64_t halflife)
{
	if (now <= stamp || halflife <= 0 || !(fails > 0))
		return fails > 0 ? fails : 0;
	return fails * exp2(-(double)(now - stamp) / (double)halflife);
}

void
cluster_msg_ban_format(const struct limiter_ban *b, char *out, size_t outlen)
{
	snprintf(out, outlen, "%" PRId64 " %" PRId64 " %u %s", b->until_ms, b->last_ms, b->offences,
	    limiter_reason_name(b->reason));
}

static int
cluster_msg_reason(const char *s, enum limiter_reason *r)
{
	static const enum limiter_reason all[] = {
	    LIMITER_REASON_MANUAL, LIMITER_REASON_AUTH_IP, LIMITER_REASON_AUTH_NET};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, limiter_reason_name(all[i])) == 0) {
			*r = all[i];
			return 0;
		}
	}
	return -1;
}

int
cluster_msg_ban_parse(const char *address, const char *rec, struct limiter_ban *b)
{
	long long until, last;
	unsigned offences;
	char reason[32];
	struct limiter_addr a;
	unsigned prefix;
	int used = 0;

	memset(b, 0, sizeof(*b));
	if (strlen(address) >= sizeof(b->address) || limiter_addr_parse(address, &a, &prefix) == -1)
		return -1;
	if (sscanf(rec, "%lld %lld %u %31s%n", &until, &last, &offences, reason, &used) != 4 ||
	    rec[used] != '\0' || until < 0 || last < 0)
		return -1;
	if (cluster_msg_reason(reason, &b->reason) == -1)
		return -1;
	limiter_addr_format(&a, prefix, b->address, sizeof(b->address));
	b->until_ms = until;
	b->last_ms = last;
	b->offences = offences;
	return 0;
}

/* Splits s into at most max words at single spaces; returns the count. */
static size_t
cluster_msg_words(char *s, char **w, size_t max)
{
	size_t n = 0;

	while (n < max) {
		w[n++] = s;
		s = strchr(s, ' ');
		if (s == NULL)
			break;
		*s++ = '\0';
	}
	return s == NULL ? n : max + 1;
}

static int
cluster_msg_num(const char *s, long long *v)
{
	char *end;

	if (*s == '\0')
		return -1;
	*v = strtoll(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int
cluster_msg_parse(const char *s, size_t len, struct cluster_msg *m)
{
	char buf[1024], *w[7];
	size_t n;
	long long stamp;
	unsigned prefix;
	char *end;

	memset(m, 0, sizeof(*m));
	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	n = cluster_msg_words(buf, w, 6);
	if (n == 6 && strcmp(w[0], "ban") == 0) {
		char rec[CLUSTER_MSG_BAN_MAX];

		m->type = CLUSTER_MSG_BAN;
		snprintf(rec, sizeof(rec), "%s %s %s %s", w[2], w[3], w[4], w[5]);
		return cluster_msg_ban_parse(w[1], rec, &m->ban);
	}
	if (n == 2 && strcmp(w[0], "unban") == 0) {
		struct limiter_addr a;

		m->type = CLUSTER_MSG_UNBAN;
		if (limiter_addr_parse(w[1], &a, &prefix) == -1)
			return -1;
		limiter_addr_format(&a, prefix, m->ban.address, sizeof(m->ban.address));
		return 0;
	}
	if (n == 2 && (strcmp(w[0], "hold") == 0 || strcmp(w[0], "unlock") == 0)) {
		m->type = w[0][0] == 'h' ? CLUSTER_MSG_HOLD : CLUSTER_MSG_UNLOCK;
		return cluster_msg_unhex(w[1], m->account, &m->account_len) == -1 ||
		        m->account_len == 0 || memchr(m->account, '\0', m->account_len) != NULL
		    ? -1
		    : 0;
	}
	if (n != 4 || cluster_msg_unhex(w[1], m->account, &m->account_len) == -1 ||
	    m->account_len == 0 || cluster_msg_num(w[3], &stamp) == -1 || stamp < 0)
		return -1;
	m->stamp = stamp;
	if (strcmp(w[0], "good") == 0) {
		m->type = CLUSTER_MSG_GOOD;
		return limiter_addr_parse(w[2], &m->client, &prefix) == -1 || prefix != 128 ? -1
		                                                                            : 0;
	}
	if (strcmp(w[0], "acct") == 0) {
		m->type = CLUSTER_MSG_ACCT;
		m->fails = strtod(w[2], &end);
		return *end != '\0' || w[2][0] == '\0' || !(m->fails >= 0) || m->fails > 1e9 ? -1
		                                                                             : 0;
	}
	return -1;
}

void
cluster_msg_node_format(
    const char *id, const char *host, const char *path, char *out, size_t outlen)
{
	char h[256];
	size_t i;

	/* a host name has no spaces; one that did would shift the path */
	for (i = 0; host[i] != '\0' && i + 1 < sizeof(h); i++)
		h[i] = host[i] == ' ' ? '_' : host[i];
	h[i] = '\0';
	snprintf(out, outlen, "%s %s %.511s", id, h[0] != '\0' ? h : "-", path);
}

int
cluster_msg_node_parse(const char *rec, struct cluster_msg_node *n)
{
	const char *sp = strchr(rec, ' '), *dash = strchr(rec, '-');
	size_t idlen = sp != NULL ? (size_t)(sp - rec) : strlen(rec);
	char *end;

	memset(n, 0, sizeof(*n));
	if (idlen == 0 || idlen >= sizeof(n->id) || dash == NULL || dash >= rec + idlen ||
	    dash == rec || dash + 1 == rec + idlen)
		return -1;
	for (const char *q = dash + 1; q < rec + idlen; q++) {
		if (strchr("0123456789abcdef", *q) == NULL)
			return -1;
	}
	n->pid = strtol(rec, &end, 10);
	if (end != dash || n->pid <= 0)
		return -1;
	memcpy(n->id, rec, idlen);
	if (sp == NULL)
		return 0; /* an older node: the id alone */
	rec = sp + 1;
	sp = strchr(rec, ' ');
	idlen = sp != NULL ? (size_t)(sp - rec) : strlen(rec);
	if (idlen == 0 || idlen >= sizeof(n->host))
		return -1;
	memcpy(n->host, rec, idlen);
	if (sp != NULL)
		snprintf(n->path, sizeof(n->path), "%s", sp + 1);
	return 0;
}

int
cluster_msg_refused_parse(const char *field, const char *value, struct cluster_msg_refused *r)
{
	const char *sp = strrchr(field, ' ');
	long long t;

	memset(r, 0, sizeof(*r));
	if (sp == NULL || sp == field || (size_t)(sp - field) >= sizeof(r->listener) ||
	    strlen(sp + 1) == 0 || strlen(sp + 1) >= sizeof(r->address) ||
	    cluster_msg_num(value, &t) == -1 || t < 0)
		return -1;
	memcpy(r->listener, field, (size_t)(sp - field));
	snprintf(r->address, sizeof(r->address), "%s", sp + 1);
	r->last_s = t;
	return 0;
}

void
cluster_msg_rcpt_hash(const char *addr, char out[CLUSTER_MSG_RCPT_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE], chunk[64];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	while (ok && *addr != '\0') {
		size_t n = 0;

		for (; *addr != '\0' && n < sizeof(chunk); addr++)
			chunk[n++] = (unsigned char)tolower((unsigned char)*addr);
		ok = EVP_DigestUpdate(ctx, chunk, n) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 &&
	    mdlen >= (CLUSTER_MSG_RCPT_HEX - 1) / 2;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		abort(); /* SHA-256 is always there: out of memory */
	for (size_t i = 0; i < (CLUSTER_MSG_RCPT_HEX - 1) / 2; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[CLUSTER_MSG_RCPT_HEX - 1] = '\0';
}
