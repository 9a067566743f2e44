/*
 * certwatch: see certwatch.h. Runs in the parent, on its one thread; the
 * check installs the candidate vault for the time of one conf_load and
 * tls_server_new, so that what is checked is byte for byte what the smtp
 * process will load (the configuration file itself comes from the vault
 * too: an edited but not yet reloaded configuration is not applied here).
 */
#include "server/certwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/log.h"
#include "lib/vault.h"
#include "lib/xalloc.h"
#include "net/tls.h"
#include "net/tls_info.h"

struct certwatch_pair {
	char *cert, *key;
};

struct certwatch {
	char *path; /* the configuration */
	size_t n; /* files watched */
	char **files;
	struct certwatch_mark *seen, *tried, *now;
	size_t npairs;
	struct certwatch_pair *pairs;
	long long due_ms; /* -1: not yet looked at */
};

/* --- the decision (no I/O) ------------------------------------------------------ */

bool
certwatch_mark_equal(const struct certwatch_mark *a, const struct certwatch_mark *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns &&
	    a->link_ino == b->link_ino && a->link_ctime_ns == b->link_ctime_ns;
}

static bool
certwatch_marks_equal(size_t n, const struct certwatch_mark *a, const struct certwatch_mark *b)
{
	for (size_t i = 0; i < n; i++) {
		if (!certwatch_mark_equal(&a[i], &b[i]))
			return false;
	}
	return true;
}

enum certwatch_step
certwatch_step(size_t n, const struct certwatch_mark *now, struct certwatch_mark *seen,
    struct certwatch_mark *tried)
{
	if (!certwatch_marks_equal(n, now, seen)) {
		memcpy(seen, now, n * sizeof(*seen));
		return CERTWATCH_SETTLING;
	}
	if (certwatch_marks_equal(n, seen, tried))
		return CERTWATCH_QUIET;
	memcpy(tried, seen, n * sizeof(*tried));
	return CERTWATCH_CHECK;
}

void
certwatch_mark_of(const char *path, struct certwatch_mark *m)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		m->link_ino = st.st_ino;
		m->link_ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	}
	if (stat(path, &st) == -1) {
		m->err = errno;
		return;
	}
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->size = st.st_size;
	m->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	m->ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
}

/* --- the vault ------------------------------------------------------------------- */

static int
certwatch_fd_in(const struct vault *v, const char *path)
{
	for (size_t i = 0; i < vault_count(v); i++) {
		const char *p;
		int fd;

		vault_entry(v, i, &p, &fd);
		if (strcmp(p, path) == 0)
			return fd;
	}
	return -1;
}

static bool
certwatch_is_watched(const struct certwatch *w, const char *path)
{
	for (size_t i = 0; i < w->n; i++) {
		if (strcmp(w->files[i], path) == 0)
			return true;
	}
	return false;
}

/* Whether two vault copies hold the same bytes. */
static bool
certwatch_same_bytes(int a, int b)
{
	char ba[4096], bb[4096];
	off_t off = 0;

	for (;;) {
		ssize_t na = pread(a, ba, sizeof(ba), off), nb = pread(b, bb, sizeof(bb), off);

		if (na < 0 || na != nb || memcmp(ba, bb, (size_t)na) != 0)
			return false;
		if (na == 0)
			return true;
		off += na;
	}
}

/* in_force, with the watched files copied afresh from disk (a file that
 * cannot be opened now is left out, so that the check reads the disk and
 * names the error). NULL when every copy holds the bytes in force. */
