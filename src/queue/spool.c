/*
 * spool: the spool's layout and locks (spool.h, doc/spool.md "Layout").
 *
 * Paths are built here only, relative to an fd of the spool directory
 * (openat and friends), so a caller never joins names by hand. A message
 * name is a queue id, or an id with a suffix for a rewrite in incoming/
 * ("ID.new"): SPOOL_NAME_MAX bounds every path built.
 *
 * Lock-wait (spool_msg_open_locked): open, flock(LOCK_EX | LOCK_NB), then
 * compare the fd with the name by st_dev and st_ino. Busy: sleep
 * SPOOL_LOCK_POLL_MS and try again until wait_ms ran out. Replaced (a
 * delivery rewrite renamed a new file over the name): open the name again
 * at once, at most SPOOL_LOCK_REPLACED_MAX times in a row; the new file is
 * normally locked by the rewriter, so the next try waits.
 */
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "queue/queue_id.h"

#define SPOOL_NAME_MAX 256 /* "folder/name" of a message or a probe */
#define SPOOL_PID_MAX 64 /* bytes of SPOOL/pid read */

char *
spool_path(const char *spool, const char *name)
{
	return fs_path_join(spool, name);
}

/* "folder/name" (or name alone when folder is "") into buf. */
static int
spool_name(char buf[SPOOL_NAME_MAX], const char *folder, const char *name)
{
	int n = folder[0] != '\0' ? snprintf(buf, SPOOL_NAME_MAX, "%s/%s", folder, name)
	                          : snprintf(buf, SPOOL_NAME_MAX, "%s", name);

	if (n < 0 || n >= SPOOL_NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
spool_open(const char *spool)
{
	return open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int
spool_folder_open(int spool_fd, const char *folder, bool create)
{
	if (create && mkdirat(spool_fd, folder, 0700) == -1 && errno != EEXIST)
		return -1;
	return openat(spool_fd, folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int
spool_folder_sync(int spool_fd, const char *folder)
{
	int fd = spool_folder_open(spool_fd, folder, false), r, saved;

	if (fd == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
spool_probe_writable(int spool_fd, const char *folder)
{
	char name[SPOOL_NAME_MAX], probe[64];
	int fd, r, saved;

	/* a dot name is never an id: no reader takes it for a message */
	snprintf(probe, sizeof(probe), ".probe.%ld", (long)getpid());
	if (spool_name(name, folder, probe) == -1)
		return -1;
	fd = openat(spool_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return -1;
	r = fs_write_all(fd, "ok\n", 3);
	saved = errno;
	close(fd);
	if (unlinkat(spool_fd, name, 0) == -1 && r == 0) {
		saved = errno;
		r = -1;
	}
	errno = saved;
	return r;
}

static int
spool_cmp_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
spool_list(int spool_fd, const char *folder, char ***ids_r, size_t *n_r)
{
	DIR *d = NULL;
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0;
	int fd = spool_folder_open(spool_fd, folder, false);

	if (fd == -1)
		goto fail;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		goto fail;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!queue_id_is_valid(de->d_name))
			continue;
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		ids[n++] = xstrdup(de->d_name);
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), spool_cmp_ids);
	*ids_r = ids;
	*n_r = n;
	return 0;
fail : {
	int saved = errno;

	if (d != NULL)
		closedir(d);
	spool_list_free(ids, n);
	errno = saved;
	return -1;
}
}

void
spool_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int
spool_msg_open(int spool_fd, const char *folder, const char *name)
{
	char path[SPOOL_NAME_MAX];

	if (spool_name(path, folder, name) == -1)
		return -1;
	return openat(spool_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

int
spool_msg_find(int spool_fd, const char *id, const char **folder_r)
{
	static const char *const folders[] = {SPOOL_QUEUE, SPOOL_HOLD};
	int fd;

	if (!queue_id_is_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		fd = spool_msg_open(spool_fd, folders[i], id);
		if (fd != -1) {
			*folder_r = folders[i];
			return fd;
		}
		if (errno != ENOENT)
			return -1;
	}
	errno = ENOENT;
	return -1;
}

int
spool_msg_create(int spool_fd, const char *folder, const char *name, bool locked)
{
	char path[SPOOL_NAME_MAX];
	int fd, saved;

	if (spool_name(path, folder, name) == -1)
		return -1;
	fd = openat(spool_fd, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1 || !locked || flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

bool
spool_msg_is_current(int spool_fd, const char *folder, const char *id, int fd)
{
	char path[SPOOL_NAME_MAX];
	struct stat a, b;

	return spool_name(path, folder, id) == 0 && fstat(fd, &a) == 0 &&
	    fstatat(spool_fd, path, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino;
}

int
spool_msg_lock(int spool_fd, const char *folder, const char *id, int fd)
{
	char path[SPOOL_NAME_MAX];
	struct stat a, b;

	if (spool_name(path, folder, id) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		return -1; /* EWOULDBLOCK: someone else works on it */
	if (fstat(fd, &a) == -1 || fstatat(spool_fd, path, &b, AT_SYMLINK_NOFOLLOW) == -1)
		return -1; /* ENOENT: deleted or moved meanwhile */
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		errno = ESTALE;
		return -1;
	}
	return 0;
}

int
spool_msg_open_locked(int spool_fd, const char *folder, const char *id, unsigned wait_ms)
{
	unsigned waited = 0, replaced = 0;
	int fd, saved;

	if (!queue_id_is_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	for (;;) {
		fd = spool_msg_open(spool_fd, folder, id);
		if (fd == -1)
			return -1;
		if (spool_msg_lock(spool_fd, folder, id, fd) == 0)
			return fd;
		saved = errno;
		close(fd);
		if (saved != EWOULDBLOCK && saved != ESTALE) {
			errno = saved;
			return -1;
		}
		/* the rewriter locked the new file before renaming it: look
		 * again at once, and wait when it is busy */
		if (saved == ESTALE && ++replaced <= SPOOL_LOCK_REPLACED_MAX)
			continue;
		replaced = 0;
		if (waited >= wait_ms) {
			errno = EBUSY;
			return -1;
		}
		usleep(SPOOL_LOCK_POLL_MS * 1000);
		waited += SPOOL_LOCK_POLL_MS;
	}
}

int
spool_msg_stat(int spool_fd, const char *folder, const char *id, struct stat *st_r)
{
	char path[SPOOL_NAME_MAX];

	if (spool_name(path, folder, id) == -1)
		return -1;
	return fstatat(spool_fd, path, st_r, AT_SYMLINK_NOFOLLOW);
}

int
spool_msg_rename(
    int spool_fd, const char *from, const char *from_name, const char *to, const char *to_name)
{
	char a[SPOOL_NAME_MAX], b[SPOOL_NAME_MAX];

	if (spool_name(a, from, from_name) == -1 || spool_name(b, to, to_name) == -1)
		return -1;
	return renameat(spool_fd, a, spool_fd, b);
}

int
spool_msg_move(int spool_fd, const char *id, const char *from, const char *to)
{
	if (spool_msg_rename(spool_fd, from, id, to, id) == -1)
		return -1;
	/* the new entry first, then the removal of the old one */
	if (spool_folder_sync(spool_fd, to) == -1 || spool_folder_sync(spool_fd, from) == -1)
		return -1;
	return 0;
}

int
spool_msg_unlink(int spool_fd, const char *folder, const char *name)
{
	char path[SPOOL_NAME_MAX];

	if (spool_name(path, folder, name) == -1)
		return -1;
	return unlinkat(spool_fd, path, 0);
}

int
spool_msg_remove(int spool_fd, const char *folder, const char *id)
{
	if (spool_msg_unlink(spool_fd, folder, id) == -1)
		return -1;
	return spool_folder_sync(spool_fd, folder);
}

int
spool_lock_server(int spool_fd)
{
	int fd = openat(spool_fd, SPOOL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600), saved;

	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
spool_pid_write(const char *spool)
{
	char pid[32], *path = spool_path(spool, SPOOL_PID);
	int r, saved;

	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	r = fs_write_atomic(path, pid, strlen(pid), 0600);
	saved = errno;
	free(path);
	errno = saved;
	return r;
}

void
spool_pid_remove(const char *spool)
{
	char *path = spool_path(spool, SPOOL_PID);

	(void)unlink(path);
	free(path);
}

pid_t
spool_server_pid(const char *spool)
{
	char *lock = spool_path(spool, SPOOL_LOCK), *pidf = spool_path(spool, SPOOL_PID);
	char *text = NULL;
	size_t len;
	pid_t pid = 0;
	int fd = open(lock, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		goto out;
	/* a shared lock that cannot be had: the server holds its exclusive one */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		goto out;
	text = fs_read_file(pidf, SPOOL_PID_MAX, &len);
	if (text != NULL)
		pid = (pid_t)strtol(text, NULL, 10);
out:
	if (fd != -1)
		close(fd);
	free(text);
	free(lock);
	free(pidf);
	return pid > 1 ? pid : 0;
}
