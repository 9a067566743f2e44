/*
 * spool_read: reading message files.
 *
 * A message file is  body | envelope | trailer  (doc/spool.md); the trailer
 * has a fixed length, so the envelope is found from the end of the file
 * without reading the body. Only spool_read_verify() reads the whole file.
 */
#include "queue/spool_read.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "queue/queue_id.h"

#define SPOOL_READ_CHUNK 65536

/* pread(2) of exactly n bytes at off; EIO when the file is shorter. */
static int
spool_read_at(int fd, void *p, size_t n, uint64_t off)
{
	char *s = p;
	ssize_t r;

	while (n > 0) {
		r = pread(fd, s, n, (off_t)off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = EIO; /* the file shrank under us */
			return -1;
		}
		s += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Reads and checks the trailer against the file size. */
static int
spool_read_trailer(int fd, struct spool_read_msg *m, unsigned char hash_r[ENVELOPE_HASH_LEN],
    const char **errstr_r)
{
	char t[ENVELOPE_TRAILER_LEN];
	struct stat st;

	if (fstat(fd, &st) == -1) {
		*errstr_r = "cannot stat";
		goto fail;
	}
	m->file_size = (uint64_t)st.st_size;
	if (m->file_size < ENVELOPE_TRAILER_LEN) {
		*errstr_r = "truncated (no trailer)";
		goto fail;
	}
	if (spool_read_at(fd, t, sizeof(t), m->file_size - ENVELOPE_TRAILER_LEN) == -1) {
		*errstr_r = "cannot read";
		goto fail;
	}
	if (envelope_trailer_parse(t, &m->body_len, &m->env_len, hash_r) == -1) {
		*errstr_r = "bad trailer";
		goto fail;
	}
	if (m->env_len > ENVELOPE_MAX || m->body_len > m->file_size ||
	    m->body_len + m->env_len + ENVELOPE_TRAILER_LEN != m->file_size) {
		*errstr_r = "size does not match the trailer";
		goto fail;
	}
	return 0;
fail:
	return -1;
}

static int
spool_read_parse_env(const char *p, struct spool_read_msg *m, const char **errstr_r)
{
	m->env = envelope_parse(p, m->env_len, errstr_r);
	if (m->env == NULL)
		return -1;
	if (queue_id_is_valid(m->env->id))
		snprintf(m->id, sizeof(m->id), "%s", m->env->id);
	return 0;
}

int
spool_read_envelope(int fd, struct spool_read_msg *m_r, const char **errstr_r)
{
	unsigned char hash[ENVELOPE_HASH_LEN];
	char *p = NULL;

	memset(m_r, 0, sizeof(*m_r));
	if (spool_read_trailer(fd, m_r, hash, errstr_r) == -1)
		goto fail;
	p = xmalloc(m_r->env_len + 1);
	if (spool_read_at(fd, p, m_r->env_len, m_r->body_len) == -1) {
		*errstr_r = "cannot read";
		goto fail;
	}
	if (spool_read_parse_env(p, m_r, errstr_r) == -1)
		goto fail;
	free(p);
	return 0;
fail:
	free(p);
	spool_read_clear(m_r);
	return -1;
}

int
spool_read_verify(int fd, const char *id, const char **errstr_r)
{
	unsigned char want[ENVELOPE_HASH_LEN], got[ENVELOPE_HASH_LEN];
	struct spool_read_msg m;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *chunk = xmalloc(SPOOL_READ_CHUNK), *env = NULL;
	uint64_t off = 0, covered, lo, hi;
	unsigned int hlen = 0;

	memset(&m, 0, sizeof(m));
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		abort();
	if (spool_read_trailer(fd, &m, want, errstr_r) == -1)
		goto fail;
	covered = m.file_size - (ENVELOPE_TRAILER_LEN - ENVELOPE_TRAILER_PREFIX_LEN);
	env = xmalloc(m.env_len + 1);
	while (off < covered) {
		size_t n =
		    covered - off < SPOOL_READ_CHUNK ? (size_t)(covered - off) : SPOOL_READ_CHUNK;

		if (spool_read_at(fd, chunk, n, off) == -1) {
			*errstr_r = "cannot read";
			goto fail;
		}
		EVP_DigestUpdate(md, chunk, n);
		/* keep a copy of the envelope bytes as they go past */
		lo = off > m.body_len ? off : m.body_len;
		hi = off + n < m.body_len + m.env_len ? off + n : m.body_len + m.env_len;
		if (lo < hi)
			memcpy(env + (lo - m.body_len), chunk + (lo - off), (size_t)(hi - lo));
		off += n;
	}
	EVP_DigestFinal_ex(md, got, &hlen);
	if (hlen != ENVELOPE_HASH_LEN || memcmp(got, want, sizeof(got)) != 0) {
		*errstr_r = "checksum mismatch";
		goto fail;
	}
	if (spool_read_parse_env(env, &m, errstr_r) == -1)
		goto fail;
	if (strcmp(m.env->id, id) != 0) {
		*errstr_r = "envelope id does not match the file name";
		goto fail;
	}
	spool_read_clear(&m);
	free(env);
	free(chunk);
	EVP_MD_CTX_free(md);
	return 0;
fail:
	spool_read_clear(&m);
	free(env);
	free(chunk);
	EVP_MD_CTX_free(md);
	return -1;
}

int
spool_read_headers(int fd, uint64_t body_len, size_t max, struct buf *out)
{
	char chunk[4096];
	uint64_t off = 0;
	size_t start = out->len;

	while (off < body_len && out->len - start < max) {
		size_t n = sizeof(chunk);
		char *end;

		if (n > body_len - off)
			n = (size_t)(body_len - off);
		if (n > max - (out->len - start))
			n = max - (out->len - start);
		if (spool_read_at(fd, chunk, n, off) == -1)
			goto fail;
		if (buf_append(out, chunk, n) == -1) {
			errno = ENOBUFS;
			goto fail;
		}
		off += n;
		/* the header section ends at the first empty line (RFC 5322 2.1) */
		if (out->len - start >= 2 && memcmp(out->data + start, "\r\n", 2) == 0) {
			out->len = start;
			out->data[out->len] = '\0';
			return 0;
		}
		end = memmem(out->data + start, out->len - start, "\r\n\r\n", 4);
		if (end != NULL) {
			out->len = (size_t)(end - out->data) + 2;
			out->data[out->len] = '\0';
			return 0;
		}
	}
	return 0;
fail:
	return -1;
}

void
spool_read_clear(struct spool_read_msg *m)
{
	envelope_free(m->env);
	m->env = NULL;
}
