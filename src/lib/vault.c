/*
 * vault: see vault.h.
 */
#include "lib/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xalloc.h"

struct vault_file {
	char *path;
	int fd;
};

struct vault {
	struct vault_file files[VAULT_FILES_MAX];
	size_t n;
};

static pthread_mutex_t vault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vault *vault_installed; /* the child's */
static struct vault *vault_recording; /* the parent's, while loading */

struct vault *
vault_new(void)
{
	return xcalloc(1, sizeof(struct vault));
}

static const struct vault_file *
vault_find(const struct vault *v, const char *path)
{
	for (size_t i = 0; v != NULL && i < v->n; i++) {
		if (strcmp(v->files[i].path, path) == 0)
			return &v->files[i];
	}
	return NULL;
}

int
vault_add(struct vault *v, const char *path, int fd)
{
	if (v->n == VAULT_FILES_MAX) {
		close(fd);
		errno = ENFILE;
		return -1;
	}
	v->files[v->n].path = xstrdup(path);
	v->files[v->n].fd = fd;
	v->n++;
	return 0;
}

/* A sealed copy of the regular file fd (its mode kept), so that a child
 * loads exactly the bytes the parent checked, whatever happens to the file
 * afterwards; -1 when it is not a regular file or too big. */
static int
vault_snapshot(int fd)
{
	struct stat st;
	char buf[8192];
	int m;
	off_t off = 0;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > VAULT_FILE_MAX)
		return -1;
	m = memfd_create("smtpgate-vault", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m == -1)
		return -1;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || write(m, buf, (size_t)n) != n || off + n > VAULT_FILE_MAX) {
			if (n == 0)
				break;
			close(m);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		off += n;
	}
	explicit_bzero(buf, sizeof(buf));
	if (fchmod(m, st.st_mode & 07777) == -1 ||
	    fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		close(m);
		return -1;
	}
	return m;
}

/* While recording: keeps a copy of what fd opened, once per path (the
 * descriptor itself for what cannot be copied). */
static void
vault_keep(const char *path, int fd)
{
	int kept;

	if (vault_find(vault_recording, path) != NULL)
		return;
	kept = vault_snapshot(fd);
	if (kept == -1)
		kept = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (kept != -1)
		(void)vault_add(vault_recording, path, kept);
}

int
vault_open(const char *path, int flags)
{
	const struct vault_file *f;
	int fd;

	pthread_mutex_lock(&vault_lock);
	if ((f = vault_find(vault_installed, path)) != NULL) {
		/* a copy of its own: the kept descriptor's offset is shared with
		 * every process it was handed to */
		fd = vault_snapshot(f->fd);
		if (fd == -1)
			fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
		pthread_mutex_unlock(&vault_lock);
		if (fd != -1 && lseek(fd, 0, SEEK_SET) == -1 && errno != ESPIPE) {
			close(fd);
			return -1;
		}
		return fd;
	}
	fd = open(path, flags);
	if (fd != -1 && vault_recording != NULL)
		vault_keep(path, fd);
	pthread_mutex_unlock(&vault_lock);
	return fd;
}

void
vault_record_begin(void)
{
	pthread_mutex_lock(&vault_lock);
	if (vault_recording == NULL)
		vault_recording = vault_new();
	pthread_mutex_unlock(&vault_lock);
}

struct vault *
vault_record_end(void)
{
	struct vault *v;

	pthread_mutex_lock(&vault_lock);
	v = vault_recording;
	vault_recording = NULL;
	pthread_mutex_unlock(&vault_lock);
	if (v != NULL && v->n == 0) {
		vault_free(v);
		v = NULL;
	}
	return v;
}

struct vault *
vault_install(struct vault *v)
{
	struct vault *old;

	pthread_mutex_lock(&vault_lock);
	old = vault_installed;
	vault_installed = v;
	pthread_mutex_unlock(&vault_lock);
	return old;
}

size_t
vault_count(const struct vault *v)
{
	return v != NULL ? v->n : 0;
}

void
vault_entry(const struct vault *v, size_t i, const char **path_r, int *fd_r)
{
	*path_r = v->files[i].path;
	*fd_r = v->files[i].fd;
}

void
vault_free(struct vault *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		free(v->files[i].path);
		close(v->files[i].fd);
	}
	free(v);
}
