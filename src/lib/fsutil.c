/*
 * fsutil: durable file writes.
 */
#include "lib/fsutil.h"
#include "lib/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xalloc.h"

int
fs_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
fs_fsync_dir(const char *dir)
{
	int fd, r;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

char *
fs_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

char *
fs_path_join(const char *base, const char *path)
{
	size_t n;
	char *r;

	if (path[0] == '/' || base == NULL || base[0] == '\0')
		return xstrdup(path);
	n = strlen(base) + strlen(path) + 2;
	r = xmalloc(n);
	snprintf(r, n, "%s/%s", base, path);
	return r;
}

int
fs_write_atomic(const char *path, const void *p, size_t n, mode_t mode)
{
	char *dir = fs_dirname(path), *tmp;
	const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	size_t tn = strlen(path) + 32;
	int fd = -1, saved;

	/* "DIR/.NAME" FS_TMP_MARK "XXXXXX": unique, so concurrent writers of one
	 * path (threads, processes) never share a temporary file */
	tmp = xmalloc(tn);
	snprintf(tmp, tn, "%s/.%s" FS_TMP_MARK "XXXXXX", dir, base);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1) {
		saved = errno;
		free(tmp);
		free(dir);
		errno = saved;
		return -1;
	}
	if (fchmod(fd, mode) == -1 || fs_write_all(fd, p, n) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	if (fs_fsync_dir(dir) == -1)
		goto fail;
	free(tmp);
	free(dir);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	free(dir);
	errno = saved;
	return -1;
}

char *
fs_read_file(const char *path, size_t max, size_t *len_r)
{
	/* pread: a descriptor from the vault may be read by several threads */
	int fd = vault_open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *p;
	ssize_t r;
	size_t got = 0;

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return NULL;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	p = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	p[got] = '\0';
	if (len_r != NULL)
		*len_r = got;
	return p;
}