static struct vault *
certwatch_candidate(const struct certwatch *w, const struct vault *in_force)
{
	struct vault *fresh, *v;
	bool changed = false;

	vault_record_begin();
	for (size_t i = 0; i < w->n; i++) {
		int fd = vault_open(w->files[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

		if (fd != -1)
			close(fd);
	}
	fresh = vault_record_end();
	for (size_t i = 0; i < w->n; i++) {
		int a = certwatch_fd_in(fresh, w->files[i]),
		    b = certwatch_fd_in(in_force, w->files[i]);

		if (a == -1 || b == -1 || !certwatch_same_bytes(a, b))
			changed = true;
	}
	if (!changed) {
		vault_free(fresh);
		return NULL;
	}
	v = vault_new();
	for (size_t i = 0; i < vault_count(fresh); i++) {
		const char *p;
		int fd;

		vault_entry(fresh, i, &p, &fd);
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (fd == -1 || vault_add(v, p, fd) == -1)
			goto fail;
	}
	for (size_t i = 0; i < vault_count(in_force); i++) {
		const char *p;
		int fd;

		vault_entry(in_force, i, &p, &fd);
		if (certwatch_is_watched(w, p))
			continue;
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (fd == -1 || vault_add(v, p, fd) == -1)
			goto fail;
	}
	vault_free(fresh);
	return v;
fail:
	log_event(LOG_ERR, "tls_cert_refused", 0, "{s:s, s:s}", "error",
	    "cannot copy the certificate files", "kept", "the certificates in force");
	vault_free(fresh);
	vault_free(v);
	return NULL;
}

/* The configuration and its certificates loaded from v, as the smtp process
 * will. 0, or -1 with err. */
static int
certwatch_check(const struct certwatch *w, struct vault *v, char *err, size_t errlen)
{
	struct vault *prev = vault_install(v);
	struct conf *c = conf_load(w->path, err, errlen);
	struct tls_server *t = c != NULL ? tls_server_new(c, err, errlen) : NULL;

	(void)vault_install(prev);
	tls_server_unref(t);
	conf_free(c);
	return t != NULL ? 0 : -1;
}

/* --- the whole ------------------------------------------------------------------- */

static void
certwatch_log_loaded(const struct certwatch *w, const struct vault *v, const char *trigger)
{
	for (size_t i = 0; i < w->npairs; i++) {
		int fd = certwatch_fd_in(v, w->pairs[i].cert);
		struct tls_info info;

		if (fd == -1 || tls_info_of_fd(fd, &info) == -1)
			continue;
		log_event(LOG_NOTICE, "tls_cert_loaded", 0, "{s:s, s:s, s:s, s:s, s:s, s:s}",
		    "cert", w->pairs[i].cert, "key", w->pairs[i].key, "subject", info.subject,
		    "serial", info.serial, "not_after", info.not_after, "trigger", trigger);
	}
}

static void
certwatch_watch(struct certwatch *w, const char *path)
{
	if (certwatch_is_watched(w, path))
		return;
	w->files = xrealloc(w->files, (w->n + 1) * sizeof(*w->files));
	w->files[w->n++] = xstrdup(path);
}

struct certwatch *
certwatch_new(const char *path, const struct conf *c, const struct vault *v, const char *trigger)
{
	struct certwatch *w = xcalloc(1, sizeof(*w));

	w->path = xstrdup(path);
	w->due_ms = -1;
	w->pairs = xcalloc(c->ncerts + 1, sizeof(*w->pairs));
	for (size_t i = 0; i < c->ncerts; i++) {
		const struct conf_cert *cc = &c->certs[i];

		/* only what was loaded: without a TLS listener nothing is */
		if (certwatch_fd_in(v, cc->cert) == -1 || certwatch_fd_in(v, cc->key) == -1)
			continue;
		w->pairs[w->npairs].cert = xstrdup(cc->cert);
		w->pairs[w->npairs].key = xstrdup(cc->key);
		w->npairs++;
		certwatch_watch(w, cc->cert);
		certwatch_watch(w, cc->key);
	}
	w->seen = xcalloc(w->n + 1, sizeof(*w->seen));
	w->tried = xcalloc(w->n + 1, sizeof(*w->tried));
	w->now = xcalloc(w->n + 1, sizeof(*w->now));
	/* the files as they were when the vault was filled, a moment ago */
	for (size_t i = 0; i < w->n; i++)
		certwatch_mark_of(w->files[i], &w->seen[i]);
	memcpy(w->tried, w->seen, w->n * sizeof(*w->tried));
	certwatch_log_loaded(w, v, trigger);
	return w;
}

void
certwatch_free(struct certwatch *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->files[i]);
	for (size_t i = 0; i < w->npairs; i++) {
		free(w->pairs[i].cert);
		free(w->pairs[i].key);
	}
	free(w->files);
	free(w->pairs);
	free(w->seen);
	free(w->tried);
	free(w->now);
	free(w->path);
	free(w);
}

long long
certwatch_due_in(const struct certwatch *w, long long now_ms)
{
	if (w == NULL || w->n == 0)
		return -1;
	if (w->due_ms < 0 || w->due_ms <= now_ms)
		return 0;
	return w->due_ms - now_ms;
}

struct vault *
certwatch_tick(struct certwatch *w, const struct vault *in_force, long long now_ms)
{
	char err[2048];
	struct vault *v;

	if (certwatch_due_in(w, now_ms) != 0)
		return NULL;
	w->due_ms = now_ms + CERTWATCH_PERIOD_MS;
	for (size_t i = 0; i < w->n; i++)
		certwatch_mark_of(w->files[i], &w->now[i]);
	if (certwatch_step(w->n, w->now, w->seen, w->tried) != CERTWATCH_CHECK)
		return NULL;
	v = certwatch_candidate(w, in_force);
	if (v == NULL)
		return NULL;
	if (certwatch_check(w, v, err, sizeof(err)) == -1) {
		log_event(LOG_ERR, "tls_cert_refused", 0, "{s:s, s:s}", "error", err, "kept",
		    "the certificates in force");
		vault_free(v);
		return NULL;
	}
	certwatch_log_loaded(w, v, "file change");
	return v;
}
